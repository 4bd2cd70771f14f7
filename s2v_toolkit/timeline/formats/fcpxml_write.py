"""Conform write-back into an FCPXML document: insert the renders and markers, change nothing else.

The original text is copied and only new text is inserted (byte-for-byte elsewhere):
- one ``<asset>`` per render at the end of ``<resources>`` (its media as ``src`` before FCPXML 1.9,
  as a ``<media-rep>`` from 1.9 on), on the sequence's own format;
- each render as a connected ``<asset-clip>`` on a new lane above every lane in the project, attached
  to the primary-storyline item under its first frame (offset in that item's own time; an audition's
  active pick, never the audition itself; a lone browser clip when the file holds no project), with the
  render's ``s2v_toolkit`` metadata as ``<md>`` entries and the render track's name as its video role;
- each marker as a ``<marker>`` in the element the reader named in the clip's locator.
Elements go where the FCPXML DTD puts them (connected clips before markers, markers before
audio-channel-source/filters/metadata).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from xml.sax.saxutils import escape

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.fcpxml_doc import Node, parse
from s2v_toolkit.timeline.formats.fcpxml_read import MD_PREFIX, STORY
from s2v_toolkit.timeline.formats.fcpxml_root import story_root
from s2v_toolkit.timeline.formats.fcpxml_time import conform_scale, fmt, named_rate, seconds
from s2v_toolkit.timeline.timecode import rate_fraction

MARKER_TAGS = {"marker", "chapter-marker", "rating", "keyword", "analysis-marker"}
AFTER_MARKERS = {"audio-channel-source", "audio-role-source", "sync-source", "filter-video", "filter-video-mask",
                 "filter-audio", "metadata"}
AFTER_ANCHORS = MARKER_TAGS | AFTER_MARKERS


def _rt_seconds(rt) -> Fraction:
    """Exact seconds of an OTIO time (whole frame counts stay exact; others to a microsecond grid)."""
    value = Fraction(int(rt.value)) if rt.value == int(rt.value) else Fraction(rt.value).limit_denominator(10**6)
    return value / rate_fraction(rt.rate)


def _plain(value):
    """OTIO's AnyDictionary/AnyVector as plain containers, for JSON."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "AnyVector":
        return [_plain(v) for v in value]
    return value


def _attr(value) -> str:
    """An attribute value in double quotes, escaped."""
    return '"' + escape(str(value), {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}) + '"'


def _md_value(value) -> str:
    """Strings as they are, anything else as JSON (the reader reads JSON back where it parses)."""
    return value if isinstance(value, str) else json.dumps(_plain(value), default=str)


def _version(root: Node) -> tuple:
    try:
        return tuple(int(x) for x in (root.get("version") or "1.0").split("."))
    except ValueError:
        return (1, 0)


class _Inserter:
    """Text insertions at positions of the original text, applied at the end (last first)."""

    def __init__(self, text: str):
        self.text = text
        self.edits: list[tuple[int, int, str]] = []   # (position, order, text)
        self.replace: dict[int, tuple[int, str]] = {}  # start -> (end, new text): for '/>' -> '>'
        self.opened: dict[int, list[str]] = {}         # self-closing element's start -> its new children

    def indent_of(self, node: Node) -> str:
        line_start = self.text.rfind("\n", 0, node.start) + 1
        pre = self.text[line_start:node.start]
        return pre if not pre.strip() else ""

    def child_indent(self, node: Node) -> str:
        if node.children:
            return self.indent_of(node.children[0])
        base = self.indent_of(node)
        step = "\t" if base.startswith("\t") else "    "
        return base + step

    def into(self, node: Node, snippet: str, before_tags: set) -> None:
        """Insert ``snippet`` as a child of ``node`` before its first child whose tag is in ``before_tags``."""
        indent = self.child_indent(node)
        if node.self_closing:
            # <gap .../> -> <gap ...> new </gap>: the one place an original byte changes ('/>');
            # every snippet for this element goes inside the one pair of tags (in the order given)
            if node.start not in self.opened:
                head = self.text[node.start:node.head_end]
                slash = head.rstrip(">").rstrip()
                cut = node.start + len(slash) - 1  # index of '/'
                self.replace[cut] = (node.head_end, ">")
                self.opened[node.start] = []
                self.edits.append((node.head_end, len(self.edits),
                                   lambda n=node: "".join(f"\n{self.child_indent(n)}{x}" for x in self.opened[n.start])
                                   + f"\n{self.indent_of(n)}</{n.tag}>"))
            self.opened[node.start].append(snippet)
            return
        prev_end = node.head_end
        for child in node.children:
            if child.tag in before_tags:
                break
            prev_end = child.end
        self.edits.append((prev_end, len(self.edits), f"\n{indent}{snippet}"))

    def result(self) -> str:
        text = self.text
        points = sorted([(pos, order, ("ins", s)) for pos, order, s in self.edits]
                        + [(start, -1, ("rep", end, s)) for start, (end, s) in self.replace.items()],
                        key=lambda e: (e[0], e[1]), reverse=True)
        for pos, _, op in points:
            if op[0] == "ins":
                snippet = op[1]() if callable(op[1]) else op[1]
                text = text[:pos] + snippet + text[pos:]
            else:
                text = text[:pos] + op[2] + text[op[1]:]
        return text


