"""Run the face stage over a shot: landmarks per frame, tracks, descriptors and per-range reports.

Problems never stop the run; they become :class:`RangeIssue` entries naming frame ranges:

* ``no_face``: no face found (none there, or too small for the detector: see docs/faces.md);
* ``face_too_small``: a track's face is narrower than ``min_face_px`` (too few pixels to re-dub);
* ``face_at_edge``: part of a track's face is outside the frame (entering or leaving it);
* ``face_lost``: a track's face was not found for a few frames (occlusion, blur), then re-acquired.

A track's ``confidence`` is the fraction of its span (first to last frame) in which its face was
found, times the fraction of those frames not flagged too small or at the edge.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from . import landmarks as L
from .identity import FaceDescriptor, face_descriptor
from .occlusion import OcclusionParams, TrackOcclusion, mouth_features, track_occlusion
from .smoothing import LandmarkSmoothing
from .tracking import FaceTrack, FaceTracker, TrackerParams


@dataclass(frozen=True)
class AnalysisParams:
    max_faces: int = 4
    min_face_px: float = 96.0        # face width (see landmarks.face_size) below which a face is too small
    descriptor_every: int = 10       # frames between identity descriptor samples of a track
    descriptor_samples: int = 8      # at most this many samples per track
    tracker_appearance_every: int = 5  # frames between appearance updates of well-separated faces
    landmark_workers: int | None = None  # threads for the landmark calls (None: one per face, up to the cores)
    tracking_thread: bool = True     # track frame N on a thread of its own while frame N+1's faces are found
    tracker: TrackerParams = TrackerParams()
    smoothing: LandmarkSmoothing = LandmarkSmoothing()
    occlusion: OcclusionParams = OcclusionParams()


@dataclass
class RangeIssue:
    start: int
    end: int
    kind: str
    message: str
    track_id: int | None = None

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "kind": self.kind, "message": self.message,
                "track_id": self.track_id}


def runs(flags: np.ndarray, offset: int = 0) -> list[tuple[int, int]]:
    """Inclusive (start, end) ranges where ``flags`` is true, numbered from ``offset``."""
    f = np.asarray(flags, bool).astype(np.int8)
    if not f.any():
        return []
    d = np.diff(np.concatenate([[0], f, [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return [(int(a) + offset, int(b) + offset) for a, b in zip(starts, ends)]


@dataclass
class FaceAnalysis:
    start: int                 # first analysed frame (file frame index)
    end: int                   # last analysed frame (inclusive)
    fps: float
    width: int
    height: int
    tracks: list[FaceTrack]
    faces_per_frame: np.ndarray
    issues: list[RangeIssue] = field(default_factory=list)
    descriptors: dict[int, FaceDescriptor] = field(default_factory=dict)
    rotation: int = 0          # degrees the stored frames were rotated for display (landmarks are in display space)
    source: str | None = None
    min_face_px: float = AnalysisParams.min_face_px
    occlusion: dict[int, TrackOcclusion] = field(default_factory=dict)  # track id -> mouth occlusion

    def occluded_frames(self, track_id: int, start: int | None = None, end: int | None = None) -> list[int]:
        """Frames of ``track_id`` (within ``start..end``) whose mouth is covered (see :mod:`.occlusion`)."""
        occ = self.occlusion.get(track_id)
        if occ is None:
            return []
        lo = self.start if start is None else start
        hi = self.end if end is None else end
        return sorted(f for f in occ.occluded_frames() if lo <= f <= hi)

    def turned_ranges(self, track_id: int, start: int | None = None, end: int | None = None) -> list[tuple[int, int]]:
        """Ranges of ``track_id`` (clipped to ``start..end``) where the mouth cues changed on a face turned too
        far to judge them (``TrackOcclusion.turned_ranges``): re-dubbed, worth a look."""
        occ = self.occlusion.get(track_id)
        lo = self.start if start is None else start
        hi = self.end if end is None else end
        return [(max(a, lo), min(b, hi)) for a, b in (occ.turned_ranges if occ is not None else []) if b >= lo and a <= hi]

    def occlusion_reasons(self, track_id: int, start: int | None = None, end: int | None = None) -> dict[int, str]:
        """Covered frame -> what covers the mouth ("mouth occluded (lips covered)" or "... (one corner
        covered)"), per flagged range of ``track_id`` (within ``start..end``)."""
        occ = self.occlusion.get(track_id)
        if occ is None:
            return {}
        lo = self.start if start is None else start
        hi = self.end if end is None else end
        out = {}
        for a, b in occ.ranges:
            why = occ.range_reason(a, b)
            out.update({f: why for f in range(max(a, lo), min(b, hi) + 1)})
        return out

    def track(self, track_id: int) -> FaceTrack:
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        raise KeyError(f"no track {track_id}")

    def _flags(self, t: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        lm = t.best_landmarks()
        small = L.face_size(lm) < self.min_face_px
        box = L.landmark_box(lm)
        edge = (box[:, 0] < 0) | (box[:, 1] < 0) | (box[:, 2] > self.width) | (box[:, 3] > self.height)
        return small, edge

    def track_stats(self, t: FaceTrack) -> dict:
        small, edge = self._flags(t)
        span = t.last_frame - t.first_frame + 1
        found = len(t.frames)
        clean = 1.0 - float(np.count_nonzero(small | edge)) / found
        return {
            "coverage": round(t.coverage(self.start, self.end), 4),
            "span_coverage": round(found / span, 4),
            "frames_too_small": int(small.sum()),
            "frames_at_edge": int(edge.sum()),
            "median_face_px": round(float(np.median(L.face_size(t.best_landmarks()))), 1),
            "confidence": round(found / span * clean, 4),
        }

    def to_dict(self, with_landmarks: bool = False) -> dict:
        tracks = []
        for t in self.tracks:
            d = t.to_dict(with_landmarks)
            d.update(self.track_stats(t))
            if t.track_id in self.descriptors:
                d["descriptor"] = self.descriptors[t.track_id].to_dict()
            if t.track_id in self.occlusion:
                d["mouth_occlusion"] = self.occlusion[t.track_id].to_dict()
            tracks.append(d)
        return {"source": self.source, "range": [self.start, self.end], "fps": self.fps,
                "width": self.width, "height": self.height, "rotation": self.rotation,
                "min_face_px": self.min_face_px,
                "frames_with_faces": int(np.count_nonzero(self.faces_per_frame)),
                "faces_per_frame": self.faces_per_frame.tolist(),
                "tracks": tracks, "issues": [i.to_dict() for i in self.issues]}

    @classmethod
    def from_dict(cls, d: dict) -> FaceAnalysis:
        """Reload a :meth:`to_dict` saved with ``with_landmarks=True``."""
        start, end = d["range"]
        return cls(int(start), int(end), float(d["fps"]), int(d["width"]), int(d["height"]),
                   [FaceTrack.from_dict(t) for t in d["tracks"]], np.asarray(d["faces_per_frame"], np.int32),
                   issues=[RangeIssue(**i) for i in d["issues"]],
                   descriptors={int(t["track_id"]): FaceDescriptor.from_dict(t["descriptor"])
                                for t in d["tracks"] if "descriptor" in t},
                   rotation=int(d.get("rotation", 0)), source=d.get("source"),
                   min_face_px=float(d.get("min_face_px", AnalysisParams.min_face_px)),
                   occlusion={int(t["track_id"]): _occlusion_from_dict(t) for t in d["tracks"]
                              if "mouth_occlusion" in t})

    def summary(self) -> str:
        n = self.end - self.start + 1
        lines = [f"{self.source or 'frames'}: frames {self.start}-{self.end} ({n}), {self.width}x{self.height}"
                 f"{f', rotated {self.rotation} deg' if self.rotation else ''}, "
                 f"faces in {int(np.count_nonzero(self.faces_per_frame))} frames, {len(self.tracks)} track(s)"]
        for t in self.tracks:
            s = self.track_stats(t)
            lines.append(f"  track {t.track_id}: frames {t.first_frame}-{t.last_frame}, coverage {s['coverage']:.0%}, "
                         f"face ~{s['median_face_px']:.0f}px, confidence {s['confidence']:.2f}")
        for i in self.issues:
            lines.append(f"  ! frames {i.start}-{i.end}: {i.message}")
        return "\n".join(lines)


def _occlusion_from_dict(t: dict) -> TrackOcclusion:
    o = t["mouth_occlusion"]
    frames = np.asarray(t["frames"], np.int64)
    flags = np.zeros(len(frames), bool)
    for s, e in o["ranges"]:
        flags |= (frames >= s) & (frames <= e)
    parts = None
    if "corner_scores" in o:
        parts = np.stack([np.asarray(o["whole_ring_scores"], np.float32), np.asarray(o["corner_scores"], np.float32)], 1)
    return TrackOcclusion(int(t["track_id"]), frames, np.asarray(o["scores"], np.float32), flags,
                          [tuple(r) for r in o["ranges"]], parts,
                          [tuple(r) for r in o.get("turned_ranges", [])])


def _issues(a: FaceAnalysis) -> list[RangeIssue]:
    out = [RangeIssue(s, e, "no_face", "no face found (none visible, or smaller than about 1/5 of the "
                      "frame's longer side, which the detector misses)")
           for s, e in runs(a.faces_per_frame == 0, a.start)]
    for t in a.tracks:
        small, edge = a._flags(t)
        for flags, kind, msg in ((small, "face_too_small", f"face of track {t.track_id} narrower than "
                                  f"{a.min_face_px:.0f}px: too small to re-dub"),
                                 (edge, "face_at_edge", f"face of track {t.track_id} partly outside the frame")):
            # flags are per found frame; map them onto frame numbers
            full = np.zeros(t.last_frame - t.first_frame + 1, bool)
            full[t.frames - t.first_frame] = flags
            out += [RangeIssue(s, e, kind, msg, t.track_id) for s, e in runs(full, t.first_frame)]
        out += [RangeIssue(s, e, "face_lost", f"face of track {t.track_id} not found (occluded or blurred), "
                           f"re-acquired after", t.track_id) for s, e in t.missing_frames()]
        occ = a.occlusion.get(t.track_id)
        if occ is not None:
            out += [RangeIssue(s, e, "mouth_occluded", f"mouth of track {t.track_id} occluded (hand, microphone "
                               f"or object over it{'; one corner' if 'corner' in occ.range_reason(s, e) else ''})"
                               f": not re-dubbed", t.track_id) for s, e in occ.ranges]
            out += [RangeIssue(s, e, "face_turned", f"face of track {t.track_id} turned well away from the camera: the "
                               f"mouth cues changed here, but on a turned face they are not trusted (the far "
                               f"lip corner is behind the cheek): re-dubbed, check these frames", t.track_id)
                    for s, e in occ.turned_ranges]
    return sorted(out, key=lambda i: (i.start, i.kind))


def _appearance_needed(faces, index: int, prev_count: int, prev_index: int | None, params: AnalysisParams) -> bool:
    """Whether this frame's faces need appearance descriptors for the tracker (see analyze_frames)."""
    if not faces:
        return False
    if len(faces) != prev_count or prev_index is None or index != prev_index + 1:
        return True
    if index % params.tracker_appearance_every == 0:
        return True  # keeps each track's appearance current for later re-acquisitions
    boxes = [L.landmark_box(f.landmarks) for f in faces]
    sizes = [float(L.face_size(f.landmarks)) for f in faces]
    for i in range(len(faces)):
        for j in range(i + 1, len(faces)):
            ci = np.array([(boxes[i][0] + boxes[i][2]) / 2, (boxes[i][1] + boxes[i][3]) / 2])
            cj = np.array([(boxes[j][0] + boxes[j][2]) / 2, (boxes[j][1] + boxes[j][3]) / 2])
            if np.linalg.norm(ci - cj) < 1.5 * max(sizes[i], sizes[j]):
                return True  # nearly touching: could swap places within a few frames
    return False


def analyze_frames(frames: Iterable[tuple[int, np.ndarray]], fps: float, detector, *, start: int, end: int,
                   params: AnalysisParams = AnalysisParams(), source: str | None = None,
                   rotation: int | None = 0) -> FaceAnalysis:
    """Track faces through ``(frame_index, frame)`` pairs covering ``start..end`` in order.

    ``detector`` has ``detect(frame, frame_index) -> list[FaceObservation]`` (a
    :class:`~.detector.FaceLandmarkDetector` in video mode, or a stand-in in tests). ``rotation``: the
    degrees the frames were turned for display; None: ``frames.rotation`` once they are read
    (:class:`VideoFrames`).
    """
    from .detector import to_rgb8

    tracker = FaceTracker(params.tracker)
    counts = np.zeros(end - start + 1, np.int32)
    samples: dict[int, list[FaceDescriptor]] = {}
    last_sample: dict[int, int] = {}
    mouth: dict[int, dict[int, np.ndarray]] = {}   # track id -> frame -> mouth_features
    prev_count, prev_index = -1, None
    width = height = 0

    def detected() -> Iterator[tuple[int, np.ndarray, list]]:
        for index, frame in frames:
            rgb = to_rgb8(frame)
            yield index, rgb, detector.detect(rgb, index)

    def after_detection(index: int, rgb: np.ndarray, faces: list) -> None:
        """Everything a frame needs once its faces are found, in frame order (it keeps the tracker's state)."""
        nonlocal prev_count, prev_index, width, height
        height, width = rgb.shape[:2]
        counts[index - start] = len(faces)
        # Appearance lets the tracker tell faces apart where position alone may not: faces close to each
        # other (crossing), a face count that changed (one left, came back or appeared) or a frame after a
        # gap; and it is sampled for the identity descriptors. Elsewhere (faces apart, none missing) the
        # assignment is unambiguous and the descriptor (~1.6 ms a face) is not computed.
        if _appearance_needed(faces, index, prev_count, prev_index, params):
            for obs in faces:
                obs.appearance = face_descriptor(rgb, obs.landmarks)
        prev_count, prev_index = len(faces), index
        ids = tracker.update(index, faces)
        for tid, obs in zip(ids, faces):
            mouth.setdefault(tid, {})[index] = mouth_features(rgb, obs.landmarks, params.occlusion.min_mouth_px)
            got = samples.setdefault(tid, [])
            if len(got) < params.descriptor_samples and index - last_sample.get(tid, -10**9) >= params.descriptor_every:
                if obs.appearance is None:
                    obs.appearance = face_descriptor(rgb, obs.landmarks)
                got.append(obs.appearance)
                last_sample[tid] = index

    # Frame N's tracking, occlusion cues and descriptors run on a thread of their own while the detector
    # works on frame N+1: the detector mostly waits on its landmark calls (GIL released), so on 2 cores
    # the two overlap instead of adding up. One thread, frames in order: the same results as inline.
    # At most ``ahead`` frames wait for it (each holds its decoded frame).
    ahead = 2
    if params.tracking_thread and (os.cpu_count() or 1) > 1:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="s2vt-track") as worker:
            waiting: deque = deque()
            for found in detected():
                waiting.append(worker.submit(after_detection, *found))
                while len(waiting) > ahead:
                    waiting.popleft().result()  # its error, if any, is raised here
            for job in waiting:
                job.result()
            # (an error in the loop leaves through the executor's exit, which lets the queued frames finish)
    else:
        for found in detected():
            after_detection(*found)
    if rotation is None:
        rotation = getattr(frames, "rotation", None) or 0
    tracks = tracker.tracks()
    for t in tracks:
        t.smooth(fps, params.smoothing)
    analysis = FaceAnalysis(start, end, float(fps), width, height, tracks, counts,
                            descriptors={tid: FaceDescriptor.mean(d) for tid, d in samples.items() if d},
                            rotation=rotation, source=source, min_face_px=params.min_face_px,
                            occlusion={t.track_id: track_occlusion(t, mouth.get(t.track_id, {}), params.occlusion)
                                       for t in tracks})
    analysis.issues = _issues(analysis)
    return analysis


