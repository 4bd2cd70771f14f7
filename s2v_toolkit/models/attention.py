"""Attention backend: the one place where the models compute softmax(q k^T / sqrt(d)) v.

Both self- and cross-attention (text and audio) of the S2V transformer call :func:`attention`, so a
faster kernel (FlashAttention 2/3, Sage, fp8) only has to be plugged in here.

Backends:
- ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention`` with PyTorch's own kernel choice
  (on a CUDA GPU with bf16/fp16 inputs its FlashAttention-2 kernel). The reference path.
- ``"cudnn"``: the same SDPA call with cuDNN's fused attention put first (PyTorch's flash, efficient
  and math kernels follow, for shapes cuDNN refuses). On Hopper (H100/H200) cuDNN's kernel uses the
  chip's own matrix instructions and is markedly faster than the FlashAttention-2 kernel
  (docs/performance.md has the numbers); it computes the same function (bf16 rounding differs).
- ``"flash"``: the ``flash_attn_interface`` (FlashAttention 3) or ``flash_attn`` (FlashAttention 2)
  package.
- ``"fp8"``: approximate. Our Triton kernel (:mod:`.triton_attention`) with Q, K, V and the softmax
  probabilities in e4m3 and a bf16 output, on a CUDA GPU of compute capability >= 9; elsewhere (the
  CPU tests, older GPUs) the same arithmetic emulated in float32 by
  :func:`~.triton_attention.attention_reference`, so results match the GPU kernel to float32
  rounding. Opt-in only (``auto`` never picks it); its error is measured in docs/performance.md.
- ``"cudnn-fp8"``: approximate. cuDNN's fp8 attention through the optional ``cudnn`` Python frontend
  (:mod:`.cudnn_fp8_attention`; per-tensor scales, e4m3 output on Hopper). GPU only; faster than
  ``fp8``. Opt-in only.
- ``"sage"``: approximate. SageAttention 2 (``sageattention.sageattn``: Q and K in int8 per block/warp
  with K's mean removed, P and V in fp8 with fp32 accumulation on Hopper) when that package is
  importable (``scripts/build_hopper_attention.sh`` builds its sm90 kernel). GPU only; opt-in only;
  its speed and error are measured in docs/performance.md.

The fp8 backends and ``sage`` apply to self-attention only (at least :data:`FP8_MIN_KEYS` keys): the
cross-attention to the 512 text rows and the audio injector's few keys are a small share of the
work and stay on the exact path.

``"auto"`` (default) takes ``flash`` when that package is importable and the tensors are half precision
on a CUDA device; else ``cudnn`` on a Hopper-or-newer GPU with half precision; else ``sdpa``.
Attention to very short key sequences (the audio injector's 5 tokens per frame) always uses
plain SDPA: it is memory-bound and negligible, and not worth a cuDNN graph per shape.

The environment variable ``S2V_ATTENTION`` (``auto`` | ``sdpa`` | ``cudnn`` | ``flash`` | ``fp8`` |
``cudnn-fp8`` | ``sage``) or
:func:`set_attention_backend` overrides the choice. No masks are needed by the S2V model: all
sequences in a batch have the same length and every position takes part (the text is zero-padded
to 512 rows and the official model attends to the padding too).
"""

from __future__ import annotations

import os
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["attention", "set_attention_backend", "get_attention_backend", "attention_backend_for"]

_BACKENDS = ("auto", "sdpa", "cudnn", "flash", "fp8", "cudnn-fp8", "sage")
#: Backends that approximate attention (self-attention only; text and audio keys take the exact path).
_APPROXIMATE = ("fp8", "cudnn-fp8", "sage")
#: Below this many keys the cuDNN path is not used (see the module docstring).
CUDNN_MIN_KEYS = 64
#: The fp8 backends run attention over at least this many keys (self-attention); fewer keys
#: (text cross-attention, audio) take the exact path.
FP8_MIN_KEYS = 2048
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
_sage_fn: Callable | None = None
_sage_probed = False


def _sage() -> Callable | None:
    """``sageattention.sageattn`` when the package imports (built for this torch/CUDA), else None."""
    global _sage_fn, _sage_probed
    if not _sage_probed:
        try:
            from sageattention import sageattn
        except Exception:  # not installed, or built for another torch/CUDA
            sageattn = None
        _sage_fn, _sage_probed = sageattn, True
    return _sage_fn


def _flash() -> Callable | None:
    global _flash_fn, _flash_probed
    if not _flash_probed:
        _flash_fn = _load_flash()
        _flash_probed = True
    return _flash_fn


def get_attention_backend() -> str:
    """The backend setting (``"auto"``, ``"sdpa"``, ``"cudnn"``, ``"flash"``, ``"fp8"`` or ``"cudnn-fp8"``)."""
    return _backend


