"""Mixture-of-experts denoising over timesteps (Wan2.2 A14B convention) and expert offloading.

A denoiser is a sequence of experts ordered from high noise to low noise, separated by boundaries
given as fractions of the training timesteps. With one boundary b (Wan2.2 A14B): the high-noise
expert runs every step whose model timestep ``t >= b * 1000``, the low-noise expert every later step;
each expert has its own classifier-free guidance scale. A single-expert checkpoint (the released
S2V-14B) is the same code with one expert and no boundary.

Facts: ``shared/spec/wan_s2v_dit.md`` (section MoE). T2V-A14B: boundary 0.875, guide (low 3.0,
high 4.0); I2V-A14B: boundary 0.900, guide (3.5, 3.5).

:class:`ExpertOffloader` keeps only the expert in use on the compute device and parks the others on
an offload device (the CPU), moving the outgoing expert off *before* the incoming one is loaded so
that two experts never sit on the GPU at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from s2v_toolkit.errors import ConfigError

__all__ = [
    "Expert",
    "ExpertOffloader",
    "ExpertSchedule",
    "ExpertStep",
    "OffloadEvent",
    "module_device",
]


@dataclass(frozen=True)
class Expert:
    """One expert: a name (matching the module it stands for) and its guidance scale."""

    name: str
    guidance_scale: float

    def to_dict(self) -> dict:
        return {"name": self.name, "guidance_scale": self.guidance_scale}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Expert":
        return cls(name=str(data["name"]), guidance_scale=float(data["guidance_scale"]))


@dataclass(frozen=True)
class ExpertStep:
    """What one sampling step uses: which expert, with which guidance scale."""

    step_index: int
    timestep: int
    expert_index: int
    expert_name: str
    guidance_scale: float


@dataclass(frozen=True)
class ExpertSchedule:
    """Experts from high noise to low noise and the boundaries between them.

    ``boundaries[j]`` separates expert j from expert j + 1: a step with model timestep
    ``t >= boundaries[j] * num_train_timesteps`` belongs to an expert at or before j. Boundaries are
    fractions in (0, 1), strictly decreasing; there is one fewer boundary than experts.
    """

    experts: tuple[Expert, ...]
    boundaries: tuple[float, ...] = ()
    num_train_timesteps: int = 1000

    def __post_init__(self):
        object.__setattr__(self, "experts", tuple(self.experts))
        object.__setattr__(self, "boundaries", tuple(float(b) for b in self.boundaries))
        if not self.experts:
            raise ConfigError("expert schedule: at least one expert is needed")
        names = [e.name for e in self.experts]
        if len(set(names)) != len(names):
            raise ConfigError(f"expert schedule: duplicate expert names {names}")
        if len(self.boundaries) != len(self.experts) - 1:
            raise ConfigError(
                f"expert schedule: {len(self.experts)} experts need {len(self.experts) - 1} "
                f"boundar{'y' if len(self.experts) == 2 else 'ies'}, got {list(self.boundaries)}")
        for b in self.boundaries:
            if not 0.0 < b < 1.0:
                raise ConfigError(f"expert schedule: boundary {b} is not a fraction in (0, 1)")
        if any(a <= b for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ConfigError(f"expert schedule: boundaries {list(self.boundaries)} must decrease "
                              "(experts are listed from high noise to low noise)")
        for e in self.experts:
            if not e.guidance_scale >= 0.0:
                raise ConfigError(f"expert {e.name!r}: guidance scale {e.guidance_scale} must be >= 0")

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def single(cls, name: str = "model", guidance_scale: float = 4.5) -> "ExpertSchedule":
        """One dense expert for every step (S2V-14B: guidance 4.5)."""
        return cls(experts=(Expert(name, guidance_scale),))

    @classmethod
    def two_experts(cls, high_noise: Expert, low_noise: Expert, boundary: float,
                    num_train_timesteps: int = 1000) -> "ExpertSchedule":
        """Wan2.2 A14B layout: ``high_noise`` for t >= boundary * T, ``low_noise`` after."""
        return cls(experts=(high_noise, low_noise), boundaries=(boundary,),
                   num_train_timesteps=num_train_timesteps)

    @classmethod
    def from_wan_config(cls, boundary: float, guide_scale: float | Sequence[float],
                        high_name: str = "high_noise_model", low_name: str = "low_noise_model",
                        num_train_timesteps: int = 1000) -> "ExpertSchedule":
        """From the official config fields: ``boundary`` and ``sample_guide_scale``, which is either
        one number or the pair (low-noise scale, high-noise scale), in that order."""
        if isinstance(guide_scale, (int, float)):
            low_scale = high_scale = float(guide_scale)
        else:
            low_scale, high_scale = (float(g) for g in guide_scale)
        return cls.two_experts(Expert(high_name, high_scale), Expert(low_name, low_scale),
                               boundary, num_train_timesteps)

    # -- queries -----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [e.name for e in self.experts]

    @property
    def thresholds(self) -> list[float]:
        """Boundaries in model-timestep units, computed as the official code does (b * T)."""
        return [b * self.num_train_timesteps for b in self.boundaries]

    def expert_index(self, timestep: int | float) -> int:
        """Index of the expert for model timestep ``timestep`` (t >= threshold -> the noisier one)."""
        index = 0
        for threshold in self.thresholds:
            if timestep >= threshold:
                break
            index += 1
        return index

    def expert_for(self, timestep: int | float) -> Expert:
        return self.experts[self.expert_index(timestep)]

    def plan(self, timesteps: Iterable[int] | torch.Tensor) -> list[ExpertStep]:
        """The expert and guidance scale of every sampling step.

        Pass the scheduler's host copy (``scheduler.timestep_values``) to avoid reading a device
        tensor; a tensor is accepted too (one read, before the loop).
        """
        if isinstance(timesteps, torch.Tensor):
            timesteps = timesteps.detach().cpu().tolist()
        steps = []
        for i, t in enumerate(timesteps):
            t = int(t)
            k = self.expert_index(t)
            steps.append(ExpertStep(step_index=i, timestep=t, expert_index=k,
                                    expert_name=self.experts[k].name,
                                    guidance_scale=self.experts[k].guidance_scale))
        return steps

    # -- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"experts": [e.to_dict() for e in self.experts],
                "boundaries": list(self.boundaries),
                "num_train_timesteps": self.num_train_timesteps}

    @classmethod
    def from_dict(cls, data: Mapping) -> "ExpertSchedule":
        try:
            return cls(experts=tuple(Expert.from_dict(e) for e in data["experts"]),
                       boundaries=tuple(data.get("boundaries", ())),
                       num_train_timesteps=int(data.get("num_train_timesteps", 1000)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"expert schedule: invalid description ({exc})") from None


def module_device(module: nn.Module) -> torch.device | None:
    """Device of a module's first parameter or buffer (None for a module without tensors)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


