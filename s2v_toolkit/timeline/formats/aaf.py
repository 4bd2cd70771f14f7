"""AAF (Media Composer, Resolve, Premiere, Pro Tools): reader and writer.

Reading goes through otio-aaf-adapter (pyaaf2); the toolkit adds the timecode's drop-frame flag,
which the adapter does not keep.
"""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_file
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE

ADAPTER = "AAF"


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    notes: list[str] = []
    timeline = adapter_read_file(path, ADAPTER, notes)
    if not len(timeline.tracks):
        raise TimelineError(path, "AAF has no composition (no tracks to read)")
    drop = aaf_drop_frame(path)
    if drop is not None:
        # the AAF reader does not keep the timecode's drop flag: keep it where describe looks
        timeline.metadata.setdefault(METADATA_NAMESPACE, {})
        timeline.metadata[METADATA_NAMESPACE]["drop_frame"] = drop
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes)


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    # clips that did not come from an AAF (e.g. renders) have no mob id; let the writer make one
    kwargs.setdefault("use_empty_mob_ids", True)
    otio.adapters.write_to_file(timeline, str(path), adapter_name=ADAPTER, **kwargs)


def aaf_drop_frame(path: Path) -> bool | None:
    """Drop-frame flag of the top-level composition's timecode track in an AAF (``None`` if none)."""
    try:
        import aaf2

        with aaf2.open(str(path), "r") as f:
            for mob in f.content.toplevel():
                for slot in mob.slots:
                    seg = slot.segment
                    parts = [seg] + list(getattr(seg, "components", []) or [])
                    for part in parts:
                        if type(part).__name__ == "Timecode":
                            return bool(part["Drop"].value)
    except Exception:  # an unreadable flag only changes how timecode is shown
        return None
    return None


FORMAT = TimelineFormat(ADAPTER, ".aaf", read, write, write_additions=None,
                        description="AAF (Media Composer, Resolve, Premiere, Pro Tools)")