def hopper_gpu_with(package: str, device: torch.device | None = None) -> bool:
    """True when ``package`` imports and ``device`` (default: the current CUDA device) is a CUDA GPU
    of compute capability >= 9.0 (Hopper or newer): the condition of the fp8 attention kernels."""
    if not torch.cuda.is_available():
        return False
    try:
        __import__(package)
    except Exception:  # not installed, or built for another CUDA/torch
        return False
    device = device or torch.device("cuda", torch.cuda.current_device())
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


def _cudnn_preferred(device: torch.device) -> bool:
    """True on a CUDA device of compute capability 9.0 or newer with cuDNN attention in this torch."""
    if device.type != "cuda" or not hasattr(torch.backends.cuda, "cudnn_sdp_enabled"):
        return False
    if not torch.backends.cudnn.is_available():
        return False
    return torch.cuda.get_device_capability(device)[0] >= 9


def set_attention_backend(name: str) -> None:
    """Select ``"auto"``, ``"sdpa"``, ``"cudnn"``, ``"flash"``, ``"fp8"``, ``"cudnn-fp8"`` or ``"sage"`` for all
    later calls."""
    name = name.lower()
    if name not in _BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose one of {_BACKENDS}")
    if name == "flash" and _flash() is None:
        raise ValueError("attention backend 'flash' asked for, but flash_attn is not importable")
    if name == "sage" and (_sage() is None or not torch.cuda.is_available()):
        raise ValueError("attention backend 'sage' needs a CUDA GPU and the sageattention package "
                         "(SageAttention 2; scripts/build_hopper_attention.sh builds it for Hopper)")
    if name == "cudnn-fp8":
        from s2v_toolkit.models.cudnn_fp8_attention import cudnn_fp8_available

        if not cudnn_fp8_available():
            raise ValueError("attention backend 'cudnn-fp8' needs a CUDA GPU of compute capability >= 9 and "
                             "the nvidia-cudnn-frontend package (pip install nvidia-cudnn-frontend)")
    global _backend
    _backend = name


def attention_backend_for(q: torch.Tensor) -> str:
    """The backend :func:`attention` will use for a query like ``q``."""
    half = q.dtype in (torch.float16, torch.bfloat16)
    if _backend in _APPROXIMATE:
        return _backend
    if _backend == "flash" or (_backend == "auto" and q.is_cuda and half and _flash() is not None):
        return "flash"
    if _backend == "cudnn" or (_backend == "auto" and half and _cudnn_preferred(q.device)):
        return "cudnn"
    return "sdpa"


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Multi-head attention without mask.

    Args:
        q: ``[B, Sq, heads, head_dim]``.
        k, v: ``[B, Sk, heads, head_dim]``, same dtype as ``q``.

    Returns ``[B, Sq, heads, head_dim]`` in ``q``'s dtype. Scale is ``1/sqrt(head_dim)``.
    """
    backend = attention_backend_for(q)
    if backend in _APPROXIMATE:
        sage = backend == "sage" and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and _sage() is not None
        if k.shape[1] >= FP8_MIN_KEYS and (backend != "sage" or sage):
            if sage:
                return _sage()(q, k, v, tensor_layout="NHD", is_causal=False)
            if backend == "cudnn-fp8":
                from s2v_toolkit.models.cudnn_fp8_attention import cudnn_fp8_attention

                return cudnn_fp8_attention(q, k, v)
            from s2v_toolkit.models import triton_attention

            if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and triton_attention.triton_available(q.device):
                return triton_attention.triton_attention(q, k, v, fp8=True)
            return triton_attention.attention_reference(q, k, v, fp8=True)
        # Text or audio keys (or 'sage' where SageAttention cannot run: CPU, float32): the exact path (cuDNN on Hopper with half precision, else SDPA).
        backend = "cudnn" if q.dtype in (torch.float16, torch.bfloat16) and _cudnn_preferred(q.device) else "sdpa"
    if backend == "flash":
        out = _flash()(q, k, v)
        # FlashAttention 3 returns (out, softmax_lse); FlashAttention 2 returns out.
        return out[0] if isinstance(out, tuple) else out
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if backend == "cudnn" and q.is_cuda and k.shape[1] >= CUDNN_MIN_KEYS:
        with sdpa_kernel(_CUDNN_FIRST, set_priority=True):
            out = F.scaled_dot_product_attention(qt, kt, vt)
    else:
        out = F.scaled_dot_product_attention(qt, kt, vt)
    return out.transpose(1, 2)


# cuDNN first; the others (PyTorch's default order) for shapes or dtypes cuDNN does not take.
_CUDNN_FIRST = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
