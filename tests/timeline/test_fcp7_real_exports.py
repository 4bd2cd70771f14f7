"""FCP 7 XML structures seen in real Premiere / FCP 7 exports, each in a small document written here:
Time Remap at 0 % (freeze frame) and at a non-round decimal speed, a retimed clip inside a nested
sequence, a retimed nested sequence, a Time Remap inside a nested sequence defined inline, items that
overlap on one track, markers on generators and on mixed-rate stills, an empty sequence, a bin with
no sequence, files that are no xmeml, a long prolog and UTF-16; write-back keeping CRLF byte for
byte, a sequence without <video>, renders sharing a name."""

from __future__ import annotations

import re

import pytest

from s2v_toolkit.errors import S2VError
from s2v_toolkit.timeline import RenderResult, Span, Time, conform, describe_timeline, read_timeline
from s2v_toolkit.timeline.io import detect_adapter

from timeline_testkit import fcp7_file, fcp7_rate

_rate, _file = fcp7_rate, fcp7_file


def _clip(cid, start, end, in_, out, inner, extra="", tag="clipitem"):
    return (f'<{tag} id="{cid}"><name>{cid}</name><enabled>TRUE</enabled>{_rate()}'
            f"<start>{start}</start><end>{end}</end><in>{in_}</in><out>{out}</out>{inner}{extra}</{tag}>")


def _remap(speed):
    return ("<filter><effect><name>Time Remap</name><effectid>timeremap</effectid>"
            "<parameter><parameterid>variablespeed</parameterid><value>0</value></parameter>"
            f"<parameter><parameterid>speed</parameterid><value>{speed}</value></parameter></effect></filter>")


def _doc(video, audio=(), media=None):
    v = "".join(f"<track>{t}</track>" for t in video)
    a = "".join(f"<track>{t}</track>" for t in audio)
    body = media if media is not None else f"<media><video>{v}</video><audio>{a}</audio></media>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n<xmeml version="4"><sequence id="s">'
            f"<name>cut</name>{_rate()}<timecode>{_rate()}<frame>0</frame><displayformat>NDF</displayformat>"
            f"</timecode>{body}</sequence></xmeml>\n")


def _read(tmp_path, text, name="cut.xml"):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p, describe_timeline(read_timeline(p), check_media=False)


def _rec(c):
    tr = c.record.to_otio()
    return round(tr.start_time.rescaled_to(25).value), round(tr.end_time_exclusive().rescaled_to(25).value)


def _src(c):
    return float(c.source.to_otio().start_time.value)


def test_time_remap_at_zero_percent_holds_the_in_point_frame(tmp_path):
    _, desc = _read(tmp_path, _doc([_clip("frz", 0, 50, 300, 350, _file("f", tc=1000), _remap(0))]))
    c = desc.clips[0]
    assert _src(c) == 1300          # media frame 300, not frame 0 (in * 0)
    assert c.freeze_frame and c.media_range.to_otio().duration.value == 1


def test_decimal_speed_is_exact(tmp_path):
    # 80.0008 %: in 15571 is media frame 15571 * 0.800008 (not 12456.8 from a speed rounded to 4/5)
    _, desc = _read(tmp_path, _doc([_clip("dji", 0, 71, 15571, 15642, _file("f"), _remap("80.0008"))]))
    assert _src(desc.clips[0]) == pytest.approx(15571 * 0.800008, abs=1e-6)


def _nested(inner_items, nid="n", dur=3000):
    return (f'<sequence id="{nid}"><name>nest</name>{_rate()}<duration>{dur}</duration>'
            f"<media><video><track>{inner_items}</track></video></media></sequence>")


def test_retimed_clip_inside_a_nested_sequence_is_trimmed_by_media_frames(tmp_path):
    # the nested clip plays at 392 %; the nesting item shows nested frames 1350..1386: the media seen
    # starts at 1445 + 1350 * 3.92 (the filter of the nested clip is not the nesting item's)
    inner = _clip("fly", 0, 3000, 0, 3000, _file("f", tc=1445), _remap(392))
    _, desc = _read(tmp_path, _doc([_clip("nest", 100, 136, 1350, 1386, _nested(inner))]))
    c = desc.clips[0]
    assert _rec(c) == (100, 136)
    assert _src(c) == pytest.approx(1445 + 1350 * 3.92)


def test_retimed_nested_sequence_is_entered_at_in_times_speed(tmp_path):
    # a nested sequence at 60 %: in 5320 is its frame 3192 (without the speed it would be past its end)
    inner = _clip("cam", 0, 3347, 0, 3347, _file("f", tc=850879))
    p, desc = _read(tmp_path, _doc([_clip("mc", 200, 309, 5320, 5429, _nested(inner), _remap(60))]))
    c = desc.clips[0]
    assert _rec(c) == (200, 309) and _src(c) == 850879 + 3192
    assert c.speed == pytest.approx(0.6) and c.media_range.to_otio().duration.value == pytest.approx(109 * 0.6)


