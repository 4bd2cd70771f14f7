"""The official S2V defaults and the presets, on the tiny random-weight models: per-clip seeds, the
reference in the last 6 motion frames, guidance only above 1, the S2V negative prompt, the official
reference transform, the --num-clips preview, few-step and TeaCache runs recorded in the sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pipelines_testkit import run_cli, tone

from s2v_toolkit.pipelines import s2v_generator as gen_module
from s2v_toolkit.pipelines.generation_inputs import (
    DEFAULT_NEGATIVE_PROMPT,
    DriveAudio,
    GenerationSettings,
    OFFICIAL_REFERENCE_MOTION_FRAMES,
    fit_pixels_official,
)
from s2v_toolkit.pipelines.presets import FEW_STEP_TIMESTEPS, apply_preset
from s2v_toolkit.pipelines.s2v_generator import S2VGenerator, clip_noise, sidecar_path


@pytest.fixture(scope="module")
def generator(bundle):
    return S2VGenerator.load(bundle, device="cpu")


def _settings(**kw) -> GenerationSettings:
    base = dict(prompt="a man speaks", steps=2, size="64x80", fps=16, infer_frames=16, seed=5)
    base.update(kw)
    return GenerationSettings(**base)


def _audio(seconds: float) -> DriveAudio:
    return DriveAudio(path=Path("line.wav"), waveform=tone(seconds))


class _Spy:
    """Records what each denoise_clip call was given (noise, motion latents, guidance calls)."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = gen_module.denoise_clip

        def spy(*args, **kwargs):
            shared = args[4]
            self.calls.append({"noise": args[3].clone(), "shared": shared, "kwargs": kwargs})
            return real(*args, **kwargs)

        monkeypatch.setattr(gen_module, "denoise_clip", spy)


def test_clip_noise_is_a_fresh_generator_seeded_seed_plus_clip():
    want = torch.randn((1, 16, 2, 4, 4), generator=torch.Generator().manual_seed(41 + 3))
    torch.testing.assert_close(clip_noise((1, 16, 2, 4, 4), 41, 3, torch.device("cpu"), torch.float32), want,
                               rtol=0, atol=0)


def test_clip_two_alone_has_the_noise_of_clip_two_in_sequence_and_previews_match(generator, reference,
                                                                                  monkeypatch):
    spy = _Spy(monkeypatch)
    # 1.5 s at 16 fps = 24 frames: 2 clips of 16 frames (13 + 11 kept)
    full = generator.generate(reference, _audio(1.5), _settings(seed=5, steps=1))
    seq = [c["noise"] for c in spy.calls]
    assert len(seq) == 2 and full.plan.num_clips == 2 and not torch.equal(seq[0], seq[1])
    spy.calls.clear()
    # "clip 2 alone": a one-clip preview whose seed is 5 + 1 draws exactly clip 2's noise of the run above
    generator.generate(reference, _audio(1.5), _settings(seed=6, steps=1, num_clips=1))
    assert len(spy.calls) == 1
    torch.testing.assert_close(spy.calls[0]["noise"], seq[1], rtol=0, atol=0)
    # the --num-clips preview: the first clip only, the same frames as in the full run
    preview = generator.generate(reference, _audio(1.5), _settings(seed=5, steps=1, num_clips=1))
    assert preview.plan.num_clips == 1 and preview.num_frames == 13
    np.testing.assert_array_equal(preview.frames, full.frames[:13])


def test_start_from_reference_fills_the_last_six_motion_frames(generator, reference, monkeypatch):
    seen = {}
    real = generator.encode_motion

    def spy(motion):
        seen.setdefault("first", motion.clone())
        return real(motion)

    monkeypatch.setattr(generator, "encode_motion", spy)
    generator.generate(reference, _audio(0.3), _settings(start_from_reference=True, steps=1))
    motion = seen["first"][0]  # [3, 73, H, W]
    ref = generator.last_reference_pixels[0, :, 0]
    k = OFFICIAL_REFERENCE_MOTION_FRAMES
    assert k == 6
    for f in range(motion.shape[1] - k, motion.shape[1]):
        torch.testing.assert_close(motion[:, f], ref.to(motion), rtol=0, atol=0)
    assert torch.count_nonzero(motion[:, : motion.shape[1] - k]) == 0  # the rest: zero frames


