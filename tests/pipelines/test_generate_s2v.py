"""S2V generation with tiny random-weight models: CLI end to end, seeds, long-video alignment, CFG, MoE, errors."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from pipelines_testkit import run_cli, tone
import torch

from s2v_toolkit.media import probe
from s2v_toolkit.models import CheckpointError, write_tiny_checkpoint
from s2v_toolkit.pipelines.checkpoint_bundle import locate_checkpoint
from s2v_toolkit.pipelines.generation_inputs import DriveAudio, GenerationSettings, load_reference_image
from s2v_toolkit.pipelines.s2v_generator import RANDOM_WEIGHTS_WARNING, S2VGenerator, sidecar_path

SR = 16000


def cli_main(argv: list[str]) -> int:
    return run_cli(("pipelines",), argv)


_tone = tone


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), samples, SR)
    return path


@pytest.fixture(scope="module")
def generator(bundle):
    return S2VGenerator.load(bundle, device="cpu")


def _audio(seconds: float, name: str = "line.wav") -> DriveAudio:
    return DriveAudio(path=Path(name), waveform=_tone(seconds))


def _settings(**kw) -> GenerationSettings:
    base = dict(prompt="a man speaks to the camera", steps=2, size="64x80", fps=16, infer_frames=16, seed=1)
    base.update(kw)
    return GenerationSettings(**base)


# ---------------------------------------------------------------------------------------------
# CLI end to end
# ---------------------------------------------------------------------------------------------
def test_cli_tiny_generate_writes_mov_with_frames_audio_and_sidecar(tmp_path, reference, bundle, monkeypatch, capsys):
    # `--model tiny` builds its bundle in the cache: point the cache at a copy of the test bundle.
    cache = tmp_path / "cache"
    shutil.copytree(bundle.root, cache / "tiny-bundle-v1")
    monkeypatch.setenv("S2VT_CACHE", str(cache))
    audio = _write_wav(tmp_path / "line.wav", _tone(7.0))
    out = tmp_path / "shot.mov"
    code = cli_main(["generate", "--image", str(reference), "--audio", str(audio), "--model", "tiny",
                     "--steps", "2", "--seed", "7", "--fps", "24000/1001", "--size", "64x80", "--quiet",
                     "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert RANDOM_WEIGHTS_WARNING in captured.err

    info = probe(out)
    assert info.video.codec == "prores"
    assert info.video.fps == Fraction(24000, 1001)
    assert info.video.frame_count == round(7.0 * 24000 / 1001)  # 168: what the audio needs at that rate
    assert (info.video.width, info.video.height) == (64, 64)
    assert info.audio and abs(info.audio[0].duration - info.video.duration) < 0.01

    side = json.loads(sidecar_path(out).read_text())
    assert side["random_weights"] is True and side["model_kind"] == "tiny"
    assert side["warning"] == RANDOM_WEIGHTS_WARNING
    assert side["seed"] == 7 and side["settings"]["steps"] == 2 and side["frames"] == 168
    assert side["plan"]["num_frames"] == 168 and len(side["plan"]["clips"]) == 3  # 77 + 80 + 11
    assert side["checkpoint"]["root"] == str(cache / "tiny-bundle-v1")
    assert not (tmp_path / ".shot.mov.s2vt-parts").exists()  # resume store removed once written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "line.wav", "shot.mov", "shot.mov.json"]


# ---------------------------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_output_different_seed_differs(generator, reference):
    image = load_reference_image(reference)
    audio = _audio(0.5)
    a = generator.generate(image, audio, _settings(seed=11)).frames
    b = generator.generate(image, audio, _settings(seed=11)).frames
    c = generator.generate(image, audio, _settings(seed=12)).frames
    assert a.shape == (8, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1.0


# ---------------------------------------------------------------------------------------------
# long video: clips, frame count, audio/video alignment at every boundary
# ---------------------------------------------------------------------------------------------
def _feeding_recorder(module):
    """Record the audio features of every forward: [call] -> [batch, frames] (layer 0, channel 0)."""
    fed = []

    def hook(_module, _args, kwargs):
        fed.append(kwargs["audio_features"][:, 0, 0, :].clone())

    return fed, module.register_forward_pre_hook(hook, with_kwargs=True)


CHAIN_FRAMES = 40  # 2.5 s at 16 fps; clips of 16: 13 + 16 + 11 output frames


def _chain_run(generator, reference, **settings):
    """A 3-clip generation fed synthetic features whose every value is (audio frame index + 1), so what
    the model was fed says which audio frame drove it; with the features of every forward."""
    features = torch.arange(1, CHAIN_FRAMES + 1, dtype=torch.float32)[:, None, None].expand(CHAIN_FRAMES, 5, 24)
    fed, handle = _feeding_recorder(generator.experts["expert1"])
    try:
        result = generator.generate(load_reference_image(reference), _audio(2.5),
                                    _settings(steps=1, **settings), frame_features=features.clone())
    finally:
        handle.remove()
    return result, fed


@pytest.fixture(scope="module")
def chain(generator, reference):
    return _chain_run(generator, reference, aligned=True)


def test_long_audio_clip_chain_aligns_audio_frame_n_with_output_frame_n(chain):
    aligned = True  # (aligned=False, the official layout, would show audio frame n + 3 at output n)
    num_frames = CHAIN_FRAMES
    result, fed = chain
    assert result.num_frames == num_frames and result.frames.shape[0] == num_frames
    assert result.plan.num_clips == 3 and len(fed) == 3  # one forward (batched CFG) per clip and step
    assert [c.with_motion for c in result.trace.clips] == [False, True, True]
    offset = 0 if aligned else 3  # the official layout shows audio frame n + 3 at output frame n
    for n in range(num_frames):
        clip = result.trace.clips[[c.output_start <= n < c.output_start + c.kept for c in result.trace.clips].index(True)]
        g = clip.keep_start + n - clip.output_start  # generated frame of that clip shown at output n
        fed_cond, fed_uncond = fed[clip.index][0], fed[clip.index][1]
        expected = n + offset + 1 if n + offset < num_frames else 0.0  # past the audio: zeros
        assert fed_cond[g].item() == expected, f"output frame {n} (clip {clip.index})"
        assert fed_uncond[g].item() == 0.0  # unconditional branch: zeroed audio
    # clip boundaries: consecutive output frames come from consecutive audio frames
    drives = [result.trace.drive_frame_of_output(n) for n in range(num_frames - offset)]
    assert drives == [n + offset for n in range(num_frames - offset)]


def test_fitted_last_clip_keeps_the_earlier_clips_and_shortens_the_last(chain, generator, reference):
    num_frames = CHAIN_FRAMES  # the last of the 3 clips keeps 11 frames: 12 generated, not 16
    full, fed_full = chain
    fitted, fed_fit = _chain_run(generator, reference, aligned=True, fit_last_clip=True)
    assert fitted.num_frames == full.num_frames == num_frames
    assert [c.generated for c in fitted.plan.clips] == [16, 16, 12]
    assert [len(f[0]) for f in fed_fit] == [16, 16, 12] and [len(f[0]) for f in fed_full] == [16, 16, 16]
    # the last clip's forward was fed the same audio frames for the frames it keeps
    assert torch.equal(fed_fit[2][0], fed_full[2][0][:12])
    # the clips before it are the same clips: same noise, same inputs, same frames
    assert np.array_equal(fitted.frames[:29], full.frames[:29])
    assert fitted.sidecar_data["settings"]["fit_last_clip"] is True
    assert fitted.sidecar_data["plan"]["clips"][-1]["generated"] == 12


def test_pose_video_conditions_every_step(generator, reference, tmp_path):
    from s2v_toolkit.media import write_video

    rng = np.random.default_rng(3)
    pose_path = write_video(tmp_path / "pose.mp4", rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8), 16,
                            preset="h264")
    image, audio = load_reference_image(reference), _audio(0.5)
    shapes = []
    expert = generator.experts["expert1"]
    handle = expert.register_forward_pre_hook(
        lambda _m, _a, kw: shapes.append(None if kw.get("pose_latents") is None else tuple(kw["pose_latents"].shape)),
        with_kwargs=True)
    try:
        posed = generator.generate(image, audio, _settings(), pose=pose_path)
    finally:
        handle.remove()
    plain = generator.generate(image, audio, _settings())
    assert shapes == [(2, 16, 4, 8, 8)] * 2  # both CFG branches, every step: 16 frames = 4 latents
    assert posed.sidecar_data["pose_video"] == str(pose_path)
    assert not np.array_equal(posed.frames, plain.frames)


def test_start_from_reference_keeps_motion_tokens_and_trims_nothing(generator, reference):
    calls = []
    expert = generator.experts["expert1"]
    handle = expert.register_forward_pre_hook(
        lambda _m, _a, kw: calls.append((kw["drop_motion_frames"], kw["motion_latents"] is not None)),
        with_kwargs=True)
    try:
        result = generator.generate(load_reference_image(reference), _audio(1.0),
                                    _settings(steps=1, start_from_reference=True))
    finally:
        handle.remove()
    assert result.num_frames == 16 and result.plan.num_clips == 1
    assert result.trace.clips[0].keep_start == 0 and result.trace.clips[0].with_motion
    assert calls == [(False, True)]
    assert result.trace.drive_frame_of_output(0) == 0


class _Killed(Exception):
    pass


def test_killed_render_resumes_after_the_last_finished_clip(generator, reference, tmp_path):
    image, audio = load_reference_image(reference), _audio(1.5)  # 24 frames: clips of 13 + 11
    settings = dict(steps=2, seed=5)
    reference_run = generator.generate(image, audio, _settings(**settings))

    def kill_in_clip_1(info, latents, scheduler):
        if info.clip_index == 1:
            raise _Killed()

    parts = tmp_path / "parts"
    with pytest.raises(_Killed):
        generator.generate(image, audio, _settings(**settings), step_callback=kill_in_clip_1, resume_dir=parts)
    clips_run = []
    # no seed given on the re-run (the CLI default): the interrupted run's seed is taken from the store
    resumed = generator.generate(image, audio, _settings(steps=2, seed=None), resume_dir=parts,
                                 step_callback=lambda info, *_: clips_run.append(info.clip_index))
    assert resumed.seed == 5
    assert set(clips_run) == {1}  # clip 0 came from the store
    np.testing.assert_array_equal(resumed.frames, reference_run.frames)
    assert [c.index for c in resumed.trace.clips] == [0, 1]
    assert len(resumed.trace.steps) == 2 * 2
    # other inputs (another seed): the stored clips are not used, sampling starts at clip 0
    clips_run.clear()

    def record_and_stop(info, *_):
        clips_run.append(info.clip_index)
        raise _Killed()

    with pytest.raises(_Killed):
        generator.generate(image, audio, _settings(steps=2, seed=6), resume_dir=parts,
                           step_callback=record_and_stop)
    assert clips_run == [0]


# ---------------------------------------------------------------------------------------------
# classifier-free guidance: batched == two forwards
# ---------------------------------------------------------------------------------------------
def test_cfg_batched_equals_unbatched(generator, reference):
    image = load_reference_image(reference)
    audio = _audio(0.5)
    batched = generator.generate(image, audio, _settings(cfg_batch="on", steps=3), frame_features=None)
    single = generator.generate(image, audio, _settings(cfg_batch="off", steps=3))
    diff = np.abs(batched.frames.astype(int) - single.frames.astype(int))
    assert diff.max() <= 1  # equal up to float reordering (uint8 rounding at most one level)
    assert batched.trace.steps == single.trace.steps


# ---------------------------------------------------------------------------------------------
# two-expert MoE
# ---------------------------------------------------------------------------------------------
def test_moe_switches_expert_and_guidance_at_the_boundary(bundle, reference, tmp_path):
    write_tiny_checkpoint(tmp_path / "expert2", seed=1)  # distinguishable second expert
    moe = S2VGenerator.load(locate_checkpoint(bundle.root, expert2=tmp_path / "expert2"), device="cpu")
    assert list(moe.experts) == ["expert1", "expert2"]
    seen = {name: [] for name in moe.experts}
    handles = [m.register_forward_pre_hook(
        lambda _m, _a, kw, name=name: seen[name].append(int(kw["timestep"][0])), with_kwargs=True)
        for name, m in moe.experts.items()]
    try:
        result = moe.generate(load_reference_image(reference), _audio(0.5),
                              _settings(steps=5, boundary=0.9, guidance=5.0, guidance2=2.0))
    finally:
        for h in handles:
            h.remove()
    high, low = seen["expert1"], seen["expert2"]
    assert high and low, "both experts must run"
    assert all(t >= 900 for t in high) and all(t < 900 for t in low)
    assert sorted(high + low, reverse=True) == [s.timestep for s in result.trace.steps]
    for step in result.trace.steps:
        assert (step.expert, step.guidance_scale) == (("expert1", 5.0) if step.timestep >= 900 else ("expert2", 2.0))


@pytest.mark.gpu
def test_moe_offloads_inactive_expert_on_gpu(bundle, reference, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    write_tiny_checkpoint(tmp_path / "expert2", seed=1)
    moe = S2VGenerator.load(locate_checkpoint(bundle.root, expert2=tmp_path / "expert2"), device="cuda")
    placements = []
    moe.experts["expert2"].register_forward_pre_hook(
        lambda _m, _a: placements.append(next(moe.experts["expert1"].parameters()).device.type))
    moe.generate(load_reference_image(reference), _audio(0.5), _settings(steps=6, boundary=0.9))
    assert placements and set(placements) == {"cpu"}  # expert1 was parked while expert2 ran
    assert any(e.reason == "offload" for e in moe.offloader.events)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth",
                                     "diffusion_pytorch_model-00002-of-00002.safetensors",
                                     "wav2vec2-large-xlsr-53-english", "google/umt5-xxl", "config.json"])
def test_checkpoint_with_missing_file_names_it(bundle, tmp_path, missing):
    folder = tmp_path / "ckpt"
    shutil.copytree(bundle.root, folder)
    target = folder / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(CheckpointError) as err:
        locate_checkpoint(folder)
    message = str(err.value)
    assert "\n" not in message and str(target) in message


def test_single_file_repack_of_the_dit_gives_the_same_frames(bundle, generator, reference, tmp_path):
    from safetensors.torch import save_file

    state = generator.experts["expert1"].state_dict()
    repack = tmp_path / "s2v_repack_fp32.safetensors"  # community layout: one file, key prefix
    save_file({f"model.diffusion_model.{k}": v.contiguous() for k, v in state.items()}, str(repack))
    folder = tmp_path / "ckpt"
    shutil.copytree(bundle.root, folder)
    for shard in folder.glob("diffusion_pytorch_model*"):
        shard.unlink()  # the folder's own DiT is gone: the repack must be what loads
    repacked = S2VGenerator.load(locate_checkpoint(folder, transformer=repack), device="cpu")
    image, audio = load_reference_image(reference), _audio(0.5)
    a = repacked.generate(image, audio, _settings(seed=3)).frames
    b = generator.generate(image, audio, _settings(seed=3)).frames
    np.testing.assert_array_equal(a, b)


def test_cli_missing_checkpoint_file_is_one_line_error(bundle, tmp_path, reference, capsys):
    folder = tmp_path / "ckpt"
    shutil.copytree(bundle.root, folder)
    (folder / "Wan2.1_VAE.pth").unlink()
    audio = _write_wav(tmp_path / "a.wav", _tone(1.0))
    code = cli_main(["generate", "--image", str(reference), "--audio", str(audio), "--checkpoint", str(folder),
                     "--size", "64x80", "-o", str(tmp_path / "o.mov")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Wan2.1_VAE.pth" in err[0] and "missing" in err[0]
    assert not (tmp_path / "o.mov").exists()


@pytest.mark.parametrize("case", ["bad_image", "silent", "empty", "too_long", "bad_size"])
def test_bad_inputs_fail_before_any_model_loads(tmp_path, reference, capsys, case):
    image, audio = reference, _write_wav(tmp_path / "a.wav", _tone(2.0))
    extra = []
    if case == "bad_image":
        image = tmp_path / "broken.png"
        image.write_bytes(b"\x89PNG\r\n\x1a\nnot really an image")
    elif case == "silent":
        audio = _write_wav(tmp_path / "silent.wav", np.zeros(SR, np.float32))
    elif case == "empty":
        audio = _write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    elif case == "too_long":
        extra = ["--max-audio-seconds", "1.5"]
    else:
        extra = ["--size", "10x10"]
    # A checkpoint folder that does not exist: the input checks must fail first.
    code = cli_main(["generate", "--image", str(image), "--audio", str(audio), "--checkpoint",
                     str(tmp_path / "no_such_checkpoint"), "-o", str(tmp_path / "o.mov"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "no_such_checkpoint" not in err[0]
    expected = {"bad_image": "broken.png", "silent": "silent", "empty": "empty.wav", "too_long": "maximum",
                "bad_size": "unsupported size"}[case]
    assert expected in err[0]
