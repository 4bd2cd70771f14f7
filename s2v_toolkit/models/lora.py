"""LoRA files for the S2V DiT: read the conventions Wan users have, merge or apply at run time.

Key conventions understood (a file may mix them; ``M`` is a module path such as
``blocks.3.self_attn.q``):

* PEFT / diffusers: ``M.lora_A.weight`` [r, in] and ``M.lora_B.weight`` [out, r] (also
  ``lora_A.default.weight``); no alpha stored -> scale 1 (PEFT's ``lora_alpha = r`` default);
* kohya / musubi-tuner / ComfyUI: ``M.lora_down.weight``, ``M.lora_up.weight``, ``M.alpha`` (scale
  ``alpha / r``); kohya's flattened names ``lora_unet_blocks_3_self_attn_q.lora_down.weight``;
* full deltas (Kijai's / LightX2V's extracted LoRAs): ``M.diff`` (added to ``M.weight``, e.g. norms)
  and ``M.diff_b`` (added to ``M.bias``);
* prefixes ``diffusion_model.`` (the published Wan 2.1/2.2 14B LoRAs, e.g. LightX2V's step/CFG
  distillation LoRAs: ``diffusion_model.blocks.0.self_attn.q.lora_down.weight`` / ``lora_up`` /
  ``diff_b``, ``...norm3.diff``), ``model.diffusion_model.``, ``transformer.``, ``base_model.model.``,
  ``model.``; diffusers' Wan module names (``attn1.to_q``, ``attn2.to_out.0``, ``ffn.net.0.proj``,
  ``norm2``, ``condition_embedder.*``, ``proj_out``, ``scale_shift_table``) map to Wan's.

A low-rank pair adds ``strength * scale * up @ down`` to the weight (convolutions: the same product
reshaped to the kernel). Keys that name no layer of this model (e.g. the I2V image cross-attention
``k_img`` of an I2V LoRA, text-encoder keys) are *unmatched*: listed by name, and an error unless the
caller allows them (``ignore_unmatched``).

Two ways to apply (:func:`apply_loras`):

* ``merge``: the deltas are added into the weights once (bf16/fp32 ``nn.Linear``: in float32 then
  cast back; :class:`~s2v_toolkit.models.fp8.Fp8Linear`: dequantized, added, re-quantized per row);
  no cost per step, not reversible;
* ``runtime``: each targeted ``nn.Linear``/``Fp8Linear`` is wrapped (:class:`LoraLinear`): its output
  gains ``strength * scale * up(down(x))``; the weights stay untouched and :func:`remove_loras`
  restores the model (full deltas and convolution LoRAs, small, are merged with a backup that
  ``remove_loras`` puts back). This is what per-character LoRAs use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from s2v_toolkit.errors import ConfigError

__all__ = ["LORA_MODES", "LoraError", "LoraLinear", "LoraSpec", "LoraTarget", "apply_loras", "lora_targets",
           "parse_lora_spec", "read_lora_file", "remove_loras"]

LORA_MODES = ("merge", "runtime")

_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "base_model.model.", "transformer.", "model.")
_LOWRANK_SUFFIXES = {
    ".lora_A.default.weight": "down", ".lora_B.default.weight": "up",
    ".lora_A.weight": "down", ".lora_B.weight": "up",
    ".lora_down.weight": "down", ".lora_up.weight": "up",
    ".lora.down.weight": "down", ".lora.up.weight": "up",
    ".alpha": "alpha", ".diff_b": "diff_b", ".diff": "diff",
}
# diffusers WanTransformer3DModel names -> Wan (official) names, applied to the module path
_DIFFUSERS = [
    (r"\.attn1\.to_out\.0$", ".self_attn.o"), (r"\.attn2\.to_out\.0$", ".cross_attn.o"),
    (r"\.attn1\.to_([qkv])$", r".self_attn.\1"), (r"\.attn2\.to_([qkv])$", r".cross_attn.\1"),
    (r"\.attn1\.norm_([qk])$", r".self_attn.norm_\1"), (r"\.attn2\.norm_([qk])$", r".cross_attn.norm_\1"),
    (r"\.ffn\.net\.0\.proj$", ".ffn.0"), (r"\.ffn\.net\.2$", ".ffn.2"),
    (r"^(blocks\.\d+)\.norm2$", r"\1.norm3"), (r"^(blocks\.\d+)\.scale_shift_table$", r"\1.modulation"),
    (r"^condition_embedder\.time_embedder\.linear_1$", "time_embedding.0"),
    (r"^condition_embedder\.time_embedder\.linear_2$", "time_embedding.2"),
    (r"^condition_embedder\.time_proj$", "time_projection.1"),
    (r"^condition_embedder\.text_embedder\.linear_1$", "text_embedding.0"),
    (r"^condition_embedder\.text_embedder\.linear_2$", "text_embedding.2"),
    (r"^proj_out$", "head.head"), (r"^scale_shift_table$", "head.modulation"),
]


class LoraError(ConfigError):
    """A LoRA file that cannot be read or applied; names the file."""


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    strength: float = 1.0

    def to_dict(self) -> dict:
        return {"path": str(self.path), "strength": self.strength}


def parse_lora_spec(text: str | os.PathLike | LoraSpec, base_dir: Path | None = None) -> LoraSpec:
    """``PATH`` or ``PATH:STRENGTH`` (the last ``:`` followed by a number) -> LoraSpec; the file must exist."""
    if isinstance(text, LoraSpec):
        return text
    text = os.fspath(text)
    path, strength = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            strength = float(tail)
            path = head
        except ValueError:
            pass
    p = Path(path).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = base_dir / p
    if not p.is_file():
        raise LoraError(f"--lora {text}: file not found: {p}")
    return LoraSpec(p, strength)


def read_lora_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a LoRA file (.safetensors; .pt/.pth/.ckpt state dicts too), on the CPU."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        data = torch.load(str(path), map_location="cpu", weights_only=True)
        return dict(data.get("state_dict", data)) if isinstance(data, dict) else {}
    except Exception as exc:  # noqa: BLE001 - any reader failure is "unreadable" for the user
        raise LoraError(f"{path}: not a readable LoRA file ({type(exc).__name__}: {exc})") from None


@dataclass
class LoraTarget:
    """Everything one file says about one module of the model."""

    module: str
    down: torch.Tensor | None = None
    up: torch.Tensor | None = None
    alpha: float | None = None
    diff: torch.Tensor | None = None
    diff_b: torch.Tensor | None = None
    keys: list[str] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return int(self.down.shape[0]) if self.down is not None else 0

    @property
    def scale(self) -> float:
        """``alpha / rank`` (kohya), 1 without alpha (PEFT)."""
        return float(self.alpha) / self.rank if self.alpha is not None and self.rank else 1.0

    def delta(self) -> torch.Tensor | None:
        """``scale * up @ down`` in float32, shaped as the 2-D weight (convolutions flattened)."""
        if self.down is None or self.up is None:
            return None
        return self.scale * (self.up.float().flatten(1) @ self.down.float().flatten(1))


def _strip_prefix(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _split(key: str) -> tuple[str, str] | None:
    for suffix, kind in _LOWRANK_SUFFIXES.items():
        if key.endswith(suffix):
            return key[: -len(suffix)], kind
    return None


def _resolve(path: str, modules: dict[str, nn.Module], flat: dict[str, str]) -> str | None:
    """A module path of the model for a file's module path (prefix stripped), or None."""
    if path in modules:
        return path
    for pattern, repl in _DIFFUSERS:
        mapped = re.sub(pattern, repl, path)
        if mapped != path and mapped in modules:
            return mapped
    if path.startswith("lora_unet_"):
        return flat.get(path[len("lora_unet_"):])
    return flat.get(path)


