"""Media I/O on generated files: probe, frame-accurate reads, audio alignment, codec round-trips."""

from fractions import Fraction

import av
import numpy as np
import pytest

from s2v_toolkit.errors import MediaError, OutputError
from s2v_toolkit.media import (
    VideoReader,
    frame_to_sample,
    probe,
    read_audio,
    read_audio_channels,
    read_frames,
    write_video,
)

from media_factory import decode_stamp, make_stamped_video, stamped_frame

RATES = {
    "23.976": (Fraction(24000, 1001), "01:00:00:00"),
    "25": (Fraction(25), "10:00:00:00"),
    "29.97df": (Fraction(30000, 1001), "00:59:59;28"),
}


@pytest.mark.parametrize("name", RATES)
def test_probe_reports_exact_rate_count_and_timecode(tmp_path, name):
    fps, tc = RATES[name]
    path = make_stamped_video(tmp_path / "clip.mov", 40, fps, preset="prores_hq", timecode=tc, channels=2)
    info = probe(path)
    v = info.video
    assert v.fps == fps and isinstance(v.fps, Fraction)
    assert v.frame_count == 40
    assert v.start_timecode == tc
    assert v.drop_frame == (";" in tc)
    assert not v.vfr
    assert (v.width, v.height, v.codec) == (256, 144, "prores")
    assert abs(v.duration - 40 / float(fps)) < 1e-9
    assert len(info.audio) == 1 and info.audio[0].channels == 2 and info.audio[0].sample_rate == 48000
    # JSON round trip keeps the exact rate
    again = type(info).from_dict(info.to_dict())
    assert again.video.fps == fps and again.video.start_timecode == tc


def test_probe_detects_variable_frame_rate(tmp_path):
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.time_base = Fraction(1, 1000)
        t = 0
        for i in range(30):
            f = av.VideoFrame.from_ndarray(stamped_frame(i, 64, 48), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            t += 40 if i % 3 else 120  # every third frame is held three times as long
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert probe(path).video.vfr
    cfr = make_stamped_video(tmp_path / "cfr.mp4", 30, Fraction(25), audio=False)
    assert not probe(cfr).video.vfr


@pytest.mark.parametrize("preset, ext", [("h264", ".mp4"), ("prores_hq", ".mov"), ("dnxhr_hq", ".mxf")])
def test_frame_accurate_reads_at_arbitrary_offsets(tmp_path, preset, ext):
    fps = Fraction(24000, 1001)
    path = make_stamped_video(tmp_path / f"clip{ext}", 300, fps, preset=preset, audio=False)
    rng = np.random.default_rng(0)
    with VideoReader(path) as reader:
        # Random order forces backward and forward seeks; each frame must carry its own index.
        for start in list(rng.integers(0, 290, 12)) + [0, 299, 150, 151]:
            count = min(5, 300 - int(start))
            frames = reader.read(int(start), count)
            assert [decode_stamp(f) for f in frames] == list(range(int(start), int(start) + count))
        # Sequential reads continue without seeking and stay exact.
        assert [decode_stamp(f) for f in reader.read(10, 3)] == [10, 11, 12]
        assert [decode_stamp(f) for f in reader.read(13, 3)] == [13, 14, 15]
    assert decode_stamp(read_frames(path, 298, 1)[0]) == 298


def test_reading_past_the_end_names_the_range(tmp_path):
    path = make_stamped_video(tmp_path / "short.mp4", 10, Fraction(25), audio=False)
    with pytest.raises(MediaError, match=r"frames 8-11 .* frames 0-9"):
        read_frames(path, 8, 4)


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)])
@pytest.mark.parametrize("preset, ext", [("prores_hq", ".mov"), ("h264", ".mp4")])
def test_audio_clicks_line_up_with_frame_starts(tmp_path, fps, preset, ext):
    frames = 60
    path = make_stamped_video(tmp_path / f"av{ext}", frames, fps, preset=preset)
    for start_frame, count in [(0, 10), (17, 9), (41, 19)]:
        for rate in (48000, 16000):
            audio = read_audio(path, start=Fraction(start_frame) / fps, duration=Fraction(count) / fps,
                               sample_rate=rate)
            assert len(audio) == round(Fraction(count) / fps * rate)
            for k in range(count):
                # Where frame (start_frame + k) begins inside this read, in samples at `rate`.
                expected = Fraction(k) * rate / fps
                lo, hi = int(expected) - 1, int(expected) + 3
                window = np.abs(audio[max(lo, 0):hi])
                peak = max(lo, 0) + int(np.argmax(window))
                assert abs(peak - float(expected)) <= 1.0, (rate, start_frame, k, peak, float(expected))


