"""Mouth occlusion: frames in which a hand, a microphone or an object covers a tracked face's mouth.

The landmark model still places lips on a covered mouth (it guesses them from the rest of the face), so
the re-dub would regenerate the occluder. Per found frame of a track (:func:`mouth_features`, measured
while the faces are tracked, so no second decode):

* the **lip ring** (the outer half of the lips: outer lip loop minus the loop halfway to the inner one,
  lips whether the mouth is open or shut, teeth left out) is
  compared with a **skin reference**, the cheeks under the eyes (a hand over the mouth rarely covers
  them): mean CIE-Lab L*, a*, b* differences (lips are redder and darker than the skin of the same face
  under the same light, so differences cancel the light and the skin tone) and the lip ring's gradient
  energy over the reference's (lip edges and teeth vs a smooth palm or a dark rectangle);
* the lip landmarks' jitter: raw minus smoothed lip points, in mouth widths, the head's own motion
  taken out (the lips jump when covered; a moving head is not a covered mouth).

:func:`occlusion_scores` turns those into a score per frame: robust z of the lightness, lost redness and
texture cues (distance from the track's own median, in floored MADs), the mean of the two largest (two
cues must agree), plus ``jitter_weight`` times the jitter. The median is taken twice: over all the
track's frames (robust while less than half of them are covered), then over the frames that first pass
left below ``release``, so the reference describes the uncovered mouth. A frame is occluded when its score exceeds
``threshold`` (default 4.0); a run starts there and lasts while the score stays above
``release`` (hysteresis), and runs shorter than ``min_run`` frames are dropped (one-frame noise).

The re-dub leaves occluded frames out of the mouth mask (source pixels pass through) and names them in
the plan and the sidecar; a line occluded in more than ``max_line_fraction`` of its frames is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import landmarks as L

# Skin under the eyes: a disc halfway between each eye's outer corner and the mouth corner below it
# (named points only, so any 478-point source works), radius a quarter of the mouth width.
_CHEEKS = ((L.LEFT_EYE_CORNERS[0], L.MOUTH_CORNERS[0]), (L.RIGHT_EYE_CORNERS[0], L.MOUTH_CORNERS[1]))
WORK_MOUTH_PX = 48.0  # mouths wider than this are measured on a patch scaled down to it
N_CUES = 4  # dL, da, db (lip ring part minus cheeks), log texture ratio
# The lip ring is measured whole and at its two corners (the thirds of the ring nearest each mouth
# corner along the corner-to-corner axis). Fingers over one corner change a third of the ring, diluted to
# little in the whole-ring mean, but they make the two corners differ; expressions (smiles, pouts,
# speech) change both corners alike.
REGIONS = ("whole", "corner_a", "corner_b")
CORNER_EDGES = (0.36, 0.64)  # a corner is t < 0.36 or t > 0.64 along the corner-to-corner axis (0..1)
N_FEATURES = N_CUES * len(REGIONS)


@dataclass(frozen=True)
class OcclusionParams:
    threshold: float = 4.0        # score above which a frame starts an occluded run
    release: float = 2.5          # ... which continues while the score stays above this
    min_run: int = 3              # shorter runs are single-frame noise
    jitter_weight: float = 10.0   # score per mouth width of lip jitter
    reference_fraction: float = 0.5  # pass 2 needs at least this share of frames left as reference
    min_mouth_px: float = 12.0    # mouths narrower than this are not scored (too few pixels)
    max_line_fraction: float = 0.5  # a line whose frames are more occluded than this is skipped
    # A run flagged on a face turned further than this (median of its frames, landmarks.face_yaw) is not
    # counted: there the far lip corner is behind the cheek and the landmark model guesses the lips, so
    # the cues compare the wrong pixels. On real multi-person clips such runs were almost all false (faces
    # in profile); they are reported as turned (``TrackOcclusion.turned_ranges``) instead.
    max_turn_deg: float = 35.0


@dataclass
class TrackOcclusion:
    """Per found frame of one track (same order as ``FaceTrack.frames``)."""

    track_id: int
    frames: np.ndarray
    scores: np.ndarray
    occluded: np.ndarray          # bool
    ranges: list[tuple[int, int]] = field(default_factory=list)  # inclusive frame ranges
    region_scores: np.ndarray | None = None  # (K, 2): whole lip ring, corners' asymmetry (no jitter)
    # runs the cues flagged on a face turned past ``OcclusionParams.max_turn_deg``: not judged (not occluded)
    turned_ranges: list[tuple[int, int]] = field(default_factory=list)

    def range_reason(self, start: int, end: int) -> str:
        """What covers the mouth over a flagged range: the whole lips, or one corner (the corners' score
        led in most of its frames)."""
        if self.region_scores is None:
            return "mouth occluded"
        sel = self.occluded & (self.frames >= start) & (self.frames <= end)
        if not sel.any():
            return "mouth occluded"
        corner_led = np.mean(self.region_scores[sel, 1] > self.region_scores[sel, 0])
        return "mouth occluded (one corner covered)" if corner_led > 0.5 else "mouth occluded (lips covered)"

    def occluded_frames(self) -> set[int]:
        return {int(f) for f in self.frames[self.occluded]}

    def fraction(self, start: int, end: int) -> float:
        """Share of the track's found frames in ``[start, end]`` with the mouth occluded."""
        sel = (self.frames >= start) & (self.frames <= end)
        n = int(sel.sum())
        return float(self.occluded[sel].sum()) / n if n else 0.0

    def to_dict(self) -> dict:
        d = {"track_id": self.track_id, "ranges": [list(r) for r in self.ranges],
             "reasons": [self.range_reason(a, b) for a, b in self.ranges],
             "scores": np.round(self.scores, 2).tolist()}
        if self.region_scores is not None:
            d["whole_ring_scores"] = np.round(self.region_scores[:, 0], 2).tolist()
            d["corner_scores"] = np.round(self.region_scores[:, 1], 2).tolist()
        d["turned_ranges"] = [list(r) for r in self.turned_ranges]
        return d