def lora_targets(state: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, LoraTarget], list[str]]:
    """Group a LoRA state dict by the model module each key targets; returns (targets, unmatched keys).

    A key is unmatched when its module is not in the model, its shapes do not fit the module's
    weight, or it is a kind this reader does not know (e.g. LoCon's ``lora_mid``)."""
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    modules.update({name: None for name in params})  # "blocks.0.modulation" is a parameter, not a module
    flat = {name.replace(".", "_"): name for name in modules if name}
    targets: dict[str, LoraTarget] = {}
    unmatched: list[str] = []
    for key, tensor in state.items():
        split = _split(_strip_prefix(key))
        module = _resolve(split[0], modules, flat) if split else None
        if split is None or module is None:
            unmatched.append(key)
            continue
        kind = split[1]
        t = targets.setdefault(module, LoraTarget(module))
        t.keys.append(key)
        if kind == "alpha":
            t.alpha = float(tensor.float().reshape(-1)[0])
        else:
            setattr(t, kind, tensor)
    # shape checks against the model
    for name, t in list(targets.items()):
        bad = _shape_problem(t, modules.get(name), params.get(name))
        if bad:
            unmatched.extend(f"{k} ({bad})" for k in t.keys)
            del targets[name]
    return targets, unmatched


def _weight_of(module: nn.Module | None, param: torch.Tensor | None):
    if param is not None:
        return param
    if module is None:
        return None
    if isinstance(module, LoraLinear):
        module = module.base
    w = getattr(module, "weight", None)
    return w