def test_guidance_at_or_below_one_runs_the_conditional_branch_only(generator, reference, monkeypatch):
    from s2v_toolkit.pipelines import guidance as guidance_module

    calls = {"n": 0}
    expert = next(iter(generator.experts.values()))
    real_forward = expert.forward

    def counting(*a, **kw):
        calls["n"] += 1
        return real_forward(*a, **kw)

    monkeypatch.setattr(expert, "forward", counting)
    for scale, forwards in ((0.5, 1), (1.0, 1), (1.5, 2)):
        calls["n"] = 0
        generator.generate(reference, _audio(0.3), _settings(guidance=scale, cfg_batch="off", steps=1))
        assert calls["n"] == forwards, scale  # 1 clip, 1 step
    assert not guidance_module.guidance_active(1.0) and guidance_module.guidance_active(1.0001)


def test_default_negative_prompt_is_the_s2v_configs():
    assert DEFAULT_NEGATIVE_PROMPT.startswith("画面模糊，最差质量，画面模糊，细节模糊不清")
    assert DEFAULT_NEGATIVE_PROMPT.endswith("三条腿，背景人很多，倒着走")
    assert "色调艳丽" not in DEFAULT_NEGATIVE_PROMPT  # not the T2V one
    assert GenerationSettings().negative_prompt == DEFAULT_NEGATIVE_PROMPT


def test_official_reference_transform_pads_where_the_size_was_rounded_up():
    # 720x1280 -> 704x1280: shorter side to 704 -> 704x1251 (int(704*1280/720)), centre crop to 1280 pads
    # (1280-1251)//2 = 14 columns left and 15 right with zeros (-1 after *2-1)
    img = np.full((720, 1280, 3), 200, np.uint8)
    x = fit_pixels_official(img, 704, 1280)
    assert tuple(x.shape) == (1, 3, 1, 704, 1280)
    assert torch.all(x[..., :14] == -1) and torch.all(x[..., -15:] == -1)
    torch.testing.assert_close(x[..., 14:-15], torch.full_like(x[..., 14:-15], 200 / 255 * 2 - 1))
    # a larger reference is cropped, not padded: 1080x1920 -> 704x1251 resize... then crop columns
    y = fit_pixels_official(np.full((1080, 1920, 3), 10, np.uint8), 704, 1280)
    assert torch.all(y[..., :14] == -1) and torch.all(y[..., 20:-20] > -1)


def test_official_preset_sets_the_official_plan_and_transform():
    s = apply_preset(GenerationSettings(), "official")
    assert (s.aligned, s.reference_fit, s.noise_device, s.preset) == (False, "official", "model", "official")
    s = apply_preset(GenerationSettings(steps=8), "few-step", explicit={"steps"})
    assert s.steps == 8 and len(s.sampler_timesteps) == 8 and s.guidance == 1.0


def test_last_clip_fitted_by_the_fast_presets_and_by_choice_only():
    import argparse

    from s2v_toolkit.commands.generation_options import add_fast_path_options, apply_generation_options

    parser = argparse.ArgumentParser()
    add_fast_path_options(parser)

    def settings(*argv):
        return apply_generation_options(GenerationSettings(), parser.parse_args(list(argv)))

    assert settings().fit_last_clip is False                       # exact: the official whole clips
    assert settings("--official").fit_last_clip is False
    assert settings("--preset", "fast").fit_last_clip is True
    assert settings("--preset", "few-step").fit_last_clip is True
    assert settings("--preset", "few-step", "--last-clip", "full").fit_last_clip is False  # given wins
    assert settings("--last-clip", "fit").fit_last_clip is True


def test_few_step_preset_samples_the_distill_timesteps_without_guidance(generator, reference, tmp_path):
    out = tmp_path / "few.mov"
    settings = apply_preset(_settings(steps=40, guidance=4.5), "few-step")
    result = generator.generate(reference, _audio(0.5), settings, out)
    steps = result.trace.steps
    assert [s.step_index for s in steps] == [0, 1, 2, 3]
    # shift 5 on the 1000-step grid at 1000 - t: 1000, 937.5, 833.3, 625 (recorded as ints)
    assert [s.timestep for s in steps] == [1000, 937, 833, 625]
    assert all(s.guidance_scale == 1.0 for s in steps)
    assert steps[-1].next_sigma == 0.0
    side = json.loads(sidecar_path(out).read_text())
    assert side["preset"] == "few-step"
    assert side["settings"]["sampler_timesteps"] == list(FEW_STEP_TIMESTEPS)
    assert side["settings"]["scheduler"] == "euler" and side["settings"]["shift"] == 5.0


