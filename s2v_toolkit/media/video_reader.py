"""Frame-accurate reading of video frames as uint8 RGB arrays, by presentation time.

Frames are addressed by their index on the file's frame grid (see :mod:`.frame_index`): frame ``i``
is the frame displayed at ``start + i / fps``. A read finds the source frames those times show, seeks
to the keyframe before the first, decodes forward and matches decoded frames by timestamp, so a seek
never returns a neighbour. Reads that continue where the previous one ended reuse the open decoder.

Every read also yields a :class:`FrameMap`: which grid frames repeat a source frame (variable-rate
gaps), which source frames no grid frame shows, and which frames could not be decoded (a damaged
packet) and show the nearest good frame instead, with a warning naming the file and time range.
Never a black frame, never a shifted one.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from s2v_toolkit.errors import MediaError, MediaWarning
from s2v_toolkit.media.container import open_input, video_stream
from s2v_toolkit.media.frame_index import FrameIndex, index_frames
from s2v_toolkit.media.pixels import IDENTITY_MATRIX, ColourInfo, check_depth, convert_frame
from s2v_toolkit.media.probe import MediaInfo, probe

# How far ahead of the decoder's position a read may start and still decode on rather than seek.
_DECODE_AHEAD = 48


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's display matrix (9 ints, FFmpeg's layout: 16.16 and 2.30 fixed point) unless none or
    the identity; it can hold a mirror that ``frame.rotation`` (an angle) does not tell."""
    try:
        from av.sidedata.sidedata import Type

        data = frame.side_data.get(Type.DISPLAYMATRIX)
    except (ImportError, AttributeError):  # an older PyAV: only the angle is known
        return None
    if data is None or len(bytes(data)) != 36:
        return None
    matrix = tuple(int(x) for x in np.frombuffer(bytes(data), "<i4"))
    return None if matrix == IDENTITY_MATRIX else matrix


def display_transform(path: str | os.PathLike, info=None) -> tuple[int, tuple[int, ...] | None]:
    """How the file asks players to show its frames: (counter-clockwise degrees, whole display matrix or
    None), from its first frame (PyAV reads the display matrix from decoded frames only)."""
    from s2v_toolkit.media.sequence import is_sequence_path

    if is_sequence_path(os.fspath(path)):
        return 0, None  # image sequences (DPX, EXR) carry no display matrix
    with VideoReader(path, info, warn_vfr=False) as reader:
        reader.read(0, 1)
        return reader.display_rotation or 0, reader.display_matrix


def frame_to_rgb(frame: av.VideoFrame, depth: int | str = 8, colour: ColourInfo | None = None):
    """A decoded frame at ``depth``: (H, W, 3) uint8 / uint16 R'G'B', or its own planes ("native").

    The one place pixel conversion happens (:func:`~s2v_toolkit.media.pixels.convert_frame`, with the
    stream's colour tags where the frame has none).
    """
    return convert_frame(frame, depth, colour)


@dataclass
class FrameMap:
    """How a read's grid frames map onto the source's frames.

    ``source[i]``: the source frame (0-based, in display order) grid frame ``start + i`` shows;
    ``times[i]``: that source frame's presentation time in seconds from the first frame.
    ``kinds[i]``: ``exact`` (one grid frame, one source frame), ``duplicated`` (repeats the previous
    grid frame's source: the source has no frame at this time), ``substituted`` (its source frame
    could not be decoded; the nearest good frame is shown) or ``degraded`` (decoded after a damaged
    reference frame, before the next keyframe: it may show the decoder's error concealment). ``dropped``: source frames within the
    read's time span that no grid frame shows (faster than the grid).
    """

    path: str
    start: int
    source: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.source)

    def indexes(self, kind: str) -> list[int]:
        return [self.start + i for i, k in enumerate(self.kinds) if k == kind]

    @property
    def exact(self) -> bool:
        return not self.dropped and all(k == "exact" for k in self.kinds)

    def extend(self, other: "FrameMap") -> None:
        self.source += other.source
        self.times += other.times
        self.kinds += other.kinds
        self.dropped += [d for d in other.dropped if d not in self.dropped]
        self.warnings += [w for w in other.warnings if w not in self.warnings]

    def to_dict(self) -> dict:
        """Compact: counts, and only the grid frames that are not one-to-one."""
        return {
            "start": self.start, "count": self.count,
            "duplicated": self.indexes("duplicated"), "substituted": self.indexes("substituted"),
            "degraded": self.indexes("degraded"),
            "dropped_source_frames": list(self.dropped),
            "irregular": [{"frame": self.start + i, "source_frame": s, "source_time": round(t, 6), "kind": k}
                          for i, (s, t, k) in enumerate(zip(self.source, self.times, self.kinds)) if k != "exact"],
            "warnings": list(self.warnings),
        }


