"""Per-character LoRAs: the cast file's ``lora:`` field, and the Wan job generator switching them per job."""

from __future__ import annotations

import pytest

from s2v_toolkit.jobs import CastError, load_cast


def _cast(tmp_path, lora_text):
    (tmp_path / "a.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "loras").mkdir(exist_ok=True)
    (tmp_path / "loras" / "collins.safetensors").write_bytes(b"x")
    (tmp_path / "loras" / "style.safetensors").write_bytes(b"x")
    p = tmp_path / "cast.yaml"
    p.write_text("version: 1\ncharacters:\n  - id: collins\n    reference_images: [a.png]\n" + lora_text +
                 "  - id: hopper\n    reference_images: [a.png]\n")
    return p


def test_lora_field_single_and_list_with_strengths(tmp_path):
    cast = load_cast(_cast(tmp_path, "    lora: loras/collins.safetensors:0.8\n"))
    assert cast.get("collins").loras == [f"{(tmp_path / 'loras' / 'collins.safetensors').resolve()}:0.8"]
    assert cast.get("hopper").loras == []
    assert cast.to_dict()["characters"][0]["lora"] == ["loras/collins.safetensors:0.8"]
    cast = load_cast(_cast(tmp_path, "    lora: [loras/collins.safetensors, loras/style.safetensors:0.5]\n"))
    assert [s.rsplit(":", 1)[1] for s in cast.get("collins").loras] == ["1", "0.5"]


def test_missing_lora_file_names_the_character_and_field(tmp_path):
    with pytest.raises(CastError, match=r"character 'collins': lora\[0\] not found"):
        load_cast(_cast(tmp_path, "    lora: loras/missing.safetensors\n"))


def test_job_generator_switches_loras_only_when_the_character_changes():
    from types import SimpleNamespace

    from s2v_toolkit.jobs.wan_generator import WanJobOptions, WanS2VJobGenerator

    calls = []
    gen = object.__new__(WanS2VJobGenerator)
    gen.options = WanJobOptions()
    gen.models = SimpleNamespace(use_loras=lambda loras, ignore_unmatched=False: calls.append(list(loras)))
    gen._character_loras = ()
    for loras in (["a.safetensors:0.8"], ["a.safetensors:0.8"], [], ["b.safetensors:1"]):
        gen._use_character_loras(SimpleNamespace(loras=loras))
    assert calls == [["a.safetensors:0.8"], [], ["b.safetensors:1"]]


def test_render_options_carry_the_preset_and_last_clip_to_new_shots():
    import argparse
    from types import SimpleNamespace

    from s2v_toolkit.commands.jobs import _generation_options
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.jobs.wan_generator import WanJobOptions, WanS2VJobGenerator

    def settings(**opts):
        gen = object.__new__(WanS2VJobGenerator)
        gen.options = WanJobOptions(**opts)
        return gen._generation_settings(SimpleNamespace(prompt="", seed=1, fps=24))

    def cli(**kw):
        base = dict(steps=None, preset=None, official=False, cache=None, last_clip=None, lora=None)
        return dict(_generation_options(argparse.Namespace(**{**base, **kw})))

    assert cli(preset="few-step", last_clip="full") == {"preset": "few-step", "last_clip": "full"}
    assert settings().fit_last_clip is False
    assert settings(preset="few-step").fit_last_clip is True
    assert settings(**cli(preset="few-step", last_clip="full")).fit_last_clip is False
    assert settings(last_clip="fit").fit_last_clip is True
    with pytest.raises(ConfigError, match="last_clip"):
        settings(last_clip="short")