def _poly_mask(shape, pts, cv2):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts[:, :2]).astype(np.int32)], 1)
    return m.astype(bool)


def mouth_features(rgb: np.ndarray, landmarks: np.ndarray, min_mouth_px: float = OcclusionParams.min_mouth_px,
                   ) -> np.ndarray:
    """Colour and texture cues of one face's mouth in one RGB uint8 frame; NaNs if not measurable."""
    import cv2

    out = np.full(N_FEATURES, np.nan, np.float32)
    lm = np.asarray(landmarks, np.float32)
    outer, inner = lm[list(L.LIPS_OUTER)], lm[list(L.LIPS_INNER)]
    width = float(np.linalg.norm(lm[L.MOUTH_CORNERS[0], :2] - lm[L.MOUTH_CORNERS[1], :2]))
    if width < min_mouth_px:
        return out
    centres = np.stack([lm[list(c), :2].mean(0) for c in _CHEEKS])
    radius = 0.25 * width
    pts = np.concatenate([outer[:, :2], centres - radius, centres + radius])
    h, w = rgb.shape[:2]
    pad = int(0.1 * width) + 2
    x0, y0 = (np.floor(pts.min(0)) - pad).astype(int)
    x1, y1 = (np.ceil(pts.max(0)) + pad).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return out
    patch = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    off = np.array([x0, y0], np.float32)
    scale = min(1.0, WORK_MOUTH_PX / width)  # statistics need no more pixels than this: keep the cost flat
    if scale < 1.0:
        patch = cv2.resize(patch, (max(4, round((x1 - x0) * scale)), max(4, round((y1 - y0) * scale))),
                           interpolation=cv2.INTER_AREA)
        outer, inner = outer.copy(), inner.copy()
        outer[:, :2] = (outer[:, :2] - off) * scale + off
        inner[:, :2] = (inner[:, :2] - off) * scale + off
        centres = (centres - off) * scale + off
        radius *= scale
    shape = patch.shape[:2]
    # the outer half of the lips only (outer loop minus the loop halfway to the inner one; both loops run
    # corner to corner in the same order): teeth and tongue behind loosely placed inner points stay out
    mid = 0.5 * (outer + inner)
    ring = _poly_mask(shape, outer - np.r_[off, 0], cv2) & ~_poly_mask(shape, mid - np.r_[off, 0], cv2)
    cheeks = np.zeros(shape, bool)
    for c in centres - off:
        m = np.zeros(shape, np.uint8)
        cv2.circle(m, (int(round(c[0])), int(round(c[1]))), max(int(round(radius)), 2), 1, -1)
        cheeks |= m.astype(bool)
    if ring.sum() < 8 or cheeks.sum() < 8:
        return out
    lab = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0   # OpenCV 8-bit Lab: L scaled to 0..255, a and b offset by 128
    gray = lab[..., 0]
    gx, gy = cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)
    grad = np.sqrt(gx * gx + gy * gy)
    ref_lab, ref_grad = lab[cheeks].mean(0), grad[cheeks].mean()
    # position of each ring pixel along the axis from one mouth corner to the other (0..1)
    c0, c1 = ((lm[c, :2] - off) * scale for c in L.MOUTH_CORNERS)  # scale is 1 for small mouths
    axis = c1 - c0
    ys, xs = np.nonzero(ring)
    t = ((xs - c0[0]) * axis[0] + (ys - c0[1]) * axis[1]) / max(float(axis @ axis), 1e-6)
    lo, hi = CORNER_EDGES
    parts = (np.ones(len(t), bool), t < lo, t > hi)
    ring_lab, ring_grad = lab[ys, xs], grad[ys, xs]
    if min(int(sel.sum()) for sel in parts) < 4:
        return out
    for k, sel in enumerate(parts):
        out[k * N_CUES:k * N_CUES + 3] = ring_lab[sel].mean(0) - ref_lab
        out[k * N_CUES + 3] = np.log((ring_grad[sel].mean() + 1.0) / (ref_grad + 1.0))
    return out


