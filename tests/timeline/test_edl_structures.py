"""EDL structures real NLE exports use, each in a small list built here: M2 speed events whose source
out is scaled (Avid) or not (Resolve, some Avid lists), channels 3/4 given by AUD lines, events that
overlap on one channel (multi-track cuts), LOCs on black, drop-frame spellings, header notes and DOS
end-of-file padding, the rate guess, and the render list of a 29.97 list in its own frame code mode."""

from __future__ import annotations

import re

import pytest

from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline

TC_ANY = r"\d\d:\d\d:\d\d[:;]\d\d"
HEAD = "TITLE: SPEEDS\nFCM: NON-DROP FRAME\n\n"


def _read(tmp_path, text: str, rate: float = 24):
    """The list ``text`` written to a file and read: (the loaded timeline, with its notes; its description)."""
    src = tmp_path / "list.edl"
    src.write_text(text)
    loaded = read_timeline(src, rate=rate)
    return loaded, describe_timeline(loaded, check_media=False).to_dict()


def _clips(tmp_path, body: str, rate: float = 24) -> list[dict]:
    """Clips of the list as described, each with its track's name in the list (V, A1, A3...) as "channel"."""
    _, doc = _read(tmp_path, HEAD + body, rate)
    names = {t["id"]: t["name"] for t in doc["tracks"]}
    return [{**c, "channel": names[c["track"]]} for c in doc["clips"]]


def test_m2_with_unscaled_source_out_keeps_the_m2_speed(tmp_path):
    # Resolve: 25 record frames at 31.7 fps (1.32x); the source out is in + 25 frames, not the source used
    clips = _clips(tmp_path,
                   "001  B088     V     C        13:48:57:10 13:48:58:11 01:01:41:13 01:01:42:14\n"
                   "M2   B088           031.7                13:48:57:10\n"
                   "* FROM CLIP NAME: 102C-2-B\n")
    (clip,) = clips
    assert abs(clip["speed"] - 31.7 / 24) < 1e-9
    assert (clip["record"]["tc_in"], clip["record"]["tc_out"]) == ("01:01:41:13", "01:01:42:14")
    assert clip["media_range"]["tc_in"] == "13:48:57:10"
    # 25 record frames x 1.32 = 33 source frames used
    assert abs(clip["media_range"]["duration"]["value"] - 25 * 31.7 / 24) < 1e-6


def test_m2_with_scaled_source_out_uses_the_listed_source_range(tmp_path):
    # Avid: 60 fps over 8 record frames; the source out (19 frames on) is the last frame used + 1
    clips = _clips(tmp_path,
                   "001  A224     V     C        21:02:53:22 21:02:54:17 01:12:25:23 01:12:26:07\n"
                   "M2   A224           060.0                21:02:53:22\n"
                   "002  A224     V     C        21:02:53:22 21:02:53:23 01:12:26:07 01:12:26:08\n"
                   "M2   A224           060.0                21:02:53:22\n")
    first, one_frame = clips
    assert abs(first["speed"] - 19 / 8) < 1e-9
    assert (first["media_range"]["tc_in"], first["media_range"]["tc_out"]) == ("21:02:53:22", "21:02:54:17")
    # one record frame shows one source frame, whatever the M2 speed: the list's range stands
    assert (one_frame["media_range"]["tc_in"], one_frame["media_range"]["tc_out"]) == ("21:02:53:22", "21:02:53:23")


def test_loc_on_black_filler_listed_under_the_next_event_sits_at_its_record_timecode(tmp_path):
    # Avid lists a LOC that falls on a black slug under the event after it
    clips = _clips(tmp_path,
                   "001  B047C007 V     C        09:08:59:10 09:09:02:04 01:01:10:22 01:01:13:16\n"
                   "* LOC: 01:01:11:13 YELLOW  NE0001\n"
                   "002  BL       V     C        00:00:00:00 00:00:01:00 01:01:13:16 01:01:14:16\n"
                   "003  A050C008 V     C        09:42:58:11 09:43:00:04 01:01:14:16 01:01:16:09\n"
                   "* FROM CLIP NAME:  65W-1\n"
                   "* LOC: 01:01:14:00 YELLOW  NE0004\n")
    marks = sorted((m["name"], m["record"]["tc_in"]) for c in clips for m in c["markers"])
    assert marks == [("NE0001", "01:01:11:13"), ("NE0004", "01:01:14:00")]


