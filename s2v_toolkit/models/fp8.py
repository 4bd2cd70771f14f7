"""fp8 (e4m3) linear layers for the S2V transformer's blocks: an approximate fast path for Hopper.

What changes: the big matrix products of every transformer block (self-attention q/k/v/o,
cross-attention q/o, the two FFN layers by default) run as fp8 x fp8 products with float32
accumulation (``torch._scaled_mm`` on a GPU of compute capability >= 8.9) instead of bf16 x bf16:

* weights: quantized once, **per output channel**: ``scale_w[o] = max|W[o, :]| / 448`` and
  ``W_q = round_e4m3(W / scale_w)``, stored as ``float8_e4m3fn`` (half the bytes of bf16);
* activations: quantized on the fly **per token** (one scale per row of the ``[tokens, in]`` input,
  the same rule), or per tensor where the GPU's PyTorch lacks row-wise scaled products;
* the product ``(x_q * scale_x) @ (W_q * scale_w)^T + bias`` comes back in the model's dtype (bf16).

Everything else (attention, norms, modulation, the embeddings, the audio parts, the head) stays as
it was. The result is not exact: e4m3 keeps 3 mantissa bits, so each quantized element carries up
to 2^-4 relative rounding error; docs/performance.md has the measured output error against bf16.

Use :func:`enable_fp8_linears` **after** the weights are loaded (the bf16 model's ``state_dict``
is the one checkpoints match; the converted layers hold ``weight_fp8``/``weight_scale`` buffers
instead of ``weight``). It swaps each chosen ``nn.Linear`` for an :class:`Fp8Linear` in place.

How the swap reaches the model code unchanged: the blocks (plain and fused) call
``F.linear(x.to(layer.weight.dtype), layer.weight, layer.bias)``. :class:`Fp8Linear`'s ``weight``
is a small tensor-like object (:class:`Fp8Weight`) whose ``dtype`` is the compute dtype and which
implements PyTorch's ``__torch_function__`` protocol: ``F.linear`` with it as the weight runs
:func:`fp8_linear`. Any other torch function given it sees the dequantized weight.

Without a GPU (or with ``backend="emulate"``) :func:`fp8_linear` emulates the same arithmetic in
float32 (quantize, dequantize, matmul), which is what the CPU tests check.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FP8_DTYPE", "FP8_MAX", "DEFAULT_FP8_LAYERS", "quantize_rowwise", "quantize_tensorwise",
           "dequantize", "fp8_linear", "fp8_linear_reference", "fp8_gemm_support", "Fp8Weight",
           "Fp8Linear", "enable_fp8_linears", "fp8_linears_enabled", "FP8_LINEARS_NO_OUT", "FP8_MODES",
           "fp8_attention_backend", "apply_fp8_mode"]

FP8_DTYPE = torch.float8_e4m3fn
#: Largest finite e4m3fn value.
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
#: Scales never go below this (an all-zero row quantizes to zeros, not NaN).
_MIN_AMAX = 1e-12

#: Layers converted by default (patterns over module names inside the model). The cross-attention's
#: k/v act on the 512 text rows only (negligible work), so they stay bf16.
DEFAULT_FP8_LAYERS = ("blocks.*.self_attn.q", "blocks.*.self_attn.k", "blocks.*.self_attn.v",
                      "blocks.*.self_attn.o", "blocks.*.cross_attn.q", "blocks.*.cross_attn.o",
                      "blocks.*.ffn.0", "blocks.*.ffn.2")


# ----------------------------------------------------------------------------------------------
# Quantization maths (pure functions; the same on CPU and GPU)
# ----------------------------------------------------------------------------------------------
def quantize_rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[rows, k]`` -> (e4m3 values ``[rows, k]``, float32 scales ``[rows, 1]``), so that
    ``values.float() * scales`` approximates ``x`` (each row's largest magnitude maps to 448)."""
    xf = x.float()
    scale = xf.abs().amax(dim=-1, keepdim=True).clamp(min=_MIN_AMAX) / FP8_MAX
    q = (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)  # clamp: a cast past 448 may give NaN
    return q, scale


