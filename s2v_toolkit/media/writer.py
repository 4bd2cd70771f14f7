"""Writing video (with audio muxed) in the codecs post-production uses.

Presets:
- ``prores_hq``: Apple ProRes 422 HQ (prores_ks profile 3, 10-bit 4:2:2) in .mov, PCM 24-bit audio;
  the default for renders that go back to an editor. ``prores_4444``: ProRes 4444 (10-bit 4:4:4).
- ``dnxhr_hqx``: Avid DNxHR HQX (10-bit 4:2:2) in .mov or .mxf (OP1a), PCM audio at 48 kHz; the
  default for .mxf. ``dnxhr_444``: DNxHR 444 (10-bit 4:4:4). ``dnxhr_hq``: DNxHR HQ (8-bit 4:2:2).
- ``h264``: H.264 (libx264, CRF 16, 4:2:0) in .mp4 with AAC audio, or in .mov with PCM; for previews.
- ``ffv1``: FFV1 lossless in .mkv with PCM audio; bit-exact, for verification and intermediates. It
  stores what it is given: 8-bit RGB as ``bgr0``, 16-bit RGB as ``gbrp16le``, and a
  :class:`~s2v_toolkit.media.pixels.PlanarFrame` in its own format (``yuv422p10le`` stays 10-bit 4:2:2).

Frames may be (H, W, 3) uint8 or uint16 R'G'B' arrays, or :class:`PlanarFrame` objects (the source's own
planes at its bit depth: written without any conversion when the preset's format is the same).
Colour tags (primaries, transfer, matrix, range) are set on the stream, and every R'G'B' <-> Y'CbCr
conversion uses the tagged matrix and range.

The source start timecode and exact frame rate are carried into the file (a tmcd track in
QuickTime/MP4, the material package timecode in MXF). Files are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr

from s2v_toolkit import interrupts
from s2v_toolkit.errors import OutputError
from s2v_toolkit.media.atomic import atomic_output
from s2v_toolkit.media.pixels import IDENTITY_MATRIX, ColourInfo, PlanarFrame, sws_args, to_av
from s2v_toolkit.media.timecode import frames_to_timecode, snap_rate, timecode_to_frames


@dataclass(frozen=True)
class VideoPreset:
    name: str
    codec: str
    pix_fmt: str
    options: dict = field(default_factory=dict)
    extensions: tuple[str, ...] = (".mov",)
    audio_codec: dict = field(default_factory=dict)  # extension -> audio codec
    audio_rate: int | None = None  # forced audio rate (MXF wants 48 kHz)
    even_size: bool = False


VIDEO_PRESETS: dict[str, VideoPreset] = {
    "prores_hq": VideoPreset(
        "prores_hq", "prores_ks", "yuv422p10le", {"profile": "3", "vendor": "apl0"}, (".mov",),
        {".mov": "pcm_s24le"},
    ),
    "prores_4444": VideoPreset(
        "prores_4444", "prores_ks", "yuv444p10le", {"profile": "4", "vendor": "apl0"}, (".mov",),
        {".mov": "pcm_s24le"},
    ),
    "dnxhr_hq": VideoPreset(
        "dnxhr_hq", "dnxhd", "yuv422p", {"profile": "dnxhr_hq"}, (".mov", ".mxf"),
        {".mov": "pcm_s24le", ".mxf": "pcm_s24le"}, audio_rate=48000, even_size=True,
    ),
    "dnxhr_hqx": VideoPreset(
        "dnxhr_hqx", "dnxhd", "yuv422p10le", {"profile": "dnxhr_hqx"}, (".mov", ".mxf"),
        {".mov": "pcm_s24le", ".mxf": "pcm_s24le"}, audio_rate=48000, even_size=True,
    ),
    "dnxhr_444": VideoPreset(
        "dnxhr_444", "dnxhd", "yuv444p10le", {"profile": "dnxhr_444"}, (".mov", ".mxf"),
        {".mov": "pcm_s24le", ".mxf": "pcm_s24le"}, audio_rate=48000, even_size=True,
    ),
    # Image sequences (media/sequence.py): 10-bit DPX and half-float OpenEXR, numbered by timecode.
    "dpx": VideoPreset("dpx", "dpx", "gbrp10le", {}, (".dpx",)),
    "exr": VideoPreset("exr", "exr", "gbrpf32le", {"format": "half"}, (".exr",)),
    # Lossless, in the frames' own format (pix_fmt "auto", see the module docstring): decoded frames
    # equal the written ones bit for bit. For checks and intermediates; NLEs mostly do not play it.
    "ffv1": VideoPreset("ffv1", "ffv1", "auto", {}, (".mkv",), {".mkv": "pcm_s24le"}),
    "h264": VideoPreset(
        "h264", "libx264", "yuv420p", {"crf": "16", "preset": "medium"}, (".mp4", ".mov"),
        {".mp4": "aac", ".mov": "pcm_s24le"}, even_size=True,
    ),
}
DEFAULT_PRESET_FOR_EXTENSION = {".mov": "prores_hq", ".mp4": "h264", ".mxf": "dnxhr_hqx", ".mkv": "ffv1",
                                ".dpx": "dpx", ".exr": "exr"}



def _stream_pix_fmt(spec: VideoPreset, first, pix_fmt: str | None) -> str:
    if pix_fmt:
        return pix_fmt
    if spec.pix_fmt != "auto":
        return spec.pix_fmt
    if isinstance(first, PlanarFrame):
        return _encodable(spec.codec, first.pix_fmt)
    return "gbrp16le" if first.dtype == np.uint16 else "bgr0"


# Planar formats some lossless encoders do not take, and the packed format with the same samples:
# FFV1 has no 8-bit gbrp (an 8-bit R'G'B' source, e.g. FFV1 bgr0, decodes to it), but takes bgr0.
_SAME_SAMPLES = {"gbrp": "bgr0", "gbrap": "bgra"}


def _encodable(codec: str, pix_fmt: str) -> str:
    """``pix_fmt``, or a format holding exactly the same samples where the encoder does not take it."""
    try:
        formats = {f.name for f in (av.Codec(codec, "w").video_formats or [])}
    except (ValueError, av.error.FFmpegError):
        return pix_fmt
    if formats and pix_fmt not in formats and _SAME_SAMPLES.get(pix_fmt) in formats:
        return _SAME_SAMPLES[pix_fmt]
    return pix_fmt


def _av_frame(item, pix_fmt: str, colour: ColourInfo, height: int) -> av.VideoFrame:
    """One frame as a PyAV frame in ``pix_fmt``, converted (if at all) with the tagged matrix and range."""
    if isinstance(item, PlanarFrame):
        frame = to_av(item)
        src = item.colour.with_defaults(item.pix_fmt, item.height)
    else:
        rgb = np.ascontiguousarray(item)
        if rgb.dtype == np.uint16:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        src = ColourInfo(matrix="gbr", range="pc")
    if frame.format.name != pix_fmt:
        # the matrix and range on both sides are explicit: swscale's own default is BT.601 at any size
        frame = frame.reformat(format=pix_fmt, **sws_args(frame.format.name, src, height, "src"),
                               **sws_args(pix_fmt, colour, height, "dst"))
    colour.apply_to(frame)
    return frame


_FIELD_ORDER_CODES = {"progressive": 1, "tt": 2, "bb": 3, "tb": 4, "bt": 5}  # FFmpeg's AVFieldOrder
# presets whose container records the stream's field order as given (QuickTime 'fiel', Matroska
# FieldOrder); DNxHR is progressive-only and the MXF and MP4 muxers take it from the encoder
_FIELD_ORDER_PRESETS = {"prores_hq", "prores_4444", "ffv1"}


def keeps_field_order(path: str | os.PathLike, preset: str | None = None) -> bool:
    """Whether ``path`` written with ``preset`` (default: the extension's) carries an interlaced
    source's field order."""
    return preset_for(Path(path), preset).name in _FIELD_ORDER_PRESETS


def field_order_warnings(field_order: str | None, dst: str | os.PathLike, preset: str | None = None) -> list[str]:
    """What an output written from a source of ``field_order`` (``VideoInfo.field_order``) loses: an
    interlaced source's field order, where the output's preset cannot carry it (the NLE would then take
    the file as progressive)."""
    from s2v_toolkit.media.probe import INTERLACED_ORDERS

    dst = Path(dst)
    if field_order not in INTERLACED_ORDERS or keeps_field_order(dst, preset):
        return []
    return [f"the source is interlaced ({field_order}) and {dst.suffix} with {preset_for(dst, preset).name} "
            "is written flagged progressive (an NLE will not treat it as interlaced); write .mov (ProRes) or "
            ".mkv (FFV1) to keep the field order"]


def check_display_rotation(path: str | os.PathLike, rotation: int | Sequence[int],
                           preset: str | None = None) -> int | tuple[int, ...]:
    """``rotation`` as 0, 90, 180 or 270 degrees, or a display matrix as a tuple of 9 ints; an OutputError
    where ``path`` (written with ``preset``) cannot carry it: what :func:`write_video` checks, for callers
    that check before long work."""
    path = Path(path)
    spec = preset_for(path, preset)
    if isinstance(rotation, (int, np.integer)):
        if rotation % 90:
            raise OutputError(path, f"display rotation must be a multiple of 90 degrees, got {rotation}")
        value: int | tuple[int, ...] = int(rotation) % 360
        what = f"rotated by {value} degrees"
    else:
        value = tuple(int(x) for x in rotation)
        if len(value) != 9:
            raise OutputError(path, f"a display matrix has 9 values, got {len(value)}")
        what = _describe_matrix(value)
    if not value or value == IDENTITY_MATRIX:  # none, or the identity
        return 0
    if spec.name in ("dpx", "exr") or path.suffix.lower() == ".mxf":
        raise OutputError(path, f"the source is displayed {what} and {path.suffix} cannot carry a display "
                                "rotation: write .mov, .mp4 or .mkv")
    if not hasattr(av.video.stream.VideoStream, "set_display_matrix"):
        raise OutputError(path, f"the source is displayed {what} and this PyAV ({av.__version__}) cannot "
                                "write a display matrix (pip install -U av)")
    return value


def _describe_matrix(m: tuple[int, ...]) -> str:
    """"rotated by 90 degrees", "rotated by 270 degrees and mirrored": a display matrix in words
    (the angle as FFmpeg's av_display_rotation_get reads it, counter-clockwise)."""
    import math

    angle = -math.degrees(math.atan2(m[1] / (math.hypot(m[1], m[4]) or 1), m[0] / (math.hypot(m[0], m[3]) or 1)))
    mirrored = m[0] * m[4] - m[1] * m[3] < 0
    return f"rotated by {round(angle) % 360} degrees" + (" and mirrored" if mirrored else "")


def preset_for(path: Path, preset: str | None) -> VideoPreset:
    ext = path.suffix.lower()
    name = preset or DEFAULT_PRESET_FOR_EXTENSION.get(ext)
    if name is None:
        raise OutputError(path, f"unsupported output extension {ext!r} (use .mov, .mp4, .mxf, .mkv, .dpx or .exr)")
    if name not in VIDEO_PRESETS:
        raise OutputError(path, f"unknown codec preset {name!r} (choose from {', '.join(sorted(VIDEO_PRESETS))})")
    p = VIDEO_PRESETS[name]
    if ext not in p.extensions:
        raise OutputError(path, f"{name} cannot be written to {ext} (use {' or '.join(p.extensions)})")
    return p


def _as_planar_audio(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] > 8:
        raise ValueError(f"audio must be (samples,) or (channels, samples), got {a.shape}")
    return np.ascontiguousarray(np.clip(a, -1.0, 1.0))


class _AudioTrack:
    """Feeds audio to its encoder in step with the video, so packets interleave in the file."""

    def __init__(self, container, codec: str, audio: np.ndarray, in_rate: int, rate: int):
        a = _as_planar_audio(audio)
        if in_rate != rate:
            a = np.ascontiguousarray(soxr.resample(a.T, in_rate, rate, quality="HQ").T, dtype=np.float32)
        self.audio, self.rate, self.container = a, rate, container
        self.layout = {1: "mono", 2: "stereo"}.get(a.shape[0], f"{a.shape[0]}c")
        self.stream = container.add_stream(codec, rate=rate, layout=self.layout)
        # Open the encoder before the file header is written: AAC's encoder delay (priming samples)
        # then reaches the muxer, which records it as an edit list so decoders skip it. Opened
        # lazily instead, the audio would come out 1024 samples late.
        self.stream.codec_context.open()
        self.fifo = av.AudioFifo()
        self.fed = 0  # samples handed to the FIFO so far
        self.resampler = None  # created on first use, once the encoder's sample format is known

    def feed_until(self, n: int) -> None:
        """Encode samples up to index ``n``; past the end of the given audio it is silence."""
        if n <= self.fed:
            return
        if self.resampler is None:
            self.resampler = av.AudioResampler(format=self.stream.codec_context.format.name, layout=self.layout,
                                               rate=self.rate)
        chunk = np.zeros((self.audio.shape[0], n - self.fed), np.float32)
        avail = self.audio[:, self.fed : n]
        chunk[:, : avail.shape[1]] = avail
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self.layout)
        frame.sample_rate = self.rate
        # Explicit timestamps let the encoder report its priming delay as negative packet times,
        # which the muxer turns into an edit list (decoders then skip the priming samples).
        frame.pts = self.fed
        frame.time_base = Fraction(1, self.rate)
        for converted in self.resampler.resample(frame):
            self.fifo.write(converted)
        self.fed = n
        # Encoders with a fixed frame size (AAC: 1024) need exactly that many samples per frame.
        frame_size = self.stream.codec_context.frame_size or 1024
        while self.fifo.samples >= frame_size:
            self._encode(self.fifo.read(frame_size))

    def finish(self) -> None:
        if self.resampler is not None:
            for converted in self.resampler.resample(None):
                self.fifo.write(converted)
        if self.fifo.samples:
            self._encode(self.fifo.read())
        self._encode(None)

    def _encode(self, frame) -> None:
        for packet in self.stream.encode(frame):
            self.container.mux(packet)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: Fraction | int | str,
    preset: str | None = None,
    audio: np.ndarray | None = None,
    audio_rate: int = 48000,
    start_timecode: str | None = None,
    overwrite: bool = False,
    frame_count: int | None = None,
    progress: bool = False,
    colour: ColourInfo | None = None,
    pix_fmt: str | None = None,
    display_rotation: int | Sequence[int] = 0,
    field_order: str | None = None,
) -> Path:
    """Encode frames (and optional float audio) to ``path`` atomically; returns the path.

    ``frames``: (H, W, 3) uint8 / uint16 R'G'B' arrays or :class:`PlanarFrame` objects.
    ``audio`` is trimmed or padded with silence to the video's exact duration, so that every
    file we write has audio and video of equal length. ``frame_count`` only sizes the progress bar.
    ``colour``: the tags to carry (default: the first PlanarFrame's, else BT.709/BT.601 by size);
    ``pix_fmt``: overrides the preset's pixel format (e.g. FFV1 at ``yuv422p10le``).
    ``display_rotation``: counter-clockwise degrees a player should turn the frames, or a source's whole
    display matrix (9 ints, FFmpeg's layout; ``VideoReader.display_matrix``) to carry over exactly, mirror
    included, for a rotated source whose frames are written as stored; .mov, .mp4 and .mkv carry it, MXF
    and image sequences cannot (an OutputError, before anything is written).
    ``field_order``: an interlaced source's field order (``VideoInfo.field_order``: "tt", "bb", "tb",
    "bt") for the output's stream, so an NLE treats the new file as it treats the source; only the
    presets of :func:`keeps_field_order` carry it (the others are written progressive).
    """
    final = Path(path)
    spec = preset_for(final, preset)
    display_rotation = check_display_rotation(final, display_rotation, preset)
    if spec.name in ("dpx", "exr"):
        from s2v_toolkit.media.sequence import write_sequence

        return write_sequence(final, frames, fps, spec.name, start_timecode=start_timecode, overwrite=overwrite,
                              audio=audio, audio_rate=audio_rate, progress=progress, frame_count=frame_count)
    fps = snap_rate(Fraction(fps))
    tc = None
    if start_timecode:
        try:
            drop = ";" in start_timecode
            tc = frames_to_timecode(timecode_to_frames(start_timecode, fps), fps, drop_frame=drop)
        except ValueError as exc:
            raise OutputError(final, f"bad start timecode: {exc}") from None
    if isinstance(frames, np.ndarray):
        frame_count = frame_count or len(frames)
    with atomic_output(final, overwrite=overwrite) as tmp:
        bar = None
        if progress:  # only once the output is known to be writable
            from tqdm import tqdm

            bar = tqdm(total=frame_count, unit="frame", desc=f"writing {final.name}", leave=False)
        container = av.open(str(tmp), mode="w")
        try:
            if tc:
                container.metadata["timecode"] = tc
            vstream = None
            track: _AudioTrack | None = None
            written = 0
            for item in frames:
                interrupts.check()  # a SIGTERM stops the write at the next frame (s2v_toolkit.interrupts)
                if not isinstance(item, PlanarFrame) and np.asarray(item).dtype not in (np.uint8, np.uint16):
                    item = np.asarray(item, dtype=np.uint8)
                if vstream is None:
                    h, w = item.shape[:2]
                    if spec.even_size and (w % 2 or h % 2):
                        raise OutputError(final, f"{spec.name} needs an even frame size, got {w}x{h}")
                    out_fmt = _stream_pix_fmt(spec, item, pix_fmt)
                    src_colour = item.colour if isinstance(item, PlanarFrame) else ColourInfo()
                    out_colour = (colour or src_colour).with_defaults(out_fmt, h)
                    vstream = container.add_stream(spec.codec, rate=fps, options=dict(spec.options))
                    vstream.width, vstream.height, vstream.pix_fmt = w, h, out_fmt
                    out_colour.apply_to(vstream.codec_context)
                    vstream.time_base = 1 / fps
                    if field_order and keeps_field_order(final, spec.name):
                        vstream.codec_context.field_order = _FIELD_ORDER_CODES[field_order]
                    if isinstance(display_rotation, tuple):
                        vstream.set_display_matrix(display_rotation)
                    elif display_rotation:
                        vstream.set_display_rotation(display_rotation)
                    if tc:
                        vstream.metadata["timecode"] = tc
                    if audio is not None:
                        track = _AudioTrack(container, spec.audio_codec[final.suffix.lower()], audio, audio_rate,
                                            spec.audio_rate or audio_rate)
                frame = _av_frame(item, out_fmt, out_colour, h)
                frame.pts = written
                try:
                    packets = vstream.encode(frame)
                except av.error.FFmpegError as exc:
                    if written:
                        raise
                    # the encoder opens on the first frame: a size or format it refuses is the user's to fix
                    reason = str(exc).split("last error log: ", 1)[-1]
                    raise OutputError(final, f"the {spec.name} encoder refused {w}x{h} {out_fmt}: {reason}") from None
                for packet in packets:
                    container.mux(packet)
                written += 1
                if track:
                    # Audio is cut at the video's exact end: trimmed, or padded with silence.
                    track.feed_until(round(Fraction(written) / fps * track.rate))
                if bar:
                    bar.update(1)
            if vstream is None:
                raise OutputError(final, "no frames to write")
            for packet in vstream.encode(None):
                container.mux(packet)
            if track:
                track.finish()
        finally:
            container.close()
            if bar:
                bar.close()
    return final