def test_cut_inside_a_retimed_nested_sequence_is_at_its_scaled_record_frame(tmp_path):
    # at 200 % the nesting item (in 25 = nested frame 50) shows nested frames 50..150 over record
    # 0..50: the cut at nested frame 100 is at record 25, both clips at double speed
    inner = _clip("a", 0, 100, 0, 100, _file("fa", tc=1000)) + _clip("b", 100, 3000, 0, 2900, _file("fb", tc=5000))
    _, desc = _read(tmp_path, _doc([_clip("fast", 0, 50, 25, 75, _nested(inner), _remap(200))]))
    got = [(c.name, _rec(c), _src(c), c.speed) for c in desc.clips]
    assert got == [("a", (0, 25), 1050, 2.0), ("b", (25, 50), 5000, 2.0)]


def test_overlapping_items_on_one_track_are_both_kept_whole(tmp_path):
    p, desc = _read(tmp_path, _doc([], [_clip("a", 956, 1177, 34, 255, _file("f"))
                                        + _clip("b", 1164, 1258, 6, 100, '<file id="f"/>')]))
    got = sorted((c.name, _rec(c), _src(c)) for c in desc.clips)
    assert got == [("a", (956, 1177), 34), ("b", (1164, 1258), 6)]
    assert any("'b'" in n and "overlap" in n for n in read_timeline(p).notes)


def test_generator_markers_are_read_and_written_back(tmp_path):
    gen = ('<effect><name>Color</name><effectid>Color</effectid><effecttype>generator</effecttype></effect>'
           "<marker><name>note</name><in>10</in><out>-1</out></marker>")
    p, desc = _read(tmp_path, _doc([_clip("g", 0, 50, 0, 50, gen, tag="generatoritem")]))
    g = desc.clips[0]
    assert [(m.name, _rec(m)) for m in g.markers] == [("note", (10, 10))]
    result = conform(p, [RenderResult(str(tmp_path / "r.mov"), clip_id=g.id, job_id="j")], tmp_path / "out")
    assert result.not_carried == []
    back = describe_timeline(read_timeline(tmp_path / "out" / "cut.s2v_v001.xml"), check_media=False)
    g2 = next(c for c in back.clips if c.name == "g")
    assert [m.name for m in g2.markers] == ["note", "S2V v001"]


def test_marker_on_a_mixed_rate_still_sits_at_the_record_rate(tmp_path):
    # a 29.97 still in a 25 fps sequence: its marker reads back at record frame 15115 at 25 fps
    still = _file("f", "b.jpg", tc=0, tb=30, ntsc=True)
    p, desc = _read(tmp_path, _doc([_clip("b", 15115, 15127, 90120, 90132, still)]))
    c = desc.clips[0]
    conform(p, [RenderResult(str(tmp_path / "r.mov"), clip_id=c.id, job_id="j")], tmp_path / "out")
    back = describe_timeline(read_timeline(tmp_path / "out" / "cut.s2v_v001.xml"), check_media=False)
    m = next(m for x in back.clips for m in x.markers)
    assert m.record.to_otio().start_time.rate == 25 and m.record.to_otio().start_time.value == 15115


def test_empty_sequence_reads_as_no_clips_and_takes_a_render_in_a_new_video(tmp_path):
    text = _doc([], media="<media>\n\t\t</media>")
    p, desc = _read(tmp_path, text)
    assert desc.clips == []
    conform(p, [RenderResult(str(tmp_path / "r.mov"), record=Span(Time(0.0, 25), Time(50.0, 25)))], tmp_path / "out")
    out = (tmp_path / "out" / "cut.s2v_v001.xml").read_bytes().decode()
    stripped = re.sub(r"\s*<video>\s*<track MZ\.TrackName=\"S2V v001\">.*?</track>\s*</video>", "", out, flags=re.S)
    assert stripped == text
    back = describe_timeline(read_timeline(tmp_path / "out" / "cut.s2v_v001.xml"), check_media=False)
    assert [(c.kind, _rec(c)) for c in back.clips] == [("video", (0, 50))]


