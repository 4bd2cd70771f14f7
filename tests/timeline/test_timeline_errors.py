"""Bad input gives one-line errors naming the file; what can still be processed is."""

from __future__ import annotations


import opentimelineio as otio
import pytest

from s2v_toolkit.errors import S2VError
from s2v_toolkit.timeline import (
    RenderResult, TimelineError, conform, describe_timeline, detect_adapter, read_timeline, write_timeline,
)

import timeline_testkit as kit


RT, TR = kit.RT, kit.TR


def _one_line_naming(exc_info, path):
    text = str(exc_info.value)
    assert isinstance(exc_info.value, S2VError)
    assert "\n" not in text and str(path) in text
    return text


def test_adapter_is_chosen_by_extension_then_content(tmp_path):
    tl = kit.build_cut(24.0, single_video=True, audio=False)
    for ext, adapter in kit.FORMATS.items():
        p = tmp_path / f"cut.{ext}"
        kit.write_with_adapter(tl, p)
        assert detect_adapter(p) == adapter
        # the same content under a misleading or missing extension is still recognised
        if ext in ("xml", "fcpxml", "aaf", "otio", "edl"):
            bare = tmp_path / f"exported_{ext}.dat"
            bare.write_bytes(p.read_bytes())
            assert detect_adapter(bare) == adapter
    fcpx_as_xml = tmp_path / "resolve_export.xml"
    fcpx_as_xml.write_bytes((tmp_path / "cut.fcpxml").read_bytes())
    assert detect_adapter(fcpx_as_xml) == "fcpx_xml"


def test_unknown_extension_names_the_file(tmp_path):
    p = tmp_path / "cut.prproj"
    p.write_bytes(b"\x00\x01binary project")
    with pytest.raises(TimelineError) as e:
        read_timeline(p)
    assert "unknown timeline format" in _one_line_naming(e, p)


@pytest.mark.parametrize("ext", ["xml", "fcpxml", "otio"])
def test_truncated_file_names_the_file(tmp_path, ext):
    p = tmp_path / f"cut.{ext}"
    kit.write_with_adapter(kit.build_cut(25.0), p)
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(TimelineError) as e:
        read_timeline(p)
    _one_line_naming(e, p)


def test_aaf_without_composition_and_corrupt_aaf(tmp_path):
    import aaf2

    only_master = tmp_path / "master_only.aaf"
    with aaf2.open(str(only_master), "w") as f:
        f.content.mobs.append(f.create.MasterMob("a master clip, no sequence"))
    with pytest.raises(TimelineError) as e:
        read_timeline(only_master)
    assert "composition" in _one_line_naming(e, only_master)
    junk = tmp_path / "junk.aaf"
    junk.write_bytes(b"not a structured storage file" * 20)
    with pytest.raises(TimelineError) as e:
        read_timeline(junk)
    _one_line_naming(e, junk)


def _fcpxml(frame_duration: str, times: dict) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n<fcpxml version="1.8"><resources>'
        f'<format id="r1" frameDuration="{frame_duration}"/>'
        f'<asset name="a" src="file:///m/a.mov" format="r1" id="r2" duration="{times["asset"]}" start="0s"/>'
        f'</resources><library><event name="e"><project name="p"><sequence duration="{times["dur"]}" '
        f'format="r1" tcStart="{times["tc"]}"><spine><asset-clip name="a" ref="r2" offset="{times["tc"]}" '
        f'duration="{times["dur"]}" start="{times["src"]}"/></spine></sequence></project></event></library></fcpxml>')


def test_ntsc_fcpxml_reads_frame_exactly(tmp_path):
    """otio-fcpx-xml-adapter 1.0 alone reads 1001/24000s as 23 fps; the toolkit gets every frame right."""
    p = tmp_path / "resolve.fcpxml"
    # 23.976: sequence at 01:00:00:00 (86400 frames), a 47-frame clip from source frame 1013
    p.write_text(_fcpxml("1001/24000s", {"asset": "5005000/24000s", "dur": "47047/24000s",
                                         "tc": "86486400/24000s", "src": "1014013/24000s"}))
    desc = describe_timeline(read_timeline(p), check_media=False)
    (clip,) = desc.clips
    ntsc = 24000 / 1001
    assert desc.rate == ntsc and desc.global_start.to_otio() == RT(86400, ntsc)
    assert clip.record.to_otio() == TR(RT(0, ntsc), RT(47, ntsc))
    assert clip.source.to_otio() == TR(RT(1013, ntsc), RT(47, ntsc))
    assert desc.to_dict()["clips"][0]["record"]["tc_in"] == "01:00:00:00"


def test_fcpxml_at_a_rate_the_adapter_cannot_carry_is_refused(tmp_path):
    p = tmp_path / "odd.fcpxml"
    p.write_text(_fcpxml("100/2997s", {"asset": "1000s", "dur": "4700/2997s", "tc": "0s", "src": "0s"}))
    with pytest.raises(TimelineError) as e:
        read_timeline(p)
    assert "29.97" in _one_line_naming(e, p)


