"""Overlap handling of the embedded backend: windows where two voices mix are found and kept out of the
speaker centroids; an estimated count groups the windows the way a given count does."""

from __future__ import annotations

import numpy as np

from s2v_toolkit.diarization.clustering import cluster_embeddings, mixed_windows

from .conftest import SR, needs_espeak, say


def _voices(rng, k: int, dim: int = 256, spread: float = 0.08):
    """k non-negative unit "voice" directions (like the encoder's ReLU outputs) sharing a common part."""
    common = rng.uniform(0.5, 1.0, dim)
    voices = [np.maximum(common + rng.normal(0, 0.6, dim), 0) for _ in range(k)]
    return [v / np.linalg.norm(v) for v in voices], spread


def _window(rng, voice, spread):
    v = np.maximum(voice + rng.normal(0, spread / np.sqrt(len(voice)) * 3, len(voice)), 0)
    return v / np.linalg.norm(v)


def test_blends_of_two_voices_are_mixed_and_pure_windows_are_not():
    """Windows blending voices a and b (30-70 %) are mixed; windows of one voice are not."""
    rng = np.random.default_rng(0)
    (a, b, c), spread = _voices(rng, 3)
    pure = [_window(rng, v, spread) for v in (a, b, c) for _ in range(30)]
    labels = np.repeat([0, 1, 2], 30)
    blends = []
    for share in np.linspace(0.3, 0.7, 10):  # a window holding both a and b
        v = share * _window(rng, a, spread) + (1 - share) * _window(rng, b, spread)
        blends.append(v / np.linalg.norm(v))
    x = np.array(pure + blends)
    # the blends sit with whichever of their two voices is nearer
    blend_labels = np.where(np.array(blends) @ a > np.array(blends) @ b, 0, 1)
    mixed = mixed_windows(x, np.concatenate([labels, blend_labels]))
    assert not mixed[:90].any(), np.flatnonzero(mixed[:90])
    assert mixed[90:].mean() >= 0.8, mixed[90:]


def test_one_speaker_has_no_mixed_windows():
    rng = np.random.default_rng(1)
    (a,), spread = _voices(rng, 1)
    x = np.array([_window(rng, a, spread) for _ in range(20)])
    assert not mixed_windows(x, np.zeros(20, dtype=int)).any()


def test_estimated_count_groups_windows_like_the_given_count():
    rng = np.random.default_rng(2)
    voices, spread = _voices(rng, 3)
    order = rng.permutation(np.repeat([0, 1, 2], 25))
    x = np.array([_window(rng, voices[i], spread * 2) for i in order])
    w = np.full(len(x), 0.4)
    estimated = cluster_embeddings(x, None, weights=w)
    given = cluster_embeddings(x, 3, weights=w)
    assert estimated.max() + 1 == 3
    assert np.array_equal(estimated, given)
    # and the groups are the voices (labels are in order of first appearance)
    mapping = {int(o): int(e) for o, e in zip(order, estimated)}
    assert len(set(mapping.values())) == 3
    assert all(mapping[int(o)] == int(e) for o, e in zip(order, estimated))


@needs_espeak
def test_overlapped_speech_is_found_and_turns_stay_exclusive():
    """Two voices whose lines overlap by 0.4 s every other change (pauses of 0.5 s between): windows over
    the overlaps are found as mixed, while the same lines with pauses everywhere give none; both voices
    are counted, and the turns never overlap (one character per moment for lip-sync)."""
    from s2v_toolkit.diarization import diarize

    lines = [("ann", "Where were you last night"), ("bob", "I was at the harbour watching the boats come in"),
             ("ann", "That is not what your brother told me"), ("bob", "My brother was not even there"),
             ("ann", "Then who left the gate open"), ("bob", "Maybe the wind did it"),
             ("ann", "The wind does not carry keys"), ("bob", "Fine. I went back for my coat")]
    pieces = [say(who, text) for who, text in lines]

    def scene(overlap: bool):
        starts, t = [], 0.5
        for i, x in enumerate(pieces):
            starts.append(t)
            t += len(x) / SR + (-0.4 if overlap and i % 2 == 0 else 0.5)  # Bob starts 0.4 s before Ann ends
        signal = np.zeros(int((t + 1.0) * SR), np.float32)
        for s, x in zip(starts, pieces):
            signal[int(s * SR):int(s * SR) + len(x)] += x
        return diarize(signal, SR)

    overlapped, apart = scene(True), scene(False)
    assert len(overlapped.speakers) == 2 and len(apart.speakers) == 2
    assert apart.info["mixed_windows"] == 0
    assert overlapped.info["mixed_windows"] >= 2
    turns = sorted(overlapped, key=lambda u: u.start)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(turns, turns[1:]))
