"""Which part of an FCPXML document is "the timeline": shared by the reader and the surgical writer.

Final Cut Pro exports a project (``<project><sequence><spine>``), but also what is selected in the
browser: a lone clip (``<asset-clip>`` at the top of the document or in an ``<event>``), a compound
clip (a ``<ref-clip>`` whose ``<media>`` holds a ``<sequence>``), or a whole event of clips. The
editor's timeline is then:
- a project: its sequence (the first one, with a note when there are several);
- one compound clip from the browser: the compound's own sequence (what opening it shows);
- one other clip from the browser: a one-clip timeline holding that clip, timed in the clip's own
  time (the timeline starts at the clip's first frame timecode, as the viewer shows it);
- anything else (an event of many clips, nothing at all): no timeline, one clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.fcpxml_doc import Document, Node
from s2v_toolkit.timeline.formats.fcpxml_time import ZERO, seconds

# clips the browser can export on their own
BROWSER_CLIPS = {"asset-clip", "ref-clip", "clip", "mc-clip", "sync-clip", "audition"}


@dataclass
class StoryRoot:
    name: str
    seq: Node                 # the <sequence>, or a stand-in (not in the document) for a lone clip
    items: list               # the primary-storyline elements (a lone clip: that clip)
    tc_start: Fraction
    offset_default: Fraction  # where an item without ``offset`` sits (a lone clip: at tc_start)
    note: str | None = None
    project: Node | None = None


def _resources(doc: Document) -> dict:
    return {n.get("id"): n for r in doc.root.iter("resources") for n in r.children if n.get("id")}


def _browser_clips(doc: Document) -> list[Node]:
    """Clips at the top level of the document, of a library or of an event (not inside projects). An event
    exported by Final Cut Pro X 10.0 (FCPXML 1.0-1.2) is a ``<project>`` without a ``<sequence>`` whose
    children are the event's clips: those are browser clips too."""
    out = []
    events = [n for n in doc.nodes if n.tag in ("library", "event")
              or (n.tag == "project" and n.find("sequence") is None)]
    for parent in [doc.root] + events:
        out += [c for c in parent.children if c.tag in BROWSER_CLIPS]
    return out


def _stand_in(clip: Node, res: dict) -> tuple[Node, Fraction]:
    """A <sequence> stand-in for a lone clip: its format and its own first frame as the start."""
    ref = res.get(clip.get("ref"))
    fmt = clip.get("format") or (ref.get("format") if ref is not None else None)
    inner = None
    if ref is not None and ref.tag == "media":
        inner = ref.find("multicam") or ref.find("sequence")
        fmt = fmt or (inner.get("format") if inner is not None else None)
    start = clip.get("start")
    tc = seconds(start) if start is not None else seconds(inner.get("tcStart")) if inner is not None else ZERO
    attrs = {"format": fmt or "", "tcStart": clip.get("start") or (inner.get("tcStart") if inner is not None else "0s"),
             "tcFormat": clip.get("tcFormat") or "NDF", "duration": clip.get("duration") or "0s"}
    return Node("sequence", attrs, -1, -1, True, -1), tc


def story_root(doc: Document, path: Path) -> StoryRoot:
    projects = [p for p in doc.root.iter("project") if p.find("sequence") is not None]
    if projects:
        p = projects[0]
        seq = p.find("sequence")
        spine = seq.find("spine")
        note = (f"file holds {len(projects)} projects; using the first, '{p.get('name')}'"
                if len(projects) > 1 else None)
        items = [] if spine is None else list(spine.children)
        return StoryRoot(p.get("name") or "", seq, items, seconds(seq.get("tcStart")), ZERO, note, p)
    clips = _browser_clips(doc)
    if len(clips) != 1:
        events = sorted({c.parent.get("name") for c in clips
                         if c.parent is not None and c.parent.tag in ("event", "project")})
        where = f" (event {', '.join(repr(e) for e in events)})" if events else ""
        raise TimelineError(path, f"FCPXML holds no project, only {len(clips)} clip(s) from the browser{where}: "
                                  "export a project (or one clip) from Final Cut Pro")
    clip = clips[0]
    res = _resources(doc)
    media = res.get(clip.get("ref"))
    seq = media.find("sequence") if clip.tag == "ref-clip" and media is not None else None
    name = clip.get("name") or (media.get("name") if media is not None else "") or clip.tag
    if seq is not None and seq.find("spine") is not None:
        return StoryRoot(name, seq, list(seq.find("spine").children), seconds(seq.get("tcStart")), ZERO,
                         f"file holds no project: the compound clip '{name}' from the browser is read as its "
                         "own sequence")
    stand_in, tc = _stand_in(clip, res)
    return StoryRoot(name, stand_in, [clip], tc, tc,
                     f"file holds no project: the clip '{name}' from the browser is read as a one-clip timeline "
                     "starting at its first frame's timecode")