def lip_jitter(raw: np.ndarray, smoothed: np.ndarray | None) -> np.ndarray:
    """(K,) mean distance of raw lip points from the smoothed ones, in mouth widths, after the raw face is
    brought onto the smoothed one by the 2-D similarity (shift, turn, scale) that best maps its rigid points
    (eyes, nose, brows) onto theirs.

    The smoothing lags a moving head, and a head turning or nodding fast made every point of the face,
    lips included, sit off its smoothed place by up to 0.14 mouth widths: 1.4 on the score, which flagged
    two real talking heads that nothing covers (a fast turn; lips pressed together while the head moved).
    What a covered mouth does is different: the lip points jump while the eyes and nose stay put, and that
    is what is left after the alignment."""
    if smoothed is None:
        return np.zeros(len(raw), np.float32)
    rigid, lips = list(L.RIGID_POINTS), list(L.LIPS_OUTER)
    # points as complex numbers: the least-squares similarity p -> a (p - p_mean) + q_mean has the closed
    # form a = sum(conj(p - p_mean) (q - q_mean)) / sum(|p - p_mean|^2), one per frame
    p = raw[:, rigid, 0] + 1j * raw[:, rigid, 1]
    q = smoothed[:, rigid, 0] + 1j * smoothed[:, rigid, 1]
    pm, qm = p.mean(1, keepdims=True), q.mean(1, keepdims=True)
    a = (np.conj(p - pm) * (q - qm)).sum(1, keepdims=True) / np.maximum((np.abs(p - pm) ** 2).sum(1, keepdims=True), 1e-9)
    moved = a * (raw[:, lips, 0] + 1j * raw[:, lips, 1] - pm) + qm
    d = np.abs(moved - (smoothed[:, lips, 0] + 1j * smoothed[:, lips, 1])).mean(1)
    width = np.linalg.norm(smoothed[:, L.MOUTH_CORNERS[0], :2] - smoothed[:, L.MOUTH_CORNERS[1], :2], axis=-1)
    return (d / np.maximum(width, 1e-6)).astype(np.float32)


