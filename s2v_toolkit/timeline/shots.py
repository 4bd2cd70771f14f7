"""Shot map: which video clip is seen at each record time, and which source frames that is."""

from __future__ import annotations

from dataclasses import dataclass

from s2v_toolkit.timeline.describe import TimelineClip, TimelineDescription
from s2v_toolkit.timeline.timecode import RationalTime, Span, TimeRange


@dataclass
class ShotSegment:
    """Record range ``record`` shows ``clip_id`` (topmost enabled video), source frames ``source``."""

    clip_id: str
    clip_name: str
    track: str
    record: Span
    source: Span
    media_path: str | None
    kind: str = "clip"             # "clip" | "unknown": picture the reader could not understand
    reason: str | None = None      # why it is unknown

    def to_dict(self) -> dict:
        return {"clip_id": self.clip_id, "clip_name": self.clip_name, "track": self.track,
                "record": self.record.to_dict(), "source": self.source.to_dict(), "media_path": self.media_path,
                "kind": self.kind, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict) -> "ShotSegment":
        return cls(d["clip_id"], d["clip_name"], d["track"], Span.from_dict(d["record"]),
                   Span.from_dict(d["source"]), d.get("media_path"), d.get("kind", "clip"), d.get("reason"))


def source_at(clip: TimelineClip, record_start: RationalTime, duration: RationalTime) -> Span:
    """Source range shown by ``clip`` over record ``[record_start, record_start + duration)``."""
    src_rate = clip.source.start.rate
    offset = (record_start - clip.record.start.to_otio()).rescaled_to(src_rate)
    length = duration.rescaled_to(src_rate)
    if clip.speed != 1.0:
        offset = RationalTime(offset.value * clip.speed, src_rate)
        length = RationalTime(length.value * abs(clip.speed), src_rate)
    return Span.from_otio(TimeRange(clip.source.start.to_otio() + offset, length))


def shot_map(desc: TimelineDescription, record: Span | TimeRange | None = None) -> list[ShotSegment]:
    """Segments of ``record`` (default: the whole timeline) in time order, each with the clip on top.

    Video tracks higher in the stack cover lower ones; disabled clips/tracks and gaps let the tracks
    below show through. Parts with no video at all are left out. A clip whose picture the reader
    could not understand (``s2v.unknown_picture``) gives a segment of ``kind`` "unknown": there is
    picture there, but nobody knows which.
    """
    rate = desc.rate
    if record is None:
        rng = TimeRange(RationalTime(0, rate), desc.duration.to_otio())
    else:
        rng = record.to_otio() if isinstance(record, Span) else record
    uncovered = [(rng.start_time, rng.end_time_exclusive())]
    found: list[ShotSegment] = []
    video = sorted((t for t in desc.tracks if t.kind == "video" and t.enabled), key=lambda t: -t.stack_index)
    for track in video:
        clips = [desc.clip(c) for c in track.clip_ids]
        # inside a track, later clips (nested stacks' upper tracks) are on top
        for clip in reversed([c for c in clips if c.active]):
            c0, c1 = clip.record.start.to_otio(), clip.record.end_exclusive.to_otio()
            remaining = []
            for u0, u1 in uncovered:
                s, e = max(u0, c0), min(u1, c1)
                if e <= s:
                    remaining.append((u0, u1))
                    continue
                unknown = (clip.s2v or {}).get("unknown_picture")
                found.append(ShotSegment(clip.id, clip.name, track.id, Span.from_otio(TimeRange(s, e - s)),
                                         source_at(clip, s, e - s), clip.media.path,
                                         "unknown" if unknown else "clip", str(unknown) if unknown else None))
                if u0 < s:
                    remaining.append((u0, s))
                if e < u1:
                    remaining.append((e, u1))
            uncovered = remaining
            if not uncovered:
                break
    found.sort(key=lambda seg: seg.record.start.to_otio())
    return found
