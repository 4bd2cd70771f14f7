"""A plain description of a timeline: tracks, clips (record/source ranges), media, markers.

This is what other stages get instead of OTIO objects. Everything is computed once from the OTIO
timeline; ``TimelineDescription.to_dict()`` is the ``s2vt inspect --json`` document (docs/timeline.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.media_link import OK, MediaLink, MediaResolver
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE, dialogue_reason
from s2v_toolkit.timeline.timecode import (
    RationalTime, Span, Time, TimeRange, can_drop_frame, rate_fraction, rate_string, seconds, timecode,
)

SCHEMA_NAME = "s2v.timeline"
SCHEMA_VERSION = 1
KIND_NAMES = {otio.schema.TrackKind.Video: "video", otio.schema.TrackKind.Audio: "audio"}


@dataclass
class MarkerInfo:
    name: str
    color: str
    record: Span                 # on the timeline, from the timeline's start (0 = first frame)
    owner: str                   # clip id, track id, or "timeline"
    comment: str = ""
    s2v: dict = field(default_factory=dict)

    def to_dict(self, rate: float, drop: bool, offset: RationalTime) -> dict:
        return {"name": self.name, "color": self.color, "owner": self.owner, "comment": self.comment,
                "record": self.record.to_dict(rate, drop, offset), "s2v": self.s2v}

    @classmethod
    def from_dict(cls, d: dict) -> "MarkerInfo":
        return cls(d["name"], d["color"], Span.from_dict(d["record"]), d["owner"], d.get("comment", ""),
                   dict(d.get("s2v", {})))


@dataclass
class TransitionInfo:
    id: str
    track: str
    name: str
    transition_type: str
    record: Span                 # the overlap it covers, around the cut

    def to_dict(self, rate: float, drop: bool, offset: RationalTime) -> dict:
        return {"id": self.id, "track": self.track, "name": self.name, "transition_type": self.transition_type,
                "record": self.record.to_dict(rate, drop, offset)}


@dataclass
class TimelineClip:
    """One clip on the timeline.

    ``record`` is where it sits on the timeline (from the timeline's first frame, at the timeline
    rate); ``source`` is the part of its media it uses, in the media's own time (timecode-based
    when the media has timecode); ``media_range`` is ``source`` with speed effects applied.
    """

    id: str                      # "V1.3": 3rd item of the first video track (stable across round trips)
    track: str                   # track id, "V1", "A2"
    kind: str                    # "video" | "audio"
    name: str
    enabled: bool                # the clip's own switch
    active: bool                 # enabled, and all tracks/stacks holding it are enabled
    record: Span
    source: Span
    media_range: Span
    media: MediaLink
    speed: float = 1.0
    freeze_frame: bool = False
    effects: list[str] = field(default_factory=list)
    nested_in: str | None = None  # id of the nested stack/track holding it, if any
    gain_db: float = 0.0
    source_channel: int | None = None   # the one channel of the media it plays (None: all, mixed)
    markers: list[MarkerInfo] = field(default_factory=list)
    s2v: dict = field(default_factory=dict)           # metadata["s2v_toolkit"]
    metadata_keys: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self, rate: float, drop: bool, offset: RationalTime) -> dict:
        # source timecode counts at the source's own rate; audio clips timed in samples (AAF) use
        # the timeline rate instead, as NLEs show them
        src_rate = self.source.start.rate if self.source.start.rate <= 120 else rate
        # the media's own timecode display where the reader knows it, else the timeline's
        src_drop = bool(self.s2v.get("source_drop_frame", drop)) and can_drop_frame(src_rate)
        return {
            "id": self.id, "track": self.track, "kind": self.kind, "name": self.name,
            "enabled": self.enabled, "active": self.active,
            "record": self.record.to_dict(rate, drop, offset),
            "source": self.source.to_dict(src_rate, src_drop),
            # the source the editor sees used (speed applied): timecodes where it is a frame range
            "media_range": self.media_range.to_dict(src_rate if not self.freeze_frame else None, src_drop),
            "speed": self.speed, "freeze_frame": self.freeze_frame, "effects": list(self.effects),
            "nested_in": self.nested_in, "gain_db": self.gain_db, "source_channel": self.source_channel,
            "media": self.media.to_dict(),
            "markers": [m.to_dict(rate, drop, offset) for m in self.markers],
            "s2v": self.s2v, "metadata_keys": list(self.metadata_keys), "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TimelineClip":
        return cls(
            id=d["id"], track=d["track"], kind=d["kind"], name=d["name"], enabled=d["enabled"],
            active=d["active"], record=Span.from_dict(d["record"]), source=Span.from_dict(d["source"]),
            media_range=Span.from_dict(d["media_range"]), media=MediaLink.from_dict(d["media"]),
            speed=d.get("speed", 1.0), freeze_frame=d.get("freeze_frame", False),
            effects=list(d.get("effects", [])), nested_in=d.get("nested_in"), gain_db=d.get("gain_db", 0.0),
            source_channel=d.get("source_channel"),
            markers=[MarkerInfo.from_dict(m) for m in d.get("markers", [])], s2v=dict(d.get("s2v", {})),
            metadata_keys=list(d.get("metadata_keys", [])), problems=list(d.get("problems", [])),
        )


@dataclass
class TrackInfo:
    id: str
    kind: str
    name: str
    enabled: bool
    stack_index: int             # position in the timeline's stack (0 = bottom)
    clip_ids: list[str] = field(default_factory=list)
    dialogue: bool = False
    dialogue_reason: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "name": self.name, "enabled": self.enabled,
                "stack_index": self.stack_index, "clip_ids": list(self.clip_ids),
                "dialogue": self.dialogue, "dialogue_reason": self.dialogue_reason}

    @classmethod
    def from_dict(cls, d: dict) -> "TrackInfo":
        return cls(d["id"], d["kind"], d["name"], d["enabled"], d["stack_index"], list(d["clip_ids"]),
                   d.get("dialogue", False), d.get("dialogue_reason"))


@dataclass
class TimelineDescription:
    name: str
    path: str | None
    adapter: str | None
    rate: float                  # timeline rate as OTIO holds it
    drop_frame: bool
    global_start: Time           # record timecode of the first frame
    duration: Time
    tracks: list[TrackInfo]
    clips: list[TimelineClip]
    transitions: list[TransitionInfo] = field(default_factory=list)
    markers: list[MarkerInfo] = field(default_factory=list)   # timeline and track markers
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # id -> OTIO object, for this layer's own use (conform); never serialized
    otio_items: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rate_fraction(self) -> Fraction:
        return rate_fraction(self.rate)

    def clip(self, clip_id: str) -> TimelineClip:
        for c in self.clips:
            if c.id == clip_id:
                return c
        raise KeyError(clip_id)

    def track(self, track_id: str) -> TrackInfo:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise KeyError(track_id)

    def record_timecode(self, t: RationalTime) -> str:
        return timecode(self.global_start.to_otio() + t, self.rate, self.drop_frame)

    def to_dict(self) -> dict:
        off = self.global_start.to_otio()
        return {
            "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION,
            "name": self.name, "path": self.path, "adapter": self.adapter,
            "rate": self.rate, "rate_exact": rate_string(self.rate), "drop_frame": self.drop_frame,
            "global_start": {**self.global_start.to_dict(),
                             "timecode": timecode(off, self.rate, self.drop_frame)},
            "duration": {**self.duration.to_dict(),
                         "timecode": timecode(self.duration.to_otio(), self.rate, self.drop_frame)},
            "tracks": [t.to_dict() for t in self.tracks],
            "clips": [c.to_dict(self.rate, self.drop_frame, off) for c in self.clips],
            "transitions": [t.to_dict(self.rate, self.drop_frame, off) for t in self.transitions],
            "markers": [m.to_dict(self.rate, self.drop_frame, off) for m in self.markers],
            "problems": list(self.problems), "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "TimelineDescription":
        if d.get("schema") != SCHEMA_NAME:
            raise ValueError(f"not an {SCHEMA_NAME} document")
        return cls(
            name=d["name"], path=d.get("path"), adapter=d.get("adapter"), rate=d["rate"],
            drop_frame=d["drop_frame"], global_start=Time.from_dict(d["global_start"]),
            duration=Time.from_dict(d["duration"]),
            tracks=[TrackInfo.from_dict(t) for t in d["tracks"]],
            clips=[TimelineClip.from_dict(c) for c in d["clips"]],
            transitions=[TransitionInfo(t["id"], t["track"], t["name"], t["transition_type"],
                                        Span.from_dict(t["record"])) for t in d.get("transitions", [])],
            markers=[MarkerInfo.from_dict(m) for m in d.get("markers", [])],
            problems=list(d.get("problems", [])), notes=list(d.get("notes", [])),
        )


# ------------------------------------------------------------------ building


def _meta_ns(obj) -> dict:
    md = obj.metadata.get(METADATA_NAMESPACE) if hasattr(obj, "metadata") else None
    return _plain(md) if md is not None else {}


def _plain(value):
    """OTIO AnyDictionary/AnyVector -> plain dict/list (JSON-friendly)."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "AnyVector":
        return [_plain(v) for v in value]
    if isinstance(value, (RationalTime, TimeRange)):
        return str(value)
    return value


