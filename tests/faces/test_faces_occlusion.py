"""Mouth occlusion on generated face video: a hand-coloured patch and a dark bar over the mouth, and a finger
over one corner of the lips, are flagged; the talking, moving, uncovered face is not (no model needed: the
landmarks are the ones drawn)."""

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
FINGER_FRAMES = range(66, 74)  # a finger over one corner of the lips only (a partial cover)


def _poly(img, pts, colour):
    cv2.fillPoly(img, [np.round(pts[:, :2]).astype(np.int32)], colour)


def render(lm: np.ndarray, width: float, cover: tuple | None, rng, finger: bool = False) -> np.ndarray:
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
    if finger:  # an upright finger over the left mouth corner: covers about a quarter of the mouth's width
        nose = lm[L.NOSE_TIP, :2]
        x0, y0 = nose + np.array([-0.29, 0.05]) * width
        x1, y1 = nose + np.array([-0.15, 0.45]) * width
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), HAND, -1)
        cv2.line(img, (int(x1), int(y0)), (int(x1), int(y1)), (150, 100, 85), 2)  # the finger's shaded edge
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
        frames.append(render(lm, width, cover, rng, finger=k in FINGER_FRAMES))
    return analyze_frames(enumerate(frames), 25.0, DrawnFaces(lms), start=0, end=N_FRAMES - 1)


def test_covered_mouth_frames_are_flagged_and_uncovered_ones_are_not(analysis):
    assert len(analysis.tracks) == 1
    tid = analysis.tracks[0].track_id
    flagged = set(analysis.occluded_frames(tid))
    covered = set(HAND_FRAMES) | set(MIC_FRAMES) | set(FINGER_FRAMES)
    assert covered <= flagged, sorted(covered - flagged)
    assert not flagged - covered, sorted(flagged - covered)
    ranges = [(i.start, i.end) for i in analysis.issues if i.kind == "mouth_occluded"]
    assert ranges == [(20, 34), (50, 59), (66, 73)]
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


def test_a_finger_over_one_corner_shows_in_the_corner_score_not_the_whole_ring(analysis):
    """The partial cover is found by the corners' asymmetry: the whole-ring score alone stays low."""
    occ = analysis.occlusion[analysis.tracks[0].track_id]
    finger = np.isin(occ.frames, list(FINGER_FRAMES))
    assert occ.scores[finger].min() > OcclusionParams().threshold
    assert occ.region_scores is not None
    whole, corners = occ.region_scores[finger, 0], occ.region_scores[finger, 1]
    assert corners.min() > OcclusionParams().threshold
    assert np.median(whole) < np.median(corners)
    # a frame with a symmetric change (the mouth opened wide while talking) moves neither part much
    # the reason the plan and the sidecar carry says which: one corner, or the lips
    reasons = analysis.occlusion_reasons(analysis.tracks[0].track_id)
    assert reasons[FINGER_FRAMES[0]] == "mouth occluded (one corner covered)"
    assert reasons[HAND_FRAMES[0]] == reasons[MIC_FRAMES[0]] == "mouth occluded (lips covered)"
    assert any("one corner" in i.message for i in analysis.issues if i.start == FINGER_FRAMES[0])
    talk = ~np.isin(occ.frames, list(HAND_FRAMES) + list(MIC_FRAMES) + list(FINGER_FRAMES))
    assert occ.region_scores[talk].max() < OcclusionParams().release


def _draw_finger(img: np.ndarray, tip: np.ndarray, width: float, skin: np.ndarray) -> None:
    """An upright finger (capsule, shaded across, a nail at the tip) ``width`` px wide, tip at ``tip``,
    running down out of the picture: skin-coloured like the face it covers, as a real hand is."""
    h = img.shape[0]
    x0, x1 = int(tip[0] - width / 2), int(tip[0] + width / 2)
    y0 = int(tip[1])
    for x in range(max(x0, 0), min(x1, img.shape[1])):
        u = (x - tip[0]) / (width / 2)                       # -1..1 across the finger
        shade = 0.75 + 0.3 * np.sqrt(max(0.0, 1 - u * u))   # rounder = lighter in the middle
        top = y0 + int(width / 2 * (1 - np.sqrt(max(0.0, 1 - u * u))))
        img[top:h, x] = np.clip(skin * shade, 0, 255).astype(np.uint8)
    nail = (int(tip[0]), int(tip[1] + width * 0.45))
    cv2.ellipse(img, nail, (int(width * 0.3), int(width * 0.35)), 0, 0, 360,
                tuple(int(c) for c in np.clip(skin * 1.1 + 20, 0, 255)), -1)


