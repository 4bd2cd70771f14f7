"""Frames by presentation time: VFR, jitter, edit lists, AVI without timestamps, HEVC, damaged packets.

Every file is made here with frames stamped with their own index (``media_factory.stamped_frame``), so a
frame that is lost, shifted or invented shows up as a wrong stamp. Expected values come from the
timestamps the test wrote, never from the reader.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from fractions import Fraction

import av
import numpy as np
import pytest

from s2v_toolkit.errors import MediaError, MediaWarning
from s2v_toolkit.media import VideoReader, convert_report, probe, read_audio, read_frames, write_video

from media_factory import decode_stamp, encode_video, shown_on_grid, stamped_frame

W, H = 192, 108


def _write(path, times, stamps, codec="libx264", rate=30, time_base=Fraction(1, 90000), options=None,
           pix_fmt="yuv420p", container_options=None):
    """Encode frames stamped ``stamps[i]`` at presentation times ``times[i]`` (seconds) with PyAV."""
    with av.open(str(path), "w", options=container_options or {}) as c:
        s = c.add_stream(codec, rate=rate, options=options or {})
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        s.time_base = time_base
        s.codec_context.time_base = time_base
        for t, n in sorted(zip(times, stamps)):
            f = av.VideoFrame.from_ndarray(stamped_frame(n, W, H), format="rgb24")
            f.pts, f.time_base = round(Fraction(t) / time_base), time_base
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _stamps(frames) -> list[int]:
    return [decode_stamp(f) for f in frames]


def _expected_grid(times, stamps, fps, n):
    """The stamp each grid frame must show (the rule written out in media_factory.shown_on_grid)."""
    return [stamps[k] for k in shown_on_grid(times, fps, n)]


def test_vfr_with_dropped_frames_and_jitter_is_placed_by_time(tmp_path):
    fps = Fraction(30)
    rng = np.random.default_rng(4)
    missing = {10, 11, 20, 37}  # a phone dropping frames
    nominal = [k for k in range(60) if k not in missing]
    # +-4 ms jitter: more than a tenth of a frame, far less than half
    times = [Fraction(k, 30) + Fraction(int(rng.integers(-4, 5)), 1000) * (k > 0) for k in nominal]
    path = _write(tmp_path / "phone.mp4", times, nominal, options={"bf": "2"})
    v = probe(path).video
    assert v.fps == fps and v.vfr and not v.timestamps_regular
    assert v.source_frames == len(nominal) and v.frame_count == 60
    assert (v.duplicated, v.dropped) == (len(missing), 0)
    assert 0.1 < v.max_jitter <= 0.13
    expected = _expected_grid(times, nominal, fps, 60)
    with pytest.warns(MediaWarning, match=r"phone.mp4: variable frame rate.*convert --cfr"):
        r = VideoReader(path)
    with r:
        frames, fmap = r.read_mapped(0, 60)
        assert _stamps(frames) == expected
        assert frames.reshape(60, -1).max(axis=1).min() > 0  # never a black frame
        assert fmap.indexes("duplicated") == sorted(missing)
        assert all(k in ("exact", "duplicated") for k in fmap.kinds)
        # seeks anywhere, in any order, return the frame asked for
        for start in (37, 3, 50, 11, 20, 59, 0):
            assert _stamps(r.read(start, 1)) == [expected[start]], start
        assert _stamps(r.read(9, 4)) == expected[9:13]  # a read across a gap
    assert _stamps(read_frames(path, 55, 5)) == expected[55:]


def test_frames_one_by_one_equal_read_and_never_share_memory(tmp_path):
    # VideoReader.frames gives each grid frame as its own array (no stacked block): the same pictures and
    # frame map as read_mapped, and a caller drawing into one frame (compositing does) changes neither a
    # duplicate of it, nor the next chunk's first frame, nor a later read of the same frame
    missing = {4, 5, 16, 17}  # duplicated grid frames, two of them across the chunk boundaries below
    nominal = [k for k in range(30) if k not in missing]
    times = [Fraction(k, 30) for k in nominal]
    path = _write(tmp_path / "vfr.mp4", times, nominal, options={"bf": "2"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediaWarning)
        expected, expected_map = VideoReader(path).read_mapped(2, 25)
        with VideoReader(path) as r:
            got = []
            for frame in r.frames(2, 25, chunk=4):  # chunks end on duplicated frames 5 and 17
                got.append(frame.copy())
                frame[:] = 0  # the caller draws over what it was given
            assert r.frame_map.kinds == expected_map.kinds and r.frame_map.source == expected_map.source
            assert [f.shape for f in got] == [f.shape for f in expected]
            assert all(np.array_equal(a, b) for a, b in zip(got, expected))
            assert _stamps(got) == _stamps(expected)
            assert _stamps(r.read(26, 1)) == _stamps(expected[-1:])  # the decoder's held frame was not drawn on
        with VideoReader(path) as r:
            frames = list(r.frames(0, 30, chunk=7))
        assert len({id(f) for f in frames}) == 30
        assert not any(np.shares_memory(a, b) for i, a in enumerate(frames) for b in frames[i + 1:])
        assert _stamps(frames) == _stamps(read_frames(path, 0, 30))


def test_burst_frames_are_dropped_explicitly_and_convert_cfr_reports_counts(tmp_path):
    fps = Fraction(25)
    times = [Fraction(k, 25) for k in range(40)] + [Fraction(k, 25) + Fraction(4, 10) / 25 for k in (7, 21)]
    stamps = list(range(40)) + [1007, 1021]  # two extra frames squeezed in after frames 7 and 21
    path = _write(tmp_path / "burst.mkv", times, stamps, codec="ffv1", pix_fmt="yuv444p", rate=25,
                  time_base=Fraction(1, 1000))
    v = probe(path).video
    assert v.fps == fps and v.vfr and (v.frame_count, v.source_frames, v.dropped) == (40, 42, 2)
    with pytest.warns(MediaWarning, match="variable frame rate"), VideoReader(path) as r:
        frames, fmap = r.read_mapped(0, 40)
    assert _stamps(frames) == list(range(40))  # the nearer frame keeps its slot
    assert len(fmap.dropped) == 2
    # no conversion without asking: a clear one-line refusal naming the file and --cfr
    with pytest.raises(MediaError, match=r"burst.mkv: has a variable frame rate.*s2vt convert --cfr") as e:
        convert_report(path, tmp_path / "no.mkv")
    assert "\n" not in str(e.value) and not (tmp_path / "no.mkv").exists()
    rep = convert_report(path, tmp_path / "cfr.mkv", cfr=True)
    assert (rep.frames, len(rep.dropped), len(rep.duplicated)) == (40, 2, 0)
    out = probe(tmp_path / "cfr.mkv").video
    assert not out.vfr and out.frame_count == 40
    assert _stamps(read_frames(tmp_path / "cfr.mkv", 0, 40)) == list(range(40))
    # at a chosen rate (50 fps) the squeezed-in frames get slots of their own, the others repeat
    rep = convert_report(path, tmp_path / "cfr50.mkv", rate="50")
    assert rep.fps == 50 and rep.frames == 80 and not rep.dropped and len(rep.duplicated) == 38
    assert _stamps(read_frames(tmp_path / "cfr50.mkv", 0, 80)) == _expected_grid(times, stamps, Fraction(50), 80)


def test_edit_list_hides_leading_frames_and_the_file_is_not_corrupt(tmp_path):
    # Frames stamped at negative times: the MP4 muxer writes an edit list that starts at time 0,
    # so the first three frames are decoded (as references) but never displayed.
    times = [Fraction(k - 3, 24) for k in range(30)]
    path = _write(tmp_path / "edit.mp4", times, list(range(30)), rate=24, time_base=Fraction(1, 12288),
                  options={"bf": "0"})
    with av.open(str(path)) as c:
        declared = c.streams.video[0].frames
        discarded = sum(p.is_discard for p in c.demux(c.streams.video[0]) if p.size)
    assert declared == 30 and discarded == 3
    v = probe(path).video
    assert v.edit_list and v.discarded_packets == 3 and v.declared_frames == 30
    assert v.frame_count == v.source_frames == 27 and not v.vfr
    assert "edit list" in probe(path).summary()
    frames = read_frames(path, 0, 27)  # to the very last frame: no "corrupt or truncated"
    assert _stamps(frames) == list(range(3, 30))
    assert _stamps(read_frames(path, 20, 2)) == [23, 24]


def test_start_offset_is_reported_and_frame_zero_is_the_first_shown(tmp_path):
    times = [Fraction(1, 2) + Fraction(k, 25) for k in range(20)]
    path = _write(tmp_path / "late.mkv", times, list(range(20)), codec="ffv1", pix_fmt="yuv444p", rate=25,
                  time_base=Fraction(1, 1000))
    v = probe(path).video
    assert v.start_time == pytest.approx(0.5) and v.frame_count == 20 and not v.vfr
    assert _stamps(read_frames(path, 0, 3)) == [0, 1, 2]


def _write_avi(path, codec: str, options: dict, n: int):
    """``n`` frames stamped 0.. at 25 fps in AVI (no presentation times: the muxer keeps packet order)."""
    return encode_video(path, (stamped_frame(i, W, H) for i in range(n)), codec, options=options)


def test_mpeg4_avi_with_b_frames_seeks_to_the_frame_asked_for(tmp_path):
    path = _write_avi(tmp_path / "anim.avi", "mpeg4", {"bf": "2", "g": "12"}, 130)
    v = probe(path).video
    assert (v.frame_count, v.fps, v.vfr) == (130, 25, False)
    with VideoReader(path) as r:
        assert _stamps(r.read(0, 3)) == [0, 1, 2]
        assert _stamps(r.read(100, 5)) == [100, 101, 102, 103, 104]
        assert _stamps(r.read(57, 2)) == [57, 58]
        assert _stamps(r.read(129, 1)) == [129]
    out = tmp_path / "png"
    run = subprocess.run([sys.executable, "-m", "s2v_toolkit", "frames", str(path), "--start", "100", "--count", "2",
                          "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import cv2

    png = cv2.cvtColor(cv2.imread(str(out / "anim_000101.png")), cv2.COLOR_BGR2RGB)
    assert decode_stamp(png) == 101


def test_hevc_with_variable_timestamps(tmp_path):
    if "libx265" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx265 encoder")
    # 30 fps, then a cut to 24 fps material (as a phone edit does): the grid is 30 fps
    times = [Fraction(k, 30) for k in range(30)] + [1 + Fraction(k, 24) for k in range(24)]
    stamps = list(range(54))
    path = _write(tmp_path / "hevc.mov", times, stamps, codec="libx265", time_base=Fraction(1, 15360),
                  options={"x265-params": "log-level=none:bframes=2:keyint=20"})
    v = probe(path).video
    assert v.codec == "hevc" and v.fps == 30 and v.vfr
    assert v.frame_count == 60 and v.source_frames == 54 and v.duplicated == 6
    expected = _expected_grid(times, stamps, Fraction(30), 60)
    with pytest.warns(MediaWarning, match="variable frame rate"), VideoReader(path) as r:
        assert _stamps(r.read(0, 60)) == expected
        assert _stamps(r.read(41, 7)) == expected[41:48]


def _corrupt(path, stream_type, packet_number, dst):
    with av.open(str(path)) as c:
        s = c.streams.video[0] if stream_type == "video" else c.streams.audio[0]
        packets = [(p.pos, p.size, p.pts) for p in c.demux(s) if p.size]
    data = bytearray(path.read_bytes())
    pos, size, pts = packets[packet_number]
    data[pos:pos + size] = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def test_corrupt_video_packet_loses_only_its_frame_with_a_warning(tmp_path):
    path = _write(tmp_path / "intra.mov", [Fraction(k, 25) for k in range(30)], list(range(30)), codec="mjpeg",
                  pix_fmt="yuvj420p", rate=25, time_base=Fraction(1, 25))
    bad = _corrupt(path, "video", 12, tmp_path / "bad.mov")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with VideoReader(bad) as r:
            frames, fmap = r.read_mapped(0, 30)
    stamps = _stamps(frames)
    assert stamps[:12] == list(range(12)) and stamps[13:] == list(range(13, 30))
    assert stamps[12] in (11, 13)  # the nearest good frame, said so
    assert fmap.indexes("substituted") == [12]
    msgs = [str(w.message) for w in caught if issubclass(w.category, MediaWarning)]
    assert any("bad.mov" in m and "0.480-0.520 s" in m for m in msgs), msgs


def test_corrupt_inter_frame_marks_what_follows_until_the_next_keyframe(tmp_path):
    path = _write(tmp_path / "gop.mp4", [Fraction(k, 25) for k in range(40)], list(range(40)), rate=25,
                  options={"g": "10", "bf": "0"})
    bad = _corrupt(path, "video", 13, tmp_path / "bad.mp4")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with VideoReader(bad) as r:
            frames, fmap = r.read_mapped(0, 40)
    stamps = _stamps(frames)
    for i, (s, kind) in enumerate(zip(stamps, fmap.kinds)):
        assert s == i or kind in ("substituted", "degraded"), (i, s, kind)  # a wrong frame is never silent
    assert stamps[:13] == list(range(13)) and stamps[20:] == list(range(20, 40))  # the next GOP is clean
    assert fmap.kinds[13] == "substituted"


def test_corrupt_audio_packet_at_the_start_loses_only_its_range(tmp_path):
    rate = 48000
    t = np.arange(rate * 2) / rate
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = write_video(tmp_path / "a.mp4", [stamped_frame(k, W, H) for k in range(50)], 25, audio=sine,
                       audio_rate=rate)
    with av.open(str(path)) as c:
        first_shown = next(i for i, p in enumerate(c.demux(c.streams.audio[0])) if p.size and p.pts >= 0)
    bad = _corrupt(path, "audio", first_shown, tmp_path / "bad.mp4")
    clean = read_audio(path, sample_rate=rate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = read_audio(bad, sample_rate=rate)
    msgs = [str(w.message) for w in caught if issubclass(w.category, MediaWarning)]
    assert len(msgs) == 1 and "bad.mp4" in msgs[0] and "0.000-0.021 s" in msgs[0], msgs
    assert len(got) == len(clean)
    # beyond the lost packet (and the AAC overlap window after it) the audio is in place and intact
    # (to the decoder's noise-substitution randomness, which depends on how many frames it has decoded)
    assert np.abs(got[3 * 1024:] - clean[3 * 1024:]).max() < 2e-3
    assert np.abs(got[:1024]).max() < 1e-6  # the lost range reads as silence, not noise
    # and the diarizer reads the file (it refused the whole file before), saying what was lost
    run = subprocess.run([sys.executable, "-m", "s2v_toolkit", "diarize", str(bad), "--no-progress", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "s2vt: warning:" in run.stderr and "0.000-0.021 s" in run.stderr


def test_cli_reports_vfr_in_probe_and_frames(tmp_path):
    times = [Fraction(k, 30) for k in range(20) if k not in (5, 6)]
    path = _write(tmp_path / "v.mp4", times, [k for k in range(20) if k not in (5, 6)])
    run = subprocess.run([sys.executable, "-m", "s2v_toolkit", "probe", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert "VFR" in run.stdout and "2 frame(s) duplicated" in run.stdout and "convert --cfr" in run.stdout
    run = subprocess.run([sys.executable, "-m", "s2v_toolkit", "frames", str(path), "--start", "4", "--count", "4",
                          "-o", str(tmp_path / "png")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "5-6 repeat the previous source frame" in run.stdout, run.stdout


def test_edit_list_whose_first_shown_frames_are_b_frames_reads_from_the_first_packet(tmp_path):
    # B-frames, and the first three frames before the edit list's start (negative times): the first frames
    # shown are B-frames that need the hidden keyframe. A seek to time 0 lands on the next keyframe, past
    # it; the reader must decode from the file's first packet (a real Android test file did this)
    # open GOPs of I B B (decode order I0 I3 B1 B2 I6 B4 B5 ...), the first frame before the edit
    times = [Fraction(k - 1, 24) for k in range(40)]
    path = _write(tmp_path / "bedit.mp4", times, list(range(40)), rate=24, time_base=Fraction(1, 12288),
                  options={"x264-params": "keyint=3:min-keyint=3:bframes=2:b-adapt=0:open-gop=1:scenecut=0"})
    v = probe(path).video
    assert v.edit_list and v.frame_count == 39
    with VideoReader(path) as r:
        assert _stamps(r.read(0, 4)) == [1, 2, 3, 4]
        assert _stamps(r.read(30, 2)) == [31, 32]
        assert _stamps(r.read(0, 2)) == [1, 2]  # back to the start after a read further on


def test_a_seek_the_demuxer_refuses_decodes_from_the_first_packet(tmp_path):
    # an MP4 whose edit list starts mid-GOP refused a backward seek with EPERM (a raw PyAV error reached the
    # user); the reader then decodes from the first packet
    times = [Fraction(k, 25) for k in range(30)]
    path = _write(tmp_path / "plain.mp4", times, list(range(30)), rate=25)
    with VideoReader(path) as r:
        def refuse(*a, **k):
            raise av.error.PermissionError(1, "Operation not permitted")

        real = r._container

        class Refusing:
            def __getattr__(self, name):
                return getattr(real, name)

            def seek(self, *a, **k):
                refuse()

        r._container = Refusing()
        assert _stamps(r.read(20, 3)) == [20, 21, 22]


def test_h264_avi_with_b_frames_reads_in_display_order(tmp_path):
    # AVI has no presentation times: the demuxer stamps packets in decode order, and with B-frames the
    # decoder's frames come out in display order carrying those stamps. Read by their stamps, frames were
    # shuffled (a real MediaArea test file); they are numbered by the order they come out
    path = _write_avi(tmp_path / "bframes.avi", "libx264", {"bf": "2", "g": "10"}, 40)
    v = probe(path).video
    assert v.frame_count == 40
    with VideoReader(path) as r:
        assert _stamps(r.read(0, 40)) == list(range(40))
        assert _stamps(r.read(17, 3)) == [17, 18, 19]  # a read back from the middle
        assert _stamps(r.read(5, 2)) == [5, 6]


def test_vp9_packets_that_show_no_frame_are_not_source_frames():
    from s2v_toolkit.media.frame_index import packet_shows_frame

    shown, hidden = bytes([0x82, 0, 0]), bytes([0x80, 0, 0])  # frame marker 10, profile 0; show_frame bit 1 / 0
    assert packet_shows_frame("vp9", shown) and not packet_shows_frame("vp9", hidden)
    assert packet_shows_frame("vp9", bytes([0x88, 0]))  # show_existing_frame: displays a stored frame
    assert not packet_shows_frame("vp9", bytes([0xB2, 0]))  # profile 3 (a reserved bit more): show_frame 0
    assert packet_shows_frame("vp9", bytes([0xB1, 0]))  # profile 3: show_frame 1

    def superframe(*frames):
        marker = 0xC0 | (len(frames) - 1)  # one byte per frame size
        return b"".join(frames) + bytes([marker, *[len(f) for f in frames], marker])

    assert packet_shows_frame("vp9", superframe(hidden, shown))  # an alternate reference, then the shown frame
    assert not packet_shows_frame("vp9", superframe(hidden, hidden))
    assert packet_shows_frame("vp8", bytes([0x10, 0, 0])) and not packet_shows_frame("vp8", bytes([0x00, 0, 0]))
    assert packet_shows_frame("h264", bytes([0x00]))  # other codecs: every packet is a frame


def test_stream_starting_on_an_open_gop_reads_from_its_first_decodable_frame(tmp_path):
    """A transport stream cut (or captured) at a keyframe of an open GOP: its first B-frames refer to the GOP
    before, which the file does not hold, so the decoder gives no frame for them. Reads from the start used
    to fail as a whole ("could not decode frames 0-25"): the first frame out came later than asked, and every
    retry from further back landed there too. Now those two frames show the nearest good one, with a
    warning each, and every other frame is exact."""
    full, cut = tmp_path / "full.ts", tmp_path / "cut.ts"
    # FFmpeg's MPEG-2 encoder makes open GOPs by default
    encode_video(full, (stamped_frame(k) for k in range(36)), "mpeg2video", options={"g": "12", "bf": "2"})
    with av.open(str(full)) as c, av.open(str(cut), "w") as out:  # from the second keyframe on
        s = c.streams.video[0]
        o = out.add_stream_from_template(s)
        keys = 0
        for p in c.demux(s):
            if p.size:
                keys += p.is_keyframe
                if keys >= 2:
                    p.stream = o
                    out.mux(p)
    with av.open(str(cut)) as c:  # what the file holds, independently: 26 packets, the first two undecodable
        packets = sorted(p.pts for p in c.demux(video=0) if p.size)
    with av.open(str(cut)) as c:
        decodable = {f.pts: decode_stamp(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)}
    assert len(packets) == 26 and len(decodable) == 24 and not set(packets[:2]) & set(decodable)
    v = probe(cut).video
    assert v.source_frames == 26 and v.frame_count == 26
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with VideoReader(cut) as r:
            frames, fmap = r.read_mapped(0, 26)
    stamps = [decode_stamp(f) for f in frames]
    assert stamps == [decodable[packets[2]]] * 2 + [decodable[t] for t in packets[2:]]
    assert fmap.kinds[:3] == ["substituted", "substituted", "exact"] and set(fmap.kinds[2:]) == {"exact"}
    assert sum("could not be decoded" in str(w.message) for w in caught) == 2


@pytest.mark.parametrize("codec, fmt", [("libx264", "h264"), ("libx265", "hevc")])
def test_raw_elementary_stream_without_timestamps_reads_every_frame(tmp_path, codec, fmt):
    """A raw .h264 / .hevc stream holds no times at all (not even decode times): frames are numbered by the
    order they come out and counted by the decoder (a field-coded interlaced stream has a packet per field).
    Before, such files probed fine but no frame could be read."""
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} encoder not in this PyAV")
    path = encode_video(tmp_path / f"camera.{fmt}", (stamped_frame(k) for k in range(20)), codec, format=fmt,
                        options={"bf": "2"} if codec == "libx264" else {"x265-params": "log-level=error"})
    with av.open(str(path)) as c:
        assert all(f.pts is None for f in c.decode(video=0))  # the file's own statement: no times
    v = probe(path).video
    assert v.frame_count == 20 and v.source_frames == 20
    with VideoReader(path) as r:
        for start in (12, 3, 0, 17):  # forward, back, to the start, forward again
            assert [decode_stamp(f) for f in r.read(start, 3)] == list(range(start, start + 3))


def test_field_coded_packets_pair_into_frames():
    """Field-coded interlaced H.264 in a transport stream (broadcast, AVCHD camcorders) carries a packet per
    field, each with its own time: 1080i25 shows 50 packet times a second for 25 frames. No encoder here
    writes such streams, so the pairing rule is checked on packet times as those files have them (the
    corpus check reads real ones: docs/media.md, "Interlaced footage"). Before, such a stream read as 50 fps
    with every second frame substituted."""
    from s2v_toolkit.media.frame_index import _pair_fields

    field = 1800  # 90 kHz ticks: 1/50 s
    frames = [1000 + 2 * field * k for k in range(10)]
    packets = sorted(frames + [t + field for t in frames])
    assert _pair_fields(packets, set(frames[:4])) == (frames, field)
    # adaptive: the 4th frame coded as one picture (no second field), the decoder showed it on its own
    adaptive = sorted(frames + [t + field for i, t in enumerate(frames) if i != 3])
    assert _pair_fields(adaptive, set(frames[:5])) == (frames, field)
    # a stream that starts on a second field (cut between the fields of a frame): the decoder's first frames
    # fix the phase, the lone field stays a source frame of its own (it reads as a substitute)
    cut = packets[1:]
    paired, step = _pair_fields(cut, set(frames[1:5]))
    assert paired == [packets[1]] + frames[1:] and step == field
    # progressive packets (one per frame, evenly spaced): nothing to pair
    assert _pair_fields(frames, set(frames)) == (frames, 0)


def test_an_interlaced_frame_coded_stream_is_not_taken_for_fields(tmp_path):
    """Fewer frames out than packets over the probe can also be the decoder holding frames back (a short
    file, B-pyramids): only frames twice as far apart as the packets mean a packet per field."""
    from s2v_toolkit.media.frame_index import _spacing_doubles

    packets = [3600 * k for k in range(12)]
    assert not _spacing_doubles(packets, packets[:5])                       # held back, same spacing
    assert _spacing_doubles([1800 * k for k in range(12)], [3600 * k for k in range(5)])

    def interlaced(stream):  # x264 codes MBAFF frames (a packet per frame), flagged top field first
        stream.codec_context.flags |= av.codec.context.Flags.interlaced_dct
        stream.codec_context.field_order = 2

    for n in (9, 14):
        path = encode_video(tmp_path / f"mbaff{n}.mp4", (stamped_frame(k) for k in range(n)), "libx264",
                            options={"bf": "3"}, setup=interlaced)
        v = probe(path).video
        assert v.interlaced and v.source_frames == n and v.fps == 25
        with VideoReader(path) as r:
            assert [decode_stamp(f) for f in r.read(0, n)] == list(range(n))