def rotate_for_display(frame: np.ndarray, rotation: int) -> np.ndarray:
    from s2v_toolkit.media import rotate_frame

    return rotate_frame(frame, rotation)


class VideoFrames:
    """``(index, RGB frame)`` for frames ``start..end`` of a video file, turned upright, decoded in chunks.

    ``rotation``: counter-clockwise degrees to turn each frame; None (the default) turns them as the
    file's display matrix asks, learnt from the first decoded frame (no separate open and decode of the
    file); the attribute ``rotation`` says what was applied once a frame is out.
    With ``prefetch`` > 0 the chunks are decoded in a background thread, at most ``prefetch`` chunks
    ahead: FFmpeg's decoder and colour conversion release the GIL, so decoding overlaps the landmark
    models (which wait on mediapipe's own thread) instead of adding to them (1080p: ~10 CPU ms a frame).
    """

    def __init__(self, path: str | os.PathLike, start: int, end: int, rotation: int | None = None,
                 chunk: int = 16, prefetch: int = 2) -> None:
        self.path, self.start, self.end = path, start, end
        self.rotation = rotation
        self.chunk, self.prefetch = chunk, prefetch

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        from s2v_toolkit.media import VideoReader

        start, end, chunk = self.start, self.end, self.chunk

        def blocks():
            with VideoReader(self.path) as reader:
                frames = reader.frames(start, end + 1 - start, chunk)
                for first in range(start, end + 1, chunk):
                    block = [next(frames) for _ in range(min(chunk, end + 1 - first))]
                    yield first, block, reader.display_rotation or 0

        source = blocks() if self.prefetch <= 0 else _prefetched(blocks(), self.prefetch)
        try:
            for first, block, file_rotation in source:
                if self.rotation is None:
                    self.rotation = file_rotation
                for k, frame in enumerate(block):
                    yield first + k, rotate_for_display(frame, self.rotation)
        finally:
            source.close()