def degenerate_length(clip) -> float | None:
    """The duration (frames) of a clip whose source range is zero or negative in length, else None."""
    sr = clip.source_range
    if sr is None:
        return None
    value = sr.duration.value
    return float(value) if value <= 0 else None


def degenerate_clips(desc) -> list[tuple[str, str, float, float, float]]:
    """(clip id, name, length, region start, region end) of the zero/negative-length clips on top-level video
    tracks. They show nothing; the region is the stretch of no picture around one (the gap item on each side of
    it, to the end of the track when nothing follows), which is a broken cut, not a gap left for a new shot."""
    found = []
    for tid, item in desc.otio_items.items():
        if "." in tid or not tid.startswith("V") or not isinstance(item, otio.schema.Track):
            continue
        cells = []  # (kind, start, end, id, name, length): kind "pic", "gap" or "bad"
        pos = 0.0
        for i, child in enumerate(item):
            if isinstance(child, otio.schema.Transition):
                continue
            if isinstance(child, otio.schema.Clip) and degenerate_length(child) is not None:
                cells.append(("bad", pos, pos, f"{tid}.{i + 1}", child.name, degenerate_length(child)))
                continue
            try:
                n = max(0.0, child.duration().rescaled_to(desc.rate).value)
            except Exception:  # noqa: BLE001 - an item without a duration takes no record time
                n = 0.0
            cells.append(("gap" if isinstance(child, otio.schema.Gap) else "pic", pos, pos + n, "", "", 0.0))
            pos += n
        for k, (kind, start, _end, cid, name, length) in enumerate(cells):
            if kind != "bad":
                continue
            # the gap item right before and right after it (an editor's other gaps stay gaps)
            a = k - 1 if k > 0 and cells[k - 1][0] == "gap" else k
            b = k + 1 if k + 1 < len(cells) and cells[k + 1][0] == "gap" else k
            lo = cells[a][1]
            hi = float("inf") if b == len(cells) - 1 else cells[b][2]
            found.append((cid, name, length, lo, hi))
    return found


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    if timeline.global_start_time is not None:
        return timeline.global_start_time.rate
    # a video clip's rate, else any frame-like rate (audio clips may count samples: 48000)
    clips = [c for c in timeline.find_clips() if c.source_range is not None]
    for clip in clips:
        track = clip.parent()
        if getattr(track, "kind", None) == otio.schema.TrackKind.Video:
            return clip.source_range.duration.rate
    for clip in clips:
        if clip.source_range.duration.rate <= 120:
            return clip.source_range.duration.rate
    try:
        return timeline.duration().rate
    except Exception:
        return 24.0


