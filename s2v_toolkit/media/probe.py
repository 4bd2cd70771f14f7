"""``probe``: what a media file holds: exact frame rate, frame count, start timecode, VFR, audio streams."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import av

from s2v_toolkit.errors import MediaError
from s2v_toolkit.media.container import opened
from s2v_toolkit.media.timecode import (
    frames_to_timecode,
    is_drop_frame_rate,
    snap_rate,
    timecode_to_frames,
)

# Packets examined for variable-frame-rate detection when the container does not say.
_VFR_SCAN_PACKETS = 2000


@dataclass
class VideoInfo:
    index: int
    codec: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    start_timecode: str | None
    drop_frame: bool
    start_frame: int  # the start timecode as a frame number at fps (0 when there is none)
    vfr: bool
    pix_fmt: str | None
    duration: float  # seconds
    bit_depth: int | None = None  # bits per sample of pix_fmt (10 for ProRes 422 HQ)
    colour: dict | None = None    # primaries / transfer / matrix / range (pixels.ColourInfo; None = not tagged)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        return cls(**{**d, "fps": Fraction(d["fps"])})


@dataclass
class AudioInfo:
    index: int  # position among the file's audio streams (0 = first)
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioInfo":
        return cls(**d)


@dataclass
class MediaInfo:
    path: str
    format_name: str
    duration: float
    video: VideoInfo | None
    audio: list[AudioInfo] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "format_name": self.format_name,
            "duration": self.duration,
            "video": self.video.to_dict() if self.video else None,
            "audio": [a.to_dict() for a in self.audio],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MediaInfo":
        return cls(
            path=d["path"], format_name=d["format_name"], duration=d["duration"],
            video=VideoInfo.from_dict(d["video"]) if d.get("video") else None,
            audio=[AudioInfo.from_dict(a) for a in d.get("audio", [])],
        )

    def summary(self) -> str:
        lines = [f"{self.path}  [{self.format_name}, {self.duration:.3f} s]"]
        v = self.video
        if v:
            tc = v.start_timecode or "none"
            lines.append(
                f"  video: {v.codec} {v.width}x{v.height} {v.pix_fmt or '?'} @ {v.fps.numerator}/{v.fps.denominator}"
                f" ({float(v.fps):.3f} fps{', VFR' if v.vfr else ''}), {v.frame_count} frames, start TC {tc}"
            )
        for a in self.audio:
            lines.append(f"  audio #{a.index}: {a.codec} {a.sample_rate} Hz, {a.channels} ch ({a.layout}), {a.duration:.3f} s")
        if not v and not self.audio:
            lines.append("  (no audio or video streams)")
        return "\n".join(lines)


def _find_timecode(container, vstream) -> str | None:
    """Start timecode from the video stream, a tmcd data stream, or the container (in that order)."""
    def tag(metadata) -> str | None:  # Matroska writes "TIMECODE", QuickTime/MXF "timecode"
        return next((v for k, v in metadata.items() if k.lower() == "timecode"), None)

    candidates = [tag(vstream.metadata)]
    candidates += [tag(s.metadata) for s in container.streams if s.type == "data"]
    candidates.append(tag(container.metadata))
    for tc in candidates:
        if tc:
            return tc.strip()
    return None


def _stream_fps(vstream) -> Fraction:
    for rate in (vstream.average_rate, vstream.guessed_rate, vstream.base_rate):
        if rate:
            return snap_rate(Fraction(rate))
    raise ValueError("no frame rate")


def scan_video_packets(container, vstream, limit: int | None = None) -> tuple[int, list[int]]:
    """Demux (no decoding) video packets from the current position: their count and sorted timestamps."""
    pts: list[int] = []
    count = 0
    for packet in container.demux(vstream):
        if packet.size == 0:  # flush packet at end of stream
            continue
        count += 1
        if packet.pts is not None:
            pts.append(packet.pts)
        if limit is not None and count >= limit:
            break
    pts.sort()
    return count, pts


def _is_vfr(pts: list[int], time_base: Fraction, fps: Fraction) -> bool:
    """True when packet spacing deviates from 1/fps by more than half a frame anywhere."""
    if len(pts) < 3:
        return False
    expected = 1 / (fps * time_base)  # in time_base units
    for a, b in zip(pts, pts[1:]):
        if abs((b - a) - expected) > expected / 2:
            return True
    return False


def _add_pixel_info(video: VideoInfo, vs) -> None:
    """Bit depth and colour tags of the stream (see media/pixels.py)."""
    from s2v_toolkit.media.pixels import ColourInfo, bit_depth

    if video.pix_fmt:
        try:
            video.bit_depth = bit_depth(video.pix_fmt)
        except (ValueError, av.error.FFmpegError):
            video.bit_depth = None
    video.colour = ColourInfo.from_av(vs.codec_context).to_dict()


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe ``path``. Raises :class:`MediaError` for missing, non-media or unreadable files."""
    path = os.fspath(path)
    from s2v_toolkit.media.sequence import is_sequence_path, probe_sequence

    if is_sequence_path(path):  # name.%07d.dpx or a folder of DPX/EXR files (media/sequence.py)
        return probe_sequence(path)
    with opened(path) as container:
        duration = container.duration / av.time_base if container.duration else 0.0
        video = None
        vstreams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if vstreams:
            vs = vstreams[0]
            try:
                fps = _stream_fps(vs)
            except ValueError:
                raise MediaError(path, "video stream has no frame rate") from None
            tb = Fraction(vs.time_base) if vs.time_base else Fraction(1, 90000)
            sample_count, sample_pts = scan_video_packets(container, vs, limit=_VFR_SCAN_PACKETS)
            vfr = _is_vfr(sample_pts, tb, fps)
            if vs.frames and vs.frames > 0:
                frame_count = int(vs.frames)
            elif sample_count < _VFR_SCAN_PACKETS:
                frame_count = sample_count  # the scan already saw every packet
            else:
                # Containers without a frame count (MXF, MKV): count packets once, demux only.
                container.seek(0, stream=vs)
                frame_count, _ = scan_video_packets(container, vs)
            if frame_count == 0:
                raise MediaError(path, "video stream holds no frames (corrupt or truncated file)")
            v_duration = float(frame_count / fps)
            tc = _find_timecode(container, vs)
            start_frame, drop = 0, False
            if tc:
                try:
                    start_frame = timecode_to_frames(tc, fps)
                    drop = ";" in tc
                    tc = frames_to_timecode(start_frame, fps, drop_frame=drop)  # normalised form
                except ValueError:
                    tc, start_frame = None, 0  # unusable timecode tag: report none rather than a wrong one
            video = VideoInfo(
                index=vs.index, codec=vs.codec_context.name, width=vs.codec_context.width,
                height=vs.codec_context.height, fps=fps, frame_count=frame_count, start_timecode=tc,
                drop_frame=drop and is_drop_frame_rate(fps), start_frame=start_frame, vfr=vfr,
                pix_fmt=vs.codec_context.pix_fmt, duration=v_duration,
            )
            _add_pixel_info(video, vs)
            duration = duration or v_duration
        audio = []
        for i, s in enumerate(container.streams.audio):
            cc = s.codec_context
            a_dur = float(s.duration * s.time_base) if s.duration and s.time_base else duration
            audio.append(AudioInfo(
                index=i, codec=cc.name, sample_rate=int(cc.sample_rate or 0), channels=int(cc.channels or 0),
                layout=cc.layout.name if cc.layout else "unknown", duration=a_dur,
            ))
        if video is None and not audio:
            raise MediaError(path, "has neither audio nor video streams")
        return MediaInfo(path=path, format_name=container.format.name, duration=duration, video=video, audio=audio)
