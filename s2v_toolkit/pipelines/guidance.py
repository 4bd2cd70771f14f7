"""Classifier-free guidance: ``v = v_uncond + g * (v_cond - v_uncond)``.

The S2V sampler's unconditional branch uses the negative prompt and zeroed audio features; reference,
motion and pose inputs are shared by both branches (``shared/spec/wan_s2v_dit.md``, Sampling). The
denoiser is called with keyword arguments, split into three groups:

* ``shared``: the same for both branches (noisy latent, timestep, reference, motion, pose, flags);
* ``cond`` / ``uncond``: the branch-specific inputs, with the same keys (text context, audio);
* ``static`` (optional): passed unchanged to every forward, never batched (RoPE tables, lengths...).

``batched=True`` runs both branches in one forward of batch 2B (cond first, then uncond): faster on a
GPU with room for it. ``batched=False`` runs two forwards of batch B: half the activation memory.
The two give the same result up to floating-point reordering inside the model.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

__all__ = ["check_guidance_inputs", "combine_guidance", "guidance_active", "guided_prediction"]


def guidance_active(scale: float) -> bool:
    """Whether a step runs the unconditional branch: only for ``scale > 1`` (official rule)."""
    return scale > 1.0


def combine_guidance(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """``uncond + scale * (cond - uncond)`` (scale 1 -> cond, scale 0 -> uncond)."""
    return uncond + scale * (cond - uncond)


def check_guidance_inputs(shared: Mapping[str, Any], cond: Mapping[str, Any], uncond: Mapping[str, Any],
                          static: Mapping[str, Any] | None) -> dict[str, Any]:
    """The input groups' rules, for every guidance path (one process, CFG-parallel): cond and uncond
    have the same keys, and no key is in two groups. Returns ``static`` as a dict (empty for None)."""
    if set(cond) != set(uncond):
        raise ValueError(f"cond and uncond inputs must have the same keys: {sorted(cond)} vs {sorted(uncond)}")
    static = dict(static or {})
    groups = [set(shared), set(cond), set(static)]
    overlap = (groups[0] & groups[1]) | (groups[0] & groups[2]) | (groups[1] & groups[2])
    if overlap:
        raise ValueError(f"inputs {sorted(overlap)} are given in more than one group")
    return static


def _double(value: Any) -> Any:
    """A shared input for the batched forward: the same batch twice (0-d tensors stay as they are)."""
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        return torch.cat([value, value], dim=0)
    if isinstance(value, list):
        return value + value
    return value


def _pair(key: str, cond: Any, uncond: Any) -> Any:
    """Branch inputs for the batched forward: cond batch, then uncond batch."""
    if isinstance(cond, torch.Tensor) and isinstance(uncond, torch.Tensor):
        if cond.shape != uncond.shape:
            raise ValueError(f"guidance input {key!r}: cond shape {tuple(cond.shape)} != "
                             f"uncond shape {tuple(uncond.shape)}; cannot batch the branches")
        return torch.cat([cond, uncond], dim=0)
    if isinstance(cond, list) and isinstance(uncond, list):
        if len(cond) != len(uncond):
            raise ValueError(f"guidance input {key!r}: {len(cond)} cond vs {len(uncond)} uncond items")
        return cond + uncond
    if cond is uncond or cond == uncond:
        return cond
    raise ValueError(f"guidance input {key!r}: cond and uncond differ but are not tensors or lists")


def _split(output: Any) -> tuple[Any, Any]:
    if isinstance(output, torch.Tensor):
        if output.shape[0] % 2:
            raise ValueError(f"batched guidance: model output batch {output.shape[0]} is odd")
        return output.chunk(2, dim=0)
    if isinstance(output, (list, tuple)):
        half = len(output) // 2
        return list(output[:half]), list(output[half:])
    raise TypeError(f"model output must be a tensor or a list of tensors, got {type(output).__name__}")


def _combine(cond: Any, uncond: Any, scale: float) -> Any:
    if isinstance(cond, torch.Tensor):
        return combine_guidance(cond, uncond, scale)
    return [combine_guidance(c, u, scale) for c, u in zip(cond, uncond)]


def guided_prediction(model: Callable[..., Any], shared: Mapping[str, Any], cond: Mapping[str, Any],
                      uncond: Mapping[str, Any], scale: float, batched: bool = True,
                      static: Mapping[str, Any] | None = None) -> Any:
    """The guided model output for one sampling step.

    ``model(**shared, **cond, **static)`` must return a tensor with the batch first (or a list of per-sample
    tensors, Wan style). Guidance is applied only when ``scale > 1`` (the official ``if guide_scale > 1``):
    at 1 the unconditional branch cancels exactly, and below 1 the official pipeline also runs the
    conditional forward alone (guidance off, e.g. step-distilled LoRAs).
    """
    static = check_guidance_inputs(shared, cond, uncond, static)
    if not guidance_active(scale):
        return model(**shared, **cond, **static)
    if batched:
        inputs = {k: _double(v) for k, v in shared.items()}
        inputs.update({k: _pair(k, cond[k], uncond[k]) for k in cond})
        out_cond, out_uncond = _split(model(**inputs, **static))
    else:
        out_cond = model(**shared, **cond, **static)
        out_uncond = model(**shared, **uncond, **static)
    return _combine(out_cond, out_uncond, scale)
