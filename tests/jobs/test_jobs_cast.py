"""Cast file: the demo cast loads; broken cast files give errors naming file, character and field."""

from __future__ import annotations

import json

import pytest

from jobs_helpers import DEMO
from s2v_toolkit.errors import ConfigError
from s2v_toolkit.jobs import CastError, load_cast


def test_demo_cast_loads_with_paths_relative_to_the_file():
    cast = load_cast(DEMO / "cast.yaml")
    assert cast.ids == ["collins", "hopper"]
    collins = cast.get("collins")
    assert collins.name == "COLLINS"
    assert collins.reference_images == [(DEMO / "cast" / "collins_reference.png").resolve()]
    assert [p.name for p in collins.voice_samples] == ["collins_voice_01.flac", "collins_voice_02.flac"]
    assert all(p.is_file() for p in collins.voice_samples + collins.reference_images)
    assert "white shirt" in collins.prompt


def _write(tmp_path, text, name="cast.yaml"):
    (tmp_path / "faces").mkdir(exist_ok=True)
    (tmp_path / "faces" / "a.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "a.flac").write_bytes(b"fLaC fake")
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("body, expected", [
    ("characters: []\n", "non-empty 'characters'"),
    ("characters:\n- name: A\n  reference_images: [faces/missing.png]\n", "character 'A': reference_images[0] not found"),
    ("characters:\n- id: a\n  reference_images: [faces/a.png]\n- id: a\n  reference_images: [faces/a.png]\n",
     "character 'a': 'id' is listed twice"),
    ("characters:\n- id: a\n  reference_images: [faces/a.png]\n  voice: a.flac\n", "character 'a': unknown field(s) voice"),
    ("characters:\n- id: a\n", "character 'a': 'reference_images' needs at least one image"),
    ("characters:\n- id: a\n  reference_images: [a.flac]\n", "character 'a': reference_images[0] is not an image"),
    ("characters:\n- id: a b\n  reference_images: [faces/a.png]\n", "character 'a b': 'id' may hold only"),
    ("characters:\n- id: unknown\n  reference_images: [faces/a.png]\n", "reserved"),
    ("characters:\n- id: a\n  reference_images: [faces/a.png]\n  voice_samples: [nope.flac]\n",
     "character 'a': voice_samples[0] not found"),
    ("characters:\n- id: a\n  reference_images: 7\n", "character 'a': 'reference_images' must be a path"),
    ("version: 2\ncharacters: []\n", "version 2 is not supported"),
    ("characters: [\n", "not valid YAML"),
])
def test_cast_errors_name_file_character_and_field(tmp_path, body, expected):
    path = _write(tmp_path, body)
    with pytest.raises(CastError) as err:
        load_cast(path)
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    assert expected in msg, msg
    assert isinstance(err.value, ConfigError) and "\n" not in msg


def test_json_cast_and_single_path_fields(tmp_path):
    path = _write(tmp_path, json.dumps({"characters": [
        {"id": "a", "name": "Anna", "reference_image": "faces/a.png", "voice_samples": "a.flac"}]}), "cast.json")
    cast = load_cast(path)
    assert cast.get("a").reference_images == [(tmp_path / "faces" / "a.png").resolve()]
    assert cast.get("a").voice_samples == [(tmp_path / "a.flac").resolve()]
    with pytest.raises(CastError, match="cast file not found"):
        load_cast(tmp_path / "nope.yaml")
