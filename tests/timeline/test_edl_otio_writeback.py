"""Write-back for EDL (a separate render-only EDL at the right record timecodes, said in not_carried)
and for OTIO (the original document plus exactly the additions)."""

from __future__ import annotations

import json
import re

import opentimelineio as otio

from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline

EDL = """TITLE: REEL 1
FCM: NON-DROP FRAME

001  A001     V     C        10:00:00:00 10:00:02:00 01:00:00:00 01:00:02:00
* FROM CLIP NAME: shot1
002  A002     V     C        11:00:05:10 11:00:07:03 01:00:02:00 01:00:03:18
* FROM CLIP NAME: shot2
003  A003     V     C        12:00:00:00 12:00:01:00 01:00:04:00 01:00:05:00
* FROM CLIP NAME: shot3
"""
TC = r"\d\d:\d\d:\d\d:\d\d"


def test_edl_render_list_sits_at_the_replaced_clips_record_timecodes(tmp_path):
    src = tmp_path / "reel.edl"
    src.write_text(EDL)
    loaded = read_timeline(src, rate=25)
    desc = describe_timeline(loaded, check_media=False)
    shot2 = next(c for c in desc.clips if c.name == "shot2")
    shot3 = next(c for c in desc.clips if c.name == "shot3")
    result = conform(loaded, [RenderResult(str(tmp_path / "a.mov"), clip_id=shot2.id),
                              RenderResult(str(tmp_path / "b.mov"), clip_id=shot3.id)], tmp_path / "out", rate=25)
    assert src.read_text() == EDL
    out = (tmp_path / "out" / "reel.s2v_v001.edl").read_text()
    events = re.findall(rf"^\d+\s+\S+\s+V\s+C\s+({TC})\s+({TC})\s+({TC})\s+({TC})", out, re.M)
    # record in/out as the original list has them for shot2 and shot3 (01:00:02:00 and 01:00:04:00)
    assert [(e[2], e[3]) for e in events] == [("01:00:02:00", "01:00:03:18"), ("01:00:04:00", "01:00:05:00")]
    assert any("an EDL holds one video track" in n for n in result.not_carried)
    # each render named as Avid and Resolve relink by (an EDL holds no paths they read)
    assert re.findall(r"^\* SOURCE FILE: (.+)$", out, re.M) == ["a.mov", "b.mov"]
    # and this toolkit finds the renders by those names where the paths no longer hold (another machine)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("a.mov", "b.mov"):
        (moved / name).write_bytes(b"")
    text = re.sub(r"^\* FROM CLIP: .*\n", "", out, flags=re.M)  # only the names left
    (tmp_path / "renders.edl").write_text(text)
    back = describe_timeline(read_timeline(tmp_path / "renders.edl", rate=25), search_dirs=[moved],
                             check_media=False)
    assert [c.media.path for c in back.clips] == [str(moved / "a.mov"), str(moved / "b.mov")]


def test_otio_write_back_is_the_original_plus_the_additions(tmp_path):
    tl = otio.schema.Timeline(name="cut", global_start_time=otio.opentime.RationalTime(86400, 24))
    tl.metadata["studio"] = {"show": "X", "notes": [1, 2.5, "three"]}
    v = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for i, n in enumerate((48, 30)):
        c = otio.schema.Clip(name=f"s{i}", media_reference=otio.schema.ExternalReference(
            target_url=f"/m/s{i}.mov", available_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(1000, 24))),
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(100 + i, 24),
                                                 otio.opentime.RationalTime(n, 24)))
        c.metadata["vendor"] = {"take": i}
        c.markers.append(otio.schema.Marker(name=f"note{i}", marked_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(101 + i, 24), otio.opentime.RationalTime(0, 24))))
        v.append(c)
    tl.tracks.append(v)
    src = tmp_path / "cut.otio"
    otio.adapters.write_to_file(tl, str(src))
    before = json.loads(src.read_text())
    result = conform(src, [RenderResult(str(tmp_path / "r.mov"), clip_id="V1.2", job_id="j")], tmp_path / "out")
    after = json.loads((tmp_path / "out" / "cut.s2v_v001.otio").read_text())
    added = [t for t in after["tracks"]["children"] if t["name"] in result.track_names]
    assert len(added) == 1 and added[0]["children"][-1]["metadata"]["s2v_toolkit"]["job_id"] == "j"
    after["tracks"]["children"] = [t for t in after["tracks"]["children"] if t["name"] not in result.track_names]
    marked = after["tracks"]["children"][0]["children"][1]
    new_markers = [m for m in marked["markers"] if m["name"].startswith("S2V v")]
    assert len(new_markers) == 1
    marked["markers"] = [m for m in marked["markers"] if not m["name"].startswith("S2V v")]
    assert after == before


def test_edl_drop_frame_record_timecodes_across_a_minute(tmp_path):
    src = tmp_path / "df.edl"
    src.write_text("TITLE: DF\nFCM: DROP FRAME\n\n"
                   "001  A001     V     C        01:00:00;00 01:00:00;04 01:00:59;28 01:01:00;04\n"
                   "002  A002     V     C        02:00:00;00 02:00:00;10 01:01:00;04 01:01:00;14\n")
    desc = describe_timeline(read_timeline(src, rate="29.97"), check_media=False)
    doc = desc.to_dict()
    assert desc.drop_frame
    assert [(c["record"]["tc_in"], c["record"]["tc_out"]) for c in doc["clips"]] == [
        ("01:00:59;28", "01:01:00;04"), ("01:01:00;04", "01:01:00;14")]
    assert [c["record"]["duration"]["value"] for c in doc["clips"]] == [4, 10]   # ;00 and ;01 do not exist


def test_edl_tracks_that_start_later_keep_their_record_position(tmp_path):
    src = tmp_path / "reel.edl"
    src.write_text("TITLE: R\nFCM: NON-DROP FRAME\n\n"
                   "001  DX1      A     C        00:00:00:00 00:00:10:00 01:00:00:00 01:00:10:00\n"
                   "002  FX1      A2    C        00:00:00:00 00:00:02:00 01:00:05:00 01:00:07:00\n")
    doc = describe_timeline(read_timeline(src, rate=25), check_media=False).to_dict()
    got = sorted((c["track"], c["record"]["tc_in"], c["record"]["tc_out"]) for c in doc["clips"])
    assert got == [("A1", "01:00:00:00", "01:00:10:00"), ("A2", "01:00:05:00", "01:00:07:00")]