def quantize_tensorwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`quantize_rowwise` with one scale for the whole tensor (a 0-d float32 tensor)."""
    xf = x.float()
    scale = xf.abs().amax().clamp(min=_MIN_AMAX) / FP8_MAX
    return (xf / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """float32 values of a quantized tensor (``scale`` broadcasts: ``[rows, 1]`` or 0-d)."""
    return q.float() * scale


def fp8_linear_reference(x: torch.Tensor, weight_fp8: torch.Tensor, weight_scale: torch.Tensor,
                         bias: torch.Tensor | None, out_dtype: torch.dtype,
                         activation_scaling: str = "rowwise") -> torch.Tensor:
    """The fp8 product emulated in float32: quantize ``x`` as the GPU path does, dequantize both
    operands, multiply in float32, add the bias, round to ``out_dtype``.

    ``weight_fp8`` is ``[out, in]`` e4m3, ``weight_scale`` ``[out]`` float32 (per output channel).
    """
    rows = x.reshape(-1, x.shape[-1])
    quant = quantize_rowwise if activation_scaling == "rowwise" else quantize_tensorwise
    xq, xs = quant(rows)
    y = dequantize(xq, xs) @ dequantize(weight_fp8, weight_scale[:, None]).t()
    if bias is not None:
        y = y + bias.float()
    return y.to(out_dtype).reshape(*x.shape[:-1], weight_fp8.shape[0])


# ----------------------------------------------------------------------------------------------
# GPU path
# ----------------------------------------------------------------------------------------------
_support: dict[str, Any] = {}  # per device: {"rowwise": bool, "bias": bool} once probed
_quantizers: dict[str, Callable] = {}


class _CompiledOrEager:
    """``torch.compile(fn)``; if compiling fails at the first call (no compiler available), the eager
    function from then on, with a warning (same result, slower)."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.compiled: Callable | None = torch.compile(fn, dynamic=False, fullgraph=True)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001  (compiler missing or refusing: stay correct)
                import warnings

                warnings.warn(f"fp8: compiling the activation quantizer failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160]}); running it eagerly", stacklevel=2)
                self.compiled = None
        return self.fn(*args)


def _quantizer(kind: str, compiled: bool) -> Callable:
    """The activation quantizer; on CUDA compiled once into one fused kernel (amax, scale, divide,
    cast: one read of the activations instead of five passes)."""
    fn = quantize_rowwise if kind == "rowwise" else quantize_tensorwise
    if not compiled:
        return fn
    if kind not in _quantizers:
        _quantizers[kind] = _CompiledOrEager(fn)
    return _quantizers[kind]


