"""The two questions this layer asks of media files: how long is it, and its audio as 16 kHz mono.

Decoding belongs to :mod:`s2v_toolkit.media`; this module is the one place the timeline layer
calls it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class MediaFacts:
    duration: float                 # seconds
    start_frame: int = 0            # embedded start timecode as a frame number (0 if none)
    fps: Fraction | None = None     # video rate, if the file has video
    has_audio: bool = True
    audio_channels: int = 0         # audio channels, counted across the file's audio streams
    origin: Fraction = Fraction(0)  # source time of the first frame/sample, seconds: start timecode or BWF
    audio_timecode: str | None = None  # a sound-only file's start timecode, read at the using clip's rate

    def origin_at(self, rate: float | None) -> Fraction:
        """:attr:`origin`, with a sound-only file's start timecode (Avid's OP-Atom MXF) read at ``rate``, the
        source rate of the clip that uses it: an EDL's source timecodes count the file's frames that way."""
        if self.audio_timecode and not self.origin and rate:
            from s2v_toolkit.media.timecode import timecode_seconds
            from s2v_toolkit.timeline.timecode import rate_fraction

            return timecode_seconds(self.audio_timecode, rate_fraction(float(rate))) or Fraction(0)
        return self.origin


def probe_facts(path: str | os.PathLike) -> MediaFacts:
    from s2v_toolkit.media import probe

    info = probe(path)
    v = info.video
    return MediaFacts(
        duration=float(info.duration),
        start_frame=int(v.start_frame) if v is not None else 0,
        fps=Fraction(v.fps) if v is not None else None,
        has_audio=bool(info.audio),
        audio_channels=sum(int(a.channels) for a in info.audio),  # counted across streams, as NLEs number them
        origin=info.start_seconds,
        audio_timecode=info.audio_timecode if v is None and not info.time_reference else None,
    )


def read_audio_16k(path: str | os.PathLike, start: Fraction, duration: Fraction,
                   sample_rate: int = 16000, channel: int | None = None) -> np.ndarray:
    """Mono float32 audio of ``duration`` seconds from ``start`` seconds into the file.

    Parts outside the file read as zeros; the length is always ``round(duration * rate)``.
    """
    from s2v_toolkit.media import read_audio

    want = int(round(Fraction(duration) * sample_rate))
    out = read_audio(path, start=Fraction(start), duration=Fraction(duration), sample_rate=sample_rate,
                     channel=channel)
    out = np.asarray(out, dtype=np.float32).reshape(-1)
    if out.shape[0] != want:  # guard the exact length the caller places at record time
        out = np.pad(out, (0, max(0, want - out.shape[0])))[:want]
    return out


def range_outside_media(origin: Fraction, start: Fraction, end: Fraction, duration: Fraction) -> str | None:
    """The problem, in one phrase, when a clip needs seconds ``start``..``end`` of a file (counted from its
    first sample/frame, whose source time is ``origin`` seconds) and the file (``duration`` s) does not
    hold all of them; None when it does."""
    if start >= 0 and end <= duration + Fraction(1, 1000):
        return None
    held = max(min(end, duration) - max(start, Fraction(0)), Fraction(0))
    part = "none of that range" if not held else f"{float(held / (end - start)):.0%} of that range"
    return (f"media does not hold the clip's source range: needs {_clock(origin + start)}-{_clock(origin + end)}, "
            f"the file holds {_clock(origin)}-{_clock(origin + duration)} (it has {part}; what it lacks reads as "
            "silence or the nearest frame: another file of that name, or a start timecode the file does not carry?)")


def _clock(t: Fraction) -> str:
    """Seconds as hh:mm:ss.mmm (rate-free: source times of files at other rates)."""
    sign, t = ("-" if t < 0 else ""), abs(float(t))
    return f"{sign}{int(t // 3600):02d}:{int(t // 60 % 60):02d}:{t % 60:06.3f}"
