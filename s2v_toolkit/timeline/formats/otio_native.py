"""OTIO's own files: .otio (JSON), .otioz (zip bundle) and .otiod (folder bundle)."""

from __future__ import annotations

import os
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_file
from s2v_toolkit.timeline.loaded import LoadedTimeline


def _reader(adapter: str):
    def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
        notes: list[str] = []
        timeline = adapter_read_file(path, adapter, notes)
        if adapter == "otioz":
            notes.append("media of an .otioz is inside the bundle: unzip it and pass that folder as a search folder")
        return LoadedTimeline(timeline=timeline, path=path, adapter=adapter, notes=notes)
    return read


def _writer(adapter: str):
    def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
        otio.adapters.write_to_file(timeline, os.fspath(path), adapter_name=adapter, **kwargs)
    return write


OTIO_JSON = TimelineFormat("otio_json", ".otio", _reader("otio_json"), _writer("otio_json"),
                           description="OpenTimelineIO JSON")
OTIOZ = TimelineFormat("otioz", ".otioz", _reader("otioz"), _writer("otioz"), description="OTIO zip bundle")
OTIOD = TimelineFormat("otiod", ".otiod", _reader("otiod"), _writer("otiod"), description="OTIO folder bundle")
