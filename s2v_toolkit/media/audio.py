"""Reading audio for a time range as float32, sample-exact against the video frame grid.

Time 0 is the file's first video frame (or the audio start for audio-only files), so that
``read_audio(path, start=frame / fps, ...)`` lines up with ``read_frames(path, frame, ...)``.

Resampling happens once, with a known filter: libsoxr at "HQ" quality (linear phase, 20-bit
precision), on a grid anchored at the audio stream's first sample. A read is mapped onto that grid
so that any two reads of the same file agree sample for sample where they overlap (up to the
filter's numerical noise at window edges, which padding keeps far from the returned samples).
"""

from __future__ import annotations

import math
import os
import warnings
from fractions import Fraction

import av
import numpy as np
import soxr

from s2v_toolkit.errors import MediaError, MediaWarning
from s2v_toolkit.media.container import audio_stream, opened

ANALYSIS_RATE = 16000
RESAMPLE_QUALITY = "HQ"
# Extra context decoded on each side of a window before resampling (in output-rate seconds).
_RESAMPLE_PAD_SECONDS = Fraction(1, 20)

_INT_SCALE = {"s16": 32768.0, "s16p": 32768.0, "s32": 2147483648.0, "s32p": 2147483648.0}


def frame_to_sample(frame: int, fps: Fraction, sample_rate: int) -> int:
    """Index of the audio sample at which video frame ``frame`` starts (nearest sample)."""
    return round(Fraction(frame) * sample_rate / Fraction(fps))


def _frame_array(frame: av.AudioFrame) -> np.ndarray:
    """An audio frame as float32 (channels, samples)."""
    arr = frame.to_ndarray()
    fmt = frame.format.name
    if not frame.format.is_planar:
        arr = arr.reshape(-1, len(frame.layout.channels)).T
    if fmt in _INT_SCALE:
        return arr.astype(np.float32) / np.float32(_INT_SCALE[fmt])
    if fmt in ("u8", "u8p"):
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32, copy=False)


def _time_zero(container, astream, path: str) -> tuple[Fraction, Fraction]:
    """(t0, a0): the file's time zero (the first video frame shown, as the frame grid places frame 0) and
    the audio stream's first sample time.

    Frame 0's time comes from the video's frame index (:func:`~s2v_toolkit.media.probe.probe`, cached per
    process), not from the stream's start time: they differ where an MP4 edit list starts mid-GOP (FFmpeg
    reports a start of 0 but shows frames from -0.333 s in a real Android test file), and audio read from
    the start time then sat a third of a second off the frames it belongs to."""
    def start(s) -> Fraction | None:
        return Fraction(s.start_time) * Fraction(s.time_base) if s.start_time is not None and s.time_base else None

    a0 = start(astream) or Fraction(0)
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        return a0, a0
    from s2v_toolkit.media.probe import probe

    try:
        index = getattr(probe(path).video, "_index", None)
    except MediaError:
        index = None
    if index is not None and index.source_pts:
        return Fraction(index.start_pts) * index.time_base, a0
    t0 = start(videos[0])
    return (t0 if t0 is not None else a0), a0


