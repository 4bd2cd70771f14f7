"""Face landmarks with mediapipe's Tasks ``FaceLandmarker`` (VIDEO mode: detection + tracking).

In VIDEO mode the landmarker runs its face detector only when it has lost a face and otherwise
follows the faces from the previous frame's landmarks, which is both faster and steadier than
per-frame detection. Frames must be fed in time order with increasing timestamps.

mediapipe's short-range face detector only finds faces at least ~1/5 of the image's longer side;
:class:`FaceLandmarkDetector` adds a tiled search and zoomed followers for smaller faces.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from contextlib import contextmanager

import numpy as np

from .bundle import ensure_landmarker_bundle, require_mediapipe
from .landmarks import NOSE_TIP, NUM_LANDMARKS, FaceObservation, box_iou, face_size, landmark_box


def to_rgb8(frame: np.ndarray) -> np.ndarray:
    """Any decoded frame as contiguous RGB uint8: grey (H, W) / (H, W, 1), RGBA, 16-bit, float 0..1."""
    f = np.asarray(frame)
    if f.dtype == np.uint16:
        # 10/12-bit video decoded to a 16-bit container: scale by the largest code the data can use
        peak = 1023 if f.max(initial=0) <= 1023 else (4095 if f.max(initial=0) <= 4095 else 65535)
        f = np.clip(np.rint(f.astype(np.float32) * (255.0 / peak)), 0, 255).astype(np.uint8)
    elif np.issubdtype(f.dtype, np.floating):
        f = np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)
    elif f.dtype != np.uint8:
        raise ValueError(f"unsupported frame dtype {f.dtype}")
    if f.ndim == 2:
        f = f[..., None]
    if f.ndim != 3:
        raise ValueError(f"frame must be (H, W) or (H, W, C), got {f.shape}")
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif f.shape[2] == 4:
        f = f[..., :3]
    elif f.shape[2] != 3:
        raise ValueError(f"frame has {f.shape[2]} channels")
    return np.ascontiguousarray(f)


def _landmarker(path, video: bool, max_faces: int, conf: tuple[float, float, float]):
    with _native_stderr_captured():
        return _create_landmarker(path, video, max_faces, conf)


def _landmarkers(pool, count: int, path, video: bool, max_faces: int, conf: tuple[float, float, float]) -> list:
    """``count`` landmarkers made side by side on ``pool`` (None: one after the other).

    Each takes ~25-35 ms, most of it outside the GIL: the followers of a shot's first frame (up to one
    per face slot) come ~1.5x sooner on 2 cores. One capture of the native notices spans them all: a
    capture per thread would restore descriptor 2 while another thread is still making its landmarker."""
    with _native_stderr_captured():
        return _each(pool, lambda _: _create_landmarker(path, video, max_faces, conf), range(count))


def _each(pool, fn, items) -> list:
    """``fn`` of each item, in order: on ``pool`` when there is one and two items or more, else in turn."""
    items = list(items)
    if pool is None or len(items) < 2:
        return [fn(x) for x in items]
    return list(pool.map(fn, items))


def _create_landmarker(path, video: bool, max_faces: int, conf: tuple[float, float, float]):
    from mediapipe.tasks import python as mp_tasks
    from mediapipe.tasks.python import vision

    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=os.fspath(path)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=max_faces,
        min_face_detection_confidence=conf[0],
        min_face_presence_confidence=conf[1],
        min_tracking_confidence=conf[2],
        output_face_blendshapes=False,
        output_facial_transformation_matrixes=False,
    )
    return vision.FaceLandmarker.create_from_options(options)


@contextmanager
def _native_stderr_captured():
    """Hold back what MediaPipe's C++ side prints on creating a landmarker (TFLite delegate and
    "feedback manager" notices, several lines per landmarker) unless creation fails.

    Those lines are written straight to file descriptor 2, below Python, so the descriptor itself
    is pointed at a temporary file for the duration and restored afterwards.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _run(landmarker, rgb: np.ndarray, ts: int | None) -> list[np.ndarray]:
    """Landmarks (pixels of ``rgb``) of the faces found by one landmarker call."""
    import mediapipe as mp

    h, w = rgb.shape[:2]
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    normalised = _landmark_arrays(landmarker, image, ts)
    if normalised is None:  # a mediapipe without the C result struct: its public API
        result = landmarker.detect(image) if ts is None else landmarker.detect_for_video(image, ts)
        normalised = [np.array([(p.x, p.y, p.z) for p in points], np.float32).reshape(-1, 3)
                      for points in result.face_landmarks]
    faces = []
    for points in normalised:
        if len(points) != NUM_LANDMARKS:
            raise RuntimeError(f"landmark model returned {len(points)} points, expected {NUM_LANDMARKS}")
        faces.append(points * np.array([w, h, w], np.float32))
    return faces


