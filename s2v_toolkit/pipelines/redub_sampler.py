"""The re-dub's generator calls: the loaded S2V models (:class:`S2VGenerator`) and one masked clip.

The models, expert schedule, text-embedding cache and audio features come from the generation
pipeline (:mod:`.s2v_generator`); the denoising loop is the shared :func:`.sampling.denoise_clip`,
with the latent blend of :mod:`.redub_mask` as its per-step callback and the re-dub's own start
latent (noise inside the mask, the re-noised source outside).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .generation_inputs import GenerationSettings
from .redub_mask import LatentBlend, LatentBlendParams

DEFAULT_REDUB_PROMPT = "a person talking to the camera, natural lip movement"


def load_generator(checkpoint: str | None = None, *, tiny: bool = False, device: str | None = None,
                   expert2: str | None = None, max_vram_gb: float | None = None, fp8: str = "off",
                   loras: list | None = None, lora_mode: str = "merge", lora_ignore_unmatched: bool = False,
                   parallel=None):
    """The S2V models: an official checkpoint folder, or the cached tiny random bundle (plumbing only).
    ``loras``/``lora_mode``/``lora_ignore_unmatched`` and ``parallel`` (a :class:`.ParallelConfig` of a
    torchrun launch) as :meth:`.S2VGenerator.load`."""
    from .checkpoint_bundle import locate_checkpoint, tiny_bundle
    from .s2v_generator import S2VGenerator

    if tiny:
        bundle = tiny_bundle()
        if expert2:
            bundle = locate_checkpoint(bundle.root, expert2=expert2)
    else:
        bundle = locate_checkpoint(checkpoint, expert2=expert2)
    return S2VGenerator.load(bundle, device=device, max_vram_gb=max_vram_gb, fp8=fp8, loras=loras,
                             lora_mode=lora_mode, lora_ignore_unmatched=lora_ignore_unmatched,
                             parallel=parallel if parallel is not None and parallel.enabled else None)


# Above this many pixels (frames x height x width) a CPU pass is chunked too: the whole-sequence pass
# holds every layer's activations for all frames at once (a 153-frame clip at the 512 crop needs
# several GB), the chunked one only a few frames' worth, whatever the clip length.
CPU_WHOLE_SEQUENCE_PIXELS = 2 ** 22


def vae_chunked(generator, frames: int | None = None, size: int | None = None) -> bool:
    """Chunked VAE passes bound memory; on a CPU the whole-sequence pass is faster (same numbers), so
    it is kept for small passes (``frames`` of ``size``² pixels, when given)."""
    if generator.device.type == "cuda":
        return True
    return frames is not None and size is not None and frames * size * size > CPU_WHOLE_SEQUENCE_PIXELS


def to_video_tensor(frames: np.ndarray, device, dtype=torch.float32) -> torch.Tensor:
    """(T, H, W, 3) uint8 or uint16 (16-bit crops of a high-bit-depth source) -> [1, 3, T, H, W] in [-1, 1]."""
    frames = np.ascontiguousarray(frames)
    half = 32767.5 if frames.dtype == np.uint16 else 127.5
    if frames.dtype == np.uint16:  # torch has no uint16 arithmetic on every device
        frames = frames.astype(np.int32)
    x = torch.from_numpy(frames).to(device)
    return x.permute(3, 0, 1, 2)[None].to(dtype) / half - 1.0


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """[1, 3, T, H, W] in [-1, 1] -> (T, H, W, 3) uint8."""
    x = ((video[0].float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


def to_frames(video: torch.Tensor, dtype=np.uint8) -> np.ndarray:
    """[1, 3, T, H, W] in [-1, 1] -> (T, H, W, 3) ``dtype`` (uint8, or uint16 for high-bit-depth sources)."""
    if np.dtype(dtype) == np.uint8:
        return to_uint8_frames(video)
    x = ((video[0].float().clamp(-1, 1) + 1.0) * 32767.5).round().to(torch.int32)
    return x.permute(1, 2, 3, 0).cpu().numpy().astype(np.uint16)


def sample_masked_clip(generator, *, original: torch.Tensor, mask: torch.Tensor, ref_latents: torch.Tensor,
                       motion_latents: torch.Tensor | None, audio_features: torch.Tensor,
                       settings: GenerationSettings, blend: LatentBlendParams, noise_generator: torch.Generator,
                       clip_index: int = 0, observer: Callable | None = None, progress: bool = False,
                       step_cache=None) -> torch.Tensor:
    """Denoise one clip: generate inside ``mask`` (``[1, 1, F, h, w]``), keep ``original`` (the source
    crop's clean latent ``[1, C, F, h, w]``) outside. ``audio_features``: ``[1, layers, dim, 4F]``.

    Returns the clean latent (float32).
    """
    from s2v_toolkit.models import make_scheduler

    from .guidance import guided_prediction
    from .sampling import denoise_clip

    device = generator.device
    schedule = generator.expert_schedule(settings)
    experts = generator.expert_offloader(schedule, offload=settings.offload)
    scheduler = make_scheduler(settings.scheduler)
    if settings.sampler_timesteps is not None:  # few-step models: an explicit timestep list
        scheduler.set_denoising_steps(settings.sampler_timesteps, shift=settings.shift, device=device)
    else:
        scheduler.set_timesteps(settings.steps, shift=settings.shift, device=device)
    # Noise on the CPU from the caller's generator (seeded seed + clip): the same noise anywhere.
    noise = torch.randn(original.shape, generator=noise_generator, dtype=torch.float32).to(device)
    blender = LatentBlend(original.float().to(device), mask.to(device), noise, scheduler, blend, observer)
    start = blender.initial()
    text = generator.text_cache(settings.prompt)
    negative = generator.text_cache(settings.negative_prompt)
    audio = audio_features.to(device, torch.float32)
    shared = {"ref_latents": ref_latents.to(device), "motion_latents": motion_latents,
              "drop_motion_frames": motion_latents is None}
    tokens = original.shape[2] * original.shape[3] * original.shape[4] // 4
    return denoise_clip(
        experts, schedule, scheduler, start, shared,
        cond={"text_embeddings": text, "audio_features": audio},
        uncond={"text_embeddings": negative, "audio_features": torch.zeros_like(audio)},
        steps=settings.steps, shift=settings.shift, batched_cfg=generator._batched_cfg(settings, tokens),
        start_step=blender.start_index, clip_index=clip_index, progress=progress,
        step_callback=lambda info, latents, _sched: blender.after_step(info.step_index, latents),
        # A generator loaded with ``parallel=`` splits the forwards over its ranks (CFG / Ulysses).
        guidance=getattr(generator, "guidance", guided_prediction),
        timesteps=settings.sampler_timesteps, step_cache=step_cache)
