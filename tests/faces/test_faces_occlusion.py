"""Mouth occlusion on generated face video: a hand-coloured patch and a dark bar over the mouth are flagged,
the talking, moving, uncovered face is not (no model needed: the landmarks are the ones drawn)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from s2v_toolkit.faces import FaceObservation, OcclusionParams, analyze_frames
from s2v_toolkit.faces import landmarks as L
from s2v_toolkit.faces.occlusion import hysteresis
from s2v_toolkit.faces.synthetic import posed_face

SKIN, HAND, LIPS, INSIDE = (196, 146, 118), (214, 164, 134), (168, 72, 80), (45, 18, 22)
N_FRAMES = 80
HAND_FRAMES = range(20, 35)   # a skin-coloured hand over the mouth
MIC_FRAMES = range(50, 60)    # a dark microphone in front of it


def _poly(img, pts, colour):
    cv2.fillPoly(img, [np.round(pts[:, :2]).astype(np.int32)], colour)


def render(lm: np.ndarray, width: float, cover: tuple | None, rng) -> np.ndarray:
    img = np.full((360, 640, 3), 60, np.uint8)
    _poly(img, lm[list(L.FACE_OVAL)], SKIN)
    for eye in (L.LEFT_EYE_CORNERS, L.RIGHT_EYE_CORNERS):
        c = lm[list(eye), :2].mean(0)
        cv2.ellipse(img, (int(c[0]), int(c[1])), (int(0.09 * width), int(0.03 * width)), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(img, (int(c[0]), int(c[1])), int(0.025 * width), (50, 40, 30), -1)
    _poly(img, lm[list(L.LIPS_OUTER)], LIPS)
    _poly(img, lm[list(L.LIPS_INNER)], INSIDE)
    if cover is not None:  # a patch over the lips, in face units around the nose tip
        nose = lm[L.NOSE_TIP, :2]
        x0, y0 = nose + np.array([-0.3, 0.04]) * width
        x1, y1 = nose + np.array([0.3, 0.3]) * width
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), cover, -1)
    noise = rng.normal(0, 3.0, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


class DrawnFaces:
    """Stand-in detector: the landmarks each frame was drawn from."""

    def __init__(self, lms):
        self.lms = lms

    def detect(self, frame, index):
        return [FaceObservation(self.lms[index], 0.95)]


@pytest.fixture(scope="module")
def analysis():
    rng = np.random.default_rng(7)
    opening = 0.25 * (1 + np.sin(np.arange(N_FRAMES) * 0.9)) / 2  # talking
    lms, frames = [], []
    for k in range(N_FRAMES):
        width = 170 + 10 * np.sin(k / 15)
        lm = posed_face((320 + 1.5 * k, 170 + 3 * np.sin(k / 7)), width, 4 * np.sin(k / 11), mouth_open=opening[k])
        cover = HAND if k in HAND_FRAMES else (25, 25, 28) if k in MIC_FRAMES else None
        lms.append(lm)
        frames.append(render(lm, width, cover, rng))
    return analyze_frames(enumerate(frames), 25.0, DrawnFaces(lms), start=0, end=N_FRAMES - 1)


def test_covered_mouth_frames_are_flagged_and_uncovered_ones_are_not(analysis):
    assert len(analysis.tracks) == 1
    tid = analysis.tracks[0].track_id
    flagged = set(analysis.occluded_frames(tid))
    covered = set(HAND_FRAMES) | set(MIC_FRAMES)
    assert covered <= flagged, sorted(covered - flagged)
    assert not flagged - covered, sorted(flagged - covered)
    ranges = [(i.start, i.end) for i in analysis.issues if i.kind == "mouth_occluded"]
    assert ranges == [(20, 34), (50, 59)]
    occ = analysis.occlusion[tid]
    assert occ.fraction(20, 34) == 1.0 and occ.fraction(0, 19) == 0.0


def test_occlusion_survives_the_analysis_round_trip(analysis):
    from s2v_toolkit.faces import FaceAnalysis

    back = FaceAnalysis.from_dict(analysis.to_dict(with_landmarks=True))
    tid = analysis.tracks[0].track_id
    assert back.occluded_frames(tid) == analysis.occluded_frames(tid)


def test_hysteresis_drops_single_frame_spikes_and_extends_runs_while_above_release():
    p = OcclusionParams(threshold=4.0, release=2.5, min_run=3)
    frames = np.arange(12)
    spike = np.array([0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0], float)
    assert not hysteresis(spike, frames, p).any()
    run = np.array([0, 3, 3, 5, 3, 0, 0, 3, 3, 3, 3, 0], float)  # 7..10 never reaches the threshold
    assert np.flatnonzero(hysteresis(run, frames, p)).tolist() == [1, 2, 3, 4]
    gapped = np.array([5, 5, 5, 5], float)
    assert not hysteresis(gapped, np.array([0, 2, 4, 6]), p).any()  # not consecutive frames: no run of 3
