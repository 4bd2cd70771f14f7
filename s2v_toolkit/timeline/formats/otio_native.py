"""OTIO's own files: .otio (JSON), .otioz (zip bundle) and .otiod (folder bundle)."""

from __future__ import annotations

import os
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_file
from s2v_toolkit.timeline.loaded import LoadedTimeline


def _downgrade_marker_3(d: dict) -> None:
    """OTIO's own Marker 3 -> 2 downgrade: the colour object becomes its name (upper case)."""
    color = d.get("color")
    if isinstance(color, dict):
        d["color"] = str(color.get("name") or "").upper() or "WHITE"


# Schemas newer OpenTimelineIO versions write that the one installed reads after OTIO's own downgrade
# (OpenTimelineIO main, 2026: Marker.3 holds an RGB colour object; the 0.18 releases read Marker.2)
DOWNGRADES = {("Marker", 3): (2, _downgrade_marker_3)}


def _newer_schemas(node, known: dict, found: dict) -> None:
    """Apply :data:`DOWNGRADES` in place; collect in ``found`` the schemas newer than ``known`` left."""
    if isinstance(node, dict):
        tag = node.get("OTIO_SCHEMA")
        if isinstance(tag, str) and "." in tag:
            name, _, version = tag.rpartition(".")
            if version.isdigit() and name in known and int(version) > known[name]:
                step = DOWNGRADES.get((name, int(version)))
                if step is not None and step[0] <= known[name]:
                    step[1](node)
                    node["OTIO_SCHEMA"] = f"{name}.{step[0]}"
                    found.setdefault("downgraded", set()).add(tag)
                else:
                    found.setdefault("newer", set()).add(tag)
        for v in node.values():
            _newer_schemas(v, known, found)
    elif isinstance(node, list):
        for v in node:
            _newer_schemas(v, known, found)


def _read_newer(path: Path, notes: list[str]) -> otio.schema.Timeline:
    """An .otio written by a newer OpenTimelineIO than the one installed: read it after the downgrades OTIO
    itself defines where there are such, else one line naming the schemas (the installed OTIO refuses the
    whole file with "unsupported schema version")."""
    import json

    from s2v_toolkit.timeline.errors import TimelineError
    from s2v_toolkit.timeline.formats.base import adapter_read_string

    data = json.loads(path.read_text(encoding="utf-8"))
    found: dict = {}
    known = otio.core.type_version_map()
    _newer_schemas(data, known, found)
    if found.get("newer"):
        names = ", ".join(f"{t} (reads up to {t.rpartition('.')[0]}.{known[t.rpartition('.')[0]]})"
                          for t in sorted(found["newer"]))
        raise TimelineError(path, f"written by a newer OpenTimelineIO than the {otio.__version__} installed: {names}; "
                                  "save it for this version from the newer OTIO (write_to_file with "
                                  "target_schema_versions) or install a newer opentimelineio")
    notes.append(f"written by a newer OpenTimelineIO: {', '.join(sorted(found.get('downgraded', ())))} read "
                 f"after OTIO's own downgrade to what OpenTimelineIO {otio.__version__} reads (marker colours by name)")
    return adapter_read_string(path, json.dumps(data), "otio_json", notes)


def _reader(adapter: str):
    def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
        notes: list[str] = []
        try:
            timeline = adapter_read_file(path, adapter, notes)
        except Exception as exc:
            if adapter != "otio_json" or not isinstance(exc.__cause__, otio.exceptions.UnsupportedSchemaError):
                raise
            timeline = _read_newer(path, notes)
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