def note_read(reader, fmap: FrameMap) -> None:
    """Keep a read's map as the reader's ``last_map`` and add it to ``frame_map`` (all its reads)."""
    reader.last_map = fmap
    if reader.frame_map is None:
        reader.frame_map = FrameMap(reader.path, fmap.start)
    reader.frame_map.extend(fmap)


class VideoReader:
    """An open video file. Use as a context manager; ``read(start, count)`` returns (count, H, W, 3) frames.

    ``depth``: 8 (uint8 R'G'B'), 16 (uint16 R'G'B', 10/12-bit sources kept exactly) or "native"
    (a list of :class:`~s2v_toolkit.media.pixels.PlanarFrame`: the decoded planes, untouched).
    ``last_map`` is the :class:`FrameMap` of the latest read; ``frame_map`` accumulates all reads.
    ``display_rotation``: how the file asks for its frames to be turned for display (frames are returned
    as stored), known after the first read; ``display_matrix``: the file's whole display matrix (9 ints,
    None for none or the identity), which also tells a mirror.
    ``fps``: read on a grid at this rate instead of the probed one (e.g. to make a variable-rate
    source constant at a chosen rate). ``warn_vfr=False``: the caller reports the placement itself.
    """

    def __new__(cls, path=None, *args, **kwargs):
        from s2v_toolkit.media.sequence import SequenceReader, is_sequence_path

        if path is not None and is_sequence_path(path):  # DPX / EXR sequences (media/sequence.py)
            return SequenceReader(path, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike, info: MediaInfo | None = None, fps: Fraction | None = None,
                 warn_vfr: bool = True, depth: int | str = 8):
        self.path = os.fspath(path)
        self.depth = check_depth(depth)
        self.info = info or probe(self.path)
        if self.info.video is None:
            raise MediaError(self.path, "has no video stream (audio-only file): cannot read frames")
        self._open()
        self._colour = ColourInfo.from_av(self._stream.codec_context)
        fps = Fraction(fps) if fps is not None else self.info.video.fps
        index: FrameIndex | None = getattr(self.info.video, "_index", None)
        if index is None or index.fps != fps:
            index = index_frames(self._container, self._stream, fps=fps)
            self._container.seek(0, stream=self._stream, backward=True)
        self.index = index
        # Files without presentation times whose decoder reorders (H.264 with B-frames in AVI, whose
        # demuxer stamps packets in decode order): the frames come out in display order but stamped with
        # their packets' decode-order times, so a frame's time says nothing; they are numbered by the order
        # they come out, counted from the file's first packet
        self._order_mode = (bool(index.synthesized) or self._container.format.name == "avi") \
            and self._output_reorders()
        if index.vfr and warn_vfr:
            _warn_once(f"{self.path}: variable frame rate: on its {float(index.fps):.3f} fps grid "
                       f"{len(index.duplicated)} frame(s) repeat and {len(index.dropped)} source frame(s) are not "
                       "shown; frames are placed by time (s2vt convert --cfr makes a constant-rate copy)")
        self._frames = None  # live decode iterator
        self._next_src = -1  # the source frame the live decoder yields next (-1: unknown)
        self._from_start = False  # the live decoder started at the first packet (_rewind)
        self._held: tuple[int, np.ndarray] | None = None  # the latest decoded source frame
        self._failed: set[int] = set()  # source frames found undecodable
        self._degraded: set[int] = set()  # decoded after a damaged reference (possible concealment)
        self.last_map: FrameMap | None = None
        self.frame_map: FrameMap | None = None  # all reads so far, in the order they were made
        self._warned: set[str] = set()
        # Counter-clockwise degrees (0/90/180/270) the file's display matrix turns its frames (phones);
        # read from the decoded frames, so None until the first read
        self.display_rotation: int | None = None
        self.display_matrix: tuple[int, ...] | None = None

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
        self._next_src = -1

    @property
    def frame_count(self) -> int:
        return self.index.frame_count

    def _time(self, k: int) -> float:
        return float(self.index.seconds(self.index.source_pts[k]))

    def _span(self, k: int) -> str:
        """Source frame ``k``'s display time range, for messages."""
        a = self._time(k)
        b = self._time(k + 1) if k + 1 < self.index.source_frames else a + float(1 / self.index.fps)
        return f"{a:.3f}-{b:.3f} s"

    # -- decoding -------------------------------------------------------------------------------
    def _seek(self, k: int, back: float = 0.0) -> None:
        """Position the decoder at the keyframe before source frame ``k`` (``back`` seconds earlier)."""
        self._drop_decoder()
        tb = self.index.time_base
        target = self.index.source_pts[k] - round(Fraction(back) / tb) if back < 1e8 and not self._order_mode else None
        self._from_start = False
        if target is None or (back and target <= self.index.source_pts[0]):
            self._rewind()
        else:
            try:
                self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                # no keyframe at or before the target (an MP4 whose edit list starts mid-GOP refused the seek
                # with EPERM): decode from the first packet instead
                self._rewind()
        self._frames = self._decode_packets()

    def _output_reorders(self, packets: int = 64) -> bool:
        """Whether the decoder's frames come out stamped out of order, or not stamped at all, over the first
        ``packets`` packets (then rewinds): then they are numbered by the order they come out."""
        last, reordered = None, False
        try:
            for n, packet in enumerate(self._container.demux(self._stream)):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    t = frame.pts if frame.pts is not None else frame.dts
                    if t is None:  # no time at all (a raw elementary stream): only the order places it
                        reordered = True
                    elif last is not None and t < last:
                        reordered = True
                    last = t if t is not None else last
                if reordered or n >= packets:
                    break
        finally:
            self._rewind()
        return reordered

    def _open(self) -> None:
        self._container = open_input(self.path)
        self._stream = video_stream(self._container, self.path)
        # Slice threads only: with FFmpeg's frame threading, opening many short-lived readers in one
        # process deadlocked inside av.open (seen with PyAV 18 on H.264); slice threads never did.
        self._stream.thread_type = "SLICE"

    def _rewind(self) -> None:
        """Back to the file's first packet, by opening it again. A seek to time 0 is not that where an edit
        list starts the stream with packets stamped before 0: an MP4 whose first shown frames are B-frames
        needing a keyframe before the edit (marked discard) had the seek land on the next keyframe, and its
        first two frames could not be decoded (androidx/media's ``iibbibb_editlist_videoonly.mp4``)."""
        self._container.close()
        self._open()
        self._from_start = True  # a decode from here sees every frame the file can give

    def _decode_packets(self):
        """(source frame, av frame) in display order; a packet that fails to decode is skipped.

        Inter-coded frames that come out after a damaged packet, up to the next keyframe, may carry
        the decoder's concealment of the lost reference: they are noted in ``_degraded``.
        """
        order = 0
        tainted = False
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                tainted = tainted or bool(packet.size)
                continue  # its frame never comes out: the read shows the nearest good frame instead
            for frame in frames:
                if self.display_rotation is None:
                    self.display_rotation = int(round((frame.rotation or 0) / 90.0)) * 90 % 360
                    self.display_matrix = _display_matrix(frame)
                pts = frame.pts if frame.pts is not None else frame.dts
                if self._order_mode:  # every decode starts at the first packet (_seek): order is display order
                    k = order if order < self.index.source_frames else None
                elif self.index.synthesized:
                    k = self._synth_source(pts, order)
                else:
                    k = self.index.source_at_pts(pts) if pts is not None else None
                order += 1
                if frame.key_frame:
                    tainted = False
                if k is None:
                    continue
                if tainted or frame.is_corrupt:
                    self._degraded.add(k)
                yield k, frame

    def _synth_source(self, pts, order: int) -> int | None:
        # Files without presentation times: the decoder's dts-derived time at the constant rate.
        if pts is None:
            return None
        k = round((pts - self.index.start_pts) * self.index.time_base * self.index.fps)
        return k if 0 <= k < self.index.source_frames else None

    def _fetch(self, needed: list[int]) -> dict[int, np.ndarray]:
        """Decode source frames ``needed`` (sorted, unique); those that cannot be decoded are absent."""
        got: dict[int, np.ndarray] = {}
        if self._held is not None and self._held[0] in needed:
            got[self._held[0]] = self._held[1]
        todo = [k for k in needed if k not in got and k not in self._failed]
        if not todo:
            return got
        first, last = todo[0], todo[-1]
        wanted = set(todo)
        for attempt in range(4):
            # (numbered by output order, a read ahead of the live decoder goes on with it however far: a new
            # decode would start from the first packet)
            ahead = self.index.source_frames if self._order_mode else _DECODE_AHEAD
            reuse = self._frames is not None and self._next_src != -1 and attempt == 0 and \
                self._next_src <= first <= self._next_src + ahead
            if not reuse:
                self._seek(first, back=(0.0, 2.0, 10.0, 1e9)[attempt])
            landed_late = False
            seen_any = False
            for k, frame in self._frames:
                if not seen_any:
                    seen_any = True
                    if k > first and not reuse and not self._from_start:
                        landed_late = True  # the seek skipped past the target: go further back
                        break
                    # (from the first packet, frames before the first one out cannot be decoded: the
                    # leading frames of an open GOP whose references are not in the file)
                self._next_src = k + 1
                if k < first:
                    continue
                if k in wanted and k not in got:
                    arr = frame_to_rgb(frame, self.depth, self._colour)
                    got[k] = arr
                    self._held = (k, arr)
                if k >= last:
                    break
            else:
                self._drop_decoder()  # the stream ended
            if landed_late or (reuse and not seen_any):
                continue
            missing = [k for k in todo if k not in got]
            if not missing or attempt >= 1:
                self._failed.update(missing)
                return got
            # Frames missing after a plain seek: one retry from further back before calling them damaged.
        self._failed.update(k for k in todo if k not in got)
        return got

    # -- reading --------------------------------------------------------------------------------
    def read_mapped(self, start: int, count: int) -> tuple[np.ndarray, FrameMap]:
        """Grid frames ``start`` .. ``start+count-1`` at ``depth`` and their :class:`FrameMap`.

        ``depth`` 8 / 16: an array (count, H, W, 3) uint8 / uint16 R'G'B'; "native": a list of PlanarFrames.
        """
        if self.depth == "native":
            return self._read_list(start, count)
        frames, fmap = self._read_list(start, count, shared=True)  # np.stack copies every frame anyway
        return np.stack(frames), fmap

    def frames(self, start: int, count: int, chunk: int = 16) -> Iterator[np.ndarray]:
        """Grid frames ``start`` .. ``start+count-1`` one by one, each its own array (as ``read`` gives
        them, ``last_map`` and ``frame_map`` kept the same way), decoded ``chunk`` at a time.

        For callers that take a frame at a time (tracking, rendering a shot): no (chunk, H, W, 3) block is
        assembled, which at 1080p cost about as much as converting the frames to RGB (a fresh 100 MB
        array per 16 frames: page faults and a copy)."""
        for first in range(start, start + count, chunk):
            yield from self._read_list(first, min(chunk, start + count - first))[0]

    def _read_list(self, start: int, count: int, shared: bool = False) -> tuple[list, FrameMap]:
        """:meth:`read_mapped` as a list: one array (or PlanarFrame) per grid frame, none shared (``shared``:
        repeats and the decoder's held frame as they are, for a caller that copies them itself)."""
        if count <= 0:
            raise ValueError("count must be positive")
        end = start + count
        if start < 0 or end > self.frame_count:
            raise MediaError(
                self.path, f"frames {start}-{end - 1} are outside the file (it has frames 0-{self.frame_count - 1})"
            )
        slots = self.index.slot_source[start:end]
        needed = sorted(set(slots))
        got = self._fetch(needed)
        fmap = FrameMap(self.path, start)
        if not got:
            # Nothing decodable in the range: look for the nearest good frame on either side.
            for k in _outward(needed[0], needed[-1], self.index.source_frames, limit=2 * _DECODE_AHEAD):
                got.update(self._fetch([k]))
                if got:
                    break
            if not got:
                self._drop_decoder()
                raise MediaError(self.path, f"could not decode frames {start}-{end - 1} "
                                            f"({self._span(needed[0])} and around; corrupt or truncated file)")
        out: list = [None] * count
        # Each grid frame is its own object, so a caller compositing into one never changes a duplicate
        # of it or the decoder's held frame (``_held``, handed out again by the next read): a decoded frame
        # goes out once as it is, any further use of it as a copy.
        handed: set[int] = set()

        def take(k: int):
            if not shared and (k in handed or (self._held is not None and self._held[0] == k)):
                return got[k].copy()
            handed.add(k)
            return got[k]

        for i, k in enumerate(slots):
            if k in got:
                out[i] = take(k)
                kind = "duplicated" if (i and slots[i - 1] == k) or (i == 0 and start and
                                                                    self.index.slot_source[start - 1] == k) else "exact"
                if kind == "exact" and k in self._degraded:
                    kind = "degraded"
            else:
                near = min(got, key=lambda g: (abs(g - k), g > k))  # nearest good frame, the earlier on a tie
                out[i] = take(near)
                kind = "substituted"
                msg = (f"{self.path}: frame at {self._span(k)} (grid frame {start + i}) could not be decoded "
                       f"(a damaged packet, or a frame referring to pictures the file does not hold); showing the "
                       f"frame at {self._time(near):.3f} s instead")
                fmap.warnings.append(msg)
                if msg not in self._warned:
                    self._warned.add(msg)
                    warnings.warn(MediaWarning(msg), stacklevel=3)
            fmap.source.append(k)
            fmap.times.append(self._time(k))
            fmap.kinds.append(kind)
        degraded = [start + i for i, kd in enumerate(fmap.kinds) if kd == "degraded"]
        if degraded:
            msg = (f"{self.path}: frames {self._time(slots[degraded[0] - start]):.3f}-"
                   f"{self._time(slots[degraded[-1] - start]):.3f} s (grid frames {degraded[0]}-{degraded[-1]}) follow "
                   "a damaged packet and may show the decoder's concealment until the next keyframe")
            fmap.warnings.append(msg)
            if msg not in self._warned:
                self._warned.add(msg)
                warnings.warn(MediaWarning(msg), stacklevel=3)
        lo, hi = self.index.source_pts[slots[0]], self.index.source_pts[slots[-1]]
        fmap.dropped = [d for d in self.index.dropped if lo <= self.index.source_pts[d] <= hi
                        or self.index.slot_of_source(d) in range(start, end)]
        note_read(self, fmap)
        return out, fmap

    def read(self, start: int, count: int):
        """Frames ``start`` .. ``start+count-1`` at ``depth`` (count, H, W, 3), or PlanarFrames (map in ``last_map``)."""
        return self.read_mapped(start, count)[0]

    def __iter__(self):
        """Every grid frame in order (for whole-file conversion); duplicates and drops as the grid says."""
        return self.frames(0, self.frame_count)


