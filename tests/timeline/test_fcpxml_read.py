"""FCPXML reading, one small hand-written document per structure Final Cut Pro exports.

Each test states the expected record range (sequence frames from the first frame) and source start
(media frames at the media's own rate) worked out from the XML by hand in the comments.
"""

from __future__ import annotations

import pytest

from s2v_toolkit.timeline import read_timeline
from s2v_toolkit.timeline.describe import describe_timeline
from s2v_toolkit.timeline.errors import TimelineError

NTSC = 24000 / 1001
FMT24 = '<format id="f24" frameDuration="100/2400s"/>'
FMT25 = '<format id="f25" frameDuration="100/2500s"/>'
FMT2398 = '<format id="f2398" frameDuration="1001/24000s"/>'
FMT5994 = '<format id="f5994" frameDuration="1001/60000s"/>'


def asset(aid: str, fmt: str, start: str = "0s", duration: str = "3600s", video: bool = True,
          audio: bool = True) -> str:
    return (f'<asset id="{aid}" name="{aid}" start="{start}" duration="{duration}" hasVideo="{int(video)}" '
            f'hasAudio="{int(audio)}" format="{fmt}" audioSources="1" audioChannels="2">'
            f'<media-rep kind="original-media" src="file:///media/{aid}.mov"/></asset>')


def doc(resources: str, spine: str, fmt: str = "f24", tc_start: str = "0s", duration: str = "100s",
        version: str = "1.11", tc_format: str = "NDF") -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n\n'
            f'<fcpxml version="{version}">\n    <resources>\n        {resources}\n    </resources>\n'
            '    <library>\n        <event name="e">\n            <project name="p">\n'
            f'                <sequence format="{fmt}" duration="{duration}" tcStart="{tc_start}" tcFormat="{tc_format}">\n'
            f'                    <spine>\n{spine}\n                    </spine>\n'
            '                </sequence>\n            </project>\n        </event>\n    </library>\n</fcpxml>\n')


def read(tmp_path, text: str, name: str = "cut.fcpxml"):
    p = tmp_path / name
    p.write_text(text)
    loaded = read_timeline(p)
    return loaded, describe_timeline(loaded, check_media=False)


def frames(span, rate) -> tuple[int, int]:
    r = span.to_otio()
    start = r.start_time.rescaled_to(rate).value
    end = r.end_time_exclusive().rescaled_to(rate).value
    assert abs(start - round(start)) < 1e-6 and abs(end - round(end)) < 1e-6
    return round(start), round(end)


def src_frame(clip) -> float:
    return clip.source.to_otio().start_time.value


def videos(desc):
    return [c for c in desc.clips if c.kind == "video"]


def test_spine_rate_start_timecode_and_ranges(tmp_path):
    # 23.976 sequence at 01:00:00:00 (86400 frames = 86486400/24000s); clip A: 48 frames from source
    # frame 100; a gap of 24; clip B: 24 frames from frame 10 of media starting at 01:00:00:00
    res = FMT2398 + asset("a", "f2398") + asset("b", "f2398", start="86486400/24000s")
    spine = ('<asset-clip ref="a" offset="86486400/24000s" name="A" start="100100/24000s" duration="48048/24000s"/>'
             '<gap name="Gap" offset="86534448/24000s" start="3600s" duration="24024/24000s"/>'
             '<asset-clip ref="b" offset="86558472/24000s" name="B" start="86496410/24000s" duration="24024/24000s"/>')
    loaded, desc = read(tmp_path, doc(res, spine, fmt="f2398", tc_start="86486400/24000s", duration="96096/24000s"))
    assert desc.rate == pytest.approx(NTSC) and desc.global_start.to_otio().value == 86400
    a, b = videos(desc)
    assert frames(a.record, desc.rate) == (0, 48) and src_frame(a) == 100
    assert frames(b.record, desc.rate) == (72, 96) and src_frame(b) == 86400 + 10
    assert desc.to_dict()["clips"][0]["record"]["tc_in"] == "01:00:00:00"
    # sound of the same asset-clips on an audio track (asset has audio)
    assert [c.name for c in desc.clips if c.kind == "audio"] == ["A", "B"]


