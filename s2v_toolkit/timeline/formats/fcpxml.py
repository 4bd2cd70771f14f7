"""FCPXML (Final Cut Pro X, Resolve): reader and writer.

Reading goes through otio-fcpx-xml-adapter with two corrections (see docs/timeline.md): NTSC rates
(the adapter truncates ``1001/24000s`` to 23 fps, so times are rescaled around it, fcpx_ntsc.py) and
the sequence's ``tcStart`` (the adapter turns it into a leading gap).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.formats import fcpx_ntsc
from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_string
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.timecode import RationalTime, TimeRange, rate_fraction

ADAPTER = "fcpx_xml"


def document_path(path: Path) -> Path:
    """The XML document of an ``.fcpxml`` file or an ``.fcpxmld`` bundle."""
    return path / "Info.fcpxml" if path.is_dir() else path


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    notes: list[str] = []
    text = document_path(path).read_text(errors="replace")
    ntsc = fcpx_ntsc.ntsc_scale(path, text)
    if ntsc:
        text = fcpx_ntsc.scale_times(text, ntsc)
    timeline = adapter_read_string(path, text, ADAPTER, notes)
    _fix_start(text, timeline, notes)
    if ntsc:
        fcpx_ntsc.relabel_rates(timeline, to_ntsc=True)
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes)


def _fcpx_seconds(text: str) -> Fraction:
    text = text.strip().rstrip("s")
    return Fraction(text) if text else Fraction(0)


def _fix_start(text: str, timeline: otio.schema.Timeline, notes: list[str]) -> None:
    """The FCPXML adapter ignores the sequence's tcStart and turns it into a leading gap."""
    m = re.search(r'<sequence\b[^>]*\btcStart="([^"]+)"', text)
    if not m or timeline.global_start_time is not None:
        return
    start_s = _fcpx_seconds(m.group(1))
    if not start_s:
        return
    tracks = [t for t in timeline.tracks if len(t)]
    rate = next((t[0].duration().rate for t in tracks), 24.0)
    start = RationalTime(float(start_s * rate_fraction(rate)), rate)
    if tracks and all(isinstance(t[0], otio.schema.Gap) and t[0].duration() >= start for t in tracks):
        for t in tracks:
            gap = t[0]
            if gap.duration() == start:
                t.remove(gap)
            else:
                gap.source_range = TimeRange(gap.source_range.start_time, gap.duration() - start)
        timeline.global_start_time = start
    else:
        notes.append(f"sequence starts at {m.group(1)}, but its clips do not; record times count from 0")


def _is_ntsc(timeline: otio.schema.Timeline) -> bool:
    if timeline.global_start_time is not None:
        return rate_fraction(timeline.global_start_time.rate).denominator == 1001
    for clip in timeline.find_clips():
        if clip.source_range is not None:
            return rate_fraction(clip.source_range.duration.rate).denominator == 1001
    return False


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    if _is_ntsc(timeline):
        # the FCPXML writer cannot write NTSC rates: write at the nominal rate, rescale times
        nominal = timeline.deepcopy()
        fcpx_ntsc.relabel_rates(nominal, to_ntsc=False)
        text = otio.adapters.write_to_string(nominal, adapter_name=ADAPTER, **kwargs)
        Path(path).write_text(fcpx_ntsc.scale_times(text, fcpx_ntsc.NTSC_FACTOR, divide=False))
    else:
        otio.adapters.write_to_file(timeline, str(path), adapter_name=ADAPTER, **kwargs)


FORMAT = TimelineFormat(ADAPTER, ".fcpxml", read, write, write_additions=None,
                        description="FCPXML (Final Cut Pro X, Resolve)")
