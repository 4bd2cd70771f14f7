"""FCP 7 XML (``<xmeml>``: Premiere Pro, Resolve, Final Cut Pro 7): reader and writer.

Reading goes through otio-fcp-adapter, then fcp7_flags.py reads what the adapter drops (clip and track
``<enabled>``, Premiere's track names, ``<sourcetrack>`` channels); see docs/timeline.md.
"""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.formats import fcp7_flags
from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_file
from s2v_toolkit.timeline.loaded import LoadedTimeline

ADAPTER = "fcp_xml"


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    notes: list[str] = []
    timeline = adapter_read_file(path, ADAPTER, notes)
    channels = fcp7_flags.apply_on_read(path.read_text(errors="replace"), timeline)
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes, source_channels=channels)


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    text = otio.adapters.write_to_string(timeline, adapter_name=ADAPTER, **kwargs)
    Path(path).write_text(fcp7_flags.apply_on_write(text, timeline))


FORMAT = TimelineFormat(ADAPTER, ".xml", read, write, write_additions=None,
                        description="FCP 7 XML (Premiere Pro, Resolve, Final Cut Pro 7)")