def fp8_gemm_support(device: torch.device | str | None = None) -> dict[str, Any]:
    """What ``torch._scaled_mm`` offers on ``device`` (default: the current CUDA device), probed once
    with a tiny product: ``{"fp8": bool, "rowwise": bool (per-row/per-column scales), "bias": bool
    (bias fused in the row-wise product)}``. A CUDA device below compute capability 8.9 has none.
    (Some CPU builds of PyTorch have ``_scaled_mm`` too; the tests use it to check the scale
    conventions of the GPU path; the model uses it on CUDA only.)"""
    if device is None:
        if not torch.cuda.is_available():
            return {"fp8": False, "rowwise": False, "bias": False}
        device = "cuda"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = str(device)
    if key in _support:
        return _support[key]
    info = {"fp8": False, "rowwise": False, "bias": False}
    capable = hasattr(torch, "_scaled_mm") and (
        device.type != "cuda" or torch.cuda.get_device_capability(device) >= (8, 9))
    if capable:
        a = torch.randn(32, 64, device=device).to(FP8_DTYPE)
        b = torch.randn(48, 64, device=device).to(FP8_DTYPE)
        one = torch.ones((), device=device)
        try:
            torch._scaled_mm(a, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            info["fp8"] = True
        except Exception:
            pass
        if info["fp8"]:
            try:
                torch._scaled_mm(a, b.t(), scale_a=torch.ones(32, 1, device=device),
                                 scale_b=torch.ones(1, 48, device=device), out_dtype=torch.bfloat16)
                info["rowwise"] = True
                torch._scaled_mm(a, b.t(), scale_a=torch.ones(32, 1, device=device),
                                 scale_b=torch.ones(1, 48, device=device),
                                 bias=torch.zeros(48, device=device, dtype=torch.bfloat16),
                                 out_dtype=torch.bfloat16)
                info["bias"] = True
            except Exception:
                pass
    _support[key] = info
    return info


def _scaled_mm_linear(x: torch.Tensor, weight_fp8: torch.Tensor, weight_scale: torch.Tensor,
                      bias: torch.Tensor | None, out_dtype: torch.dtype, use_fast_accum: bool,
                      activation_scaling: str) -> torch.Tensor:
    support = fp8_gemm_support(x.device)
    rows = x.reshape(-1, x.shape[-1])
    if rows.stride(-1) != 1:
        rows = rows.contiguous()
    w_t = weight_fp8.t()  # [in, out], column-major: the layout _scaled_mm wants for its 2nd operand
    if activation_scaling == "rowwise" and support["rowwise"]:
        xq, xs = _quantizer("rowwise", x.is_cuda)(rows)
        fused_bias = bias if (bias is not None and support["bias"] and bias.dtype == out_dtype) else None
        y = torch._scaled_mm(xq, w_t, scale_a=xs, scale_b=weight_scale[None, :], bias=fused_bias,
                             out_dtype=out_dtype, use_fast_accum=use_fast_accum)
        if bias is not None and fused_bias is None:
            y = y + bias.to(y.dtype)
    else:  # per-tensor scales only: the weight's per-channel scale is applied to the output
        xq, xs = _quantizer("tensorwise", x.is_cuda)(rows)
        one = torch.ones((), device=x.device)
        y = torch._scaled_mm(xq, w_t, scale_a=xs, scale_b=one, out_dtype=torch.float32,
                             use_fast_accum=use_fast_accum)
        y = y * weight_scale
        if bias is not None:
            y = y + bias.float()
        y = y.to(out_dtype)
    return y.reshape(*x.shape[:-1], weight_fp8.shape[0])


def fp8_linear(x: torch.Tensor, weight_fp8: torch.Tensor, weight_scale: torch.Tensor,
               bias: torch.Tensor | None, out_dtype: torch.dtype, backend: str = "auto",
               use_fast_accum: bool = True, activation_scaling: str = "rowwise") -> torch.Tensor:
    """``x @ W^T + bias`` with fp8 operands (see the module docstring).

    ``backend``: ``"scaled_mm"`` (``torch._scaled_mm``, CUDA), ``"emulate"`` (float32 emulation,
    any device) or ``"auto"`` (``scaled_mm`` where the device supports fp8 products, else emulate).
    """
    if backend == "auto":
        backend = "scaled_mm" if x.is_cuda and fp8_gemm_support(x.device)["fp8"] else "emulate"
    if backend == "emulate":
        return fp8_linear_reference(x, weight_fp8, weight_scale, bias, out_dtype, activation_scaling)
    if backend != "scaled_mm":
        raise ValueError(f"unknown fp8 backend {backend!r} (auto, scaled_mm, emulate)")
    return _scaled_mm_linear(x, weight_fp8, weight_scale, bias, out_dtype, use_fast_accum, activation_scaling)


# ----------------------------------------------------------------------------------------------
# The module swap
# ----------------------------------------------------------------------------------------------
class Fp8Weight:
    """Stand-in for ``layer.weight`` of an :class:`Fp8Linear`: ``F.linear(x, this, bias)`` runs the
    fp8 product; any other torch function receives the dequantized weight in ``dtype``."""

    def __init__(self, layer: "Fp8Linear"):
        self.layer = layer

    @property
    def dtype(self) -> torch.dtype:
        return self.layer.compute_dtype

    @property
    def device(self) -> torch.device:
        return self.layer.weight_fp8.device

    @property
    def shape(self) -> torch.Size:
        return self.layer.weight_fp8.shape

    def dequantize(self) -> torch.Tensor:
        layer = self.layer
        return dequantize(layer.weight_fp8, layer.weight_scale[:, None]).to(layer.compute_dtype)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, w = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if isinstance(w, Fp8Weight) and not isinstance(x, Fp8Weight):
                return w.layer._forward(x, bias)
        swap = lambda a: a.dequantize() if isinstance(a, Fp8Weight) else a  # noqa: E731
        return func(*[swap(a) for a in args], **{k: swap(v) for k, v in kwargs.items()})


class Fp8Linear(nn.Module):
    """An ``nn.Linear`` whose weight is stored in e4m3 with one float32 scale per output channel."""

    def __init__(self, in_features: int, out_features: int, bias: bool, compute_dtype: torch.dtype,
                 backend: str = "auto", use_fast_accum: bool = True, activation_scaling: str = "rowwise",
                 device: torch.device | str | None = None):
        super().__init__()
        if activation_scaling not in ("rowwise", "tensorwise"):
            raise ValueError(f"activation_scaling {activation_scaling!r}: rowwise or tensorwise")
        self.in_features, self.out_features = in_features, out_features
        self.compute_dtype = compute_dtype
        self.backend, self.use_fast_accum, self.activation_scaling = backend, use_fast_accum, activation_scaling
        self.register_buffer("weight_fp8", torch.empty(out_features, in_features, dtype=FP8_DTYPE, device=device))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=compute_dtype, device=device),
                                 requires_grad=False) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, **options) -> "Fp8Linear":
        w = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, w.dtype,
                    device=w.device, **options)
        with torch.no_grad():
            q, s = quantize_rowwise(w)  # per output channel = per row of [out, in]
            layer.weight_fp8.copy_(q)
            layer.weight_scale.copy_(s[:, 0])
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    @property
    def weight(self) -> Fp8Weight:
        return Fp8Weight(self)

    def _forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return fp8_linear(x, self.weight_fp8, self.weight_scale, bias, self.compute_dtype, self.backend,
                          self.use_fast_accum, self.activation_scaling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x.to(self.compute_dtype), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, e4m3 per-channel weights, activations "
                f"{self.activation_scaling}, backend={self.backend}")


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def enable_fp8_linears(model: nn.Module, layers: Iterable[str] = DEFAULT_FP8_LAYERS, backend: str = "auto",
                       use_fast_accum: bool = True, activation_scaling: str = "rowwise") -> list[str]:
    """Replace the ``nn.Linear`` modules of ``model`` whose names match ``layers`` (fnmatch
    patterns) by :class:`Fp8Linear`, in place, on their current device; returns the names converted.

    Run it after loading weights and after moving the model to its device and dtype (a later
    ``model.to(dtype)`` would also cast the e4m3 buffers). Inference only: the fp8 layers hold no
    trainable weight. Composes with :func:`s2v_toolkit.models.fused.enable_fused_blocks` (either order).
    """
    patterns = tuple(layers)
    converted = []
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear or not _matches(name, patterns):
            continue
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new = Fp8Linear.from_linear(module, backend=backend, use_fast_accum=use_fast_accum,
                                    activation_scaling=activation_scaling)
        setattr(parent, child, new)  # the old bf16 weight is freed once nothing else holds it
        converted.append(name)
    return converted