def test_teacache_skips_forwards_and_the_sidecar_counts_them(generator, reference, tmp_path):
    def recorder(store):
        def cb(info, latents, _sched):
            store[info.step_index] = latents.clone()
        return cb

    out = tmp_path / "cached.mov"
    # a threshold far above any accumulated change: after the 5 warm-up steps every step is skipped
    cached, plain = {}, {}
    generator.generate(reference, _audio(0.3), _settings(steps=7, guidance=1.0, cache="teacache:1e9"), out,
                       step_callback=recorder(cached))
    c = json.loads(sidecar_path(out).read_text())["step_cache"]
    assert (c["forwards_computed"], c["forwards_skipped"]) == (5, 2)
    assert [s for _, s in c["skipped_steps"]] == [5, 6]
    # the 5 warm-up steps ran the blocks: their latents equal the uncached run's; the skipped ones differ
    generator.generate(reference, _audio(0.3), _settings(steps=7, guidance=1.0), step_callback=recorder(plain))
    for i in range(5):
        torch.testing.assert_close(cached[i], plain[i], rtol=0, atol=0)
    assert not torch.allclose(cached[6], plain[6])


def test_cli_official_flags_and_lora(tmp_path, reference, bundle, monkeypatch, capsys):
    import shutil

    import soundfile as sf
    from safetensors.torch import save_file

    cache = tmp_path / "cache"
    shutil.copytree(bundle.root, cache / "tiny-bundle-v1")
    monkeypatch.setenv("S2VT_CACHE", str(cache))
    audio = tmp_path / "line.wav"
    sf.write(str(audio), tone(0.5), 16000)
    dim = 64
    lora = tmp_path / "style.safetensors"
    save_file({"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(2, dim) * 0.1,
               "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(dim, 2) * 0.1,
               "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(2.0)}, str(lora))
    out = tmp_path / "shot.mov"
    code = run_cli(("pipelines",), ["generate", "--image", str(reference), "--audio", str(audio), "--model", "tiny",
                                    "--official", "--steps", "2", "--seed", "3", "--size", "64x80", "--quiet",
                                    "--lora", f"{lora}:0.5", "--cache", "teacache", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    side = json.loads(sidecar_path(out).read_text())
    assert side["preset"] == "official" and side["settings"]["aligned"] is False
    assert side["settings"]["reference_fit"] == "official" and side["settings"]["steps"] == 2
    assert side["settings"]["negative_prompt"] == DEFAULT_NEGATIVE_PROMPT
    assert side["loras"][0]["strength"] == 0.5 and side["loras"][0]["targets"] == 1
    assert side["step_cache"]["kind"] == "teacache" and side["step_cache"]["forwards_total"] == 2
    bad = tmp_path / "bad.safetensors"
    save_file({"diffusion_model.blocks.0.self_attn.q_img.lora_down.weight": torch.zeros(2, dim),
               "diffusion_model.blocks.0.self_attn.q_img.lora_up.weight": torch.zeros(dim, 2)}, str(bad))
    code = run_cli(("pipelines",), ["generate", "--image", str(reference), "--audio", str(audio), "--model", "tiny",
                                    "--steps", "1", "--size", "64x80", "--quiet", "--lora", str(bad),
                                    "-o", str(tmp_path / "bad.mov")])
    err = capsys.readouterr().err
    assert code == 2 and "q_img.lora_down.weight" in err and "Traceback" not in err


def test_use_loras_switches_runtime_loras_and_restores_the_model(generator, tmp_path):
    from safetensors.torch import save_file

    from s2v_toolkit.models.lora import LoraLinear

    expert = next(iter(generator.experts.values()))
    before = {k: v.clone() for k, v in expert.state_dict().items()}
    path = tmp_path / "character.safetensors"
    save_file({"diffusion_model.blocks.1.ffn.2.lora_down.weight": torch.randn(2, 128),
               "diffusion_model.blocks.1.ffn.2.lora_up.weight": torch.randn(64, 2),
               "diffusion_model.blocks.1.norm3.diff": torch.randn(64)}, str(path))
    reports = generator.use_loras([f"{path}:0.5"])
    assert reports[0]["mode"] == "runtime" and reports[0]["targets"] == 2
    assert isinstance(expert.blocks[1].ffn[2], LoraLinear)
    assert not torch.equal(expert.blocks[1].norm3.weight, before["blocks.1.norm3.weight"])
    assert generator.use_loras([]) == []
    assert not any(isinstance(m, LoraLinear) for m in expert.modules())
    after = expert.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