@pytest.mark.skipif(__import__("s2v_toolkit.faces", fromlist=["x"]).find_landmarker_bundle() is None,
                    reason="face_landmarker.task not built: run `s2vt faces setup` first")
def test_real_face_with_a_finger_over_one_lip_corner_raises_the_corner_score():
    """The real landmark model on a real photo (scikit-image's astronaut, public domain), moving a little;
    in frames 14-23 a finger (skin colour sampled from her own cheek) covers one corner of the lips.

    Her lips are pale (a* only ~5 over the cheeks), the hard case: the corner score of every covered frame
    is above every uncovered frame's, but stays near 3, under the flag threshold (4); docs/faces.md lists
    this limit. Nothing is flagged in the uncovered frames."""
    from skimage import data

    from s2v_toolkit.faces import FaceLandmarkDetector

    photo = np.ascontiguousarray(data.astronaut())
    with FaceLandmarkDetector(video=False) as det:
        lm0 = det.detect(photo)[0].landmarks
    corner = lm0[L.MOUTH_CORNERS[0], :2]
    mouth_w = float(np.linalg.norm(lm0[L.MOUTH_CORNERS[0], :2] - lm0[L.MOUTH_CORNERS[1], :2]))
    cheek = lm0[[205, 207], :2].mean(0).astype(int)
    skin = photo[cheek[1] - 3:cheek[1] + 4, cheek[0] - 3:cheek[0] + 4].reshape(-1, 3).mean(0)
    covered = range(14, 24)
    frames = []
    for k in range(36):
        dx, dy = 2.0 * np.sin(k / 5), 1.5 * np.cos(k / 7)
        m = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
        img = cv2.warpAffine(photo, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
        if k in covered:   # a finger 0.4 mouth widths wide centred just inside the corner
            _draw_finger(img, corner + (dx + 0.12 * mouth_w, dy - 0.35 * mouth_w), 0.4 * mouth_w, skin)
        frames.append(img)
    with FaceLandmarkDetector(video=True, fps=25) as det:
        a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=len(frames) - 1)
    assert len(a.tracks) == 1
    tid = a.tracks[0].track_id
    occ = a.occlusion[tid]
    assert len(occ.frames) == len(frames)
    cov = np.isin(occ.frames, list(covered))
    corners = occ.region_scores[:, 1]
    assert corners[cov].min() > corners[~cov].max()
    assert corners[cov].mean() > 2.0 * corners[~cov].mean()
    assert not set(a.occluded_frames(tid)) - set(covered)


@pytest.mark.skipif(__import__("s2v_toolkit.faces", fromlist=["x"]).find_landmarker_bundle() is None,
                    reason="face_landmarker.task not built: run `s2vt faces setup` first")
def test_a_face_turning_away_is_not_taken_for_a_covered_corner():
    """Turning the head makes the mouth's corners differ (the far one foreshortened): the astronaut photo
    turned about a vertical axis to 45 degrees for a third of the shot (a planar turn, perspective) must
    not be flagged; its corner score stays under the release level."""
    from skimage import data

    from s2v_toolkit.faces import FaceLandmarkDetector
    from s2v_toolkit.faces.synthetic import turned_view

    photo = np.ascontiguousarray(data.astronaut())
    yaws = [0.0] * 20 + list(np.linspace(0, 45, 20)) + [45.0] * 20 + list(np.linspace(45, 0, 20))
    frames = [turned_view(photo, y) for y in yaws]
    with FaceLandmarkDetector(video=True, fps=25) as det:
        a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=len(frames) - 1)
    assert len(a.tracks) == 1
    occ = a.occlusion[a.tracks[0].track_id]
    assert len(occ.frames) == len(frames)
    assert not occ.ranges
    assert occ.region_scores.max() < OcclusionParams().release


