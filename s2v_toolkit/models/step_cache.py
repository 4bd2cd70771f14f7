"""Step caching for the S2V DiT: TeaCache (skip the blocks when the timestep input barely changed).

TeaCache (Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model",
2024; reference implementation ``ali-vilab/TeaCache``, folder ``TeaCache4Wan2.1``) estimates how much
a forward's output would change from the relative L1 change of the *timestep-embedding-modulated
input* between consecutive steps, rescaled by a polynomial fitted per model, and accumulates it; while
the sum stays under a threshold the blocks are skipped and the residual they added at the last
computed step (``blocks(x) - x``) is added to the new input instead. Head, embeddings and the solver
still run every step.

Criterion for Wan 2.1 14B (TeaCache4Wan2.1, ``t2v-14B``), ``rel = mean|m_i - m_{i-1}| / mean|m_{i-1}|``:

* ``e0`` mode (its ``use_ret_steps``; default here): ``m`` = the block modulation input ``e0`` =
  ``time_projection(time_embedding(sinusoid(t)))``; polynomial (highest power first)
  ``[-3.03318725e5, 4.90537029e4, -2.65530556e3, 5.87365115e1, -3.15583525e-1]``; the first 5 steps
  always run, and every step up to the last may be skipped;
* ``e`` mode: ``m`` = ``time_embedding(sinusoid(t))``; polynomial
  ``[-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404]``; the first step
  and the last step always run.

The polynomials were fitted on Wan 2.1 T2V-14B; S2V-14B shares its block architecture and time
embedding but not its weights, and no S2V calibration is published: the threshold trades speed for
drift and must be checked by eye on real weights. Random weights (our tests, CI) cannot calibrate it.
In S2V the modulation depends on the timestep only, so both guidance branches take the same decision
at every step (each branch keeps its own residual). ``threshold`` 0.2 is the default (TeaCache's
Wan 2.1 14B examples use 0.1-0.3; higher skips more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from s2v_toolkit.errors import ConfigError

__all__ = ["TEACACHE_WAN21_14B", "CACHE_KINDS", "TeaCache", "TeaCacheParams", "parse_cache"]

#: TeaCache4Wan2.1 polynomials for Wan 2.1 T2V-14B, keyed by the modulated input they were fitted on
TEACACHE_WAN21_14B = {
    "e0": (-3.03318725e05, 4.90537029e04, -2.65530556e03, 5.87365115e01, -3.15583525e-01),
    "e": (-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404),
}
CACHE_KINDS = ("teacache",)
DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True)
class TeaCacheParams:
    threshold: float = DEFAULT_THRESHOLD
    mode: str = "e0"  # "e0" (use_ret_steps) or "e"

    @property
    def coefficients(self) -> tuple[float, ...]:
        return TEACACHE_WAN21_14B[self.mode]

    def warmup_steps(self) -> int:
        """Steps that always run at the start (TeaCache's ret_steps, per branch)."""
        return 5 if self.mode == "e0" else 1

    def last_cacheable(self, steps: int) -> int:
        """Steps at or after this index always run (TeaCache's cutoff_steps, per branch)."""
        return steps if self.mode == "e0" else steps - 1

    def to_string(self) -> str:
        return f"teacache:{self.threshold:g}" + (":e" if self.mode == "e" else "")


def parse_cache(text: str | None) -> TeaCacheParams | None:
    """``teacache``, ``teacache:0.15``, ``teacache:0.15:e`` -> params; ``none``/``off``/None -> None."""
    if text is None or str(text).strip().lower() in ("", "none", "off"):
        return None
    parts = str(text).strip().lower().split(":")
    if parts[0] not in CACHE_KINDS:
        raise ConfigError(f"--cache {text!r}: choose teacache[:THRESHOLD[:e|e0]] or none")
    threshold, mode = DEFAULT_THRESHOLD, "e0"
    try:
        if len(parts) > 1 and parts[1]:
            threshold = float(parts[1])
    except ValueError:
        raise ConfigError(f"--cache {text!r}: the threshold must be a number, e.g. teacache:0.2") from None
    if len(parts) > 2:
        mode = parts[2]
    if len(parts) > 3 or mode not in TEACACHE_WAN21_14B or not threshold >= 0:
        raise ConfigError(f"--cache {text!r}: expected teacache[:THRESHOLD>=0[:e|e0]]")
    return TeaCacheParams(threshold=threshold, mode=mode)


@dataclass
class _CacheStats:
    computed: int = 0
    skipped: int = 0
    skipped_steps: list[tuple[int, int]] = field(default_factory=list)  # (clip, step)


class TeaCache:
    """Per-run TeaCache state; :func:`s2v_toolkit.pipelines.sampling.denoise_clip` drives it:
    ``begin_clip(steps)`` once per clip, then ``bind(model, step, t)`` before each step's forwards
    (the returned callable has the model's signature)."""

    def __init__(self, params: TeaCacheParams):
        self.params = params
        self._poly = np.poly1d(params.coefficients)
        self.stats = _CacheStats()
        self._clip = -1
        self.begin_clip(0)

    def begin_clip(self, steps: int) -> None:
        """Forget the previous clip (its geometry, motion tokens and audio differ)."""
        self._clip += 1
        self._steps = steps
        self._prev: torch.Tensor | None = None
        self._accumulated = 0.0
        self._residuals: dict[int, torch.Tensor] = {}
        self._compute = True
        self._step = -1
        self._slot = 0

    def _modulated_input(self, model, timestep: float, device) -> torch.Tensor:
        with torch.no_grad():
            e, e0 = model.time_embeddings(torch.tensor([timestep], dtype=torch.float32, device=device))
        return (e0[:, :, 0] if self.params.mode == "e0" else e).float()

    def decide(self, model, step: int, timestep: float, device) -> bool:
        """Whether the blocks run at ``step`` (TeaCache's rule; updates the accumulator)."""
        m = self._modulated_input(model, timestep, device)
        p = self.params
        if step < p.warmup_steps() or step >= p.last_cacheable(self._steps) or self._prev is None:
            compute = True
            self._accumulated = 0.0
        else:
            rel = float(((m - self._prev).abs().mean() / self._prev.abs().mean()).item())
            self._accumulated += float(self._poly(rel))
            compute = self._accumulated >= p.threshold
            if compute:
                self._accumulated = 0.0
        self._prev = m
        return compute

    def bind(self, model, step: int, timestep: float):
        """The forward to use for ``step``: the model's, with the blocks run or replaced by the cache."""
        if step != self._step:
            device = next(model.parameters()).device
            self._compute = self.decide(model, step, timestep, device)
            self._step = step
            self._slot = 0
        return _CachedForward(self, model, step)

    def to_dict(self) -> dict[str, Any]:
        total = self.stats.computed + self.stats.skipped
        return {"kind": "teacache", "threshold": self.params.threshold, "mode": self.params.mode,
                "coefficients": list(self.params.coefficients),
                "coefficients_source": "TeaCache4Wan2.1 t2v-14B (ali-vilab/TeaCache); not calibrated for S2V",
                "forwards_computed": self.stats.computed, "forwards_skipped": self.stats.skipped,
                "forwards_total": total,
                "skipped_steps": [list(s) for s in self.stats.skipped_steps]}


class _CachedForward:
    """``model(**inputs)`` with the block stack replaced by the cached residual when the cache says so.
    Each call within a step is one branch slot (cond, uncond; or one batched call)."""

    def __init__(self, cache: TeaCache, model, step: int):
        self.cache, self.model, self.step = cache, model, step

    def __getattr__(self, name):  # anything else (config, parameters...) is the model's
        return getattr(self.model, name)

    def __call__(self, **inputs) -> torch.Tensor:
        cache, model = self.cache, self.model
        slot = cache._slot
        cache._slot += 1
        t = model.embed_inputs(**inputs)
        residual = cache._residuals.get(slot)
        if cache._compute or residual is None or residual.shape != t.x.shape:
            x = model.run_blocks(t)
            cache._residuals[slot] = (x - t.x).detach()
            cache.stats.computed += 1
        else:
            x = t.x.float() + residual  # the blocks' output is float32
            cache.stats.skipped += 1
            if slot == 0:
                cache.stats.skipped_steps.append((cache._clip, self.step))
        return model.output(x, t)
