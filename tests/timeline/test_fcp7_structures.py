"""FCP 7 XML structures, each in a small document written here: nested sequence, Premiere multicam
(a nested sequence holding the active angle), gain filters, disabled clips/muted tracks, -1 starts at
transitions, speed, exact record timecodes at 25 fps and NTSC drop-frame, surgical write-back."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline, shot_map
from s2v_toolkit.timeline.timecode import RationalTime, frames_timecode, timecode

from timeline_testkit import fcp7_file, fcp7_rate

_rate = fcp7_rate


def _file(fid, name="a.mov", tc=90000, **kw):
    """A <file> whose timecode starts at 01:00:00:00 (25 fps) unless told otherwise."""
    return fcp7_file(fid, name, tc, **kw)


def _clip(cid, start, end, in_, out, inner, extra="", name=None, tb=25, ntsc=False):
    return (f'<clipitem id="{cid}"><name>{name or cid}</name><enabled>TRUE</enabled>{_rate(tb, ntsc)}'
            f"<start>{start}</start><end>{end}</end><in>{in_}</in><out>{out}</out>{inner}{extra}</clipitem>")


def _doc(video_tracks, audio_tracks=(), tb=25, ntsc=False, tc_frame=0, df="NDF"):
    v = "".join(f"<track>{t}</track>" for t in video_tracks)
    a = "".join(t if t.startswith("<track") else f"<track>{t}</track>" for t in audio_tracks)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n<xmeml version="4"><sequence id="seq-1">'
            f"<name>cut</name>{_rate(tb, ntsc)}<timecode>{_rate(tb, ntsc)}<frame>{tc_frame}</frame>"
            f"<displayformat>{df}</displayformat></timecode>"
            f"<media><video>{v}</video><audio>{a}</audio></media></sequence></xmeml>\n")


def _read(tmp_path, text, name="cut.xml"):
    p = tmp_path / name
    p.write_text(text)
    return p, describe_timeline(read_timeline(p), check_media=False)


def _frames(span, rate=25):
    tr = span.to_otio()
    return round(tr.start_time.rescaled_to(rate).value), round(tr.end_time_exclusive().rescaled_to(rate).value)


def test_nested_sequence_is_flattened_with_its_offsets(tmp_path):
    # the nested sequence holds two clips; the nesting clip shows its frames 40..140 at record 100..200
    nested = ('<sequence id="seq-n"><name>nest</name>' + _rate() + "<media><video><track>"
              + _clip("n1", 0, 80, 10, 90, _file("f1", "a.mov", tc=1000))
              + _clip("n2", 80, 300, 0, 220, _file("f2", "b.mov", tc=5000)) + "</track></video></media></sequence>")
    text = _doc([_clip("c0", 0, 100, 0, 100, _file("f0", "z.mov", tc=0))
                 + _clip("nest", 100, 200, 40, 140, nested)])
    _, desc = _read(tmp_path, text)
    got = sorted((c.name, _frames(c.record), round(c.source.to_otio().start_time.value)) for c in desc.clips)
    # n1 seen from its frame 40 (source 1000 + 10 + 40) for 40 frames, then n2 from its start
    assert got == [("c0", (0, 100), 0), ("n1", (100, 140), 1050), ("n2", (140, 200), 5000)]
    assert {c.nested_in for c in desc.clips if c.name != "c0"} != {None}
    segs = shot_map(desc)
    assert [(s.clip_name, _frames(s.record)) for s in segs] == [("c0", (0, 100)), ("n1", (100, 140)), ("n2", (140, 200))]


def test_premiere_multicam_plays_the_active_angle_for_picture_and_sound(tmp_path):
    # Premiere exports a multicam clip as a nested sequence whose tracks hold the active angle;
    # referenced again later by id only
    angle = ('<sequence id="mc-1"><name>Multi</name>' + _rate()
             + "<media><video><track>" + _clip("vA", 0, 1000, 0, 1000, _file("fA", "camA.mov", tc=200)) + "</track></video>"
             + "<audio><track>" + _clip("aA", 0, 1000, 0, 1000, '<file id="fA"/>') + "</track></audio></media></sequence>")
    text = _doc([_clip("m1", 0, 50, 100, 150, angle) + _clip("m2", 50, 80, 300, 330, '<sequence id="mc-1"/>')],
                [_clip("am1", 0, 80, 100, 180, '<sequence id="mc-1"/>')])
    _, desc = _read(tmp_path, text)
    video = sorted((_frames(c.record), round(c.source.to_otio().start_time.value)) for c in desc.clips if c.kind == "video")
    audio = [(_frames(c.record), round(c.source.to_otio().start_time.value)) for c in desc.clips if c.kind == "audio"]
    assert video == [((0, 50), 300), ((50, 80), 500)]
    assert audio == [((0, 80), 300)]
    assert not any("unknown" in p for p in desc.problems)


def test_gain_filters_and_levels_in_db_and_linear(tmp_path):
    gain = ('<filter><effect><name>Gain</name><effectid>{61756678, 4761696e, 4b657947}</effectid>'
            "<parameter><parameterid>Gain(dB)</parameterid><value>-12</value></parameter></effect></filter>")
    level = ("<filter><effect><name>Audio Levels</name><effectid>audiolevels</effectid>"
             "<parameter><parameterid>level</parameterid><value>{}</value></parameter></effect></filter>")
    text = _doc([], [_clip("g", 0, 25, 0, 25, _file("f", "a.wav"), gain)
                     + _clip("l", 25, 50, 0, 25, '<file id="f"/>', level.format("0.5"))
                     + _clip("s", 50, 75, 0, 25, '<file id="f"/>', level.format("0") + gain)])
    db_level = ("<filter><effect><name>Audio Levels</name><effectid>audiolevels</effectid>"
                "<parameter><parameterid>level</parameterid><name>Level</name><valuemin>-96</valuemin>"
                "<valuemax>12</valuemax><value>{}</value></parameter></effect></filter>")
    keyed = ("<filter><effect><name>Audio Levels</name><effectid>audiolevels</effectid>"
             "<parameter><parameterid>level</parameterid><valuemin>0</valuemin><valuemax>3.98109</valuemax>"
             "<keyframe><when>0</when><value>0.25</value></keyframe>"
             "<keyframe><when>10</when><value>1</value></keyframe></parameter></effect></filter>")
    text = text.replace("</track></audio>", _clip("d", 75, 100, 0, 25, '<file id="f"/>', db_level.format("-9"))
                        + _clip("q", 100, 125, 0, 25, '<file id="f"/>', db_level.format("-96"))
                        + _clip("k", 125, 150, 0, 25, '<file id="f"/>', keyed) + "</track></audio>")
    _, desc = _read(tmp_path, text)
    by = {c.name: c for c in desc.clips}
    assert by["d"].gain_db == pytest.approx(-9.0)          # a level written in dB
    assert by["q"].gain_db <= -99                          # at the floor: silent
    assert by["k"].gain_db == pytest.approx(0.0, abs=1e-9)  # keyframed: loudest, envelope kept
    assert by["k"].s2v["gain_keyframes_db"] == [[0, pytest.approx(-12.0412, abs=1e-3)], [10, 0.0]]
    assert by["g"].gain_db == pytest.approx(-12.0)
    assert by["l"].gain_db == pytest.approx(-6.0206, abs=1e-3)
    assert by["s"].gain_db <= -99   # silent


def test_disabled_clip_and_muted_track(tmp_path):
    text = _doc([_clip("v", 0, 25, 0, 25, _file("f", "a.mov")).replace("<enabled>TRUE", "<enabled>FALSE", 1)],
                ['<track MZ.TrackName="Synk 1">' + _clip("a", 0, 25, 0, 25, '<file id="f"/>')
                 + "<enabled>FALSE</enabled></track>"])
    _, desc = _read(tmp_path, text)
    v, a = desc.clips
    assert not v.enabled and not v.active
    assert desc.tracks[1].name == "Synk 1" and not desc.tracks[1].enabled and not a.active
    assert shot_map(desc) == []


def test_minus_one_start_end_resolve_at_the_transition_cut(tmp_path):
    tr = ('<transitionitem><start>95</start><end>105</end><alignment>center</alignment>'
          "<effect><name>Cross Dissolve</name></effect></transitionitem>")
    # Premiere's in/out span the transition: A 0..105 (in 0..105), B 95..200 (in 500..605)
    text = _doc([_clip("A", 0, -1, 0, 105, _file("f", "a.mov", tc=0)) + tr
                 + _clip("B", -1, 200, 500, 605, '<file id="f"/>')])
    _, desc = _read(tmp_path, text)
    a, b = desc.clips
    assert _frames(a.record) == (0, 100) and _frames(b.record) == (100, 200)
    assert round(b.source.to_otio().start_time.value) == 505   # in + (cut - transition start)
    assert len(desc.transitions) == 1


def test_time_remap_speed_gives_the_source_range_seen(tmp_path):
    remap = ("<filter><effect><name>Time Remap</name><effectid>timeremap</effectid>"
             "<parameter><parameterid>speed</parameterid><value>50</value></parameter></effect></filter>")
    # in/out count retimed frames: in 200 at 50% is media frame 100; 50 record frames use 25 media frames
    _, desc = _read(tmp_path, _doc([_clip("slow", 0, 50, 200, 250, _file("f", "a.mov", tc=0), remap)]))
    c = desc.clips[0]
    assert c.speed == 0.5
    assert c.source.to_otio().start_time.value == 100
    assert c.media_range.to_otio().duration.value == 25


@pytest.mark.parametrize("frame", [1, 7, 24, 25, 26, 77, 139, 999, 1499, 90000 + 13, 2159999])
def test_25fps_record_timecodes_are_exact(tmp_path, frame):
    _, desc = _read(tmp_path, _doc([_clip("c", frame, frame + 3, 0, 3, _file("f", tc=0))], tc_frame=90000))
    rec = desc.to_dict()["clips"][0]["record"]
    assert rec["tc_in"] == frames_timecode(90000 + frame, 25.0)
    assert rec["tc_out"] == frames_timecode(90000 + frame + 3, 25.0)


def test_timecode_rounds_to_the_nearest_frame_not_down():
    # 0.28 s at 25 fps is frame 7 (a float product of 6.99999...)
    assert timecode(RationalTime(0.28, 1), 25) == "00:00:00:07"
    for f in (1, 7, 139, 1499, 17982, 17983):
        t = RationalTime(f / 25, 1)
        assert timecode(t, 25) == frames_timecode(f, 25)


@pytest.mark.parametrize(("frames", "tc"), [(0, "00:00:00;00"), (1799, "00:00:59;29"), (1800, "00:01:00;02"),
                                            (17982, "00:10:00;00"), (107892, "01:00:00;00")])
def test_ntsc_drop_frame_record_timecodes(tmp_path, frames, tc):
    _, desc = _read(tmp_path, _doc([_clip("c", frames, frames + 2, 0, 2, _file("f", tc=0, tb=30, ntsc=True),
                                          tb=30, ntsc=True)], tb=30, ntsc=True, df="DF"))
    assert desc.drop_frame
    clip = desc.to_dict()["clips"][0]
    assert clip["record"]["tc_in"] == tc
    assert clip["source"]["tc_in"] == "00:00:00:00"    # the media's timecode is NDF: shown NDF


def test_write_back_inserts_only_the_additions(tmp_path):
    text = _doc([_clip("c0", 0, 100, 10, 110, _file("f0", "z.mov", tc=0))
                 + _clip("c1", 100, 150, 0, 50, '<file id="f0"/>')],
                [_clip("a0", 0, 150, 0, 150, '<file id="f0"/>')])
    src, desc = _read(tmp_path, text)
    result = conform(src, [RenderResult(str(tmp_path / "r.mov"), clip_id="V1.2", job_id="j1", character="A")],
                     tmp_path / "out")
    out = (tmp_path / "out" / "cut.s2v_v001.xml").read_text()
    assert src.read_text() == text
    # removing exactly the new track and the marker gives the original back, byte for byte
    stripped = re.sub(r'<track MZ\.TrackName="S2V v001">.*?</track>', "", out, flags=re.S, count=1)
    stripped = re.sub(r"\s*<marker>\s*<name>S2V v001</name>.*?</marker>\s*", "", stripped, flags=re.S, count=1)
    assert stripped.replace("\n", "") == text.replace("\n", "")
    assert ET.canonicalize(stripped, strip_text=True) == ET.canonicalize(text, strip_text=True)
    back = describe_timeline(read_timeline(tmp_path / "out" / "cut.s2v_v001.xml"), check_media=False)
    render = next(c for c in back.clips if c.track == "V2")
    assert _frames(render.record) == (100, 150) and render.s2v["job_id"] == "j1"
    c1 = next(c for c in back.clips if c.name == "c1")
    assert [(m.name, _frames(m.record)) for m in c1.markers] == [("S2V v001", (100, 150))]
    assert result.not_carried == []


def _multiclip(active_tag=""):
    def angle(n, tc):
        return (f"<angle><clip id=\"ang{n}\"><name>cam{n}</name>{_rate()}<media><video><track>"
                + _clip(f"ac{n}", 0, 1000, 0, 1000, _file(f"fa{n}", f"cam{n}.mov", tc=tc)) + "</track></video>"
                + "<audio><track>" + _clip(f"aa{n}", 0, 1000, 0, 1000, f'<file id="fa{n}"/>')
                + "</track></audio></media></clip></angle>")
    return f'<multiclip id="mc">{active_tag}<name>MC</name>{angle(1, 100)}{angle(2, 700)}</multiclip>'


def test_fcp7_multiclip_plays_its_active_angle(tmp_path):
    text = _doc([_clip("m", 0, 40, 10, 50, _multiclip("<activevideoangle>2</activevideoangle>"
                                                      "<activeaudioangle>1</activeaudioangle>"))],
                [_clip("am", 0, 40, 10, 50, '<multiclip id="mc"/>')])
    _, desc = _read(tmp_path, text)
    v = next(c for c in desc.clips if c.kind == "video")
    a = next(c for c in desc.clips if c.kind == "audio")
    assert (v.name, _frames(v.record), round(v.source.to_otio().start_time.value)) == ("ac2", (0, 40), 710)
    assert (a.name, round(a.source.to_otio().start_time.value)) == ("aa1", 110)


def test_multiclip_without_active_angle_is_unknown_picture_never_a_gap(tmp_path):
    _, desc = _read(tmp_path, _doc([_clip("m", 0, 40, 10, 50, _multiclip())]))
    (c,) = desc.clips
    assert c.s2v["unknown_picture"] and any("unknown picture" in p and "record 00:00:00:00-00:00:01:15" in p
                                            for p in desc.problems)
    (seg,) = shot_map(desc)
    assert seg.kind == "unknown" and seg.reason


def test_conform_diff_lists_exactly_the_additions(tmp_path, capsys):
    import json

    from s2v_toolkit.cli import main

    text = _doc([_clip("c0", 0, 100, 10, 110, _file("f0", "z.mov", tc=0))])
    src = tmp_path / "cut.xml"
    src.write_text(text)
    renders = tmp_path / "r.json"
    renders.write_text(json.dumps([{"media_path": str(tmp_path / "r.mov"), "clip_id": "V1.1"}]))
    assert main(["conform-timeline", str(src), str(renders), "-o", str(tmp_path / "out"), "--diff", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)       # stdout is only the JSON
    for adapter in ("otio_json", "fcp_xml"):
        lines = doc["diff"][adapter]
        assert len(lines) == 3 and all(line.startswith("+ ") for line in lines)
        assert lines[0] == "+ track video 'S2V v001'"
        assert "record 00:00:00:00-00:00:04:00" in lines[1] and lines[2].startswith("+ marker 'S2V v001' on 'c0'")


def test_inspect_json_stdout_is_only_json_even_when_a_reader_prints(tmp_path, capsys, monkeypatch):
    import dataclasses
    import json

    from s2v_toolkit.cli import main
    from s2v_toolkit.timeline import formats

    fmt = formats.FORMATS["fcp_xml"]

    def noisy(path, *, rate=None):
        print("adapter chatter on stdout")   # what the AAF adapter does
        return fmt.read(path, rate=rate)

    monkeypatch.setitem(formats.FORMATS, "fcp_xml", dataclasses.replace(fmt, read=noisy))
    src = tmp_path / "cut.xml"
    src.write_text(_doc([_clip("c0", 0, 100, 10, 110, _file("f0", "z.mov", tc=0))]))
    for cmd in (["inspect", "--json", "--no-probe"], ["shots", "--json"]):
        assert main([*cmd[:1], str(src), *cmd[1:]]) == 0
        out = capsys.readouterr()
        json.loads(out.out)
        assert "adapter chatter" in out.err


def test_clip_item_without_media_is_named_with_its_record_range(tmp_path):
    text = _doc([_clip("c0", 0, 50, 0, 50, _file("f0", "z.mov", tc=0)) + _clip("ghost", 50, 75, 0, 25, "")],
                tc_frame=90000)
    p, desc = _read(tmp_path, text)
    loaded = read_timeline(p)
    assert any("'ghost' at record 01:00:02:00-01:00:03:00" in n for n in loaded.notes)
    assert any("'ghost'" in pr and "unknown picture" in pr and "01:00:02:00-01:00:03:00" in pr for pr in desc.problems)
    assert [s.kind for s in shot_map(desc)] == ["clip", "unknown"]


def test_fade_from_black_after_a_gap(tmp_path):
    fade = ('<transitionitem><start>50</start><end>60</end><alignment>start-black</alignment>'
            "<effect><name>Cross Dissolve</name></effect></transitionitem>")
    _, desc = _read(tmp_path, _doc([fade + _clip("B", -1, 100, 0, 50, _file("f", "b.mov", tc=0))]))
    (b,) = desc.clips
    assert _frames(b.record) == (50, 100) and b.source.to_otio().start_time.value == 0
    (t,) = desc.transitions
    assert _frames(t.record) == (50, 60)
