"""Flash attention written in Triton, in bf16 and in fp8 (e4m3) with a bf16 output, for Hopper GPUs.

Why a kernel of our own: the GPU image has no FlashAttention 3, and PyTorch's SDPA takes no fp8
inputs. cuDNN's fp8 attention on Hopper writes its output in fp8 too (one more e4m3 rounding on
every output element, before the out-projection). This kernel reads fp8 Q, K and V and keeps
everything after the two matrix products in float32 until the bf16 output.

The function is the ordinary softmax attention without mask, ``softmax(q k^T / sqrt(d)) v``, on
``[B, S, H, D]`` tensors (the layout of the S2V blocks), computed block by block with the online
softmax (running row maximum ``m`` and sum ``l``, in base 2):

* **bf16** (``fp8=False``): Q, K, V as given; both products in bf16 with float32 accumulation.
* **fp8** (``fp8=True``): :func:`quantize_qkv_fp8` scales Q, K and V **per (batch, head)** so that
  their largest magnitude maps to 448 and rounds them to e4m3; V is stored transposed
  (``[B, H, D, S]``) because Hopper's fp8 matrix instruction wants both operands K-major. The
  probabilities ``p = 2^(s - m)`` (in ``(0, 1]``) are multiplied by :data:`P_SCALE` = 256 before
  their e4m3 rounding, so that small probabilities keep their mantissa bits; the row sum ``l`` is
  taken over the float32 ``p``, before rounding. The output is
  ``acc * v_scale / (256 * l)`` in bf16.

:func:`attention_reference` computes the same arithmetic (the same quantization, the same
rounding of P) in float32 with PyTorch, on any device: the CPU tests check the quantization and the
reference against exact attention, and the GPU tests check the Triton kernel against the reference.
"""

from __future__ import annotations

import math

import torch

__all__ = ["P_SCALE", "FP8_MAX", "triton_available", "quantize_qkv_fp8", "attention_reference",
           "triton_attention"]

FP8_MAX = 448.0
#: Scale of the softmax probabilities before their e4m3 rounding (a power of two: exact).
P_SCALE = 256.0
_LOG2E = 1.4426950408889634
_MIN_AMAX = 1e-12


def triton_available(device: torch.device | None = None) -> bool:
    """True when Triton imports and ``device`` (default: the current CUDA device) is a CUDA GPU of
    compute capability >= 9.0 (the fp8 path needs Hopper's e4m3 matrix instructions; the bf16 path
    is only tuned there)."""
    from s2v_toolkit.models.attention import hopper_gpu_with

    return hopper_gpu_with("triton", device)


def _head_scales(x: torch.Tensor) -> torch.Tensor:
    """float32 ``[B, H]``: max |x| over sequence and head dim, divided by 448."""
    return x.abs().amax(dim=(1, 3)).float().clamp(min=_MIN_AMAX) / FP8_MAX


