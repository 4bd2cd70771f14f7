"""Fused elementwise work of the S2V transformer blocks (an exact-arithmetic fast path for inference).

Between its matrix products a :class:`~s2v_toolkit.models.s2v_transformer.S2VBlock` does a lot of
elementwise float32 work on the whole ``[B, S, 5120]`` sequence: LayerNorm, per-segment modulation,
casts, RMS qk-norm, RoPE, gating and residual adds. Written as separate PyTorch operations each one
reads and writes the full tensor (at 704x1280, 79,200 tokens: 1.6 GB per float32 pass, some 100 GB
of memory traffic per block). Here those chains are written as a few pure tensor functions that
``torch.compile`` turns into one kernel each:

* :func:`modulated_norm`: LayerNorm (float32) -> per-segment ``* (1 + scale) + shift`` -> bf16;
* :func:`affine_norm`: the cross-attention LayerNorm with weight and bias -> bf16;
* :func:`qk_norm_rope`: RMS norm of a q/k projection -> times its weight -> RoPE -> bf16 heads;
* :func:`gated_residual`: ``x + y * gate`` per segment, float32.

They compute the same function as the module code, in float32 as the module does; the only
differences are the order of the reductions inside a LayerNorm and where an intermediate bf16
rounding of the plain path is skipped (Inductor keeps some intermediates in float32), both far below
bf16 resolution of the result. (The FFN's tanh-GELU stays a separate pass: moving it into the
matrix product's cuBLASLt epilogue was measured slower on an H100, 17.0 ms against 16.1 ms for the
79,200-token product plus GELU; docs/performance.md.)

Use :func:`enable_fused_blocks` on a model for inference (``requires_grad`` off) and
:func:`disable_fused_blocks` to go back. It replaces each block's ``forward`` on the instance, so
the model class, its weights and its ``state_dict`` are untouched. With ``compile=False`` the same
fused code runs eagerly (what the CPU tests check against the plain blocks).
"""

from __future__ import annotations

import types
from typing import Callable

import torch
import torch.nn.functional as F

from s2v_toolkit.models.attention import attention

__all__ = ["modulated_norm", "affine_norm", "qk_norm_rope", "gated_residual",
           "enable_fused_blocks", "disable_fused_blocks", "fused_blocks_enabled"]


def _segment_rows(values: torch.Tensor, seq_len: int, n_noisy: int) -> torch.Tensor:
    """``[B, 2, D]`` -> ``[B, S, D]`` view-like selection: row 0 for noisy tokens, row 1 after."""
    is_cond = (torch.arange(seq_len, device=values.device) >= n_noisy)[None, :, None]
    return torch.where(is_cond, values[:, 1:2], values[:, 0:1])


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, n_noisy: int,
                   eps: float, out_dtype: torch.dtype) -> torch.Tensor:
    """``LN(x) * (1 + scale) + shift`` per segment (shift/scale ``[B, 2, D]`` float32) in ``out_dtype``.

    As the plain block: the non-affine LayerNorm is rounded to x's dtype before the modulation.
    """
    h = F.layer_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype).float()
    s = x.shape[1]
    h = h * (1 + _segment_rows(scale, s, n_noisy)) + _segment_rows(shift, s, n_noisy)
    return h.to(out_dtype)


def affine_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                out_dtype: torch.dtype) -> torch.Tensor:
    """Affine LayerNorm in float32, rounded to x's dtype (as the plain block), returned in ``out_dtype``."""
    h = F.layer_norm(x.float(), (x.shape[-1],), weight.float(), bias.float(), eps).to(x.dtype)
    return h.to(out_dtype)


def qk_norm_rope(x: torch.Tensor, weight: torch.Tensor, eps: float, num_heads: int,
                 cos: torch.Tensor | None, sin: torch.Tensor | None) -> torch.Tensor:
    """RMS norm of a projection ``[B, S, D]`` (float32, rounded to x's dtype, times ``weight``), split
    into heads ``[B, S, heads, head_dim]``, rotated by RoPE when ``cos``/``sin`` are given."""
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)).to(x.dtype) * weight
    heads = normed.unflatten(-1, (num_heads, -1))
    if cos is None:
        return heads
    pairs = heads.float().unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    return torch.stack([real * c - imag * s, real * s + imag * c], dim=-1).flatten(-2).to(x.dtype)


def gated_residual(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, n_noisy: int) -> torch.Tensor:
    """``x + y * gate`` per segment (gate ``[B, 2, D]``), float32."""
    return x + y.float() * _segment_rows(gate, x.shape[1], n_noisy)


