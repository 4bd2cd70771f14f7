"""Attention backend: the one place where the models compute softmax(q k^T / sqrt(d)) v.

Both self- and cross-attention (text and audio) of the S2V transformer call :func:`attention`, so a
faster kernel (FlashAttention 2/3, Sage, fp8) only has to be plugged in here.

Backends:
- ``"sdpa"`` (default): ``torch.nn.functional.scaled_dot_product_attention``. On a CUDA GPU with
  bf16/fp16 inputs PyTorch itself dispatches to its fused flash / memory-efficient kernels.
- ``"flash"``: the ``flash_attn_interface`` (FlashAttention 3) or ``flash_attn`` (FlashAttention 2)
  package, used automatically when importable, the tensors are on a CUDA device and half precision.

The environment variable ``S2V_ATTENTION`` (``auto`` | ``sdpa`` | ``flash``) or
:func:`set_attention_backend` overrides the choice. No masks are needed by the S2V model: all
sequences in a batch have the same length and every position takes part (the text is zero-padded
to 512 rows and the official model attends to the padding too).
"""

from __future__ import annotations

import os
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["attention", "set_attention_backend", "attention_backend_for"]

_BACKENDS = ("auto", "sdpa", "flash")
_backend: str = os.environ.get("S2V_ATTENTION", "auto").lower()


def _load_flash() -> Callable | None:
    for module_name in ("flash_attn_interface", "flash_attn"):
        try:
            module = __import__(module_name)
        except Exception:  # not installed, or built for another torch/CUDA: fall back silently
            continue
        fn = getattr(module, "flash_attn_func", None)
        if fn is not None:
            return fn
    return None


_flash_fn: Callable | None = None
_flash_probed = False


def _flash() -> Callable | None:
    global _flash_fn, _flash_probed
    if not _flash_probed:
        _flash_fn = _load_flash()
        _flash_probed = True
    return _flash_fn


def set_attention_backend(name: str) -> None:
    """Select ``"auto"``, ``"sdpa"`` or ``"flash"`` for all later calls."""
    name = name.lower()
    if name not in _BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {_BACKENDS}")
    if name == "flash" and _flash() is None:
        raise ValueError("attention backend 'flash' asked for, but flash_attn is not importable")
    global _backend
    _backend = name


def attention_backend_for(q: torch.Tensor) -> str:
    """The backend :func:`attention` will use for a query like ``q``."""
    half = q.dtype in (torch.float16, torch.bfloat16)
    if _backend == "flash" or (_backend == "auto" and q.is_cuda and half and _flash() is not None):
        return "flash"
    return "sdpa"


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Multi-head attention without mask.

    Args:
        q: ``[B, Sq, heads, head_dim]``.
        k, v: ``[B, Sk, heads, head_dim]``, same dtype as ``q``.

    Returns ``[B, Sq, heads, head_dim]`` in ``q``'s dtype. Scale is ``1/sqrt(head_dim)``.
    """
    if attention_backend_for(q) == "flash":
        out = _flash()(q, k, v)
        # FlashAttention 3 returns (out, softmax_lse); FlashAttention 2 returns out.
        return out[0] if isinstance(out, tuple) else out
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)