def _shape_problem(t: LoraTarget, module: nn.Module | None, param: torch.Tensor | None) -> str | None:
    w = _weight_of(module, param)
    if w is None:
        return "the target has no weight"
    shape = tuple(w.shape)
    if (t.down is None) != (t.up is None):
        return "lora down/up pair incomplete"
    if t.down is not None:
        if t.up.shape[1] != t.down.shape[0]:
            return f"rank mismatch {tuple(t.down.shape)} / {tuple(t.up.shape)}"
        rows, cols = shape[0], int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 1
        if t.up.shape[0] != rows or t.down.flatten(1).shape[1] != cols:
            return f"lora shapes {tuple(t.down.shape)} / {tuple(t.up.shape)} do not fit weight {shape}"
    if t.diff is not None and tuple(t.diff.shape) != shape:
        return f"diff shape {tuple(t.diff.shape)} != weight {shape}"
    if t.diff_b is not None:
        bias = getattr(module, "bias", None) if module is not None else None
        if isinstance(module, LoraLinear):
            bias = module.base.bias
        if bias is None or tuple(t.diff_b.shape) != tuple(bias.shape):
            return "diff_b does not fit the bias"
    return None


# ----------------------------------------------------------------------------------------------
# run-time wrapper
# ----------------------------------------------------------------------------------------------
class LoraWeight:
    """Stand-in for ``layer.weight`` of a :class:`LoraLinear`: ``F.linear(x, this, bias)`` runs the base
    product plus the low-rank terms; anything else gets the dense merged weight."""

    def __init__(self, layer: "LoraLinear"):
        self.layer = layer

    @property
    def dtype(self) -> torch.dtype:
        return self.layer.base.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.layer.base.weight.device

    @property
    def shape(self) -> torch.Size:
        return self.layer.base.weight.shape

    def dense(self) -> torch.Tensor:
        return self.layer.dense_weight()

    def float(self) -> torch.Tensor:
        return self.dense().float()

    def to(self, *args, **kwargs) -> torch.Tensor:
        return self.dense().to(*args, **kwargs)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear and len(args) > 1 and isinstance(args[1], LoraWeight):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            return args[1].layer.linear(args[0], bias)
        swap = lambda a: a.dense() if isinstance(a, LoraWeight) else a  # noqa: E731
        return func(*[swap(a) for a in args], **{k: swap(v) for k, v in kwargs.items()})


