"""Dialogue extraction: one 16 kHz mono float32 analysis signal per dialogue track, at record time.

Sample ``n`` of a track's signal is record time ``n / sample_rate`` seconds from the timeline's first
frame. Clips are trimmed to their source ranges, gaps are silent, disabled clips/tracks are muted,
clip gain is applied where the format carries it. ``DialogueTrack.segments`` maps analysis samples
back to (clip, source time).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from s2v_toolkit.timeline.describe import TimelineClip, TimelineDescription, TrackInfo
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.media_access import probe_facts, range_outside_media, read_audio_16k
from s2v_toolkit.timeline.media_link import OK
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE
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
    signal: np.ndarray           # float32 (n,), sample 0 = the timeline's first frame (+ ``first_sample``)
    segments: list[DialogueSegment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reason: str = ""             # why the track was taken as dialogue (role, name, measured, chosen)
    first_sample: int = 0        # a window's first record sample (render_track(window=)); segments count from it

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
                "problems": list(self.problems), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict, signal: np.ndarray) -> "DialogueTrack":
        return cls(d["track_id"], d["track_name"], d["sample_rate"], np.asarray(signal, dtype=np.float32),
                   [DialogueSegment.from_dict(s) for s in d["segments"]], list(d.get("problems", [])))


def choose_dialogue_tracks(desc: TimelineDescription, selectors: list[str] | None = None, *,
                           speech_ratio=None, measure: bool = True) -> list[TrackInfo]:
    """Tracks to extract: ``selectors`` (track ids like "A2", or name patterns like "DX*"), else the
    tracks that look like dialogue (FCPXML role or name, see ``roles``), else, where names say
    nothing, the tracks with the most speech by a measured rule (``speech_ratio(signal, rate)``,
    default :func:`speech_ratio`; a caller may pass its VAD's). Each chosen track's
    ``dialogue_reason`` says why it was chosen."""
    audio = [t for t in desc.tracks if t.kind == "audio"]
    if not selectors:
        named = [t for t in audio if t.dialogue]
        if named or not measure:
            return named
        return _measured_choice(desc, audio, speech_ratio or speech_ratio_of)
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


MEASURE_RATE = 8000
# a dialogue signal cut from the cut for diarization starts on a multiple of 16 s (500 VAD frames of 512
# samples at 16 kHz): its analysis grid falls where it falls on the whole track, so the turns are the same
DIARIZATION_GRID = 16 * ANALYSIS_RATE
MIN_SPEECH_RATIO = 0.15


def speech_ratio_of(signal: np.ndarray, sample_rate: int) -> float:
    """Share of 30 ms frames that sound like speech: loud enough above the track's own floor, with
    a voiced, non-flat spectrum (spectral flatness), inside a syllable-rate energy modulation.

    A small measure for choosing tracks, not a VAD: music scores lower because it rarely pauses
    (the modulation test), noise and ambience because their spectrum is flat."""
    x = np.asarray(signal, dtype=np.float32)
    n = int(0.03 * sample_rate)
    if x.size < n * 10:
        return 0.0
    frames = x[: x.size // n * n].reshape(-1, n)
    energy = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    loud = energy > max(-55.0, float(np.percentile(energy, 10)) + 12.0)
    if not loud.any():
        return 0.0
    spec = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) + 1e-9
    band = spec[:, max(1, int(80 * n / sample_rate)): int(4000 * n / sample_rate)]
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    voiced = flatness < 0.6   # white noise sits near 0.85, voiced speech well below
    # speech pauses between syllables/words: the loud state changes several times a second
    changes = np.abs(np.diff(loud.astype(np.int8)))
    window = max(1, int(1.0 / 0.03))
    rate = np.convolve(changes, np.ones(window), mode="same")[: loud.size - 1]
    modulated = np.concatenate([[False], rate >= 2])
    return float(np.mean(loud & voiced & modulated))


def audio_window(desc: TimelineDescription, sample_rate: int, align: int = 1,
                 start_only: bool = False) -> tuple[int, int] | None:
    """Record samples ``(first, end)`` from the first audio clip's start to the last one's end, for
    :func:`render_track`'s ``window``; None without audio clips. A Pro Tools session placed at 01:00:00:00
    exports an AAF whose clips start an hour into the composition: rendered whole, a dialogue track is that
    hour of silence first (230 MB at 16 kHz) and diarization reads it all. ``first`` is rounded down to a
    multiple of ``align`` samples (an analysis whose frame grid should stay where it is on the whole track);
    ``start_only``: ``end`` is the timeline's end (an analysis that should end as it does on the whole
    track)."""
    ids = {c for t in desc.tracks if t.kind == "audio" for c in t.clip_ids}
    clips = [c for c in desc.clips if c.id in ids]
    if not clips:
        return None
    total = int(round(desc.duration.seconds * sample_rate))
    first = min(int(c.record.start_seconds * sample_rate) for c in clips)
    end = max(int(round((c.record.start_seconds + c.record.duration_seconds) * sample_rate)) for c in clips)
    first, end = max(0, min(first, total)), max(0, min(end, total))
    first -= first % max(1, align)
    if start_only:
        end = total
    return (first, end) if end > first else None


def diarization_window(desc: TimelineDescription) -> tuple[int, int] | None:
    """The dialogue samples (16 kHz) diarization reads: from the cut's first sound, on the
    :data:`DIARIZATION_GRID`, to the timeline's end, so the turns are those of the whole track
    (``s2vt plan``, ``s2vt diarize TIMELINE``; bench/bench_late_sound.py)."""
    return audio_window(desc, ANALYSIS_RATE, align=DIARIZATION_GRID, start_only=True)


def _measured_choice(desc, audio: list[TrackInfo], measure) -> list[TrackInfo]:
    scored = []
    # every track measured over the same stretch: from the first audio clip to the last. The silence before a
    # session's first clip (an hour in a Pro Tools AAF) is no one's speech: counted, it put every track's
    # ratio under MIN_SPEECH_RATIO, so no track was found to hold speech
    window = audio_window(desc, MEASURE_RATE) or (0, 0)
    for t in audio:
        try:
            sig = render_track(desc, t, MEASURE_RATE, allow_missing_media=True, window=window).signal
        except Exception:  # a track that cannot be heard is not dialogue
            continue
        scored.append((float(measure(sig, MEASURE_RATE)), t))
    if not scored:
        return []
    best = max(r for r, _ in scored)
    chosen = []
    for r, t in sorted(scored, key=lambda x: -x[0]):
        if r >= MIN_SPEECH_RATIO and r >= 0.5 * best:
            # a copy: the description itself keeps saying what the names said
            chosen.append(replace(t, dialogue=True, dialogue_reason=f"measured speech ratio {r:.2f} "
                                  f"(names and roles say nothing; best {best:.2f})"))
    return sorted(chosen, key=lambda t: t.stack_index)


def _file_offset(clip: TimelineClip) -> Fraction:
    """Seconds into the file where the clip's source range starts (source time minus media origin).

    The origin is the media's range as the timeline states it, else the file's own: its start timecode,
    or for a sound recorder's WAV its BWF time reference (an EDL's source timecodes count from there)."""
    if clip.media.available_range is not None:
        origin = clip.media.available_range.start.seconds
    else:
        origin = probe_facts(clip.media.path).origin_at(clip.media_range.start.rate)
    return clip.media_range.start.seconds - origin


def _track_meta(desc: TimelineDescription, track: TrackInfo) -> dict:
    item = desc.otio_items.get(track.id)
    md = item.metadata.get(METADATA_NAMESPACE) if item is not None else None
    return {str(k): v for k, v in md.items()} if md is not None else {}


def missing_media(desc: TimelineDescription, track: TrackInfo) -> list[str]:
    """Clips of ``track`` that would be heard but whose media is not found ("A1.3 'name' at TC")."""
    out = []
    for cid in track.clip_ids:
        clip = desc.clip(cid)
        if clip.active and not clip.s2v.get("muted") and clip.media.status != OK and not clip.freeze_frame:
            out.append(f"{clip.id} '{clip.name}' at {desc.record_timecode(clip.record.start.to_otio())} "
                       f"({clip.media.status}{': ' + clip.media.path if clip.media.path else ''})")
    return out


def _fade(n: int, fade_in: float, fade_out: float, sample_rate: int) -> np.ndarray | None:
    if not (fade_in or fade_out):
        return None
    g = np.ones(n, dtype=np.float32)
    a = min(n, int(round(fade_in * sample_rate))) if fade_in else 0
    b = min(n, int(round(fade_out * sample_rate))) if fade_out else 0
    if a:
        g[:a] *= np.linspace(0.0, 1.0, a, endpoint=False, dtype=np.float32)
    if b:
        g[n - b:] *= np.linspace(1.0, 0.0, b, endpoint=False, dtype=np.float32)
    return g


def _envelope(n: int, points, sample_rate: int) -> np.ndarray:
    t = np.arange(n, dtype=np.float64) / sample_rate
    db = np.interp(t, [float(p[0]) for p in points], [float(p[1]) for p in points])
    return (10 ** (db / 20)).astype(np.float32)


def render_track(desc: TimelineDescription, track: TrackInfo, sample_rate: int = ANALYSIS_RATE, *,
                 allow_missing_media: bool = False, window: tuple[int, int] | None = None) -> DialogueTrack:
    """The track as the mixer set it: clip gain (and gain envelopes), fades, clip/track mute,
    solo, track gain and the channel each clip plays, at record time.

    Media that cannot be found raises :class:`TimelineError` naming each clip, unless
    ``allow_missing_media`` (then those clips are silent and listed in ``problems``).
    ``window=(first, end)``: only record samples ``first..end-1`` (the same samples as the whole track's
    slice, without the whole track in memory: a feature's dialogue at 48 kHz is a gigabyte a track)."""
    missing = missing_media(desc, track)
    if missing and not allow_missing_media:
        raise TimelineError(desc.path, f"track {track.id} '{track.name}': media not found for "
                            f"{len(missing)} clip(s): " + "; ".join(missing)
                            + " (relink with --search DIR, or pass --allow-missing-media to accept silence there)")
    total = int(round((desc.duration.seconds) * sample_rate))
    w0, w1 = window if window is not None else (0, total)
    if not 0 <= w0 <= w1:
        raise ValueError(f"window {window} is not a range of record samples from 0")
    signal = np.zeros(w1 - w0, dtype=np.float32)
    out = DialogueTrack(track.id, track.name, sample_rate, signal, first_sample=w0)
    channels_seen: dict[str, int] = {}
    tmeta = _track_meta(desc, track)
    soloed = [t.id for t in desc.tracks if t.kind == "audio" and _track_meta(desc, t).get("solo")]
    if not track.enabled:
        out.problems.append(f"track {track.id} '{track.name}' is disabled (muted): signal is silent")
        return out
    if tmeta.get("muted"):
        out.problems.append(f"track {track.id} '{track.name}' is muted in the mix: signal is silent")
        return out
    if soloed and track.id not in soloed:
        out.problems.append(f"track {track.id} '{track.name}' is not soloed (solo on {', '.join(soloed)}): "
                            "signal is silent")
        return out
    track_gain = float(tmeta.get("gain_db") or 0.0)
    for cid in track.clip_ids:
        clip = desc.clip(cid)
        label = f"{clip.id} '{clip.name}'"
        if clip.s2v.get("muted"):
            out.problems.append(f"{label}: muted, left silent")
            continue
        if not clip.active:
            out.problems.append(f"{label}: disabled, left silent")
            continue
        if clip.media.status != OK:
            out.problems.append(f"{label}: media {clip.media.status}, left silent (--allow-missing-media)")
            continue
        if clip.freeze_frame:
            out.problems.append(f"{label}: freeze frame has no audio, left silent")
            continue
        first = int(round(clip.record.start_seconds * sample_rate))
        last = int(round((clip.record.start_seconds + clip.record.duration_seconds) * sample_rate))
        first_c, last_c = max(first, 0, w0), min(last, total, w1)
        if last_c <= first_c:
            continue
        n = last - first
        k, m = first_c - first, last_c - first_c  # the part of the clip this render holds
        try:
            start = _file_offset(clip)
            channel = clip.source_channel
            if channel is not None and channel >= _channel_count(clip.media.path, channels_seen):
                out.problems.append(f"{label}: plays channel {channel + 1}, media has fewer; all channels mixed")
                channel = None
            # what the clip consumes of its media (a speed change reads more or less than it plays)
            used = Fraction(n, sample_rate) if clip.speed == 1.0 else Fraction(clip.media_range.duration_seconds)
            facts = probe_facts(clip.media.path)
            outside = range_outside_media(clip.media_range.start.seconds - start, start, start + used,
                                          Fraction(facts.duration).limit_denominator(1_000_000))
            if outside:  # read as silence: said, never silently
                out.problems.append(f"{label}: {outside}")
            if clip.speed == 1.0:  # only the samples this render holds
                audio = read_audio_16k(clip.media.path, start + Fraction(k, sample_rate), Fraction(m, sample_rate),
                                       sample_rate, channel)
            else:
                # NLE speed change without pitch correction: read what the clip consumes, resample to fit
                raw = read_audio_16k(clip.media.path, start, used, sample_rate, channel)
                if clip.speed < 0:
                    raw = raw[::-1]
                pos = np.linspace(0, max(len(raw) - 1, 0), n)
                audio = np.interp(pos, np.arange(len(raw)), raw).astype(np.float32) if len(raw) else np.zeros(n)
                audio = audio[k:k + m]
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            out.problems.append(f"{label}: cannot read audio ({msg}), left silent")
            continue
        gain = (clip.gain_db or 0.0) + track_gain
        if gain:
            audio = audio * np.float32(10 ** (gain / 20) if np.isfinite(gain) and gain > -144 else 0.0)
        if clip.s2v.get("gain_envelope"):
            audio = audio * _envelope(n, clip.s2v["gain_envelope"], sample_rate)[k:k + m]
        fade = _fade(n, float(clip.s2v.get("fade_in") or 0), float(clip.s2v.get("fade_out") or 0), sample_rate)
        if fade is not None:
            audio = audio * fade[k:k + m]
        # clips may overlap inside nested stacks: mix, as an NLE does
        signal[first_c - w0:last_c - w0] += audio
        out.segments.append(DialogueSegment(
            clip.id, clip.name, first_c - w0, m,
            Time.from_otio(clip.source.start.to_otio() + _src_offset(clip, k, sample_rate)),
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
                     sample_rate: int = ANALYSIS_RATE, *, allow_missing_media: bool = False,
                     speech_ratio=None, window: tuple[int, int] | None = None) -> list[DialogueTrack]:
    """Analysis signals of the chosen dialogue tracks (see :func:`choose_dialogue_tracks`), mixed as
    the editor/mixer set them. Missing media raises one error naming every such clip of every
    chosen track, unless ``allow_missing_media``. ``window``: record samples (first, end) only
    (:func:`render_track`)."""
    chosen = choose_dialogue_tracks(desc, tracks, speech_ratio=speech_ratio)
    if not chosen:
        audio = [t for t in desc.tracks if t.kind == "audio"]
        names = ", ".join(f"{t.id} '{t.name}'" for t in audio) or "none"
        unheard = [f"{t.id}: {len(m)} clip(s), e.g. {m[0]}" for t in audio for m in [missing_media(desc, t)] if m]
        why = (f"; media not found, so speech could not be measured ({'; '.join(unheard)}): relink with "
               "--search DIR" if unheard else "")
        raise TimelineError(desc.path, "no dialogue track found by role, name or measured speech; "
                            f"choose one with --track (audio tracks: {names}){why}")
    if not allow_missing_media:
        missing = [m for t in chosen for m in missing_media(desc, t)]
        if missing:
            raise TimelineError(desc.path, f"media not found for {len(missing)} dialogue clip(s): "
                                + "; ".join(missing)
                                + " (relink with --search DIR, or pass --allow-missing-media to accept silence there)")
    out = []
    for t in chosen:
        d = render_track(desc, t, sample_rate, allow_missing_media=True, window=window)
        d.reason = t.dialogue_reason or ("chosen with --track" if tracks else "")
        out.append(d)
    return out