def quantize_qkv_fp8(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """Per-(batch, head) e4m3 quantization of ``[B, S, H, D]`` inputs.

    Returns ``(q8, k8, vt8, q_scale, k_scale, v_scale)``: ``q8``/``k8`` ``[B, S, H, D]`` e4m3,
    ``vt8`` ``[B, H, D, Sk]`` e4m3 (V transposed, contiguous), scales float32 ``[B, H]`` with
    ``x ~= x8.float() * scale``.
    """
    out = []
    for x in (q, k, v):
        scale = _head_scales(x)
        x8 = (x.float() / scale[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
        out.append((x8, scale))
    (q8, qs), (k8, ks), (v8, vs) = out
    vt8 = v8.permute(0, 2, 3, 1).contiguous()
    return q8, k8, vt8, qs, ks, vs


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fp8: bool = False,
                        block_n: int = 128) -> torch.Tensor:
    """The kernel's arithmetic in float32 PyTorch (``[B, S, H, D]`` in, ``q``'s dtype out).

    ``fp8=False`` is exact attention in float32. ``fp8=True`` quantizes Q, K, V as
    :func:`quantize_qkv_fp8` does and rounds the probabilities to e4m3 the way the kernel does:
    ``p = 2^(s - m_j)`` with the running maximum ``m_j`` after key block ``j`` (blocks of
    ``block_n`` keys), rescaled by ``2^(m_j - m_final)`` afterwards, which is exact in float32.
    """
    b, sq, h, d = q.shape
    scale = 1.0 / math.sqrt(d)
    if not fp8:
        qf, kf, vf = (x.float().transpose(1, 2) for x in (q, k, v))
        attn = torch.softmax((qf @ kf.transpose(-1, -2)) * scale, dim=-1)
        return (attn @ vf).transpose(1, 2).to(q.dtype)
    q8, k8, vt8, qs, ks, vs = quantize_qkv_fp8(q, k, v)
    qf = q8.float().transpose(1, 2)                      # [B, H, S, D], in units of qs
    kf = k8.float().transpose(1, 2)
    vf = vt8.float().transpose(-1, -2)                   # [B, H, Sk, D], in units of vs
    s2 = (qf @ kf.transpose(-1, -2)) * (qs * ks * scale * _LOG2E)[:, :, None, None]  # base-2 logits
    sk = s2.shape[-1]
    m = torch.full(s2.shape[:-1], -math.inf, device=s2.device)
    acc = torch.zeros(*s2.shape[:-1], d, device=s2.device)
    l_sum = torch.zeros(s2.shape[:-1], device=s2.device)
    for start in range(0, sk, block_n):
        sj = s2[..., start:start + block_n]
        m_new = torch.maximum(m, sj.amax(dim=-1))
        alpha = torch.exp2(m - m_new)
        p = torch.exp2(sj - m_new[..., None])
        l_sum = l_sum * alpha + p.sum(dim=-1)
        p8 = (p * P_SCALE).to(torch.float8_e4m3fn).float()
        acc = acc * alpha[..., None] + p8 @ vf[..., start:start + block_n, :]
        m = m_new
    out = acc * vs[:, :, None, None] / (P_SCALE * l_sum[..., None])
    return out.transpose(1, 2).to(q.dtype)


# ----------------------------------------------------------------------------------------------
# The Triton kernel (compiled lazily: importing this module needs no Triton)
# ----------------------------------------------------------------------------------------------
_KERNEL = None
_QUANTIZE = None


def _quantizer():
    """:func:`quantize_qkv_fp8` compiled into a few fused kernels (eager where compiling fails)."""
    global _QUANTIZE
    if _QUANTIZE is None:
        try:
            _QUANTIZE = torch.compile(quantize_qkv_fp8, dynamic=False)
        except Exception:  # no working compiler here: eager is the same arithmetic
            _QUANTIZE = quantize_qkv_fp8
    return _QUANTIZE


def _configs():
    import triton

    configs = []
    # Measured on an H100 (bench/bench_attention.py): bf16 at S = 32,760 and 79,200 picks 128/128/8/3;
    # e4m3 picks 64/128/4/3 at 79,200 and 128/128/8/3 at 32,760.
    for block_m, block_n, warps, stages in ((128, 128, 8, 3), (128, 64, 8, 3), (128, 128, 8, 2),
                                             (128, 64, 4, 3), (128, 128, 4, 3), (64, 128, 4, 3),
                                             (128, 64, 8, 4), (128, 128, 8, 4), (128, 256, 8, 2),
                                             (64, 128, 4, 4), (64, 64, 4, 4)):
        configs.append(triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps,
                                     num_stages=stages))
    return configs


def _build_kernel():
    import triton
    import triton.language as tl

    @triton.autotune(configs=_configs(), key=["S_Q", "S_K", "H", "FP8"])
    @triton.jit
    def _attn_fwd(Q, K, V, O, QS, KS, VS, qk_scale,
                  s_qb, s_qs, s_qh, s_kb, s_ks, s_kh, s_vb, s_vs, s_vh, s_vd, s_ob, s_os, s_oh,
                  S_Q, S_K, H: tl.constexpr, D: tl.constexpr, FP8: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = pid_bh // H
        h = pid_bh % H
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, D)
        q = tl.load(Q + b * s_qb + h * s_qh + offs_m[:, None] * s_qs + offs_d[None, :],
                    mask=offs_m[:, None] < S_Q, other=0.0)
        scale = qk_scale
        if FP8:
            scale = scale * tl.load(QS + pid_bh) * tl.load(KS + pid_bh)
        k_base = K + b * s_kb + h * s_kh + offs_d[:, None]            # K^T tile [D, BLOCK_N]
        v_base = V + b * s_vb + h * s_vh
        m_i = tl.full([BLOCK_M], -float("inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, D], tl.float32)
        full_end = S_K - S_K % BLOCK_N
        # Full key blocks: no masks, so the loads pipeline.
        for start in range(0, full_end, BLOCK_N):
            k = tl.load(k_base + (start + offs_n)[None, :] * s_ks)
            s = tl.dot(q, k) * scale
            m_new = tl.maximum(m_i, tl.max(s, 1))
            p = tl.exp2(s - m_new[:, None])
            alpha = tl.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            v = tl.load(v_base + (start + offs_n)[:, None] * s_vs + offs_d[None, :] * s_vd)
            if FP8:
                acc = tl.dot((p * 256.0).to(tl.float8e4nv), v, acc)
            else:
                acc = tl.dot(p.to(v.dtype), v, acc)
            m_i = m_new
        # The last, partial key block.
        if full_end < S_K:
            keys = full_end + offs_n
            k = tl.load(k_base + keys[None, :] * s_ks, mask=keys[None, :] < S_K, other=0.0)
            s = tl.dot(q, k) * scale
            s = tl.where(keys[None, :] < S_K, s, -float("inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            p = tl.exp2(s - m_new[:, None])
            alpha = tl.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            v = tl.load(v_base + keys[:, None] * s_vs + offs_d[None, :] * s_vd,
                        mask=keys[:, None] < S_K, other=0.0)
            if FP8:
                acc = tl.dot((p * 256.0).to(tl.float8e4nv), v, acc)
            else:
                acc = tl.dot(p.to(v.dtype), v, acc)
            m_i = m_new
        if FP8:
            acc = acc * (tl.load(VS + pid_bh) / 256.0)
        out = acc / l_i[:, None]
        tl.store(O + b * s_ob + h * s_oh + offs_m[:, None] * s_os + offs_d[None, :],
                 out.to(O.dtype.element_ty), mask=offs_m[:, None] < S_Q)

    return _attn_fwd


def triton_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fp8: bool = False) -> torch.Tensor:
    """Attention of ``[B, S, H, D]`` CUDA tensors (bf16/fp16) with the Triton kernel; ``q``'s dtype out.

    ``fp8=True`` runs the e4m3 kernel (inputs quantized here, per batch and head). Head dim must be
    a power of two between 16 and 256 (128 for the S2V model).
    """
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _build_kernel()
    import triton

    b, s_q, h, d = q.shape
    s_k = k.shape[1]
    if d & (d - 1) or not 16 <= d <= 256:
        raise ValueError(f"triton_attention: head dim {d} must be a power of two in 16..256")
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty(b, s_q, h, d, device=q.device, dtype=q.dtype)
    qk_scale = _LOG2E / math.sqrt(d)
    if fp8:
        try:
            q_in, k_in, vt, qs, ks, vs = _quantizer()(q, k, v)
        except Exception:  # a compile failure at first call: fall back to the eager quantization
            global _QUANTIZE
            _QUANTIZE = quantize_qkv_fp8
            q_in, k_in, vt, qs, ks, vs = quantize_qkv_fp8(q, k, v)
        # vt is [B, H, D, Sk]: the kernel's V tile [BLOCK_N, D] reads it with key stride 1.
        v_strides = (vt.stride(0), 1, vt.stride(1), vt.stride(2))
        v_in = vt
    else:
        q_in, k_in, v_in = q, k, v
        qs = ks = vs = torch.ones(b, h, device=q.device, dtype=torch.float32)
        v_strides = (v.stride(0), v.stride(1), v.stride(2), 1)
    grid = lambda meta: (triton.cdiv(s_q, meta["BLOCK_M"]), b * h)  # noqa: E731
    _KERNEL[grid](q_in, k_in, v_in, out, qs, ks, vs, qk_scale,
                  q_in.stride(0), q_in.stride(1), q_in.stride(2),
                  k_in.stride(0), k_in.stride(1), k_in.stride(2),
                  v_strides[0], v_strides[1], v_strides[2], v_strides[3],
                  out.stride(0), out.stride(1), out.stride(2),
                  s_q, s_k, H=h, D=d, FP8=fp8)
    return out
