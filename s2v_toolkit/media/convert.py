"""Re-encode a video to another codec/container, keeping frame rate, timecode and audio."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from s2v_toolkit.errors import OutputError
from s2v_toolkit.media.audio import read_audio_channels
from s2v_toolkit.media.probe import MediaInfo, probe
from s2v_toolkit.media.video_reader import VideoReader
from s2v_toolkit.media.writer import write_video


def convert(src: str | os.PathLike, dst: str | os.PathLike, preset: str | None = None, overwrite: bool = False,
            progress: bool = False) -> MediaInfo:
    """Write ``src`` to ``dst`` with ``preset`` (default from dst's extension); returns ``probe(dst)``."""
    src, dst = Path(src), Path(dst)
    info = probe(src)
    if dst.exists() and os.path.samefile(src, dst):
        raise OutputError(dst, "is the input file; refusing to overwrite the source media")
    if info.video is None:
        raise OutputError(dst, f"{src} has no video stream to convert")
    v = info.video
    audio, rate = None, 48000
    if info.audio:
        audio, rate = read_audio_channels(src, 0, Fraction(v.frame_count) / v.fps, sample_rate=None)
    with VideoReader(src, info, depth="native") as reader:  # the source planes: depth and colour kept
        write_video(dst, iter(reader), v.fps, preset=preset, audio=audio, audio_rate=rate,
                    start_timecode=v.start_timecode, overwrite=overwrite, frame_count=v.frame_count,
                    progress=progress)
    return probe(dst)