def iter_video_frames(path: str | os.PathLike, start: int, end: int, rotation: int | None = 0,
                      chunk: int = 16, prefetch: int = 2) -> Iterator[tuple[int, np.ndarray]]:
    """:class:`VideoFrames` as an iterator (``rotation`` given: an analysis's own)."""
    return iter(VideoFrames(path, start, end, rotation, chunk, prefetch))


def _prefetched(items: Iterator, depth: int) -> Iterator:
    """``items`` produced by a daemon thread, up to ``depth`` ahead; the producer's exception is raised
    here, and closing this generator stops the producer (and closes ``items`` in its thread)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((None, item)):
                    break
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put((exc, None))
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            finally:
                put((None, done))

    worker = threading.Thread(target=produce, name="s2vt-decode", daemon=True)
    worker.start()
    try:
        while True:
            try:
                exc, item = q.get(timeout=0.5)
            except queue.Empty:
                if worker.is_alive():
                    continue
                raise RuntimeError("the decode thread ended without finishing")  # never silently short
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def analyze_video(path: str | os.PathLike, start: int | None = None, end: int | None = None, *,
                  bundle: str | os.PathLike | None = None, params: AnalysisParams = AnalysisParams()) -> FaceAnalysis:
    """Faces of frames ``start..end`` (inclusive; default the whole file) of a video file."""
    from s2v_toolkit.errors import MediaError
    from s2v_toolkit.media import probe

    from .detector import FaceLandmarkDetector

    info = probe(path)
    if info.video is None:
        raise MediaError(path, "has no video stream: nothing to track")
    n = info.video.frame_count
    start = 0 if start is None else start
    end = n - 1 if end is None else end
    if not 0 <= start <= end < n:
        raise MediaError(path, f"frame range {start}-{end} is outside the file (frames 0-{n - 1})")
    fps = float(info.video.fps)
    frames = VideoFrames(path, start, end)  # upright as the file asks; the rotation is known once decoding starts
    with FaceLandmarkDetector(bundle, max_faces=params.max_faces, video=True, fps=fps,
                              workers=params.landmark_workers) as det:
        return analyze_frames(frames, fps, det, start=start, end=end, params=params, source=os.fspath(path),
                              rotation=None)
