"""Round trips: read -> conform (0 or N renders) -> read back, per adapter and frame rate."""

from __future__ import annotations

import hashlib
import re

import opentimelineio as otio

import pytest

from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline

import timeline_testkit as kit


FORMATS, RATES, build_cut, write_with_adapter = kit.FORMATS, kit.RATES, kit.build_cut, kit.write_with_adapter

# AAF and EDL re-read the written file; FCPXML names tracks by lane; the comparisons below are on
# what the formats carry: kinds, clip names, record/source ranges, media URLs, markers.


# AAF writers stamp their own write time on every mob; everything else must come back as it was
_VOLATILE = ("CreationTime", "LastModified")


def _metadata(obj, volatile=_VOLATILE):
    def clean(v):
        if hasattr(v, "items"):
            return {k: clean(x) for k, x in v.items() if k not in volatile}
        if isinstance(v, (list, tuple)) or type(v).__name__ == "AnyVector":
            return [clean(x) for x in v]
        return v
    return repr(clean(obj.metadata))


def _signature(desc, loaded=None):
    tracks = [(t.kind, t.name, t.enabled, len(t.clip_ids)) for t in desc.tracks]
    clips = []
    for c in desc.clips:
        meta = _metadata(desc.otio_items[c.id]) if desc.otio_items else None
        clips.append((c.kind, c.name, c.enabled, c.record.to_otio(), c.source.to_otio(), c.media.url,
                      tuple((m.name, m.record.to_otio()) for m in c.markers), meta))
    # a written AAF is a new sequence (new composition mob id); its clips keep their master mob ids
    top = _metadata(loaded.timeline, _VOLATILE + ("MobID",)) if loaded is not None else None
    return tracks, sorted(clips, key=lambda x: (x[0], x[3].start_time.value, x[1])), top


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cases(aaf_rates=tuple(RATES)):
    # AAF is slow to read and write, so it runs at fewer rates
    return [(ext, r) for ext in FORMATS for r in RATES if not (ext == "aaf" and r not in aaf_rates)]


@pytest.mark.parametrize(("ext", "rate_name"), _cases(aaf_rates=("23.976", "29.97DF")))
def test_zero_render_conform_round_trips_exactly(tmp_path, ext, rate_name):
    rate, drop = RATES[rate_name]
    src = tmp_path / f"cut.{ext}"
    write_with_adapter(build_cut(rate, drop, single_video=ext == "edl"), src)
    digest = _sha(src)
    loaded = read_timeline(src, rate=rate)
    assert loaded.adapter == FORMATS[ext]
    before = describe_timeline(loaded, check_media=False)
    assert before.rate == pytest.approx(rate, abs=1e-9)

    result = conform(src, [], tmp_path / "out", rate=rate)

    assert _sha(src) == digest, "the editor's timeline must not be touched"
    assert result.placed == [] and result.track_names == []
    # the .otio holds exactly the timeline that was read
    # (compared after one trip through OTIO JSON: it prints metadata floats to 15-17 digits)
    copy = otio.adapters.read_from_file(result.outputs["otio_json"])
    assert copy.is_equivalent_to(otio.adapters.read_from_string(otio.adapters.write_to_string(loaded.timeline)))
    # the input's own format reads back with the same tracks, clips, ranges, media and markers
    native = result.outputs[FORMATS[ext]] if ext != "otio" else result.outputs["otio_json"]
    back = read_timeline(native, rate=rate)
    after = describe_timeline(back, check_media=False)
    assert _signature(after, back) == _signature(before, loaded)   # incl. clip and timeline metadata
    assert after.global_start.to_otio() == before.global_start.to_otio()


