"""``probe``: what a media file holds: exact frame rate, frame count, start timecode, VFR, audio streams."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

import av

from s2v_toolkit.errors import MediaError
from s2v_toolkit.media.container import opened
from s2v_toolkit.media.frame_index import index_frames
from s2v_toolkit.media.timecode import (
    frames_to_timecode,
    is_drop_frame_rate,
    is_timecode,
    timecode_to_frames,
)



FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}  # FFmpeg's AVFieldOrder codes
INTERLACED_ORDERS = ("tt", "bb", "tb", "bt")
FIELD_ORDER_WORDS = {"progressive": "progressive", "tt": "top field first", "bb": "bottom field first",
                     "tb": "top field stored first, bottom shown first",
                     "bt": "bottom field stored first, top shown first"}


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
    vfr: bool  # source frames do not map one to one onto the grid at fps (duplicates/drops)
    pix_fmt: str | None
    duration: float  # seconds
    # What the packets say (measured by demuxing every packet, not the container's claims):
    declared_frames: int | None = None  # the container's frame count (may be wrong)
    source_frames: int | None = None  # frames actually displayed (edit lists honoured)
    start_time: float = 0.0  # first displayed frame's presentation time (the start offset), seconds
    timestamps_regular: bool = True  # every frame within a tenth of a frame of its grid time
    max_jitter: float = 0.0  # largest timestamp deviation from the grid, in frames
    duplicated: int = 0  # grid frames that repeat the previous source frame (VFR gaps)
    dropped: int = 0  # source frames no grid frame shows (VFR bursts)
    edit_list: bool = False  # the container hides packets or offsets its start (edit list)
    discarded_packets: int = 0  # packets hidden by the edit list
    bit_depth: int | None = None  # bits per sample of pix_fmt (10 for ProRes 422 HQ)
    colour: dict | None = None    # primaries / transfer / matrix / range (pixels.ColourInfo; None = not tagged)
    # FFmpeg's field order: "progressive", "tt" / "bb" (interlaced, top / bottom field first), "tb" / "bt"
    # (interlaced, fields stored in one order and shown in the other); None where the file does not say
    field_order: str | None = None

    @property
    def interlaced(self) -> bool:
        return self.field_order in INTERLACED_ORDERS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        return cls(**{**d, "fps": Fraction(d["fps"])})

    def timing_summary(self) -> str:
        """One line: what the timestamps really say."""
        parts = [f"{self.source_frames if self.source_frames is not None else self.frame_count} source frames"]
        if self.declared_frames is not None and self.declared_frames != self.source_frames:
            parts.append(f"container declares {self.declared_frames}")
        if self.vfr:
            parts.append(f"variable rate: on the {float(self.fps):.3f} fps grid {self.duplicated} frame(s) "
                         f"duplicated, {self.dropped} dropped (s2vt convert --cfr makes it constant)")
        elif not self.timestamps_regular:
            parts.append(f"irregular timestamps (up to {self.max_jitter:.2f} frame off the grid)")
        else:
            parts.append("constant rate")
        if self.edit_list:
            parts.append(f"edit list ({self.discarded_packets} packet(s) hidden)")
        if self.start_time:
            parts.append(f"starts at {self.start_time:.6f} s")
        if self.interlaced:
            parts.append(f"interlaced ({self.field_order}: {FIELD_ORDER_WORDS[self.field_order]})")
        return ", ".join(parts)


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
    # Broadcast WAV (bext chunk) TimeReference: the first sample's time of day in samples since midnight,
    # as sound recorders stamp it; a timeline's source timecodes for the file count from there
    time_reference: int | None = None
    # a sound-only file's start timecode (Avid's OP-Atom MXF, a QuickTime timecode track): counted in frames
    # of a rate the file does not state to FFmpeg, so it is placed at the rate of the timeline that uses it
    audio_timecode: str | None = None

    @property
    def start_seconds(self) -> Fraction:
        """Source time of the file's first frame/sample, in seconds: the video's start timecode, else
        the BWF time reference at the audio's rate, else 0 (a sound-only file's :attr:`audio_timecode`
        is read at the using timeline's rate: ``timeline.media_access.MediaFacts.origin_at``)."""
        v = self.video
        if v is not None:
            return Fraction(v.start_frame) / v.fps if v.start_timecode else Fraction(0)
        if self.time_reference and self.audio and self.audio[0].sample_rate:
            return Fraction(self.time_reference, self.audio[0].sample_rate)
        return Fraction(0)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "format_name": self.format_name,
            "duration": self.duration,
            "video": self.video.to_dict() if self.video else None,
            "audio": [a.to_dict() for a in self.audio],
            "time_reference": self.time_reference,
            "audio_timecode": self.audio_timecode,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MediaInfo":
        return cls(
            path=d["path"], format_name=d["format_name"], duration=d["duration"],
            video=VideoInfo.from_dict(d["video"]) if d.get("video") else None,
            audio=[AudioInfo.from_dict(a) for a in d.get("audio", [])],
            time_reference=d.get("time_reference"),
            audio_timecode=d.get("audio_timecode"),
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
            lines.append("  timing: " + v.timing_summary())
        for a in self.audio:
            lines.append(f"  audio #{a.index}: {a.codec} {a.sample_rate} Hz, {a.channels} ch ({a.layout}), {a.duration:.3f} s")
        if self.time_reference is not None and not v and self.audio:
            t = float(self.start_seconds)
            lines.append(f"  BWF time reference: {self.time_reference} samples "
                         f"({int(t // 3600):02d}:{int(t // 60 % 60):02d}:{t % 60:09.6f} time of day)")
        if self.audio_timecode is not None and not v and not self.time_reference:
            lines.append(f"  start timecode: {self.audio_timecode} (sound only: read at the rate of the timeline "
                         "that uses it)")
        if not v and not self.audio:
            lines.append("  (no audio or video streams)")
        return "\n".join(lines)


def _find_timecode(container, vstream) -> str | None:
    """Start timecode from the video stream (if any), a tmcd data stream, or the container (in that order)."""
    def tag(metadata) -> str | None:  # Matroska writes "TIMECODE", QuickTime/MXF "timecode"
        return next((v for k, v in metadata.items() if k.lower() == "timecode"), None)

    candidates = [tag(vstream.metadata)] if vstream is not None else []
    candidates += [tag(s.metadata) for s in container.streams if s.type == "data"]
    candidates.append(tag(container.metadata))
    for tc in candidates:
        if tc:
            return tc.strip()
    return None


def _has_edit_offset(container, vstream, index) -> bool:
    """A QuickTime/MP4 edit list that shifts the start: the first shown frame is not at the stream's start."""
    return ("mov" in container.format.name and vstream.start_time is not None
            and vstream.start_time != index.start_pts)


# probe() demuxes every video packet (about 60 us each: seconds for a feature-length master), and one
# command probes the same file several times (the reader, the tracker, the re-dub): results are kept
# per process, keyed by the file's identity and modification, and handed out as copies.
_CACHE: OrderedDict[tuple, MediaInfo] = OrderedDict()
_CACHE_SIZE = 64


def _copy(info: MediaInfo, path: str) -> MediaInfo:
    video = None
    if info.video is not None:
        video = replace(info.video)
        video._index = info.video._index  # shared: readers never modify it
    return replace(info, path=path, video=video, audio=[replace(a) for a in info.audio])


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
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        key = None  # opened() below says what is wrong
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _copy(_CACHE[key], path)
    info = _probe(path)
    if key is not None:
        _CACHE[key] = _copy(info, path)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return info


def _probe(path: str) -> MediaInfo:
    with opened(path) as container:
        duration = container.duration / av.time_base if container.duration else 0.0
        video = None
        vstreams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if vstreams:
            vs = vstreams[0]
            try:
                index = index_frames(container, vs)
            except ValueError:
                raise MediaError(path, "video stream has no frame rate") from None
            fps = index.fps
            frame_count = index.frame_count
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
                drop_frame=drop and is_drop_frame_rate(fps), start_frame=start_frame, vfr=index.vfr,
                pix_fmt=vs.codec_context.pix_fmt, duration=v_duration,
                declared_frames=index.declared_frames, source_frames=index.source_frames,
                start_time=float(index.start_pts * index.time_base), timestamps_regular=index.regular,
                max_jitter=round(index.max_jitter, 4), duplicated=len(index.duplicated), dropped=len(index.dropped),
                edit_list=index.discarded_packets > 0 or _has_edit_offset(container, vs, index),
                discarded_packets=index.discarded_packets,
            )
            video._index = index  # the readers' map of the file (not serialised)
            _add_pixel_info(video, vs)
            video.field_order = FIELD_ORDERS.get(int(getattr(vs.codec_context, "field_order", 0) or 0))
            if video.field_order is None and video.codec == "dvvideo" and video.height in (480, 576):
                video.field_order = "bb"  # SD DV is bottom field first by its standard (IEC 61834); FFmpeg says none
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
        audio_tc = None
        if video is None:
            audio_tc = _find_timecode(container, None)
            if audio_tc and not is_timecode(audio_tc):
                audio_tc = None  # an unusable tag: none rather than a wrong one
        return MediaInfo(path=path, format_name=container.format.name, duration=duration, video=video, audio=audio,
                         time_reference=_time_reference(container), audio_timecode=audio_tc)


def _time_reference(container) -> int | None:
    """The BWF bext TimeReference (FFmpeg's wav demuxer: format tag ``time_reference``), if any."""
    text = next((v for k, v in container.metadata.items() if k.lower() == "time_reference"), None)
    try:
        value = int(str(text).strip()) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None