def test_audio_outside_the_file_is_silence_and_channels_can_be_picked(tmp_path):
    fps = Fraction(25)
    path = make_stamped_video(tmp_path / "st.mov", 25, fps, preset="prores_hq", channels=2)
    both, rate = read_audio_channels(path, 0, 1, sample_rate=None)
    assert both.shape == (2, 48000) and rate == 48000
    right = read_audio(path, 0, 1, sample_rate=48000, channel=1)
    mono = read_audio(path, 0, 1, sample_rate=48000)
    assert np.allclose(right[5:100], 0.1, atol=1e-3)  # channel 1 carries a 0.1 offset
    assert np.allclose(mono, both.mean(axis=0), atol=1e-6)
    tail = read_audio(path, start=0.9, duration=0.5, sample_rate=16000)
    assert len(tail) == 8000 and np.abs(tail[1700:]).max() < 1e-6  # 1.0 s onwards is past the end
    with pytest.raises(MediaError, match="channel 5 does not exist"):
        read_audio(path, channel=5)


@pytest.mark.parametrize("preset, ext, codec, audio_codec", [
    ("ffv1", ".mkv", "ffv1", "pcm_s24le"),
    ("prores_hq", ".mov", "prores", "pcm_s24le"),
    ("h264", ".mp4", "h264", "aac"),
    ("dnxhr_hq", ".mov", "dnxhd", "pcm_s24le"),
    ("dnxhr_hq", ".mxf", "dnxhd", "pcm_s24le"),
])
def test_codec_round_trips(tmp_path, preset, ext, codec, audio_codec):
    fps = Fraction(30000, 1001)
    path = make_stamped_video(tmp_path / f"rt{ext}", 33, fps, preset=preset, timecode="01:00:00;04", rate=48000)
    info = probe(path)
    assert info.video.codec == codec
    assert info.video.fps == fps and info.video.frame_count == 33
    assert info.video.start_timecode == "01:00:00;04" and info.video.drop_frame
    assert [a.codec for a in info.audio] == [audio_codec]
    if preset == "prores_hq":
        assert info.video.pix_fmt.startswith("yuv422p10")
        with av.open(str(path)) as c:
            assert c.streams.video[0].codec_context.profile == "HQ"
    assert [decode_stamp(f) for f in read_frames(path, 0, 33)] == list(range(33))
    audio = read_audio(path, sample_rate=48000)
    assert abs(len(audio) - round(33 / fps * 48000)) <= 1024  # AAC may round up to a whole frame


def test_writer_refuses_to_overwrite_and_checks_extension(tmp_path):
    path = make_stamped_video(tmp_path / "a.mov", 3, Fraction(25), preset="prores_hq", audio=False)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        write_video(path, [stamped_frame(0)], 25, preset="prores_hq")
    assert path.read_bytes() == before
    with pytest.raises(OutputError, match="prores_hq cannot be written to .mp4"):
        write_video(tmp_path / "b.mp4", [stamped_frame(0)], 25, preset="prores_hq")
    with pytest.raises(OutputError, match="even frame size"):
        write_video(tmp_path / "c.mp4", [np.zeros((11, 16, 3), np.uint8)], 25, preset="h264")
    # a size the encoder refuses when it opens: one line naming the file, the preset and the size
    with pytest.raises(OutputError, match=r"d.mxf: the dnxhr_hq encoder refused 64x64 yuv422p: .*too small"):
        write_video(tmp_path / "d.mxf", [np.zeros((64, 64, 3), np.uint8)], 25, preset="dnxhr_hq")
    assert not (tmp_path / "d.mxf").exists()


