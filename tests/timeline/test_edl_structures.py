"""EDL structures real NLE exports use, each in a small list built here: M2 speed events whose source
out is scaled (Avid) or not (Resolve), channels 3/4 given by AUD lines, events that overlap on one
channel."""

from __future__ import annotations

from s2v_toolkit.timeline import describe_timeline, read_timeline

HEAD = "TITLE: SPEEDS\nFCM: NON-DROP FRAME\n\n"


def _clips(tmp_path, body: str, rate: float = 24) -> list[dict]:
    src = tmp_path / "list.edl"
    src.write_text(HEAD + body)
    return describe_timeline(read_timeline(src, rate=rate), check_media=False).to_dict()["clips"]


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
