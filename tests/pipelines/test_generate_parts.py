"""Generation building blocks without the VAE: size rule, rates, settings, the reusable denoising loop."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models import ExpertSchedule, S2VTransformerConfig, make_scheduler, random_s2v_transformer
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings, fit_size, parse_fps, parse_max_area
from s2v_toolkit.pipelines.sampling import denoise_clip


# Expected values worked out by hand from the official rule (Wan2.2 ``get_size_less_than_area``, see
# generation_inputs' docstring): tries scales from sqrt(area/(h*w)) down in 100 steps towards
# (-b + sqrt(b^2 - 2ac)) / 2a (a = h*w, b = 63(h+w), c = 63^2 - area); the first whose sides rounded
# *up* to 64 fit the area wins; references within the area keep their scale (rounded up to 64).
@pytest.mark.parametrize("ref, size, expected", [
    ((720, 1280), "704x1280", (704, 1280)),  # the pairs: 720p at 704*1280 ...
    ((480, 832), "448x832", (448, 832)),     # ... and 480x832 at 448*832
    ((720, 1280), "720x1280", (704, 1280)),  # scale 1 -> 720 rounds up to 768 (too big), then 704
    ((832, 480), "480x832", (832, 448)),     # portrait reference -> portrait shot
    ((1080, 1920), "448x832", (448, 832)),   # 1080p scaled down: 0.4554 -> 491x874 -> 512x896 too big;
                                             # the first fit is int(1080 s) <= 448, int(1920 s) <= 832
    ((1080, 1920), "704x1280", (704, 1280)),
    ((1024, 1024), "704x1280", (896, 896)),  # square: s from 0.9270 down; i = 16 -> s 0.8740 -> 894 -> 896
    ((500, 500), "704x1280", (512, 512)),    # within the area: not blown up, 500 rounded up to 512
    ((300, 400), "448x832", (320, 448)),     # within the area: 300 -> 320, 400 -> 448
])
def test_fit_size_official_rule(ref, size, expected):
    out = fit_size(*ref, parse_max_area(size))
    assert out == expected
    assert out[0] * out[1] <= parse_max_area(size) and out[0] % 64 == 0 and out[1] % 64 == 0


def test_fit_size_keeps_small_references_at_their_scale():
    # every reference within the area comes out at its own size rounded up to 64, if that fits
    for h, w in [(128, 128), (200, 330), (448, 640), (640, 448)]:
        up = (-(-h // 64) * 64, -(-w // 64) * 64)
        assert fit_size(h, w, 448 * 832) == up


@pytest.mark.parametrize("size", ["10x10", "2000x2000", "banana"])
def test_unsupported_sizes_are_config_errors(size):
    with pytest.raises(ConfigError, match="size"):
        parse_max_area(size)


def test_parse_fps_exact_and_snapped():
    assert parse_fps("24000/1001") == Fraction(24000, 1001)
    assert parse_fps("23.976") == Fraction(24000, 1001)
    assert parse_fps("29.97") == Fraction(30000, 1001)
    assert parse_fps("25") == 25
    with pytest.raises(ConfigError):
        parse_fps("0")


def test_settings_roundtrip_and_validation():
    s = GenerationSettings(prompt="p", fps="24000/1001", seed=5, boundary=0.9, guidance2=3.0)
    again = GenerationSettings.from_dict(s.to_dict())
    assert again == s and again.fps == Fraction(24000, 1001)
    with pytest.raises(ConfigError, match="multiple of 4"):
        GenerationSettings(infer_frames=30).validate()
    with pytest.raises(ConfigError, match="scheduler"):
        GenerationSettings(scheduler="ddim").validate()


def _inputs(model, frames=2, hw=8, seed=0):
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 16, frames, hw, hw, generator=g)
    shared = {"ref_latents": torch.randn(1, 16, 1, hw, hw, generator=g), "motion_latents": None,
              "drop_motion_frames": True}
    audio = torch.randn(1, cfg.num_audio_layers, cfg.audio_dim, 4 * frames, generator=g)
    text = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    cond = {"text_embeddings": text, "audio_features": audio}
    uncond = {"text_embeddings": torch.zeros_like(text), "audio_features": torch.zeros_like(audio)}
    return noise, shared, cond, uncond


@pytest.fixture(scope="module")
def tiny_dit():
    return random_s2v_transformer(S2VTransformerConfig.tiny(), seed=0)


def test_step_callback_keeps_a_masked_region_on_the_source(tiny_dit):
    """Masked blending as the re-dub does it: outside the mask the latent follows the source's noise
    trajectory, so the result equals the source there, and only the masked region is generated."""
    noise, shared, cond, uncond = _inputs(tiny_dit)
    source = torch.randn_like(noise)
    mask = torch.zeros_like(noise)
    mask[..., 2:6, 2:6] = 1.0  # the "mouth"
    seen = []

    def blend(info, latents, scheduler):
        seen.append(info.step_index)
        return mask * latents + (1 - mask) * scheduler.add_noise(source, noise, info.step_index + 1)

    out = denoise_clip(tiny_dit, ExpertSchedule.single("m", 4.5), make_scheduler("unipc"), noise, shared, cond,
                       uncond, steps=4, step_callback=blend)
    assert seen == [0, 1, 2, 3]
    torch.testing.assert_close(out * (1 - mask), source * (1 - mask))
    assert (out * mask - source * mask).abs().max() > 0.1  # the masked region was generated


def test_start_from_latents_skips_early_steps(tiny_dit):
    noise, shared, cond, uncond = _inputs(tiny_dit)
    start = torch.randn_like(noise)
    trace = []
    out = denoise_clip(tiny_dit, ExpertSchedule.single("m", 1.0), make_scheduler("euler"), noise, shared, cond,
                       uncond, steps=6, init_latents=start, start_step=5, trace=trace)
    assert [s.step_index for s in trace] == [5]
    # one Euler step from x = (1 - s5) start + s5 noise with the model's velocity: the result moves
    # toward `start`, far closer to it than the noise is
    assert (out - start).norm() < 0.5 * (noise - start).norm()


def test_guidance_scale_one_runs_only_the_conditional_branch(tiny_dit):
    noise, shared, cond, uncond = _inputs(tiny_dit)
    calls = []
    handle = tiny_dit.register_forward_pre_hook(lambda m, a, kw: calls.append(kw["latents"].shape[0]),
                                                with_kwargs=True)
    try:
        denoise_clip(tiny_dit, ExpertSchedule.single("m", 1.0), make_scheduler("unipc"), noise, shared, cond,
                     uncond, steps=2)
        denoise_clip(tiny_dit, ExpertSchedule.single("m", 3.0), make_scheduler("unipc"), noise, shared, cond,
                     uncond, steps=2, batched_cfg=True)
    finally:
        handle.remove()
    assert calls == [1, 1, 2, 2]


def test_retime_from_the_model_grid_blends_or_picks_the_nearest_frame():
    from s2v_toolkit.pipelines.s2v_generator import _retime

    grid = np.stack([np.full((2, 2, 3), 30 * i, np.uint8) for i in range(8)])  # frame i has value 30 i
    native = _retime(grid, 5, Fraction(16), "native")
    np.testing.assert_array_equal(native, grid[:5])
    blend = _retime(grid, 6, Fraction(24), "blend")  # output n sits at model position 2n/3
    assert [int(f[0, 0, 0]) for f in blend] == [round(30 * 2 * n / 3) for n in range(6)]
    nearest = _retime(grid, 6, Fraction(24), "nearest")
    assert [int(f[0, 0, 0]) // 30 for f in nearest] == [0, 1, 1, 2, 3, 3]