def test_sequence_rate_comes_from_the_sequence_not_the_first_clip(tmp_path):
    # 59.94 project whose first clip is 23.976 media: 120 sequence frames = 2.002 s
    res = FMT5994 + FMT2398 + asset("a", "f2398")
    spine = '<asset-clip ref="a" offset="0s" name="A" duration="120120/60000s"><conform-rate srcFrameRate="23.98"/></asset-clip>'
    _, desc = read(tmp_path, doc(res, spine, fmt="f5994", duration="120120/60000s"))
    assert desc.rate == pytest.approx(60000 / 1001)
    (a,) = videos(desc)
    assert frames(a.record, desc.rate) == (0, 120)
    assert a.speed == 1.0   # 23.98 in 59.94 is frame-sampled, not retimed (Apple's conform chart)


def test_clip_wrapper_is_read_once_with_its_audio_role(tmp_path):
    # <clip> wrapping a video with a connected audio component: one picture, one sound (role dialogue)
    res = FMT24 + asset("a", "f24")
    spine = ('<clip offset="0s" name="W" start="10s" duration="2s"><video ref="a" offset="0s" duration="60s">'
             '<audio ref="a" lane="-1" offset="0s" duration="60s" role="dialogue.dialogue-1"/></video></clip>'
             '<clip offset="2s" name="W2" start="20s" duration="1s"><video ref="a" offset="0s" duration="60s"/></clip>')
    loaded, desc = read(tmp_path, doc(res, spine, duration="3s"))
    v = videos(desc)
    assert [(c.name, frames(c.record, 24), src_frame(c)) for c in v] == [("W", (0, 48), 240), ("W2", (48, 72), 480)]
    audio = [c for c in desc.clips if c.kind == "audio"]
    assert len(audio) == 1 and frames(audio[0].record, 24) == (0, 48)
    track = next(t for t in loaded.timeline.tracks if t.kind == "Audio")
    assert track.metadata["s2v_toolkit"]["role"] == "dialogue"


def test_connected_clip_and_secondary_storyline_positions(tmp_path):
    # primary A at record 0 showing its local time from 10s; a lane-1 clip at A-local 11s -> record 1s;
    # a lane-2 storyline at A-local 12s -> record 2s holding C (1s) then D (1s)
    res = FMT24 + asset("a", "f24") + asset("c", "f24")
    spine = ('<asset-clip ref="a" offset="0s" name="A" start="10s" duration="5s">'
             '<asset-clip ref="c" lane="1" offset="11s" name="B" start="3s" duration="1s"/>'
             '<spine lane="2" offset="12s"><asset-clip ref="c" offset="0s" name="C" start="5s" duration="1s"/>'
             '<asset-clip ref="c" offset="1s" name="D" start="7s" duration="1s"/></spine></asset-clip>'
             '<asset-clip ref="a" offset="5s" name="E" start="0s" duration="1s"/>')
    loaded, desc = read(tmp_path, doc(res, spine, duration="6s"))
    got = {c.name: (c.track, frames(c.record, 24), src_frame(c)) for c in videos(desc)}
    assert got == {"A": ("V1", (0, 120), 240), "E": ("V1", (120, 144), 0),
                   "B": ("V2", (24, 48), 72), "C": ("V3", (48, 72), 120), "D": ("V3", (72, 96), 168)}
    lanes = [t.metadata["s2v_toolkit"].get("lane") for t in loaded.timeline.tracks if t.kind == "Video"]
    assert lanes == [0, 1, 2]


def test_connected_clip_on_a_gap_uses_the_gaps_own_time(tmp_path):
    res = FMT24 + asset("a", "f24")
    spine = ('<gap name="Gap" offset="0s" start="3600s" duration="4s">'
             '<asset-clip ref="a" lane="1" offset="3601s" name="B" start="2s" duration="2s"/></gap>')
    _, desc = read(tmp_path, doc(res, spine, duration="4s"))
    (b,) = videos(desc)
    assert frames(b.record, 24) == (24, 72) and src_frame(b) == 48


