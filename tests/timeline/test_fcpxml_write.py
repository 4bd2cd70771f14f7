"""FCPXML conform write-back: the output is the input plus exactly the additions.

Proof by removal: take the added elements out of the output (by text, and separately by structure
through ElementTree) and the input comes back, byte for byte and canonically; then read the output
back and find the renders at their record ranges and the markers on the replaced clips.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from s2v_toolkit.timeline import read_timeline
from s2v_toolkit.timeline.conform import RenderResult, conform
from s2v_toolkit.timeline.describe import describe_timeline

from fcpxml_testkit import collapse, strip_additions_text

from .test_fcpxml_read import FMT24, FMT25, FMT2398, asset, doc, frames, retimed_clips


def strip_additions_tree(text: str) -> str:
    """The same by structure: parse, remove the added elements, canonicalize."""
    root = ET.fromstring(text.encode())
    added = {a.get("id") for a in root.iter("asset") if re.fullmatch(r"s2v\d+r\d+x*", a.get("id") or "")}
    for parent in list(root.iter()):
        for child in list(parent):
            if (child.tag == "asset" and child.get("id") in added) \
                    or (child.tag == "asset-clip" and child.get("ref") in added) \
                    or (child.tag == "clip" and any(v.get("ref") in added for v in child.findall("video"))) \
                    or (child.tag == "marker" and (child.get("value") or "").startswith("S2V v")):
                parent.remove(child)
    return canonical(ET.tostring(root, encoding="unicode"))


def canonical(text: str) -> str:
    return ET.canonicalize(text, strip_text=True)


def _conform(tmp_path, text: str, picks, name="cut.fcpxml", **kw):
    src = tmp_path / name
    src.write_text(text)
    desc = describe_timeline(read_timeline(src), check_media=False)
    renders = [RenderResult(f"renders/r{i}.mov", clip_id=cid, job_id=f"job{i}", character="ANNA")
               for i, cid in enumerate(picks(desc))]
    result = conform(src, renders, tmp_path / "out", **kw)
    out = Path(result.outputs["fcpx_xml"])
    return src, desc, result, out


def _check_only_additions(src: Path, out: Path) -> None:
    a, b = src.read_text(), out.read_text()
    assert b != a
    assert collapse(strip_additions_text(b)) == collapse(a)
    assert strip_additions_tree(b) == canonical(a)


def test_renders_and_markers_inserted_and_nothing_else_changes(tmp_path):
    res = FMT24 + FMT25 + asset("a", "f24") + asset("p", "f25")
    spine = ('                        <asset-clip ref="a" offset="3600s" name="A" start="10s" duration="2s">\n'
             '                            <marker start="10.5s" duration="1/24s" value="old"/>\n'
             '                            <audio-channel-source srcCh="1, 2" role="dialogue.dialogue-1"/>\n'
             '                        </asset-clip>\n'
             '                        <gap name="Gap" offset="3602s" start="3600s" duration="1s"/>\n'
             '                        <asset-clip ref="p" offset="3603s" name="P" start="684/25s" duration="2s">\n'
             '                            <conform-rate srcFrameRate="25"/>\n'
             '                            <asset-clip ref="a" lane="1" offset="28s" name="B" duration="1s"/>\n'
             '                        </asset-clip>')
    text = doc(res, spine, tc_start="3600s", duration="5s")
    src, desc, result, out = _conform(tmp_path, text, lambda d: [c.id for c in d.clips if c.kind == "video"
                                                                  and c.name in ("A", "P")])
    assert not result.problems
    _check_only_additions(src, out)
    back = describe_timeline(read_timeline(out), check_media=False)
    renders = sorted((c for c in back.clips if c.name.endswith("S2V v001")), key=lambda c: c.record.start.value)
    assert [frames(c.record, 24) for c in renders] == [(0, 48), (72, 120)]
    assert renders[0].track == renders[1].track and back.track(renders[0].track).name == "S2V v001"
    assert renders[0].s2v["job_id"] == "job0" and renders[0].s2v["character"] == "ANNA"
    assert renders[0].s2v["version"] == 1
    # the media path was relative to the input's folder: written absolute
    assert renders[0].media.url == (tmp_path / "renders" / "r0.mov").resolve().as_uri()
    # markers on the replaced clips, at their first frames; the old marker is still there
    by_name = {c.name: c for c in back.clips if c.kind == "video"}
    a_markers = {m.name: round(m.record.start.to_otio().rescaled_to(24).value) for m in by_name["A"].markers}
    assert a_markers == {"old": 12, "S2V v001": 0}
    p_markers = [round(m.record.start.to_otio().rescaled_to(24).value) for m in by_name["P"].markers]
    assert p_markers == [72]
    # the new lane is above every existing one (B sits on lane 1)
    assert back.track(renders[0].track).stack_index > back.track(
        next(c for c in back.clips if c.name == "B").track).stack_index
    assert not [n for n in result.not_carried if "not kept" in n or "different record" in n]


def test_render_over_a_self_closing_gap_and_a_second_conform(tmp_path):
    res = FMT24 + asset("a", "f24")
    spine = ('<gap name="Gap" offset="0s" start="3600s" duration="2s"/>\n'
             '<asset-clip ref="a" offset="2s" name="A" duration="1s"/>')
    text = doc(res, spine, duration="3s")
    src = tmp_path / "cut.fcpxml"
    src.write_text(text)
    rr = RenderResult("/renders/shot.mov", record=None, record_tc=["00:00:00:12", "00:00:01:12"])
    result = conform(src, [rr], tmp_path / "out")
    out = Path(result.outputs["fcpx_xml"])
    _check_only_additions(src, out)
    back = describe_timeline(read_timeline(out), check_media=False)
    (r,) = [c for c in back.clips if c.name.endswith("S2V v001")]
    assert frames(r.record, 24) == (12, 36)
    # a second conform of the output adds v002 on a lane above v001
    result2 = conform(out, [RenderResult("/renders/shot2.mov", clip_id=next(
        c.id for c in back.clips if c.name == "A"))], tmp_path / "out2")
    back2 = describe_timeline(read_timeline(result2.outputs["fcpx_xml"]), check_media=False)
    names = [t.name for t in back2.tracks if t.kind == "video"]
    assert names.index("S2V v002") > names.index("S2V v001")


def test_fcpxml_before_1_6_gets_clip_and_video_not_asset_clip(tmp_path):
    text = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<!DOCTYPE fcpxml>\n\n<fcpxml version="1.2">\n'
            '    <project name="old">\n        <resources>\n            ' + FMT2398 +
            '\n            <asset id="a" name="a" src="file:///m/a.mov" start="0s" duration="100s" hasVideo="1" '
            'hasAudio="0"/>\n        </resources>\n        <sequence format="f2398" duration="48048/24000s" '
            'tcStart="0s">\n            <spine>\n                <clip offset="0s" name="C" start="3s" '
            'duration="48048/24000s">\n                    <video ref="a" offset="0s" duration="100s"/>\n'
            '                </clip>\n            </spine>\n        </sequence>\n    </project>\n</fcpxml>\n')
    src, desc, result, out = _conform(tmp_path, text, lambda d: [d.clips[0].id])
    _check_only_additions(src, out)
    assert "<asset-clip" not in out.read_text()
    back = describe_timeline(read_timeline(out), check_media=False)
    (r,) = [c for c in back.clips if c.name.endswith("S2V v001")]
    assert frames(r.record, 24000 / 1001) == (0, 48) and back.track(r.track).name == "S2V v001"
    assert r.s2v["job_id"] == "job0"


@pytest.mark.parametrize("version", ["1.8", "1.11"])
def test_asset_form_follows_the_version(tmp_path, version):
    res = FMT24 + asset("a", "f24")
    text = doc(res, '<asset-clip ref="a" offset="0s" name="A" duration="1s"/>', duration="1s", version=version)
    src, _, _, out = _conform(tmp_path, text, lambda d: [d.clips[0].id])
    new_asset = re.search(r'<asset id="s2v1r1".*?(?:</asset>|/>)', out.read_text(), re.S).group(0)
    assert ("<media-rep" in new_asset) == (version == "1.11")
    assert ('src="file://' in new_asset)


def test_whole_timeline_writer_puts_media_in_clip_time(tmp_path):
    """otio-fcpx-xml-adapter writes <video offset="0s"> for media starting at 01:00:00:00, outside its
    clip's range; the toolkit's writer gives it offset = start = the media's start, as Final Cut Pro does."""
    import opentimelineio as otio

    from s2v_toolkit.timeline import write_timeline
    from timeline_testkit import build_cut

    p = tmp_path / "made.fcpxml"
    write_timeline(build_cut(24.0), p)
    text = p.read_text()
    assert '<video offset="3600s" start="3600s"' in text and '<video offset="0s"' not in text
    ours = read_timeline(p)
    assert not ours.notes   # read by the FCPXML rule itself, not the adapter-convention fallback

    def sig(desc):
        return sorted((c.name, c.kind, c.record.to_otio(), c.source.to_otio().start_time) for c in desc.clips)

    theirs = otio.adapters.read_from_file(str(p), adapter_name="fcpx_xml")
    assert sig(describe_timeline(ours, check_media=False)) == sig(describe_timeline(theirs, check_media=False))


def test_render_over_a_retimed_clip_lands_on_its_record_range(tmp_path):
    # a clip retimed by a timeMap (half speed, and one played backwards): the render is anchored to it in its
    # local time (Apple: a timeMap moves anchored items, not contained ones) and reads back where it was placed
    res = FMT24 + asset("a", "f24", duration="30s")
    src, desc, result, out = _conform(tmp_path, doc(res, retimed_clips(0), duration="4s"),
                                      lambda d: [c.id for c in d.clips if c.kind == "video"])
    _check_only_additions(src, out)
    back = describe_timeline(read_timeline(out), check_media=False)
    placed = {c.name: frames(c.record, 24) for c in back.clips if c.name.endswith("S2V v001")}
    assert placed == {"Slow S2V v001": (0, 48), "Back S2V v001": (48, 96)}
    originals = {c.name: frames(c.record, 24) for c in back.clips if c.kind == "video" and "S2V" not in c.name}
    assert originals == {"Slow": (0, 48), "Back": (48, 96)}   # the retimed clips themselves read as before
