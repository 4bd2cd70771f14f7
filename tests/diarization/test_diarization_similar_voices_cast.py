"""Three alike voices of one synthesiser (one espeak-ng voice at three pitches): the count from the scene
alone hears one voice, and with a cast the characters used to be one too. With the cast's samples each turn
goes to the enrolled voice it is closest to (assign_characters), as `s2vt plan` runs it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from s2v_toolkit.diarization import (
    SpeakerTurn, SpeakerTurns, assign_characters, diarization_error_rate, diarize, enroll,
)
from s2v_toolkit.diarization.synthetic import espeak_speech

from .conftest import LINES, SR, needs_espeak

VOICES = {"a": ("en-us", ["-p", "35"]), "b": ("en-us", ["-p", "50"]), "c": ("en-us", ["-p", "65"])}
ORDER = ["a", "b", "c", "a", "c", "b", "a", "b", "c", "b"]
SAMPLES = ["The weather was cold and grey all week long", "She asked me to bring the books back to the library",
           "We walked along the river until the sun went down", "Nobody knew how the story would end"]


def _scene():
    rng = np.random.default_rng(6)
    pieces, turns, t = [np.zeros(SR // 2, np.float32)], [], 0.5
    for who, text in zip(ORDER, LINES):
        x = espeak_speech(*VOICES[who], text, SR)
        gap = rng.uniform(0.3, 0.8)
        turns.append(SpeakerTurn(t, t + len(x) / SR, who))
        pieces += [x, np.zeros(int(gap * SR), np.float32)]
        t += len(x) / SR + int(gap * SR) / SR
    signal = np.concatenate(pieces)
    samples = {who: np.concatenate([espeak_speech(*VOICES[who], s, SR) for s in SAMPLES]) for who in VOICES}
    return signal, SpeakerTurns(turns, "scene", len(signal) / SR), samples


@needs_espeak
def test_alike_voices_are_told_apart_by_the_casts_samples():
    signal, ref, samples = _scene()
    voices = enroll({who: [(x, SR)] for who, x in samples.items()})
    est = diarize(signal, SR, max_speakers=4)
    named = assign_characters(est, signal, voices, characters=list(VOICES), sample_rate=SR)
    by_character = named.with_turns([replace(x, speaker=x.character or "unknown") for x in named])
    der = diarization_error_rate(ref, by_character).der
    # each diarized speaker's own character (the speaker-level assignment, the rule before): alike voices
    # heard as one speaker get one name
    mapping = {s: r["character"] for s, r in named.info["assignment"]["speakers"].items()}
    speaker_level = diarization_error_rate(ref, est.with_turns([replace(x, speaker=mapping[x.speaker]) for x in est])).der
    assert len(est.speakers) < 3   # the scene alone does not separate the three (2 voices found here)
    assert der <= 0.3 and der < speaker_level - 0.1, (der, speaker_level)   # 0.21 against 0.48 here
    assert named.info["assignment"]["turns_moved"] >= 3


@needs_espeak
def test_cli_says_which_turns_the_casts_samples_moved(tmp_path, capsys):
    import soundfile as sf

    from s2v_toolkit.cli import main

    signal, ref, samples = _scene()
    sf.write(tmp_path / "scene.wav", signal, SR)
    lines = ["characters:"]
    for who, x in samples.items():
        sf.write(tmp_path / f"{who}.wav", x, SR)
        lines += [f"  - name: {who}", f"    voice_samples: [{who}.wav]"]
    (tmp_path / "cast.yaml").write_text("\n".join(lines) + "\n")
    assert main(["diarize", str(tmp_path / "scene.wav"), "--cast", str(tmp_path / "cast.yaml"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "turn(s) went to the enrolled voice they are closest to" in out and "alike voices" in out