def _max_lane(node: Node, base: int = 0) -> int:
    best = base
    for c in node.children:
        if c.tag in STORY:
            lane = base + int(c.get("lane") or 0)
            best = max(best, lane, _max_lane(c, lane))
    return best


def _media_src(media_path: str, original: Path) -> str:
    p = Path(media_path)
    if not p.is_absolute():
        p = (original.parent / p).resolve()
    return p.as_uri()


def write_additions(original, additions, tmp_path: Path) -> list:
    path = Path(original.path)
    doc_path = path / "Info.fcpxml" if path.is_dir() else path
    text = doc_path.read_bytes().decode("utf-8", errors="surrogateescape")
    doc = parse(text)
    ins = _Inserter(text)
    notes: list[str] = []
    root = story_root(doc, path)
    seq = root.seq
    res_nodes = list(doc.root.iter("resources"))
    if not res_nodes:
        raise TimelineError(path, "FCPXML has no <resources> to add the renders' media to")
    resources = res_nodes[0]
    res = {n.get("id"): n for r in res_nodes for n in r.children if n.get("id")}
    fmt_node = res.get(seq.get("format"))
    seq_rate = 1 / seconds(fmt_node.get("frameDuration")) if fmt_node is not None and fmt_node.get("frameDuration") \
        else rate_fraction(additions.rate)
    tc_start = root.tc_start
    version = _version(doc.root)
    ids = {n.get("id") for n in doc.nodes if n.get("id")}
    items = [c for c in root.items if c.tag in STORY and c.tag != "transition"]
    lane0 = max([_max_lane(c, int(c.get("lane") or 0)) for c in items] + [0]) + 1
    if not items and additions.clips:
        raise TimelineError(path, "the project's primary storyline is empty; nothing to attach the renders to")
    n_asset = 0
    for ti, track in enumerate(additions.tracks):
        lane = lane0 + ti
        for clip in track.clips:
            n_asset += 1
            aid = f"s2v{additions.version}r{n_asset}"
            while aid in ids:
                aid += "x"
            ids.add(aid)
            rec0 = _rt_seconds(clip.record.start_time)
            dur = _rt_seconds(clip.record.duration)
            media_start = _rt_seconds(clip.media_start)
            media_dur = _rt_seconds(clip.media_duration) if clip.media_duration is not None else media_start + dur
            src = _media_src(clip.media_path, path)
            attrs = (f'id={_attr(aid)} name={_attr(Path(clip.media_path).stem)} start="0s" '
                     f'duration="{fmt(media_dur)}" hasVideo="1" format={_attr(seq.get("format") or "")}')
            if version >= (1, 9):
                asset = (f'<asset {attrs}><media-rep kind="original-media" src={_attr(src)}/></asset>')
            else:
                asset = f'<asset {attrs} src={_attr(src)}/>'
            ins.into(resources, asset, set())
            # anchor: the primary-storyline item under the render's first frame
            t_abs = tc_start + rec0
            anchor, a_off = _anchor(items, t_abs, root.offset_default)
            a_start = seconds(anchor.get("start"))
            k = _k(anchor, res, seq_rate)
            local = a_start + (t_abs - a_off) * k
            md = "".join(f'<md key={_attr(MD_PREFIX + str(key))} value={_attr(_md_value(value))}/>'
                         for key, value in clip.metadata.items() if value is not None)
            meta = f"<metadata>{md}</metadata>" if md else ""
            if version >= (1, 6):  # asset-clip (and its videoRole) came with FCPXML 1.6
                role = f' videoRole={_attr(track.name)}'
                ac = (f'<asset-clip ref={_attr(aid)} lane="{lane}" offset="{fmt(local)}" '
                      f'name={_attr(clip.name)} start="{fmt(media_start)}" duration="{fmt(dur * k)}"{role}>'
                      f"{meta}</asset-clip>")
            else:  # before 1.6: a clip holding the video, its role on the video
                ac = (f'<clip lane="{lane}" offset="{fmt(local)}" name={_attr(clip.name)} '
                      f'start="{fmt(media_start)}" duration="{fmt(dur * k)}"><video ref={_attr(aid)} '
                      f'offset="0s" duration="{fmt(media_dur)}" role={_attr(track.name)}/>{meta}</clip>')
            if k != 1:
                notes.append(f"render '{clip.name}' is attached to '{anchor.get('name')}', a rate-conformed clip; "
                             "check its length in Final Cut Pro")
            ins.into(anchor, ac, AFTER_ANCHORS)
    for m in additions.markers:
        loc = m.locator or {}
        idx = loc.get("element")
        node = doc.nodes[idx] if isinstance(idx, int) and 0 <= idx < len(doc.nodes) else None
        if node is None or node.tag != loc.get("tag"):
            notes.append(f"marker '{m.name}' on clip {m.clip_id}: the clip's element was not found; not written")
            continue
        base_local, base_rec, k = (Fraction(loc["base_local"]), Fraction(loc["base_rec"]), Fraction(loc["k"]))
        r0 = _rt_seconds(m.record.start_time)
        start = base_local + (r0 - base_rec) * k
        one_frame = k / seq_rate   # markers are one frame long, as Final Cut Pro makes them
        note = f" note={_attr(m.comment)}" if m.comment else ""
        ins.into(node, f'<marker start="{fmt(start)}" duration="{fmt(one_frame)}" '
                       f'value={_attr(m.name)}{note}/>', AFTER_MARKERS)
    out = ins.result()
    Path(tmp_path).write_bytes(out.encode("utf-8", errors="surrogateescape"))
    notes.append("render tracks are connected clips on new lanes (FCPXML has no tracks); the track name is "
                 "their video role")
    return notes


