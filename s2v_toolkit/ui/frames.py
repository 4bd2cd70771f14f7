"""Decoded frames of one video, cached around the playhead and decoded on a worker thread.

The UI thread never decodes: it asks :meth:`FrameSource.frame` for a frame, gets it at once when it
is cached (or ``None``), and the worker decodes a chunk around the request (ahead of the playhead in
the play direction, so playback and stepping find their frames ready) and reports each decoded frame
through ``on_ready(index)``. Qt-free: the panel turns ``on_ready`` into a queued signal.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from s2v_toolkit.errors import MediaError
from s2v_toolkit.media import MediaInfo, VideoReader, display_transform, probe, rotate_frame

CACHE_BYTES = 768 * 2**20   # per source; 4K RGB frames are 25 MB, so at least the chunk always fits
CHUNK = 8                   # frames decoded per request (a keyframe seek costs more than a few frames)
PREFETCH = 24               # frames kept ready ahead of the playhead


class FrameSource:
    """Frames ``0 .. frame_count-1`` of ``path`` (file frame indices) as uint8 RGB arrays, upright as a
    player shows them (``rotation``: the degrees a display matrix turns them; ``size`` is as shown)."""

    def __init__(self, path: str | os.PathLike, on_ready: Callable[[int], None] | None = None,
                 on_error: Callable[[str], None] | None = None, *, info: MediaInfo | None = None,
                 cache_bytes: int = CACHE_BYTES, chunk: int = CHUNK, prefetch: int = PREFETCH):
        self.path = os.fspath(path)
        self.info = info or probe(self.path)
        if self.info.video is None:
            raise MediaError(self.path, "has no video stream: nothing to show")
        v = self.info.video
        self.frame_count = v.frame_count
        # phone footage stored sideways is shown the way players show it (its display matrix's angle)
        self.rotation = display_transform(self.path, self.info)[0]
        self.size = (v.height, v.width) if self.rotation in (90, 270) else (v.width, v.height)
        frame_bytes = max(1, v.width * v.height * 3)
        self._capacity = max(chunk * 2 + prefetch, cache_bytes // frame_bytes)
        self._chunk = chunk
        self._prefetch = prefetch
        self._on_ready = on_ready
        self._on_error = on_error
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cond = threading.Condition()
        self._target: int | None = None
        self._direction = 1
        self._closed = False
        self.error: str | None = None
        self._reader = VideoReader(self.path, self.info)
        self._thread = threading.Thread(target=self._run, name=f"decode {os.path.basename(self.path)}", daemon=True)
        self._thread.start()

    # -- UI side ----------------------------------------------------------------------------------
    def frame(self, index: int, direction: int = 1) -> np.ndarray | None:
        """The frame if decoded (never blocks); asks the worker for it and the frames after it."""
        if not 0 <= index < self.frame_count:
            return None
        with self._cond:
            img = self._cache.get(index)
            if img is not None:
                self._cache.move_to_end(index)
            if self._target != index or self._direction != direction:
                self._target, self._direction = index, (1 if direction >= 0 else -1)
                self._cond.notify()
            return img

    def wait_frame(self, index: int, timeout: float = 10.0) -> np.ndarray:
        """Block until the frame is decoded (scripts and tests; the UI uses :meth:`frame`)."""
        img = self.frame(index)
        with self._cond:
            ok = self._cond.wait_for(lambda: index in self._cache or self.error is not None or self._closed, timeout)
            if self.error:
                raise MediaError(self.path, self.error)
            if not ok:
                raise TimeoutError(f"{self.path}: frame {index} not decoded within {timeout} s")
            return self._cache[index] if img is None else img

    def cached(self, index: int) -> bool:
        with self._cond:
            return index in self._cache

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._reader.close()

    # -- worker -----------------------------------------------------------------------------------
    def _next_range(self) -> tuple[int, int] | None:
        """(start, count) of the next frames to decode near the target, or None when all are ready."""
        t, d = self._target, self._direction
        if t is None:
            return None
        window = range(t, min(self.frame_count, t + self._prefetch)) if d > 0 else range(t, max(-1, t - self._prefetch), -1)
        for i in window:
            if i not in self._cache:
                if d > 0:
                    end = min(self.frame_count, i + self._chunk)
                    return i, end - i
                start = max(0, i - self._chunk + 1)
                return start, i - start + 1
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or (self.error is None and self._next_range() is not None))
                if self._closed:
                    return
                start, count = self._next_range()
            try:
                frames = self._reader.read(start, count)
            except MediaError as exc:
                with self._cond:
                    self.error = exc.problem
                    self._cond.notify_all()
                if self._on_error:
                    self._on_error(exc.problem)
                continue
            except Exception as exc:  # noqa: BLE001 - a decoder failure must not kill the panel
                with self._cond:
                    self.error = f"decoding failed: {exc}"
                    self._cond.notify_all()
                if self._on_error:
                    self._on_error(self.error)
                continue
            with self._cond:
                for k in range(count):
                    self._cache[start + k] = rotate_frame(frames[k], self.rotation)
                    self._cache.move_to_end(start + k)
                self._evict()
                self._cond.notify_all()
            if self._on_ready:
                for k in range(count):
                    self._on_ready(start + k)

    def _evict(self) -> None:
        # drop the frames farthest from the playhead first (not the least recently used: after a seek
        # the old neighbourhood is what we no longer need)
        excess = len(self._cache) - self._capacity
        if excess <= 0:
            return
        t = self._target or 0
        far = sorted(self._cache, key=lambda i: abs(i - t), reverse=True)[:excess]
        for i in far:
            del self._cache[i]
