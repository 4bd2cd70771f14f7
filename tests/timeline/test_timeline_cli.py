"""``s2vt inspect``, ``extract-dialogue``, ``shots`` and ``conform`` from the command line."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import soundfile

from s2v_toolkit.cli import main

import timeline_testkit as kit




def _project(tmp_path, ext="xml"):
    """An FCP 7 XML cut whose media sits in another folder than the one written in the XML."""
    media = tmp_path / "moved_media"
    media.mkdir()
    for name in ("dia1", "dia2"):
        # media starts at 01:00:00:00 (its available range); the clips use up to 2281 frames in
        kit.write_wav(media / f"{name}.wav", 2300 / 25, 8000)
    path = tmp_path / f"cut.{ext}"
    kit.write_with_adapter(kit.build_cut(25.0, media_dir="/Volumes/EDIT/media"), path)
    return path, media


def test_inspect_text_and_json(tmp_path, capsys):
    path, media = _project(tmp_path)
    assert main(["inspect", str(path), "--search", str(media), "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "fcp_xml, 25 fps, start 01:00:00:00" in out
    assert "rec 01:00:00:00-01:00:01:22" in out          # shot1: 47 frames from the start
    assert "missing" in out and "ok" in out              # videos are not there, the WAVs are

    assert main(["inspect", str(path), "--search", str(media), "--json", "--no-probe"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "s2v.timeline" and doc["schema_version"] == 1
    assert doc["rate_exact"] == "25" and doc["drop_frame"] is False
    kinds = [t["kind"] for t in doc["tracks"]]
    assert kinds.count("video") == 2 and kinds.count("audio") == 2
    dia = [c for c in doc["clips"] if c["media"]["url"] and c["media"]["url"].endswith("dia1.wav")][0]
    assert dia["media"]["status"] == "ok" and dia["media"]["path"] == str(media / "dia1.wav")
    assert dia["media"]["found_by"] == "search folder"
    shot = [c for c in doc["clips"] if c["name"] == "shot1"][0]
    assert shot["media"]["status"] == "missing" and shot["markers"][0]["name"] == "note: ADR"
    assert any("shot1" in p and "not found" in p for p in doc["problems"])


def test_bad_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "cut.xml"
    bad.write_text("<xmeml version='4'><sequence><name>x</name>")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("s2vt: error: ") and str(bad) in err and "\n" not in err


def test_extract_dialogue_writes_wav_and_map(tmp_path, capsys):
    path, media = _project(tmp_path)
    out = tmp_path / "dx"
    assert main(["extract-dialogue", str(path), "--search", str(media), "--track", "A1", "-o", str(out)]) == 0
    index = json.loads((out / "dialogue.json").read_text())
    (track,) = index["tracks"]
    data, rate = soundfile.read(str(out / track["wav"]), dtype="float32")
    assert rate == 16000 and data.ndim == 1 and data.dtype == np.float32
    assert data.shape[0] == track["samples"] == round(150 / 25 * 16000)  # cut is 150 frames at 25 fps
    assert [s["sample_start"] for s in track["segments"]] == [0, round(47 / 25 * 16000)]


def test_shots_and_conform_commands(tmp_path, capsys):
    path, _ = _project(tmp_path, ext="otio")
    before = path.read_bytes()
    assert main(["shots", str(path), "--json"]) == 0
    shots = json.loads(capsys.readouterr().out)
    assert [s["clip_name"] for s in shots] == ["shot1", "shot2", "insert", "shot2", "shot3"]
    renders = tmp_path / "renders.json"
    renders.write_text(json.dumps([{"media_path": str(tmp_path / "r1.mov"), "clip_id": "V1.1",
                                    "character": "ANNA", "job_id": "j1", "line_text": "Hello."}]))
    assert main(["conform-timeline", str(path), str(renders), "-o", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["track_names"] == ["S2V v001"] and result["placed"][0]["source_clip_ids"] == ["V1.1"]
    written = pathlib.Path(result["outputs"]["otio_json"])
    assert written.name == "cut.s2v_v001.otio" and written.exists()
    assert path.read_bytes() == before
    assert main(["inspect", str(written), "--json", "--no-probe"]) == 0
    doc = json.loads(capsys.readouterr().out)
    new = [c for c in doc["clips"] if c["track"] == doc["tracks"][-1]["id"]]
    assert new[0]["s2v"]["line_text"] == "Hello." and new[0]["record"]["tc_in"] == "01:00:00:00"


def test_json_schema_keys_are_the_documented_ones(tmp_path, capsys):
    """docs/timeline.md documents these keys; changing them breaks users' scripts."""
    path, media = _project(tmp_path)
    assert main(["inspect", str(path), "--json", "--no-probe"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"schema", "schema_version", "name", "path", "adapter", "rate", "rate_exact",
                        "drop_frame", "global_start", "duration", "tracks", "clips", "transitions",
                        "markers", "problems", "notes"}
    assert set(doc["tracks"][0]) == {"id", "kind", "name", "enabled", "stack_index", "clip_ids",
                                     "dialogue", "dialogue_reason"}
    clip = doc["clips"][0]
    assert set(clip) == {"id", "track", "kind", "name", "enabled", "active", "record", "source", "media_range",
                         "speed", "freeze_frame", "effects", "nested_in", "gain_db", "source_channel", "media",
                         "markers", "s2v", "metadata_keys", "problems"}
    assert set(clip["record"]) == {"start", "duration", "tc_in", "tc_out"}
    assert set(clip["record"]["start"]) == {"value", "rate"}
    assert set(clip["media"]) == {"status", "exists", "reference_kind", "url", "path", "found_by",
                                  "available_range", "reference_keys", "active_key", "problems"}
    assert set(clip["markers"][0]) == {"name", "color", "owner", "comment", "record", "s2v"}
    docs = (pathlib.Path(__file__).parents[2] / "docs" / "timeline.md").read_text()
    for key in set(doc) | set(clip) | set(clip["media"]):
        assert f'"{key}"' in docs, f"{key} is not documented in docs/timeline.md"
