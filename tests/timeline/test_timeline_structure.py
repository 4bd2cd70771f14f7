"""Nested stacks, transitions, speed effects, markers, multiple references, and the shot map."""

from __future__ import annotations

import json

import opentimelineio as otio
import pytest

from s2v_toolkit.timeline import TimelineDescription, describe_timeline, read_timeline, shot_map

import timeline_testkit as kit


RT, TR = kit.RT, kit.TR
R = 25.0


def _clip(name, start, dur, url=None):
    return otio.schema.Clip(name, media_reference=otio.schema.ExternalReference(url or f"/m/{name}.mov"),
                            source_range=TR(RT(start, R), RT(dur, R)))


def _frames(span):
    return span.frames(R)


@pytest.fixture
def tricky():
    """V1: a | (transition) | b | nested stack (trimmed) | c at 2x.  V2: overlay over part of b, disabled d."""
    tl = otio.schema.Timeline("tricky", global_start_time=RT(90000, R))
    v1 = otio.schema.Track("V1")
    v1.append(_clip("a", 100, 50))
    v1.append(otio.schema.Transition("dissolve", otio.schema.TransitionTypes.SMPTE_Dissolve, RT(5, R), RT(5, R)))
    v1.append(_clip("b", 200, 40))
    nest = otio.schema.Stack("nest", source_range=TR(RT(10, R), RT(20, R)))
    inner = otio.schema.Track("inner")
    inner.append(_clip("n1", 500, 15))
    inner.append(_clip("n2", 700, 30))
    nest.append(inner)
    v1.append(nest)
    fast = _clip("c", 300, 20)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    v1.append(fast)
    v2 = otio.schema.Track("V2")
    v2.append(otio.schema.Gap(source_range=TR(RT(0, R), RT(60, R))))
    v2.append(_clip("over", 900, 10))
    d = _clip("d", 950, 10)
    d.enabled = False
    v2.append(d)
    a = _clip("a_alt", 100, 50)
    a.set_media_references({"proxy": otio.schema.ExternalReference("/proxy/a.mp4"),
                            "hires": otio.schema.ExternalReference("/m/a.exr")}, "hires")
    v1[0].markers.append(otio.schema.Marker("fix eyes", TR(RT(120, R), RT(1, R))))
    v1.markers.append(otio.schema.Marker("reel break", TR(RT(90, R), RT(0, R))))
    tl.tracks.extend([v1, v2])
    a3 = otio.schema.Track("V3")
    a3.append(a)
    tl.tracks.append(a3)
    return tl


def test_record_and_source_ranges_through_nesting_transitions_and_speed(tricky):
    desc = describe_timeline(tricky, check_media=False)
    c = {x.name: x for x in desc.clips}
    assert _frames(c["a"].record) == (0, 50) and _frames(c["b"].record) == (50, 40)
    # the nested stack shows its frames 10..30: n1 from its 10th frame (5 left), then n2's first 15
    assert _frames(c["n1"].record) == (90, 5) and _frames(c["n1"].source) == (510, 5)
    assert _frames(c["n2"].record) == (95, 15) and _frames(c["n2"].source) == (700, 15)
    assert c["n1"].nested_in == c["n2"].nested_in == "V1.4"
    # 2x speed: 20 record frames use 40 source frames
    assert _frames(c["c"].record) == (110, 20) and _frames(c["c"].media_range) == (300, 40)
    assert c["c"].speed == 2.0 and any("speed 2x" in p for p in c["c"].problems)
    (tr,) = desc.transitions
    assert _frames(tr.record) == (45, 10) and tr.transition_type == "SMPTE_Dissolve"
    # markers: the clip marker at record time, the track marker as it is
    assert [_frames(m.record) for m in c["a"].markers] == [(20, 1)]
    assert [(m.owner, m.name) for m in desc.markers] == [("V1", "reel break")]
    assert not c["d"].active and c["over"].active
    assert c["a_alt"].media.reference_keys == ["hires", "proxy"] and c["a_alt"].media.active_key == "hires"
    assert c["a_alt"].media.url == "/m/a.exr"