def _decode_native(container, astream, path, lo: int, hi: int | None, a0: Fraction) -> tuple[np.ndarray, int]:
    """Native-rate samples [lo, hi) of the stream (zeros outside it); hi=None reads to the end.

    Returns (array (channels, n), index of the sample after the stream's last decoded sample).

    Samples are placed by counting: a frame follows the previous one unless its timestamp says it
    starts elsewhere by more than the timestamps' own resolution (Matroska stores milliseconds, so
    1024-sample frames at 48 kHz are stamped 0, 21, 43 ms...: placing each by its rounded timestamp
    would overlap and tear the signal). Where the time base is coarser than a sample, the read decodes
    from the stream's start so that the count is exact. A packet that fails to decode loses only its
    own time range (silence), with a warning naming the file and the range.
    """
    sr = astream.codec_context.sample_rate
    channels = astream.codec_context.channels
    tb = Fraction(astream.time_base)
    # Timestamp resolution in samples, plus one for rounding: deviations within it are not gaps.
    slack = math.ceil(tb * sr) + 1
    chunks: list[tuple[int, np.ndarray]] = []
    seek_time = a0 + Fraction(max(lo, 0), sr) - Fraction(1, 2)
    if seek_time > a0 and tb * sr <= 1:
        container.seek(int(seek_time / tb), stream=astream, backward=True)
    next_idx = None
    end_idx = 0
    damaged: list[tuple[int, int | None]] = []
    done = False
    for packet in container.demux(astream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            if packet.size:
                damaged.append((packet.pts, packet.duration))
            continue
        for frame in frames:
            s = round((Fraction(frame.pts) * tb - a0) * sr) if frame.pts is not None else None
            if s is None or (next_idx is not None and abs(s - next_idx) <= slack):
                s = next_idx if next_idx is not None else 0
            data = _frame_array(frame)
            n = data.shape[1]
            next_idx = s + n
            end_idx = max(end_idx, next_idx)
            if next_idx <= lo:
                continue
            if hi is not None and s >= hi:
                done = True
                break
            chunks.append((s, data))
        if done:
            break
    if damaged:
        ranges = []
        for pts, dur in damaged:
            if pts is None:
                ranges.append("unknown time")
                continue
            t = Fraction(pts) * tb - a0
            t1 = t + Fraction(dur or 0) * tb
            ranges.append(f"{float(t):.3f}-{float(t1):.3f} s")
        warnings.warn(MediaWarning(
            f"{path}: {len(damaged)} damaged audio packet(s) could not be decoded and read as silence: "
            + ", ".join(ranges[:5]) + (" ..." if len(ranges) > 5 else "")), stacklevel=4)
        if not chunks and end_idx == 0:
            raise MediaError(path, f"audio could not be decoded at all ({len(damaged)} damaged packet(s))")
    if hi is None:
        hi = max(end_idx, lo)
    out = np.zeros((channels, hi - lo), dtype=np.float32)
    for s, data in chunks:
        a, b = max(s, lo), min(s + data.shape[1], hi)
        if b > a:
            out[: data.shape[0], a - lo : b - lo] = data[:channels, a - s : b - s]
    return out, end_idx


def read_audio_channels(
    path: str | os.PathLike,
    start: float | Fraction = 0,
    duration: float | Fraction | None = None,
    sample_rate: int | None = None,
    stream: int = 0,
) -> tuple[np.ndarray, int]:
    """All channels of an audio stream for a time range: (float32 array (channels, samples), rate).

    ``sample_rate=None`` keeps the stream's own rate (no resampling at all).
    """
    path = os.fspath(path)
    start = Fraction(start)
    if duration is not None and Fraction(duration) < 0:
        raise ValueError("duration must not be negative")
    with opened(path) as container:
        astream = audio_stream(container, path, stream)
        sr_in = astream.codec_context.sample_rate
        if not sr_in:
            raise MediaError(path, "audio stream has no sample rate")
        sr_out = int(sample_rate or sr_in)
        t0, a0 = _time_zero(container, astream, path)
        # Output sample k sits at a0 + k / sr_out; the request starts at output sample k0.
        k0 = round((t0 + start - a0) * sr_out)
        k1 = None if duration is None else k0 + round(Fraction(duration) * sr_out)
        g = math.gcd(sr_in, sr_out)
        step_in, step_out = sr_in // g, sr_out // g  # step_in native samples == step_out output samples
        pad = 0 if sr_in == sr_out else math.ceil(_RESAMPLE_PAD_SECONDS * sr_out)
        cell_lo = math.floor((k0 - pad) / step_out)
        lo = cell_lo * step_in
        hi = None if k1 is None else math.ceil((k1 + pad) / step_out) * step_in
        native, end_idx = _decode_native(container, astream, path, lo, hi, a0)
    if k1 is None:
        # Every output sample whose time falls before the stream's end (a partial last one included).
        k1 = max(k0, math.ceil(Fraction(end_idx, sr_in) * sr_out))
    if sr_in == sr_out:
        resampled = native
    else:
        resampled = soxr.resample(native.T, sr_in, sr_out, quality=RESAMPLE_QUALITY).T
    first = cell_lo * step_out  # output index of resampled[:, 0]
    out = np.zeros((native.shape[0], k1 - k0), dtype=np.float32)
    a, b = max(k0, first), min(k1, first + resampled.shape[1])
    if b > a:
        out[:, a - k0 : b - k0] = resampled[:, a - first : b - first]
    return out, sr_out


def locate_channel(path: str | os.PathLike, channel: int) -> tuple[int, int]:
    """(audio stream, channel within it) of the file's ``channel``-th channel (0-based) counted across its
    audio streams in order: how NLEs number a file's audio tracks (a camera MXF with four mono streams has
    channels 0-3, one per stream; a stream of eight channels has 0-7). MediaError past the last one."""
    from s2v_toolkit.media.probe import probe

    streams = probe(path).audio
    k = channel
    for s in streams:
        if 0 <= k < s.channels:
            return s.index, k
        k -= s.channels
    total = sum(s.channels for s in streams)
    raise MediaError(path, f"has {total} audio channel(s) in {len(streams)} stream(s); channel {channel} does not "
                           "exist (channels are counted from 0 across the streams)")


def read_audio(
    path: str | os.PathLike,
    start: float | Fraction = 0,
    duration: float | Fraction | None = None,
    sample_rate: int = ANALYSIS_RATE,
    channel: int | None = None,
    stream: int | None = None,
) -> np.ndarray:
    """Mono float32 audio of ``path`` from ``start`` seconds for ``duration`` seconds at ``sample_rate``.

    ``channel=None`` mixes all channels of the stream down (mean); an int picks that channel (0-based):
    of ``stream`` where one is given, else counted across the file's audio streams (:func:`locate_channel`).
    ``stream=None`` with no channel: the first audio stream. Times outside the file read as silence.
    """
    if stream is None:
        stream, channel = locate_channel(path, channel) if channel is not None else (0, None)
    data, _ = read_audio_channels(path, start, duration, sample_rate, stream)
    if channel is None:
        return data.mean(axis=0).astype(np.float32) if data.shape[0] > 1 else data[0]
    if not 0 <= channel < data.shape[0]:
        raise MediaError(path, f"audio stream {stream} has {data.shape[0]} channel(s); channel {channel} does not exist")
    return np.ascontiguousarray(data[channel])
