"""An .otio written by a newer OpenTimelineIO than the one installed (OTIO main, 2026: Marker.3 with an RGB
colour object): read after OTIO's own downgrade where one is defined, else refused in one line naming the
schemas. Before, the installed OTIO refused the whole file ("unsupported schema version: near line 155")."""

from __future__ import annotations

import json

import opentimelineio as otio
import pytest

from s2v_toolkit.timeline import TimelineError, describe_timeline, read_timeline


def _timeline_json() -> dict:
    rt = otio.opentime.RationalTime
    clip = otio.schema.Clip(name="A", source_range=otio.opentime.TimeRange(rt(0, 24), rt(48, 24)))
    clip.markers.append(otio.schema.Marker(name="look here", color="RED",
                                           marked_range=otio.opentime.TimeRange(rt(12, 24), rt(1, 24))))
    tl = otio.schema.Timeline(name="cut")
    track = otio.schema.Track()
    track.append(clip)
    tl.tracks.append(track)
    return json.loads(otio.adapters.write_to_string(tl, "otio_json"))


def _markers(node):
    if isinstance(node, dict):
        if str(node.get("OTIO_SCHEMA", "")).startswith("Marker."):
            yield node
        for v in node.values():
            yield from _markers(v)
    elif isinstance(node, list):
        for v in node:
            yield from _markers(v)


def test_a_marker_3_file_reads_with_its_colour_by_name(tmp_path):
    data = _timeline_json()
    for m in _markers(data):   # as OpenTimelineIO main writes it
        m["OTIO_SCHEMA"] = "Marker.3"
        m["color"] = {"OTIO_SCHEMA": "Color.1", "r": 1.0, "g": 0.0, "b": 0.0, "a": 1.0, "name": "red"}
    path = tmp_path / "newer.otio"
    path.write_text(json.dumps(data))
    loaded = read_timeline(path)
    desc = describe_timeline(loaded, check_media=False)
    (clip,) = desc.clips
    assert [(m.name, m.color) for m in clip.markers] == [("look here", "RED")]
    assert any("newer OpenTimelineIO: Marker.3" in n for n in loaded.notes)
    assert json.loads(path.read_text()) == data   # the editor's file is not touched


def test_a_schema_without_a_known_downgrade_is_one_line_naming_it(tmp_path):
    data = _timeline_json()
    data["tracks"]["children"][0]["children"][0]["OTIO_SCHEMA"] = "Clip.9"
    path = tmp_path / "future.otio"
    path.write_text(json.dumps(data))
    with pytest.raises(TimelineError) as err:
        read_timeline(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert "newer OpenTimelineIO" in msg and "Clip.9 (reads up to Clip.2)" in msg
