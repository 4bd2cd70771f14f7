"""One flow-matching denoising run of one clip, shared by new-shot generation and the re-dub pipeline.

``denoise_clip`` runs the scheduler from noise (or from a re-noised start latent) to a clean latent.
At every step it picks the expert and guidance scale from the :class:`ExpertSchedule` (one expert =
the released S2V-14B), activates it through the :class:`ExpertOffloader` (the inactive one is parked
on the CPU), evaluates classifier-free guidance (``guided_prediction``: conditional = prompt + audio,
unconditional = negative prompt + zeroed audio; batched or not; or another ``guidance`` callable with
the same signature, e.g. CFG-parallel over two GPUs), steps the scheduler and lets an
optional callback replace the new latent (masked blending for the re-dub: keep the unmasked region
on the source's noise trajectory).

The model inputs are passed through unchanged, split as in :mod:`guidance`: ``shared`` (reference,
motion, pose latents, ``drop_motion_frames``), ``cond`` / ``uncond`` (``text_embeddings``,
``audio_features``). The loop adds ``latents`` and ``timestep``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from s2v_toolkit.models.experts import ExpertOffloader, ExpertSchedule
from s2v_toolkit.models.schedulers import FlowMatchScheduler
from s2v_toolkit.pipelines.guidance import guided_prediction

__all__ = ["StepInfo", "StepCallback", "denoise_clip"]


@dataclass(frozen=True)
class StepInfo:
    """What one sampling step did (handed to callbacks, kept in the generation trace)."""

    clip_index: int
    step_index: int
    num_steps: int
    timestep: int
    sigma: float
    next_sigma: float
    expert: str
    guidance_scale: float

    def to_dict(self) -> dict:
        return asdict(self)


#: ``callback(info, latents, scheduler) -> new latents or None`` after each scheduler step; the
#: latents are at noise level ``info.next_sigma`` (``scheduler.add_noise(x0, noise, step_index + 1)``
#: re-noises a source latent to the same level).
StepCallback = Callable[[StepInfo, torch.Tensor, FlowMatchScheduler], "torch.Tensor | None"]


def denoise_clip(
    experts: ExpertOffloader | Mapping[str, nn.Module] | nn.Module,
    schedule: ExpertSchedule,
    scheduler: FlowMatchScheduler,
    noise: torch.Tensor,
    shared: Mapping[str, Any],
    cond: Mapping[str, Any],
    uncond: Mapping[str, Any],
    *,
    steps: int,
    shift: float = 3.0,
    batched_cfg: bool = True,
    init_latents: torch.Tensor | None = None,
    start_step: int = 0,
    step_callback: StepCallback | None = None,
    clip_index: int = 0,
    progress: bool | Any = False,
    trace: list[StepInfo] | None = None,
    guidance: Callable[..., Any] = guided_prediction,
    timesteps: list[int] | None = None,
    step_cache: Any = None,
) -> torch.Tensor:
    """Denoise one clip; returns the clean latent (float32, the shape of ``noise``).

    Args:
        experts: the offloader, a mapping expert name -> module, or one module (single expert).
        schedule: experts and boundaries; each step's expert and guidance scale come from it.
        noise: the starting noise ``[B, C, F, H, W]`` (on the compute device).
        init_latents / start_step: start from ``init_latents`` re-noised to step ``start_step``'s
            noise level instead of pure noise (partial denoising, e.g. a re-dub from the source).
        step_callback: see :data:`StepCallback`.
        progress: True for a tqdm bar per step, or a tqdm-like object with ``update()``.
        trace: a list that receives one :class:`StepInfo` per step.
        guidance: ``guidance(model, shared, cond, uncond, scale, batched=...)`` -> the guided
            velocity; default :func:`guided_prediction`. Several GPUs plug in here
            (:func:`s2v_toolkit.pipelines.distributed.parallel_models`: CFG-parallel, Ulysses).
        timesteps: an explicit denoising timestep list (few-step models: the step-distill schedule
            of :func:`s2v_toolkit.models.schedulers.step_distill_schedule`) instead of ``steps`` evenly
            spaced and shifted ones; its length must be ``steps``.
        step_cache: a :class:`s2v_toolkit.models.step_cache.TeaCache` (or None): decides per step
            whether the blocks run or the cached residual is reused.
    """
    if not isinstance(experts, ExpertOffloader):
        modules = experts if isinstance(experts, Mapping) else {schedule.names[0]: experts}
        experts = ExpertOffloader.for_schedule(schedule, modules, device=noise.device, offload=False)
    if timesteps is not None:
        if len(timesteps) != steps:
            raise ValueError(f"{len(timesteps)} timesteps given for {steps} steps")
        scheduler.set_denoising_steps(timesteps, shift=shift, device=noise.device)
    else:
        scheduler.set_timesteps(steps, shift=shift, device=noise.device)
    timesteps = scheduler.timestep_values
    sigmas = scheduler.sigma_values
    if not 0 <= start_step < steps:
        raise ValueError(f"start_step must be in 0..{steps - 1}, got {start_step}")
    plan = schedule.plan(timesteps)

    latents = noise.float()
    if init_latents is not None:
        latents = scheduler.add_noise(init_latents.float(), noise.float(), start_step)
    if start_step:
        # Multistep solvers start their history at the first step taken.
        scheduler.reset()

    if step_cache is not None:
        step_cache.begin_clip(steps)
    bar, own_bar = progress, False
    if progress is True:
        from tqdm import tqdm

        bar, own_bar = tqdm(total=steps - start_step, desc=f"clip {clip_index + 1} steps", unit="step",
                            leave=False), True
    try:
        batch = latents.shape[0]
        for i in range(start_step, steps):
            step = plan[i]
            model = experts.activate(step.expert_name)
            info = StepInfo(clip_index=clip_index, step_index=i, num_steps=steps, timestep=step.timestep,
                            sigma=sigmas[i], next_sigma=sigmas[i + 1], expert=step.expert_name,
                            guidance_scale=step.guidance_scale)
            # the scheduler's value: a step-distill schedule's timesteps are fractional (937.5)
            timestep = torch.full((batch,), float(timesteps[i]), device=latents.device)
            if step_cache is not None:
                model = step_cache.bind(model, i, float(timesteps[i]))
            with torch.no_grad():
                velocity = guidance(model, {**shared, "latents": latents, "timestep": timestep},
                                    cond, uncond, step.guidance_scale, batched=batched_cfg)
            latents = scheduler.step(velocity.float(), i, latents)
            if step_callback is not None:
                replaced = step_callback(info, latents, scheduler)
                if replaced is not None:
                    latents = replaced.float()
            if trace is not None:
                trace.append(info)
            if bar:
                bar.update(1)
    finally:
        if own_bar:
            bar.close()
    return latents