def test_write_back_keeps_crlf_and_bom_byte_for_byte(tmp_path):
    text = _doc([_clip("c0", 0, 100, 0, 100, _file("f")) + _clip("c1", 100, 150, 0, 50, '<file id="f"/>')])
    text = text.replace("><", ">\n<").replace("\n", "\r\n")
    p = tmp_path / "cut.xml"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    desc = describe_timeline(read_timeline(p), check_media=False)
    conform(p, [RenderResult(str(tmp_path / "r.mov"), clip_id=desc.clips[1].id, job_id="j")], tmp_path / "out")
    out = (tmp_path / "out" / "cut.s2v_v001.xml").read_bytes()
    assert out.startswith(b"\xef\xbb\xbf<?xml")
    assert b"\n" not in out.replace(b"\r\n", b"")            # every newline, old and new, is CRLF
    s = out.decode("utf-8")
    s = re.sub(r"\s*<track MZ\.TrackName=\"S2V v001\">.*?</track>", "", s, flags=re.S)
    s = re.sub(r"\s*<marker>\s*<name>S2V v001</name>.*?</marker>", "", s, flags=re.S)
    assert s.encode("utf-8") == b"\xef\xbb\xbf" + text.encode("utf-8")


def test_renders_of_clips_sharing_a_name_are_all_carried(tmp_path):
    adj = '<effect><name>Adjustment Layer</name><effectid>GraphicAndType</effectid></effect>'
    items = "".join(_clip(f"c{i}", 100 * i, 100 * i + 20, 0, 20, adj, tag="generatoritem")
                    .replace(f"<name>c{i}</name>", "<name>Adjustment Layer</name>") for i in range(3))
    p, desc = _read(tmp_path, _doc([items]))
    renders = [RenderResult(str(tmp_path / f"r{i}.mov"), clip_id=c.id, job_id=f"j{i}") for i, c in enumerate(desc.clips)]
    result = conform(p, renders, tmp_path / "out")
    assert result.not_carried == []


def test_bin_without_a_sequence_is_one_clear_error(tmp_path):
    p = tmp_path / "bin.xml"
    p.write_text('<?xml version="1.0"?>\n<xmeml version="4"><project><name>b</name><children>'
                 f'<clip id="c"><name>c</name>{_rate()}{_file("f")}</clip></children></project></xmeml>\n')
    with pytest.raises(S2VError, match=r"bin\.xml.*no <sequence>.*1 master clip"):
        read_timeline(p)


def test_xml_that_is_not_a_timeline_names_its_root(tmp_path):
    p = tmp_path / "filter.xml"
    p.write_text('<?xml version="1.0" ?>\n<filter><effect><name>Time Remap</name></effect></filter>\n')
    with pytest.raises(S2VError, match=r"filter\.xml.*root element is <filter>"):
        read_timeline(p)


def test_root_found_after_a_long_prolog_and_in_utf16(tmp_path):
    body = _doc([_clip("c0", 0, 100, 0, 100, _file("f"))])
    long = body.replace("<!DOCTYPE xmeml>", "<!DOCTYPE xmeml>\n<!-- " + "x" * 9000 + " -->")
    p = tmp_path / "long.xml"
    p.write_text(long)
    assert detect_adapter(p) == "fcp_xml"
    assert len(describe_timeline(read_timeline(p), check_media=False).clips) == 1
    u = tmp_path / "utf16.xml"
    u.write_bytes(body.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert detect_adapter(u) == "fcp_xml"


@pytest.mark.parametrize("codec,bom", [("utf-16-le", b"\xff\xfe"), ("iso-8859-1", b"")])
def test_write_back_keeps_the_files_own_encoding(tmp_path, codec, bom):
    decl = "UTF-16" if "16" in codec else "ISO-8859-1"
    text = _doc([_clip("c0", 0, 100, 0, 100, _file("f", "søn.mov")) + _clip("c1", 100, 150, 0, 50, '<file id="f"/>')])
    text = text.replace('encoding="UTF-8"', f'encoding="{decl}"')
    p = tmp_path / "cut.xml"
    p.write_bytes(bom + text.encode(codec))
    desc = describe_timeline(read_timeline(p), check_media=False)
    conform(p, [RenderResult(str(tmp_path / "rø€.mov"), clip_id=desc.clips[1].id, job_id="j")], tmp_path / "out")
    out = (tmp_path / "out" / "cut.s2v_v001.xml").read_bytes()
    assert out.startswith(bom)
    s = out[len(bom):].decode(codec)
    s = re.sub(r"\s*<track MZ\.TrackName=\"S2V v001\">.*?</track>", "", s, flags=re.S)
    s = re.sub(r"\s*<marker>\s*<name>S2V v001</name>.*?</marker>\s*", "", s, flags=re.S)   # one-line doc
    assert s == text
    back = describe_timeline(read_timeline(tmp_path / "out" / "cut.s2v_v001.xml"), check_media=False)
    assert any("%E2%82%AC" in (c.media.url or "") for c in back.clips if c.track == "V2")   # the URL, encoded
