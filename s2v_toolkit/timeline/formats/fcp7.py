"""FCP 7 XML (``<xmeml>``: Premiere Pro, Resolve, Final Cut Pro 7): reader and writer.

Reading is the toolkit's own (fcp7_reader.py: nested sequences, Premiere multicam, gain filters,
enable flags, speed, exact frames); writing a whole timeline goes through otio-fcp-adapter plus
fcp7_flags.py; a conform inserts its additions into the original document (fcp7_writeback.py).
See docs/timeline.md.
"""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.formats import fcp7_flags, fcp7_writeback
from s2v_toolkit.timeline.formats.base import TimelineFormat
from s2v_toolkit.timeline.formats.fcp7_reader import read_xmeml
from s2v_toolkit.timeline.loaded import LoadedTimeline

ADAPTER = "fcp_xml"


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    timeline, notes = read_xmeml(Path(path))
    return LoadedTimeline(timeline=timeline, path=Path(path), adapter=ADAPTER, notes=notes)


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    text = otio.adapters.write_to_string(timeline, adapter_name=ADAPTER, **kwargs)
    Path(path).write_text(fcp7_flags.apply_on_write(text, timeline))


FORMAT = TimelineFormat(ADAPTER, ".xml", read, write, write_additions=fcp7_writeback.write_additions,
                        description="FCP 7 XML (Premiere Pro, Resolve, Final Cut Pro 7)")
