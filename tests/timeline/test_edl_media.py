"""An EDL's media: the list holds no file references, only names (``* SOURCE FILE:`` of Avid and Resolve,
``* FROM CLIP NAME:``, the reel), and its source timecodes count from each file's own start: a camera
file's start timecode, or a sound recorder's BWF time reference (samples since midnight). Before, every
EDL clip was "offline in the editor's project" whatever --search said, and a WAV's source range was read
from 0 (silence)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from media_factory import mux_pcm
from s2v_toolkit.media import probe, write_video
from s2v_toolkit.timeline import describe_timeline, extract_dialogue, read_timeline
from s2v_toolkit.timeline.media_access import probe_facts

RATE = 25
HOUR_16 = 16 * 3600  # a recorder's time of day: 16:00:00:00


def _bwf(path, seconds: float, time_reference: int | None, click_at: float | None = None, sr: int = 48000):
    """A mono WAV with a bext chunk carrying ``time_reference`` (samples since midnight), a click at
    ``click_at`` seconds into the file."""
    pcm = np.zeros(int(seconds * sr), np.int16)
    if click_at is not None:
        pcm[int(round(click_at * sr))] = 30000
    options = {"write_bext": "1"} if time_reference is not None else {}
    with av.open(str(path), "w", options=options) as c:
        if time_reference is not None:
            c.metadata["time_reference"] = str(time_reference)
        mux_pcm(c, c.add_stream("pcm_s16le", rate=sr, layout="mono"), pcm, sr)
    return path


def _edl(path, events: str):
    path.write_text("TITLE: MEDIA NAMES\nFCM: NON-DROP FRAME\n\n" + events)
    return path


def _describe(edl, search=()):
    return describe_timeline(read_timeline(edl, rate=RATE), search_dirs=tuple(search))


def test_probe_reads_the_bwf_time_reference(tmp_path):
    info = probe(_bwf(tmp_path / "take.wav", 1.0, HOUR_16 * 48000))
    assert info.time_reference == HOUR_16 * 48000 and info.start_seconds == HOUR_16
    assert "16:00:00.000000 time of day" in info.summary()
    plain = probe(_bwf(tmp_path / "plain.wav", 1.0, None))
    assert plain.time_reference is None and plain.start_seconds == 0


def test_edl_sound_clip_reads_its_bwf_file_from_the_time_reference(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    # the recorder's file starts at 16:00:00:00; a click 6.2 s in, i.e. at 16:00:06:05
    _bwf(media / "T012_SC4_TK2.wav", 20.0, HOUR_16 * 48000, click_at=6.2)
    edl = _edl(tmp_path / "cut.edl",
               "001  SC4TK2   A     C        16:00:05:00 16:00:10:00 01:00:00:00 01:00:05:00\n"
               "* FROM CLIP NAME:  SC4-2 BOOM\n"
               "* SOURCE FILE: T012_SC4_TK2\n")
    before = _describe(edl)
    (clip,) = before.clips
    assert clip.media.status == "missing"  # not in the timeline's folder: said with the names it looked for
    assert "'T012_SC4_TK2', 'SC4-2 BOOM', 'SC4TK2'" in clip.media.problems[0]
    assert "--search" in clip.media.problems[0]
    desc = _describe(edl, [media])
    (clip,) = desc.clips
    assert clip.media.status == "ok" and clip.media.path == str(media / "T012_SC4_TK2.wav")
    assert clip.media.found_by == "named 'T012_SC4_TK2'" and not clip.media.problems
    (track,) = extract_dialogue(desc, ["A1"])
    assert not track.problems
    peak = int(np.argmax(np.abs(track.signal)))
    assert abs(peak - int(1.2 * track.sample_rate)) <= 1  # 16:00:06:05 is 1.2 s into the cut


def test_edl_sound_clip_on_a_file_without_its_timecode_is_said_not_silent(tmp_path):
    _bwf(tmp_path / "boom.wav", 20.0, None)  # a WAV that lost its bext chunk
    edl = _edl(tmp_path / "cut.edl",
               "001  BOOM     A     C        16:00:05:00 16:00:10:00 01:00:00:00 01:00:05:00\n"
               "* FROM CLIP NAME:  boom.wav\n")
    desc = _describe(edl)
    (clip,) = desc.clips
    assert clip.media.status == "ok" and clip.media.found_by == "named 'boom.wav'"
    want = ("needs 16:00:05.000-16:00:10.000, the file holds 00:00:00.000-00:00:20.000 "
            "(it has none of that range")
    assert any(want in p for p in clip.media.problems), clip.media.problems
    (track,) = extract_dialogue(desc, ["A1"])
    assert any(want in p for p in track.problems), track.problems


def test_a_stem_finds_picture_for_a_video_event_and_sound_for_an_audio_event(tmp_path):
    media = tmp_path / "media"
    (media / "sound").mkdir(parents=True)
    (media / "picture").mkdir()
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    write_video(media / "picture" / "A054C002.mov", frames, RATE, preset="h264", start_timecode="10:00:00:00")
    _bwf(media / "sound" / "A054C002.wav", 2.0, 10 * 3600 * 48000)
    (media / "A054C002.xml").write_text("<not media/>")  # a sidecar of the same name is never taken
    edl = _edl(tmp_path / "cut.edl",
               "001  SR005    V     C        10:00:00:00 10:00:00:04 01:00:00:00 01:00:00:04\n"
               "* SOURCE FILE: A054C002\n"
               "002  SR005    A     C        10:00:00:00 10:00:00:04 01:00:00:00 01:00:00:04\n"
               "* SOURCE FILE: A054C002\n")
    desc = _describe(edl, [media])
    by_kind = {c.kind: c for c in desc.clips}
    assert by_kind["video"].media.path == str(media / "picture" / "A054C002.mov")
    assert by_kind["audio"].media.path == str(media / "sound" / "A054C002.wav")
    assert all(not c.media.problems for c in desc.clips)


def test_black_and_auxiliary_reels_name_no_file(tmp_path):
    (tmp_path / "BL.mov").write_bytes(b"")  # would be taken if a reel "BL" named a file
    edl = _edl(tmp_path / "cut.edl",
               "001  BL       V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00\n"
               "002  AX       V     C        01:00:04:05 01:00:05:12 01:00:01:00 01:00:02:07\n"
               "* FROM CLIP NAME:  ZZ100_501.take_1.0001.exr\n")
    desc = _describe(edl)
    named = [c for c in desc.clips if c.media.status != "generator"]
    assert named and all(c.media.status != "ok" for c in named)
    assert all("'BL'" not in p and "'AX'" not in p for c in named for p in c.media.problems)


def test_video_event_with_the_camera_files_timecode(tmp_path):
    """A picture file named by its clip name, its source timecodes counted from its start timecode."""
    fps = Fraction(RATE)
    write_video(tmp_path / "1-2B.mov", np.zeros((50, 32, 32, 3), np.uint8), fps, preset="h264",
                start_timecode="19:11:54:00")
    edl = _edl(tmp_path / "cut.edl",
               "001  SR018    V     C        19:11:54:10 19:11:55:10 01:00:00:00 01:00:01:00\n"
               "* FROM CLIP NAME:  1-2B\n"
               "002  SR018    V     C        19:11:55:10 19:11:57:10 01:00:01:00 01:00:03:00\n"
               "* FROM CLIP NAME:  1-2B\n")
    first, second = _describe(edl).clips
    assert first.media.status == second.media.status == "ok" and not first.media.problems
    assert any("needs 19:11:55.400-19:11:57.400, the file holds 19:11:54.000-19:11:56.000 (it has 30% of"
               in p for p in second.media.problems), second.media.problems


def test_media_delivered_beside_the_timeline_is_found_without_search_folders(tmp_path):
    """An AAF or XML written on the editor's machine names its media by that machine's paths
    (``C:/Users/...``); delivered with the timeline, the media sits beside it, in a folder under it, or in
    a folder beside the timeline's folder (project/aaf + project/media). The path's tail finds it there."""
    import opentimelineio as otio

    project = tmp_path / "project"
    (project / "aaf" / "audio").mkdir(parents=True)
    (project / "media").mkdir()
    for path in (project / "aaf" / "beside.wav", project / "aaf" / "audio" / "under.wav",
                 project / "media" / "sibling.wav"):
        _bwf(path, 0.5, None)
    tl = otio.schema.Timeline("cut")
    track = otio.schema.Track("A1", kind=otio.schema.TrackKind.Audio)
    for url in ("file:///C%3A/Users/editor/Desktop/Job/beside.wav",
                "file:///C%3A/Users/editor/Desktop/Job/audio/under.wav",
                "file:///C%3A/Users/editor/Desktop/Job/media/sibling.wav",
                "file:///C%3A/Users/editor/Desktop/Job/elsewhere/gone.wav"):
        track.append(otio.schema.Clip(url.rsplit("/", 1)[-1], media_reference=otio.schema.ExternalReference(url),
                                      source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, 25),
                                                                           otio.opentime.RationalTime(10, 25))))
    tl.tracks.append(track)
    cut = project / "aaf" / "cut.otio"
    otio.adapters.write_to_file(tl, str(cut))
    clips = describe_timeline(read_timeline(cut)).clips
    assert [c.media.path for c in clips[:3]] == [str(project / "aaf" / "beside.wav"),
                                                 str(project / "aaf" / "audio" / "under.wav"),
                                                 str(project / "media" / "sibling.wav")]
    assert {c.media.found_by for c in clips[:3]} == {"beside the timeline"}
    assert clips[3].media.status == "missing"  # a bare name is not looked for outside the timeline's folder


def test_tags_in_another_encoding_do_not_stop_a_read(tmp_path):
    """Pro Tools writes its bext description in Mac Roman: PyAV raised UnicodeDecodeError opening the file
    (a traceback from `s2vt probe`, and the clip's audio never read)."""
    path = _bwf(tmp_path / "pt.wav", 0.5, 48000, click_at=0.1)
    data = bytearray(path.read_bytes())
    at = data.find(b"bext") + 8  # the description field opens the bext chunk
    data[at:at + 12] = "dTAPE=Pro T".encode() + b"\xa0"
    path.write_bytes(bytes(data))
    info = probe(path)
    assert info.time_reference == 48000 and info.audio[0].sample_rate == 48000


def _sound_mxf(path, seconds: float, timecode: str, click_at: float, sr: int = 48000):
    """A sound-only OP-Atom MXF as Avid keeps its media: one mono PCM track, the material package's start
    timecode ``timecode`` (a frame count whose rate the file states only in its timecode track)."""
    pcm = np.zeros(int(seconds * sr), np.int16)
    pcm[int(round(click_at * sr))] = 30000
    with av.open(str(path), "w", format="mxf_opatom") as c:
        c.metadata["timecode"] = timecode
        mux_pcm(c, c.add_stream("pcm_s16le", rate=sr, layout="mono"), pcm, sr)
    return path


def test_edl_sound_clip_on_a_sound_only_mxf_counts_from_its_start_timecode(tmp_path):
    """Source timecodes of a sound event count from the file's start timecode, read at the list's rate
    (before, a sound-only file's timecode was not read: the range lay an hour past the file's end)."""
    _sound_mxf(tmp_path / "DIAL_A03.mxf", 10.0, "01:00:00:00", click_at=2.2)
    info = probe(tmp_path / "DIAL_A03.mxf")
    assert info.video is None and info.audio_timecode == "01:00:00:00"
    facts = probe_facts(tmp_path / "DIAL_A03.mxf")
    assert facts.origin_at(25.0) == 3600 and facts.origin_at(24000 / 1001) == Fraction(86400 * 1001, 24000)
    assert facts.origin_at(None) == 0
    assert "start timecode: 01:00:00:00 (sound only" in info.summary()
    events = ("001  DIALA03  A     C        01:00:02:00 01:00:04:00 10:00:00:00 10:00:02:00\n"
              "* SOURCE FILE: DIAL_A03\n")
    for rate, into_file in ((25, Fraction(2)), ("23.976", Fraction(48, 1))):
        edl = _edl(tmp_path / "cut.edl", events)
        desc = describe_timeline(read_timeline(edl, rate=rate))
        (clip,) = desc.clips
        assert clip.media.status == "ok" and not clip.media.problems, clip.media.problems
        (track,) = extract_dialogue(desc, ["A1"])
        assert not track.problems
        fps = desc.rate_fraction
        # 01:00:02:00 is 2 s (25 fps) or 48 frames of 24000/1001 into the file; the click sits 2.2 s in
        offset = into_file if rate == 25 else into_file / fps
        peak = int(np.argmax(np.abs(track.signal)))
        assert abs(peak - int(round((Fraction(11, 5) - offset) * track.sample_rate))) <= 1, (rate, peak)