_WARNED_VFR: set[str] = set()


def _warn_once(msg: str) -> None:
    # Once per file and process: a command opens the same source several times.
    if msg not in _WARNED_VFR:
        _WARNED_VFR.add(msg)
        warnings.warn(MediaWarning(msg), stacklevel=3)


def _outward(lo: int, hi: int, n: int, limit: int):
    for d in range(1, limit + 1):
        for k in (lo - d, hi + d):
            if 0 <= k < n:
                yield k


def read_frames(path: str | os.PathLike, start: int, count: int) -> np.ndarray:
    """Read ``count`` frames from frame ``start`` of ``path`` as (count, H, W, 3) uint8 RGB."""
    with VideoReader(path) as reader:
        return reader.read(start, count)


def export_frames_png(path: str | os.PathLike, start: int, count: int, out_dir: str | os.PathLike,
                      with_map: bool = False, upright: bool = True) -> list[Path] | tuple[list[Path], FrameMap]:
    """Write frames as ``<stem>_<index>.png`` into ``out_dir`` (created if missing).

    ``with_map``: also return the read's :class:`FrameMap` (duplicates, drops, damaged frames).
    ``upright``: frames of a file with a display matrix (phone video) turned as players show them
    (as FFmpeg's command line does); False: as stored.
    """
    from s2v_toolkit.media.atomic import ensure_output_dir
    from s2v_toolkit.media.pixels import rotate_frame
    from s2v_toolkit.media.png import write_png

    out = ensure_output_dir(out_dir)
    with VideoReader(path) as reader:
        frames, fmap = reader.read_mapped(start, count)
        turn = (reader.display_rotation or 0) if upright else 0
    stem = Path(path).stem
    written = []
    for i, rgb in enumerate(frames):
        dst = out / f"{stem}_{start + i:06d}.png"
        write_png(dst, rotate_frame(rgb, turn))
        written.append(dst)
    return (written, fmap) if with_map else written
