"""cuDNN's fp8 flash attention (Hopper and newer) through the ``cudnn`` Python frontend: an approximate fast path.

Optional: needs the ``nvidia-cudnn-frontend`` package (``pip install nvidia-cudnn-frontend``), which
drives the cuDNN library PyTorch already ships. PyTorch's own SDPA takes no fp8 inputs.

Arithmetic (cuDNN's ``sdpa_fp8``): Q, K and V are scaled **per tensor** so that their largest
magnitude maps to 448 and rounded to e4m3; the softmax probabilities are rounded to e4m3 after a
scale of 256 (``scale_s``); on Hopper the output is e4m3 as well, in V's units (the output is a
convex combination of V's rows, so it stays within V's range), and is dequantized to bf16 here.
Compared with :mod:`.triton_attention`'s kernel this rounds once more (the output) and scales per
tensor instead of per head; it is faster (docs/performance.md, "Attention kernels").

One cuDNN graph is built per input shape and stride and kept for the process.
"""

from __future__ import annotations

import math

import torch

from s2v_toolkit.models.fp8 import quantize_tensorwise

__all__ = ["cudnn_fp8_available", "cudnn_fp8_attention", "S_SCALE"]

#: Scale of the softmax probabilities before their e4m3 rounding (a power of two: exact).
S_SCALE = 256.0


def cudnn_fp8_available(device: torch.device | None = None) -> bool:
    """True when the ``cudnn`` frontend imports and ``device`` is a CUDA GPU of compute capability >= 9."""
    from s2v_toolkit.models.attention import hopper_gpu_with

    return hopper_gpu_with("cudnn", device)


class _Graphs:
    """cuDNN handle and the built graphs, per device."""

    def __init__(self):
        import cudnn

        self.cudnn = cudnn
        self.handle = cudnn.create_handle()
        self.graphs: dict = {}

    def build(self, shape, strides, device):
        cudnn = self.cudnn
        b, s_q, h, d = shape[0]
        s_k = shape[1][1]
        # cuDNN's logical layout is [B, H, S, D]; ours is [B, S, H, D]: same memory, permuted strides.
        q_dims, k_dims = (b, h, s_q, d), (b, h, s_k, d)
        q_st = (strides[0][0], strides[0][2], strides[0][1], strides[0][3])
        k_st = (strides[1][0], strides[1][2], strides[1][1], strides[1][3])
        e4m3, f32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=f32, compute_data_type=f32,
                              handle=self.handle)
        tq = graph.tensor(name="q", dim=q_dims, stride=q_st, data_type=e4m3)
        tk = graph.tensor(name="k", dim=k_dims, stride=k_st, data_type=e4m3)
        tv = graph.tensor(name="v", dim=k_dims, stride=k_st, data_type=e4m3)
        scalar = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=f32)
        scalars = [graph.tensor(name=n, **scalar) for n in ("descale_q", "descale_k", "descale_v",
                                                              "descale_s", "scale_s", "scale_o")]
        o, _, amax_s, amax_o = graph.sdpa_fp8(q=tq, k=tk, v=tv, descale_q=scalars[0], descale_k=scalars[1],
                                              descale_v=scalars[2], descale_s=scalars[3], scale_s=scalars[4],
                                              scale_o=scalars[5], attn_scale=1.0 / math.sqrt(d),
                                              use_causal_mask=False, generate_stats=False)
        o.set_output(True).set_dim(q_dims).set_stride(q_st).set_data_type(e4m3)
        for amax in (amax_s, amax_o):
            amax.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(f32)
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        workspace = torch.empty(graph.get_workspace_size(), dtype=torch.uint8, device=device)
        return graph, (tq, tk, tv, o, amax_s, amax_o), scalars, workspace


_graphs: dict[torch.device, _Graphs] = {}


def _quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor e4m3 (the fp8 linears' activation rule), as a contiguous ``[B, S, H, D]`` tensor."""
    values, scale = quantize_tensorwise(x)
    return values.contiguous(), scale


def cudnn_fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention of ``[B, S, H, D]`` CUDA tensors with cuDNN's fp8 kernel; ``q``'s dtype out."""
    if not cudnn_fp8_available(q.device):
        raise RuntimeError("cuDNN fp8 attention needs the nvidia-cudnn-frontend package and a CUDA GPU of "
                           "compute capability >= 9 (Hopper)")
    state = _graphs.get(q.device)
    if state is None:
        state = _graphs[q.device] = _Graphs()
    (q8, qs), (k8, ks), (v8, vs) = _quantize(q), _quantize(k), _quantize(v)
    # The quantized copies are fresh contiguous [B, S, H, D] tensors: one graph per shape.
    key = (tuple(q8.shape), tuple(k8.shape))
    if key not in state.graphs:
        state.graphs[key] = state.build((tuple(q8.shape), tuple(k8.shape)), (q8.stride(), k8.stride()), q.device)
    graph, (tq, tk, tv, to, t_amax_s, t_amax_o), scalars, workspace = state.graphs[key]
    state.cudnn.set_stream(handle=state.handle, stream=torch.cuda.current_stream(q.device).cuda_stream)
    s_scale = torch.full((), S_SCALE, device=q.device)
    values = (qs, ks, vs, 1.0 / s_scale, s_scale, 1.0 / vs)
    pack = {t: x.reshape(1, 1, 1, 1).float().contiguous() for t, x in zip(scalars, values)}
    o8 = torch.empty(q8.shape, dtype=torch.float8_e4m3fn, device=q.device)
    amax_s = torch.empty(1, 1, 1, 1, device=q.device)
    amax_o = torch.empty(1, 1, 1, 1, device=q.device)
    pack.update({tq: q8, tk: k8, tv: v8, to: o8, t_amax_s: amax_s, t_amax_o: amax_o})
    graph.execute(pack, workspace, handle=state.handle)
    return (o8.float() * vs).to(q.dtype)
