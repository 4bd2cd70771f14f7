"""FCPXML time: rational seconds ("1001/24000s"), frame rates, and how a clip's own time maps to its parent's.

Every story element has a local time. A spine item sits at ``offset`` (in its parent's local time) and
shows its local time from ``start`` (default 0) for ``duration`` (parent time). Local time runs at the
parent's pace except where Final Cut Pro conforms the media rate (``conform-rate`` between 23.976, 24
and 25 fps: one media frame per timeline frame, so local time runs slower or faster). A ``timeMap``
further maps local time to media time (speed changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

ZERO = Fraction(0)


def seconds(text: str | None, default: Fraction | None = ZERO) -> Fraction | None:
    """``"1001/24000s"`` -> Fraction(1001, 24000); ``None``/empty -> ``default``."""
    if text is None:
        return default
    s = text.strip()
    if s.endswith("s"):
        s = s[:-1]
    if not s:
        return default
    return Fraction(s)


def fmt(value: Fraction) -> str:
    """Fraction seconds in FCPXML's notation."""
    value = Fraction(value)
    if value.denominator == 1:
        return f"{value.numerator}s"
    return f"{value.numerator}/{value.denominator}s"


# srcFrameRate names in conform-rate
_NAMED_RATES = {"23.98": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "59.94": Fraction(60000, 1001),
                "47.95": Fraction(48000, 1001), "119.88": Fraction(120000, 1001)}
# Final Cut Pro conforms (retimes) only between these rates; other mixes keep real time (frame
# sampling), per Apple's rate conforming chart in the conform-rate reference.
_RETIME_FAMILY = (Fraction(24000, 1001), Fraction(24), Fraction(25))


def named_rate(text: str | None) -> Fraction | None:
    if not text:
        return None
    t = text.strip()
    if t in _NAMED_RATES:
        return _NAMED_RATES[t]
    try:
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def conform_scale(conform_src_rate: Fraction | None, scale_enabled: bool, timeline_rate: Fraction) -> Fraction:
    """Local (media) seconds per parent second for a clip under ``conform-rate``."""
    if conform_src_rate is None or not scale_enabled or conform_src_rate == timeline_rate:
        return Fraction(1)
    if conform_src_rate in _RETIME_FAMILY and timeline_rate in _RETIME_FAMILY:
        return timeline_rate / conform_src_rate
    return Fraction(1)


@dataclass(frozen=True)
class Map:
    """Affine map between an element's local time and record time (seconds from the sequence's start).

    record = base_rec + (local - base_local) / k     (k: local seconds per record second)
    """

    base_local: Fraction
    base_rec: Fraction
    k: Fraction = Fraction(1)

    def rec(self, local: Fraction) -> Fraction:
        return self.base_rec + (local - self.base_local) / self.k

    def local(self, rec: Fraction) -> Fraction:
        return self.base_local + (rec - self.base_rec) * self.k

    def child(self, offset: Fraction, start: Fraction, k_item: Fraction = Fraction(1)) -> "Map":
        """The map of a child at ``offset`` (this local time) showing its local time from ``start``."""
        return Map(start, self.rec(offset), self.k * k_item)


@dataclass(frozen=True)
class TimeMap:
    """A ``timeMap``: local time -> media time, piecewise linear between its points."""

    points: tuple   # ((time, value), ...) sorted by time

    def __call__(self, t: Fraction) -> Fraction:
        pts = self.points
        if len(pts) == 1:
            return pts[0][1]
        for (t0, v0), (t1, v1) in zip(pts, pts[1:]):
            if t <= t1 or (t1, v1) == pts[-1]:
                if t1 == t0:
                    return v1
                return v0 + (t - t0) * (v1 - v0) / (t1 - t0)
        return pts[-1][1]

    def linear(self) -> bool:
        if len(self.points) <= 2:
            return True
        slopes = {(v1 - v0) / (t1 - t0) for (t0, v0), (t1, v1) in zip(self.points, self.points[1:]) if t1 != t0}
        return len(slopes) <= 1
