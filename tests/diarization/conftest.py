"""Shared fixtures of the diarization tests: voices synthesised with espeak-ng, once per session.

Voices: "ann" = en-us+f3 at pitch 70 (a high female variant), "bob" = en-us (the default male voice),
"cid" = en-us+grandma (a third, unenrolled voice). espeak-ng's male variants sound alike to a speaker
encoder (formant synthesis, one vocal tract model), so the three differ in voice variant and pitch.
Reference turn times are the synthesised utterances' own extents (leading/trailing silence trimmed at
-40 dB below the utterance's peak frame), placed with known pauses.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from s2v_toolkit.diarization.synthetic import espeak_speech

SR = 16000
VOICES = {"ann": ("en-us+f3", ["-p", "70"]), "bob": ("en-us", []), "cid": ("en-us+grandma", [])}
LINES = ["Where were you last night", "I was at the harbour watching the boats come in",
         "That is not what your brother told me", "My brother was not even there",
         "Then who left the gate open", "Maybe the wind did it", "The wind does not carry keys",
         "Fine. I went back for my coat", "You could have said so from the start", "I know and I am sorry"]
ENROLL_LINES = ["Every morning the fisherman mended his nets by the quay",
                "Rain was falling on the roofs of the old town"]

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng) to synthesise test voices")


def say(speaker: str, text: str) -> np.ndarray:
    """16 kHz float32 speech of ``speaker``, trimmed to its voiced extent."""
    voice, opts = VOICES[speaker]
    return espeak_speech(voice, opts, text, SR)


def conversation(order: list[str], gaps: list[float], lead: float = 0.5, tail: float = 0.5):
    """(signal, [(start, end, speaker)]) for speakers saying LINES in turn with the given pauses."""
    pieces, ref, t = [np.zeros(int(lead * SR), np.float32)], [], lead
    for speaker, text, gap in zip(order, LINES, gaps):
        x = say(speaker, text)
        ref.append((t, t + len(x) / SR, speaker))
        pieces += [x, np.zeros(int(round(gap * SR)), np.float32)]
        t += len(x) / SR + int(round(gap * SR)) / SR
    pieces.append(np.zeros(int(tail * SR), np.float32))
    return np.concatenate(pieces), ref


@pytest.fixture(scope="session")
def two_speakers():
    """Ann and Bob alternate for 8 lines (about 18 s), pauses 0.3-0.8 s."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng) to synthesise test voices")
    gaps = [0.5, 0.3, 0.8, 0.4, 0.6, 0.35, 0.7, 0.5]
    return conversation(["ann", "bob"] * 4, gaps)


@pytest.fixture(scope="session")
def three_speakers():
    """Ann, Bob and Cid (Cid not enrolled anywhere), 9 lines."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng) to synthesise test voices")
    order = ["ann", "bob", "cid", "ann", "cid", "bob", "ann", "cid", "bob"]
    return conversation(order, [0.5, 0.4, 0.6, 0.5, 0.45, 0.5, 0.6, 0.4, 0.5])


@pytest.fixture(scope="session")
def enrollment():
    """{name: 16 kHz samples} of Ann and Bob saying other sentences than the conversation's."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng) to synthesise test voices")
    return {name: np.concatenate([say(name, t) for t in ENROLL_LINES]) for name in ("ann", "bob")}
