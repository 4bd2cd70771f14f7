"""Writing a whole timeline as FCPXML at NTSC rates (23.976, 29.97, 59.94) through otio-fcpx-xml-adapter 1.0.

Reading no longer goes through the adapter (fcpxml_read.py reads FCPXML itself). The adapter's writer
cannot write NTSC rates at all; FCPXML times are rational seconds, so the cut is carried exactly by a
change of time unit: every RationalTime's rate is relabelled (24000/1001 -> 24) keeping its value, the
adapter writes at the nominal rate, and every time in its XML is multiplied by 1001/1000.
"""

from __future__ import annotations

import re
from fractions import Fraction

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.timecode import RationalTime, TimeRange, rate_fraction

NTSC_FACTOR = Fraction(1001, 1000)
_TIME_ATTRS = ("offset", "duration", "start", "tcStart", "frameDuration", "audioStart", "audioDuration")
_TIME_RE = re.compile(r'\b(' + "|".join(_TIME_ATTRS) + r')="([0-9/.\-]+)s"')


def _seconds(text: str) -> Fraction:
    return Fraction(text)


def _format(value: Fraction) -> str:
    if value.denominator == 1:
        return f"{value.numerator}s"
    return f"{value.numerator}/{value.denominator}s"


def ntsc_scale(path, text: str) -> Fraction | None:
    """``NTSC_FACTOR`` if the FCPXML uses NTSC frame durations, ``None`` if only integer rates.

    Raises for rates the adapter cannot carry either way (e.g. 2997/100 fps, or NTSC mixed with
    integer rates in one file)."""
    kinds = set()
    for fd in set(re.findall(r'frameDuration="([^"]+)"', text)):
        try:
            per_frame = _seconds(fd.strip().rstrip("s"))
        except (ValueError, ZeroDivisionError):
            raise TimelineError(path, f"FCPXML format has an unreadable frameDuration '{fd}'") from None
        fps = 1 / per_frame
        if fps.denominator == 1:
            kinds.add("integer")
        elif (fps * NTSC_FACTOR).denominator == 1:
            kinds.add("ntsc")
        else:
            raise TimelineError(path, f"FCPXML frame rate {float(fps):.4f} fps cannot be read frame-exactly "
                                      "by the FCPXML adapter; export FCP 7 XML, AAF or OTIO instead")
    if kinds == {"integer", "ntsc"}:
        raise TimelineError(path, "FCPXML mixes NTSC (23.976/29.97) and integer frame rates; the FCPXML "
                                  "adapter cannot read that frame-exactly; export FCP 7 XML, AAF or OTIO")
    return NTSC_FACTOR if kinds == {"ntsc"} else None


def scale_times(text: str, factor: Fraction, divide: bool = True) -> str:
    """Every FCPXML time attribute divided (or multiplied) by ``factor``."""
    def fix(m: re.Match) -> str:
        value = _seconds(m.group(2))
        value = value / factor if divide else value * factor
        return f'{m.group(1)}="{_format(value)}"'
    return _TIME_RE.sub(fix, text)


# nominal video rate <-> its NTSC rate (audio sample rates are never relabelled)
_NTSC_OF = {Fraction(n): Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120)}
_NOMINAL_OF = {v: k for k, v in _NTSC_OF.items()}


def _relabel(rt: RationalTime, to_ntsc: bool) -> RationalTime:
    table = _NTSC_OF if to_ntsc else _NOMINAL_OF
    new = table.get(rate_fraction(rt.rate))
    return RationalTime(rt.value, float(new)) if new is not None else rt


def _relabel_range(tr: TimeRange | None, to_ntsc: bool) -> TimeRange | None:
    if tr is None:
        return None
    return TimeRange(_relabel(tr.start_time, to_ntsc), _relabel(tr.duration, to_ntsc))


def relabel_rates(timeline: otio.schema.Timeline, to_ntsc: bool) -> None:
    """Change every time's rate 24 <-> 24000/1001 (30, 60 likewise) keeping its value (frame count)."""
    if timeline.global_start_time is not None:
        timeline.global_start_time = _relabel(timeline.global_start_time, to_ntsc)

    def markers(obj) -> None:
        for m in obj.markers:
            m.marked_range = _relabel_range(m.marked_range, to_ntsc)

    markers(timeline.tracks)
    timeline.tracks.source_range = _relabel_range(timeline.tracks.source_range, to_ntsc)
    for item in timeline.tracks.find_children(shallow_search=False):
        if isinstance(item, otio.schema.Transition):
            item.in_offset = _relabel(item.in_offset, to_ntsc)
            item.out_offset = _relabel(item.out_offset, to_ntsc)
            continue
        if hasattr(item, "source_range"):
            item.source_range = _relabel_range(item.source_range, to_ntsc)
        if hasattr(item, "markers"):
            markers(item)
        if isinstance(item, otio.schema.Clip):
            refs = item.media_references()
            for ref in refs.values():
                if ref is not None and ref.available_range is not None:
                    ref.available_range = _relabel_range(ref.available_range, to_ntsc)
