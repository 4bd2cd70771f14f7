"""Timeline layer: the only code that touches OpenTimelineIO.

Public API::

    read_timeline(path, rate=None) -> LoadedTimeline        # any OTIO adapter, by extension + content
    describe_timeline(loaded, search_dirs=()) -> TimelineDescription   # tracks, clips, media, markers
    extract_dialogue(desc, tracks=None) -> list[DialogueTrack]          # 16 kHz mono at record time
    shot_map(desc, record=None) -> list[ShotSegment]        # topmost video clip + source frames
    conform(path, renders, out_dir) -> ConformResult        # renders on a new "S2V vNNN" track, new files

Times cross the boundary as :class:`Time`/:class:`Span` (OTIO's exact value/rate pairs) with
``Fraction`` seconds; ``.to_otio()`` gives the RationalTime back where a stage needs one.
"""

from s2v_toolkit.timeline.conform import (
    ConformResult, PlacedRender, RenderResult, add_render_tracks, conform, next_version,
)
from s2v_toolkit.timeline.describe import (
    SCHEMA_NAME, SCHEMA_VERSION, MarkerInfo, TimelineClip, TimelineDescription, TrackInfo, TransitionInfo,
    degenerate_clips, describe_timeline,
)
from s2v_toolkit.timeline.dialogue import (
    ANALYSIS_RATE, DialogueSegment, DialogueTrack, audio_window, choose_dialogue_tracks, diarization_window,
    extract_dialogue, render_track,
)
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.io import LoadedTimeline, detect_adapter, read_timeline, write_timeline
from s2v_toolkit.timeline.media_link import MediaLink, MediaResolver, url_to_path
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE, dialogue_reason
from s2v_toolkit.timeline.shots import ShotSegment, shot_map
from s2v_toolkit.timeline.timecode import Span, Time, parse_rate, rate_fraction, timecode

__all__ = [
    "ANALYSIS_RATE", "METADATA_NAMESPACE", "SCHEMA_NAME", "SCHEMA_VERSION",
    "ConformResult", "DialogueSegment", "DialogueTrack", "LoadedTimeline", "MarkerInfo", "MediaLink",
    "MediaResolver", "PlacedRender", "RenderResult", "ShotSegment", "Span", "Time", "TimelineClip",
    "TimelineDescription", "TimelineError", "TrackInfo", "TransitionInfo",
    "add_render_tracks", "audio_window", "choose_dialogue_tracks", "conform", "degenerate_clips",
    "describe_timeline", "detect_adapter", "diarization_window",
    "dialogue_reason", "extract_dialogue", "next_version", "parse_rate", "rate_fraction", "read_timeline", "render_track",
    "shot_map", "timecode", "url_to_path", "write_timeline",
]