# ----------------------------------------------------------------------------------------------
# The fused block forward
# ----------------------------------------------------------------------------------------------
class _Kernels:
    """The four elementwise functions, compiled (one Inductor kernel each) or eager."""

    def __init__(self, compile: bool):
        wrap: Callable[[Callable], Callable]
        if compile:
            import torch._dynamo

            # One compiled variant per sequence shape and input dtype (block 0 gets bf16, the others
            # float32), shared by all 40 blocks: a few per size, more than the default limit over a run.
            for name in ("recompile_limit", "cache_size_limit"):
                if hasattr(torch._dynamo.config, name):
                    setattr(torch._dynamo.config, name, max(getattr(torch._dynamo.config, name), 64))
            wrap = lambda fn: torch.compile(fn, dynamic=False, fullgraph=True)  # noqa: E731
        else:
            wrap = lambda fn: fn  # noqa: E731
        self.modulated_norm = wrap(modulated_norm)
        self.affine_norm = wrap(affine_norm)
        self.qk_norm_rope = wrap(qk_norm_rope)
        self.gated_residual = wrap(gated_residual)


def _linear(layer, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x.to(layer.weight.dtype), layer.weight, layer.bias)


def _attention_fused(attn, kernels: _Kernels, x: torch.Tensor, context: torch.Tensor | None,
                     rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """MultiHeadAttention.forward with the qk-norm (+ RoPE) fused."""
    source = x if context is None else context
    cos, sin = rope if rope is not None else (None, None)
    q = kernels.qk_norm_rope(_linear(attn.q, x), attn.norm_q.weight, attn.norm_q.eps, attn.num_heads, cos, sin)
    if context is None:
        k = kernels.qk_norm_rope(_linear(attn.k, source), attn.norm_k.weight, attn.norm_k.eps,
                                 attn.num_heads, cos, sin)
    else:  # text context: 512 rows, not worth a compiled kernel per shape
        k = attn.norm_k(_linear(attn.k, source)).unflatten(-1, (attn.num_heads, -1))
    v = _linear(attn.v, source).unflatten(-1, (attn.num_heads, -1))
    return _linear(attn.o, attention(q, k, v).flatten(2))


def _fused_block_forward(self, x: torch.Tensor, e0: torch.Tensor, n_noisy: int,
                         rope: tuple[torch.Tensor, torch.Tensor], context: torch.Tensor) -> torch.Tensor:
    """S2VBlock.forward with the elementwise chains fused (same arguments and result)."""
    if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
        return type(self).forward(self, x, e0, n_noisy, rope, context)  # training: the plain path
    k: _Kernels = self._fused_kernels
    dtype = self.ffn[0].weight.dtype
    shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = (
        self.modulation.float().unsqueeze(2) + e0).unbind(1)

    h = k.modulated_norm(x, shift_sa, scale_sa, n_noisy, self.eps, dtype)
    x = k.gated_residual(x, _attention_fused(self.self_attn, k, h, None, rope), gate_sa, n_noisy)

    normed = k.affine_norm(x, self.norm3.weight, self.norm3.bias, self.eps, dtype)
    x = x + _attention_fused(self.cross_attn, k, normed, context, None)

    h = k.modulated_norm(x, shift_ff, scale_ff, n_noisy, self.eps, dtype)
    y = _linear(self.ffn[2], self.ffn[1](_linear(self.ffn[0], h)))
    return k.gated_residual(x, y, gate_ff, n_noisy)


def enable_fused_blocks(model: torch.nn.Module, compile: bool = True) -> torch.nn.Module:
    """Switch every transformer block of ``model`` to the fused forward (in place; returns ``model``).

    ``compile=True`` compiles the four elementwise functions with ``torch.compile`` (once per
    sequence shape, shared by all blocks; the first forward at a new size pays the compile time).
    """
    kernels = _Kernels(compile)
    for block in model.blocks:
        block._fused_kernels = kernels
        block.forward = types.MethodType(_fused_block_forward, block)
    return model


def disable_fused_blocks(model: torch.nn.Module) -> torch.nn.Module:
    """Back to the plain block forward."""
    for block in model.blocks:
        block.__dict__.pop("forward", None)
        block.__dict__.pop("_fused_kernels", None)
    return model


def fused_blocks_enabled(model: torch.nn.Module) -> bool:
    return all("forward" in block.__dict__ for block in model.blocks)
