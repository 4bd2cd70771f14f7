"""The result of reading a timeline file: the OTIO timeline plus what it took to read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio


@dataclass
class LoadedTimeline:
    """A timeline read from a file, with what was needed to read it and what looked wrong."""

    timeline: otio.schema.Timeline
    path: Path
    adapter: str
    notes: list[str] = field(default_factory=list)
