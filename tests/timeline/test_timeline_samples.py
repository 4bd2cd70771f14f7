"""Public sample EDLs from OpenTimelineIO (see data/README.md): read, conform, read back."""

from __future__ import annotations

import pathlib

import pytest

from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline

DATA = pathlib.Path(__file__).with_name("data")


def _events(text):
    return [line.split() for line in text.splitlines() if line[:3].isdigit()]


@pytest.mark.parametrize(("name", "rate", "first_record_tc", "n_clips"), [
    ("premiere_example.edl", 24.0, "00:59:53:11", 2),
    ("25fps.edl", 25.0, "00:00:00:00", 4),
])
def test_sample_edl_reads_and_round_trips(tmp_path, name, rate, first_record_tc, n_clips):
    src = DATA / name
    loaded = read_timeline(src, rate=rate)
    desc = describe_timeline(loaded, check_media=False)
    assert len(desc.clips) == n_clips and not loaded.notes
    assert desc.to_dict()["clips"][0]["record"]["tc_in"] == first_record_tc
    # every event's record and source timecodes are what the file says
    events = _events(src.read_text())
    doc = desc.to_dict()
    for ev, clip in zip(events, doc["clips"]):
        assert (clip["source"]["tc_in"], clip["source"]["tc_out"]) == (ev[-4], ev[-3])
        assert (clip["record"]["tc_in"], clip["record"]["tc_out"]) == (ev[-2], ev[-1])

    # zero renders: the written EDL reads back the same
    result = conform(loaded, [], tmp_path)
    back = describe_timeline(read_timeline(result.outputs["cmx_3600"], rate=rate), check_media=False)
    assert [(c.name, c.record.to_otio(), c.source.to_otio()) for c in back.clips] == \
        [(c.name, c.record.to_otio(), c.source.to_otio()) for c in desc.clips]
    assert back.global_start.to_otio() == desc.global_start.to_otio()

    # one render over the last clip: the render EDL's event sits at that clip's record timecodes
    last = desc.clips[-1]
    result = conform(loaded, [RenderResult(str(tmp_path / "r.mov"), clip_id=last.id, job_id="j")], tmp_path)
    (event,) = _events(pathlib.Path(result.outputs["cmx_3600"]).read_text())
    assert event[-2:] == events[-1][-2:]
    assert any("one video track" in line for line in result.not_carried)


def test_hiero_fcp7_xml_sample(tmp_path):
    """A real FCP 7 XML export (Hiero): start timecode, named track, offline clip, a Time Remap filter."""
    src = DATA / "hiero_xml_export.xml"
    loaded = read_timeline(src)
    desc = describe_timeline(loaded, search_dirs=[tmp_path], check_media=False)
    doc = desc.to_dict()
    assert doc["global_start"]["timecode"] == "01:00:00:00" and doc["tracks"][0]["name"] == "Video 1"
    first, remapped = doc["clips"]
    assert (first["record"]["tc_in"], first["record"]["tc_out"]) == ("01:00:00:14", "01:00:44:13")
    assert first["source"]["tc_in"] == "12:44:37:23" and first["media"]["status"] == "missing"
    assert remapped["media"]["status"] == "offline"
    assert remapped["speed"] != 1.0 and any("speed" in p for p in remapped["problems"])   # reported
    # zero renders: the FCP 7 XML written back reads the same
    result = conform(loaded, [], tmp_path)
    back = describe_timeline(read_timeline(result.outputs["fcp_xml"]), check_media=False)
    assert [(c.name, c.record.to_otio(), c.source.to_otio(), c.media.url) for c in back.clips] == \
        [(c.name, c.record.to_otio(), c.source.to_otio(), c.media.url) for c in desc.clips]
    assert [t.name for t in back.tracks] == ["Video 1"]
    assert back.global_start.to_otio() == desc.global_start.to_otio()


def test_premiere_xml_sample_disabled_clips_tracks_and_stereo_pairs(tmp_path):
    """A real Premiere Pro export (otio-fcp-adapter's premiere_enable_property.xml)."""
    from s2v_toolkit.timeline import shot_map

    src = DATA / "premiere_enable_property.xml"
    loaded = read_timeline(src)
    desc = describe_timeline(loaded, check_media=False)
    tracks = {t.id: t for t in desc.tracks}
    assert [(t.id, t.name, t.enabled) for t in desc.tracks if t.kind == "video"] == [
        ("V1", "base", True), ("V2", "overlay_1", True), ("V3", "disabled_track", False)]
    assert tracks["A1"].name == "audio_with_disabled"     # Premiere's MZ.TrackName
    disabled = sorted(c.name for c in desc.clips if not c.enabled)
    assert disabled == ["audio_track_1_disabled_1", "video_track_1_disabled_1", "video_track_1_disabled_2",
                        "video_track_3_disabled_1"]
    # stereo pairs (exploded tracks) play both channels: no single source channel
    assert all(c.source_channel is None for c in desc.clips if c.kind == "audio")
    # what the viewer sees: V1, then V2's overlay over V1's disabled clip, then V1; nothing at the end
    seen = [(s.clip_id, s.record.frames(25)) for s in shot_map(desc)]
    assert seen == [("V1.1", (0, 81)), ("V2.2", (81, 96)), ("V1.3", (177, 43))]
    # written back (zero renders) and read again: the editor's switches are all still there
    result = conform(loaded, [], tmp_path)
    back = describe_timeline(read_timeline(result.outputs["fcp_xml"]), check_media=False)
    assert [(c.name, c.enabled, c.record.to_otio()) for c in back.clips] == \
        [(c.name, c.enabled, c.record.to_otio()) for c in desc.clips]
    assert [(t.name, t.enabled) for t in back.tracks] == [(t.name, t.enabled) for t in desc.tracks]
