"""Dialogue extraction: one 16 kHz mono float32 analysis signal per dialogue track, at record time.

Sample ``n`` of a track's signal is record time ``n / sample_rate`` seconds from the timeline's first
frame. Clips are trimmed to their source ranges, gaps are silent, disabled clips/tracks are muted,
clip gain is applied where the format carries it. ``DialogueTrack.segments`` maps analysis samples
back to (clip, source time).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from s2v_toolkit.timeline.describe import TimelineClip, TimelineDescription, TrackInfo
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.media_access import probe_facts, read_audio_16k
from s2v_toolkit.timeline.media_link import OK
from s2v_toolkit.timeline.timecode import RationalTime, Time, rate_fraction

ANALYSIS_RATE = 16000


@dataclass
class DialogueSegment:
    """Samples ``[sample_start, sample_start + sample_count)`` come from ``clip_id`` from ``source_start`` on."""

    clip_id: str
    clip_name: str
    sample_start: int
    sample_count: int
    source_start: Time           # source (media) time at ``sample_start``
    speed: float = 1.0
    media_path: str | None = None

    def to_dict(self) -> dict:
        return {"clip_id": self.clip_id, "clip_name": self.clip_name, "sample_start": self.sample_start,
                "sample_count": self.sample_count, "source_start": self.source_start.to_dict(),
                "speed": self.speed, "media_path": self.media_path}

    @classmethod
    def from_dict(cls, d: dict) -> "DialogueSegment":
        return cls(d["clip_id"], d["clip_name"], d["sample_start"], d["sample_count"],
                   Time.from_dict(d["source_start"]), d.get("speed", 1.0), d.get("media_path"))


@dataclass
class DialogueTrack:
    track_id: str
    track_name: str
    sample_rate: int
    signal: np.ndarray           # float32 (n,), sample 0 = the timeline's first frame
    segments: list[DialogueSegment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def record_seconds(self, sample: int) -> Fraction:
        return Fraction(sample, self.sample_rate)

    def source_time_at(self, sample: int) -> tuple[str, RationalTime] | None:
        """(clip id, source time) heard at analysis ``sample``; ``None`` in gaps."""
        for seg in self.segments:
            if seg.sample_start <= sample < seg.sample_start + seg.sample_count:
                rate = seg.source_start.rate
                offset = Fraction(sample - seg.sample_start, self.sample_rate) * Fraction(seg.speed)
                value = seg.source_start.value + float(offset * rate_fraction(rate))
                return seg.clip_id, RationalTime(value, rate)
        return None

    def to_dict(self) -> dict:
        """Everything but the samples (those go to a WAV/NPY file)."""
        return {"track_id": self.track_id, "track_name": self.track_name, "sample_rate": self.sample_rate,
                "samples": int(self.signal.shape[0]), "segments": [s.to_dict() for s in self.segments],
                "problems": list(self.problems)}

    @classmethod
    def from_dict(cls, d: dict, signal: np.ndarray) -> "DialogueTrack":
        return cls(d["track_id"], d["track_name"], d["sample_rate"], np.asarray(signal, dtype=np.float32),
                   [DialogueSegment.from_dict(s) for s in d["segments"]], list(d.get("problems", [])))


def choose_dialogue_tracks(desc: TimelineDescription, selectors: list[str] | None = None) -> list[TrackInfo]:
    """Tracks to extract: ``selectors`` (track ids like "A2", or name patterns like "DX*"), else the
    tracks that look like dialogue (name or ``s2v`` metadata)."""
    audio = [t for t in desc.tracks if t.kind == "audio"]
    if not selectors:
        return [t for t in audio if t.dialogue]
    chosen: list[TrackInfo] = []
    for sel in selectors:
        hits = [t for t in audio if t.id.lower() == sel.lower()
                or fnmatch.fnmatch(t.name.lower(), sel.lower())
                or (not any(c in sel for c in "*?[") and re.search(re.escape(sel), t.name, re.I))]
        if not hits:
            names = ", ".join(f"{t.id} '{t.name}'" for t in audio) or "none"
            raise TimelineError(desc.path, f"no audio track matches '{sel}' (audio tracks: {names})")
        chosen.extend(t for t in hits if t not in chosen)
    return chosen


def _file_offset(clip: TimelineClip) -> Fraction:
    """Seconds into the file where the clip's source range starts (source time minus media origin)."""
    if clip.media.available_range is not None:
        origin = clip.media.available_range.start.seconds
    else:
        facts = probe_facts(clip.media.path)
        origin = Fraction(facts.start_frame) / facts.fps if facts.fps and facts.start_frame else Fraction(0)
    return clip.media_range.start.seconds - origin


