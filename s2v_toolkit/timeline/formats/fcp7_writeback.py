"""Surgical write-back for FCP 7 XML: the editor's document with only the conform's additions inserted.

The original text is never re-serialised: a small scanner finds the byte positions of the elements
(the top sequence's ``<media><video>``, the marked ``<clipitem>``s) and new text is inserted there:
one new video ``<track>`` per render track, with ``<clipitem>``s referencing new ``<file>``
elements, and one ``<marker>`` per marked clip. Everything else (declaration, DOCTYPE, BOM,
whitespace, attribute order, Premiere's private attributes) stays byte for byte as it was.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import quote, urlparse
from xml.sax.saxutils import escape, quoteattr

from s2v_toolkit.timeline.additions import TimelineAdditions
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.fcp7_reader import LOGNOTE_PREFIX, rate_of
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.media_link import url_to_path
from s2v_toolkit.timeline.timecode import frame_count, rate_fraction

_ATTRS = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""
_TOKEN = re.compile(
    r"<!--.*?-->|<\?.*?\?>|<!\[CDATA\[.*?\]\]>|<!DOCTYPE(?:[^>\[]|\[[^\]]*\])*>"
    rf"|<(/?)([A-Za-z_][\w.:-]*)({_ATTRS}?)(/?)>", re.S)


@dataclass
class Node:
    tag: str
    start: int                  # offset of '<'
    open_end: int               # offset after the start tag's '>'
    close_start: int = -1       # offset of '</tag>' (== open_end for <tag/>)
    end: int = -1               # offset after the element
    children: list = field(default_factory=list)

    def kids(self, tag: str) -> list["Node"]:
        return [c for c in self.children if c.tag == tag]

    def kid(self, tag: str) -> "Node | None":
        return next(iter(self.kids(tag)), None)


def scan(text: str) -> Node:
    """Element tree with text offsets (well-formed XML assumed; the reader has parsed it already)."""
    doc = Node("#document", 0, 0)
    stack = [doc]
    for m in _TOKEN.finditer(text):
        closing, tag, _, selfclose = m.group(1), m.group(2), m.group(3), m.group(4)
        if tag is None:
            continue
        if closing:
            node = stack.pop()
            if node.tag != tag:
                raise ValueError(f"</{tag}> closes <{node.tag}> at offset {m.start()}")
            node.close_start, node.end = m.start(), m.end()
            continue
        node = Node(tag, m.start(), m.end())
        stack[-1].children.append(node)
        if selfclose:
            node.close_start, node.end = m.end(), m.end()
        else:
            stack.append(node)
    return doc


def _top_sequence(root: Node) -> Node | None:
    seq = root.kid("sequence")
    if seq is not None:
        return seq
    todo = list(root.children)
    while todo:
        n = todo.pop(0)
        if n.tag == "sequence" and n.children:
            return n
        todo.extend(n.children)
    return None


def _indent_before(text: str, offset: int) -> str:
    """The whitespace that starts the line ``offset`` is on."""
    line_start = text.rfind("\n", 0, offset) + 1
    m = re.match(r"[ \t]*", text[line_start:offset])
    return m.group(0) if m else ""


def _decode(data: bytes) -> tuple[str, str]:
    """(text, codec) such that ``text.encode(codec) == data``: a BOM stays in the text as U+FEFF,
    newlines are not touched (bytes.decode never translates CRLF)."""
    if data.startswith(b"\xff\xfe"):
        enc = "utf-16-le"
    elif data.startswith(b"\xfe\xff"):
        enc = "utf-16-be"
    else:
        m = re.match(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']", data)
        enc = m.group(1).decode("ascii") if m else "utf-8"
        if enc.lower().replace("_", "-") in ("utf-16", "utf16"):   # declared, without a BOM
            enc = "utf-16-be" if data.startswith(b"\x00") else "utf-16-le"
    return data.decode(enc), enc


def _rate_xml(rate: Fraction, ind: str, nl: str, unit: str) -> str:
    ntsc = rate.denominator == 1001
    tb = round(rate * 1001 / 1000) if ntsc else round(rate)
    return (f"{ind}<rate>{nl}{ind}{unit}<timebase>{tb}</timebase>{nl}{ind}{unit}<ntsc>{'TRUE' if ntsc else 'FALSE'}"
            f"</ntsc>{nl}{ind}</rate>")


def _pathurl(path: str, url: str, out_dir: Path) -> str:
    if urlparse(url).scheme == "file":
        p = Path(url_to_path(url))
    else:
        p = Path(path)
        if not p.is_absolute():
            p = Path(os.path.abspath(p))
    return "file://localhost" + quote(p.as_posix(), safe="/:@!$&'()*+,;=-._~")


def _unique(prefix: str, used: set) -> str:
    n = 1
    while f"{prefix}{n}" in used:
        n += 1
    used.add(f"{prefix}{n}")
    return f"{prefix}{n}"


_PATHURL = re.compile(r"(<pathurl>)([^<]*)(</pathurl>)")


def rebase_relative_pathurls(text: str, from_dir: Path, to_dir: Path) -> tuple[str, int]:
    """Relative ``<pathurl>``s (relative to the timeline's folder) made relative to ``to_dir``, so a
    copy written into another folder still finds the media. Absolute URLs are left as they are."""
    if from_dir.resolve() == to_dir.resolve():
        return text, 0
    count = 0

    def fix(m):
        nonlocal count
        url = m.group(2).strip()
        if not url or urlparse(url).scheme or Path(url_to_path(url)).is_absolute():
            return m.group(0)
        target = (from_dir / url_to_path(url)).resolve()
        count += 1
        return m.group(1) + escape(Path(os.path.relpath(target, to_dir.resolve())).as_posix()) + m.group(3)
    return _PATHURL.sub(fix, text), count


def write_additions(original: LoadedTimeline, additions: TimelineAdditions, tmp_path: Path) -> list[str]:
    data = Path(original.path).read_bytes()
    try:
        text, enc = _decode(data)
    except (LookupError, UnicodeDecodeError) as exc:
        raise TimelineError(original.path, f"cannot decode the file for write-back ({exc})") from None
    text, rebased = rebase_relative_pathurls(text, Path(original.path).parent, Path(tmp_path).parent)
    notes = [f"{rebased} relative media path(s) rewritten relative to the output folder"] if rebased else []
    if not additions.tracks and not additions.markers:
        Path(tmp_path).write_bytes(data if not rebased else text.encode(enc))
        return notes
    try:
        doc = scan(text)
    except ValueError as exc:
        raise TimelineError(original.path, f"cannot locate elements for write-back: {exc}") from None
    root = doc.kid("xmeml")
    seq = _top_sequence(root) if root is not None else None
    if seq is None:
        raise TimelineError(original.path, "no <sequence> to add the renders to")
    import xml.etree.ElementTree as ET

    seq_el = ET.fromstring(text[seq.start:seq.end])
    rate = rate_of(seq_el, rate_fraction(additions.rate))
    nl = "\r\n" if "\r\n" in text[:2000] else "\n"
    used_ids = set(re.findall(r"""\bid=["']([^"']*)["']""", text))
    inserts: list[tuple[int, str]] = []

    media = seq.kid("media")
    video = media.kid("video") if media is not None else None
    if additions.tracks and (media is None or media.close_start == media.open_end):
        raise TimelineError(original.path, "the sequence has no <media> element to add a video track to")
    if additions.tracks and video is None:
        # an audio-only (or empty) sequence: a new <video> holding the render tracks, first in <media>
        # as FCP 7 orders it
        ind = _indent_before(text, media.start) + "\t"
        unit = "\t" if "\t" in ind else "  "
        chunks = [_track_xml(track, rate, ind + unit, unit, nl, used_ids, Path(tmp_path).parent)
                  for track in additions.tracks]
        inserts.append((media.open_end, f"{nl}{ind}<video>" + "".join(nl + c for c in chunks) + f"{nl}{ind}</video>"))
    elif additions.tracks:
        tracks = video.kids("track")
        ref = tracks[-1] if tracks else video
        ind = _indent_before(text, ref.start) if tracks else _indent_before(text, video.start) + "\t"
        unit = "\t" if "\t" in ind or not ind else "  "
        if video.close_start == video.open_end:  # <video/>: cannot insert inside; rare enough to refuse
            raise TimelineError(original.path, "the sequence's <video/> is empty-tag; cannot add a track")
        chunks = []
        for track in additions.tracks:
            chunks.append(_track_xml(track, rate, ind, unit, nl, used_ids, Path(tmp_path).parent))
        # insert after the last track (before the whitespace that precedes </video>)
        pos = ref.end if tracks else video.open_end
        inserts.append((pos, "".join(nl + c for c in chunks)))
    for mk in additions.markers:
        node = _locate(seq, mk.locator)
        if node is None or node.close_start == node.open_end:
            notes.append(f"marker '{mk.name}' for clip {mk.clip_id}: its clip item was not found; not written")
            continue
        loc = mk.locator
        start = int(loc.get("start", 0))
        src_in = int(loc.get("src_in", 0))
        rec_in = frame_count(mk.record.start_time, float(rate))
        length = frame_count(mk.record.duration, float(rate))
        m_in = rec_in - start + src_in
        ind = _indent_before(text, node.close_start) + "\t"
        sub = ind + "\t"
        body = (f"{ind}<marker>{nl}{sub}<name>{escape(mk.name)}</name>{nl}{sub}<comment>{escape(mk.comment)}</comment>"
                f"{nl}{sub}<in>{m_in}</in>{nl}{sub}<out>{m_in + length}</out>{nl}{ind}</marker>{nl}")
        # before the whitespace that precedes </clipitem>, so the closing tag keeps its indentation
        ws = len(text[:node.close_start]) - len(text[:node.close_start].rstrip(" \t"))
        inserts.append((node.close_start - ws, body))
    out = text
    for pos, chunk in sorted(inserts, key=lambda x: x[0], reverse=True):
        out = out[:pos] + chunk + out[pos:]
    # added names/paths the file's encoding cannot hold go in as character references
    Path(tmp_path).write_bytes(out.encode(enc, "xmlcharrefreplace"))
    return notes


def _locate(seq: Node, locator: dict) -> Node | None:
    """The clip item a reader's locator names (kind, track index, item index; id checked)."""
    try:
        kind, ti, ii = locator["kind"], int(locator["track"]), int(locator["item"])
    except (KeyError, TypeError, ValueError):
        return None
    media = seq.kid("media")
    holder = media.kid(kind) if media is not None else None
    tracks = holder.kids("track") if holder is not None else []
    if ti >= len(tracks):
        return None
    items = [c for c in tracks[ti].children if c.tag in ("clipitem", "generatoritem", "transitionitem")]
    if ii >= len(items) or items[ii].tag == "transitionitem":
        return None
    return items[ii]


def _track_xml(track, rate: Fraction, ind: str, unit: str, nl: str, used: set, out_dir: Path) -> str:
    i1, i2, i3 = ind + unit, ind + unit * 2, ind + unit * 3
    parts = [f"{ind}<track MZ.TrackName={quoteattr(track.name)}>"]
    for clip in track.clips:
        cid, fid = _unique("s2v-clipitem-", used), _unique("s2v-file-", used)
        s = frame_count(clip.record.start_time, float(rate))
        e = s + frame_count(clip.record.duration, float(rate))
        first = frame_count(clip.media_start, float(rate))
        dur = frame_count(clip.media_duration, float(rate)) if clip.media_duration is not None else first + (e - s)
        url = _pathurl(clip.media_path, clip.media_url, out_dir)
        note = LOGNOTE_PREFIX + json.dumps(clip.metadata, sort_keys=True, default=str)
        parts.append(
            f"{i1}<clipitem id={quoteattr(cid)}>{nl}"
            f"{i2}<name>{escape(clip.name)}</name>{nl}{i2}<enabled>TRUE</enabled>{nl}"
            f"{i2}<duration>{dur}</duration>{nl}{_rate_xml(rate, i2, nl, unit)}{nl}"
            f"{i2}<start>{s}</start>{nl}{i2}<end>{e}</end>{nl}{i2}<in>{first}</in>{nl}{i2}<out>{first + e - s}</out>{nl}"
            f"{i2}<file id={quoteattr(fid)}>{nl}{i3}<name>{escape(Path(url_to_path(url)).name)}</name>{nl}"
            f"{i3}<pathurl>{escape(url)}</pathurl>{nl}{_rate_xml(rate, i3, nl, unit)}{nl}"
            f"{i3}<duration>{dur}</duration>{nl}"
            f"{i3}<media>{nl}{i3}{unit}<video>{nl}{i3}{unit*2}<duration>{dur}</duration>{nl}{i3}{unit}</video>{nl}"
            f"{i3}</media>{nl}{i2}</file>{nl}"
            f"{i2}<logginginfo>{nl}{i3}<lognote>{escape(note)}</lognote>{nl}{i2}</logginginfo>{nl}"
            f"{i1}</clipitem>")
    parts.append(f"{i1}<enabled>TRUE</enabled>{nl}{i1}<locked>FALSE</locked>{nl}{ind}</track>")
    return nl.join(parts)


__all__ = ["Node", "scan", "write_additions"]
