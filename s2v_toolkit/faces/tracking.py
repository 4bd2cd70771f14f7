"""Face tracks: persistent identities for several faces across frames.

Association, frame by frame (:class:`FaceTracker`):

* every live track predicts its face's box in the new frame from its last box and its velocity
  (constant-velocity model, so two faces that cross keep their identities);
* a detection may join a track when the predicted box overlaps it (IoU) or its centre is close
  (in face sizes; the allowed distance grows with the frames the track has been missing), and its
  size is within a factor 1.6 (sizes by :func:`.landmarks.turn_steady_size`, which a turning face
  keeps); the cost also includes a landmark shape distance (:func:`.landmarks.shape_signature`)
  and, when observations carry appearance descriptors (:mod:`.identity`: texture and colour), an
  appearance distance to the track's running mean.
  These tell two faces apart where they cross and positions alone are ambiguous; a track missing
  more than ``short_gap`` frames is only re-acquired by a face that also looks like it;
* the cheapest one-to-one assignment is taken (Hungarian); unmatched detections start new tracks;
  a track missing more than ``max_gap`` frames is closed, so a face that comes back later gets a new id.

Frames in which a track's face was not found are recorded as missing (not interpolated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import landmarks as L
from .identity import FaceDescriptor, appearance_similarity
from .smoothing import LandmarkSmoothing, smooth_track_landmarks


@dataclass(frozen=True)
class TrackerParams:
    max_gap: int = 25               # frames a track may miss and still be re-acquired
    min_iou: float = 0.2            # predicted box vs detection: enough overlap to match
    max_center_dist: float = 0.6    # ... or centre distance below this many face sizes
    gap_center_growth: float = 0.1  # extra face sizes allowed per missing frame
    max_size_ratio: float = 1.6     # detections much larger/smaller than the track do not match
    shape_weight: float = 4.0       # weight of the landmark shape distance in the cost
    appearance_weight: float = 3.0  # weight of (1 - appearance similarity) in the cost
    short_gap: int = 3              # after longer gaps, re-acquisition needs appearance similarity >= ...
    min_reacquire_similarity: float = 0.6
    max_reacquire_dist: float = 3.0  # cap of the allowed centre distance (face sizes) after long gaps
    velocity_smoothing: float = 0.5  # EMA factor for the velocity estimate


@dataclass
class FaceTrack:
    """One face over a shot. Arrays are per frame in which the face was found (``frames``)."""

    track_id: int
    frames: np.ndarray          # (K,) int, increasing frame numbers
    landmarks: np.ndarray       # (K, 478, 3) raw landmarks (pixels)
    scores: np.ndarray          # (K,)
    smoothed: np.ndarray | None = None  # (K, 478, 3) after :meth:`smooth`

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])

    def index_of(self, frame: int) -> int | None:
        k = int(np.searchsorted(self.frames, frame))
        return k if k < len(self.frames) and self.frames[k] == frame else None

    def landmarks_at(self, frame: int, smoothed: bool = True) -> np.ndarray | None:
        k = self.index_of(frame)
        if k is None:
            return None
        src = self.smoothed if smoothed and self.smoothed is not None else self.landmarks
        return src[k]

    def best_landmarks(self) -> np.ndarray:
        """Smoothed landmarks if available, else raw."""
        return self.smoothed if self.smoothed is not None else self.landmarks

    def boxes(self) -> np.ndarray:
        return L.landmark_box(self.best_landmarks())

    def missing_frames(self) -> list[tuple[int, int]]:
        """Inclusive frame ranges inside the track's span where its face was not found."""
        gaps = []
        for a, b in zip(self.frames[:-1], self.frames[1:]):
            if b - a > 1:
                gaps.append((int(a) + 1, int(b) - 1))
        return gaps

    def coverage(self, start: int, end: int) -> float:
        """Fraction of frames in ``[start, end]`` (inclusive) where this face was found."""
        n = end - start + 1
        return float(np.count_nonzero((self.frames >= start) & (self.frames <= end)) / n) if n > 0 else 0.0

    def smooth(self, fps: float, params: LandmarkSmoothing = LandmarkSmoothing()) -> FaceTrack:
        self.smoothed = smooth_track_landmarks(self.frames, self.landmarks, fps, params)
        return self

    def to_dict(self, with_landmarks: bool = False) -> dict:
        boxes = self.boxes()
        d = {
            "track_id": self.track_id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames_found": len(self.frames),
            "missing": [list(g) for g in self.missing_frames()],
            "mean_score": round(float(self.scores.mean()), 4),
            "frames": self.frames.tolist(),
            "boxes": np.round(boxes, 2).tolist(),
        }
        if with_landmarks:
            d["landmarks"] = np.round(self.best_landmarks(), 2).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FaceTrack:
        if "landmarks" not in d:
            raise ValueError("track dict has no landmarks (saved without with_landmarks=True)")
        lm = np.asarray(d["landmarks"], np.float32)
        return cls(int(d["track_id"]), np.asarray(d["frames"], np.int64), lm,
                   np.full(len(lm), float(d.get("mean_score", 1.0)), np.float32), lm.copy())