def render_track(desc: TimelineDescription, track: TrackInfo, sample_rate: int = ANALYSIS_RATE) -> DialogueTrack:
    total = int(round((desc.duration.seconds) * sample_rate))
    signal = np.zeros(total, dtype=np.float32)
    out = DialogueTrack(track.id, track.name, sample_rate, signal)
    channels_seen: dict[str, int] = {}
    if not track.enabled:
        out.problems.append(f"track {track.id} '{track.name}' is disabled (muted): signal is silent")
    for cid in track.clip_ids:
        clip = desc.clip(cid)
        label = f"{clip.id} '{clip.name}'"
        if not clip.active:
            if track.enabled:
                out.problems.append(f"{label}: disabled, left silent")
            continue
        if clip.media.status != OK:
            out.problems.append(f"{label}: media {clip.media.status}, left silent")
            continue
        if clip.freeze_frame:
            out.problems.append(f"{label}: freeze frame has no audio, left silent")
            continue
        first = int(round(clip.record.start_seconds * sample_rate))
        last = int(round((clip.record.start_seconds + clip.record.duration_seconds) * sample_rate))
        first_c, last_c = max(first, 0), min(last, total)
        if last_c <= first_c:
            continue
        n = last - first
        try:
            start = _file_offset(clip)
            channel = clip.source_channel
            if channel is not None and channel >= _channel_count(clip.media.path, channels_seen):
                out.problems.append(f"{label}: plays channel {channel + 1}, media has fewer; all channels mixed")
                channel = None
            if clip.speed == 1.0:
                audio = read_audio_16k(clip.media.path, start, Fraction(n, sample_rate), sample_rate, channel)
            else:
                # NLE speed change without pitch correction: read what the clip consumes, resample to fit
                used = clip.media_range.duration_seconds
                raw = read_audio_16k(clip.media.path, start, used, sample_rate, channel)
                if clip.speed < 0:
                    raw = raw[::-1]
                pos = np.linspace(0, max(len(raw) - 1, 0), n)
                audio = np.interp(pos, np.arange(len(raw)), raw).astype(np.float32) if len(raw) else np.zeros(n)
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            out.problems.append(f"{label}: cannot read audio ({msg}), left silent")
            continue
        if clip.gain_db:
            audio = audio * np.float32(10 ** (clip.gain_db / 20) if np.isfinite(clip.gain_db) else 0.0)
        # clips may overlap inside nested stacks: mix, as an NLE does
        signal[first_c:last_c] += audio[first_c - first:last_c - first]
        out.segments.append(DialogueSegment(
            clip.id, clip.name, first_c, last_c - first_c,
            Time.from_otio(clip.source.start.to_otio() + _src_offset(clip, first_c - first, sample_rate)),
            clip.speed, clip.media.path,
        ))
    out.segments.sort(key=lambda s: s.sample_start)
    return out


def _channel_count(path: str, seen: dict[str, int]) -> int:
    if path not in seen:
        seen[path] = probe_facts(path).audio_channels
    return seen[path]


def _src_offset(clip: TimelineClip, samples: int, sample_rate: int) -> RationalTime:
    rate = clip.source.start.rate
    return RationalTime(float(Fraction(samples, sample_rate) * rate_fraction(rate)), rate)


def extract_dialogue(desc: TimelineDescription, tracks: list[str] | None = None,
                     sample_rate: int = ANALYSIS_RATE) -> list[DialogueTrack]:
    """Analysis signals of the chosen dialogue tracks (see :func:`choose_dialogue_tracks`)."""
    chosen = choose_dialogue_tracks(desc, tracks)
    if not chosen:
        names = ", ".join(f"{t.id} '{t.name}'" for t in desc.tracks if t.kind == "audio") or "none"
        raise TimelineError(desc.path, f"no dialogue track found by name or metadata; choose one (audio tracks: {names})")
    return [render_track(desc, t, sample_rate) for t in chosen]