def test_clip_problems_are_per_clip_not_fatal(tmp_path):
    (tmp_path / "here.mov").write_bytes(b"")  # found by name in a search folder
    tl = otio.schema.Timeline("t", global_start_time=RT(0, 24))
    v = otio.schema.Track("V1")
    v.append(otio.schema.Clip("no_ref", source_range=TR(RT(0, 24), RT(10, 24))))
    v.append(otio.schema.Clip("gone", media_reference=otio.schema.ExternalReference("file:///nowhere/gone.mov"),
                              source_range=TR(RT(0, 24), RT(10, 24))))
    v.append(otio.schema.Clip("moved", media_reference=otio.schema.ExternalReference(
        "file://localhost/D%3a/Projects/reel%201/here.mov"), source_range=TR(RT(0, 24), RT(10, 24))))
    v.append(otio.schema.Clip("pal_in_film", media_reference=otio.schema.ExternalReference("/x/pal.mov"),
                              source_range=TR(RT(100, 25), RT(10, 25))))
    tl.tracks.append(v)
    desc = describe_timeline(tl, search_dirs=[tmp_path], check_media=False)
    by_name = {c.name: c for c in desc.clips}
    assert by_name["no_ref"].media.status == "offline"
    assert by_name["gone"].media.status == "missing" and not by_name["gone"].media.exists
    assert by_name["moved"].media.status == "ok"
    assert by_name["moved"].media.path == str(tmp_path / "here.mov")
    assert any("clip rate 25 differs from timeline rate 24" in p for p in by_name["pal_in_film"].problems)
    # every problem is one line naming its clip
    assert len(desc.problems) == 4 and all("\n" not in p for p in desc.problems)
    assert {p.split("'")[1] for p in desc.problems} == {"no_ref", "gone", "pal_in_film"}


def test_never_writes_over_the_editors_timeline(tmp_path):
    src = tmp_path / "cut.xml"
    kit.write_with_adapter(kit.build_cut(24.0), src)
    before = src.read_bytes()
    loaded = read_timeline(src)
    with pytest.raises(TimelineError, match="refusing to write over"):
        write_timeline(loaded.timeline, src, overwrite=True, protect=(src,))
    with pytest.raises(TimelineError, match="already exists"):
        write_timeline(loaded.timeline, src)
    # two conforms never replace each other: the second gets the next version
    first = conform(src, [RenderResult("/r/a.mov", clip_id="V1.1")])
    second = conform(src, [RenderResult("/r/b.mov", clip_id="V1.1")])
    assert (first.version, second.version) == (1, 2)
    assert set(first.outputs.values()).isdisjoint(second.outputs.values())
    assert src.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp*")), "no temporary files left behind"


def test_render_that_does_not_fit_is_skipped_with_reason(tmp_path):
    src = tmp_path / "cut.otio"
    kit.write_with_adapter(kit.build_cut(25.0), src)
    result = conform(src, [RenderResult("/r/a.mov", clip_id="V9.9"), RenderResult("/r/b.mov", clip_id="V1.1")],
                     tmp_path / "out")
    assert len(result.placed) == 1 and result.placed[0].source_clip_ids == ["V1.1"]
    assert len(result.problems) == 1 and "V9.9" in result.problems[0] and "/r/a.mov" in result.problems[0]


def test_relative_media_paths_resolve_against_the_timeline_folder(tmp_path):
    (tmp_path / "media").mkdir()
    kit.write_wav(tmp_path / "media" / "a.wav", 1.0, 8000)
    (tmp_path / "media" / "broken.mov").write_bytes(b"not a movie")
    tl = otio.schema.Timeline("t")
    tr = otio.schema.Track("DX", kind=otio.schema.TrackKind.Audio)
    for name in ("a.wav", "broken.mov"):
        tr.append(otio.schema.Clip(name, media_reference=otio.schema.ExternalReference(f"media/{name}"),
                                   source_range=TR(RT(0, 24), RT(12, 24))))
    tl.tracks.append(tr)
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(tl, str(path))
    desc = describe_timeline(read_timeline(path))
    good, broken = desc.clips
    assert good.media.status == "ok" and good.media.found_by == "relative to timeline"
    assert good.media.path == str(tmp_path / "media" / "a.wav") and not good.media.problems
    # a file that exists but is not media: reported on its clip, the rest still described
    assert any("unreadable" in p for p in broken.media.problems)


def test_otioz_bundle_media_found_after_unzipping(tmp_path):
    import zipfile

    src_media = tmp_path / "src"
    src_media.mkdir()
    kit.write_wav(src_media / "line.wav", 1.0, 8000)
    tl = otio.schema.Timeline("z")
    tr = otio.schema.Track("DX", kind=otio.schema.TrackKind.Audio)
    tr.append(otio.schema.Clip("line", media_reference=otio.schema.ExternalReference(
        (src_media / "line.wav").as_uri(), available_range=TR(RT(0, 25), RT(25, 25))),
        source_range=TR(RT(0, 25), RT(25, 25))))
    tl.tracks.append(tr)
    bundle = tmp_path / "handoff.otioz"
    otio.adapters.write_to_file(tl, str(bundle))
    (src_media / "line.wav").unlink()                      # only the bundle travels
    loaded = read_timeline(bundle)
    assert loaded.adapter == "otioz" and any("unzip" in n for n in loaded.notes)
    assert describe_timeline(loaded).clips[0].media.status == "missing"
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(unzipped)
    clip = describe_timeline(loaded, search_dirs=[unzipped]).clips[0]
    assert clip.media.status == "ok" and clip.media.path == str(unzipped / "media" / "line.wav")