def detect_drop_frame(timeline: otio.schema.Timeline, rate: float) -> bool:
    """Drop-frame display: the ``s2v`` setting, else what the adapter kept, else OTIO's default."""
    if not can_drop_frame(rate):
        return False
    for md in (timeline.metadata, timeline.tracks.metadata):
        ns = md.get(METADATA_NAMESPACE)
        if ns is not None and "drop_frame" in ns:
            return bool(ns["drop_frame"])
    found = _find_key(timeline.metadata, ("displayformat", "drop_frame", "drop", "dropframe"), depth=5)
    if found is not None:
        return str(found).upper() in ("DF", "TRUE", "1", "YES") if not isinstance(found, bool) else found
    return True  # OTIO's convention for 29.97/59.94 without other information


def _find_key(md, keys, depth):
    if depth < 0 or not hasattr(md, "items"):
        return None
    for k, v in md.items():
        if str(k).lower() in keys and not hasattr(v, "items"):
            return v
    for v in md.values():
        r = _find_key(v, keys, depth - 1)
        if r is not None:
            return r
    return None


def _fcp7_audio_level(eff) -> float | None:
    """Linear gain of an FCP 7 "Audio Levels" filter (1.0 = 0 dB); keyframed levels are not read."""
    fcp = eff.metadata.get("fcp_xml")
    if fcp is None or str(fcp.get("effectid", "")).lower() != "audiolevels":
        return None
    params = fcp.get("parameter")
    params = [params] if hasattr(params, "items") else list(params or [])
    for prm in params:
        if hasattr(prm, "get") and str(prm.get("parameterid", "")).lower() == "level":
            try:
                return float(prm.get("value"))
            except (TypeError, ValueError):
                return None
    return None