def _turned(lm: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Landmarks turned about the vertical axis through the nose tip (x foreshortened, depth gained)."""
    out = lm.copy()
    a = np.deg2rad(yaw_deg)
    c = lm[L.NOSE_TIP]
    dx, dz = lm[:, 0] - c[0], lm[:, 2] - c[2]
    out[:, 0] = c[0] + dx * np.cos(a) - dz * np.sin(a)
    out[:, 2] = c[2] + dx * np.sin(a) + dz * np.cos(a)
    return out


def test_face_yaw_reads_the_turn_from_the_landmarks_depth():
    lm = posed_face((320, 180), 170, 10.0)
    for yaw in (0.0, 20.0, -35.0, 50.0):
        assert abs(float(L.face_yaw(_turned(lm, yaw))) - yaw) < 3.0
    stack = np.stack([_turned(lm, y) for y in (0.0, 40.0)])
    assert L.face_yaw(stack).shape == (2,)


def test_a_cover_on_a_face_turned_towards_profile_is_reported_as_turned_not_as_occluded():
    """On real multi-person clips, runs flagged on faces turned ~40-55 degrees were false (the far lip corner
    hidden by the cheek; docs/faces.md). A run whose median turn passes ``max_turn_deg`` is not counted as
    occluded; it is reported as ``face_turned`` (re-dubbed, with a warning to check it). A cover on the
    frontal face in the same track is still flagged, and the limit is a parameter."""
    rng = np.random.default_rng(3)
    n = 70
    turn = np.zeros(n)
    turn[30:56] = 50.0                    # turned towards profile, with the microphone in 38-47
    hand, mic = range(10, 20), range(38, 48)
    lms, frames = [], []
    for k in range(n):
        width = 170.0
        lm = posed_face((320 + k, 180), width, 2 * np.sin(k / 9), mouth_open=0.12 * (1 + np.sin(k * 0.9)))
        lm = _turned(lm, turn[k])
        cover = HAND if k in hand else (25, 25, 28) if k in mic else None
        lms.append(lm)
        frames.append(render(lm, width * np.cos(np.deg2rad(turn[k])), cover, rng))
    a = analyze_frames(enumerate(frames), 25.0, DrawnFaces(lms), start=0, end=n - 1)
    occ = a.occlusion[a.tracks[0].track_id]
    assert occ.ranges == [(10, 19)]
    assert len(occ.turned_ranges) == 1
    lo, hi = occ.turned_ranges[0]
    assert 36 <= lo <= 38 and 47 <= hi <= 50          # the microphone's run, give or take the release
    kinds = {(i.kind, i.start, i.end) for i in a.issues}
    assert ("mouth_occluded", 10, 19) in kinds and ("face_turned", lo, hi) in kinds
    from s2v_toolkit.faces import FaceAnalysis

    back = FaceAnalysis.from_dict(a.to_dict(with_landmarks=True)).occlusion[a.tracks[0].track_id]
    assert back.turned_ranges == occ.turned_ranges and back.ranges == occ.ranges
    # with the limit raised past the turn, the microphone's run counts as occluded again
    wide = analyze_frames(enumerate(frames), 25.0, DrawnFaces(lms), start=0, end=n - 1,
                          params=_params(max_turn_deg=60.0))
    occ = wide.occlusion[wide.tracks[0].track_id]
    assert occ.ranges[0] == (10, 19) and (lo, hi) in occ.ranges and not occ.turned_ranges


def _params(**occlusion):
    from s2v_toolkit.faces import AnalysisParams

    return AnalysisParams(occlusion=OcclusionParams(**occlusion))


def test_lip_jitter_ignores_the_heads_own_motion_and_keeps_lips_that_jump():
    """The smoothing lags a moving head: raw landmarks sit off the smoothed ones by a shift, a turn and a
    change of scale of the whole face. That is not a covered mouth (jitter ~0); lip points that move
    while the eyes and nose stay put are (jitter = how far they moved, in mouth widths)."""
    from s2v_toolkit.faces.occlusion import lip_jitter

    smoothed = np.stack([posed_face((400 + 3 * k, 300), 180, 2 * k) for k in range(6)]).astype(np.float32)
    raw = np.stack([posed_face((400 + 3 * k + 9, 300 - 6), 180 * 1.04, 2 * k + 5) for k in range(6)]).astype(np.float32)
    width = np.linalg.norm(smoothed[:, L.MOUTH_CORNERS[0], :2] - smoothed[:, L.MOUTH_CORNERS[1], :2], axis=-1)
    lag = np.linalg.norm(raw[:, list(L.LIPS_OUTER), :2] - smoothed[:, list(L.LIPS_OUTER), :2], axis=-1).mean(1) / width
    assert (lag > 0.05).all()  # what the old measure (raw minus smoothed) counted as jitter
    assert np.abs(lip_jitter(raw, smoothed)).max() < 1e-3
    jumped = raw.copy()
    jumped[3, list(L.LIPS_OUTER), 1] += 0.1 * width[3] * 1.04  # the lips alone drop by 0.1 mouth widths
    j = lip_jitter(jumped, smoothed)
    assert j[3] == pytest.approx(0.1, abs=0.02) and np.delete(j, 3).max() < 1e-3
