"""What a conform adds to the editor's timeline, as plain data for the formats' surgical writers.

A conform never re-serialises the editor's document: each format's writer inserts exactly these
additions into a copy of the original file (XML: parse, add, write the rest back unchanged; AAF: new
slots in a copy of the original file) and leaves everything else as it was.

Times are OTIO ``RationalTime``/``TimeRange``: ``record`` counts from the timeline's first frame
(0 = the sequence's start timecode) at the timeline rate; marker ranges are in the marked clip's own
source time, as OTIO keeps clip markers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import opentimelineio as otio


@dataclass
class RenderClipAddition:
    """One rendered clip on a new track."""

    name: str
    media_path: str                      # as the conform writes it (absolute, or relative to the output)
    media_url: str                       # the same as a URL (file://...) or relative path
    record: otio.opentime.TimeRange      # on the timeline, from its first frame, timeline rate
    media_start: otio.opentime.RationalTime   # first frame of the render used
    media_duration: otio.opentime.RationalTime | None   # the render's full length, if known
    source_clip_ids: list[str] = field(default_factory=list)   # describe's ids of the clips it replaces
    metadata: dict = field(default_factory=dict)               # the s2v_toolkit metadata of the clip


@dataclass
class RenderTrackAddition:
    name: str                            # "S2V v001", "S2V v001 (2)"
    kind: str                            # "video"
    clips: list[RenderClipAddition] = field(default_factory=list)


@dataclass
class MarkerAddition:
    """A marker on one of the editor's clips, pointing at its render."""

    clip_id: str                         # describe's id of the marked clip ("V1.3")
    locator: dict                        # the reader's ``s2v_toolkit.locator`` of that clip ({} if none)
    name: str
    marked_range: otio.opentime.TimeRange  # in the clip's source time
    record: otio.opentime.TimeRange        # the same on the timeline (from its first frame)
    color: str
    comment: str
    metadata: dict = field(default_factory=dict)


@dataclass
class TimelineAdditions:
    version: int
    rate: float                          # the timeline rate the record ranges count at
    global_start: otio.opentime.RationalTime | None
    tracks: list[RenderTrackAddition] = field(default_factory=list)
    markers: list[MarkerAddition] = field(default_factory=list)

    @property
    def clips(self) -> list[RenderClipAddition]:
        return [c for t in self.tracks for c in t.clips]