def clip_gain_db(clip: otio.schema.Clip) -> float:
    """Clip gain in dB where the format carries it (``s2v.gain_db``, or a gain/volume effect)."""
    ns = clip.metadata.get(METADATA_NAMESPACE)
    if ns is not None and "gain_db" in ns:
        return float(ns["gain_db"])
    for eff in clip.effects:
        name = f"{eff.effect_name} {eff.name}".lower()
        linear = _fcp7_audio_level(eff)
        if linear is not None:
            return 20 * math.log10(linear) if linear > 0 else -math.inf
        if any(w in name for w in ("gain", "volume", "level")):
            v = _find_key(eff.metadata, ("gain_db", "level_db", "db"), depth=4)
            if v is not None:
                try:
                    return float(v)
                except (TypeError, ValueError):
                    pass
    return 0.0


def snap_frames(t: RationalTime, rate: float) -> RationalTime:
    """``t`` as a whole frame at the timeline rate where it is one (OTIO adds ranges of mixed rates
    in floats: 1372 frames at 25 come back as 1644.7552... at 29.97 or 1371.9999999); anything else
    (an audio clip starting between frames, timed in samples) keeps its own exact value and rate."""
    v = t.rescaled_to(rate).value
    r = round(v)
    return RationalTime(r, rate) if abs(v - r) < 1e-6 else t