def test_compound_clip_is_flattened_with_its_offsets(tmp_path):
    # compound media: X (2s from 5s) then Y (1s from 0s); the ref-clip shows its 1.5s..3s at record 1s
    res = (FMT24 + asset("a", "f24") +
           '<media id="m" name="Comp"><sequence format="f24" duration="3s" tcStart="0s"><spine>'
           '<asset-clip ref="a" offset="0s" name="X" start="5s" duration="2s"/>'
           '<asset-clip ref="a" offset="2s" name="Y" start="0s" duration="1s"/></spine></sequence></media>')
    spine = ('<gap name="Gap" offset="0s" duration="1s"/>'
             '<ref-clip ref="m" offset="1s" name="Comp" start="1.5s" duration="1.5s"/>')
    _, desc = read(tmp_path, doc(res, spine, duration="2.5s"))
    got = [(c.name, frames(c.record, 24), src_frame(c), c.s2v.get("nested_in")) for c in videos(desc)]
    # X visible 1.5..2 (local) -> record 1..1.5s, source 6.5s; Y local 2..3 -> record 1.5..2.5s
    assert got == [("X", (24, 36), 156, "Comp"), ("Y", (36, 60), 0, "Comp")]


def test_multicam_active_video_and_audio_angles(tmp_path):
    res = (FMT24 + asset("c1", "f24") + asset("c2", "f24") +
           '<media id="mc" name="MC"><multicam format="f24" tcStart="0s">'
           '<mc-angle name="Cam1" angleID="A1"><asset-clip ref="c1" offset="0s" name="Cam 1" duration="100s"/></mc-angle>'
           '<mc-angle name="Cam2" angleID="A2"><gap name="Gap" offset="0s" duration="2s"/>'
           '<asset-clip ref="c2" offset="2s" name="Cam 2" duration="98s"/></mc-angle></multicam></media>')
    spine = ('<mc-clip ref="mc" offset="0s" name="MC" start="10s" duration="3s">'
             '<mc-source angleID="A2" srcEnable="video"/><mc-source angleID="A1" srcEnable="audio"/>'
             '<marker start="11s" duration="100/2400s" value="beat"/></mc-clip>')
    _, desc = read(tmp_path, doc(res, spine, duration="3s"))
    (v,) = videos(desc)
    (a,) = [c for c in desc.clips if c.kind == "audio"]
    assert (v.name, frames(v.record, 24), src_frame(v), v.s2v["multicam_angle"]) == ("Cam 2", (0, 72), 192, "Cam2")
    assert (a.name, frames(a.record, 24), src_frame(a), a.s2v["multicam_angle"]) == ("Cam 1", (0, 72), 240, "Cam1")
    assert [(m.name, round(m.record.start.to_otio().rescaled_to(24).value)) for m in v.markers] == [("beat", 24)]


def test_sync_clip_audition_disabled_title(tmp_path):
    res = (FMT24 + asset("v", "f24") + asset("w", "f24", video=False) + '<effect id="t" name="Basic Title"/>')
    spine = ('<sync-clip offset="0s" name="S" duration="2s">'
             '<asset-clip ref="v" offset="0s" name="V" duration="2s" audioRole="dialogue">'
             '<asset-clip ref="w" lane="-1" offset="0s" name="W" duration="2s" audioRole="music"/></asset-clip>'
             '<sync-source sourceID="storyline"><audio-role-source role="dialogue" active="0"/></sync-source></sync-clip>'
             '<audition offset="2s"><asset-clip ref="v" name="Pick" start="5s" duration="1s"/>'
             '<asset-clip ref="v" name="Alt" start="9s" duration="1s"/></audition>'
             '<asset-clip ref="v" offset="3s" name="Off" duration="1s" enabled="0"/>'
             '<title ref="t" offset="4s" name="Title" start="3600s" duration="1s"/>')
    _, desc = read(tmp_path, doc(res, spine, duration="5s"))
    got = [(c.name, frames(c.record, 24), c.enabled, c.s2v.get("generator")) for c in videos(desc)]
    assert got == [("V", (0, 48), True, None), ("Pick", (48, 72), True, None), ("Off", (72, 96), False, None),
                   ("Title", (96, 120), True, "title")]
    audio = {c.name: c for c in desc.clips if c.kind == "audio"}
    assert audio["V"].s2v.get("muted") is True        # the sync clip switches its dialogue role off
    assert not audio["W"].s2v.get("muted")
    assert "Alt" not in {c.name for c in desc.clips}