def test_loc_naming_a_source_timecode_outside_the_cut_stays_in_the_source(tmp_path):
    # a LOC in the clip's source range and nowhere in the cut is a source timecode
    clips = _clips(tmp_path,
                   "001  ACADEMY  V     C        01:00:00:00 01:00:08:00 07:00:00:00 07:00:08:00\n"
                   "* LOC: 01:00:00:12 YELLOW  001_032\n")
    assert [m["record"]["tc_in"] for m in clips[0]["markers"]] == ["07:00:00:12"]


def _by_track(clips: list[dict]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for c in clips:
        out.setdefault(c["channel"], []).append((c["record"]["tc_in"], c["record"]["tc_out"]))
    return out


def test_aud_note_puts_the_event_on_audio_channels_3_and_4(tmp_path):
    # Premiere/Avid: channels 3/4 as "NONE" (or "V") with an "AUD 3 4" / "AUD 4" note; the video track
    # starts at record 00:00:00:00 and must stay there when the audio tracks start later
    clips = _clips(tmp_path,
                   "001  AX       V     C        01:00:00:00 01:00:02:00 00:00:00:00 00:00:02:00\n"
                   "002  AX       V     C        02:00:00:00 02:00:01:00 00:00:02:00 00:00:03:00\n"
                   "AUD  3    4\n"
                   "003  AX       NONE  C        03:00:00:00 03:00:01:00 00:00:03:00 00:00:04:00\n"
                   "AUD       4\n", rate=25)
    tracks = _by_track(clips)
    assert tracks["V"] == [("00:00:00:00", "00:00:02:00"), ("00:00:02:00", "00:00:03:00")]
    assert tracks["A3"] == [("00:00:02:00", "00:00:03:00")]
    assert tracks["A4"] == [("00:00:02:00", "00:00:03:00"), ("00:00:03:00", "00:00:04:00")]


def test_overlapping_video_events_go_onto_higher_video_tracks(tmp_path):
    # a list of a multi-track cut (Final Cut Pro): the second event covers the first's record range
    clips = _clips(tmp_path,
                   "001  AX       V     C        00:59:56:09 01:00:01:09 00:59:50:00 00:59:55:00\n"
                   "* FROM CLIP NAME: slate.png\n"
                   "002  AX       V     C        01:11:17:19 01:11:22:19 00:59:55:00 01:00:00:00\n"
                   "* FROM CLIP NAME: leader.mov\n"
                   "003  AX       V     C        01:11:17:19 01:11:22:19 00:59:55:00 01:00:00:00\n"
                   "* FROM CLIP NAME: leader_top.mov\n"
                   "004  AX       V     C        01:00:06:09 01:00:08:01 01:00:00:00 01:00:01:16\n"
                   "* FROM CLIP NAME: shot.mov\n")
    names = {(c["channel"], c["name"], c["record"]["tc_in"], c["record"]["tc_out"]) for c in clips}
    assert ("V", "leader.mov", "00:59:55:00", "01:00:00:00") in names
    assert ("V2", "leader_top.mov", "00:59:55:00", "01:00:00:00") in names
    assert ("V", "shot.mov", "01:00:00:00", "01:00:01:16") in names
    assert len(clips) == 4


def test_dissolve_halves_split_by_an_fcm_line_and_a_backwards_black_event(tmp_path):
    # Final Cut/Premiere write "FCM:" between a dissolve's two halves; a dissolve onto a clip that sits on
    # another layer is read as a cut at its start. A black event whose record out is before its in, or with
    # no record length but a source range, is left out (with a note)
    loaded, doc = _read(tmp_path, HEAD +
                   "001  AX       V     C        01:00:00:00 01:00:05:00 01:00:00:00 01:00:05:00\n"
                   "* FROM CLIP NAME: a.mov\n"
                   "002  AX       V     C        02:00:00:00 02:00:03:00 01:00:03:00 01:00:06:00\n"
                   "* FROM CLIP NAME: b.mov\n"
                   "003  AX       V     C        02:00:03:00 02:00:03:00 01:00:06:00 01:00:06:00\n"
                   "FCM: NON-DROP FRAME\n"
                   "003  BB       V     D    012 03:00:00:00 03:00:02:00 01:00:06:00 01:00:08:00\n"
                   "EFFECTS NAME IS CROSS DISSOLVE\n"
                   "* FROM CLIP NAME: b.mov\n"
                   "* TO CLIP NAME: c.mov\n"
                   "004  BL       V     C        00:00:00:00 00:00:00:08 01:00:08:00 00:59:50:00\n"
                   "005  BL       V     C        00:00:00:00 00:00:00:07 01:00:08:00 01:00:08:00\n")
    names = {t["id"]: t["name"] for t in doc["tracks"]}
    got = sorted((names[c["track"]], c["record"]["tc_in"], c["record"]["tc_out"], c["source"]["tc_in"])
                 for c in doc["clips"])
    assert got == [("V", "01:00:00:00", "01:00:05:00", "01:00:00:00"),
                   ("V", "01:00:06:00", "01:00:08:00", "03:00:00:00"),
                   ("V2", "01:00:03:00", "01:00:06:00", "02:00:00:00")]
    assert any("event 004" in n and "left out" in n for n in loaded.notes)
    assert any("event 005" in n and "no record length" in n for n in loaded.notes)
    assert any("event 002" in n and "V2" in n for n in loaded.notes)


def test_list_with_header_notes_ending_in_a_dos_eof_mark_and_nul_padding(tmp_path):
    src = tmp_path / "pxy5.edl"
    src.write_bytes((HEAD + "*FCM: DIGITAL TV 24P\r\n\r\n"
                     "001  SC011    V     C        00:00:00:00 00:00:01:21 00:00:00:00 00:00:01:21  \r\n"
                     "* FROM CLIP NAME:  GJ_SC011.MOV\r\n\r\n").encode() + b"\x1a\x1a" + b"\x00" * 300)
    clips = describe_timeline(read_timeline(src, rate=24), check_media=False).to_dict()["clips"]
    assert [(c["record"]["tc_in"], c["record"]["tc_out"]) for c in clips] == [("00:00:00:00", "00:00:01:21")]


def test_two_cut_lines_sharing_an_event_number_are_refused_in_one_clear_line(tmp_path):
    from s2v_toolkit.timeline import TimelineError

    src = tmp_path / "list.edl"
    src.write_text(HEAD + "001  TST V     C        01:00:04:05 01:00:04:14 01:00:00:00 01:00:00:09\n"
                   "001  TST V     C        01:00:04:14 01:00:04:14 01:00:00:09 01:00:00:09\n"
                   "002  TST V     D    010 01:00:08:08 01:00:08:18 01:00:00:09 01:00:00:19\n")
    try:
        read_timeline(src, rate=24)
    except TimelineError as exc:
        assert str(src) in str(exc) and "event 001 is listed twice" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("read a list whose event numbers cannot be paired")


def test_rate_guess_follows_the_largest_frame_number(tmp_path):
    from s2v_toolkit.timeline.formats.edl import guess_edl_rate

    def guess(last_frame: str, fcm: str = "NON-DROP FRAME") -> float:
        src = tmp_path / "r.edl"
        src.write_text(f"TITLE: R\nFCM: {fcm}\n\n"
                       f"001  AX       V     C        00:00:00:00 00:00:01:{last_frame} "
                       f"01:00:00:00 01:00:01:{last_frame}\n")
        return guess_edl_rate(src)[0]

    assert guess("20") == 24.0 and guess("24") == 25.0 and guess("28") == 30000 / 1001
    assert guess("20", "DROP FRAME") == 30000 / 1001
    assert guess("45") == 50.0 and guess("58") == 60000 / 1001 and guess("45", "DROP FRAME") == 60000 / 1001
    # a 50 fps list reads with its frames past 29 where they are
    src = tmp_path / "r.edl"
    src.write_text(HEAD + "001  AX       V     C        00:00:00:00 00:00:01:45 01:00:00:00 01:00:01:45\n")
    (clip,) = describe_timeline(read_timeline(src), check_media=False).to_dict()["clips"]
    assert clip["record"]["duration"]["value"] == 95


def test_frame_number_source_columns_are_not_taken_for_header_lines(tmp_path):
    # a list with source frame numbers instead of timecodes keeps its events (the header filter looks
    # for the first line that starts with an event number, not for four timecodes)
    clips = _clips(tmp_path, "* A HEADER NOTE\n"
                             "001  AX       V     C        1009        1064        00:00:00:00 00:00:02:07\n")
    assert [(c["record"]["tc_in"], c["record"]["tc_out"]) for c in clips] == [("00:00:00:00", "00:00:02:07")]


def test_drop_frame_list_written_with_colons(tmp_path):
    # Avid: FCM: DROP FRAME, timecodes with colons; 01:00:00:00 DF is frame 107892, not 108000. A
    # drop-frame M2 and LOC with ";" (the reader failed on the one and dropped the other)
    _, doc = _read(tmp_path, "TITLE: DF\nFCM: DROP FRAME\n"
               "001  ACC112   V     C        01:49:40:01 01:49:46:18 01:00:00:00 01:00:06:17\n"
               "* LOC: 01:00:01;14 RED     NOTE\n"
               "002  AQ100    V     C        00:02:18:05 00:02:28:10 01:00:06:17 01:00:11:20\n"
               "M2   AQ100          059.6                00:02:18;05\n", 30000 / 1001)
    assert doc["drop_frame"] and doc["global_start"]["value"] == 107892
    a, b = doc["clips"]
    got = (a["record"]["tc_in"], a["record"]["tc_out"], a["source"]["tc_in"])
    assert got == ("01:00:00;00", "01:00:06;17", "01:49:40;01")
    assert [m["record"]["tc_in"] for m in a["markers"]] == ["01:00:01;14"]
    assert (b["media_range"]["tc_in"], b["media_range"]["tc_out"]) == ("00:02:18;05", "00:02:28;10")


def test_semicolon_separated_timecodes_and_a_source_mode_change(tmp_path):
    # Final Cut's EDL-X writes 10;35;42;53 (59.94 DF); an FCM line between events gives the mode of the
    # sources after it (Avid): a non-drop source in a drop-frame list keeps its own digits
    _, doc = _read(tmp_path, "TITLE: X\n* FORMAT: 3840X2160 P 59.94FPS\n   3 DIGITS - REEL NAMES\nFCM: NON-DROP FRAME\n"
               "FCM: DROP FRAME\n"
               "001  116      V     C        10;35;42;53 10;35;51;11 00:00:00:00 00:00:08:18\n"
               "FCM: NON-DROP FRAME\n"
               "002  222      V     C        00:00:29:46 00:00:34:27 00:00:08:18 00:00:12:59\n", 60000 / 1001)
    a, b = doc["clips"]
    got = (a["record"]["tc_in"], a["record"]["tc_out"], a["source"]["tc_in"])
    assert got == ("00:00:00;00", "00:00:08;18", "10:35:42;53")
    got = (b["record"]["tc_in"], b["source"]["tc_in"], b["source"]["tc_out"])
    assert got == ("00:00:08;18", "00:00:29:46", "00:00:34:27")


def test_transition_line_without_an_edit_type_reads_as_a_dissolve(tmp_path):
    # Avid: "005  REEL  V      008 ..." (the dissolve-like effect has no CMX code)
    loaded, doc = _read(tmp_path, HEAD +
                   "004  A        V     C        01:00:00:00 01:00:03:00 01:00:00:00 01:00:03:00\n"
                   "005  A        V     C        01:00:03:00 01:00:03:00 01:00:03:00 01:00:03:00\n"
                   "005  B        V      008 02:00:00:00 02:00:02:00 01:00:03:00 01:00:05:00\n")
    assert [(c["record"]["tc_in"], c["record"]["tc_out"]) for c in doc["clips"]][-1][1] == "01:00:05:00"
    assert len(doc["transitions"]) == 1 and any("no edit type" in n for n in loaded.notes)


def test_m2_source_out_one_frame_past_the_record_length_is_unscaled(tmp_path):
    # an Avid list whose 1.25x events (37.5 fps at 29.97) give a source of record length + 1 frame: the
    # source out is not the source used (16 frames would be); the M2 speed is. In a transition pair the
    # M2 line naming the incoming reel is its speed (the outgoing reel's M2 is listed after it too)
    clips = _clips(tmp_path,
                   "001  EVL1     V     C        00:13:50:05 00:13:50:19 01:00:00:00 01:00:00:13\n"
                   "M2   EVL1           037.5                00:13:50:05\n"
                   "002  EVL1     V     C        00:13:50:19 00:13:50:19 01:00:00:13 01:00:00:13\n"
                   "002  HEIS     V     D    012 00:00:23:01 00:00:23:23 01:00:00:13 01:00:01:00\n"
                   "M2   EVL1           037.5                00:13:50:19\n"
                   "M2   HEIS           058.0                00:00:23:01\n", rate=30000 / 1001)
    speeds = sorted(round(c["speed"], 4) for c in clips)
    assert speeds == [round(37.5 / (30000 / 1001), 4), round(58.0 / (30000 / 1001), 4)]


@pytest.mark.parametrize("fcm,sep", [("NON-DROP FRAME", ":"), ("DROP FRAME", ";")])
def test_render_list_of_a_2997_list_keeps_its_frame_code_mode(tmp_path, fcm, sep):
    # the EDL writer spelled every 29.97 timecode drop-frame: a non-drop list got a render list whose
    # record timecodes named other frames than the clip it replaces (01:08:05:11 written 01:08:09;15)
    src = tmp_path / "ntsc.edl"
    src.write_text(f"TITLE: NTSC\nFCM: {fcm}\n\n"
                   "001  A001     V     C        10:00:00:00 10:00:02:00 01:08:03:11 01:08:05:11\n"
                   "002  A002     V     C        11:00:05:10 11:00:07:08 01:08:05:11 01:08:07:09\n")
    loaded = read_timeline(src, rate=30000 / 1001)
    desc = describe_timeline(loaded, check_media=False)
    shot = desc.clips[1]
    conform(loaded, [RenderResult(str(tmp_path / "a.mov"), clip_id=shot.id)], tmp_path / "out")
    out = (tmp_path / "out" / "ntsc.s2v_v001.edl").read_text()
    assert f"FCM: {fcm}" in out.splitlines()[:3]
    events = re.findall(rf"^\d+\s+\S+\s+V\s+C\s+\S+\s+\S+\s+({TC_ANY})\s+({TC_ANY})", out, re.M)
    assert events == [(f"01:08:05{sep}11", f"01:08:07{sep}09")]


def test_none_channel_without_an_aud_note_records_nothing(tmp_path):
    # Final Cut / Premiere repeat a dissolve on channel NONE: no channel, so no track "NONE" above V
    loaded, doc = _read(tmp_path, HEAD +
                   "001  AX       V     C        01:00:00:00 01:00:02:00 01:00:00:00 01:00:02:00\n"
                   "002  AX       V     C        02:00:00:00 02:00:02:00 01:00:02:00 01:00:04:00\n"
                   "003  AX       NONE  C        02:00:00:00 02:00:02:00 01:00:02:00 01:00:04:00\n"
                   "* FROM CLIP NAME: b.mov\n", rate=25)
    assert [t["name"] for t in doc["tracks"]] == ["V"] and len(doc["clips"]) == 2
    assert any("channel NONE" in n for n in loaded.notes)


def test_split_edit_reads_picture_and_sound_at_their_own_record_ins(tmp_path):
    # "SPLIT: AUDIO DELAY" before two lines of event 002: the reader took them for a transition and failed
    loaded, doc = _read(tmp_path, HEAD +
                   "001  AX       V     C        01:00:00:00 01:00:05:00 01:00:00:00 01:00:05:00\n"
                   "* FROM CLIP NAME: a.mov\n"
                   "SPLIT:    AUDIO DELAY=  00:00:00:12\n"
                   "002  BX       AA    C        02:00:00:00 02:00:04:00 01:00:05:00 01:00:09:00\n"
                   "002  BX       V     C        02:00:00:00 02:00:03:13 01:00:05:12 01:00:09:00\n"
                   "* FROM CLIP NAME: b.mov\n", rate=25)
    clips = doc["clips"]
    got = sorted((c["kind"], c["name"], c["record"]["tc_in"], c["record"]["tc_out"]) for c in clips)
    assert got == [("audio", "b.mov", "01:00:05:00", "01:00:09:00"), ("audio", "b.mov", "01:00:05:00", "01:00:09:00"),
                   ("video", "a.mov", "01:00:00:00", "01:00:05:00"), ("video", "b.mov", "01:00:05:12", "01:00:09:00")]
    assert any("split edit" in n for n in loaded.notes)


def test_colour_notes_without_numbers_do_not_refuse_the_list(tmp_path):
    loaded, doc = _read(tmp_path, HEAD +
                   "000001 this_is_tape    V     C        05:35:12:04 05:36:55:00 01:00:00:00 01:01:42:20\n"
                   "*FROM CLIP NAME: 053_CSC_0750\n*ASC_SOP: asop1\n*ASC_SAT: asat1\n"
                   "000002 this_tape_tw    V     C        05:25:06:15 05:25:37:16 01:01:42:20 01:02:13:21\n"
                   "*ASC_SOP (1.0311 1.0382 1.0168)(0.0000 -0.0073 -0.0081)(1.1583 1.1602 1.0602)\n*ASC_SAT 1.1136\n")
    clips = doc["clips"]
    assert [(c["record"]["tc_in"], c["record"]["tc_out"]) for c in clips] == [
        ("01:00:00:00", "01:01:42:20"), ("01:01:42:20", "01:02:13:21")]
    assert any("2 ASC_SOP/ASC_SAT" in n for n in loaded.notes)   # the numeric pair is kept
