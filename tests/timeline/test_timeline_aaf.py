"""The AAF reader and surgical writer on small AAFs built here with pyaaf2, one structure each."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from aaf_testkit import assert_only_additions, write_aaf
from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline


def _desc(path):
    return describe_timeline(read_timeline(path), check_media=False)


def test_avid_exact_23976_is_24000_over_1001_and_places_renders_by_timecode(tmp_path):
    def build(b):
        vid = b.media("shot", "file:///nowhere/shot.mov", kind="picture", tape_tc=86400 + 24 * 10)
        v = b.track("picture")
        v.segment.components.append(b.filler(10, "picture"))
        v.segment.components.append(b.clip(vid, 5, 20, kind="picture"))

    path = write_aaf(tmp_path / "avid2398.aaf", Fraction(23976, 1000), build)
    desc = _desc(path)
    assert desc.rate_fraction == Fraction(24000, 1001)
    (c,) = desc.clips
    d = c.to_dict(desc.rate, desc.drop_frame, desc.global_start.to_otio())
    assert (d["record"]["tc_in"], d["record"]["tc_out"]) == ("01:00:00:10", "01:00:01:06")
    assert (d["source"]["tc_in"], d["source"]["tc_out"]) == ("01:00:10:05", "01:00:11:01")
    # the bug: a render placed by record timecode failed on exactly-23.976 AAFs
    r = conform(read_timeline(path), [RenderResult(str(tmp_path / "r.mov"), record_tc=["01:00:00:10", "01:00:01:06"])],
                tmp_path / "out")
    assert not r.problems and r.placed[0].record.to_otio() == c.record.to_otio()


def test_2997_drop_frame_timecode(tmp_path):
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav")
        t = b.track("sound")
        t.segment.components.append(b.filler(1800))
        t.segment.components.append(b.clip(a, 0, 30))

    path = write_aaf(tmp_path / "df.aaf", Fraction(30000, 1001), build, tc_start=107892, tc_fps=30, drop=True)
    desc = _desc(path)
    d = desc.to_dict()
    assert desc.drop_frame and d["global_start"]["timecode"] == "01:00:00;00"
    assert d["clips"][0]["record"]["tc_in"] == "01:01:00;02"


def test_audio_timed_in_samples_lands_on_the_frame_grid(tmp_path):
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav", rate=48000, length=48000 * 10, tc_rate=25, tc_fps=25)
        b.track("picture", rate=25).segment.components.append(b.filler(100, "picture"))
        t = b.track("sound", rate=48000)
        t.segment.components.append(b.filler(24000))
        t.segment.components.append(b.clip(a, 96000, 144000))

    path = write_aaf(tmp_path / "samples.aaf", Fraction(25), build, tc_start=90000, tc_fps=25)
    desc = _desc(path)
    assert desc.rate == 25
    (c,) = desc.clips
    assert c.record.start.rate == 25 and c.record.start_seconds == Fraction(1, 2)
    assert c.record.duration_seconds == 3
    avail = desc.otio_items[c.id].media_reference.available_range
    assert c.source.start.seconds - Fraction(avail.start_time.value) / 25 == 2   # 2 s into the file


@pytest.fixture
def mixed(tmp_path):
    """A1 'DIA': gain -99 dB | muted | filler | fade-in (transition) clip; A2 'Music' muted track;
    A3 stereo clip (channel combiner); A4 nested sequence; a marker on A1."""

    def build(b):
        mono = b.media("dia", "file:///nowhere/dia.wav", length=1000)
        stereo = b.media("st", "file:///nowhere/st.wav", channels=2, length=1000)
        a1 = b.track("sound", name="DIA", phys=1)
        a1.segment.components.append(b.gain(b.clip(mono, 0, 24), Fraction(1, 10 ** 5)))   # -100 dB
        a1.segment.components.append(b.muted(b.clip(mono, 24, 24)))
        a1.segment.components.append(b.filler(24))
        a1.segment.components.append(b.transition(12, 0))
        a1.segment.components.append(b.clip(mono, 100, 48))
        a2 = b.track("sound", name="Music", phys=2, attrs={"AudioMixerCompMute": 1})
        a2.segment.components.append(b.clip(mono, 0, 24))
        a3 = b.track("sound", phys=3)
        a3.segment.components.append(b.combine([b.clip(stereo, 10, 24, slot_id=1), b.clip(stereo, 10, 24, slot_id=2)]))
        nest, seq = b.nested("Nest 1")
        seq.components.append(b.filler(5))
        seq.components.append(b.clip(mono, 100, 50))
        a4 = b.track("sound", phys=4)
        sc = nest.create_source_clip(1, 10, 20, media_kind="sound")
        a4.segment.components.append(sc)
        b.marker(5, a1.slot_id, "check this line")

    return write_aaf(tmp_path / "mixed.aaf", Fraction(24), build)


def test_gain_mute_fades_channels_nesting_markers(mixed):
    desc = _desc(mixed)
    by = {t.name: t for t in desc.tracks}
    dia = [desc.clip(c) for c in by["DIA"].clip_ids]
    assert [round(c.gain_db) for c in dia] == [-100, 0, 0]
    assert [bool(c.s2v.get("muted")) for c in dia] == [False, True, False] and not dia[1].active
    assert dia[2].record.start_seconds == Fraction(60, 24) and dia[2].s2v["fade_in"] == pytest.approx(0.5)
    assert [m.name for m in dia[0].markers] == ["check this line"]
    assert desc.otio_items[by["Music"].id].metadata["s2v_toolkit"]["muted"] is True
    stereo = [c for c in desc.clips if c.name == "st"]
    assert sorted(c.source_channel for c in stereo) == [0, 1]
    nested = [c for c in desc.clips if c.s2v.get("nested_in") == "Nest 1"]
    assert len(nested) == 1
    n = nested[0]
    # the nested slot [10, 30) shows filler 5..10 then the clip from its frame 5: record 0..20, source 105..
    assert n.record.start_seconds == 0 and n.record.duration_seconds == Fraction(20, 24)
    avail = desc.otio_items[n.id].media_reference.available_range
    assert n.source.start.to_otio().value - avail.start_time.value == 100 + 5


def test_inspect_json_stdout_is_only_json(mixed, capsys):
    from s2v_toolkit.cli import main

    assert main(["inspect", str(mixed), "--json", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["adapter"] == "AAF"


def test_write_back_adds_a_track_and_markers_and_changes_nothing_else(mixed, tmp_path):
    loaded = read_timeline(mixed)
    desc = describe_timeline(loaded, check_media=False)
    target = next(c for c in desc.clips if c.active and c.track == desc.tracks[0].id)
    r = conform(loaded, [RenderResult(str(tmp_path / "render.mov"), clip_id=target.id, job_id="j1")],
                tmp_path / "out")
    out = r.outputs["AAF"]
    assert not [n for n in r.not_carried if n.startswith("AAF")], r.not_carried
    added = assert_only_additions(mixed, out, loaded.timeline.metadata["s2v_toolkit"]["mob_id"])
    assert len(added) == 2
    back = describe_timeline(read_timeline(out), check_media=False)
    (render,) = [c for c in back.clips if c.name.endswith("S2V v001")]
    assert render.record.to_otio() == target.record.to_otio() and render.s2v["job_id"] == "j1"
    assert [c.s2v.get("muted", False) for c in back.clips if c.name == "dia"][:2] == [False, True]
    marked = [c for c in back.clips if any(m.name == "S2V v001" for m in c.markers)]
    assert [c.id for c in marked] == [target.id]
    with open(mixed, "rb") as a, open(read_timeline(mixed).path, "rb") as b:
        assert a.read() == b.read()


def test_audio_only_aaf_gets_the_render_track_as_a_new_video_slot(tmp_path):
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav")
        t = b.track("sound", rate=48000)
        t.segment.components.append(b.clip(a, 0, 48000 * 2))

    path = write_aaf(tmp_path / "audio_only.aaf", Fraction(24), build)
    loaded = read_timeline(path)
    desc = describe_timeline(loaded, check_media=False)
    r = conform(loaded, [RenderResult(str(tmp_path / "render.mov"), clip_id=desc.clips[0].id)], tmp_path / "out")
    added = assert_only_additions(path, r.outputs["AAF"], loaded.timeline.metadata["s2v_toolkit"]["mob_id"])
    assert len(added) == 2
    back = describe_timeline(read_timeline(r.outputs["AAF"]), check_media=False)
    assert [t.kind for t in back.tracks] == ["video", "audio"]
    assert back.clips[0].record.duration_seconds == 2


def test_what_is_not_understood_is_noted_with_its_record_range(tmp_path):
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav")
        t = b.track("sound", name="DIA")
        t.segment.components.append(b.filler(24))
        sel = b.f.create.Selector()
        sel.media_kind = "sound"
        sel.length = 48
        picked = b.clip(a, 0, 48)
        sel["Selected"].value = picked
        other = b.clip(a, 100, 48)
        sel["Alternates"].append(other)
        t.segment.components.append(sel)

    path = write_aaf(tmp_path / "selector.aaf", Fraction(24), build)
    loaded = read_timeline(path)
    (note,) = [n for n in loaded.notes if "selector" in n]
    assert "'DIA'" in note and "01:00:01:00-01:00:03:00" in note
    (c,) = describe_timeline(loaded, check_media=False).clips
    assert c.active and c.record.start_seconds == 1      # the selected clip plays


def test_a_render_path_relative_to_the_timeline_is_an_absolute_locator(mixed, tmp_path):
    (mixed.parent / "renders").mkdir()
    (mixed.parent / "renders" / "r1.mov").write_bytes(b"")
    loaded = read_timeline(mixed)
    target = next(c for c in describe_timeline(loaded, check_media=False).clips if c.active)
    r = conform(loaded, [RenderResult("renders/r1.mov", clip_id=target.id)], tmp_path / "elsewhere")
    back = describe_timeline(read_timeline(r.outputs["AAF"]), search_dirs=(), check_media=False)
    (render,) = [c for c in back.clips if c.name.endswith("S2V v001")]
    assert render.media.status == "ok" and render.media.path == str((mixed.parent / "renders" / "r1.mov").resolve())


def test_without_a_top_level_mark_the_cut_is_the_composition_nothing_uses(tmp_path):
    def build(b):
        # the builder's composition comes first in the file and is the nested one here
        b.comp.usage = "Usage_LowerLevel"
        b.comp.name = "inner"
        a = b.media("dia", "file:///nowhere/dia.wav")
        b.track("sound").segment.components.append(b.clip(a, 0, 48))
        cut = b.f.create.CompositionMob("the cut")
        b.f.content.mobs.append(cut)
        slot = cut.create_empty_sequence_slot(Fraction(24), media_kind="sound")
        ref = b.comp.create_source_clip(2, 0, 48, media_kind="sound")
        slot.segment.components.append(ref)

    path = write_aaf(tmp_path / "nomark.aaf", Fraction(24), build)
    loaded = read_timeline(path)
    assert loaded.timeline.name == "the cut" and any("no composition as top level" in n for n in loaded.notes)
    (c,) = describe_timeline(loaded, check_media=False).clips
    assert c.s2v["nested_in"] == "inner"


def test_pan_is_kept_and_noted_not_applied(tmp_path):
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav")
        t = b.track("sound", name="DIA")
        opdef = b._op("9d2ea893-0968-11d3-8a38-0050040ef7d2", "Mono Audio Pan", 1)
        op = b.f.create.OperationGroup(opdef, 24)
        op.media_kind = "sound"
        clip = b.clip(a, 0, 24)
        op.segments.append(clip)
        t.segment.components.append(op)

    loaded = read_timeline(write_aaf(tmp_path / "pan.aaf", Fraction(24), build))
    (c,) = describe_timeline(loaded, check_media=False).clips
    assert "Mono Audio Pan" in c.s2v["effects"] and c.gain_db == 0
    assert any("stereo position" in n and "01:00:00:00-01:00:01:00" in n for n in loaded.notes)


def test_a_transition_as_long_as_a_clip_cuts_the_clips_it_joins(tmp_path):
    """A dissolve the length of the whole outgoing clip starts where that clip starts: which side a
    clip is on comes from the sequence order (the outgoing clip used to be read as the incoming one)."""
    def build(b):
        v = b.media("a", "file:///nowhere/a.mov", kind="picture")
        w = b.media("b", "file:///nowhere/b.mov", kind="picture")
        t = b.track("picture")
        t.segment.components.append(b.filler(10, "picture"))
        t.segment.components.append(b.clip(v, 0, 48, kind="picture"))
        t.segment.components.append(b.transition(48, 20, "picture"))
        t.segment.components.append(b.clip(w, 0, 48, kind="picture"))

    desc = _desc(write_aaf(tmp_path / "long_dissolve.aaf", Fraction(24), build))
    got = [(c.name, c.record.start_seconds * 24, c.record.duration_seconds * 24) for c in desc.clips]
    assert got == [("a", 10, 20), ("b", 30, 28)]


def test_avid_video_clip_mute_selects_the_layer_below(tmp_path):
    """Media Composer mutes a picture clip with a Selector whose selected segment is a ScopeReference
    (the layer below shows through) and the clip its alternate."""
    def build(b):
        v = b.media("shot", "file:///nowhere/shot.mov", kind="picture")
        t = b.track("picture")
        sel = b.muted(b.clip(v, 0, 24, kind="picture"), "picture")
        ref = b.f.create.ScopeReference()
        ref.media_kind = "picture"
        ref.length = 24
        ref["RelativeScope"].value = 0
        ref["RelativeSlot"].value = 1
        sel["Selected"].value = ref
        t.segment.components.append(sel)

    (c,) = _desc(write_aaf(tmp_path / "video_mute.aaf", Fraction(24), build)).clips
    assert c.name == "shot" and c.s2v.get("muted") is True and not c.active


def test_unnamed_mono_audio_gain_is_known_by_its_definition_id(tmp_path):
    """Pro Tools writes MonoAudioGain operations without a name."""
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav")
        t = b.track("sound")
        op = b.gain(b.clip(a, 0, 24), Fraction(1, 2))
        op.operation.name = ""
        t.segment.components.append(op)

    (c,) = _desc(write_aaf(tmp_path / "unnamed_gain.aaf", Fraction(24), build)).clips
    assert c.gain_db == pytest.approx(-6.0206, abs=1e-3)


def test_an_exported_clip_without_composition_reads_as_a_one_clip_timeline(tmp_path):
    """An AAF of a bin clip (master mob, no sequence) is what the editor opens: that clip."""
    import aaf2

    path = tmp_path / "clip_only.aaf"
    with aaf2.open(str(path), "w") as f:
        from aaf_testkit import AAFBuilder

        b = AAFBuilder.__new__(AAFBuilder)      # no composition: only the clip's mobs
        b.f, b.rate, b._ops = f, Fraction(24), {}
        b.media("dia", "file:///nowhere/dia.wav", length=480)
    loaded = read_timeline(path)
    assert any("no composition" in n and "'dia'" in n for n in loaded.notes)
    (c,) = describe_timeline(loaded, check_media=False).clips
    assert c.name == "dia" and c.record.duration_seconds == 20 and c.kind == "audio"
    r = conform(loaded, [RenderResult(str(tmp_path / "r.mov"), clip_id=c.id)], tmp_path / "out")
    assert len(assert_only_additions(path, r.outputs["AAF"], loaded.timeline.metadata["s2v_toolkit"]["mob_id"])) == 2
    assert any("not a sequence" in n for n in r.not_carried)


def test_an_empty_composition_is_an_empty_timeline(tmp_path):
    def build(b):
        b.track("picture")
        b.track("sound")

    desc = _desc(write_aaf(tmp_path / "empty.aaf", Fraction(25), build, tc_fps=25))
    assert desc.clips == [] and [t.kind for t in desc.tracks] == ["video", "audio"]


def test_a_marker_on_a_sample_timed_clip_between_frames_reads_back_on_it(tmp_path):
    """Audio timed in samples starts between frames; the marker written on the frame grid must
    fall inside the clip, not on the frame before it."""
    def build(b):
        a = b.media("dia", "file:///nowhere/dia.wav", rate=48000, length=48000 * 10)
        b.track("picture").segment.components.append(b.filler(200, "picture"))
        t = b.track("sound", rate=48000)
        t.segment.components.append(b.filler(48000 + 700))       # 1 s + 0.35 frame
        t.segment.components.append(b.clip(a, 0, 48000 * 2))

    path = write_aaf(tmp_path / "between.aaf", Fraction(24), build)
    loaded = read_timeline(path)
    (target,) = describe_timeline(loaded, check_media=False).clips
    r = conform(loaded, [RenderResult(str(tmp_path / "r.mov"), clip_id=target.id)], tmp_path / "out")
    back = describe_timeline(read_timeline(r.outputs["AAF"]), check_media=False)
    (dia,) = [c for c in back.clips if c.name == "dia"]
    assert [m.name for m in dia.markers] == ["S2V v001"]
    assert not [n for n in r.not_carried if "marker" in n or "record range" in n]


def test_renders_of_two_clips_with_one_name_are_not_reported_moved(tmp_path):
    """Two renders named after two uses of one clip are matched by name and record range."""
    def build(b):
        v = b.media("shot", "file:///nowhere/shot.mov", kind="picture")
        t = b.track("picture")
        t.segment.components.append(b.clip(v, 0, 24, kind="picture"))
        t.segment.components.append(b.filler(24, "picture"))
        t.segment.components.append(b.clip(v, 100, 24, kind="picture"))

    path = write_aaf(tmp_path / "twice.aaf", Fraction(24), build)
    loaded = read_timeline(path)
    clips = describe_timeline(loaded, check_media=False).clips
    assert [c.name for c in clips] == ["shot", "shot"]
    r = conform(loaded, [RenderResult(str(tmp_path / f"r{i}.mov"), clip_id=c.id) for i, c in enumerate(clips)],
                tmp_path / "out")
    assert len(r.placed) == 2 and r.placed[0].clip_name == r.placed[1].clip_name
    assert not [n for n in r.not_carried if "record range" in n], r.not_carried


def test_a_held_frame_lasts_the_whole_effect(tmp_path):
    """Avid Xpress' freeze frame, a "Repeat Control" effect over a one-frame clip, holds that frame for the
    effect's length: the clip lasted one frame before and the rest of the effect read as a gap."""
    def build(b):
        vid = b.media("EOP1", "file:///nowhere/eop1.mov", kind="picture", tape_tc=86400)
        v = b.track("picture", rate=25)
        v.segment.components.append(b.clip(vid, 0, 50, kind="picture"))
        v.segment.components.append(b.hold(b.clip(vid, 49, 1, kind="picture"), 125))
        v.segment.components.append(b.clip(vid, 50, 25, kind="picture"))

    path = write_aaf(tmp_path / "hold.aaf", Fraction(25), build, tc_start=90000, tc_fps=25)
    first, held, after = _desc(path).clips
    assert (held.record.start_seconds, held.record.duration_seconds) == (2, 5)       # frames 50-175
    assert held.freeze_frame and held.media_range.duration_seconds == Fraction(1, 25)
    assert held.media_range.start_seconds - first.media_range.start_seconds == Fraction(49, 25)
    assert (after.record.start_seconds, after.record.duration_seconds) == (7, 1)


def test_aaf_1_0_effects_named_operationdefinition_are_read():
    """AAF 1.0 files (Avid Xpress Pro) name an effect's definition property ``OperationDefinition`` in their
    own dictionary; pyaaf2's ``op.operation`` looks up ``Operation`` and raised KeyError for every effect, so
    the whole file was refused ("cannot read as AAF: 'Operation'")."""
    from s2v_toolkit.timeline.formats.aaf_read import _operation_def

    class Definition:
        name = "Repeat Control"

    class Prop:
        def __init__(self, value):
            self.value = value

    class Aaf10Operation(dict):   # the properties as such a file holds them
        @property
        def operation(self):
            return self["Operation"].value

    op = Aaf10Operation(OperationDefinition=Prop(Definition()), Length=Prop(125))
    with pytest.raises(KeyError):
        op.operation
    assert _operation_def(op).name == "Repeat Control"
    assert _operation_def(Aaf10Operation(Length=Prop(1))) is None
