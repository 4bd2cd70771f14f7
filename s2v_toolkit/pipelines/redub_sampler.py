"""The re-dub's generator: the S2V networks and a masked denoising loop for one crop-space clip.

This is a thin loop of its own (models + schedulers + guidance): it needs a hook after every solver
step (the latent blend of :mod:`.redub_mask`) and a clip whose motion context is real footage. It
follows the official S2V sampling (flow matching, UniPC by default, timestep shift, CFG with the
negative prompt and zeroed audio on the unconditional branch; reference and motion latents shared).

Models: :func:`tiny_models` (random weights, plumbing only) or :func:`load_models` (a checkpoint
folder in the official layout: transformer shards + ``config.json``, ``Wan2.1_VAE.pth``, the umT5
encoder and tokenizer, ``wav2vec2-large-xlsr-53-english``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .redub_mask import LatentBlend, LatentBlendParams

DEFAULT_PROMPT = "a person talking, natural lip movement, steady camera"
DEFAULT_NEGATIVE_PROMPT = ("blurry, distorted mouth, deformed lips, extra teeth, flicker, artifacts, "
                           "low quality, static, still image")


@dataclass
class RedubModels:
    transformer: object          # WanS2VTransformer
    vae: object                  # WanVAE
    text_encoder: object         # UMT5TextEncoder (prompt -> [L, text_dim] list)
    audio_encoder: object        # Wav2Vec2AudioEncoder
    device: torch.device
    dtype: torch.dtype           # transformer compute dtype
    name: str                    # "tiny (random weights)" or the checkpoint folder
    random_weights: bool         # True: output is plumbing only, not a lip-sync

    def describe(self) -> dict:
        cfg = self.transformer.config
        return {"name": self.name, "random_weights": self.random_weights, "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""), "transformer_dim": cfg.dim,
                "transformer_layers": cfg.num_layers}

    def encode_prompt(self, text: str) -> torch.Tensor:
        emb = self.text_encoder.encode(text)[0]
        return emb[None].to(self.device, self.dtype)


_TINY_CACHE: dict[tuple, RedubModels] = {}


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tiny_models(seed: int = 0, device: str | torch.device | None = None) -> RedubModels:
    """Random-weight tiny versions of all four networks (cached per process). Plumbing only."""
    from s2v_toolkit.models import (
        S2VTransformerConfig,
        UMT5Config,
        WanVAEConfig,
        build_wan_vae,
        load_audio_encoder,
        load_umt5_text_encoder,
        random_s2v_transformer,
        write_tiny_umt5,
        write_tiny_wav2vec2,
    )

    device = torch.device(device) if device is not None else _default_device()
    key = (seed, str(device))
    if key in _TINY_CACHE:
        return _TINY_CACHE[key]
    torch_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        vae = build_wan_vae(WanVAEConfig.tiny(), device=device)
        transformer = random_s2v_transformer(S2VTransformerConfig.tiny(), device=device, seed=seed)
        with tempfile.TemporaryDirectory(prefix="s2vt-tiny-") as tmp:
            # The tiny text and audio encoders are written the way real checkpoints are laid out and
            # read back through the real loaders (tokenizer included).
            write_tiny_umt5(tmp, seed=seed)
            text = load_umt5_text_encoder(tmp, device=device, dtype=torch.float32, config=UMT5Config.tiny())
            write_tiny_wav2vec2(tmp, seed=seed)
            audio = load_audio_encoder(tmp, device=device)
    finally:
        torch.random.set_rng_state(torch_state)
    models = RedubModels(transformer, vae, text, audio, device, torch.float32, "tiny (random weights)", True)
    _TINY_CACHE[key] = models
    return models


def load_models(checkpoint: str | os.PathLike, device: str | torch.device | None = None) -> RedubModels:
    """The four networks from an official-layout checkpoint folder (bf16 transformer on a GPU)."""
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.models import (
        S2VTransformerConfig,
        UMT5Config,
        WanVAEConfig,
        load_audio_encoder,
        load_s2v_transformer,
        load_umt5_text_encoder,
        load_wan_vae,
        read_transformer_config,
    )

    folder = Path(checkpoint)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: checkpoint folder not found")
    device = torch.device(device) if device is not None else _default_device()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = read_transformer_config(folder)
    tiny = cfg == S2VTransformerConfig.tiny()  # a tiny test checkpoint: the other networks are tiny too
    transformer = load_s2v_transformer(folder, device=device, dtype=dtype).eval()
    vae = load_wan_vae(folder, device=device, config=WanVAEConfig.tiny() if tiny else None)
    text = load_umt5_text_encoder(folder, device=device, dtype=torch.float32 if tiny else torch.bfloat16,
                                  config=UMT5Config.tiny() if tiny else None)
    audio = load_audio_encoder(folder, device=device)
    return RedubModels(transformer, vae, text, audio, device, dtype, os.fspath(folder), False)


@dataclass(frozen=True)
class SamplerSettings:
    steps: int = 40
    shift: float = 3.0
    guide_scale: float = 4.5
    scheduler: str = "unipc"
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT


def to_video_tensor(frames: np.ndarray, device, dtype=torch.float32) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> [1, 3, T, H, W] in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return (x.permute(3, 0, 1, 2)[None].to(dtype) / 127.5 - 1.0)


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """[1, 3, T, H, W] in [-1, 1] -> (T, H, W, 3) uint8."""
    x = ((video[0].float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


@torch.no_grad()
def sample_masked_clip(models: RedubModels, *, original: torch.Tensor, mask: torch.Tensor,
                       ref_latents: torch.Tensor, motion_latents: torch.Tensor | None,
                       audio_features: torch.Tensor, text: torch.Tensor, negative_text: torch.Tensor,
                       settings: SamplerSettings, blend: LatentBlendParams, generator: torch.Generator,
                       observer: Callable | None = None) -> torch.Tensor:
    """Denoise one clip: generate inside ``mask``, keep ``original`` (clean latent) outside.

    ``audio_features``: ``[1, layers, dim, 4 * F]`` (one row per pixel frame of the clip).
    Returns the clean latent ``[1, C, F, h, w]`` (float32).
    """
    from s2v_toolkit.models import make_scheduler

    from .guidance import guided_prediction

    scheduler = make_scheduler(settings.scheduler)
    scheduler.set_timesteps(settings.steps, shift=settings.shift)
    noise = torch.randn(original.shape, generator=generator, dtype=torch.float32).to(original.device)
    blender = LatentBlend(original.float(), mask, noise, scheduler, blend, observer)
    latents = blender.initial()
    dtype, device = models.dtype, models.device
    shared = {"ref_latents": ref_latents.to(device, dtype),
              "motion_latents": None if motion_latents is None else motion_latents.to(device, dtype)}
    cond = {"text_embeddings": text, "audio_features": audio_features.to(device, dtype)}
    uncond = {"text_embeddings": negative_text, "audio_features": torch.zeros_like(cond["audio_features"])}
    if cond["text_embeddings"].shape != uncond["text_embeddings"].shape:  # batch the two branches
        n = max(text.shape[1], negative_text.shape[1])
        pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, n - t.shape[1]))  # noqa: E731 (zero rows)
        cond["text_embeddings"], uncond["text_embeddings"] = pad(text), pad(negative_text)
    timesteps = scheduler.timestep_values
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else _nullcontext()
    for i in range(blender.start_index, scheduler.num_steps):
        step_shared = dict(shared, latents=latents.to(dtype),
                           timestep=torch.full((1,), float(timesteps[i]), device=device))
        with autocast:
            v = guided_prediction(models.transformer, step_shared, cond, uncond, settings.guide_scale)
        if i == blender.start_index:
            scheduler.reset()
        latents = scheduler.step(v.float(), i, latents)
        latents = blender.after_step(i, latents)
    return latents


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