@pytest.mark.parametrize(("ext", "rate_name"), _cases(aaf_rates=("23.976", "25", "29.97DF", "29.97NDF")))
def test_renders_land_frame_exactly_over_their_shots(tmp_path, ext, rate_name):
    rate, drop = RATES[rate_name]
    src = tmp_path / f"cut.{ext}"
    write_with_adapter(build_cut(rate, drop, single_video=ext == "edl"), src)
    loaded = read_timeline(src, rate=rate)
    before = describe_timeline(loaded, check_media=False)
    videos = [c for c in before.clips if c.kind == "video"]
    renders = [RenderResult(str(tmp_path / f"render_{c.name}.mov"), clip_id=c.id, character="ANNA",
                            job_id=f"job-{i}", model="wan-s2v-tiny", seed=7, action="redub")
               for i, c in enumerate(videos[:2])]

    result = conform(loaded, renders, tmp_path / "out", rate=rate)

    assert not result.problems
    assert [p.record.to_otio() for p in result.placed] == [c.record.to_otio() for c in videos[:2]]
    # .otio: the only difference is the new track and the markers on the replaced clips
    after = describe_timeline(read_timeline(result.outputs["otio_json"]), check_media=False)
    assert [t.name for t in after.tracks] == [t.name for t in before.tracks] + ["S2V v001"]
    orig = {c.id: c for c in before.clips}
    for c in after.clips:
        if c.track == after.tracks[-1].id:
            continue
        o = orig[c.id]
        assert (c.record.to_otio(), c.source.to_otio(), c.media.url) == (o.record.to_otio(), o.source.to_otio(), o.media.url)
        assert _metadata(after.otio_items[c.id]) == _metadata(before.otio_items[o.id])
        added = [m for m in c.markers if m.name.startswith("S2V v001")]
        assert len(c.markers) - len(added) == len(o.markers)
        assert len(added) == (1 if c.id in {v.id for v in videos[:2]} else 0)
    new = [c for c in after.clips if c.track == after.tracks[-1].id]
    for c, v, r in zip(new, videos, renders):
        assert c.record.to_otio() == v.record.to_otio()          # RationalTime equality, not closeness
        assert c.record.start.rate == before.rate
        assert c.s2v["source_clip"] == v.id and c.s2v["job_id"] == r.job_id and c.s2v["version"] == 1
        assert c.s2v["character"] == "ANNA" and c.s2v["seed"] == 7
    # the input's own format: the render clips read back at the same record ranges
    native = result.outputs.get(FORMATS[ext])
    if ext != "otio":
        back = describe_timeline(read_timeline(native, rate=rate), check_media=False)
        back_renders = sorted((c for c in back.clips if c.name.endswith("S2V v001")), key=lambda c: c.record.start.value)
        assert [c.record.to_otio() for c in back_renders] == [v.record.to_otio() for v in videos[:2]]
        if ext == "xml":  # FCP 7 XML carries it all: track, clips, s2v metadata (lognote), markers
            assert result.not_carried == []
            assert all(c.s2v.get("job_id") for c in back_renders)
        elif ext != "aaf":  # AAF's surgical writer carries it all too
            assert result.not_carried, "this format drops something; it must be reported"


def test_fcp7_xml_keeps_disabled_clips_tracks_and_track_names(tmp_path):
    """<enabled>FALSE</enabled> on clips and tracks and Premiere's track names are read, and a conform
    written back into the document keeps them (the original text is not re-serialised)."""
    from s2v_toolkit.timeline.formats import get_format

    tl = build_cut(24.0)
    tl.tracks[0][2].enabled = False          # shot2 switched off
    tl.tracks[3].enabled = False             # MUSIC track muted
    src = tmp_path / "premiere.xml"
    get_format("fcp_xml").write(tl, src)     # the toolkit's writer: adapter + enable flags + names
    text = src.read_text()
    first = re.search(r"<track[^>]*>", text).group(0)
    text = text.replace(first, '<track MZ.TrackName="T">', 1)
    src.write_text(text)
    loaded = read_timeline(src)
    desc = describe_timeline(loaded, check_media=False)
    assert desc.tracks[0].name == "T"
    assert [c.name for c in desc.clips if not c.enabled] == ["shot2"]
    assert [t.id for t in desc.tracks if not t.enabled] == ["A2"]

    out = tmp_path / "out"
    result = conform(loaded, [RenderResult("/r/x.mov", clip_id="V1.1")], out)
    back = describe_timeline(read_timeline(result.outputs["fcp_xml"]), check_media=False)
    by_name = {c.name: c for c in back.clips}
    assert not by_name["shot2"].enabled and by_name["shot1"].enabled
    # FCP 7 XML lists video tracks before audio tracks: the render track is the top video track
    assert [(t.name, t.enabled) for t in back.tracks] == [
        ("T", True), ("V2", True), ("S2V v001", True), ("DIA 1", True), ("MUSIC", False)]
    assert not any("track name" in line for line in result.not_carried)