def _active(item: Node) -> Node:
    """The element that shows: an audition's active pick (its first story child), else the item."""
    if item.tag == "audition":
        pick = next((c for c in item.children if c.tag in STORY and c.tag != "transition"), None)
        return pick if pick is not None else item
    return item


def _span(item: Node, default: Fraction) -> tuple[Fraction, Fraction]:
    """(offset, end) of a primary-storyline item in the spine's time (an audition's length is its pick's)."""
    off = seconds(item.get("offset"), default)
    return off, off + seconds(_active(item).get("duration"))


def _anchor(items: list[Node], t: Fraction, default: Fraction = Fraction(0)) -> tuple[Node, Fraction]:
    """The element to connect to at time ``t`` and its offset in the spine: the item under ``t``
    (preferring one that is not retimed and has children), else the last one starting before it,
    else the first. An audition is never the parent of a connected clip: its active pick is."""
    under = [c for c in items if _span(c, default)[0] <= t < _span(c, default)[1]]
    if under:
        under.sort(key=lambda c: (_active(c).find("timeMap") is not None, _active(c).self_closing))
        item = under[0]
    else:
        before = [c for c in items if seconds(c.get("offset"), default) <= t]
        item = before[-1] if before else items[0]
    return _active(item), seconds(item.get("offset"), default)


def _k(anchor: Node, res: dict, seq_rate: Fraction) -> Fraction:
    cr = anchor.find("conform-rate")
    if cr is None:
        return Fraction(1)
    return conform_scale(named_rate(cr.get("srcFrameRate")), cr.get("scaleEnabled", "1") != "0", seq_rate)

