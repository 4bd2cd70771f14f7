"""Audio read back exactly from every container the toolkit reads or writes: a sine at >= 90 dB SNR,
placed to the sample, from the start and after a seek."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from s2v_toolkit.media import convert, read_audio_channels, write_video

from media_factory import stamped_frame

RATE = 48000
SECONDS = 3


def _sine(channels=2) -> np.ndarray:
    t = np.arange(RATE * SECONDS) / RATE
    # an odd frequency and a per-channel phase: any offset or channel swap shows
    return np.stack([0.5 * np.sin(2 * np.pi * 441.7 * t + c) for c in range(channels)]).astype(np.float32)


def _snr(got: np.ndarray, ref: np.ndarray) -> float:
    assert got.shape == ref.shape, (got.shape, ref.shape)
    err = float(((got.astype(np.float64) - ref) ** 2).sum())
    return 10 * np.log10(float((ref.astype(np.float64) ** 2).sum()) / max(err, 1e-30))


def _frames(n=SECONDS * 25):
    return [stamped_frame(k, 256, 144) for k in range(n)]


def _pyav_audio(path, codec, sine, fmt, frame_size, time_base=None, with_video=True):
    """A file written by PyAV directly (not our writer): other frame sizes and time bases."""
    with av.open(str(path), "w") as c:
        v = None
        if with_video:
            v = c.add_stream("mpeg4", rate=25)
            v.width, v.height, v.pix_fmt = 256, 144, "yuv420p"
        a = c.add_stream(codec, rate=RATE, layout="stereo")
        if time_base:
            a.time_base = time_base
        a.codec_context.open()
        frame_size = a.codec_context.frame_size or frame_size
        pcm = sine
        if fmt.startswith("s16"):
            pcm = np.round(sine.astype(np.float64) * 32768).astype(np.int16)
        elif fmt.startswith("s32"):
            pcm = np.round(sine.astype(np.float64) * 2**31).astype(np.int32)
        vi = 0
        for pos in range(0, pcm.shape[1], frame_size):
            chunk = np.ascontiguousarray(pcm[:, pos:pos + frame_size])
            arr = chunk if fmt.endswith("p") else chunk.T.reshape(1, -1)
            f = av.AudioFrame.from_ndarray(arr, format=fmt, layout="stereo")
            f.sample_rate, f.pts, f.time_base = RATE, pos, Fraction(1, RATE)
            for p in a.encode(f):
                c.mux(p)
            while v is not None and vi < round(Fraction(pos + frame_size, RATE) * 25) and vi < SECONDS * 25:
                vf = av.VideoFrame.from_ndarray(stamped_frame(vi, 256, 144), format="rgb24")
                vf.pts = vi
                for p in v.encode(vf):
                    c.mux(p)
                vi += 1
        for p in a.encode(None):
            c.mux(p)
        if v is not None:
            for p in v.encode(None):
                c.mux(p)
    return path


def _ours(ext, preset=None):
    def make(path, sine):
        return write_video(path, _frames(), 25, preset=preset, audio=sine, audio_rate=RATE)
    return make


MAKERS = {
    "ours.mov": _ours(".mov"),
    "ours.mxf": _ours(".mxf"),
    "ours.mkv": _ours(".mkv"),
    "ours_h264.mov": _ours(".mov", "h264"),
    "pcm_ms_timestamps.mkv": lambda p, s: _pyav_audio(p, "pcm_s16le", s, "s16", 1000),  # 1 ms time base
    "flac.mkv": lambda p, s: _pyav_audio(p, "flac", s, "s16", 4608),
    "alac.mp4": lambda p, s: _pyav_audio(p, "alac", s, "s16p", 4096),
    "flac.mp4": lambda p, s: _pyav_audio(p, "flac", s, "s16", 4608),
    "pcm.mov": lambda p, s: _pyav_audio(p, "pcm_s24le", s, "s32", 1001),
    "plain.wav": lambda p, s: sf.write(p, s.T, RATE, subtype="PCM_24") or p,
    "plain.flac": lambda p, s: sf.write(p, s.T, RATE, subtype="PCM_24") or p,
    "audio_only.mkv": lambda p, s: _pyav_audio(p, "pcm_s24le", s, "s32", 960, with_video=False),
}


SIXTEEN_BIT = {"pcm_ms_timestamps.mkv", "flac.mkv", "alac.mp4", "flac.mp4"}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_sine_round_trip_is_exact_from_start_and_after_a_seek(tmp_path, name):
    sine = _sine()
    if name in SIXTEEN_BIT:  # what a 16-bit file can hold: the comparison is then of the stored samples
        sine = (np.round(sine.astype(np.float64) * 32768) / 32768).astype(np.float32)
    path = MAKERS[name](tmp_path / name, sine)
    got, rate = read_audio_channels(path, 0, SECONDS, sample_rate=None)
    assert rate == RATE
    assert _snr(got, sine) >= 90, name
    # a window starting off any packet boundary: sample-exact placement after a seek
    first = RATE + 12345
    n = RATE // 2 + 77
    got, _ = read_audio_channels(path, Fraction(first, RATE), Fraction(n, RATE), sample_rate=None)
    assert _snr(got, sine[:, first:first + n]) >= 90, name


def test_convert_from_mkv_keeps_the_audio_exact(tmp_path):
    sine = _sine()
    src = write_video(tmp_path / "x.mkv", _frames(), 25, audio=sine, audio_rate=RATE)
    convert(src, tmp_path / "y.mov")
    got, rate = read_audio_channels(tmp_path / "y.mov", 0, SECONDS, sample_rate=None)
    assert rate == RATE and _snr(got, sine) >= 90


def test_audio_time_zero_is_the_frame_grids_frame_zero(tmp_path, monkeypatch):
    """Time 0 of an audio read is where the frame index puts frame 0, not the video stream's reported start:
    an Android MP4 whose edit list starts mid-GOP reports a start of 0 while FFmpeg shows frames from
    -0.333 s, and its audio read a third of a second off its frames. Here the index is moved by 0.2 s."""
    import copy
    import importlib

    probe_module = importlib.import_module("s2v_toolkit.media.probe")  # the package exports probe() by that name
    sine = _sine()
    path = _ours(".mov")(tmp_path / "a.mov", sine)
    plain, _ = read_audio_channels(path, 0, 1)
    real_probe = probe_module.probe

    def earlier(p):
        info = real_probe(p)
        index = copy.copy(info.video._index)  # the cached index is shared: move a copy
        index.start_pts -= round(Fraction(1, 5) / index.time_base)  # frame 0 shown 0.2 s before the stream's start
        info.video._index = index
        return info

    monkeypatch.setattr(probe_module, "probe", earlier)
    moved, _ = read_audio_channels(path, 0, 1)
    k = RATE // 5
    assert np.all(moved[:, :k] == 0)  # before the audio's first sample: silence
    assert _snr(moved[:, k:], plain[:, : RATE - k]) > 90