def test_shot_map_takes_the_topmost_enabled_video(tricky):
    desc = describe_timeline(tricky, check_media=False)
    tricky.tracks[2].enabled = False      # V3 (a_alt) switched off in the editor
    desc = describe_timeline(tricky, check_media=False)
    segs = shot_map(desc, TR(RT(40, R), RT(40, R)))       # record 40..80
    got = [(s.clip_name, _frames(s.record), _frames(s.source)) for s in segs]
    assert got == [
        ("a", (40, 10), (140, 10)),
        ("b", (50, 10), (200, 10)),
        ("over", (60, 10), (900, 10)),     # V2 covers b; V2's disabled clip d lets b show again
        ("b", (70, 10), (220, 10)),
    ]
    # the whole cut is covered without holes, and the 2x clip maps to twice the source
    whole = shot_map(desc)
    assert sum(_frames(s.record)[1] for s in whole) == _frames(desc.clips[0].record)[1] + 80
    fast = [s for s in whole if s.clip_name == "c"][0]
    assert _frames(fast.source) == (300, 40)


def test_description_json_round_trips(tricky, tmp_path):
    path = tmp_path / "tricky.otio"
    otio.adapters.write_to_file(tricky, str(path))
    desc = describe_timeline(read_timeline(path), check_media=False)
    doc = json.loads(json.dumps(desc.to_dict()))
    again = TimelineDescription.from_dict(doc)
    assert again.to_dict() == desc.to_dict()
    assert doc["global_start"]["timecode"] == "01:00:00:00"
    a = next(c for c in doc["clips"] if c["name"] == "a")
    assert (a["record"]["tc_in"], a["record"]["tc_out"]) == ("01:00:00:00", "01:00:02:00")
    assert (a["source"]["tc_in"], a["source"]["tc_out"]) == ("00:00:04:00", "00:00:06:00")


def test_drop_frame_timecode_display(tmp_path):
    rate = 30000 / 1001
    tl = kit.build_cut(rate, drop=True, audio=False)
    tl.global_start_time = RT(107892, rate)          # 01:00:00;00 in drop-frame counting
    doc = describe_timeline(tl, check_media=False).to_dict()
    assert doc["drop_frame"] is True and doc["global_start"]["timecode"] == "01:00:00;00"
    tl.metadata["s2v_toolkit"]["drop_frame"] = False
    doc = describe_timeline(tl, check_media=False).to_dict()
    assert doc["global_start"]["timecode"] == "00:59:56:12"  # same frame, counted non-drop


def test_aaf_drop_frame_flag_is_read_from_the_composition_timecode(tmp_path):
    import aaf2

    from s2v_toolkit.timeline import read_timeline

    rate = 30000 / 1001
    tl = kit.build_cut(rate, single_video=True, audio=False)
    tl.global_start_time = RT(107892, rate)
    path = tmp_path / "avid.aaf"
    kit.write_with_adapter(tl, path)             # the AAF writer always writes non-drop timecode
    doc = describe_timeline(read_timeline(path), check_media=False).to_dict()
    assert doc["drop_frame"] is False and doc["global_start"]["timecode"] == "00:59:56:12"
    with aaf2.open(str(path), "rw") as f:        # as Avid writes a 29.97 DF sequence
        for mob in f.content.toplevel():
            for slot in mob.slots:
                for part in [slot.segment] + list(getattr(slot.segment, "components", []) or []):
                    if type(part).__name__ == "Timecode":
                        part["Drop"].value = True
    desc = describe_timeline(read_timeline(path), check_media=False)
    doc = desc.to_dict()
    assert doc["drop_frame"] is True and doc["global_start"]["timecode"] == "01:00:00;00"
    assert doc["clips"][0]["record"]["tc_in"] == "01:00:00;00"
