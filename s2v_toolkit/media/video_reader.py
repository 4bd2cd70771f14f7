"""Frame-accurate reading of video frames as uint8 RGB arrays.

Frames are addressed by 0-based index from the file's first frame. A read seeks to the nearest
keyframe before the range and decodes forward (never from the start of the file each time); reads
that continue where the previous one ended reuse the open decoder without seeking.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from s2v_toolkit.errors import MediaError
from s2v_toolkit.media.container import open_input, video_stream
from s2v_toolkit.media.pixels import ColourInfo, check_depth, convert_frame, frame_buffer
from s2v_toolkit.media.probe import MediaInfo, probe


class VideoReader:
    """An open video file. Use as a context manager; ``read(start, count)`` returns (count, H, W, 3) uint8.

    ``depth``: 8 (uint8 R'G'B'), 16 (uint16 R'G'B', 10/12-bit sources kept exactly) or "native"
    (a list of :class:`~s2v_toolkit.media.pixels.PlanarFrame`: the decoded planes, untouched).
    """

    def __new__(cls, path=None, *args, **kwargs):
        from s2v_toolkit.media.sequence import SequenceReader, is_sequence_path

        if path is not None and is_sequence_path(path):  # DPX / EXR sequences (media/sequence.py)
            return SequenceReader(path, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike, info: MediaInfo | None = None, depth: int | str = 8):
        self.path = os.fspath(path)
        self.depth = check_depth(depth)
        self.info = info or probe(self.path)
        if self.info.video is None:
            raise MediaError(self.path, "has no video stream (audio-only file): cannot read frames")
        self._container = open_input(self.path)
        self._stream = video_stream(self._container, self.path)
        # Slice threads only: with FFmpeg's frame threading, opening many short-lived readers in one
        # process deadlocked inside av.open (seen with PyAV 18 on H.264); slice threads never did.
        self._stream.thread_type = "SLICE"
        self._colour = ColourInfo.from_av(self._stream.codec_context)
        self._tb = Fraction(self._stream.time_base)
        self._fps = self.info.video.fps
        self._start_pts = self._stream.start_time if self._stream.start_time is not None else 0
        self._frames = None  # live decode iterator positioned at self._next_index
        self._next_index = -1

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._drop_decoder()
        self._container.close()

    def _drop_decoder(self) -> None:
        # Finish the suspended decode generator explicitly: left to the garbage collector, it can
        # run after the container is closed and deadlock FFmpeg's frame-threaded decoder.
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    # -- index <-> timestamp --------------------------------------------------------------------
    @property
    def frame_count(self) -> int:
        return self.info.video.frame_count

    def _pts_of(self, index: int) -> int:
        return self._start_pts + round(index / (self._fps * self._tb))

    def _index_of(self, frame: av.VideoFrame) -> int:
        pts = frame.pts if frame.pts is not None else frame.dts
        return round((pts - self._start_pts) * self._tb * self._fps)

    # -- reading --------------------------------------------------------------------------------
    def _seek(self, index: int) -> None:
        target = self._pts_of(index)
        self._drop_decoder()
        self._container.seek(max(target, self._start_pts), stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._next_index = -1  # unknown until the first decoded frame

    def _decoded(self):
        try:
            for frame in self._frames:
                yield self._index_of(frame), frame
        except av.error.FFmpegError as exc:
            raise MediaError(self.path, f"decoding failed near frame {self._next_index}: {exc.strerror or exc}") from None

    def read(self, start: int, count: int) -> np.ndarray:
        """Frames ``start`` .. ``start+count-1`` as an array (count, H, W, 3) uint8 RGB."""
        if count <= 0:
            raise ValueError("count must be positive")
        end = start + count
        if start < 0 or end > self.frame_count:
            raise MediaError(
                self.path, f"frames {start}-{end - 1} are outside the file (it has frames 0-{self.frame_count - 1})"
            )
        out = frame_buffer(count, self.info.video.height, self.info.video.width, self.depth)
        got = 0
        for attempt in range(3):
            if self._frames is None or self._next_index != start or got:
                # Seek a little earlier on each retry: some files land after the target keyframe.
                self._seek(max(0, start - attempt * 2 * round(float(self._fps))))
            first = True
            for idx, frame in self._decoded():
                if first and idx > start:
                    break  # landed past the start: retry from further back
                first = False
                self._next_index = idx + 1
                if idx < start:
                    continue
                out[idx - start] = convert_frame(frame, self.depth, self._colour)
                got = idx - start + 1
                if got == count:
                    return out
            else:
                break  # the stream ended
        self._drop_decoder()
        if got == 0 and self._next_index == -1:
            raise MediaError(self.path, f"could not decode frame {start} (corrupt or truncated file)")
        raise MediaError(
            self.path,
            f"stream ends after frame {start + got - 1} but frames up to {end - 1} were asked for"
            f" (declared {self.frame_count}; the file is truncated or corrupt)",
        )

    def __iter__(self):
        """Every frame in order, decoding once (for whole-file conversion)."""
        self._seek(0)
        for _, frame in self._decoded():
            yield convert_frame(frame, self.depth, self._colour)
        self._drop_decoder()


def read_frames(path: str | os.PathLike, start: int, count: int) -> np.ndarray:
    """Read ``count`` frames from frame ``start`` of ``path`` as (count, H, W, 3) uint8 RGB."""
    with VideoReader(path) as reader:
        return reader.read(start, count)


def export_frames_png(path: str | os.PathLike, start: int, count: int, out_dir: str | os.PathLike) -> list[Path]:
    """Write frames as ``<stem>_<index>.png`` into ``out_dir`` (created if missing)."""
    from s2v_toolkit.media.atomic import ensure_output_dir
    from s2v_toolkit.media.png import write_png

    out = ensure_output_dir(out_dir)
    frames = read_frames(path, start, count)
    stem = Path(path).stem
    written = []
    for i, rgb in enumerate(frames):
        dst = out / f"{stem}_{start + i:06d}.png"
        write_png(dst, rgb)
        written.append(dst)
    return written
