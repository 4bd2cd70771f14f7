"""``s2vt diarize``: text and JSON output, RTTM file, cast with voice samples, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s2v_toolkit.cli import main
from s2v_toolkit.diarization import read_rttm

from .conftest import SR


@pytest.fixture(scope="module")
def files(tmp_path_factory, two_speakers, enrollment):
    import soundfile as sf

    d = tmp_path_factory.mktemp("cli")
    signal, ref = two_speakers
    sf.write(d / "scene.wav", signal, SR)
    sf.write(d / "ann.wav", enrollment["ann"], SR)
    sf.write(d / "bob.wav", enrollment["bob"], SR)
    (d / "cast.yaml").write_text("characters:\n  - name: Bob\n    voice_samples: [bob.wav]\n"
                                 "  - name: Ann\n    voice_samples: ann.wav\n")
    return d, ref


def test_cli_json_and_rttm_with_cast(files, capsys):
    d, ref = files
    code = main(["diarize", str(d / "scene.wav"), "--cast", str(d / "cast.yaml"), "--json", "--no-progress",
                 "--rttm", str(d / "scene.rttm")])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    # the count is estimated, the cast (2 characters) bounds it at 3 (one voice outside the cast allowed)
    assert doc["info"]["num_speakers"] is None and doc["info"]["max_speakers"] == 3
    assert len(doc["speakers"]) == 2
    first = doc["turns"][0]
    assert first["character"] == "Ann" and first["character_score"] > 0.7  # ref: Ann speaks first
    assert {t["character"] for t in doc["turns"]} == {"Ann", "Bob"}
    rttm = read_rttm(d / "scene.rttm")["scene"]
    assert [t.speaker for t in rttm][:2] == ["Ann", "Bob"] and len(rttm) == len(doc["turns"])


def test_cli_text_summary(files, capsys):
    d, _ = files
    assert main(["diarize", str(d / "scene.wav"), "--no-progress", "--num-speakers", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 speaker(s)" in out and "talk time per speaker" in out and "SPEAKER_01" in out


def test_cli_errors_are_one_line(files, tmp_path, capsys):
    d, _ = files
    assert main(["diarize", str(tmp_path / "nothing.wav")]) == 2
    assert "file not found" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("characters:\n  - name: X\n    voice_samples: missing.wav\n")
    assert main(["diarize", str(d / "scene.wav"), "--cast", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s2vt: error:") and "missing.wav" in err and err.count("\n") == 1
    assert main(["diarize", str(d / "scene.wav"), "--channel", "left"]) == 2
    assert "--channel" in capsys.readouterr().err
    assert main(["diarize", str(d / "scene.wav"), "--backend", "pyannote", "--pyannote-dir", str(tmp_path)]) == 2
    assert "config.yaml" in capsys.readouterr().err


def test_cast_file_validation(tmp_path):
    from s2v_toolkit.diarization import load_cast_voices
    from s2v_toolkit.errors import ConfigError

    (tmp_path / "a.json").write_text(json.dumps({"characters": [{"name": "A"}, {"name": "B", "voice_samples": []}]}))
    cast = load_cast_voices(tmp_path / "a.json")
    assert cast.characters == ["A", "B"] and cast.enrolled() == []
    for text, message in [("characters: []", "non-empty"), ("characters:\n  - voice_samples: x.wav", "id. or a .name"),
                          ("characters:\n  - name: A\n  - name: A", "twice"),
                          ("characters:\n  - id: Unknown", "reserved"), ("characters: [", "not valid YAML")]:
        (tmp_path / "c.yaml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_cast_voices(tmp_path / "c.yaml")


def test_voice_sample_without_speech_is_an_error(tmp_path):
    import soundfile as sf

    from s2v_toolkit.diarization import enroll
    from s2v_toolkit.errors import ConfigError

    sf.write(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    with pytest.raises(ConfigError, match="no detectable speech"):
        enroll({"A": [tmp_path / "quiet.wav"]})


def test_cli_timeline_input_uses_record_time(files, capsys):
    """An OTIO timeline with a 2 s gap before the dialogue clip: turns come back 2 s later than in the file."""
    otio = pytest.importorskip("opentimelineio")
    d, ref = files
    import soundfile as sf

    frames = int(sf.info(d / "scene.wav").duration * 25)
    tl = otio.schema.Timeline(name="reel")
    track = otio.schema.Track(name="DIA 1", kind=otio.schema.TrackKind.Audio)
    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(50, 25))))
    media = otio.schema.ExternalReference(target_url=str(d / "scene.wav"), available_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(frames, 25)))
    track.append(otio.schema.Clip(name="scene", media_reference=media, source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(frames, 25))))
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(d / "reel.otio"))

    assert main(["diarize", str(d / "reel.otio"), "--num-speakers", "2", "--json", "--no-progress"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["uri"] == "reel:DIA 1"
    first_ref = ref[0][0] + 2.0
    assert abs(doc["turns"][0]["start"] - first_ref) < 0.2


def test_cli_voice_outside_the_cast_is_unknown(files, three_speakers, capsys):
    """End to end: Ann, Bob and Cid speak; the cast holds Ann and Bob (with voice samples). The count is
    estimated (at most cast + 1), and every line of Cid comes back "unknown", never Ann or Bob, in the JSON
    and in the RTTM; Ann's and Bob's lines keep their names."""
    import soundfile as sf

    d, _ = files
    signal, ref = three_speakers
    sf.write(d / "scene3.wav", signal, SR)
    code = main(["diarize", str(d / "scene3.wav"), "--cast", str(d / "cast.yaml"), "--json", "--no-progress",
                 "--rttm", str(d / "scene3.rttm")])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["info"]["num_speakers"] is None and len(doc["speakers"]) == 3
    names = {"ann": "Ann", "bob": "Bob", "cid": "unknown"}

    def said_by(turns, a, b):  # the character holding most of [a, b]
        share = {}
        for t in turns:
            share[t["character"]] = share.get(t["character"], 0.0) + max(0.0, min(b, t["end"]) - max(a, t["start"]))
        return max(share, key=share.get)

    for a, b, speaker in ref:
        assert said_by(doc["turns"], a, b) == names[speaker], (a, b, speaker)
    rttm = read_rttm(d / "scene3.rttm")["scene3"]
    assert {t.speaker for t in rttm} == {"Ann", "Bob", "unknown"}


def test_text_summary_says_when_a_second_look_changed_the_count():
    from s2v_toolkit.commands.diarization import _summary
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns

    turns = [SpeakerTurn(0.0, 2.0, "SPEAKER_00"), SpeakerTurn(2.0, 4.0, "SPEAKER_01")]
    kept = _summary(SpeakerTurns(turns, "x", 4.0, "neural", {"second_look": {"voices": 2, "kept": True}}))
    assert "2 on a second look at finer cuts" in kept and "--num-speakers 1" in kept
    for info in ({"second_look": {"voices": 2, "kept": False}}, {}):
        assert "second look" not in _summary(SpeakerTurns(turns[:1], "x", 4.0, "neural", info))