def test_rate_conform_25_in_24_and_time_map(tmp_path):
    # 25 fps media in a 24 fps project: one media frame per sequence frame (speed 24/25); start 684/25s is
    # media frame 684; a timeMap at 2x: local 1s..2s shows media 2s..4s
    res = FMT24 + FMT25 + asset("p", "f25") + asset("a", "f24")
    spine = ('<asset-clip ref="p" offset="0s" name="PAL" start="684/25s" duration="9/4s" format="f25">'
             '<conform-rate srcFrameRate="25"/><marker start="137/5s" duration="1/25s" value="m"/></asset-clip>'
             '<asset-clip ref="a" offset="9/4s" name="Fast" start="1s" duration="1s">'
             '<timeMap><timept time="0s" value="0s" interp="linear"/><timept time="10s" value="20s" interp="linear"/>'
             '</timeMap><marker start="3/2s" duration="1/24s" value="half"/></asset-clip>')
    _, desc = read(tmp_path, doc(res, spine, duration="13/4s"))
    pal, fast = videos(desc)
    assert frames(pal.record, 24) == (0, 54) and src_frame(pal) == 684 and pal.source.start.rate == 25
    assert pal.speed == pytest.approx(24 / 25)
    assert round(pal.media_range.to_otio().duration.rescaled_to(25).value) == 54   # 54 media frames
    # marker at media frame 685 -> the clip's second frame
    assert round(pal.markers[0].record.start.to_otio().rescaled_to(24).value) == 1
    assert frames(fast.record, 24) == (54, 78) and src_frame(fast) == 48 and fast.speed == pytest.approx(2.0)
    # a marker in a retimed clip is placed by its local time (half a second in: 12 frames), not media time
    assert round(fast.markers[0].record.start.to_otio().rescaled_to(24).value) == 66


def test_gain_fades_and_keywords(tmp_path):
    res = FMT24 + asset("a", "f24")
    spine = ('<asset-clip ref="a" offset="0s" name="A" duration="4s" audioRole="dialogue">'
             '<adjust-volume amount="-6dB"><param name="amount"><fadeIn type="easeIn" duration="1/2s"/>'
             '<fadeOut type="easeIn" duration="1s"/></param></adjust-volume>'
             '<keyword start="1s" duration="1s" value="interview"/><chapter-marker start="2s" duration="1/24s" value="Ch 2"/>'
             '</asset-clip>')
    _, desc = read(tmp_path, doc(res, spine, duration="4s"))
    (a,) = [c for c in desc.clips if c.kind == "audio"]
    assert a.gain_db == -6.0 and a.s2v["fade_in"] == 0.5 and a.s2v["fade_out"] == 1.0
    (v,) = videos(desc)
    assert sorted(m.name for m in v.markers) == ["Ch 2", "interview"]


def test_fcpxml_1_2_project_without_library(tmp_path):
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<fcpxml version="1.2"><project name="old"><resources>'
            + FMT24 + '<asset id="a" name="a" src="file:///m/a.mov" start="0s" duration="100s" hasVideo="1" hasAudio="0"/>'
            '</resources><sequence format="f24" duration="2s" tcStart="0s"><spine>'
            '<clip offset="0s" name="C" start="3s" duration="2s"><video ref="a" offset="0s" duration="100s"/></clip>'
            '</spine></sequence></project></fcpxml>')
    _, desc = read(tmp_path, text)
    (c,) = desc.clips
    assert (c.name, frames(c.record, 24), src_frame(c), c.media.url) == ("C", (0, 48), 72, "file:///m/a.mov")


def test_damaged_attribute_is_read_leniently_and_named(tmp_path):
    # a real export has an attribute value pasted over by a path; the rest of the file is fine
    res = FMT24 + asset("a", "f24") + asset("m", "f24", video=False)
    spine = ('<clip offset="0s" name="W" duration="2s"><video ref="a" offset="0s" duration="60s"/>'
             '<clip lane="-1" offset="0s" name="Music" duration="2s"><audio offset="0s" ref="m" '
             'duration=/Users/x/y.fcpxml"60s" role="music"/></clip></clip>')
    loaded, desc = read(tmp_path, doc(res, spine, duration="2s"))
    assert [(c.name, c.kind) for c in desc.clips] == [("W", "video"), ("Music", "audio")]
    assert any("not well-formed" in n and "line" in n for n in loaded.notes)


