"""Exact time values that cross stage boundaries, and timecode formatting.

OTIO keeps a rate as a double (23.976... is ``24000/1001`` rounded). Values that leave this layer
keep OTIO's own (value, rate) pair so that converting back gives the *identical* RationalTime;
``Fraction`` views snap the rate to the standard video rate it stands for, so that seconds and audio
sample positions are exact rationals, not float sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import opentimelineio as otio

RationalTime = otio.opentime.RationalTime
TimeRange = otio.opentime.TimeRange

# Rates an NLE actually uses; a double within 1e-4 of one of these stands for it exactly.
STANDARD_RATES = tuple(
    Fraction(n, d)
    for n, d in (
        (24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48000, 1001), (48, 1),
        (50, 1), (60000, 1001), (60, 1), (120000, 1001), (120, 1), (12, 1), (15, 1),
        (16, 1), (18, 1), (20, 1), (100, 1), (1000, 1), (8000, 1), (16000, 1), (22050, 1),
        (32000, 1), (44100, 1), (48000, 1), (96000, 1), (192000, 1),
    )
)
_DF_RATES = (Fraction(30000, 1001), Fraction(60000, 1001), Fraction(120000, 1001))


def rate_fraction(rate: float) -> Fraction:
    """The exact rate a double stands for (23.976023976 -> 24000/1001)."""
    for cand in STANDARD_RATES:
        if abs(float(cand) - rate) < 1e-4:
            return cand
    return Fraction(rate).limit_denominator(1_000_000)


def rate_string(rate: float) -> str:
    f = rate_fraction(rate)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def can_drop_frame(rate: float) -> bool:
    return rate_fraction(rate) in _DF_RATES


def seconds(rt: RationalTime) -> Fraction:
    """Exact seconds of a RationalTime (value as written, rate snapped to its standard value)."""
    return Fraction(rt.value) / rate_fraction(rt.rate)


def frame_count(rt: RationalTime, rate: float) -> int:
    """``rt`` as a whole number of frames at ``rate``: exact rational arithmetic, rounded to the
    NEAREST frame (OTIO's float rescale + floor put 298 of 671 clips of a real 25 fps programme one
    frame early: 40 ms * 25 = 0.99999...)."""
    exact = Fraction(rt.value) * rate_fraction(rate) / rate_fraction(rt.rate)
    return int(exact + Fraction(1, 2)) if exact >= 0 else -int(-exact + Fraction(1, 2))


def frames_timecode(frames: int, rate: float, drop_frame: bool = False) -> str:
    """SMPTE timecode of a frame count at ``rate`` (NTSC drop-frame where asked and possible)."""
    from s2v_toolkit.media import frames_to_timecode

    r = rate_fraction(rate)
    df = bool(drop_frame and can_drop_frame(rate))
    if r.denominator not in (1, 1001) or r > 1000:
        raise ValueError(f"no timecode at {r} fps")
    return frames_to_timecode(frames, r, drop_frame=df)


def timecode(rt: RationalTime, rate: float, drop_frame: bool = False) -> str:
    """SMPTE timecode of ``rt`` counted at ``rate`` (``;`` before frames when drop-frame)."""
    try:
        return frames_timecode(frame_count(rt, rate), rate, drop_frame)
    except Exception:  # odd rates: still show something readable
        return f"{rt.rescaled_to(rate).value:g}@{rate_string(rate)}"


@dataclass(frozen=True)
class Time:
    """A point in time as OTIO holds it: ``value`` units at ``rate`` per second."""

    value: float
    rate: float

    @classmethod
    def from_otio(cls, rt: RationalTime) -> "Time":
        return cls(float(rt.value), float(rt.rate))

    def to_otio(self) -> RationalTime:
        return RationalTime(self.value, self.rate)

    @property
    def seconds(self) -> Fraction:
        return seconds(self.to_otio())

    def to_dict(self) -> dict:
        return {"value": self.value, "rate": self.rate}

    @classmethod
    def from_dict(cls, d: dict) -> "Time":
        return cls(float(d["value"]), float(d["rate"]))


@dataclass(frozen=True)
class Span:
    """A time range as OTIO holds it (start and duration at their own rates)."""

    start: Time
    duration: Time

    @classmethod
    def from_otio(cls, tr: TimeRange) -> "Span":
        return cls(Time.from_otio(tr.start_time), Time.from_otio(tr.duration))

    def to_otio(self) -> TimeRange:
        return TimeRange(self.start.to_otio(), self.duration.to_otio())

    @property
    def end_exclusive(self) -> Time:
        return Time.from_otio(self.to_otio().end_time_exclusive())

    @property
    def start_seconds(self) -> Fraction:
        return self.start.seconds

    @property
    def duration_seconds(self) -> Fraction:
        return self.duration.seconds

    def frames(self, rate: float | None = None) -> tuple[float, float]:
        """(start, duration) counted in frames at ``rate`` (default: the span's own start rate)."""
        r = rate or self.start.rate
        tr = self.to_otio()
        return tr.start_time.rescaled_to(r).value, tr.duration.rescaled_to(r).value

    def to_dict(self, rate: float | None = None, drop_frame: bool = False,
                offset: RationalTime | None = None) -> dict:
        """JSON form: the exact OTIO values plus timecodes at ``rate`` (shifted by ``offset``)."""
        d = {"start": self.start.to_dict(), "duration": self.duration.to_dict()}
        if rate:
            tr = self.to_otio()
            start = tr.start_time + offset if offset is not None else tr.start_time
            d["tc_in"] = timecode(start, rate, drop_frame)
            d["tc_out"] = timecode(start + tr.duration, rate, drop_frame)  # exclusive, as NLEs show it
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Span":
        return cls(Time.from_dict(d["start"]), Time.from_dict(d["duration"]))


def parse_rate(text: str | float) -> float:
    """A rate as users write it ("23.976", "29.97", "24000/1001", "25") -> OTIO's double."""
    try:
        value = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a frame rate: {text!r}") from None
    if value <= 0:
        raise ValueError(f"not a frame rate: {text!r}")
    for cand in STANDARD_RATES:  # "23.976" means 24000/1001, not 23.976 exactly
        if abs(float(cand) - value) < 2e-3:
            return float(cand)
    return value