def fp8_linears_enabled(model: nn.Module) -> int:
    """How many :class:`Fp8Linear` layers ``model`` holds."""
    return sum(isinstance(m, Fp8Linear) for m in model.modules())


# ----------------------------------------------------------------------------------------------
# User-facing modes (the --fp8 option of `s2vt generate` / `s2vt render`)
# ----------------------------------------------------------------------------------------------
#: Every block linear except the attention out-projections (self_attn.o, cross_attn.o), which carry
#: most of the fp8 error (docs/performance.md, section 6).
FP8_LINEARS_NO_OUT = ("blocks.*.self_attn.q", "blocks.*.self_attn.k", "blocks.*.self_attn.v",
                      "blocks.*.cross_attn.q", "blocks.*.ffn.0", "blocks.*.ffn.2")

#: mode -> (layer patterns converted to fp8, fp8 attention on)
FP8_MODES: dict[str, tuple[tuple[str, ...], bool]] = {
    "off": ((), False),
    "linears": (FP8_LINEARS_NO_OUT, False),
    "all-linears": (DEFAULT_FP8_LAYERS, False),
    "attention": (DEFAULT_FP8_LAYERS, True),
}


def fp8_attention_backend(device: torch.device | str | None = None) -> str:
    """The fp8 attention backend for ``device``: cuDNN's (``"cudnn-fp8"``) where its Python frontend
    is installed on a Hopper-or-newer GPU (faster), else our Triton kernel (``"fp8"``, emulated in
    float32 off such GPUs)."""
    from s2v_toolkit.models.cudnn_fp8_attention import cudnn_fp8_available

    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" and cudnn_fp8_available(device):
        return "cudnn-fp8"
    return "fp8"


def apply_fp8_mode(model: nn.Module, mode: str, device: torch.device | str | None = None) -> dict[str, Any]:
    """Apply an fp8 mode of :data:`FP8_MODES` to a loaded S2V transformer, in place.

    ``linears`` (every block linear but the attention out-projections; measured x0 error 1.5e-2 with
    random weights), ``all-linears`` (2.3e-2), ``attention`` (all linears plus fp8 self-attention,
    a process-wide attention setting; ~1.5e-1 with random weights). Returns what was done (JSON-ready).
    Approximate: outputs differ from the bf16 model's.
    """
    if mode not in FP8_MODES:
        raise ValueError(f"unknown fp8 mode {mode!r}; choose one of {', '.join(FP8_MODES)}")
    layers, with_attention = FP8_MODES[mode]
    converted = enable_fp8_linears(model, layers) if layers else []
    info: dict[str, Any] = {"mode": mode, "fp8_layers": len(converted), "attention": None}
    if with_attention:
        from s2v_toolkit.models.attention import set_attention_backend

        backend = fp8_attention_backend(device)
        set_attention_backend(backend)
        info["attention"] = backend
    return info