def test_truncated_and_non_standard_rate_are_refused(tmp_path):
    res = FMT24 + asset("a", "f24")
    text = doc(res, '<asset-clip ref="a" offset="0s" name="A" duration="1s"/>', duration="1s")
    p = tmp_path / "cut.fcpxml"
    p.write_text(text[: len(text) // 2])
    with pytest.raises(TimelineError, match="truncated"):
        read_timeline(p)
    odd = text.replace('frameDuration="100/2400s"', 'frameDuration="100/2397s"')
    p.write_text(odd)
    with pytest.raises(TimelineError, match="not a standard"):
        read_timeline(p)


def test_missing_multicam_angle_is_unknown_picture_not_a_gap(tmp_path):
    res = (FMT24 + asset("c1", "f24") + '<media id="mc" name="MC"><multicam format="f24">'
           '<mc-angle name="Cam1" angleID="A1"><asset-clip ref="c1" offset="0s" name="Cam 1" duration="10s"/>'
           '</mc-angle></multicam></media>')
    spine = '<mc-clip ref="mc" offset="0s" name="MC" duration="2s"><mc-source angleID="ZZ" srcEnable="all"/></mc-clip>'
    loaded, desc = read(tmp_path, doc(res, spine, duration="2s"))
    (v,) = videos(desc)
    assert "unknown_picture" in v.s2v and frames(v.record, 24) == (0, 48)
    assert any("MC" in n for n in loaded.notes)


def test_connected_clip_hanging_past_its_parent_is_seen_whole(tmp_path):
    # B is connected near the end of A and runs 1s past A's end, over E: all of it is on screen
    res = FMT24 + asset("a", "f24")
    spine = ('<asset-clip ref="a" offset="0s" name="A" start="10s" duration="2s">'
             '<asset-clip ref="a" lane="1" offset="11.5s" name="B" start="20s" duration="1.5s"/></asset-clip>'
             '<asset-clip ref="a" offset="2s" name="E" duration="2s"/>'
             '<future-thing offset="4s" duration="1s" name="New"/>')
    loaded, desc = read(tmp_path, doc(res, spine, duration="5s"))
    got = {c.name: (frames(c.record, 24), src_frame(c)) for c in videos(desc)}
    assert got["B"] == ((36, 72), 480)
    # an element the reader does not know is unknown picture over its range, never a silent gap
    (new,) = [c for c in videos(desc) if c.name == "New"]
    assert frames(new.record, 24) == (96, 120) and "future-thing" in new.s2v["unknown_picture"]
    assert any("future-thing" in n for n in loaded.notes)


def test_split_edit_sound_leads_the_picture(tmp_path):
    # J-cut: B's picture starts at 2s, its sound 12 frames earlier (audioStart half a second before start)
    res = FMT24 + asset("a", "f24") + asset("b", "f24")
    spine = ('<asset-clip ref="a" offset="0s" name="A" duration="2s" audioDuration="3/2s"/>'
             '<asset-clip ref="b" offset="2s" name="B" start="10s" duration="2s" audioStart="19/2s" '
             'audioDuration="5/2s"/>')
    _, desc = read(tmp_path, doc(res, spine, duration="4s"))
    got = {(c.name, c.kind): (frames(c.record, 24), src_frame(c)) for c in desc.clips}
    assert got[("B", "video")] == ((48, 96), 240)
    assert got[("B", "audio")] == ((36, 96), 228)
    assert got[("A", "video")] == ((0, 48), 0) and got[("A", "audio")] == ((0, 36), 0)


def test_an_unreadable_element_is_unknown_picture_and_the_rest_is_read(tmp_path):
    res = FMT24 + asset("a", "f24")
    spine = ('<asset-clip ref="a" offset="0s" name="A" duration="1s"/>'
             '<asset-clip ref="a" offset="1s" name="Bad" start="1s" duration="1s"><timeMap>'
             '<timept time="0s" value="0s"/><timept time="zz" value="2s"/></timeMap></asset-clip>'
             '<asset-clip ref="a" offset="2s" name="C" duration="1s"/>')
    loaded, desc = read(tmp_path, doc(res, spine, duration="3s"))
    got = [(c.name, frames(c.record, 24), bool(c.s2v.get("unknown_picture"))) for c in videos(desc)]
    assert got == [("A", (0, 24), False), ("Bad", (24, 48), True), ("C", (48, 72), False)]
    assert any("Bad" in n and "line" in n for n in loaded.notes)


def test_compound_clip_without_start_shows_its_sequence_from_its_start_timecode(tmp_path):
    res = (FMT24 + asset("a", "f24") +
           '<media id="m" name="Comp"><sequence format="f24" duration="2s" tcStart="3600s"><spine>'
           '<asset-clip ref="a" offset="3600s" name="X" start="5s" duration="2s"/></spine></sequence></media>')
    _, desc = read(tmp_path, doc(res, '<ref-clip ref="m" offset="0s" name="Comp" duration="2s"/>', duration="2s"))
    (x,) = videos(desc)
    assert (x.name, frames(x.record, 24), src_frame(x)) == ("X", (0, 48), 120)


def retimed_clips(offset: int) -> str:
    """Two retimed clips from ``offset`` s, 2 s each: "Slow" shows local 14s..16s at half speed (content
    7s..8s, media 12s..13s); "Back" is played backwards (content 10s..0s over local 0s..10s; its local
    2s..4s is content 8s..6s, media 28s..26s)."""
    return (f'<clip offset="{offset}s" name="Slow" start="14s" duration="2s"><timeMap>'
            '<timept time="0s" value="0s" interp="linear"/><timept time="20s" value="10s" interp="linear"/></timeMap>'
            '<video ref="a" offset="0s" start="5s" duration="10s"/></clip>'
            f'<clip offset="{offset + 2}s" name="Back" start="2s" duration="2s"><timeMap>'
            '<timept time="0s" value="10s"/><timept time="10s" value="0s"/></timeMap>'
            '<video ref="a" offset="0s" start="20s" duration="10s"/></clip>')


def test_a_retimed_clip_places_its_content_through_its_time_map(tmp_path):
    # Final Cut Pro retimes a <clip> (a clip of several media elements, and every clip of FCPXML 1.2) with a
    # timeMap on the clip itself: its local time (start 14s, shown for 2s) maps to the time its <video> sits
    # in, here at half speed (0s->0s, 20s->10s), so local 14s..16s is content 7s..8s of a video placed at
    # content 0s..10s, media start 5s: media 12s..13s. Before, the content was looked for at 14s..16s, found
    # nowhere, and read from the clip's own start at speed 1 (source 14s, past the 10 s of media).
    res = FMT24 + asset("a", "f24", duration="30s")
    spine = '<asset-clip ref="a" offset="0s" name="Plain" start="5s" duration="1s"/>' + retimed_clips(1)
    _, desc = read(tmp_path, doc(res, spine, duration="5s"))
    plain, slow, back = videos(desc)
    assert frames(slow.record, 24) == (24, 72) and src_frame(slow) == 12 * 24 and slow.speed == pytest.approx(0.5)
    assert frames(back.record, 24) == (72, 120) and src_frame(back) == 28 * 24 and back.speed == pytest.approx(-1)
    assert (plain.name, slow.name, back.name) == ("Plain", "Slow", "Back")


def test_an_fcpxml_1_2_event_export_counts_its_clips(tmp_path):
    # Final Cut Pro X 10.0 exported an event as a <project> without a <sequence> holding the event's clips
    text = ('<?xml version="1.0" encoding="UTF-8"?>\n<fcpxml version="1.2"><project name="Event 1">'
            f'<resources>{FMT24}{asset("a", "f24")}</resources>'
            '<clip name="A" duration="2s" format="f24"><video ref="a" offset="0s" duration="2s"/></clip>'
            '<clip name="B" duration="3s" format="f24"><video ref="a" offset="0s" duration="3s"/></clip>'
            '</project></fcpxml>\n')
    with pytest.raises(TimelineError, match=r"no project, only 2 clip\(s\) from the browser \(event 'Event 1'\)"):
        read(tmp_path, text)


def test_a_hold_in_a_retimed_clip_is_a_freeze_frame(tmp_path):
    # a timeMap whose value stands still (Final Cut Pro's Hold): the content's frame at 3s (media 8s) for 1s
    res = FMT24 + asset("a", "f24", duration="30s")
    spine = ('<clip offset="0s" name="Held" start="0s" duration="1s"><timeMap>'
             '<timept time="0s" value="3s"/><timept time="5s" value="3s"/></timeMap>'
             '<video ref="a" offset="0s" start="5s" duration="10s"/></clip>')
    loaded, desc = read(tmp_path, doc(res, spine, duration="1s"))
    (held,) = videos(desc)
    assert frames(held.record, 24) == (0, 24) and src_frame(held) == 8 * 24
    assert held.freeze_frame and held.speed == 0
    assert any("held frame" in n for n in loaded.notes)
