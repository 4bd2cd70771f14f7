"""FCPXML (Final Cut Pro 1.2-1.13, Resolve): reader, whole-timeline writer, surgical writer.

Reading is our own (fcpxml_read.py): otio-fcpx-xml-adapter drops multicam clips and titles, reads
``<clip>`` wrappers twice, misplaces connected clips and secondary storylines, takes the sequence rate
from the first clip and refuses mixed-rate projects (docs/timeline.md). Conform write-back inserts the
renders and markers into the original text (fcpxml_write.py); a whole timeline the toolkit made is
still written through the adapter (fcpx_ntsc.py carries NTSC rates through it).
"""

from __future__ import annotations

import re
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats import fcpx_ntsc
from s2v_toolkit.timeline.formats.base import TimelineFormat
from s2v_toolkit.timeline.formats.fcpxml_doc import parse as parse_doc
from s2v_toolkit.timeline.formats.fcpxml_doc import well_formed_error
from s2v_toolkit.timeline.formats.fcpxml_read import Reader
from s2v_toolkit.timeline.formats.fcpxml_time import fmt, seconds
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.timecode import rate_fraction

ADAPTER = "fcpx_xml"


def document_path(path: Path) -> Path:
    """The XML document of an ``.fcpxml`` file or an ``.fcpxmld`` bundle."""
    return path / "Info.fcpxml" if path.is_dir() else path


def read_text(path: Path) -> str:
    try:
        data = document_path(Path(path)).read_bytes()
    except OSError as exc:
        raise TimelineError(path, f"cannot read: {exc.strerror or exc}") from exc
    return data.decode("utf-8", errors="replace")


def load_document(path: Path, text: str):
    try:
        doc = parse_doc(text)
    except ValueError as exc:
        raise TimelineError(path, f"not an FCPXML document ({exc})") from None
    if doc.root.tag != "fcpxml":
        raise TimelineError(path, f"root element is <{doc.root.tag}>, not <fcpxml>")
    if doc.root.end is None or doc.root.close_start is None or doc.root.close_start == doc.root.end:
        # a file cut short is not an editor's cut: refuse it rather than read half of it
        raise TimelineError(path, f"FCPXML is truncated: <fcpxml> is never closed ({well_formed_error(text)})")
    bad = well_formed_error(text)
    if bad and not doc.problems:
        doc.problems.append(bad)
    return doc


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    path = Path(path)
    text = read_text(path)
    doc = load_document(path, text)
    reader = Reader(path, doc)
    timeline = reader.read()
    notes = reader.notes
    if rate is not None and rate_fraction(rate) != reader.seq_rate:
        notes.append(f"--rate {rate:g} ignored: the FCPXML sequence says {float(reader.seq_rate):.3f} fps")
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes)


def _is_ntsc(timeline: otio.schema.Timeline) -> bool:
    if timeline.global_start_time is not None:
        return rate_fraction(timeline.global_start_time.rate).denominator == 1001
    for clip in timeline.find_clips():
        if clip.source_range is not None:
            return rate_fraction(clip.source_range.duration.rate).denominator == 1001
    return False


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    """A whole timeline the toolkit made, through otio-fcpx-xml-adapter (conforms use write_additions)."""
    if _is_ntsc(timeline):
        # the FCPXML writer cannot write NTSC rates: write at the nominal rate, rescale times
        nominal = timeline.deepcopy()
        fcpx_ntsc.relabel_rates(nominal, to_ntsc=False)
        text = otio.adapters.write_to_string(nominal, adapter_name=ADAPTER, **kwargs)
        text = fcpx_ntsc.scale_times(text, fcpx_ntsc.NTSC_FACTOR, divide=False)
    else:
        text = otio.adapters.write_to_string(timeline, adapter_name=ADAPTER, **kwargs)
    Path(path).write_text(media_in_clip_time(text))


def media_in_clip_time(text: str) -> str:
    """The adapter puts a clip's media at ``offset="0s"`` with no ``start`` inside a ``<clip>`` whose
    ``start`` is in media time; for media whose timecode does not start at 0 that leaves the media
    outside the clip's range. Give those elements ``offset`` = ``start`` = the media's start, as Final
    Cut Pro writes them, so the clip's time is the media's time (the adapter reads it the same)."""
    doc = parse_doc(text)
    assets = {n.get("id"): n for n in doc.nodes if n.tag == "asset" and n.get("id")}
    edits = []

    def fix(node, origin):
        head = text[node.start:node.head_end]
        new = re.sub(r'\boffset="0s"', f'offset="{fmt(origin)}" start="{fmt(origin)}"', head, count=1)
        if new != head:
            edits.append((node.start, node.head_end, new))

    for clip in (n for n in doc.nodes if n.tag == "clip"):
        for child in clip.children:
            if child.get("lane") or child.get("start") is not None or seconds(child.get("offset")) != 0:
                continue
            media = [child] if child.tag in ("video", "audio") else \
                [g for g in child.children if g.tag in ("video", "audio")] if child.tag == "gap" else []
            starts = {seconds(assets[m.get("ref")].get("start")) for m in media if m.get("ref") in assets
                      and m.get("start") is None and seconds(m.get("offset")) == 0}
            if len(starts) != 1 or not (origin := starts.pop()):
                continue
            fix(child, origin)
            if child.tag == "gap":
                for m in media:
                    fix(m, origin)
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def write_additions(original: LoadedTimeline, additions, tmp_path: Path) -> list:
    from s2v_toolkit.timeline.formats.fcpxml_write import write_additions as _write

    return _write(original, additions, tmp_path)


FORMAT = TimelineFormat(ADAPTER, ".fcpxml", read, write, write_additions=write_additions,
                        description="FCPXML (Final Cut Pro X, Resolve)")