def _landmark_arrays(landmarker, image, ts: int | None) -> list[np.ndarray] | None:
    """The normalised ``(n, 3)`` landmarks of one call, read from mediapipe's C result struct as arrays.

    Why: mediapipe's ``detect``/``detect_for_video`` turn the C result into one Python dataclass per point
    (478 a face) and we then read them back one by one; with four faces that was ~7 ms a frame on a slow
    2-core machine, held under the GIL while the tracking thread waits. This makes the same C call as
    mediapipe's own method (through its serial dispatcher, which checks the status) and copies the
    points out with numpy. ``None`` when this mediapipe lacks the pieces (a version without its C API
    bindings): the caller then uses the public API, with the same numbers (test)."""
    import ctypes

    try:
        from mediapipe.tasks.python.vision.face_landmarker import MpFaceLandmarkerResultC
        lib, handle, c_image = landmarker._lib, landmarker._handle, image._image_ptr
        close = lib.MpFaceLandmarkerCloseResult
        call = lib.MpFaceLandmarkerDetectImage if ts is None else lib.MpFaceLandmarkerDetectForVideo
    except (ImportError, AttributeError):
        return None
    result = MpFaceLandmarkerResultC()
    if ts is None:
        call(handle, c_image, None, ctypes.byref(result))
    else:
        call(handle, c_image, None, ts, ctypes.byref(result))
    try:
        faces = []
        for i in range(result.face_landmarks_count):
            points = result.face_landmarks[i]
            n = int(points.landmarks_count)
            if n == 0:
                faces.append(np.zeros((0, 3), np.float32))
                continue
            layout = _xyz_layout(type(points.landmarks.contents))
            raw = ctypes.string_at(ctypes.addressof(points.landmarks.contents), n * layout.itemsize)  # a copy
            rec = np.frombuffer(raw, layout)   # taken before the result is closed
            faces.append(np.stack([rec["x"], rec["y"], rec["z"]], 1).astype(np.float32))
        return faces
    finally:
        close(ctypes.byref(result))


@functools.lru_cache(maxsize=None)
def _xyz_layout(kind) -> np.dtype:
    """x, y, z of mediapipe's landmark struct ``kind`` by their offsets (numpy can't take the struct's own
    format: it has a char pointer); made once, not per face and frame."""
    import ctypes

    return np.dtype({"names": ["x", "y", "z"], "formats": ["=f4"] * 3,
                     "offsets": [getattr(kind, k).offset for k in ("x", "y", "z")], "itemsize": ctypes.sizeof(kind)})


def _window_matrix(center, side: float, out_size: int, stretch: float = 1.0) -> np.ndarray:
    """2x3 frame -> window matrix for a square window of ``side`` frame pixels drawn at ``out_size``;
    ``stretch`` > 1 widens what is drawn (the window then covers ``side / stretch`` pixels across)."""
    k = out_size / side
    kx = k * stretch
    return np.array([[kx, 0, out_size / 2 - kx * center[0]], [0, k, out_size / 2 - k * center[1]]], np.float64)


