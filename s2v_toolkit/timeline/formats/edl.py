"""CMX 3600 EDL: reader and writer.

An EDL does not state its frame rate (23.976 vs 24 and 29.97 vs 30 cannot be told apart): the caller
gives it, or it is guessed from the timecodes with a note. otio-cmx3600-adapter starts the cut at 0 and
keeps event 1's record timecode as a negative track trim; the toolkit makes it the timeline's start.
"""

from __future__ import annotations

import re
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_file
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.timecode import RationalTime, rate_fraction

ADAPTER = "cmx_3600"


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    notes: list[str] = []
    if rate is None:
        rate, note = guess_edl_rate(path)
        notes.append(note)
    timeline = adapter_read_file(path, ADAPTER, notes, rate=float(rate))
    _normalize_start(timeline)
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes)


_EDL_EVENT = re.compile(
    r"^(\s*\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+\S+\s+\S+\s+)(\d\d:\d\d:\d\d[:;]\d\d)(\s+)"
    r"(\d\d:\d\d:\d\d[:;]\d\d)(.*)$")


def _normalize_start(timeline: otio.schema.Timeline) -> None:
    """The EDL reader keeps event 1's record timecode as a negative track trim; make it the
    timeline's start timecode (what OTIO means by it), so record times count from the cut's start."""
    offsets = {}
    for t in timeline.tracks:
        sr = t.source_range
        if sr is not None and sr.start_time.value < 0:
            offsets[id(t)] = -sr.start_time
    if not offsets or len({o.value for o in offsets.values()}) != 1 or timeline.global_start_time is not None:
        return
    for t in timeline.tracks:
        if id(t) in offsets:
            t.source_range = None
    timeline.global_start_time = next(iter(offsets.values()))


def shift_edl_record(text: str, offset: RationalTime, rate: float) -> str:
    """Add ``offset`` to the record in/out timecodes of every event (the EDL writer starts at 0)."""
    out = []
    for line in text.splitlines():
        m = _EDL_EVENT.match(line)
        if m:
            drop = ";" in m.group(2)
            rec_in = otio.opentime.from_timecode(m.group(2), rate) + offset.rescaled_to(rate)
            rec_out = otio.opentime.from_timecode(m.group(4), rate) + offset.rescaled_to(rate)
            line = (m.group(1) + otio.opentime.to_timecode(rec_in, rate, drop) + m.group(3)
                    + otio.opentime.to_timecode(rec_out, rate, drop) + m.group(5))
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def guess_edl_rate(p: Path) -> tuple[float, str]:
    """Best guess of an EDL's frame rate from its FCM line and the largest frame number used."""
    text = p.read_text(errors="replace")
    drop = bool(re.search(r"^\s*FCM:\s*DROP", text, re.M | re.I))
    frames = [int(m) for m in re.findall(r"\d\d[:;]\d\d[:;]\d\d[:;.](\d\d)", text)]
    top = max(frames, default=0)
    if drop or top >= 25:
        rate = 30000 / 1001
    elif top == 24:
        rate = 25.0
    else:
        rate = 24.0
    return rate, f"EDL rate not given; assumed {float(rate_fraction(rate)):.3f} fps (pass the rate to be exact)"


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    # The EDL writer counts record timecode from 0: put the cut back at its real record start.
    text = otio.adapters.write_to_string(timeline, adapter_name=ADAPTER, **kwargs)
    start = timeline.global_start_time
    if start is not None and start.value:
        rate = kwargs.get("rate") or timeline.tracks[0].duration().rate
        text = shift_edl_record(text, start, rate)
    Path(path).write_text(text)


FORMAT = TimelineFormat(ADAPTER, ".edl", read, write, write_additions=None, description="CMX 3600 EDL")