class _Walker:
    def __init__(self, timeline, resolver: MediaResolver, rate: float, check_media: bool):
        self.timeline = timeline
        self.resolver = resolver
        self.rate = rate
        self.check_media = check_media
        self.clips: list[TimelineClip] = []
        self.transitions: list[TransitionInfo] = []
        self.markers: list[MarkerInfo] = []
        self.problems: list[str] = []
        self.items: dict[str, Any] = {}
        self.probed: dict[str, Any] = {}
        self.hidden = 0      # clips of nested sequences outside the part the cut uses

    def record_range(self, item, top_track) -> TimeRange:
        # The item's own range mapped up through nested stacks/tracks and the top-level track's own
        # trim (EDL and AAF readers use one) to the timeline's stack: record time.
        rec = item.transformed_time_range(item.trimmed_range(), self.timeline.tracks)
        return TimeRange(snap_frames(rec.start_time, self.rate), snap_frames(rec.duration, self.rate))

    def visible_ranges(self, clip, top_track) -> tuple[TimeRange, TimeRange] | None:
        """(record, source) of the part of ``clip`` that nested stacks/tracks let through."""
        source = clip.trimmed_range()
        record = self.record_range(clip, top_track)
        start, end = record.start_time, record.end_time_exclusive()
        parent = clip.parent()
        while parent is not None and parent is not self.timeline.tracks:
            window = parent.transformed_time_range(parent.trimmed_range(), self.timeline.tracks)
            start = max(start, window.start_time)
            end = min(end, window.end_time_exclusive())
            parent = parent.parent()
        if end <= start:
            return None
        if start == record.start_time and end == record.end_time_exclusive():
            return record, source
        head = (start - record.start_time).rescaled_to(source.start_time.rate)
        # a retimed clip's media moves ``speed`` frames per record frame: the part cut off its head
        # skips that much more media (a 392 % clip seen from 1350 frames in starts 5292 media frames in)
        speed = 1.0
        for eff in clip.effects:
            if isinstance(eff, otio.schema.LinearTimeWarp) and not isinstance(eff, otio.schema.FreezeFrame):
                speed *= eff.time_scalar
        if speed != 1.0:
            head = RationalTime(float(Fraction(head.value) * Fraction(speed).limit_denominator(10**7)), head.rate)
        length = (end - start).rescaled_to(source.duration.rate)
        return TimeRange(start, end - start), TimeRange(source.start_time + head, length)

    def walk_track(self, track, top_track, track_id: str, prefix: str, active: bool,
                   nested_in: str | None, info: TrackInfo) -> None:
        for i, child in enumerate(track):
            item_id = f"{prefix}.{i + 1}"
            if isinstance(child, otio.schema.Clip):
                self.add_clip(child, top_track, track_id, item_id, active, nested_in, info)
            elif isinstance(child, otio.schema.Transition):
                self.add_transition(child, top_track, track_id, item_id)
            elif isinstance(child, otio.schema.Gap):
                continue
            elif isinstance(child, otio.schema.Stack):
                self.items[item_id] = child
                for j, sub in enumerate(child):
                    if isinstance(sub, otio.schema.Track):
                        self.walk_track(sub, top_track, track_id, f"{item_id}.t{j + 1}",
                                        active and child.enabled and sub.enabled, item_id, info)
                    elif isinstance(sub, otio.schema.Clip):
                        self.add_clip(sub, top_track, track_id, f"{item_id}.t{j + 1}", active and child.enabled,
                                      item_id, info)
            elif isinstance(child, otio.schema.Track):
                self.items[item_id] = child
                self.walk_track(child, top_track, track_id, item_id, active and child.enabled, item_id, info)
            else:
                self.problems.append(f"{item_id}: unsupported item {type(child).__name__} skipped")

    def add_transition(self, tr, top_track, track_id, item_id) -> None:
        self.items[item_id] = tr
        try:
            rec = tr.parent().transformed_time_range(tr.range_in_parent(), self.timeline.tracks)
        except Exception as exc:
            self.problems.append(f"{item_id}: transition without a usable range ({exc})")
            return
        self.transitions.append(TransitionInfo(item_id, track_id, tr.name, tr.transition_type, Span.from_otio(rec)))

    def add_clip(self, clip, top_track, track_id, clip_id, active, nested_in, info: TrackInfo) -> None:
        self.items[clip_id] = clip
        problems: list[str] = []
        link = self.resolver.resolve(clip)
        length = degenerate_length(clip)
        if length is not None:
            # an editor's zero- or negative-length clip occupies no record frames: say so, by its real reason
            kind = "zero-length" if length == 0 else f"negative-length ({length:g} frames)"
            self.problems.append(f"{clip_id} '{clip.name}': {kind} clip, it shows no frame in the cut; skipped")
            return
        try:
            ranges = self.visible_ranges(clip, top_track)
        except Exception as exc:
            self.problems.append(f"{clip_id} '{clip.name}': no source range and no media range ({exc}); skipped")
            return
        if ranges is None:
            # outside the part of a nested sequence the cut uses: not in the editor's cut at all
            self.hidden += 1
            return
        record, source = ranges
        speed, freeze, effects = 1.0, False, []
        for eff in clip.effects:
            label = eff.effect_name or eff.name or type(eff).__name__
            effects.append(label)
            if isinstance(eff, otio.schema.FreezeFrame):
                freeze, speed = True, 0.0
            elif isinstance(eff, otio.schema.LinearTimeWarp):
                speed *= eff.time_scalar
            elif isinstance(eff, otio.schema.TimeEffect) or _looks_like_retime(eff):
                # e.g. FCP 7 "Time Remap" filters, which the adapter keeps as a plain Effect
                problems.append(f"time effect '{label}' is not applied; ranges are read at speed 1")
        media_dur = (RationalTime(source.duration.value * abs(speed), source.duration.rate) if not freeze
                     else RationalTime(1, source.duration.rate))
        media_range = TimeRange(source.start_time, media_dur)
        if speed < 0:
            problems.append("reverse speed: media_range is read forward from the source in point")
        if speed not in (1.0,) and not freeze:
            problems.append(f"speed {speed:g}x: source media used is {float(seconds(media_dur)):.3f}s")
        kind = KIND_NAMES.get(info_kind(top_track), "other")
        if kind == "video" and rate_fraction(source.start_time.rate) != rate_fraction(self.rate):
            problems.append(f"clip rate {rate_string(source.start_time.rate)} differs from timeline rate "
                            f"{rate_string(self.rate)}")
        link.problems.extend(self.check_media_length(clip, link, media_range))
        own_md = _meta_ns(clip)
        for key in ("unknown_picture", "unknown_sound"):
            if own_md.get(key):
                problems.append(f"{key.replace('_', ' ')}: {own_md[key]}")
        own = info.enabled  # top-level track switch
        tc = TimelineClip(
            id=clip_id, track=track_id, kind=kind, name=clip.name, enabled=clip.enabled,
            active=bool(active and own and clip.enabled), record=Span.from_otio(record),
            source=Span.from_otio(source), media_range=Span.from_otio(media_range), media=link,
            speed=speed, freeze_frame=freeze, effects=effects, nested_in=nested_in,
            gain_db=clip_gain_db(clip), source_channel=self.source_channel(clip), s2v=_meta_ns(clip),
            metadata_keys=sorted(str(k) for k in clip.metadata.keys()), problems=problems,
        )
        for m in clip.markers:
            # at the record rate where whole frames, like the clip's record range (a marker on a
            # 29.97 still in a 25 fps sequence sits at a 25 fps record frame)
            rec_start = snap_frames(m.marked_range.start_time - source.start_time + record.start_time, self.rate)
            tc.markers.append(MarkerInfo(m.name, m.color, Span(Time.from_otio(rec_start),
                                                               Time.from_otio(snap_frames(m.marked_range.duration,
                                                                                          self.rate))),
                                         clip_id, m.comment, _meta_ns(m)))
        # markers on a nesting stack (FCP 7 XML: on the nesting clip item) show on the clips under them
        parent = clip.parent()
        while parent is not None and parent is not self.timeline.tracks:
            if isinstance(parent, otio.schema.Stack):
                for m in parent.markers:
                    try:
                        rec_m = parent.transformed_time_range(m.marked_range, self.timeline.tracks)
                    except Exception:  # noqa: BLE001 - a marker OTIO cannot place is left out
                        continue
                    if record.start_time <= rec_m.start_time < record.end_time_exclusive():
                        rec_m = TimeRange(snap_frames(rec_m.start_time, self.rate),
                                          snap_frames(rec_m.duration, self.rate))
                        tc.markers.append(MarkerInfo(m.name, m.color, Span.from_otio(rec_m), clip_id,
                                                     m.comment, _meta_ns(m)))
            parent = parent.parent()
        info.clip_ids.append(clip_id)
        self.clips.append(tc)

    def source_channel(self, clip) -> int | None:
        ns = clip.metadata.get(METADATA_NAMESPACE)
        if ns is not None and ns.get("source_channel") is not None:
            return int(ns["source_channel"])
        return None

    def check_media_length(self, clip, link: MediaLink, media_range: TimeRange) -> list[str]:
        if not (self.check_media and link.status == OK):
            return []
        from s2v_toolkit.timeline.media_access import probe_facts, range_outside_media

        if link.path not in self.probed:  # a cut uses the same file many times: open it once
            try:
                self.probed[link.path] = probe_facts(link.path)
            except Exception as exc:  # corrupt media is reported on the clip, the timeline goes on
                self.probed[link.path] = f"media unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        facts = self.probed[link.path]
        if isinstance(facts, str):
            return [facts]
        media_start = media_origin(clip, facts)
        problem = range_outside_media(media_start, seconds(media_range.start_time) - media_start,
                                      seconds(media_range.end_time_exclusive()) - media_start,
                                      Fraction(facts.duration).limit_denominator(1_000_000))
        return [problem] if problem else []