def _to_frame(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    out = points.copy()
    out[:, 0] = (points[:, 0] - m[0, 2]) / m[0, 0]
    out[:, 1] = (points[:, 1] - m[1, 2]) / m[1, 1]
    out[:, 2] = points[:, 2] / m[0, 0]
    return out


class _ZoomFollower:
    """Follows one small face: each frame, a window around it (``zoom`` face widths wide) is scaled
    to ``size`` px and fed to a VIDEO-mode landmarker of its own, so the face fills a third of what the
    landmarker sees and its frame-to-frame tracking applies. The window moves with the face."""

    max_jump = 0.5  # most a face moves between frames, in face widths; more means it is another face

    def __init__(self, landmarker, landmarks: np.ndarray, zoom: float, size: int, stretch: float = 1.0):
        self.landmarker = landmarker
        self.zoom = zoom
        self.size = size
        self.stretch = stretch  # > 1: a face found in a widened view (turned away) is followed in one
        self.since_plain_try = 0  # frames since a widened follower last tried the plain view
        self.plain: _ZoomFollower | None = None  # a widened follower's plain companion, once it finds the face
        self._place(landmarks)

    def _place(self, landmarks: np.ndarray) -> None:
        box = landmark_box(landmarks)
        self.center = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        self.side = self.zoom * max(float(face_size(landmarks)), box[2] - box[0], box[3] - box[1], 8.0)
        self.box = box

    def follow(self, rgb: np.ndarray, ts: int) -> np.ndarray | None:
        """The face's landmarks in this frame (None: lost). A widened follower with a plain companion
        (:meth:`FaceLandmarkDetector._plain_companions`) returns the companion's landmarks while the two
        agree (:func:`_one_face`); the companion is dropped when it loses the face or strays from it, and
        the widened view, which kept following all along, answers alone again."""
        wide = self._follow(rgb, ts)
        if self.plain is None:
            return wide
        plain = self.plain._follow(rgb, ts)
        if wide is not None and plain is not None and _one_face(plain, wide):
            return plain
        self.plain.close()
        self.plain = None
        return wide

    def window(self, rgb: np.ndarray, stretch: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The view this follower's landmarker sees (widened by its own ``stretch``, or the one given), and
        the frame -> window matrix."""
        import cv2

        m = _window_matrix(self.center, self.side, self.size, self.stretch if stretch is None else stretch)
        window = cv2.warpAffine(rgb, m, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT)
        return window, m

    def _follow(self, rgb: np.ndarray, ts: int) -> np.ndarray | None:
        window, m = self.window(rgb)
        faces = _run(self.landmarker, window, ts)
        if not faces:
            return None
        mid = self.size / 2
        best = min(faces, key=lambda f: float(np.hypot(*(f[:, :2].mean(0) - mid))))
        landmarks = _to_frame(best, m)
        box = landmark_box(landmarks)
        jump = np.hypot((box[0] + box[2]) / 2 - self.center[0], (box[1] + box[3]) / 2 - self.center[1])
        if jump > self.max_jump * self.side / self.zoom:
            return None  # latched onto another face passing in front: lost, not followed elsewhere
        self._place(landmarks)
        return landmarks

    def close(self) -> None:
        self.landmarker.close()
        if self.plain is not None:
            self.plain.close()
            self.plain = None


def same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Two landmark sets describe one face: boxes overlap (IoU >= 0.3) or nose tips are within a third
    of the smaller face's width (a poor fit of the same face can have a shifted box)."""
    if box_iou(landmark_box(a), landmark_box(b)) >= 0.3:
        return True
    nose = float(np.hypot(*(a[NOSE_TIP, :2] - b[NOSE_TIP, :2])))
    return nose < 0.33 * min(float(face_size(a)), float(face_size(b))) / 1.65


def _one_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Stricter than :func:`same_face`, for handing a face from one follower to another: nose tips within
    a quarter of the smaller face size and face sizes (eye corners) within 1.3x of each other. Boxes are
    not compared: a mesh the widened view stretched down the face reaches below the chin, while its eyes
    and nose stay where the plain fit puts them."""
    sa, sb = float(face_size(a)), float(face_size(b))
    if max(sa, sb) > 1.3 * min(sa, sb):
        return False
    return float(np.hypot(*(a[NOSE_TIP, :2] - b[NOSE_TIP, :2]))) < 0.25 * min(sa, sb)


def _box_area(landmarks: np.ndarray) -> float:
    b = landmark_box(landmarks)
    return float((b[2] - b[0]) * (b[3] - b[1]))


def unique_faces(faces: list[np.ndarray]) -> list[np.ndarray]:
    """Drop later entries that are :func:`same_face` as an earlier one (earlier = preferred).

    The whole-frame landmarker itself can report one face twice when another face it was tracking
    is hidden behind it (the lost face's region now shows part of the front face)."""
    kept: list[np.ndarray] = []
    for f in faces:
        if not any(same_face(f, k) for k in kept):
            kept.append(f)
    return kept


def scan_tiles(width: int, height: int, min_face_px: float, face_fraction: float = 0.2) -> list[tuple[int, int, int]]:
    """Square tiles ``(x0, y0, side)`` at halving sizes, overlapping by half, down to the size at which a
    face of ``min_face_px`` is ``face_fraction`` of the tile (the detector's smallest face)."""
    tiles = []
    side = min(width, height)
    while side >= min_face_px / face_fraction and side >= 32:
        step = side // 2
        xs = list(range(0, max(width - side, 0) + 1, step))
        ys = list(range(0, max(height - side, 0) + 1, step))
        if xs[-1] != width - side:
            xs.append(width - side)
        if ys[-1] != height - side:
            ys.append(height - side)
        tiles += [(x, y, side) for y in ys for x in xs]
        side //= 2
    return tiles


class FaceLandmarkDetector:
    """Faces and 478 landmarks per frame with mediapipe's Tasks ``FaceLandmarker``; a context manager.

    ``video=True`` (VIDEO running mode; call :meth:`detect` with increasing ``frame_index``):

    * one landmarker on the whole frame finds and tracks faces at least ~1/5 of the frame's longer
      side (the limit of mediapipe's short-range face detector);
    * every ``scan_every`` frames, square tiles of halving sizes are searched for smaller faces
      (down to ``min_face_px`` wide); each one found (and confirmed by a zoomed view) is then
      followed in a zoomed window by a VIDEO mode landmarker of its own (:class:`_ZoomFollower`)
      until it is lost; where the whole-frame landmarker finds the same face, the follower's
      landmarks are used.

    * faces turned well away (three-quarter views, which mediapipe's frontal detector misses): every
      ``turned_every``-th scan, and at once when a face in the open is lost, the tiles are also searched
      in the frame widened ``turned_stretch`` times across; such a face is followed in a widened window;
      once the plain view finds it again (checked every ``plain_every`` frames; 0: never), a plain follower
      runs beside the widened one and gives the landmarks while the two agree (the widened view draws a
      face that turns back too wide, and the mesh slid down the face): :meth:`_plain_companions`;
    * cost: the whole-frame landmarker sees the frame scaled to <= ``whole_max_side`` px, and neither it
      nor the scan runs while all ``max_faces`` slots are followed. The followers (each its own
      landmarker) and the whole-frame landmarker run side by side on ``workers`` threads: mediapipe's
      graph releases the GIL, so with several faces on 2 cores the calls of a frame overlap instead of
      adding up (4 faces at 1080p, the detector alone: 23.9 -> 30.8 fps; docs/performance.md). The
      results are the same as one after the other: each landmarker keeps its own state and they are
      collected in order.

    ``video=False``: IMAGE mode, every call independent (reference images), same tiling.
    """

    def __init__(self, bundle: str | os.PathLike | None = None, *, max_faces: int = 4, video: bool = True,
                 fps: float = 25.0, min_face_px: float = 64.0, scan_every: int = 10, zoom: float = 3.0,
                 zoom_size: int = 320, min_detection_confidence: float = 0.5,
                 min_presence_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 turned_stretch: float = 1.8, turned_every: int = 3, whole_max_side: int = 1280,
                 workers: int | None = None, plain_every: int = 5):
        require_mediapipe()
        self.path = ensure_landmarker_bundle(bundle)
        self._conf = (min_detection_confidence, min_presence_confidence, min_tracking_confidence)
        self.video = video
        self.fps = float(fps)
        self.max_faces = max_faces
        self.min_face_px = min_face_px
        self.scan_every = max(1, scan_every)
        self.zoom = zoom
        self.zoom_size = zoom_size
        self.plain_every = max(0, plain_every)  # widened followers try the plain view this often (0: never)
        self._full = _landmarker(self.path, video, max_faces, self._conf)
        self._tiles = _landmarker(self.path, False, max_faces, self._conf)
        self._tile_landmarkers = [self._tiles]  # more are made for a scan on several threads
        self.whole_max_side = whole_max_side  # the whole-frame landmarker's frame is scaled down to this
        self.turned_stretch = turned_stretch  # widening for faces turned away (1: off)
        self.turned_every = max(1, turned_every)  # the widened search runs every this many scans
        self._scans = 0
        self._previous: list[np.ndarray] = []  # the faces of the last frame
        self._followers: list[_ZoomFollower] = []
        self._last_ts = -1
        self._since_scan = None
        self.workers = max(1, min(max_faces + 1, os.cpu_count() or 1) if workers is None else int(workers))
        self._pool = None  # made on the first frame with two calls to overlap
        self._pool_pid = None

    def _landmark_calls(self, rgb: np.ndarray, ts: int, whole: bool) -> tuple[list, list]:
        """Each follower's landmarks (``None`` where lost) and, with ``whole``, the whole-frame landmarker's
        faces: on the thread pool when there are two calls or more (the main thread takes the whole frame)."""
        if self.workers < 2 or len(self._followers) + whole < 2:
            faces = self._whole(rgb, ts) if whole else []
            return [f.follow(rgb, ts) for f in self._followers], faces
        pool = self._thread_pool()
        pending = [pool.submit(f.follow, rgb, ts) for f in self._followers]
        faces = self._whole(rgb, ts) if whole else []
        return [p.result() for p in pending], faces

    def _tile_calls(self, tiles: list[np.ndarray]) -> list[list[np.ndarray]]:
        """The IMAGE-mode landmarker on each tile, in order. With ``workers`` > 1 the tiles are dealt to that
        many IMAGE-mode landmarkers on the thread pool (one thread each, so no landmarker is called from two
        threads at once): a scan of a 1080p frame is ~24 tiles (~100 ms on one slow core, every
        ``scan_every`` frames), which held up the frame's other work. IMAGE mode keeps no state between
        calls, so each tile's faces are the same whichever landmarker ran it (test)."""
        n = min(self.workers, len(tiles))
        if n < 2:
            return [_run(self._tiles, t, None) for t in tiles]
        pool = self._thread_pool()
        if len(self._tile_landmarkers) < n:
            self._tile_landmarkers += _landmarkers(pool, n - len(self._tile_landmarkers), self.path, False,
                                                   self.max_faces, self._conf)
        parts = [pool.submit(lambda lm, part: [_run(lm, t, None) for t in part], self._tile_landmarkers[i], tiles[i::n])
                 for i in range(1, n)]
        out: list = [None] * len(tiles)
        out[0::n] = [_run(self._tiles, t, None) for t in tiles[0::n]]  # this thread takes the first share
        for i, p in enumerate(parts, 1):
            out[i::n] = p.result()
        return out

    def _thread_pool(self):
        if self._pool is None or self._pool_pid != os.getpid():
            # (re)made in this process: a pool made before a fork has no threads in the child, and work
            # submitted there would wait forever
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="s2vt-landmarks")
            self._pool_pid = os.getpid()
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for f in self._followers:
            f.close()
        self._followers = []
        for lm in (self._full, *self._tile_landmarkers):
            if lm is not None:
                lm.close()
        self._full = self._tiles = None
        self._tile_landmarkers = []

    def __enter__(self) -> FaceLandmarkDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _scan(self, rgb: np.ndarray, known: list[np.ndarray], stretch: float = 1.0) -> list[np.ndarray]:
        """Faces found in tiles that are not among ``known`` (landmark arrays), smallest tiles last.

        ``stretch`` > 1 searches the frame widened by that factor (landmarks mapped back): a face turned
        well away from the camera (three-quarter profile) is narrow, and mediapipe's frontal-trained
        detector misses it; widened, it looks closer to frontal and is found. The whole frame is then a
        tile too (the whole-frame landmarker only sees it unwidened)."""
        import cv2

        h, w = rgb.shape[:2]
        ws = round(w * stretch)
        found = list(known)
        new = []
        scaled = {}  # the frame resized once per tile size: each tile is then seen at ~256 px
        tiles = []
        for x, y, side in scan_tiles(ws, h, self.min_face_px):
            if side >= max(w, h) and stretch == 1.0:
                continue  # the whole-frame landmarker covers this one
            k = min(1.0, 256.0 / side)  # the detector sees 128 px anyway
            if side not in scaled:
                scaled[side] = rgb if k == 1.0 and stretch == 1.0 else cv2.resize(
                    rgb, (round(ws * k), round(h * k)), interpolation=cv2.INTER_AREA)
            x0, y0, n = round(x * k), round(y * k), round(side * k)
            tiles.append((x0, y0, k, np.ascontiguousarray(scaled[side][y0:y0 + n, x0:x0 + n])))
        for (x0, y0, k, _), faces in zip(tiles, self._tile_calls([t[3] for t in tiles])):
            for lm in faces:
                lm = lm.copy()
                lm[:, 0] = (lm[:, 0] + x0) / (k * stretch)
                lm[:, 1] = (lm[:, 1] + y0) / k
                lm[:, 2] /= k * stretch
                if not any(same_face(lm, f) for f in found):
                    found.append(lm)
                    new.append((lm, stretch))
        return new

    def _whole(self, rgb: np.ndarray, ts: int | None) -> list[np.ndarray]:
        """The whole-frame landmarker, on the frame scaled down to at most ``whole_max_side`` px: the
        faces it can find are at least ~1/5 of the frame, so still >= ~250 px there, more than the
        landmark model's 192 px input; landmarks come back in frame pixels."""
        import cv2

        h, w = rgb.shape[:2]
        k = min(1.0, self.whole_max_side / max(h, w))
        if k >= 1.0:
            return _run(self._full, rgb, ts)
        small = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        faces = _run(self._full, small, ts)
        sx, sy = w / small.shape[1], h / small.shape[0]
        for f in faces:
            f[:, 0] *= sx
            f[:, 1] *= sy
            f[:, 2] *= sx
        return faces

    def detect(self, frame: np.ndarray, frame_index: int = 0) -> list[FaceObservation]:
        """Faces in one frame (RGB; grey/16-bit accepted), landmarks in frame pixels."""
        rgb = to_rgb8(frame)
        ts = None
        if self.video:
            ts = max(int(round(frame_index * 1000.0 / self.fps)), self._last_ts + 1)
            self._last_ts = ts
        if not self.video:
            faces = self._whole(rgb, ts)
            faces += [f for f, _ in self._scan(rgb, faces)]
            if self.turned_stretch > 1.0 and len(faces) < self.max_faces:
                faces += [f for f, _ in self._scan(rgb, faces, self.turned_stretch)]
            return [FaceObservation(f) for f in faces[: self.max_faces]]
        # Zoomed followers first. Where the whole-frame landmarker finds the same face (it has grown
        # past the detector's limit), the follower's landmarks win: it sees the face at a higher
        # resolution and is already tracking it, while the whole-frame fit is poor for a few frames
        # after a fresh detection.
        followed, kept = [], []
        # Every face slot followed: the whole-frame landmarker could add nothing (the followers see their
        # faces at a higher resolution), so it is skipped; VIDEO mode accepts the gap in timestamps.
        followed_now, faces = self._landmark_calls(rgb, ts, whole=len(self._followers) < self.max_faces)
        for f, lm in zip(self._followers, followed_now):
            if lm is None or any(same_face(lm, g) for g in followed):
                f.close()
                continue
            kept.append(f)
            followed.append(lm)
        self._followers = kept
        if self.plain_every:
            self._plain_companions(rgb, ts, followed)
        faces = unique_faces(followed + sorted(faces, key=_box_area, reverse=True))
        first = self._since_scan is None
        self._since_scan = 0 if first else self._since_scan + 1
        # A face lost since the last frame, away from the faces still in view (it may have turned
        # away; one that went behind another face is not searched for): search at once, widened.
        lost = any(not any(same_face(p, g) or box_iou(landmark_box(p), landmark_box(g)) > 0 for g in faces)
                   for p in self._previous)
        # No scan while every face slot is taken: nothing it found could be added.
        due = first or self._since_scan >= self.scan_every or (not faces and self._since_scan % 3 == 0)
        turned_due = self.turned_stretch > 1.0 and (lost or (due and self._scans % self.turned_every == 0))
        if len(faces) < self.max_faces and (due or turned_due):
            in_view = list(faces)
            found = []
            if due:
                self._since_scan = 0
                self._scans += 1
                found = self._scan(rgb, faces)
                self._admit(found, faces, rgb, ts)
            # every ``turned_every``-th scan, and right after a loss (only this one then: a face hidden
            # behind another must not be re-found in pieces), the widened frame is searched too. Its finds
            # come after the plain scan's, so where those filled every slot it could add nothing and is
            # not run (~140 ms at 1080p, on a shot's first frame among others).
            if turned_due and len(faces) < self.max_faces:
                # a widened find overlapping a face in view is a face passing behind it, seen in part
                widened = [(lm, st) for lm, st in self._scan(rgb, in_view + [f for f, _ in found], self.turned_stretch)
                           if not any(box_iou(landmark_box(lm), landmark_box(g)) > 0 for g in in_view)]
                self._admit(widened, faces, rgb, ts)
        self._previous = faces[: self.max_faces]
        return [FaceObservation(f) for f in faces[: self.max_faces]]

    def _plain_companions(self, rgb: np.ndarray, ts: int, followed: list[np.ndarray]) -> None:
        """Each widened follower (a face found turned away) whose face the plain view finds gets a plain
        companion, whose landmarks it gives from then on while the two agree; ``followed`` (landmarks, in
        order of ``self._followers``) takes the companion's on this frame.

        Why: the widening that lets the detector find a turned face also distorts what the landmark model
        sees while it follows: a face turning back towards the camera is drawn 1.8x too wide, and the model
        stretched the mesh down the face. On a real TV scene (a boy at ~30 degrees, followed widened for
        two seconds) the lips' points sat on his chin for a third of the frames, so his mouth mask, mouth
        motion and occlusion cues read the wrong pixels; a plain fit of the same frames put them on his
        lips. The widened follower keeps running beside its companion (one more landmark call a frame for
        that face only): a plain follower alone lost faces that turn away again (in MSDWild's interview
        two people lost 30-50 % of their frames), the widened one keeps them. Every ``plain_every`` frames a
        widened follower without a companion looks for its face in a plain window (one IMAGE-mode call);
        where it is found there, a plain follower is made and confirmed on this frame."""
        for i, (follower, landmarks) in enumerate(zip(self._followers, followed)):
            if follower.stretch == 1.0 or follower.plain is not None:
                continue
            follower.since_plain_try += 1
            if follower.since_plain_try < self.plain_every:
                continue
            follower.since_plain_try = 0
            window, m = follower.window(rgb, stretch=1.0)
            if not any(_one_face(_to_frame(f, m), landmarks) for f in _run(self._tiles, window, None)):
                continue  # still too turned for the plain view (or another face): the widened view alone
            plain = _ZoomFollower(_landmarkers(None, 1, self.path, True, 1, self._conf)[0], landmarks,
                                  self.zoom, self.zoom_size)
            found = plain._follow(rgb, ts)
            if found is None or not _one_face(found, landmarks):
                plain.close()
                continue
            follower.plain = plain
            followed[i] = found

    def _admit(self, found: list[tuple[np.ndarray, float]], faces: list[np.ndarray], rgb: np.ndarray, ts: int) -> None:
        """Follow the tile finds, in order, while face slots are free; ``faces`` grows by each one admitted.

        A tile find counts only if the follower's zoomed view of the same frame confirms it: tiles give
        false positives (textures that look like a face at low resolution). As many followers as there are
        free slots are made and confirmed at once on the thread pool (each has its own landmarker, so this
        is what one after the other gives), then judged in order; a rejected find makes room for the next."""
        if not found:
            return
        pool = self._thread_pool() if self.workers > 1 else None
        queue = list(found)
        while queue and len(faces) < self.max_faces:
            batch, queue = queue[:self.max_faces - len(faces)], queue[self.max_faces - len(faces):]
            made = _landmarkers(pool, len(batch), self.path, True, 1, self._conf)
            followers = [_ZoomFollower(m, lm, self.zoom, self.zoom_size, stretch) for m, (lm, stretch) in zip(made, batch)]
            for follower, landmarks in zip(followers, _each(pool, lambda f: f.follow(rgb, ts), followers)):
                if landmarks is None or any(same_face(landmarks, g) for g in faces):
                    follower.close()
                    continue
                self._followers.append(follower)
                faces.append(landmarks)
