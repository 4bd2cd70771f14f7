"""SMPTE timecode <-> frame numbers at exact rational rates (drop-frame and non-drop-frame).

Drop-frame timecode (29.97, 59.94) skips the labels ``;00`` and ``;01`` (``;00``-``;03`` at 59.94) at
the start of every minute except every tenth minute, so that the label stays close to wall-clock
time. Frame numbers are always plain counts from 00:00:00:00.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Rates that files store approximately (e.g. 23.976023...) are snapped to these exact values.
STANDARD_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
    Fraction(48000, 1001), Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60),
    Fraction(120000, 1001), Fraction(120), Fraction(15), Fraction(12), Fraction(100),
)

_TC_RE = re.compile(r"^(-)?(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})$")


def snap_rate(rate: Fraction | float, tolerance: float = 2e-4) -> Fraction:
    """Return the standard rate within ``tolerance`` (relative) of ``rate``, else ``rate`` as a Fraction."""
    rate = Fraction(rate).limit_denominator(1_000_000)
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {rate}")
    for std in STANDARD_RATES:
        if abs(float(rate) / float(std) - 1.0) < tolerance:
            return std
    return rate.limit_denominator(1001)


def nominal_rate(fps: Fraction) -> int:
    """The integer frame count per timecode second (24 for 23.976, 30 for 29.97)."""
    return int(round(float(fps)))


def is_drop_frame_rate(fps: Fraction) -> bool:
    """Drop-frame timecode exists only for the NTSC rates 29.97, 59.94 and 119.88 (2, 4 and 8 labels
    skipped per minute, except every tenth minute)."""
    return fps in (Fraction(30000, 1001), Fraction(60000, 1001), Fraction(120000, 1001))


def _drops_per_minute(fps: Fraction) -> int:
    return 2 * nominal_rate(fps) // 30


def is_timecode(text: str) -> bool:
    """Whether ``text`` has the shape of a timecode (``HH:MM:SS:FF``, ``;`` before FF for drop-frame)."""
    return bool(_TC_RE.match(str(text).strip()))


def timecode_seconds(timecode: str, fps: Fraction) -> Fraction | None:
    """Seconds of ``timecode`` counted at ``fps`` (a sound-only file's start timecode, read at the rate of
    the timeline that uses it); None where it is no timecode of that rate (a drop-frame label at 25)."""
    try:
        return Fraction(timecode_to_frames(timecode, Fraction(fps))) / Fraction(fps)
    except ValueError:
        return None


def timecode_to_frames(timecode: str, fps: Fraction) -> int:
    """Parse ``HH:MM:SS:FF`` (``;`` before FF means drop-frame) into a frame count at ``fps``."""
    m = _TC_RE.match(timecode.strip())
    if not m:
        raise ValueError(f"not a timecode: {timecode!r}")
    neg, hh, mm, ss, sep, ff = m.groups()
    hh, mm, ss, ff = int(hh), int(mm), int(ss), int(ff)
    base = nominal_rate(fps)
    if mm > 59 or ss > 59 or ff >= base:
        raise ValueError(f"timecode {timecode!r} is out of range at {float(fps):.3f} fps")
    frames = ((hh * 60 + mm) * 60 + ss) * base + ff
    if sep == ";":
        if not is_drop_frame_rate(fps):
            raise ValueError(f"drop-frame timecode {timecode!r} at a non-NTSC rate {fps}")
        drop = _drops_per_minute(fps)
        total_minutes = hh * 60 + mm
        if mm % 10 != 0 and ss == 0 and ff < drop:
            raise ValueError(f"timecode {timecode!r} does not exist in drop-frame (labels skipped)")
        frames -= drop * (total_minutes - total_minutes // 10)
    return -frames if neg else frames


def frames_to_timecode(frames: int, fps: Fraction, drop_frame: bool | None = None) -> str:
    """Format a frame count at ``fps`` as timecode; drop-frame defaults to on for 29.97/59.94."""
    if drop_frame is None:
        drop_frame = is_drop_frame_rate(fps)
    if drop_frame and not is_drop_frame_rate(fps):
        raise ValueError(f"drop-frame timecode needs 29.97, 59.94 or 119.88 fps, not {fps}")
    sign = "-" if frames < 0 else ""
    frames = abs(int(frames))
    base = nominal_rate(fps)
    if drop_frame:
        drop = _drops_per_minute(fps)
        per_10min = base * 600 - drop * 9
        per_min = base * 60 - drop
        tens, rem = divmod(frames, per_10min)
        # The first minute of each ten keeps all its labels; later minutes lose ``drop`` labels.
        extra = 0 if rem < drop else drop * ((rem - drop) // per_min)
        frames = frames + drop * 9 * tens + extra
    ff = frames % base
    total_s = frames // base
    ss, mm, hh = total_s % 60, (total_s // 60) % 60, total_s // 3600
    sep = ";" if drop_frame else ":"
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:02d}"