def test_failure_mid_write_leaves_no_file_and_no_temp(tmp_path):
    def frames():
        for i in range(10):
            if i == 6:
                raise RuntimeError("renderer crashed")
            yield stamped_frame(i)

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(tmp_path / "out.mov", frames(), 25, preset="prores_hq")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_a_failed_overwrite(tmp_path):
    path = make_stamped_video(tmp_path / "keep.mov", 3, Fraction(25), preset="prores_hq", audio=False)
    before = path.read_bytes()

    def frames():
        yield stamped_frame(0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_video(path, frames(), 25, preset="prores_hq", overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mov"]


def test_read_only_output_folder_is_a_clear_error(readonly_dir):
    with pytest.raises(OutputError, match="read_only: output folder is read-only"):
        write_video(readonly_dir / "x.mov", [stamped_frame(0)], 25)
    assert list(readonly_dir.iterdir()) == []


def test_bad_inputs_raise_media_errors_naming_the_file(tmp_path):
    missing = tmp_path / "nope.mov"
    with pytest.raises(MediaError, match="nope.mov: file not found"):
        probe(missing)
    text = tmp_path / "notes.mov"
    text.write_text("this is not a movie\n" * 50)
    with pytest.raises(MediaError, match="notes.mov: not a media file"):
        probe(text)
    good = make_stamped_video(tmp_path / "t.mp4", 50, Fraction(25))
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MediaError, match="truncated.mp4: .*corrupt"):
        probe(cut)
    wav = tmp_path / "voice.wav"
    import soundfile as sf

    sf.write(wav, np.zeros(16000, np.float32), 16000)
    with pytest.raises(MediaError, match="voice.wav: has no video stream"):
        read_frames(wav, 0, 1)
    assert probe(wav).video is None and probe(wav).audio[0].sample_rate == 16000


def test_ffv1_is_bit_exact(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (6, 72, 128, 3), dtype=np.uint8)
    path = write_video(tmp_path / "exact.mkv", frames, Fraction(24000, 1001), start_timecode="10:00:00:00")
    assert np.array_equal(read_frames(path, 0, 6), frames)
    assert probe(path).video.start_timecode == "10:00:00:00"


def test_convert_keeps_a_phone_display_matrix_or_refuses_in_one_line(tmp_path):
    from s2v_toolkit.media import convert, display_transform

    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as c:  # stored sideways, as a phone writes portrait video
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(270)
        for k in range(4):
            for p in s.encode(av.VideoFrame.from_ndarray(stamped_frame(k, 64, 48), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    rotation, matrix = display_transform(src)
    assert rotation == 270 and matrix is not None
    out = tmp_path / "phone.mov"
    convert(src, out)
    assert display_transform(out) == (rotation, matrix)  # plays the way the source does
    with pytest.raises(OutputError, match=r"phone.dpx: the source is displayed rotated by 270 degrees"):
        convert(src, tmp_path / "phone.dpx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phone.mov", "phone.mp4"]


def test_frames_export_turns_phone_video_upright(tmp_path):
    import cv2

    from s2v_toolkit.cli import main

    def read_png(path):
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    upright = stamped_frame(5, 48, 64)  # as shown: 48 wide, 64 high
    src = tmp_path / "portrait.mov"
    write_video(src, [np.ascontiguousarray(np.rot90(upright, -1))] * 2, 25, preset="prores_4444",
                display_rotation=90)
    assert main(["frames", str(src), "--start", "1", "--count", "1", "-o", str(tmp_path / "shown")]) == 0
    assert main(["frames", str(src), "--start", "1", "--count", "1", "-o", str(tmp_path / "raw"), "--as-stored"]) == 0
    shown = read_png(tmp_path / "shown" / "portrait_000001.png")
    raw = read_png(tmp_path / "raw" / "portrait_000001.png")
    assert shown.shape == (64, 48, 3) and raw.shape == (48, 64, 3)
    assert np.abs(shown.astype(int) - upright).max() <= 2


# QuickTime 'fiel' atom (field count, detail) as FFmpeg's mov muxer writes each AVFieldOrder
_FIEL = {"tt": b"\x02\x01", "bb": b"\x02\x06", "tb": b"\x02\x09", "bt": b"\x02\x0e"}


def _fiel(path) -> bytes | None:
    data = path.read_bytes()
    at = data.find(b"fiel")
    return data[at + 4:at + 6] if at >= 0 else None


@pytest.mark.parametrize("order", ["bb", "tt"])
def test_interlaced_field_order_is_probed_and_carried_by_convert(tmp_path, order):
    from s2v_toolkit.media import convert_report

    src = tmp_path / "broadcast.mov"
    with av.open(str(src), "w") as c:  # an interlaced master, flagged as a camera or capture card does
        s = c.add_stream("prores_ks", rate=25, options={"profile": "3"})
        s.width, s.height, s.pix_fmt = 256, 144, "yuv422p10le"
        s.codec_context.field_order = {"tt": 2, "bb": 3}[order]
        for k in range(3):
            f = av.VideoFrame.from_ndarray(stamped_frame(k), format="rgb24").reformat(format="yuv422p10le")
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert _fiel(src) == _FIEL[order]  # what the file says, in its bytes
    v = probe(src).video
    assert v.field_order == order and v.interlaced and f"interlaced ({order}" in v.timing_summary()
    kept = convert_report(src, tmp_path / "copy.mov")
    assert _fiel(tmp_path / "copy.mov") == _FIEL[order] and not kept.warnings
    assert probe(tmp_path / "copy.mov").video.field_order == order
    lost = convert_report(src, tmp_path / "copy.mp4")
    assert len(lost.warnings) == 1 and "written flagged progressive" in lost.warnings[0]
    assert not probe(tmp_path / "copy.mp4").video.interlaced
    # a progressive source gets no warning and no field flag
    plain = convert_report(make_stamped_video(tmp_path / "p.mov", 3, Fraction(25), preset="prores_hq", audio=False),
                           tmp_path / "p.mp4")
    assert not plain.warnings


def test_sd_dv_is_bottom_field_first(tmp_path):
    """Raw DV states no field order (FFmpeg reports none); SD DV is bottom field first by its standard."""
    from media_factory import encode_video

    path = encode_video(tmp_path / "camcorder.dv", [np.zeros((576, 720, 3), np.uint8)] * 2, "dvvideo", format="dv")
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.field_order == 0  # the file itself says nothing
    assert probe(path).video.field_order == "bb"


def test_camera_file_channels_across_streams_read_and_convert(tmp_path):
    """A camera file with a mono stream per microphone: channel k counts across the streams (as NLEs number
    them), and convert carries every stream's channels, in order, as one track (it kept the first only)."""
    from s2v_toolkit.media import convert_report, read_audio, read_audio_channels
    from s2v_toolkit.media.audio import locate_channel
    from media_factory import write_camera_file

    levels = [0.05, 0.0, 0.2]
    src = write_camera_file(tmp_path / "camera.mov", levels)
    assert [locate_channel(src, k) for k in range(3)] == [(0, 0), (1, 0), (2, 0)]
    peaks = [float(np.abs(read_audio(src, 0.5, 1, channel=k)).max()) for k in range(3)]
    assert peaks == pytest.approx(levels, abs=0.01)
    with pytest.raises(MediaError, match="has 3 audio channel.s. in 3 stream.s.; channel 3 does not exist"):
        read_audio(src, 0, 1, channel=3)
    report = convert_report(src, tmp_path / "copy.mov")
    assert "3 audio streams are carried as one track of 3 channels" in report.warnings[0]
    data, _ = read_audio_channels(tmp_path / "copy.mov", 0.5, 1, sample_rate=None)
    assert data.shape[0] == 3 and np.abs(data).max(axis=1) == pytest.approx(levels, abs=0.01)
