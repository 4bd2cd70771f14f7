"""The VAD adapting to the recording: noise floor, weak thresholds above it, the level/harmonicity cue, and
the speaker count hearing only the speech the network is sure of."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from s2v_toolkit.diarization.audio import ArraySource
from s2v_toolkit.diarization.embedded import detect_speech
from s2v_toolkit.diarization.vad import (
    CHUNK,
    FRAME_SECONDS,
    ChunkCues,
    VADConfig,
    chunk_cues,
    cue_speech,
    noise_floor,
    speech_probabilities,
    speech_regions,
)

from .conftest import SR, needs_espeak, say  # noqa: F401

RNG_SEED = 0


def _pink(n: int, db: float, seed: int = RNG_SEED) -> np.ndarray:
    x = lfilter([1.0], [1.0, -0.95], np.random.default_rng(seed).standard_normal(n))
    return (x / np.sqrt((x ** 2).mean()) * 10 ** (db / 20)).astype(np.float32)


def _voiced(seconds: float, f0: float = 140.0, db: float = -40.0) -> np.ndarray:
    """A glottal-pulse train through two formant resonators: voiced, speech-like spectrum."""
    n = int(seconds * SR)
    pulses = np.zeros(n)
    pulses[:: int(SR / f0)] = 1.0
    x = pulses
    for freq, bw in ((700.0, 130.0), (1200.0, 150.0)):
        r = np.exp(-np.pi * bw / SR)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * freq / SR), r * r], x)
    return (x / np.sqrt((x ** 2).mean()) * 10 ** (db / 20)).astype(np.float32)


def test_chunk_cues_level_and_harmonicity():
    voiced, noise = _voiced(1.0), _pink(SR, -40.0)
    lv, h = chunk_cues(voiced)
    assert len(lv) == SR // CHUNK
    assert np.median(lv) == pytest.approx(-40.0, abs=1.5)
    assert np.median(h) > 0.6  # periodic at a pitch lag
    _, hn = chunk_cues(np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.1)
    assert np.median(hn) < 0.35  # white noise: no pitch
    assert (chunk_cues(np.zeros(2048, np.float32))[1] == 0).all()
    # streaming in odd blocks gives the same chunks as one pass
    x = np.concatenate([noise, voiced])
    cue, parts = ChunkCues(), []
    for i in range(0, len(x), 777):
        parts.append(cue(x[i:i + 777]))
    parts.append(cue.flush())
    lv2 = np.concatenate([p[0] for p in parts])
    lv1, _ = chunk_cues(np.concatenate([x, np.zeros(-len(x) % CHUNK, np.float32)]))
    assert np.allclose(lv1, lv2, atol=1e-4)


def test_noise_floor_ignores_digital_silence():
    levels = np.concatenate([np.full(50, -200.0), np.full(30, -60.0), np.full(20, -30.0)])
    assert noise_floor(levels) == pytest.approx(-60.0)
    assert noise_floor(np.full(10, -200.0)) == -100.0


def test_cue_marks_quiet_voiced_chunks_not_loud_noise_or_what_the_network_rejects():
    n = 100
    level = np.full(n, -60.0)
    harm = np.full(n, 0.25)
    probs = np.full(n, 0.1)
    level[10:30], harm[10:30] = -45.0, 0.7  # quiet far voice, 15 dB over the floor
    level[40:60], harm[40:60] = -20.0, 0.25  # loud noise burst: no pitch
    level[70:90], harm[70:90], probs[70:90] = -30.0, 0.9, 0.01  # a hum the network rejects
    marked = cue_speech(probs, level, harm, VADConfig())
    assert marked[10:30].all()
    assert not marked[40:60].any() and not marked[70:90].any() and not marked[:10].any()


def test_weak_thresholds_only_above_the_noise_floor():
    f = FRAME_SECONDS
    n = 200
    level, harm = np.full(n, -60.0), np.zeros(n)
    probs = np.zeros(n)
    probs[20:50] = 0.3  # a far voice the network half-believes, 20 dB over the floor
    level[20:50] = -40.0
    probs[120:150] = 0.3  # the same belief in noise at the floor
    plain = speech_regions(probs, n * f, VADConfig(pad=0.0))
    adapted = speech_regions(probs, n * f, VADConfig(pad=0.0), cues=(level, harm))
    assert plain == []
    assert adapted == [pytest.approx((20 * f, 50 * f))]
    # the cue alone (voiced, over the floor, network >= 0.05) also starts a region; the minimum duration holds
    probs2, harm2 = np.full(n, 0.08), np.zeros(n)
    harm2[20:50] = 0.7
    harm2[100:104] = 0.7  # 128 ms: shorter than min_speech
    level2 = np.full(n, -60.0)
    level2[20:50] = level2[100:104] = -46.0
    cfg = VADConfig(pad=0.0, weak_onset=None, weak_offset=None)
    assert speech_regions(probs2, n * f, cfg, cues=(level2, harm2)) == [pytest.approx((20 * f, 50 * f))]


@needs_espeak
def test_far_reverberant_speech_under_noise_is_recovered_and_a_noise_burst_is_not_speech():
    # a 0.6 s reverberation tail (one fixed random room; in 7 of 8 rooms we tried, the network alone missed
    # 4-20 % of the utterance and the adapted VAD found all of it)
    rng = np.random.default_rng(1)
    speech = say("bob", "The lighthouse keeper locked the door and walked down to the harbour")
    ir = rng.standard_normal(int(0.5 * SR)) * np.exp(-np.arange(int(0.5 * SR)) / (0.6 * SR / 6.9))
    ir[0] = 1.0
    far = np.convolve(speech, ir)[: len(speech)]
    far = far / np.sqrt((far ** 2).mean()) * 10 ** (-40 / 20)  # -40 dBFS, 20 dB over the room noise
    signal = _pink(len(far) + 4 * SR, -60.0)
    signal[SR:SR + len(far)] += far.astype(np.float32)
    burst = 3 * SR + len(far)
    signal[burst:burst + SR // 2] += np.random.default_rng(5).standard_normal(SR // 2).astype(np.float32) * 0.1
    duration = len(signal) / SR

    def speech_in(regions, a, b):
        return sum(max(0.0, min(e, b) - max(s, a)) for s, e in regions)

    t0, t1 = 1.0, 1.0 + len(far) / SR
    plain = speech_regions(speech_probabilities(signal), duration)
    adapted = detect_speech(ArraySource(signal, SR), VADConfig())
    assert speech_in(plain, t0, t1) < 0.85 * (t1 - t0)  # the network alone misses part of it
    assert speech_in(adapted, t0, t1) > 0.95 * (t1 - t0)
    b0 = burst / SR
    assert speech_in(adapted, b0 - 0.1, b0 + 0.6) == 0.0  # a loud noise burst (-20 dBFS) is not speech
    assert speech_in(adapted, 0.0, t0 - 0.2) == 0.0  # nor the room noise before the voice


@needs_espeak
def test_count_hears_only_the_speech_the_network_is_sure_of(two_speakers):
    from s2v_toolkit.diarization import diarize

    signal, _ = two_speakers
    regions, confident = detect_speech(ArraySource(signal, SR), confident=True)
    for s, e in confident:  # the sure regions lie inside the adapted ones
        assert any(a <= s + 1e-6 and e <= b + 1e-6 for a, b in regions)
    assert len(diarize(signal, SR).speakers) == 2


@needs_espeak
def test_count_reuses_known_window_embeddings_and_embeds_the_rest(two_speakers):
    from s2v_toolkit.diarization.embedded import (
        EmbeddedConfig,
        _channel_robust_count,
        _speech_shares,
        _windows,
        embed_windows,
    )
    from s2v_toolkit.diarization.embedding import VoiceEncoder

    signal, _ = two_speakers
    src, cfg, enc = ArraySource(signal, SR), EmbeddedConfig(), VoiceEncoder()
    regions = detect_speech(src, cfg.vad)
    windows = _windows(regions, cfg.window, cfg.step)
    emb = embed_windows(src, windows, enc)
    weights = _speech_shares(windows, regions)
    reliable = np.array([b - a >= cfg.min_window for a, b in windows])
    full = _channel_robust_count(src, windows, emb, weights, reliable, enc, cfg, None, None)
    half = {w: emb[i] for i, w in enumerate(windows) if i % 2 == 0}  # the others are embedded on demand
    assert _channel_robust_count(src, windows, half, weights, reliable, enc, cfg, None, None) == full == 2
