"""Opening media files with PyAV, turning its exceptions into one-line :class:`MediaError`s."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import av
import av.logging

from s2v_toolkit.errors import MediaError

# FFmpeg prints decoder chatter (e.g. "invalid NAL unit") on stderr; our own errors say what matters.
av.logging.set_level(av.logging.PANIC)


def check_readable(path: str | os.PathLike) -> Path:
    """Raise a clear MediaError if ``path`` is missing, a folder or unreadable."""
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "file not found")
    if p.is_dir():
        raise MediaError(p, "is a folder, not a media file")
    if not os.access(p, os.R_OK):
        raise MediaError(p, "permission denied (cannot read)")
    if p.stat().st_size == 0:
        raise MediaError(p, "file is empty")
    return p


def open_input(path: str | os.PathLike) -> av.container.InputContainer:
    """Open a media file for reading or raise MediaError naming it."""
    p = check_readable(path)
    from s2v_toolkit.safety import note_input

    note_input(p)  # a file the running command reads is never one of its outputs
    try:
        # tags in another encoding than UTF-8 (a Pro Tools WAV's bext text in Mac Roman) must not stop the read
        return av.open(str(p), mode="r", metadata_errors="replace")
    except av.error.InvalidDataError:
        raise MediaError(p, "not a media file, or the file is corrupt/truncated (no readable container)") from None
    except av.error.FFmpegError as exc:
        raise MediaError(p, f"cannot open as media: {exc.strerror or exc}") from None


@contextmanager
def opened(path: str | os.PathLike):
    container = open_input(path)
    try:
        yield container
    finally:
        container.close()


def video_stream(container, path) -> av.video.stream.VideoStream:
    """The first real video stream (not cover art), or a MediaError."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    raise MediaError(path, "has no video stream (audio-only or data file): cannot read frames")


def audio_stream(container, path, index: int = 0) -> av.audio.stream.AudioStream:
    streams = list(container.streams.audio)
    if not streams:
        raise MediaError(path, "has no audio stream")
    if not 0 <= index < len(streams):
        raise MediaError(path, f"has {len(streams)} audio stream(s); stream {index} does not exist")
    return streams[index]
