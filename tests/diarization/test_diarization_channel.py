"""Channel robustness of the embedded backend: the speaker count is estimated on embeddings averaged over
microphone tilts, so one voice through several microphones stays one speaker and two voices stay two."""

from __future__ import annotations

import numpy as np

from s2v_toolkit.diarization import EmbeddedConfig, EmbeddedDiarizer, VoiceEncoder, open_audio
from s2v_toolkit.diarization.embedding import _mel_to_hz, _hz_to_mel, tilt_gains
from s2v_toolkit.diarization.synthetic import microphone_tilt

from .conftest import LINES, SR, needs_espeak, say

TILTS = [0.0, 6.0, -6.0]  # dB above 1 kHz, in turn: the microphone of issue 18's channel note


def test_tilt_gains_are_a_high_shelf():
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SR / 2), 42))[1:-1]
    g = tilt_gains(6.0)
    assert np.allclose(g[hz < 700], 1.0)
    assert np.allclose(g[hz > 1420], 10 ** 0.6)
    assert np.all(np.diff(g) >= 0)
    assert np.allclose(tilt_gains(-6.0) * g, 1.0, atol=1e-6)
    assert np.allclose(tilt_gains(0.0), 1.0)


def test_microphone_tilt_filter_gain():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, SR * 2).astype(np.float32)
    y = microphone_tilt(x, 6.0, SR)
    spec_x, spec_y = np.abs(np.fft.rfft(x)) ** 2, np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    db = lambda lo, hi: 10 * np.log10(spec_y[(f > lo) & (f < hi)].sum() / spec_x[(f > lo) & (f < hi)].sum())
    assert abs(db(50, 300)) < 0.5
    assert abs(db(4000, 7000) - 6.0) < 0.5


def _one_voice_three_microphones(voice: str = "ann"):
    pieces = []
    for i, line in enumerate(LINES[:9]):
        x = say(voice, line)
        tilt = TILTS[i % 3]
        pieces += [microphone_tilt(x, tilt, SR) if tilt else x, np.zeros(SR // 2, np.float32)]
    return np.concatenate(pieces)


@needs_espeak
def test_tilt_averaged_embeddings_are_closer_across_microphones():
    enc = VoiceEncoder()
    x = say("ann", LINES[1])
    pieces = [x] + [microphone_tilt(x, t, SR) for t in (6.0, -6.0)]

    def averaged(p):
        total = sum(enc.embed(p, tilt_db=t) for t in (-6.0, 0.0, 6.0))
        return total / np.linalg.norm(total, axis=1, keepdims=True)

    plain, avg = enc.embed(pieces), averaged(pieces)
    for k in (1, 2):  # the same speech through another microphone: the average moves less
        assert avg[0] @ avg[k] > plain[0] @ plain[k], (avg[0] @ avg[k], plain[0] @ plain[k])


@needs_espeak
def test_one_voice_through_three_microphones_is_one_speaker():
    signal = _one_voice_three_microphones()
    robust = EmbeddedDiarizer()(open_audio(signal, SR))
    assert robust.speakers == ["SPEAKER_00"], robust.speakers
    # the plain embeddings split this voice by microphone: what the tilt average is for
    plain = EmbeddedDiarizer(EmbeddedConfig(count_tilts_db=()))(open_audio(signal, SR))
    assert len(plain.speakers) >= 2, plain.speakers


@needs_espeak
def test_two_voices_one_changing_microphone_stay_two():
    pieces, order = [], ["ann", "bob"] * 4
    for i, (who, line) in enumerate(zip(order, LINES)):
        x = say(who, line)
        tilt = TILTS[(i // 2) % 3] if who == "ann" else 0.0
        pieces += [microphone_tilt(x, tilt, SR) if tilt else x, np.zeros(SR // 2, np.float32)]
    result = EmbeddedDiarizer()(open_audio(np.concatenate(pieces), SR))
    assert len(result.speakers) == 2, result.speakers


def test_microphone_changes_in_turns_touch_only_that_speakers_turns():
    from s2v_toolkit.diarization import SpeakerTurn
    from s2v_toolkit.diarization.synthetic import microphone_changes_in_turns

    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.1, SR * 6).astype(np.float32)
    turns = [SpeakerTurn(0.0, 1.0, "a"), SpeakerTurn(1.0, 2.0, "b"), SpeakerTurn(2.0, 3.0, "a"),
             SpeakerTurn(3.0, 4.0, "a"), SpeakerTurn(4.0, 5.0, "b")]
    y = microphone_changes_in_turns(x, turns, "a", SR)
    same = lambda a, b: np.array_equal(x[int(a * SR):int(b * SR)], y[int(a * SR):int(b * SR)])
    # a's turns get 0, +6, -6 dB in turn; b's turns and the tail are untouched
    assert same(0, 1) and same(1, 2) and same(4, 6)

    def hi(v, a, b):  # power above 4 kHz of v[a:b] (1 s pieces: rfft bins are 1 Hz apart)
        return float((np.abs(np.fft.rfft(v[int(a * SR):int(b * SR)]))[4000:] ** 2).sum())

    assert hi(y, 2, 3) > 2 * hi(x, 2, 3) and hi(y, 3, 4) < 0.5 * hi(x, 3, 4)