@dataclass
class _LiveTrack:
    track_id: int
    frames: list[int] = field(default_factory=list)
    landmarks: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    signature: np.ndarray | None = None
    appearance: FaceDescriptor | None = None  # running mean of the observations' descriptors
    last_box: np.ndarray | None = None  # the last face's box and size, kept as it is added: the
    size: float = 0.0                   # association compares every track with every face each frame

    def predicted_box(self, frame: int) -> np.ndarray:
        shift = self.velocity * (frame - self.frames[-1])
        return self.last_box + np.concatenate([shift, shift]).astype(np.float32)

    def add(self, frame: int, obs: L.FaceObservation, smoothing: float, g: _Geometry) -> None:
        sig = g.signature
        if self.frames:
            step = frame - self.frames[-1]
            c_old = _center(self.last_box)
            c_new = _center(g.box)
            v = (c_new - c_old) / max(step, 1)
            self.velocity = smoothing * v + (1 - smoothing) * self.velocity if len(self.frames) > 1 else v
            self.signature = 0.9 * self.signature + 0.1 * sig
        else:
            self.signature = sig
        if obs.appearance is not None:
            self.appearance = obs.appearance if self.appearance is None else FaceDescriptor(
                *(0.9 * getattr(self.appearance, f) + 0.1 * getattr(obs.appearance, f)
                  for f in ("geometry", "texture", "colour")))
        self.frames.append(frame)
        self.landmarks.append(obs.landmarks)
        self.scores.append(obs.score)
        self.last_box, self.size = g.box, g.size

    def freeze(self) -> FaceTrack:
        return FaceTrack(self.track_id, np.asarray(self.frames, np.int64),
                         np.stack(self.landmarks).astype(np.float32), np.asarray(self.scores, np.float32))


@dataclass(frozen=True)
class _Geometry:
    """What the association reads of one observation, computed once per frame instead of once per pair."""

    box: np.ndarray
    size: float
    signature: np.ndarray

    @classmethod
    def of(cls, obs: L.FaceObservation) -> _Geometry:
        # the turn-steady size: with face_size, a face in profile whose fits flip between frontal and
        # profile failed the size gate and was split into a new track every few frames
        return cls(obs.box, float(L.turn_steady_size(obs.landmarks)), L.shape_signature(obs.landmarks))


def _center(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)


class FaceTracker:
    """Online association of per-frame face observations into tracks (see module docstring)."""

    def __init__(self, params: TrackerParams = TrackerParams()):
        self.params = params
        self._live: list[_LiveTrack] = []
        self._done: list[_LiveTrack] = []
        self._next_id = 0
        self._last_frame: int | None = None

    def _cost(self, track: _LiveTrack, frame: int, obs: L.FaceObservation, geometry: _Geometry) -> float:
        p = self.params
        gap = frame - track.frames[-1]
        pred = track.predicted_box(frame)
        box = geometry.box
        size = track.size
        obs_size = geometry.size
        ratio = max(size, obs_size) / max(min(size, obs_size), 1e-6)
        if ratio > p.max_size_ratio:
            return np.inf
        iou = L.box_iou(pred, box)
        dist = float(np.linalg.norm(_center(pred) - _center(box))) / max(size, 1e-6)
        allowed = min(p.max_center_dist + p.gap_center_growth * (gap - 1), p.max_reacquire_dist)
        if iou < p.min_iou and dist > allowed:
            return np.inf
        shape = float(np.sqrt(np.mean((geometry.signature - track.signature) ** 2)))
        cost = (1.0 - iou) + dist + p.shape_weight * shape + 0.5 * np.log(ratio)
        if obs.appearance is not None and track.appearance is not None:
            sim = appearance_similarity(obs.appearance, track.appearance)
            if gap > p.short_gap + 1 and sim < p.min_reacquire_similarity:
                return np.inf
            cost += p.appearance_weight * (1.0 - sim)
        return cost

    def update(self, frame: int, observations: list[L.FaceObservation]) -> list[int]:
        """Feed the faces found in ``frame`` (frames in increasing order); returns their track ids."""
        from scipy.optimize import linear_sum_assignment

        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"frames must increase: got {frame} after {self._last_frame}")
        self._last_frame = frame
        # close tracks that have been missing too long
        still = []
        for t in self._live:
            (self._done if frame - t.frames[-1] > self.params.max_gap + 1 else still).append(t)
        self._live = still

        ids = [-1] * len(observations)
        geometry = [_Geometry.of(o) for o in observations]
        if self._live and observations:
            cost = np.array([[self._cost(t, frame, o, g) for o, g in zip(observations, geometry)] for t in self._live])
            finite = np.where(np.isfinite(cost), cost, 1e6)
            rows, cols = linear_sum_assignment(finite)
            for r, c in zip(rows, cols):
                if np.isfinite(cost[r, c]):
                    self._live[r].add(frame, observations[c], self.params.velocity_smoothing, geometry[c])
                    ids[c] = self._live[r].track_id
        for c, obs in enumerate(observations):
            if ids[c] == -1:
                t = _LiveTrack(self._next_id)
                self._next_id += 1
                t.add(frame, obs, self.params.velocity_smoothing, geometry[c])
                self._live.append(t)
                ids[c] = t.track_id
        return ids

    def tracks(self) -> list[FaceTrack]:
        """All tracks so far (closed and live), by id."""
        every = sorted(self._done + self._live, key=lambda t: t.track_id)
        return [t.freeze() for t in every]


def track_observations(per_frame: dict[int, list[L.FaceObservation]] | list[list[L.FaceObservation]],
                       fps: float, params: TrackerParams = TrackerParams(),
                       smoothing: LandmarkSmoothing | None = LandmarkSmoothing()) -> list[FaceTrack]:
    """Track a whole shot's observations (``{frame: [obs...]}`` or a list indexed by frame), then smooth."""
    items = per_frame.items() if isinstance(per_frame, dict) else enumerate(per_frame)
    tracker = FaceTracker(params)
    for frame, observations in sorted(items, key=lambda kv: kv[0]):
        tracker.update(int(frame), list(observations))
    tracks = tracker.tracks()
    if smoothing is not None:
        for t in tracks:
            t.smooth(fps, smoothing)
    return tracks
