"""Several lines of one character on the same faces: per-line audio evidence pooled (Stouffer's z over
the lines, each with its own circular-shift null). Synthetic landmarks and noise-burst speech."""

import numpy as np
from scipy.stats import norm

from s2v_toolkit.faces import (
    FaceTrack,
    SpeakerParams,
    audio_envelope,
    choose_speaker,
    line_audio_z,
    matching_track,
    pool_audio_z,
)
from s2v_toolkit.faces.synthetic import posed_face

from faces_testkit import syllable_speech

FPS = 25.0
RATE = 16000
LINE = 55                     # frames per line: 2.2 s, each alone too weak to decide
LINES = 6


def speech(seed, n):
    return syllable_speech(seed, n, int(FPS), RATE)


def track(tid, x, opening, frames=None):
    frames = np.arange(len(opening)) if frames is None else np.asarray(frames)
    lm = np.stack([posed_face((x, 300), 160, 0, mouth_open=float(opening[f])) for f in frames])
    lm[:, :, :2] += np.random.default_rng(tid).normal(0, 0.2, lm[:, :, :2].shape)
    return FaceTrack(tid, frames, lm.astype(np.float32), np.ones(len(frames), np.float32))


def scene(seed=4, follow=0.5):
    """Two talking faces over LINES lines: track 0 speaks the lines, but its mouth follows their loudness
    only weakly (``follow`` of it; the rest is another rhythm, as lips that move between syllables), track 1
    talks to a rhythm of its own. Returns (tracks, line ranges, the lines' envelopes, unrelated ones)."""
    n = LINE * LINES
    audio, loud = speech(seed, n)
    speaker = 0.05 + 0.3 * (follow * np.roll(loud, 1) + (1 - follow) * speech(seed + 1, n)[1])
    other = 0.05 + 0.3 * speech(seed + 2, n)[1]
    tracks = [track(0, 400, speaker), track(1, 900, other)]
    ranges = [(k * LINE, (k + 1) * LINE - 1) for k in range(LINES)]
    env = [audio_envelope(audio[a * 640:(b + 1) * 640], RATE, FPS, b - a + 1) for a, b in ranges]
    unrelated_audio = speech(seed + 50, n)[0]
    unrelated = [audio_envelope(unrelated_audio[a * 640:(b + 1) * 640], RATE, FPS, b - a + 1) for a, b in ranges]
    return tracks, ranges, env, unrelated


def test_pooled_lines_decide_where_each_line_alone_does_not():
    tracks, ranges, env, _ = scene()
    params = SpeakerParams(min_line_seconds=2.0)
    alone = [choose_speaker(tracks, a, b, envelope=e, fps=FPS, params=params) for (a, b), e in zip(ranges, env)]
    assert all(c.track_id is None for c in alone), [round(c.confidence, 3) for c in alone]
    per_line = [line_audio_z(tracks, a, b, e, fps=FPS)[0] for (a, b), e in zip(ranges, env)]
    pooled = pool_audio_z(per_line)
    # Stouffer: the sum of the lines' z over sqrt(lines), for each face
    for tid in (0, 1):
        assert np.isclose(pooled.z[tid], sum(d[tid] for d in per_line) / np.sqrt(LINES))
        assert pooled.lines[tid] == LINES
    assert pooled.track_id == 0, pooled.reason
    assert pooled.confidence >= SpeakerParams().audio_confidence > max(c.confidence for c in alone)
    ev = [max(0.0, 2 * norm.cdf(pooled.z[t]) - 1) for t in (0, 1)]
    assert np.isclose(pooled.confidence, ev[0] - ev[1])
    assert f"pooled over {LINES} of {LINES} lines" in pooled.reason
    d = pooled.to_dict()
    assert d["track_id"] == 0 and len(d["line_z"]) == LINES


def test_pooled_unrelated_lines_choose_no_face():
    tracks, ranges, _, unrelated = scene()
    per_line = [line_audio_z(tracks, a, b, e, fps=FPS)[0] for (a, b), e in zip(ranges, unrelated)]
    pooled = pool_audio_z(per_line)
    assert pooled.track_id is None and pooled.confidence < SpeakerParams().audio_confidence
    assert pooled.reason.startswith("low confidence")


def test_pooled_z_of_unrelated_lines_is_standard_normal():
    """Under the null (a talking mouth, other lines' audio) the pooled z is spread like N(0, 1): pooling
    keeps the one-line threshold's meaning (a face passes 0.9 about one time in twenty)."""
    rng = np.random.default_rng(9)
    zs = []
    for k in range(40):
        n = LINE * 3
        mouth = 0.05 + 0.3 * speech(1000 + k, n)[1] + rng.normal(0, 0.02, n)
        t = [track(0, 400, mouth)]
        audio = speech(2000 + k, n)[0]
        per_line = [line_audio_z(t, a, a + LINE - 1, audio_envelope(audio[a * 640:(a + LINE) * 640], RATE, FPS,
                                                                    LINE), fps=FPS)[0] for a in (0, LINE, 2 * LINE)]
        zs.append(pool_audio_z(per_line).z[0])
    zs = np.array(zs)
    assert abs(zs.mean()) < 0.5 and 0.6 < zs.std() < 1.4, (zs.mean(), zs.std())
    assert np.mean(zs >= 1.64) <= 0.15


def test_lines_without_usable_audio_are_left_out_of_the_pool():
    tracks, ranges, env, _ = scene()
    (a, b), e = ranges[0], env[0]
    silent, why = line_audio_z(tracks, a, b, e - 20.0, fps=FPS)  # ~ -170 dB
    assert silent == {} and "silent" in why
    short, why = line_audio_z(tracks, a, a + 29, e[:30], fps=FPS)  # 1.2 s: no null of 8 shifts
    assert short == {} and "too short" in why
    still = [track(5, 400, np.full(LINE * LINES, 0.05))]
    z, why = line_audio_z(still, a, b, e, fps=FPS)
    assert z == {5: 0.0} and why is None  # a still mouth counts as no evidence, not as left out
    pooled = pool_audio_z([{}, {}])
    assert pooled.track_id is None and "no line could be judged" in pooled.reason


def test_matching_track_finds_the_same_face_in_another_analysis():
    tracks, _, _, _ = scene()
    # another analysis of frames 60-120: the same faces, new ids, the left face found on some frames only
    left = FaceTrack(7, tracks[0].frames[60:121:2], tracks[0].landmarks[60:121:2] + 1.0, tracks[0].scores[60:121:2])
    right = FaceTrack(8, tracks[1].frames[60:121], tracks[1].landmarks[60:121], tracks[1].scores[60:121])
    assert matching_track(tracks[0], [right, left], 60, 120) == 7
    assert matching_track(tracks[1], [right, left], 60, 120) == 8
    assert matching_track(tracks[0], [right], 60, 120) is None  # not found there
