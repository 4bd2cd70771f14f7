"""FCPXML structures met in real exports beyond projects of plain clips: auditions, bare ``<video>`` in
a storyline, multicam angles that only lend their sound, overlapping renders, audio-only and empty
projects, and files with no project (one clip or compound clip from the browser, or a whole event).

Expected values are worked out by hand from each small document (comments say how).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from s2v_toolkit.timeline import read_timeline
from s2v_toolkit.timeline.conform import RenderResult, conform
from s2v_toolkit.timeline.describe import describe_timeline
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.timecode import Span, Time

from .test_fcpxml_read import FMT24, FMT25, asset, doc, frames, read, videos
from .test_fcpxml_write import _check_only_additions

TITLE_FX = '<effect id="t" name="Basic Title" uid=".../Basic Title.moti"/>'


def _conform(tmp_path, text, renders_of, name="cut.fcpxml"):
    src = tmp_path / name
    src.write_text(text)
    desc = describe_timeline(read_timeline(src), check_media=False)
    result = conform(src, renders_of(desc), tmp_path / "out")
    return src, desc, result


def _back(result):
    return describe_timeline(read_timeline(result.outputs["fcpx_xml"]), check_media=False)


def test_render_over_an_audition_goes_into_its_active_pick(tmp_path):
    # the audition sits at 2s; its first child (the pick) shows 2s of title from its own start 10s
    spine = ('<asset-clip ref="a" offset="0s" name="A" duration="2s"/>\n'
             '<audition offset="2s">\n'
             '  <title ref="t" name="Pick" start="10s" duration="2s"/>\n'
             '  <title ref="t" name="Other" start="10s" duration="3s"/>\n'
             '</audition>')
    text = doc(FMT24 + TITLE_FX + asset("a", "f24"), spine, duration="4s")
    src, desc, result = _conform(tmp_path, text, lambda d: [RenderResult(
        "/r/t.mov", clip_id=next(c.id for c in d.clips if c.name == "Pick"))])
    out = Path(result.outputs["fcpx_xml"])
    _check_only_additions(src, out)
    root = ET.parse(out).getroot()
    pick = next(t for t in root.iter("title") if t.get("name") == "Pick")
    added = pick.find("asset-clip")
    assert added is not None and added.get("offset") == "10s"   # pick's own time: start 10s + 0
    assert root.find(".//audition/asset-clip") is None           # never a child of the audition itself
    back = _back(result)
    (r,) = [c for c in back.clips if c.name == "Pick S2V v001"]
    assert frames(r.record, 24) == (48, 96)
    assert [m.name for c in back.clips if c.name == "Pick" for m in c.markers] == ["S2V v001"]


def test_two_additions_to_one_self_closing_element_share_one_pair_of_tags(tmp_path):
    # a bare <video/> on the primary storyline: a render connected to it and the marker inside it
    spine = '<video ref="a" offset="0s" name="Still" start="3600s" duration="2s"/>'
    text = doc(FMT24 + asset("a", "f24", start="3600s"), spine, duration="2s")
    src, desc, result = _conform(tmp_path, text, lambda d: [RenderResult("/r/s.mov", clip_id=d.clips[0].id)])
    out = Path(result.outputs["fcpx_xml"])
    _check_only_additions(src, out)     # parses (well-formed) and is the input plus the additions
    video = next(v for v in ET.parse(out).getroot().iter("video") if v.get("name") == "Still")
    assert [c.tag for c in video] == ["asset-clip", "marker"]
    assert out.read_text().count("</video>") == 1
    back = _back(result)
    (still,) = [c for c in back.clips if c.name == "Still"]
    assert [m.name for m in still.markers] == ["S2V v001"]
    assert not [n for n in result.not_carried if "not written" in n or "not kept" in n]


def test_overlapping_renders_each_on_a_lane_of_their_own(tmp_path):
    # a <clip> holding three layered videos at 0-2s: renders over two of them overlap in time
    spine = ('<clip offset="0s" name="Layers" duration="2s">\n'
             '  <video ref="a" offset="0s" name="Bottom" duration="2s">\n'
             '    <video ref="a" lane="1" offset="0s" name="Top" duration="2s"/>\n'
             '  </video>\n'
             '</clip>')
    text = doc(FMT24 + asset("a", "f24"), spine, duration="2s")
    src, desc, result = _conform(tmp_path, text, lambda d: [
        RenderResult(f"/r/{i}.mov", clip_id=c.id) for i, c in enumerate(videos(d))])
    assert result.track_names == ["S2V v001", "S2V v001 (2)"]
    out = Path(result.outputs["fcpx_xml"])
    _check_only_additions(src, out)
    lanes = sorted(int(a.get("lane")) for a in ET.parse(out).getroot().iter("asset-clip"))
    assert lanes == [2, 3]        # above lane 1 (Top), one lane each
    back = _back(result)
    renders = {c.name: c for c in back.clips if "S2V v001" in c.name}
    assert sorted(renders) == ["Bottom S2V v001", "Top S2V v001 (2)"]
    assert all(frames(c.record, 24) == (0, 48) for c in renders.values())
    assert len({c.track for c in renders.values()}) == 2
    assert sorted(m.name for c in back.clips for m in c.markers) == ["S2V v001", "S2V v001 (2)"]


def test_render_by_record_range_over_an_audio_only_project(tmp_path):
    spine = '<asset-clip ref="s" offset="0s" name="Sound" duration="3s" audioRole="dialogue"/>'
    text = doc(FMT24 + asset("s", "f24", video=False), spine, duration="3s")
    rec = Span(Time(24, 24), Time(24, 24))     # 1s-2s
    src, desc, result = _conform(tmp_path, text, lambda d: [RenderResult("/r/a.mov", record=rec)])
    assert not videos(desc)
    out = Path(result.outputs["fcpx_xml"])
    _check_only_additions(src, out)
    (r,) = [c for c in _back(result).clips if c.name.endswith("S2V v001")]
    assert frames(r.record, 24) == (24, 48) and r.kind == "video"


def test_render_over_an_empty_project_is_refused_with_a_reason(tmp_path):
    text = doc(FMT24, "", duration="0s").replace("<spine>\n\n                    </spine>", "<spine/>")
    src = tmp_path / "empty.fcpxml"
    src.write_text(text)
    loaded, desc = read(tmp_path, text, "empty.fcpxml")
    assert not desc.clips
    result = conform(src, [RenderResult("/r/a.mov", record=Span(Time(0, 24), Time(24, 24)))], tmp_path / "out")
    assert "fcpx_xml" not in result.outputs
    assert any("primary storyline is empty" in n for n in result.not_carried)
    assert src.read_text() == text


MULTICAM = (
    '<media id="m" name="MC"><multicam format="f24" tcStart="0s">\n'
    '  <mc-angle name="Cam" angleID="V">\n'
    '    <asset-clip ref="a" offset="0s" name="Cam clip" start="0s" duration="10s">\n'
    '      <marker start="1s" duration="1/24s" value="on picture angle"/>\n'
    '    </asset-clip>\n'
    '  </mc-angle>\n'
    '  <mc-angle name="Mic" angleID="A">\n'
    '    <asset-clip ref="s" offset="0s" name="Mic clip" start="0s" duration="10s">\n'
    '      <keyword start="0s" duration="10s" value="on sound angle"/>\n'
    '    </asset-clip>\n'
    '  </mc-angle>\n'
    '</multicam></media>')


def test_markers_inside_a_multicam_are_not_on_the_timeline_only_the_mc_clips_own(tmp_path):
    # Final Cut Pro shows markers on the angles' clips in the angle editor, not on the project's cut
    spine = ('<mc-clip ref="m" offset="0s" name="MC" duration="4s">\n'
             '  <mc-source angleID="V" srcEnable="video"/>\n'
             '  <mc-source angleID="A" srcEnable="audio"/>\n'
             '  <marker start="2s" duration="1/24s" value="on the multicam"/>\n'
             '</mc-clip>')
    text = doc(FMT24 + asset("a", "f24") + asset("s", "f24", video=False) + MULTICAM, spine, duration="4s")
    _, desc = read(tmp_path, text)
    got = sorted((round(m.record.start.to_otio().rescaled_to(24).value), m.name) for c in desc.clips
                 for m in c.markers)
    assert got == [(48, "on the multicam")]
    # picture and sound still come from their angles
    assert [c.name for c in desc.clips if c.kind == "video"] == ["Cam clip"]
    assert [c.name for c in desc.clips if c.kind == "audio"] == ["Mic clip"]


def test_markers_inside_a_compound_clip_show_only_when_it_is_opened(tmp_path):
    media = ('<media id="c" name="Comp"><sequence format="f24" duration="4s" tcStart="0s">\n'
             '  <spine><asset-clip ref="a" offset="0s" name="Inner" start="0s" duration="4s">\n'
             '    <marker start="1s" duration="1/24s" value="inside"/>\n'
             '  </asset-clip></spine>\n'
             '</sequence></media>')
    spine = ('<ref-clip ref="c" offset="0s" name="Comp" duration="4s">\n'
             '  <marker start="3s" duration="1/24s" value="on the compound"/>\n'
             '</ref-clip>')
    _, desc = read(tmp_path, doc(FMT24 + asset("a", "f24") + media, spine, duration="4s"))
    assert [(round(m.record.start.to_otio().rescaled_to(24).value), m.name) for c in desc.clips
            for m in c.markers] == [(72, "on the compound")]
    # the compound clip opened from the browser (its own sequence) shows its inner marker
    items = '    <library><event name="E">\n        <ref-clip ref="c" name="Comp" duration="4s"/>\n    </event></library>'
    _, opened = read(tmp_path, _browser(FMT24 + asset("a", "f24") + media, items), "opened.fcpxml")
    assert [m.name for c in opened.clips for m in c.markers] == ["inside"]


def _browser(resources: str, items: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n<fcpxml version="1.11">\n'
            f'    <resources>\n        {resources}\n    </resources>\n{items}\n</fcpxml>\n')


def test_a_lone_browser_clip_reads_as_a_one_clip_timeline_and_takes_renders(tmp_path):
    # the clip shows media 3601s-3604s: the timeline starts at its first frame (01:00:01:00)
    clip = ('    <asset-clip ref="a" name="Lone" start="3601s" duration="3s" format="f25">\n'
            '        <marker start="3602s" duration="1/25s" value="m"/>\n'
            '    </asset-clip>')
    text = _browser(FMT25 + asset("a", "f25", start="3600s"), clip)
    loaded, desc = read(tmp_path, text)
    assert desc.rate == 25 and desc.global_start.to_otio().rescaled_to(25).value == 3601 * 25
    (v,) = videos(desc)
    assert v.name == "Lone" and frames(v.record, 25) == (0, 75)
    assert v.source.to_otio().start_time.rescaled_to(25).value == 3601 * 25
    assert [round(m.record.start.to_otio().rescaled_to(25).value) for m in v.markers] == [25]
    assert any("no project" in n and "'Lone'" in n for n in loaded.notes)
    src, _, result = _conform(tmp_path, text, lambda d: [RenderResult("/r/l.mov", clip_id=videos(d)[0].id)],
                              name="lone.fcpxml")
    out = Path(result.outputs["fcpx_xml"])
    _check_only_additions(src, out)
    back = _back(result)
    (r,) = [c for c in back.clips if c.name == "Lone S2V v001"]
    assert frames(r.record, 25) == (0, 75)
    assert sorted(m.name for c in back.clips for m in c.markers) == ["S2V v001", "m"]


def test_a_lone_browser_compound_clip_reads_as_its_own_sequence(tmp_path):
    media = ('<media id="c" name="Comp"><sequence format="f24" duration="3s" tcStart="3600s">\n'
             '  <spine><asset-clip ref="a" offset="3600s" name="Inner" start="5s" duration="3s"/></spine>\n'
             '</sequence></media>')
    items = '    <library><event name="E">\n        <ref-clip ref="c" name="Comp" duration="3s"/>\n    </event></library>'
    loaded, desc = read(tmp_path, _browser(FMT24 + asset("a", "f24") + media, items))
    (v,) = videos(desc)
    assert v.name == "Inner" and frames(v.record, 24) == (0, 72)
    assert desc.global_start.to_otio().rescaled_to(24).value == 3600 * 24
    assert any("compound clip 'Comp'" in n for n in loaded.notes)


def test_an_event_of_clips_and_no_project_is_one_clear_error(tmp_path):
    items = ('    <library><event name="Dailies">\n'
             '        <asset-clip ref="a" name="One" duration="3s"/>\n'
             '        <asset-clip ref="a" name="Two" duration="3s"/>\n'
             '    </event></library>')
    p = tmp_path / "event.fcpxml"
    p.write_text(_browser(FMT24 + asset("a", "f24"), items))
    with pytest.raises(TimelineError, match=r"no project, only 2 clip\(s\) from the browser \(event 'Dailies'\)"):
        read_timeline(p)


def test_an_explicit_fcpxml_target_gets_only_the_additions_and_another_format_the_whole_timeline(tmp_path):
    """What ``conform_plan(plan, "mine.fcpxml")`` does: the same surgical write as a conform into a folder."""
    from s2v_toolkit.timeline.conform import add_render_tracks, write_conform_to

    spine = ('<asset-clip ref="a" offset="0s" name="A" duration="2s">\n'
             '  <note>keep me</note>\n'
             '</asset-clip>')
    text = doc(FMT24 + asset("a", "f24"), spine, duration="2s")
    src = tmp_path / "cut.fcpxml"
    src.write_text(text)
    loaded = read_timeline(src)
    desc = describe_timeline(loaded, check_media=False)
    timeline, result = add_render_tracks(loaded, [RenderResult("/r/a.mov", clip_id=videos(desc)[0].id)])
    target = tmp_path / "mine.fcpxml"
    write_conform_to(loaded, timeline, result, target)
    assert result.outputs == {"file": str(target)}
    _check_only_additions(src, target)
    assert not [n for n in result.not_carried if "not kept" in n or "different record" in n]
    (r,) = [c for c in describe_timeline(read_timeline(target), check_media=False).clips if c.name == "A S2V v001"]
    assert frames(r.record, 24) == (0, 48)
    # another format: the whole timeline through its writer
    timeline, result = add_render_tracks(loaded, [RenderResult("/r/a.mov", clip_id=videos(desc)[0].id)])
    other = tmp_path / "mine.otio"
    write_conform_to(loaded, timeline, result, other)
    names = [t.name for t in describe_timeline(read_timeline(other), check_media=False).tracks]
    assert "S2V v001" in names
    with pytest.raises(TimelineError, match="refusing to write over"):
        write_conform_to(loaded, timeline, result, src, overwrite=True)


def test_picture_connected_to_a_bare_audio_clip_on_the_primary_storyline(tmp_path):
    # FCPXML 1.2 (FCP X 10.0): a music <audio> sits on the primary storyline at 2s (its own time from
    # 1s) and holds a connected storyline (lane 1, at its local 1.4s = record 2.4s) of two 1080i50
    # clips, and a matte title (lane 2, at local 1s = record 2s); 25 fps project: frames = seconds*25
    fmt50i = '<format id="f50i" frameDuration="200/5000s" fieldOrder="upper first"/>'
    res = FMT25 + fmt50i + TITLE_FX + asset("a", "f25") + asset("b", "f50i") + asset("m", "f25", video=False)
    spine = ('<asset-clip ref="a" offset="0s" name="A" duration="2s"/>\n'
             '<audio ref="m" offset="2s" name="Music" start="1s" duration="4s" role="music">\n'
             '  <spine lane="1" offset="7/5s" format="f25">\n'
             '    <clip offset="0s" name="B" start="50000/5000s" duration="5000/5000s" format="f50i">\n'
             '      <video ref="b" offset="10s" start="10s" duration="100s"/>\n'
             '    </clip>\n'
             '    <clip offset="1s" name="C" start="20s" duration="2s" format="f50i">\n'
             '      <video ref="b" offset="10s" start="10s" duration="100s"/>\n'
             '    </clip>\n'
             '  </spine>\n'
             '  <title lane="2" offset="1s" ref="t" name="Matte" start="3600s" duration="4s"/>\n'
             '</audio>')
    loaded, desc = read(tmp_path, doc(res, spine, fmt="f25", duration="6s", version="1.2"))
    got = sorted((frames(c.record, 25), c.name) for c in videos(desc))
    assert got == [((0, 50), "A"), ((50, 150), "Matte"), ((60, 85), "B"), ((85, 135), "C")]
    b = next(c for c in videos(desc) if c.name == "B")
    assert float(b.source.to_otio().start_time.to_seconds()) == pytest.approx(10.0)
    (music,) = [c for c in desc.clips if c.kind == "audio" and c.name == "Music"]
    assert frames(music.record, 25) == (50, 150)


RESOLVE_MULTICAM = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.10">
  <resources>
    <format id="r0" frameDuration="1/24s" width="3840" height="2160"/>
    <format id="r12" frameDuration="1/24s" width="4096" height="2160"/>
    <media id="r16" name="CAM Multicam">
      <multicam format="r0" tcStart="3600/1s" tcFormat="NDF">
        <mc-angle angleID="A" name="Full Stage">
          <gap offset="0/1s" duration="11611/24s" start="3600/1s" name="Gap"/>
          <asset-clip offset="11611/24s" duration="19115/2s" format="r12" start="29963/12s" ref="r13" name="A001.braw"/>
        </mc-angle>
      </multicam>
    </media>
    <asset id="r13" duration="19115/2s" format="r12" start="29963/12s" hasVideo="1" name="A001.braw">
      <media-rep kind="original-media" src="file:///V/A001.braw"/>
    </asset>
  </resources>
  <library><event name="Timeline 1 (Resolve)"><project name="Timeline 1 (Resolve)">
    <sequence format="r0" duration="90/1s" tcStart="0/1s" tcFormat="NDF"><spine>
      <mc-clip offset="0/1s" duration="60/1s" start="56549/8s" ref="r16" name="CAM Multicam">
        <mc-source srcEnable="video" angleID="A"/>
      </mc-clip>
      <mc-clip offset="60/1s" duration="30/1s" ref="r16" name="CAM Multicam">
        <mc-source srcEnable="video" angleID="A"/>
      </mc-clip>
    </spine></sequence>
  </project></event></library>
</fcpxml>
"""


def test_multicam_with_a_timecode_start_counts_the_mc_clip_start_from_it(tmp_path):
    # Resolve (and Final Cut) place the angles' contents from offset 0 while the mc-clip's start counts in
    # the multicam's timecode (tcStart 3600s): start 56549/8s = 7068.625s is 3468.625s into the angle; the
    # angle's clip sits at 11611/24s = 483.79s with media from 29963/12s = 2496.917s, so the media shown is
    # 2496.917 + 3468.625 - 483.792 = 5481.75s = 01:31:21:18 at 24 fps. The second mc-clip has no start:
    # it shows the multicam from its first frame (angle time 0, in the gap: nothing)
    src = tmp_path / "resolve_mc.fcpxml"
    src.write_text(RESOLVE_MULTICAM)
    clips = describe_timeline(read_timeline(src), check_media=False).to_dict()["clips"]
    pics = [(c["record"]["tc_in"], c["record"]["tc_out"], c["source"]["tc_in"]) for c in clips if c["kind"] == "video"]
    assert pics == [("00:00:00:00", "00:01:00:00", "01:31:21:18")]