def _looks_like_retime(eff) -> bool:
    text = f"{eff.name} {eff.effect_name} {_find_key(eff.metadata, ('effectid',), depth=3) or ''}".lower()
    return any(w in text for w in ("time remap", "timeremap", "retime", "speed"))


def info_kind(track) -> str:
    return track.kind


def media_origin(clip: otio.schema.Clip, facts) -> Fraction:
    """Seconds of source time at the file's first sample/frame: the media range the timeline states,
    else the file's own start timecode or BWF time reference (``MediaFacts.origin_at`` the clip's source rate)."""
    ref = clip.media_reference
    if ref is not None and ref.available_range is not None:
        return seconds(ref.available_range.start_time)
    return facts.origin_at(clip.source_range.start_time.rate if clip.source_range else None) if facts is not None \
        else Fraction(0)


def describe_timeline(
    loaded: LoadedTimeline | otio.schema.Timeline,
    *,
    search_dirs: tuple | list = (),
    check_media: bool = True,
    drop_frame: bool | None = None,
) -> TimelineDescription:
    """Describe a timeline: tracks, clips with record/source ranges, media status, markers."""
    if isinstance(loaded, otio.schema.Timeline):
        loaded = LoadedTimeline(loaded, Path(""), "otio_json")
        path = None
    else:
        path = str(loaded.path)
    tl = loaded.timeline
    rate = timeline_rate(tl)
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate <= 1000):
        from s2v_toolkit.timeline.errors import TimelineError

        # every record time and timecode is counted at this rate: 0 or NaN would print garbage
        raise TimelineError(path, f"frame rate {rate!r} is not usable (must be above 0 and at most 1000 fps); "
                                  "fix the timeline's rate in the editor and export it again")
    drop = detect_drop_frame(tl, rate) if drop_frame is None else bool(drop_frame and can_drop_frame(rate))
    resolver = MediaResolver(loaded.path.parent if path else None, search_dirs)
    w = _Walker(tl, resolver, rate, check_media)
    tracks: list[TrackInfo] = []
    counters: dict[str, int] = {}
    for si, track in enumerate(tl.tracks):
        if not isinstance(track, otio.schema.Track):
            w.problems.append(f"top-level item {si} is a {type(track).__name__}, not a track; skipped")
            continue
        kind = KIND_NAMES.get(track.kind, "other")
        letter = {"video": "V", "audio": "A"}.get(kind, "T")
        counters[letter] = counters.get(letter, 0) + 1
        tid = f"{letter}{counters[letter]}"
        reason = dialogue_reason(track)
        info = TrackInfo(tid, kind, track.name, track.enabled, si, dialogue=reason is not None,
                         dialogue_reason=reason)
        tracks.append(info)
        w.items[tid] = track
        w.walk_track(track, track, tid, tid, True, None, info)
        for m in track.markers:
            w.markers.append(MarkerInfo(m.name, m.color, Span.from_otio(m.marked_range), tid, m.comment, _meta_ns(m)))
    for m in tl.tracks.markers:
        w.markers.append(MarkerInfo(m.name, m.color, Span.from_otio(m.marked_range), "timeline", m.comment,
                                    _meta_ns(m)))
    try:
        duration = tl.duration()
    except Exception:
        duration = RationalTime(0, rate)
    start = tl.global_start_time if tl.global_start_time is not None else RationalTime(0, rate)
    problems = list(w.problems)
    for c in w.clips:
        for p in c.problems + c.media.problems:
            if p.startswith("unknown "):  # not understood: say where, so the editor can look
                rec = c.record.to_otio()
                p += (f" (record {timecode(start + rec.start_time, rate, drop)}-"
                      f"{timecode(start + rec.end_time_exclusive(), rate, drop)})")
            problems.append(f"{c.id} '{c.name}': {p}")
    notes = list(loaded.notes)
    if w.hidden:
        notes.append(f"{w.hidden} clip(s) of nested sequences lie outside the parts the cut uses; not listed")
    return TimelineDescription(
        name=tl.name, path=path, adapter=loaded.adapter, rate=rate, drop_frame=drop,
        global_start=Time.from_otio(start), duration=Time.from_otio(duration.rescaled_to(rate)),
        tracks=tracks, clips=w.clips, transitions=w.transitions, markers=w.markers,
        problems=problems, notes=notes, otio_items=w.items,
    )
