"""What every timeline format module provides, and the plumbing they share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import opentimelineio as otio

from s2v_toolkit.timeline.additions import TimelineAdditions
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.loaded import LoadedTimeline

# read(path, rate=None) -> LoadedTimeline
Reader = Callable[..., LoadedTimeline]
# write(timeline, tmp_path, **kwargs): a whole timeline the toolkit made (e.g. a render-only EDL)
Writer = Callable[..., None]
# write_additions(original, additions, tmp_path) -> notes on what the format cannot hold.
# Inserts the additions into a copy of the original document; nothing else in it may change.
AdditionsWriter = Callable[[LoadedTimeline, TimelineAdditions, Path], list]


@dataclass(frozen=True)
class TimelineFormat:
    """One editors' format: its reader, its whole-timeline writer and its surgical writer."""

    name: str                          # the adapter name used throughout the toolkit ("fcp_xml", ...)
    suffix: str                        # extension of files the toolkit writes in this format
    read: Reader
    write: Optional[Writer] = None
    write_additions: Optional[AdditionsWriter] = None
    description: str = ""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def pick_timeline(p: Path, result, notes: list[str]) -> otio.schema.Timeline:
    """The timeline in what an adapter returned (the first, with a note, when a file holds several)."""
    if isinstance(result, otio.schema.Timeline):
        return result
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline, shallow_search=False))
        if not timelines:
            raise TimelineError(p, "file holds no timeline (sequence/composition)")
        if len(timelines) > 1:
            notes.append(f"file holds {len(timelines)} timelines; using the first, '{timelines[0].name}'")
        return timelines[0]
    raise TimelineError(p, f"file holds a {type(result).__name__}, not a timeline")


def adapter_read_file(p: Path, adapter: str, notes: list[str], **kwargs) -> otio.schema.Timeline:
    try:
        result = otio.adapters.read_from_file(os.fspath(p), adapter_name=adapter, **kwargs)
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise anything from ValueError to XML ParseError
        raise TimelineError(p, f"cannot read as {adapter}: {first_line(exc)}") from exc
    return pick_timeline(p, result, notes)


def adapter_read_string(p: Path, text: str, adapter: str, notes: list[str], **kwargs) -> otio.schema.Timeline:
    try:
        result = otio.adapters.read_from_string(text, adapter_name=adapter, **kwargs)
    except TimelineError:
        raise
    except Exception as exc:
        raise TimelineError(p, f"cannot read as {adapter}: {first_line(exc)}") from exc
    return pick_timeline(p, result, notes)
