"""Every corpus FCPXML: read right (against facts taken from the file's own text) and written back
with nothing but the additions.

The facts come from a small extractor of its own below (the standard library's lenient HTML
parser, so that it shares no parsing code with the toolkit): for each picture item the editor sees
on the primary storyline and the connected lanes (compound clips and multicam angles opened up), its
record start/end in sequence frames, its source start and the media time it plays up to, in seconds;
and each marker, chapter marker and keyword inside the visible part of its clip, at its record time. Then the toolkit's reading is
compared with those facts, and a conform's output, with its additions removed, must equal the input.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import pytest

from corpus_testkit import corpus_params
from fcpxml_testkit import collapse, strip_additions_text
from s2v_toolkit.timeline import read_timeline
from s2v_toolkit.timeline.conform import RenderResult, conform
from s2v_toolkit.timeline.timecode import Span, Time
from s2v_toolkit.timeline.describe import describe_timeline
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.timecode import seconds as rt_seconds

pytestmark = pytest.mark.corpus
FILES = corpus_params("timelines", "fcpxml_*.fcpxml")


# ---------------------------------------------------------------- an independent fact extractor


class _Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.a, self.parent, self.kids = tag, dict(attrs), parent, []


class _Tree(HTMLParser):
    """Elements as a tree (names lower-cased by HTMLParser; it tolerates damaged attributes)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = _Node("#doc", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, attrs, self.cur)
        self.cur.kids.append(node)
        self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.kids.append(_Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n.tag != tag:
            n = n.parent
        if n is not self.root:
            self.cur = n.parent


def _t(v, default=Fraction(0)):
    if v is None:
        return default
    v = v.strip().rstrip("s")
    return Fraction(v) if re.fullmatch(r"-?[0-9./]+", v or "x") else default


_RATE_NAMES = {"23.98": Fraction(24000, 1001), "29.97": Fraction(30000, 1001), "59.94": Fraction(60000, 1001)}
_CONFORMING = {Fraction(24000, 1001), Fraction(24), Fraction(25)}
_PICTURE = {"asset-clip", "video", "title", "generator"}


def fcpxml_facts(path: Path) -> dict:
    tree = _Tree()
    tree.feed(path.read_text(errors="replace"))
    nodes, stack = [], [tree.root]
    while stack:
        n = stack.pop()
        nodes.append(n)
        stack.extend(n.kids)
    res = {n.a["id"]: n for n in nodes if n.parent and n.parent.tag == "resources" and "id" in n.a}

    def rate(fmt_id):
        f = res.get(fmt_id)
        return 1 / _t(f.a.get("frameduration")) if f is not None and f.a.get("frameduration") else None

    # the first project in document order; without one, the one clip exported from the browser (a
    # compound clip: its own sequence; another clip: a timeline of that clip from its first frame)
    projects = [n for n in nodes if n.tag == "project" and any(k.tag == "sequence" for k in n.kids)]
    order = {id(n): i for i, n in enumerate(_doc_order(tree.root))}
    lone = None
    if projects:
        project = min(projects, key=lambda n: order[id(n)])
        seq = next(k for k in project.kids if k.tag == "sequence")
    else:
        # (an event exported by Final Cut Pro X 10.0, FCPXML 1.0-1.2: a <project> without a <sequence>)
        browser = [n for n in nodes if n.parent is not None and n.parent.tag in ("fcpxml", "library", "event", "project")
                   and n.tag in ("asset-clip", "ref-clip", "clip", "mc-clip", "sync-clip", "audition")]
        if len(browser) != 1:
            return {"no_project": len(browser)}
        lone = browser[0]
        media = res.get(lone.a.get("ref"))
        seq = next((k for k in media.kids if k.tag == "sequence"), None) \
            if lone.tag == "ref-clip" and media is not None else None
        if seq is not None:
            lone = None
    if lone is None:
        seq_rate = rate(seq.a.get("format"))
        if seq_rate is None:   # a damaged file (its <resources> lost): no item's time can be known
            return {"no_format": seq.a.get("format")}
        tc0 = _t(seq.a.get("tcstart"))
    else:
        ref = res.get(lone.a.get("ref"))
        seq_rate = rate(lone.a.get("format") or (ref.a.get("format") if ref is not None else None))
        tc0 = _t(lone.a.get("start"))
    items, markers = [], []

    def retime(node, tl_rate):
        cr = next((k for k in node.kids if k.tag == "conform-rate"), None)
        if cr is None or cr.a.get("scaleenabled") == "0":
            return Fraction(1)
        src = _RATE_NAMES.get(cr.a.get("srcframerate"), None) or _t(cr.a.get("srcframerate"), None)
        if src in _CONFORMING and tl_rate in _CONFORMING and src != tl_rate:
            return tl_rate / src      # media seconds per timeline second
        return Fraction(1)

    def media_time(node, local):
        tm = next((k for k in node.kids if k.tag == "timemap"), None)
        if tm is None:
            return local
        pts = sorted((_t(p.a.get("time")), _t(p.a.get("value"))) for p in tm.kids if p.tag == "timept")
        (t0, v0), (t1, v1) = pts[0], pts[-1]
        return v0 + (local - t0) * (v1 - v0) / (t1 - t0)

    def content(node, origin, scale):
        """(origin, scale) of a container's content time: a clip's timeMap (a retimed clip of several media
        elements) takes its local time to the time its content is placed in, here from its end points."""
        tm = next((k for k in node.kids if k.tag == "timemap"), None)
        pts = sorted((_t(p.a.get("time")), _t(p.a.get("value"))) for p in tm.kids if p.tag == "timept") if tm else []
        if len(pts) < 2 or pts[-1][1] == pts[0][1]:
            return origin, scale
        (t0, c0), (t1, c1) = pts[0], pts[-1]
        s = (c1 - c0) / (t1 - t0)     # content s per local s
        return origin + (t0 - c0 / s) / scale, scale * s

    def story(node):
        # a bare <audio> is a story element too (on the primary storyline it holds connected picture:
        # storylines and titles above a music clip); it never shows picture itself
        return [k for k in node.kids if k.tag in _PICTURE | {"clip", "ref-clip", "mc-clip", "sync-clip", "audition",
                                                             "gap", "spine", "audio"}]

    def place(node, origin, scale, lo, hi, tl_rate, offset=None, inside=False):
        """``origin``: record second of the parent's local time 0; ``scale``: parent local s per record s."""
        if node.tag == "audition":
            first = story(node)[0]
            return place(first, origin, scale, lo, hi, tl_rate, _t(node.a.get("offset")), inside)
        off = _t(node.a.get("offset")) if offset is None else offset
        if node.tag == "spine":
            for k in story(node):
                place(k, origin + off / scale, scale, lo, hi, tl_rate, inside=inside)
            return
        start, dur = _t(node.a.get("start")), _t(node.a.get("duration"))
        mc = next((k for k in res[node.a["ref"]].kids if k.tag == "multicam"), None) if node.tag == "mc-clip" else None
        mc_tc = _t(mc.a.get("tcstart")) if mc is not None else Fraction(0)
        if mc is not None and node.a.get("start") is None:
            start = mc_tc   # an mc-clip's start counts in the multicam's timecode: its first frame is tcStart
        k_item = retime(node, tl_rate)
        # in the content of a clip played backwards (a decreasing timeMap) later items come first
        r0, r1 = sorted((origin + off / scale, origin + (off + dur) / scale))
        my_scale = scale * k_item
        my_origin = origin + off / scale - start / my_scale   # this item's local time 0
        v0, v1 = max(r0, lo), min(r1, hi)
        if node.tag != "gap" and not inside:
            # markers the editor sees: on the project's own items (those on clips inside a compound
            # clip's or a multicam's media show only when it is opened), in the visible part of their clip
            for m in node.kids:
                if m.tag in ("marker", "chapter-marker", "keyword"):
                    at = my_origin + _t(m.a.get("start")) / my_scale
                    if v0 <= at < v1:
                        markers.append((at, m.a.get("value") or ""))
        ref = res.get(node.a.get("ref"))
        has_picture = node.tag != "asset-clip" or ref is None or ref.a.get("hasvideo") == "1"
        if node.tag in _PICTURE and v1 > v0 and has_picture:
            local = (v0 - my_origin) * my_scale
            name = node.a.get("name") or (node.parent.a.get("name") if node.parent.tag == "clip" else None)
            speed = (media_time(node, (v1 - my_origin) * my_scale) - media_time(node, local)) / (v1 - v0)
            items.append((v0, v1, media_time(node, local), name or (ref.a.get("name") if ref else None), speed))
        c_origin, c_scale = content(node, my_origin, my_scale)
        if node.tag in ("clip", "sync-clip"):
            for k in story(node):
                if k.a.get("lane", "0") == "0":
                    place(k, c_origin, c_scale, v0, v1, tl_rate, inside=inside)
        if node.tag == "ref-clip" and node.a.get("srcenable", "all") in ("all", "video"):
            media = res[node.a["ref"]]
            inner = next(k for k in media.kids if k.tag == "sequence")
            spine = next(k for k in inner.kids if k.tag == "spine")
            for k in story(spine):
                place(k, c_origin, c_scale, v0, v1, rate(inner.a.get("format")) or tl_rate, inside=True)
        if node.tag == "mc-clip" and node.a.get("srcenable", "all") in ("all", "video"):
            video = [s.a.get("angleid") for s in node.kids if s.tag == "mc-source"
                     and s.a.get("srcenable", "all") in ("all", "video")]
            # the angles' contents are placed from offset 0 (their first element starts at tcStart's
            # media time): angle time t is the multicam's timecode tcStart + t
            firsts = [_t(k.a.get("offset")) for a in mc.kids if a.tag == "mc-angle" for k in story(a)]
            a_origin = c_origin + (mc_tc / c_scale if firsts and min(firsts) < mc_tc else 0)
            for angle in (a for a in mc.kids if a.tag == "mc-angle" and video and a.a.get("angleid") == video[-1]):
                for k in story(angle):
                    place(k, a_origin, c_scale, v0, v1, rate(mc.a.get("format")) or tl_rate, inside=True)
        for k in story(node):                      # connected items: not clipped by this item
            if k.a.get("lane", "0") != "0":
                place(k, my_origin, my_scale, lo, hi, tl_rate, inside=inside)

    inf = Fraction(10**9)
    if lone is not None:
        place(lone, -tc0, Fraction(1), -inf, inf, seq_rate, offset=_t(lone.a.get("offset"), tc0))
    else:
        spine = next(k for k in seq.kids if k.tag == "spine")
        for k in story(spine):
            place(k, -tc0, Fraction(1), -inf, inf, seq_rate)
    out = []
    for v0, v1, src, name, speed in items:
        # picture shows from the frame nearest to where it starts (halves later); source at that frame
        f0, f1 = math.floor(v0 * seq_rate + Fraction(1, 2)), math.floor(v1 * seq_rate + Fraction(1, 2))
        out.append((f0, f1, src + (f0 / seq_rate - v0) * speed, name, src + (f1 / seq_rate - v0) * speed))
    # audio-only clips (lanes below, or assets without picture) never reach `items` as picture
    return {"rate": seq_rate, "start_frames": tc0 * seq_rate, "items": sorted(out, key=lambda x: (x[0], x[1], x[3])),
            "markers": sorted(markers)}


def _doc_order(root):
    yield root
    for k in root.kids:
        yield from _doc_order(k)


def _well_formed(path: Path) -> bool:
    try:
        xml.parsers.expat.ParserCreate().Parse(path.read_bytes(), True)
        return True
    except xml.parsers.expat.ExpatError:
        return False


# ---------------------------------------------------------------- the checks


def _picture(desc):
    out = []
    for c in desc.clips:
        if c.kind != "video" or c.s2v.get("unknown_picture"):
            continue
        r = c.record.to_otio()
        f0 = r.start_time.rescaled_to(desc.rate).value
        f1 = r.end_time_exclusive().rescaled_to(desc.rate).value
        # the media time played up to: backwards from the source in point at a negative speed, none at a hold
        src = rt_seconds(c.source.to_otio().start_time)
        out.append((f0, f1, src, c.name, src + float(c.record.duration_seconds) * c.speed))
    return sorted(out, key=lambda x: (round(x[0]), round(x[1]), x[3]))


def read_right(path: Path) -> list[str]:
    """What differs between the toolkit's reading and the file's facts ([] = read right)."""
    facts = fcpxml_facts(path)
    if "no_project" in facts:
        # an event of several clips and no project: one clear error, no timeline made up
        with pytest.raises(TimelineError, match=f"no project, only {facts['no_project']} clip"):
            read_timeline(path)
        return []
    if "no_format" in facts:
        # the sequence's format is not in the file: read with a note, its picture unknown (never guessed)
        loaded = read_timeline(path)
        desc = describe_timeline(loaded, check_media=False)
        wrong = [] if any("format" in n for n in loaded.notes) else ["missing format read without a note"]
        return wrong + [f"picture read as known: {g}" for g in _picture(desc)]
    loaded = read_timeline(path)
    desc = describe_timeline(loaded, check_media=False)
    wrong = []
    if Fraction(desc.rate).limit_denominator(1001) != facts["rate"]:
        wrong.append(f"rate {desc.rate} != {facts['rate']}")
    if round(desc.global_start.to_otio().rescaled_to(desc.rate).value) != facts["start_frames"]:
        wrong.append("start timecode")
    got = _picture(desc)
    if len(got) != len(facts["items"]):
        wrong.append(f"{len(got)} picture clips, the file has {len(facts['items'])}")
    for g, f in zip(got, facts["items"]):
        if abs(g[0] - f[0]) > 1e-6 or abs(g[1] - f[1]) > 1e-6 or g[3] != f[3] \
                or abs(float(g[2]) - float(f[2])) > 1e-4 or abs(float(g[4]) - float(f[4])) > 1e-3:
            wrong.append(f"{g[3]}: toolkit {g[:3]} (media to {float(g[4]):.4f}s) != file {f[:3]} "
                         f"(media to {float(f[4]):.4f}s)")
    got_markers = sorted((rt_seconds(m.record.start.to_otio()), m.name) for c in desc.clips for m in c.markers)
    want_markers = [(at + 0, name) for at, name in facts["markers"]]
    if [n for _, n in got_markers] != [n for _, n in want_markers] or any(
            abs(float(g[0] - w[0])) > 1e-3 for g, w in zip(got_markers, want_markers)):
        wrong.append(f"markers {[(float(t), n) for t, n in got_markers]} != file {[(float(t), n) for t, n in want_markers]}")
    if not _well_formed(path) and not any("not well-formed" in n for n in loaded.notes):
        wrong.append("damaged XML read without a note")
    return wrong


@pytest.mark.parametrize("path", FILES)
def test_fcpxml_read_right(path):
    assert read_right(path) == []


def _canonical(text: str) -> str:
    return ET.canonicalize(text, strip_text=True)


def _strip_tree(text: str) -> str:
    root = ET.fromstring(text.encode())
    added = {a.get("id") for a in root.iter("asset") if re.fullmatch(r"s2v\d+r\d+x*", a.get("id") or "")}
    for parent in list(root.iter()):
        for child in list(parent):
            if (child.tag == "asset" and child.get("id") in added) \
                    or (child.tag == "asset-clip" and child.get("ref") in added) \
                    or (child.tag == "clip" and any(v.get("ref") in added for v in child.findall("video"))) \
                    or (child.tag == "marker" and (child.get("value") or "").startswith("S2V v")):
                parent.remove(child)
    return _canonical(ET.tostring(root, encoding="unicode"))


def _renders(path: Path, desc) -> list:
    """Renders over the first and the middle shot; over an audio-only cut, by record range over its
    first and middle sound clips (a new picture placed over sound)."""
    shots = [c for c in desc.clips if c.kind == "video" and not c.s2v.get("generator")
             and not c.s2v.get("unknown_picture")] \
        or [c for c in desc.clips if c.kind == "video"]   # a project of titles only: mark a title
    by_record = not shots
    shots = shots or [c for c in desc.clips if c.kind == "audio"]
    if not shots:
        return []
    picks = [shots[0], shots[len(shots) // 2]] if len(shots) > 1 else shots
    picks = list({c.id: c for c in picks}.values())
    if by_record:
        return [RenderResult(f"/renders/{path.stem}_{i}.mov", record=c.record, job_id=f"j{i}")
                for i, c in enumerate(picks)]
    return [RenderResult(f"/renders/{path.stem}_{i}.mov", clip_id=c.id, job_id=f"j{i}") for i, c in enumerate(picks)]


def written_back_unchanged(path: Path, out_dir: Path) -> list[str]:
    facts = fcpxml_facts(path)
    if "no_project" in facts:
        return []   # nothing read (test_fcpxml_read_right checks the error), nothing to write back
    desc = describe_timeline(read_timeline(path), check_media=False)
    renders = _renders(path, desc)
    if "no_format" in facts:
        # a file that lost its <resources>: no FCPXML is written (the render's media has nowhere to go),
        # with the reason; the other outputs still come
        result = conform(path, renders, out_dir)
        if "fcpx_xml" in result.outputs or not any(n.startswith("fcpx_xml") for n in result.not_carried):
            return [f"a file without resources written back: {result.outputs}, {result.not_carried}"]
        return []
    if not renders:
        # an empty project: a render placed over it is refused with a clear reason, nothing written
        one = [RenderResult(f"/renders/{path.stem}.mov", record=Span(Time(0, desc.rate), Time(24, desc.rate)))]
        empty = conform(path, one, out_dir / "empty")
        if "fcpx_xml" in empty.outputs or not any("primary storyline is empty" in n for n in empty.not_carried):
            return [f"a render over an empty project: {empty.outputs}, {empty.not_carried}"]
    result = conform(path, renders, out_dir)
    out = Path(result.outputs["fcpx_xml"])
    wrong = []
    if collapse(strip_additions_text(out.read_bytes().decode())) != collapse(path.read_bytes().decode()):
        wrong.append("output minus the additions differs from the input")
    if _well_formed(path) and _strip_tree(out.read_text()) != _canonical(path.read_text()):
        wrong.append("output minus the additions (by structure) is not canonically the input")
    back = describe_timeline(read_timeline(out), check_media=False)
    # each render where it was placed, under its own name; overlapping ones on lanes of their own
    placed_names = {p.clip_name for p in result.placed}
    back_renders = [c for c in back.clips if c.kind == "video" and c.name in placed_names]
    want = sorted((round(p.record.to_otio().start_time.rescaled_to(desc.rate).value), p.clip_name)
                  for p in result.placed)
    have = sorted((round(c.record.to_otio().start_time.rescaled_to(desc.rate).value), c.name) for c in back_renders)
    if want != have or len(result.placed) != len(renders):
        wrong.append(f"renders read back at {have}, placed at {want}")
    for a in back_renders:
        for b in back_renders:
            ra, rb = a.record.to_otio(), b.record.to_otio()
            if a is not b and a.track == b.track and ra.start_time < rb.end_time_exclusive() \
                    and rb.start_time < ra.end_time_exclusive():
                wrong.append(f"overlapping renders {a.name} and {b.name} read back on one track {a.track}")
    names = set(result.track_names)
    markers = sum(1 for c in back.clips for m in c.markers if m.name in names)
    expected = sum(len(p.source_clip_ids) for p in result.placed)
    if markers < expected:
        wrong.append(f"{markers} of {expected} markers read back")
    return wrong


@pytest.mark.parametrize("path", FILES)
def test_fcpxml_written_back_with_only_the_additions(path, tmp_path):
    assert written_back_unchanged(path, tmp_path) == []