@dataclass(frozen=True)
class OffloadEvent:
    """One move the offloader made: ``expert`` went to ``device`` (``reason``: load/offload)."""

    expert: str
    device: str
    reason: str


class ExpertOffloader:
    """Keep the active expert on ``device`` and, with ``offload=True``, the others on ``offload_device``.

    Works with any ``nn.Module``. ``activate(name)`` returns the module to call. Moves are made only
    when an expert's placement changes, the outgoing expert first; when memory is freed on a CUDA
    device the allocator cache is emptied, so the incoming expert can reuse it. ``events`` records
    every move (for logs and tests). With ``offload=False`` experts are loaded on first use and
    stay on ``device``. A single expert is simply loaded once.
    """

    def __init__(self, experts: Mapping[str, nn.Module], device: torch.device | str = "cpu",
                 offload_device: torch.device | str = "cpu", offload: bool = True):
        if not isinstance(experts, Mapping):
            raise TypeError("ExpertOffloader.experts must be a mapping name -> nn.Module")
        if not experts:
            raise ConfigError("expert offloader: no experts given")
        self.experts: dict[str, nn.Module] = dict(experts)
        self.device = torch.device(device)
        self.offload_device = torch.device(offload_device)
        self.offload = bool(offload)
        self.events: list[OffloadEvent] = []
        # None = placement unknown (wherever the caller loaded it); "active" / "offloaded"
        self._placement: dict[str, str | None] = {name: None for name in self.experts}
        self.active: str | None = None

    @classmethod
    def for_schedule(cls, schedule: ExpertSchedule, modules: Mapping[str, nn.Module] | Sequence[nn.Module],
                     device: torch.device | str, offload: bool = True,
                     offload_device: torch.device | str = "cpu") -> "ExpertOffloader":
        """Pair the schedule's expert names with modules (a mapping by name, or a sequence in order)."""
        if not isinstance(modules, Mapping):
            modules = list(modules)
            if len(modules) != len(schedule.experts):
                raise ConfigError(f"expert schedule has {len(schedule.experts)} experts "
                                  f"but {len(modules)} modules were given")
            modules = dict(zip(schedule.names, modules))
        missing = [n for n in schedule.names if n not in modules]
        if missing:
            raise ConfigError(f"no module for expert(s) {missing}; given {sorted(modules)}")
        return cls(experts={n: modules[n] for n in schedule.names}, device=device,
                   offload_device=offload_device, offload=offload)

    def activate(self, name: str) -> nn.Module:
        """Make ``name`` the expert on the compute device and return its module."""
        if name not in self.experts:
            raise KeyError(f"unknown expert {name!r}; have {sorted(self.experts)}")
        if self.offload:
            for other in self.experts:
                if other != name and self._placement[other] != "offloaded":
                    self._move(other, self.offload_device, "offloaded", "offload")
        if self._placement[name] != "active":
            self._move(name, self.device, "active", "load")
        self.active = name
        return self.experts[name]

    def offload_all(self) -> None:
        """Park every expert on the offload device (e.g. to free the GPU for the VAE decode)."""
        for name in self.experts:
            if self._placement[name] != "offloaded":
                self._move(name, self.offload_device, "offloaded", "offload")
        self.active = None

    def placement(self, name: str) -> str | None:
        """"active", "offloaded" or None (not moved yet)."""
        return self._placement[name]

    def _move(self, name: str, device: torch.device, placement: str, reason: str) -> None:
        module = self.experts[name]
        source = module_device(module)
        module.to(device)
        self._placement[name] = placement
        self.events.append(OffloadEvent(expert=name, device=str(device), reason=reason))
        if source is not None and source.type == "cuda" and device != source:
            # return the freed blocks to the driver, as the official offload path does
            torch.cuda.empty_cache()