def test_record_range_renders_overlaps_and_versions(tmp_path):
    from s2v_toolkit.timeline import Span

    rate = 24000 / 1001
    src = tmp_path / "cut.otio"
    write_with_adapter(build_cut(rate), src)
    loaded = read_timeline(src)
    desc = describe_timeline(loaded, check_media=False)
    shot2 = next(c for c in desc.clips if c.name == "shot2")          # record 60..121, V2 "insert" over 70..87
    span = Span.from_otio(otio.opentime.TimeRange(otio.opentime.RationalTime(65, rate),
                                                  otio.opentime.RationalTime(30, rate)))
    renders = [RenderResult(str(tmp_path / "wide.mov"), record=span, job_id="wide"),
               RenderResult(str(tmp_path / "s2.mov"), clip_id=shot2.id, job_id="s2")]   # overlaps "wide"
    result = conform(loaded, renders, tmp_path / "out")
    assert result.track_names == ["S2V v001", "S2V v001 (2)"]
    wide = next(p for p in result.placed if p.clip_name.startswith("shot2") and p.record.to_otio() == span.to_otio())
    # the record-range render replaces what is seen there: shot2, then the insert on top of it
    assert [desc.clip(i).name for i in wide.source_clip_ids] == ["shot2", "insert"]
    after = describe_timeline(read_timeline(result.outputs["otio_json"]), check_media=False)
    marks = {c.name: [m for m in c.markers if m.name.startswith("S2V")] for c in after.clips}
    assert len(marks["shot2"]) == 2 and len(marks["insert"]) == 1
    insert_mark = marks["insert"][0]
    insert = next(c for c in desc.clips if c.name == "insert")
    assert insert_mark.record.to_otio() == insert.record.to_otio()    # 70..87 lies wholly inside 65..95
    # a second conform of the conformed timeline is version 2
    again = conform(read_timeline(result.outputs["otio_json"]), [renders[1]], tmp_path / "out2")
    assert again.version == 2 and again.track_names == ["S2V v002"]


def test_render_placed_by_record_timecodes(tmp_path):
    rate = 30000 / 1001
    src = tmp_path / "cut.otio"
    tl = build_cut(rate, drop=True)
    tl.global_start_time = otio.opentime.RationalTime(107892, rate)      # 01:00:00;00 drop-frame
    write_with_adapter(tl, src)
    loaded = read_timeline(src)
    desc = describe_timeline(loaded, check_media=False)
    shot2 = next(c for c in desc.clips if c.name == "shot2")
    tc = shot2.to_dict(desc.rate, desc.drop_frame, desc.global_start.to_otio())["record"]
    assert ";" in tc["tc_in"]
    result = conform(loaded, [RenderResult("/r/s2.mov", record_tc=[tc["tc_in"], tc["tc_out"]])], tmp_path)
    (placed,) = result.placed
    assert placed.record.to_otio() == shot2.record.to_otio()
    assert placed.source_clip_ids[0] == shot2.id
    bad = conform(loaded, [RenderResult("/r/x.mov", record_tc=["01:00:00;00", "00:59:00;00"])], tmp_path)
    assert not bad.placed and "record_tc" in bad.problems[0]


@pytest.mark.parametrize("name", ["scene.otio", "scene.xml"])
def test_conform_into_another_folder_keeps_relative_media_linked(tmp_path, name):
    """The demo cut uses paths relative to its own folder; a conform written elsewhere must still find them."""
    from s2v_toolkit.demo import PROJECT_DIR

    source = PROJECT_DIR / name
    before = source.read_bytes()
    result = conform(source, [], tmp_path / "elsewhere")
    assert source.read_bytes() == before
    for path in result.outputs.values():
        back = describe_timeline(read_timeline(path))
        missing = [(c.name, c.media.url) for c in back.clips if not c.media.exists]
        assert len(back.clips) == 7 and not missing, missing
        assert all(c.media.found_by == "relative to timeline" for c in back.clips)