class LoraLinear(nn.Module):
    """A linear layer (``nn.Linear`` or ``Fp8Linear``) plus low-rank terms added at run time:
    ``y = base(x) + sum_i s_i * up_i(down_i(x))``, ``s_i`` = strength * alpha / rank."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
        self.scales: list[float] = []
        self.sources: list[str] = []

    def add(self, down: torch.Tensor, up: torch.Tensor, scale: float, source: str) -> None:
        w = self.base.weight
        dtype = w.dtype if w.dtype.is_floating_point and w.dtype.itemsize >= 2 else torch.bfloat16
        k = len(self.scales)
        self.register_buffer(f"down_{k}", down.to(w.device, dtype).contiguous())
        self.register_buffer(f"up_{k}", up.to(w.device, dtype).contiguous())
        self.scales.append(float(scale))
        self.sources.append(source)

    def pairs(self):
        for k, s in enumerate(self.scales):
            yield getattr(self, f"down_{k}"), getattr(self, f"up_{k}"), s

    @property
    def weight(self) -> LoraWeight:
        return LoraWeight(self)

    @property
    def bias(self):
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def linear(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        y = F.linear(x, self.base.weight, bias)
        for down, up, s in self.pairs():
            y = y + s * F.linear(F.linear(x.to(down.dtype), down), up).to(y.dtype)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.to(self.weight.dtype), self.base.bias)

    def dense_weight(self) -> torch.Tensor:
        w = self.base.weight
        w = w if isinstance(w, torch.Tensor) else w.dequantize()  # Fp8Weight -> dense
        out = w.float()
        for down, up, s in self.pairs():
            out = out + s * (up.float() @ down.float())
        return out.to(w.dtype)


# ----------------------------------------------------------------------------------------------
# applying
# ----------------------------------------------------------------------------------------------
def _get(model: nn.Module, name: str):
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = _get(model, parent_name) if parent_name else model
    setattr(parent, child, module)


def _add_to_param(param: torch.Tensor, delta: torch.Tensor, backup: dict | None, key: str) -> None:
    if backup is not None and key not in backup:
        backup[key] = param.detach().clone()
    with torch.no_grad():
        param.copy_((param.float() + delta.to(param.device).float().reshape(param.shape)).to(param.dtype))


def _merge_linear(module: nn.Module, delta: torch.Tensor) -> None:
    from s2v_toolkit.models.fp8 import Fp8Linear, dequantize, quantize_rowwise

    if isinstance(module, Fp8Linear):
        with torch.no_grad():
            w = dequantize(module.weight_fp8, module.weight_scale[:, None]) + delta.to(module.weight_fp8.device)
            q, s = quantize_rowwise(w)
            module.weight_fp8.copy_(q)
            module.weight_scale.copy_(s[:, 0])
        return
    _add_to_param(module.weight, delta, None, "")


def apply_loras(model: nn.Module, specs: Iterable[LoraSpec | str], mode: str = "merge",
                ignore_unmatched: bool = False, warn=None) -> list[dict]:
    """Apply LoRA files with their strengths to ``model`` (in place); returns one report per file:
    ``{"path", "strength", "mode", "targets", "matched_keys", "unmatched": [...]}``.

    Unmatched keys raise :class:`LoraError` naming them, unless ``ignore_unmatched`` (then ``warn``,
    default ``warnings.warn``, gets one line listing them)."""
    import warnings

    if mode not in LORA_MODES:
        raise LoraError(f"--lora-mode {mode}: choose merge or runtime")
    specs = [parse_lora_spec(s) for s in specs]
    reports = []
    backup: dict = getattr(model, "_lora_backup", {})
    for spec in specs:
        state = read_lora_file(spec.path)
        if not state:
            raise LoraError(f"{spec.path}: no tensors in this file")
        targets, unmatched = lora_targets(state, model)
        if unmatched:
            shown = ", ".join(unmatched[:12]) + (f" ... ({len(unmatched)} in all)" if len(unmatched) > 12 else "")
            line = f"{spec.path}: {len(unmatched)} key(s) match no layer of this model: {shown}"
            if not ignore_unmatched:
                raise LoraError(line + " (--lora-ignore-unmatched applies the rest)")
            (warn or (lambda m: warnings.warn(m, stacklevel=3)))(line)
        if not targets:
            raise LoraError(f"{spec.path}: no key of this file matches the model")
        for name, t in targets.items():
            module = _get(model, name)
            is_param = isinstance(module, torch.Tensor)
            delta = t.delta()
            if delta is not None:
                delta = spec.strength * delta
                linear_like = not is_param and hasattr(module, "in_features") and delta.dim() == 2 and \
                    tuple(module.weight.shape) == tuple(delta.shape)
                if mode == "runtime" and linear_like:
                    if not isinstance(module, LoraLinear):
                        module = LoraLinear(module)
                        _set_module(model, name, module)
                    module.add(t.down.flatten(1), t.up.flatten(1), spec.strength * t.scale, str(spec.path))
                elif mode == "runtime":
                    target = module if is_param else module.weight
                    _add_to_param(target, delta, backup, name if is_param else name + ".weight")
                elif is_param:
                    _add_to_param(module, delta, None, "")
                elif isinstance(module, LoraLinear) or linear_like:
                    _merge_linear(module.base if isinstance(module, LoraLinear) else module, delta)
                else:  # convolution: the product reshaped to the kernel
                    _add_to_param(module.weight, delta, None, "")
            keep = backup if mode == "runtime" else None
            if t.diff is not None:
                target = module if is_param else (module.base.weight if isinstance(module, LoraLinear)
                                                  else module.weight)
                if not isinstance(target, torch.Tensor):  # fp8 weight: a dense delta is merged like a LoRA
                    _merge_linear(module.base if isinstance(module, LoraLinear) else module,
                                  spec.strength * t.diff.float())
                else:
                    _add_to_param(target, spec.strength * t.diff.float(), keep,
                                  name if is_param else name + ".weight")
            if t.diff_b is not None:
                bias = module.base.bias if isinstance(module, LoraLinear) else module.bias
                _add_to_param(bias, spec.strength * t.diff_b.float(), keep, name + ".bias")
        model._lora_backup = backup
        reports.append({"path": str(spec.path), "strength": spec.strength, "mode": mode,
                        "targets": len(targets), "matched_keys": sum(len(t.keys) for t in targets.values()),
                        "unmatched": unmatched})
    return reports


def remove_loras(model: nn.Module) -> int:
    """Undo ``runtime`` LoRAs: unwrap every :class:`LoraLinear` and restore backed-up parameters.
    Returns the number of layers unwrapped. (Merged LoRAs cannot be removed.)"""
    wrapped = [(name, m) for name, m in model.named_modules() if isinstance(m, LoraLinear)]
    for name, m in wrapped:
        _set_module(model, name, m.base)
    backup = getattr(model, "_lora_backup", {})
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, value in backup.items():
            params[key].copy_(value)
    model._lora_backup = {}
    return len(wrapped)
