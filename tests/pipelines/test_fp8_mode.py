"""``--fp8`` on ``s2vt generate`` / ``s2vt render``: the fp8 modes convert the right layers (and switch
attention), reach the generator from both commands, and are recorded in the sidecar. On a CPU the
e4m3 arithmetic is emulated in float32, so the generated frames differ a little from the plain model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipelines_testkit import run_cli as _cli
from pipelines_testkit import tone as _tone
from torch import nn

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer
from s2v_toolkit.models import attention as attn
from s2v_toolkit.models.fp8 import FP8_MODES, Fp8Linear, apply_fp8_mode
from s2v_toolkit.pipelines.generation_inputs import DriveAudio, GenerationSettings, load_reference_image
from s2v_toolkit.pipelines.s2v_generator import S2VGenerator

SR = 16000


@pytest.fixture(autouse=True)
def _restore_attention():
    yield
    attn.set_attention_backend("auto")


@pytest.mark.parametrize("mode", list(FP8_MODES))
def test_modes_convert_the_documented_layers(mode):
    cfg = S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, seed=1)
    info = apply_fp8_mode(model, mode, "cpu")
    names = {n for n, m in model.named_modules() if isinstance(m, Fp8Linear)}
    per_block = {"off": 0, "linears": 6, "all-linears": 8, "attention": 8}[mode]
    assert info["fp8_layers"] == len(names) == per_block * cfg.num_layers
    out_proj = {n for n in names if n.endswith("attn.o")}
    assert bool(out_proj) == (mode in ("all-linears", "attention"))
    if mode != "off":
        assert "blocks.0.self_attn.q" in names and "blocks.0.ffn.2" in names
    assert type(model.blocks[0].cross_attn.k) is nn.Linear  # text k/v stay bf16 in every mode
    # attention: the process-wide backend is switched to fp8 (our kernel, emulated on a CPU)
    assert info["attention"] == ("fp8" if mode == "attention" else None)
    assert attn.get_attention_backend() == ("fp8" if mode == "attention" else "auto")


def test_unknown_mode_is_refused(bundle):
    with pytest.raises(ValueError, match="unknown fp8 mode"):
        apply_fp8_mode(random_s2v_transformer(S2VTransformerConfig.tiny(), seed=1), "fp4")
    with pytest.raises(ConfigError, match="--fp8 fp4"):
        S2VGenerator.load(bundle, device="cpu", fp8="fp4")


def test_fp8_generation_is_close_to_but_not_the_plain_output(bundle, reference):
    image = load_reference_image(reference)
    audio = DriveAudio(path=Path("line.wav"), waveform=_tone(0.6))
    settings = GenerationSettings(prompt="a woman speaks", steps=2, size="64x80", fps=16, infer_frames=16, seed=5)
    plain = S2VGenerator.load(bundle, device="cpu").generate(image, audio, settings)
    fp8 = S2VGenerator.load(bundle, device="cpu", fp8="linears")
    expert = next(iter(fp8.experts.values()))
    assert sum(isinstance(m, Fp8Linear) for m in expert.modules()) == 6 * expert.config.num_layers
    got = fp8.generate(image, audio, settings)
    assert got.sidecar_data["fp8"] == {"mode": "linears", "fp8_layers": 6 * expert.config.num_layers,
                                       "attention": None}
    assert plain.sidecar_data["fp8"] is None
    diff = np.abs(got.frames.astype(np.float64) - plain.frames.astype(np.float64))
    assert diff.max() > 0  # the e4m3 products really ran
    assert diff.mean() < 0.05 * max(1.0, float(np.abs(plain.frames).max()))


def test_generate_and_render_clis_pass_fp8(bundle, reference, tmp_path, monkeypatch):
    import soundfile as sf

    import s2v_toolkit.jobs as jobs
    from s2v_toolkit.jobs.wan_generator import WanJobOptions, WanS2VJobGenerator
    from s2v_toolkit.pipelines import checkpoint_bundle, redub_sampler

    seen = {}
    real_load = S2VGenerator.load.__func__

    def load(cls, bundle_, **kwargs):
        seen["fp8"] = kwargs.get("fp8")
        return real_load(cls, bundle_, **kwargs)

    monkeypatch.setattr(S2VGenerator, "load", classmethod(load))
    monkeypatch.setattr(checkpoint_bundle, "tiny_bundle", lambda folder=None: bundle)
    audio = tmp_path / "line.wav"
    sf.write(str(audio), _tone(0.5), SR)
    out = tmp_path / "shot.mov"
    argv = ["generate", "--image", str(reference), "--audio", str(audio), "--model", "tiny", "--device", "cpu",
            "--steps", "1", "--size", "64x80", "--clip-frames", "16", "--seed", "2", "--quiet", "--no-resume",
            "--fp8", "all-linears", "-o", str(out)]
    assert _cli(("pipelines",), argv) == 0
    assert seen["fp8"] == "all-linears"
    assert json.loads((tmp_path / "shot.mov.json").read_text())["fp8"]["mode"] == "all-linears"

    captured = {}

    class Summary:
        counts = {"done": 0, "failed": 0, "skipped": 0, "queued": 0, "running": 0}
        records = []
        seconds = 0.0
        store = "store"

        def to_dict(self):
            return {}

    monkeypatch.setattr(jobs, "load_plan", lambda path: object())
    monkeypatch.setattr(jobs, "render_plan", lambda plan, spec=None, **kw: captured.update(spec=spec) or Summary())
    assert _cli(("jobs",), ["render", str(tmp_path / "plan.json"), "--model", "tiny", "--fp8", "linears",
                            "--json"]) == 0
    assert WanJobOptions.from_spec(captured["spec"]).fp8 == "linears"
    loaded = {}

    def fake_load(checkpoint=None, **kwargs):
        loaded.update(kwargs)
        raise RuntimeError("stop here: no models needed")

    monkeypatch.setattr(redub_sampler, "load_generator", fake_load)
    with pytest.raises(RuntimeError, match="stop here"):
        WanS2VJobGenerator(captured["spec"])
    assert loaded["fp8"] == "linears"
    assert _cli(("jobs",), ["render", str(tmp_path / "plan.json"), "--model", "tiny", "--json"]) == 0
    assert WanJobOptions.from_spec(captured["spec"]).fp8 is None
