"""``max_vram_gb`` / ``--max-vram``: the low-memory generation mode gives the resident mode's frames, and the
option reaches the generator from ``s2vt generate`` and ``s2vt render``.

On a CPU the same code paths run as on a GPU (block offload with synchronous copies, the VAE and wav2vec2
wrapped to visit the device per call, the decode streamed to host memory chunk by chunk); only the CUDA
allocator cap (``torch.cuda.set_per_process_memory_fraction``) is GPU-only and is exercised by
``bench/bench_low_vram.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipelines_testkit import run_cli as _cli
from pipelines_testkit import tone as _tone
import torch

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models.offload import block_offload_of
from s2v_toolkit.pipelines.generation_inputs import DriveAudio, GenerationSettings, load_reference_image
from s2v_toolkit.pipelines.s2v_generator import S2VGenerator

SR = 16000


def _settings() -> GenerationSettings:
    # 1.6 s at 16 fps, 16-frame clips: several clips, so motion latents, the expert's resident part
    # leaving and coming back around each decode, and the host-side decode are all exercised.
    return GenerationSettings(prompt="a woman speaks", steps=2, size="64x80", fps=16, infer_frames=16, seed=5)


@pytest.fixture(scope="module")
def low(bundle):
    return S2VGenerator.load(bundle, device="cpu", max_vram_gb=24)


def test_max_vram_mode_gives_the_resident_frames(bundle, reference, low):
    image = load_reference_image(reference)
    audio = DriveAudio(path=Path("line.wav"), waveform=_tone(1.6))

    resident = S2VGenerator.load(bundle, device="cpu")
    expected = resident.generate(image, audio, _settings())
    expert = next(iter(low.experts.values()))
    offloader = block_offload_of(expert)
    assert offloader is not None and block_offload_of(next(iter(resident.experts.values()))) is None
    got = low.generate(image, audio, _settings())

    assert expected.plan.num_clips >= 2
    np.testing.assert_array_equal(got.frames, expected.frames)
    # the blocks really were streamed: every block once per forward (2 steps x 2 CFG branches per clip
    # at least), and they point at their host copies again afterwards
    forwards = 2 * 2 * expected.plan.num_clips
    assert offloader.copies >= forwards * len(expert.blocks) // 2
    for (module, name, is_param), host in zip(offloader.tensors[0].entries, offloader.tensors[0].host):
        tensor = module._parameters[name] if is_param else module._buffers[name]
        assert tensor.data_ptr() == host.data_ptr()
    # the resident part was parked before the encoders and every decode, and back for every clip
    reasons = [e.reason for e in low.offloader.events]
    assert reasons.count("load") == expected.plan.num_clips
    assert reasons.count("offload") == expected.plan.num_clips + 1
    assert reasons[0] == "offload" and reasons[-1] == "offload"
    assert got.sidecar_data["max_vram_gb"] == 24
    assert expected.sidecar_data["max_vram_gb"] is None


def test_host_decode_equals_the_device_decode(low, monkeypatch):
    # The GPU's chunked path on the CPU: frames streamed to the host latent by latent, the clip's last
    # frames kept, against the one-piece chunked decode of the resident mode.
    monkeypatch.setattr(S2VGenerator, "_vae_chunked", property(lambda self: True))
    latents = torch.randn(1, 16, 4, 8, 10, generator=torch.Generator().manual_seed(0))
    full = low.vae.module.decode(latents, chunked=True)
    got = low._decode_to_host(latents, 8)
    assert full.shape[2] == 13 and got.shape[2] == 8
    assert torch.equal(got, full[:, :, -8:].float().cpu())


def test_two_experts_in_max_vram_mode_switch_by_their_resident_parts(bundle, reference, tmp_path, monkeypatch):
    from s2v_toolkit.models import write_tiny_checkpoint
    from s2v_toolkit.pipelines.checkpoint_bundle import locate_checkpoint

    write_tiny_checkpoint(tmp_path / "expert2", seed=1)
    moe_bundle = locate_checkpoint(bundle.root, expert2=tmp_path / "expert2")
    settings = GenerationSettings(prompt="a", steps=4, size="64x80", fps=16, infer_frames=16, seed=3,
                                  boundary=0.9, guidance=5.0, guidance2=2.0)
    image = load_reference_image(reference)
    audio = DriveAudio(path=Path("line.wav"), waveform=_tone(0.5))
    expected = S2VGenerator.load(moe_bundle, device="cpu").generate(image, audio, settings).frames
    low = S2VGenerator.load(moe_bundle, device="cpu", max_vram_gb=24)
    moves = []
    offloader_class = type(low.expert_offloader(low.expert_schedule(settings)))
    real_move = offloader_class._move

    def spy(self, name, device, placement, reason):
        moves.append((name, reason))
        return real_move(self, name, device, placement, reason)

    monkeypatch.setattr(offloader_class, "_move", spy)
    got = low.generate(image, audio, settings).frames
    np.testing.assert_array_equal(got, expected)
    assert ("expert1", "load") in moves and ("expert2", "load") in moves
    assert ("expert1", "offload") in moves  # parked when the low-noise expert came in
    for module in low.experts.values():  # both still block-offloaded (a plain .to() would have undone it)
        assert block_offload_of(module) is not None


def test_max_vram_must_be_positive(bundle):
    with pytest.raises(ConfigError, match="max-vram"):
        S2VGenerator.load(bundle, device="cpu", max_vram_gb=0)


def test_generate_cli_passes_max_vram_to_the_generator(bundle, reference, tmp_path, monkeypatch, capsys):
    import soundfile as sf

    from s2v_toolkit.pipelines import checkpoint_bundle

    seen = {}
    real_load = S2VGenerator.load.__func__

    def load(cls, bundle_, device=None, dtype=None, max_vram_gb=None, **kwargs):
        seen["max_vram_gb"] = max_vram_gb
        return real_load(cls, bundle_, device=device, dtype=dtype, max_vram_gb=max_vram_gb, **kwargs)

    monkeypatch.setattr(S2VGenerator, "load", classmethod(load))
    monkeypatch.setattr(checkpoint_bundle, "tiny_bundle", lambda folder=None: bundle)
    audio = tmp_path / "line.wav"
    sf.write(str(audio), _tone(0.5), SR)
    out = tmp_path / "shot.mov"
    base = ["generate", "--image", str(reference), "--audio", str(audio), "--model", "tiny", "--device", "cpu",
            "--steps", "1", "--size", "64x80", "--clip-frames", "16", "--seed", "2", "--quiet", "--no-resume",
            "-o", str(out)]
    assert _cli(("pipelines",), base + ["--max-vram", "20.5"]) == 0
    assert seen["max_vram_gb"] == 20.5
    sidecar = json.loads((tmp_path / "shot.mov.json").read_text())
    assert sidecar["max_vram_gb"] == 20.5

    seen.clear()
    assert _cli(("pipelines",), base[:-1] + [str(tmp_path / "bad.mov"), "--max-vram", "-3"]) != 0
    assert "max-vram" in capsys.readouterr().err
    assert seen == {}  # refused before any model loads


def test_render_cli_passes_max_vram_to_the_generator(monkeypatch, tmp_path):
    import s2v_toolkit.jobs as jobs
    from s2v_toolkit.jobs.wan_generator import WanJobOptions, WanS2VJobGenerator
    from s2v_toolkit.pipelines import redub_sampler

    captured = {}

    class Summary:
        counts = {"done": 0, "failed": 0, "skipped": 0, "queued": 0, "running": 0}
        records = []
        seconds = 0.0
        store = "store"

        def to_dict(self):
            return {}

    def fake_render_plan(plan, spec=None, **kw):
        captured["spec"] = spec
        return Summary()

    monkeypatch.setattr(jobs, "load_plan", lambda path: object())
    monkeypatch.setattr(jobs, "render_plan", fake_render_plan)
    assert _cli(("jobs",), ["render", str(tmp_path / "plan.json"), "--model", "tiny", "--max-vram", "22",
                            "--json"]) == 0
    spec = captured["spec"]
    assert WanJobOptions.from_spec(spec).max_vram_gb == 22.0

    # ... and the job generator hands it to the model loader
    loaded = {}

    def fake_load(checkpoint=None, *, tiny=False, device=None, expert2=None, max_vram_gb=None, **kwargs):
        loaded["max_vram_gb"] = max_vram_gb
        raise RuntimeError("stop here: no models needed")

    monkeypatch.setattr(redub_sampler, "load_generator", fake_load)
    with pytest.raises(RuntimeError, match="stop here"):
        WanS2VJobGenerator(spec)
    assert loaded["max_vram_gb"] == 22.0

    # without the option, nothing is set
    captured.clear()
    assert _cli(("jobs",), ["render", str(tmp_path / "plan.json"), "--model", "tiny", "--json"]) == 0
    assert WanJobOptions.from_spec(captured["spec"]).max_vram_gb is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (allocator cap)")
def test_budget_caps_the_cuda_allocator(bundle):
    from s2v_toolkit.pipelines.s2v_generator import apply_vram_budget

    device = torch.device("cuda", torch.cuda.current_device())
    total = torch.cuda.get_device_properties(device).total_memory
    try:
        apply_vram_budget(device, 1.0)
        with pytest.raises(torch.cuda.OutOfMemoryError):
            torch.empty(int(2e9), dtype=torch.uint8, device=device)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    assert total > 2e9
