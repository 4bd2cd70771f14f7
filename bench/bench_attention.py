"""Attention kernels side by side at the S2V self-attention shapes (issue 6, items 2 and 3), one run.

    python bench/bench_attention.py --out bench_out [--seqs 79200,32760] [--repeat 5]

Shape ``[1, S, 40, 128]`` (batch, tokens, heads, head dim), bf16 random inputs; S = 79,200
(704x1280 with motion tokens) and 32,760 (448x832). Every variant computes softmax(q k^T/sqrt(d)) v
for the same inputs and is timed with CUDA events (median of --repeat calls after 2 warm-ups);
TFLOP/s counts 4 * S^2 * 128 * 40 (the two products). Error: rel L2 against a float32 softmax
reference on the first 256 queries, and rel L2 / max abs against the PyTorch-default output.
Two inputs: ``randn`` (q, k, v ~ N(0, 1): logits ~ N(0, 1), near-uniform attention, as with random
model weights) and ``peaked`` (q, k scaled by 3: logits ~ N(0, 9), a few keys dominate each row).

Variants (each one skipped with its reason when its package or kernel is not there):
  torch_default   F.scaled_dot_product_attention, PyTorch's own choice (cuDNN on this H100)
  torch_cudnn     the same with SDPBackend.CUDNN_ATTENTION forced
  fa4_bf16        FlashAttention 4 (flash_attn.cute, CuTe DSL; sm90 forward), if importable
  triton_bf16     s2v_toolkit.models.triton_attention, bf16
  triton_fp8      the same kernel in e4m3 (quantization of q, k, v included in the time)
  triton_fp8_kernel  the e4m3 kernel alone on pre-quantized inputs
  cudnn_fe_fp8    cuDNN's fp8 SDPA (s2v_toolkit.models.cudnn_fp8_attention, the 'cudnn-fp8' backend:
                  per-tensor scales, e4m3 output on Hopper, dequantized to bf16; quantization included)
  cudnn_fe_bf16   cuDNN's bf16 SDPA through cudnn-frontend (the frontend's own engine choice)
  fa3_bf16        FlashAttention 3 (flash_attn_interface, the flash-attention repository's hopper/ build;
                  scripts/build_hopper_attention.sh), if importable
  sage2           SageAttention 2 (sageattention.sageattn: int8 Q/K, fp8 P/V on Hopper; quantization
                  included in the time; the 'sage' backend), if importable
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import event_times  # noqa: E402

from s2v_toolkit.models import triton_attention as ta  # noqa: E402
from s2v_toolkit.models.cudnn_fp8_attention import cudnn_fp8_attention  # noqa: E402

START = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {msg}", flush=True)


def reference_rows(q, k, v, rows: int = 256) -> torch.Tensor:
    qf = q[:, :rows].float().transpose(1, 2)
    kf, vf = k.float().transpose(1, 2), v.float().transpose(1, 2)
    out = torch.softmax((qf @ kf.transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1) @ vf
    return out.transpose(1, 2)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


# ---- cuDNN bf16 attention through the cudnn frontend (the fp8 one is the package's) ------------
class CudnnFrontendBf16:
    """One cuDNN bf16 SDPA graph per shape, built with the cudnn Python frontend (its own engine choice)."""

    def __init__(self):
        import cudnn

        self.cudnn = cudnn
        self.handle = cudnn.create_handle()
        self.graphs: dict = {}

    def _build(self, shape, strides, device):
        cudnn = self.cudnn
        b, s, h, d = shape
        dims = (b, h, s, d)
        st = (strides[0], strides[2], strides[1], strides[3])
        io = cudnn.data_type.BFLOAT16
        graph = cudnn.pygraph(io_data_type=io, intermediate_data_type=cudnn.data_type.FLOAT,
                              compute_data_type=cudnn.data_type.FLOAT, handle=self.handle)
        tq, tk, tv = (graph.tensor(name=n, dim=dims, stride=st, data_type=io) for n in ("q", "k", "v"))
        try:
            o, _ = graph.sdpa(q=tq, k=tk, v=tv, attn_scale=1.0 / math.sqrt(d), generate_stats=False)
        except TypeError:  # older frontends
            o, _ = graph.sdpa(q=tq, k=tk, v=tv, attn_scale=1.0 / math.sqrt(d), is_inference=True)
        o.set_output(True).set_dim(dims).set_stride(st).set_data_type(io)
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        ws = torch.empty(graph.get_workspace_size(), dtype=torch.uint8, device=device)
        return graph, (tq, tk, tv, o), ws

    def __call__(self, q, k, v):
        key = (tuple(q.shape), tuple(q.stride()))
        if key not in self.graphs:
            self.graphs[key] = self._build(tuple(q.shape), tuple(q.stride()), q.device)
        graph, (tq, tk, tv, to), ws = self.graphs[key]
        self.cudnn.set_stream(handle=self.handle, stream=torch.cuda.current_stream().cuda_stream)
        out = torch.empty_like(q)
        graph.execute({tq: q, tk: k, tv: v, to: out}, ws, handle=self.handle)
        return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--seqs", default="79200,32760")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--variants", default="torch_default,torch_cudnn,fa4_bf16,triton_bf16,triton_fp8,"
                                          "triton_fp8_kernel,cudnn_fe_fp8,cudnn_fe_bf16")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict = {"environment": {"torch": torch.__version__, "device": torch.cuda.get_device_name(),
                                    "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()},
                    "rows": [], "errors": []}
    try:
        import triton
        record["environment"]["triton"] = triton.__version__
    except Exception:
        pass
    for name in ("cudnn", "flash_attn.cute"):
        try:
            mod = __import__(name, fromlist=["x"])
            record["environment"][name] = getattr(mod, "__version__", "importable")
            if name == "cudnn":
                record["environment"]["cudnn_backend"] = mod.backend_version()
        except Exception as e:  # noqa: BLE001
            record["environment"][name] = f"not importable: {type(e).__name__}: {e}"[:300]
    log(json.dumps(record["environment"]))

    def save():
        (out_dir / "bench_attention.json").write_text(json.dumps(record, indent=1))

    from torch.nn.attention import SDPBackend, sdpa_kernel

    def torch_default(q, k, v):
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)

    def torch_cudnn(q, k, v):
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            return torch_default(q, k, v)

    def optional(label: str, module: str, name: str):
        """An optional package's function, or None with the import error recorded."""
        try:
            return getattr(__import__(module, fromlist=[name]), name)
        except Exception as e:  # noqa: BLE001
            record["errors"].append(f"{label} import: {e}"[:500])
            return None

    def first_output(fn):
        # FlashAttention 3/4 return (out, softmax_lse) in some versions, out in others
        def call(q, k, v):
            out = fn(q, k, v)
            return out[0] if isinstance(out, tuple) else out
        return call

    fa4 = optional("fa4", "flash_attn.cute", "flash_attn_func")
    fa3 = optional("fa3", "flash_attn_interface", "flash_attn_func")
    sage = optional("sage", "sageattention", "sageattn")
    fa4_bf16, fa3_bf16 = first_output(fa4), first_output(fa3)

    def sage2(q, k, v):
        return sage(q, k, v, tensor_layout="NHD", is_causal=False)

    cfe = {}

    def cudnn_fe_bf16(q, k, v):
        if "bf16" not in cfe:
            cfe["bf16"] = CudnnFrontendBf16()
        return cfe["bf16"](q, k, v)

    fns = {
        "torch_default": torch_default,
        "torch_cudnn": torch_cudnn,
        "fa4_bf16": fa4_bf16,
        "triton_bf16": lambda q, k, v: ta.triton_attention(q, k, v, fp8=False),
        "triton_fp8": lambda q, k, v: ta.triton_attention(q, k, v, fp8=True),
        "cudnn_fe_fp8": cudnn_fp8_attention,
        "cudnn_fe_bf16": cudnn_fe_bf16,
        "fa3_bf16": fa3_bf16,
        "sage2": sage2,
    }
    variants = args.variants.split(",")
    for s in (int(x) for x in args.seqs.split(",")):
        flops = 4.0 * s * s * 128 * 40
        for inputs in ("randn", "peaked"):
            g = torch.Generator(device="cuda").manual_seed(s)
            q, k, v = (torch.randn(1, s, 40, 128, device="cuda", dtype=torch.bfloat16, generator=g)
                       for _ in range(3))
            if inputs == "peaked":
                q, k = q * 3, k * 3
            ref_rows = reference_rows(q, k, v)
            base = torch_default(q, k, v)
            for name in variants:
                if inputs == "peaked" and name == "triton_fp8_kernel":
                    continue
                row = {"variant": name, "seq": s, "inputs": inputs}
                try:
                    if name == "fa4_bf16" and fa4 is None:
                        raise RuntimeError("flash_attn.cute not importable")
                    if name == "fa3_bf16" and fa3 is None:
                        raise RuntimeError("flash_attn_interface not importable")
                    if name == "sage2" and sage is None:
                        raise RuntimeError("sageattention not importable")
                    if name == "triton_fp8_kernel":
                        # The kernel on pre-quantized inputs: time the launch only.
                        q8, k8, vt8, qs, ks, vs = ta.quantize_qkv_fp8(q, k, v)
                        t0 = time.perf_counter()
                        ta.triton_attention(q, k, v, fp8=True)  # tune once
                        kern = ta._KERNEL
                        o = torch.empty_like(q)
                        import triton
                        grid = lambda meta: (triton.cdiv(s, meta["BLOCK_M"]), 40)  # noqa: E731
                        qk = ta._LOG2E / math.sqrt(128)

                        def fn():
                            kern[grid](q8, k8, vt8, o, qs, ks, vs, qk, q8.stride(0), q8.stride(1), q8.stride(2),
                                       k8.stride(0), k8.stride(1), k8.stride(2), vt8.stride(0), 1, vt8.stride(1),
                                       vt8.stride(2), o.stride(0), o.stride(1), o.stride(2), s, s,
                                       H=40, D=128, FP8=True)
                            return o
                    else:
                        fn_ = fns[name]
                        t0 = time.perf_counter()

                        def fn(fn_=fn_):
                            return fn_(q, k, v)
                    out = fn()
                    torch.cuda.synchronize()
                    row["first_call_s"] = round(time.perf_counter() - t0, 3)
                    times = event_times(fn, args.repeat)
                    med = sorted(times)[len(times) // 2]
                    out = fn()
                    row.update(ms=round(med * 1e3, 3), tflops=round(flops / med / 1e12, 1),
                               spread=round((max(times) - min(times)) / med, 4),
                               rel_l2_vs_fp32=rel(out[:, :256], ref_rows),
                               rel_l2_vs_default=rel(out, base),
                               max_abs_vs_default=float((out.float() - base.float()).abs().max()))
                    if name.startswith("triton") and ta._KERNEL is not None:
                        best = getattr(ta._KERNEL, "best_config", None)
                        row["triton_config"] = str(best)
                    log(json.dumps(row))
                except Exception as e:  # noqa: BLE001
                    row["error"] = f"{type(e).__name__}: {e}"[:800]
                    log(f"{name} S={s} {inputs}: FAILED {row['error']}")
                    traceback.print_exc()
                record["rows"].append(row)
                save()
            del q, k, v, base
            torch.cuda.empty_cache()
    # The Triton kernel against its own float32 emulation (same quantization and P rounding).
    try:
        g = torch.Generator(device="cuda").manual_seed(7)
        q, k, v = (torch.randn(2, 1000, 4, 128, device="cuda", dtype=torch.bfloat16, generator=g) * 2
                   for _ in range(3))
        for fp8 in (False, True):
            got = ta.triton_attention(q, k, v, fp8=fp8)
            want = ta.attention_reference(q, k, v, fp8=fp8)
            record.setdefault("kernel_vs_emulation", []).append(
                {"fp8": fp8, "rel_l2": rel(got, want), "max_abs": float((got.float() - want.float()).abs().max())})
        log(json.dumps(record["kernel_vs_emulation"]))
    except Exception as e:  # noqa: BLE001
        record["errors"].append(f"kernel_vs_emulation: {e}"[:500])
        traceback.print_exc()
    save()
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