def hysteresis(scores: np.ndarray, frames: np.ndarray, params: OcclusionParams = OcclusionParams()) -> np.ndarray:
    """Occluded flags: runs that reach ``threshold`` and extend while above ``release``, at least ``min_run``
    long (consecutive frame numbers; a gap in the track ends a run)."""
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0)
    flags = np.zeros(len(s), bool)
    for k, j in _index_runs(s > params.release, frames):
        if (s[k:j + 1] > params.threshold).any() and j - k + 1 >= params.min_run:
            flags[k:j + 1] = True
    return flags


def _index_runs(mask: np.ndarray, frames: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indexes of each run of ``mask`` over consecutive frame numbers (a gap ends a run)."""
    out = []
    k = 0
    while k < len(mask):
        if not mask[k]:
            k += 1
            continue
        j = k
        while j + 1 < len(mask) and mask[j + 1] and frames[j + 1] == frames[j] + 1:
            j += 1
        out.append((k, j))
        k = j + 1
    return out


def _cue_z(f: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Whole-ring score: robust z of lightness, lost redness and texture, mean of the two largest."""
    med = np.median(ref, 0)
    mad = 1.4826 * np.median(np.abs(ref - med), 0)
    z_l = np.abs(f[:, 0] - med[0]) / max(mad[0], 0.3 * abs(med[0]), 2.0)
    z_a = np.maximum(0.0, med[1] - f[:, 1]) / max(mad[1], 0.15 * abs(med[1]), 0.5)
    z_t = np.abs(f[:, 3] - med[3]) / max(mad[3], 0.25)
    # two cues must agree: the mean of the two largest (one cue alone moves with smiles, blushes
    # and lip colour; a hand or a microphone changes lightness, redness and texture together)
    z = np.sort(np.stack([z_l, z_a, z_t], 1), 1)
    return z[:, 1:].mean(1)


def _asym_z(d: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Corner score from ``d`` = corner a minus corner b cues: robust z of the change of the lightness,
    redness and texture differences from the track's own, mean of the two largest (two cues agree)."""
    med = np.median(ref, 0)
    mad = 1.4826 * np.median(np.abs(ref - med), 0)
    z_l = np.abs(d[:, 0] - med[0]) / max(mad[0], 2.0)
    z_a = np.abs(d[:, 1] - med[1]) / max(mad[1], 0.75)
    z_t = np.abs(d[:, 3] - med[3]) / max(mad[3], 0.25)
    z = np.sort(np.stack([z_l, z_a, z_t], 1), 1)
    return z[:, -2:].mean(1)


def region_scores(features: np.ndarray, params: OcclusionParams = OcclusionParams()) -> np.ndarray:
    """(K, 2) scores per frame: the whole lip ring, and the corners' asymmetry.

    Each is in robust units of the track's own reference frames. The reference is found twice: over
    every frame (robust while less than half are covered), then over the frames whose larger score the
    first pass left below ``release``: they describe this face's uncovered mouth in this shot.
    """
    f = np.asarray(features, np.float64).reshape(len(features), len(REGIONS), N_CUES)
    out = np.zeros((len(f), 2))
    whole, asym = f[:, 0], f[:, 1] - f[:, 2]   # corner a minus corner b
    ok = np.isfinite(whole).all(1)
    if ok.sum() < 3:
        return out
    both = np.isfinite(asym).all(1) & ok

    def score(ref_ok):
        z = np.zeros((len(f), 2))
        z[ok, 0] = _cue_z(whole[ok], whole[ref_ok & ok])
        if (ref_ok & both).sum() >= 3:
            z[both, 1] = _asym_z(asym[both], asym[ref_ok & both])
        return z

    z = score(np.ones(len(f), bool))                        # pass 1: every frame is the reference
    keep = ok & (z.max(1) < params.release)
    if keep.sum() >= max(3, params.reference_fraction * ok.sum()):
        z = score(keep)                                     # pass 2: the frames pass 1 found uncovered
    return z


def occlusion_scores(features: np.ndarray, jitter: np.ndarray, params: OcclusionParams = OcclusionParams(),
                     ) -> np.ndarray:
    """(K,) score per frame from :func:`mouth_features` rows (K, N_FEATURES) and :func:`lip_jitter`.

    Whole lip ring against the cheeks, each cue in robust units (median and MAD of the reference frames;
    the MAD is floored so a steady track does not turn noise into large numbers):

    * lightness: ``|dL - ref| / max(MAD, 0.3 |ref|, 2)`` (a hand is lighter than lips, a microphone darker);
    * redness lost: ``max(0, ref - da) / max(MAD, 0.15 |ref|, 0.5)`` (one-sided: only a loss of lip/skin
      contrast counts; relative to the track's own contrast, so graded or desaturated footage counts);
    * texture: ``|log-ratio - ref| / max(MAD, 0.25)``.

    Corners (fingers over one side of the mouth): the same three cues as differences corner a minus
    corner b, ``|diff - ref| / max(MAD, floor)`` with floors 2 (L*), 0.75 (a*), 0.25 (log texture).

    Each part's score is the mean of its two largest cues; the frame's score is the larger of the
    two parts plus ``jitter_weight`` times the lip jitter.
    """
    z = region_scores(features, params)
    return z.max(1) + params.jitter_weight * np.nan_to_num(np.asarray(jitter, np.float64))


def track_occlusion(track, features: dict[int, np.ndarray], params: OcclusionParams = OcclusionParams(),
                    ) -> TrackOcclusion:
    """Score and flag one :class:`~.tracking.FaceTrack` from per-frame :func:`mouth_features`."""
    from .analyze import runs

    feats = np.stack([features.get(int(f), np.full(N_FEATURES, np.nan, np.float32)) for f in track.frames]) \
        if len(track.frames) else np.zeros((0, N_FEATURES), np.float32)
    jit = lip_jitter(track.landmarks, track.smoothed)
    parts = region_scores(feats, params)
    scores = parts.max(1) + params.jitter_weight * np.nan_to_num(jit.astype(np.float64))
    flags = hysteresis(scores, track.frames, params)
    flags, turned = _without_turned_runs(flags, track.frames, np.abs(L.face_yaw(track.landmarks)), params)
    full = np.zeros(track.last_frame - track.first_frame + 1, bool)
    full[track.frames - track.first_frame] = flags
    return TrackOcclusion(track.track_id, track.frames.copy(), scores.astype(np.float32), flags,
                          runs(full, track.first_frame), parts.astype(np.float32), turned)


def _without_turned_runs(flags: np.ndarray, frames: np.ndarray, turn_deg: np.ndarray,
                         params: OcclusionParams) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``flags`` less the runs (consecutive found frames) whose median turn exceeds ``max_turn_deg``, and
    those runs as inclusive frame ranges. Judged per run, not per frame: a hand or a microphone at the
    mouth of a face seen three-quarter on (20-37 degrees by ``face_yaw`` in the clips measured) keeps its
    run even where a few of its frames pass the limit."""
    flags = flags.copy()
    turned: list[tuple[int, int]] = []
    for k, j in _index_runs(flags, frames):
        if float(np.median(turn_deg[k:j + 1])) > params.max_turn_deg:
            flags[k:j + 1] = False
            turned.append((int(frames[k]), int(frames[j])))
    return flags, turned
