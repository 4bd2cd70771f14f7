"""Re-encode a video to another codec/container, keeping frame rate, timecode and audio.

A variable-rate source is refused unless asked for a constant-rate copy (``cfr=True``): frames are
then placed by time on a grid at the probed (or chosen) rate, duplicating a frame where the source
has none and dropping one where it has two, and the counts are reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from s2v_toolkit.errors import MediaError, OutputError
from s2v_toolkit.media.audio import read_audio_channels
from s2v_toolkit.media.probe import MediaInfo, probe
from s2v_toolkit.media.timecode import frames_to_timecode, snap_rate
from s2v_toolkit.media.video_reader import VideoReader, display_transform
from s2v_toolkit.media.writer import check_display_rotation, field_order_warnings, write_video


@dataclass
class ConversionReport:
    """What a conversion did to the frames: the output's probe and the grid placement counts."""

    info: MediaInfo
    fps: Fraction
    frames: int  # frames written
    source_frames: int  # displayed frames of the source
    duplicated: list[int] = field(default_factory=list)  # output frames repeating the previous source frame
    dropped: list[float] = field(default_factory=list)  # source frame times (s) no output frame shows
    substituted: list[int] = field(default_factory=list)  # output frames showing a neighbour of a damaged frame
    warnings: list[str] = field(default_factory=list)  # what the output does not keep of the source

    def summary(self) -> str:
        return (f"{self.frames} frames at {float(self.fps):.3f} fps from {self.source_frames} source frames: "
                f"{len(self.duplicated)} duplicated, {len(self.dropped)} dropped, "
                f"{len(self.substituted)} damaged (nearest good frame shown)")


def convert(src: str | os.PathLike, dst: str | os.PathLike, preset: str | None = None, overwrite: bool = False,
            progress: bool = False, cfr: bool = False, rate: Fraction | str | None = None) -> MediaInfo:
    """Write ``src`` to ``dst`` with ``preset`` (default from dst's extension); returns ``probe(dst)``.

    A variable-rate ``src`` needs ``cfr=True`` (see :func:`convert_cfr`); ``rate`` implies it.
    """
    return convert_report(src, dst, preset, overwrite, progress, cfr, rate).info


def convert_report(src: str | os.PathLike, dst: str | os.PathLike, preset: str | None = None,
                   overwrite: bool = False, progress: bool = False, cfr: bool = False,
                   rate: Fraction | str | None = None) -> ConversionReport:
    """:func:`convert`, returning a :class:`ConversionReport` (duplicated/dropped frame counts)."""
    src, dst = Path(src), Path(dst)
    info = probe(src)
    if dst.exists() and os.path.samefile(src, dst):
        raise OutputError(dst, "is the input file; refusing to overwrite the source media")
    if info.video is None:
        raise OutputError(dst, f"{src} has no video stream to convert")
    v = info.video
    if rate is not None:
        cfr = True
        try:
            fps = snap_rate(Fraction(str(rate)))
        except (ValueError, ZeroDivisionError):
            raise OutputError(dst, f"bad frame rate {rate!r} (use e.g. 25, 30000/1001 or 29.97)") from None
    else:
        fps = v.fps
    if v.vfr and not cfr:
        raise MediaError(src, f"has a variable frame rate ({v.duplicated} gap(s), {v.dropped} extra frame(s) on the "
                              f"{float(v.fps):.3f} fps grid); use s2vt convert --cfr to make a constant-rate copy")
    # A phone's display matrix is carried over (the frames are written as stored), or refused in one line
    # where the output cannot carry it: never a copy that plays sideways.
    rotation, matrix = display_transform(src, info)
    display = check_display_rotation(dst, matrix or rotation, preset)
    # The source planes (depth and colour kept); the report gives the VFR counts.
    with VideoReader(src, info, fps=fps, warn_vfr=False, depth="native") as reader:
        n = reader.frame_count
        audio, a_rate = None, 48000
        if info.audio:
            audio, a_rate = read_audio_channels(src, 0, Fraction(n) / fps, sample_rate=None)
            if len(info.audio) > 1:  # every stream's channels, in order, as one track (no sample dropped)
                audio = np.concatenate([audio] + [read_audio_channels(src, 0, Fraction(n) / fps, a_rate, s.index)[0]
                                                  for s in info.audio[1:]], axis=0)
        tc = v.start_timecode
        if tc and fps != v.fps:
            tc = frames_to_timecode(round(Fraction(v.start_frame) / v.fps * fps), fps)
        write_video(dst, iter(reader), fps, preset=preset, audio=audio, audio_rate=a_rate,
                    start_timecode=tc, overwrite=overwrite, frame_count=n, progress=progress,
                    display_rotation=display, field_order=v.field_order)
        fmap = reader.frame_map
        index = reader.index
    return ConversionReport(
        info=probe(dst), fps=fps, frames=n, source_frames=index.source_frames,
        duplicated=fmap.indexes("duplicated") if fmap else [],
        dropped=[round(float(index.seconds(index.source_pts[k])), 6) for k in index.dropped],
        substituted=fmap.indexes("substituted") if fmap else [],
        warnings=field_order_warnings(v.field_order, dst, preset) + _audio_streams_warning(info),
    )


def _audio_streams_warning(info: MediaInfo) -> list[str]:
    """The output carries every audio stream's channels in one track: say so where the source had several."""
    if len(info.audio) < 2:
        return []
    total = sum(a.channels for a in info.audio)
    return [f"the source's {len(info.audio)} audio streams are carried as one track of {total} channels, in "
            "their order (channel k of the copy is the k-th channel counted across the source's streams)"]

