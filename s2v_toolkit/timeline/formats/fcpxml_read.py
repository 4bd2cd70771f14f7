"""Read an FCPXML project the way Final Cut Pro shows it, into OTIO objects.

Our own reader (not otio-fcpx-xml-adapter, which drops multicam clips and titles, reads ``<clip>``
wrappers twice, misplaces connected clips and secondary storylines, takes the rate from the first
clip and refuses mixed rates). Times are exact Fractions of seconds throughout.

Tracks: FCPXML has lanes, not tracks. Picture goes to one video track per lane (lane 0 = the primary
storyline; connected clips and secondary storylines at their lane, relative lanes summed), ordered
bottom to top; sound goes to one audio track per role ("dialogue", "music", ...). Compound clips
(``ref-clip``) and the active angles of multicam clips (``mc-clip``) are flattened into these tracks at
their record positions, each clip naming what it came from (``nested_in``, ``multicam_angle``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.fcpxml_doc import Document, Node
from s2v_toolkit.timeline.formats.fcpxml_otio import build
from s2v_toolkit.timeline.formats.fcpxml_root import story_root
from s2v_toolkit.timeline.formats.fcpxml_time import (
    Map, TimeMap, ZERO, conform_scale, named_rate, seconds,
)
from s2v_toolkit.timeline.timecode import STANDARD_RATES, RationalTime

NS = "s2v_toolkit"
MD_PREFIX = "s2v_toolkit."       # <md key="s2v_toolkit.job_id" value="..."/> written by our conform
STORY = {"asset-clip", "clip", "ref-clip", "mc-clip", "sync-clip", "audition", "gap", "title", "generator",
         "video", "audio", "spine", "transition", "live-drawing"}
HOSTS = {"asset-clip", "clip", "ref-clip", "mc-clip", "sync-clip", "title", "generator", "gap"}
CONTAINERS = {"clip", "sync-clip", "ref-clip", "mc-clip"}   # elements whose content has its own time (timeMap)
HOLD_SPEED = Fraction(1, 10 ** 9)   # a held frame's content speed (a map needs a non-zero one); read back as 0
# timed elements that are never picture (captions are subtitles; markers and effects are not items)
NOT_PICTURE = {"caption", "marker", "chapter-marker", "keyword", "rating", "analysis-marker", "filter-video",
               "filter-audio", "filter-video-mask", "adjust-volume", "metadata", "timeMap", "conform-rate",
               "mc-source", "sync-source", "audio-channel-source", "audio-role-source", "hidden-clip-marker",
               "note", "param"}
MARKERS = {"marker": "marker", "chapter-marker": "chapter", "keyword": "keyword"}


@dataclass
class Ctx:
    """What an element inherits from the elements around it."""

    rate: Fraction                    # frame rate of the timeline it sits in (conform decisions)
    lane: int = 0                     # absolute lane (sum of the lanes on its path)
    window: tuple | None = None       # record range (seconds) it can be seen in, None = unbounded
    awindow: object = "same"          # record range it can be heard in ("same": as window; split edits differ)
    enabled: bool = True
    kinds: frozenset = frozenset({"video", "audio"})
    gain_db: float = 0.0
    role: str | None = None           # audioRole of an enclosing clip
    muted_roles: frozenset = frozenset()
    nested_in: str | None = None
    angle: str | None = None
    host: tuple | None = None         # (element, Map) where markers for this clip go back in
    in_project: bool = True
    video_role: str | None = None
    clip_name: str | None = None      # name of the <clip> wrapping unnamed video/audio elements
    markers: bool = True              # False inside a compound clip's or a multicam's media


@dataclass
class Piece:
    """One clip as the editor sees it, before it is put on a track."""

    kind: str
    lane: int
    name: str
    rec0: Fraction
    rec1: Fraction
    src0: Fraction                    # media seconds at rec0
    speed: Fraction                   # media seconds per record second
    src_rate: Fraction
    node: Node
    role: str | None = None
    enabled: bool = True
    url: str | None = None
    available: tuple | None = None    # (start, duration) seconds of the media
    generator: str | None = None
    s2v: dict = field(default_factory=dict)
    markers: list = field(default_factory=list)   # (rec0, rec1, name, color, note, kind)
    video_role: str | None = None


@dataclass
class Transition:
    lane: int
    rec0: Fraction
    rec1: Fraction
    name: str


def _int(text, default=0) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return default


def _frame_rate(fmt: Node | None) -> Fraction | None:
    if fmt is None:
        return None
    fd = seconds(fmt.get("frameDuration"), None)
    return 1 / fd if fd else None


class Reader:
    def __init__(self, path: Path, doc: Document):
        self.path = path
        self.doc = doc
        self.notes: list[str] = list(f"file is not well-formed XML, read leniently: {p}" for p in doc.problems)
        self.res: dict[str, Node] = {}
        for r in doc.root.iter("resources"):
            for n in r.children:
                if n.get("id"):
                    self.res[n.get("id")] = n
        self.pieces: list[Piece] = []
        self.transitions: list[Transition] = []
        self.seq_rate = Fraction(24)
        self.tc_start = ZERO
        self.drop = False

    # ------------------------------------------------------------------ entry
    def rate_of(self, fmt_id: str | None, what: str, strict: bool = False) -> Fraction | None:
        """The frame rate of a format. A rate no NLE uses (``100/2997s``) would be taken for its
        standard neighbour downstream: refused for the sequence, noted for media (read at its own value)."""
        rate = _frame_rate(self.res.get(fmt_id)) if fmt_id else None
        if rate is not None and rate not in STANDARD_RATES:
            text = (f"FCPXML {what} frame rate {float(rate):.4f} fps (frameDuration "
                    f"{self.res[fmt_id].get('frameDuration')}) is not a standard video rate")
            if strict:
                raise TimelineError(self.path, text)
            if text not in self.notes:
                self.notes.append(text)
        return rate

    def read(self) -> otio.schema.Timeline:
        root = story_root(self.doc, self.path)
        if root.note:
            self.notes.append(root.note)
        seq = root.seq
        rate = self.rate_of(seq.get("format"), "sequence", strict=True)
        if rate is None:
            rate = Fraction(24)
            self.notes.append("sequence format has no frame duration; read at 24 fps")
        self.seq_rate = rate
        self.tc_start = root.tc_start
        self.drop = (seq.get("tcFormat") or "NDF").upper() == "DF"
        pmap, ctx = Map(ZERO, -self.tc_start), Ctx(rate=rate)
        spine = seq.find("spine")
        if spine is not None:
            self.walk_children(spine, pmap, ctx, spine_mode=True)
        elif root.items:   # a lone clip from the browser
            self.walk_item(root.items[0], pmap, ctx, offset_default=root.offset_default)
        return build(self, root.project or _Named(root.name), seq)

    # ------------------------------------------------------------------ walking
    def walk_children(self, parent: Node, pmap: Map, ctx: Ctx, spine_mode: bool, primary_window=None,
                      outer_window=None) -> list[Piece]:
        """Story children of ``parent``: in a spine all are primary; in a clip, lane 0 is its content
        (seen through ``primary_window``), other lanes are connected (seen through ``outer_window``)."""
        out: list[Piece] = []
        for child in parent.children:
            if child.tag not in STORY:
                if child.tag not in NOT_PICTURE and child.get("offset") is not None \
                        and child.get("duration") is not None:
                    # a timed element this reader does not know: its record range is unknown picture
                    lane = 0 if spine_mode else _int(child.get("lane"), 0)
                    cmap = pmap.child(seconds(child.get("offset")), seconds(child.get("start")))
                    r0 = pmap.rec(seconds(child.get("offset")))
                    r1 = pmap.rec(seconds(child.get("offset")) + seconds(child.get("duration")))
                    out.append(self.unknown(child, cmap, (r0, r1), replace(ctx, lane=ctx.lane + lane),
                                            f"<{child.tag}> is not understood"))
                continue
            lane = _int(child.get("lane"), 0)
            if spine_mode:
                out += self.walk_item(child, pmap, ctx)
            elif lane == 0:
                out += self.walk_item(child, pmap, replace(ctx, window=primary_window))
            else:
                out += self.walk_item(child, pmap, replace(ctx, window=outer_window, lane=ctx.lane + lane))
        return out

    def connected(self, el: Node, imap: Map, base: Ctx, ctx: Ctx) -> list[Piece]:
        """Connected items and secondary storylines hanging off ``el`` (children with a non-zero lane),
        in ``base``'s time with the parent's window and lanes counted from the parent's lane."""
        pieces: list[Piece] = []
        for child in el.children:
            lane = _int(child.get("lane"), 0)
            if child.tag in STORY and lane != 0:
                pieces += self.walk_item(child, imap, replace(base, window=ctx.window, awindow=ctx.awindow,
                                                              lane=ctx.lane + lane, video_role=ctx.video_role))
        return pieces

    def walk_item(self, el: Node, pmap: Map, ctx: Ctx, offset_default: Fraction = ZERO) -> list[Piece]:
        """One story element and what it holds; an element that cannot be read becomes unknown picture
        over its record range (with a note naming it and its line), the rest of the cut is still read."""
        try:
            return self._walk_item(el, pmap, ctx, offset_default)
        except TimelineError:
            raise
        except (ValueError, ZeroDivisionError, KeyError, TypeError, AttributeError, StopIteration) as exc:
            reason = f"<{el.tag}> (line {el.line(self.doc.text)}) could not be read ({type(exc).__name__}: {exc})"
            try:
                o = seconds(el.get("offset"), offset_default)
                rng = (pmap.rec(o), pmap.rec(o + seconds(el.get("duration"))))
            except (ValueError, ZeroDivisionError, TypeError):
                self.notes.append(f"'{el.get('name') or el.tag}': {reason}; its record range is unknown too")
                return []
            return [self.unknown(el, pmap.child(o, ZERO), rng, ctx, reason)]

    def _walk_item(self, el: Node, pmap: Map, ctx: Ctx, offset_default: Fraction = ZERO) -> list[Piece]:
        tag = el.tag
        offset = seconds(el.get("offset"), offset_default)
        start = seconds(el.get("start"))
        duration = seconds(el.get("duration"), None)
        enabled = ctx.enabled and el.get("enabled", "1") != "0"
        if tag == "spine":
            smap = pmap.child(offset, ZERO)
            return self.walk_children(el, smap, replace(ctx, enabled=enabled), spine_mode=True)
        if tag == "audition":
            pick = next((c for c in el.children if c.tag in STORY), None)
            if pick is None:
                return []
            return self._walk_item(pick, pmap, replace(ctx, enabled=enabled), offset_default=offset)
        if tag in ("ref-clip", "mc-clip") and el.get("start") is None:
            start = self.media_tc_start(el)   # a compound/multicam shown from its own first frame
        k_item = self.conform_k(el, ctx)
        imap = pmap.child(offset, start, k_item)
        if duration is None:
            duration = self.missing_duration(el, ctx, pmap, offset)
        r0, r1 = sorted((pmap.rec(offset), pmap.rec(offset + duration)))   # reversed in a clip played backwards
        own = (r0, r1)
        vis = own if ctx.window is None else (max(r0, ctx.window[0]), min(r1, ctx.window[1]))
        # split edits (J/L cuts): the sound spans audioStart/audioDuration instead of start/duration
        a_start, a_dur = seconds(el.get("audioStart"), None), seconds(el.get("audioDuration"), None)
        aown = own
        if a_start is not None or a_dur is not None:
            a0 = imap.rec(a_start) if a_start is not None else r0
            aown = (a0, a0 + (a_dur if a_dur is not None else duration) / pmap.k)
        aw = ctx.window if ctx.awindow == "same" else ctx.awindow
        avis = aown if aw is None else (max(aown[0], aw[0]), min(aown[1], aw[1]))
        if tag == "transition":
            self.transitions.append(Transition(ctx.lane, r0, r1, el.get("name") or "transition"))
            return []
        gain = ctx.gain_db + self.volume(el)
        role = el.get("audioRole") or ctx.role
        # markers go back into the element the editor sees as the clip: a clip-like element, or a bare
        # <video>/<audio> placed in a storyline by itself (not the content of a <clip> around it)
        own_host = tag in HOSTS or (tag in ("video", "audio") and ctx.host is None)
        host = (el, imap) if ctx.in_project and own_host else ctx.host
        inner = replace(ctx, enabled=enabled, gain_db=gain, role=role, host=host,
                        video_role=el.get("videoRole") or ctx.video_role)
        pieces: list[Piece] = []
        # a retimed container: its content is placed in the time its timeMap makes of its local time
        cmap = self.content_map(el, imap, vis if vis[1] > vis[0] else own) if tag in CONTAINERS else imap
        if tag in ("asset-clip", "video", "audio", "title", "generator", "live-drawing"):
            if vis[1] > vis[0] or avis[1] > avis[0]:
                pieces += self.leaf(el, imap, vis, inner, avis)
        elif tag in ("clip", "sync-clip"):
            cin = replace(inner, muted_roles=inner.muted_roles | self.muted_roles(el),
                          clip_name=el.get("name") or ctx.clip_name)
            primary = [c for c in el.children if c.tag in STORY and _int(c.get("lane"), 0) == 0]
            got: list[Piece] = []
            for child in primary:
                got += self.walk_item(child, cmap, replace(cin, window=vis, awindow=avis))
            if not got and vis[1] > vis[0]:
                got = self.adapter_clip(el, primary, cmap, vis, replace(cin, awindow=avis))
            pieces += got
            pieces += self.connected(el, imap, cin, ctx)
        elif tag == "ref-clip":
            pieces += self.ref_clip(el, cmap, vis, replace(inner, awindow=avis))
        elif tag == "mc-clip":
            pieces += self.mc_clip(el, cmap, vis, replace(inner, awindow=avis))
        if tag not in ("clip", "sync-clip"):
            pieces += self.connected(el, imap, inner, ctx)
        self.attach_markers(el, imap, vis, pieces, ctx)
        return pieces

    def content_map(self, el: Node, imap: Map, rng) -> Map:
        """The map of a container's content time. A ``timeMap`` on a clip, sync-clip, compound or multicam
        clip (a retimed clip: Final Cut Pro writes one for every speed change of a clip made of several
        media elements) takes the element's local time to the time its content is placed in; without one,
        the two are the same (``imap``). Apple's timeMap reference: a time map "affects only an element's own
        duration and the offsets of the element's anchored items; it doesn't modify the offsets of the
        element's contained items (such as items with lane=0)": contained items keep their offsets in the
        time before the retime (mapped here), anchored items (other lanes, and our renders) are in the local
        time. The map is the timeMap's chord over ``rng`` (exact for a constant speed; a ramp is read as its
        average speed, with a note; a hold as the held frame)."""
        tm = self.time_map(el)
        if tm is None or rng[1] <= rng[0]:
            return imap
        c0, c1 = tm(imap.local(rng[0])), tm(imap.local(rng[1]))
        k = (c1 - c0) / (rng[1] - rng[0])   # content seconds per record second
        name = el.get("name") or el.tag
        if not tm.linear():
            self.notes.append(f"'{name}' at {self.tc(rng[0])}: speed ramp read as its average speed")
        if k == 0:
            self.notes.append(f"'{name}' at {self.tc(rng[0])}: a held frame (speed 0) of a retimed clip")
            k = HOLD_SPEED
        return Map(c0, rng[0], k)

    def adapter_clip(self, el: Node, primary: list, imap: Map, vis, ctx: Ctx) -> list[Piece]:
        """A ``clip`` whose media elements all lie outside its own range, as otio-fcpx-xml-adapter
        writes them (``<video offset="0s">`` with no ``start``, for media whose timecode starts later):
        read the clip's local time as the media time, the way that adapter means it; say so."""
        media = []
        for c in primary:
            if c.tag in ("video", "audio") and c.get("start") is None:
                media.append(c)
            if c.tag in ("gap", "video"):
                media += [g for g in c.children if g.tag in ("video", "audio") and g.get("start") is None]
        if not media:
            return []
        out: list[Piece] = []
        for m in media:
            out += self.leaf(m, imap, vis, ctx, vis if ctx.awindow == "same" else ctx.awindow)
        if out:
            self.notes.append(f"clip '{el.get('name')}' at {self.tc(vis[0])}: its media elements lie outside its "
                              "range (as otio-fcpx-xml-adapter writes them); read with the clip's start as media time")
        return out

    def media_tc_start(self, el: Node) -> Fraction:
        media = self.res.get(el.get("ref"))
        inner = None if media is None else (media.find("sequence") or media.find("multicam"))
        return seconds(inner.get("tcStart")) if inner is not None else ZERO

    def missing_duration(self, el: Node, ctx: Ctx, pmap: Map, offset: Fraction) -> Fraction:
        """An element without a duration (only in damaged files): as far as its window lets it go."""
        line = el.line(self.doc.text)
        if ctx.window is not None:
            self.notes.append(f"line {line}: <{el.tag} '{el.get('name') or el.get('ref')}'> has no duration; "
                              "read up to the end of the clip holding it")
            return pmap.local(ctx.window[1]) - offset
        raise TimelineError(self.path, f"line {line}: <{el.tag}> '{el.get('name') or el.get('ref')}' has no duration")

    def conform_k(self, el: Node, ctx: Ctx) -> Fraction:
        cr = el.find("conform-rate")
        if cr is None:
            return Fraction(1)
        return conform_scale(named_rate(cr.get("srcFrameRate")), cr.get("scaleEnabled", "1") != "0", ctx.rate)

    def volume(self, el: Node) -> float:
        db = 0.0
        for av in el.findall("adjust-volume"):
            amount = av.get("amount")
            if amount:
                try:
                    db += float(amount.strip().lower().rstrip("db"))
                except ValueError:
                    self.notes.append(f"'{el.get('name')}': unreadable volume '{amount}'")
            for p in av.findall("param"):
                if p.get("keyValues") or p.find("keyframeAnimation") is not None:
                    self.notes.append(f"'{el.get('name') or el.tag}': keyframed volume is not read "
                                      "(its level is taken as the fixed amount)")
        return max(db, -144.0)

    def fades(self, el: Node) -> dict:
        out = {}
        for av in el.findall("adjust-volume"):
            for p in av.findall("param"):
                for tag, key in (("fadeIn", "fade_in"), ("fadeOut", "fade_out")):
                    f = p.find(tag)
                    if f is not None:
                        out[key] = float(seconds(f.get("duration")))
        return out

    def muted_roles(self, el: Node) -> frozenset:
        roles = set()
        for ss in el.findall("sync-source"):
            for ars in ss.findall("audio-role-source"):
                if ars.get("active") == "0" and ars.get("role"):
                    roles.add(ars.get("role"))
        return frozenset(roles)

    # ------------------------------------------------------------------ containers
    def ref_clip(self, el: Node, imap: Map, vis, ctx: Ctx) -> list[Piece]:
        media = self.res.get(el.get("ref"))
        seq = media.find("sequence") if media is not None else None
        if seq is None or seq.find("spine") is None:
            return [self.unknown(el, imap, vis, ctx, "compound clip whose media sequence is missing")]
        rate = self.rate_of(seq.get("format"), f"compound clip '{el.get('name')}'") or ctx.rate
        kinds = ctx.kinds & _src_enable(el.get("srcEnable"))
        # markers on the clips inside a compound clip are seen when it is opened, not on this timeline:
        # only the ref-clip's own markers are
        inner = replace(ctx, rate=rate, window=vis, kinds=kinds, in_project=False,
                        nested_in=el.get("name") or media.get("name"), markers=False)
        return self.walk_children(seq.find("spine"), imap, inner, spine_mode=True)

    def mc_clip(self, el: Node, imap: Map, vis, ctx: Ctx) -> list[Piece]:
        media = self.res.get(el.get("ref"))
        mc = media.find("multicam") if media is not None else None
        if mc is None:
            return [self.unknown(el, imap, vis, ctx, "multicam clip whose multicam media is missing")]
        angles = {a.get("angleID"): a for a in mc.findall("mc-angle")}
        video_id = audio_id = None
        for src in el.findall("mc-source"):
            enable = src.get("srcEnable", "all")
            if enable in ("all", "video"):
                video_id = src.get("angleID")
            if enable in ("all", "audio"):
                audio_id = src.get("angleID")
        rate = self.rate_of(mc.get("format"), f"multicam '{el.get('name')}'") or ctx.rate
        out: list[Piece] = []
        amap = self.angle_map(mc, imap)
        # one walk per angle in use (the same angle for picture and sound is walked once)
        walks = [("video", video_id), ("audio", audio_id)] if video_id != audio_id else [("all", video_id)]
        for kind, angle_id in walks:
            kinds = ctx.kinds if kind == "all" else ctx.kinds & {kind}
            if not kinds or angle_id is None:
                continue
            angle = angles.get(angle_id)
            if angle is None:
                if kind in ("video", "all") and "video" in kinds:
                    out.append(self.unknown(el, imap, vis, ctx, f"active angle {angle_id} is not in the multicam"))
                else:
                    self.notes.append(f"multicam '{el.get('name')}': audio angle {angle_id} is not in the multicam")
                continue
            # markers and keywords on the angles' clips live in the multicam (the angle editor shows
            # them), not on the timeline: only the mc-clip's own markers are on the editor's cut
            inner = replace(ctx, rate=rate, window=vis, kinds=frozenset(kinds), in_project=False,
                            angle=angle.get("name"), nested_in=el.get("name"), markers=False)
            out += self.walk_children(angle, amap, inner, spine_mode=True)
        return out

    @staticmethod
    def angle_map(mc: Node, imap: Map) -> Map:
        """The map of the angles' own time. An mc-clip's ``start`` counts in the multicam's timecode
        (from its ``tcStart``; an mc-clip without one starts at ``tcStart``), while Final Cut Pro and
        Resolve place the angles' contents from offset 0 (the first element has ``start`` = tcStart):
        angle time t is multicam time tcStart + t. Angles whose contents already start at or after
        tcStart count in the multicam's time."""
        tc = seconds(mc.get("tcStart"))
        offsets = [seconds(c.get("offset")) for a in mc.findall("mc-angle") for c in a.children if c.tag in STORY]
        if not tc or not offsets or min(offsets) >= tc:
            return imap
        return Map(imap.base_local - tc, imap.base_rec, imap.k)

    # ------------------------------------------------------------------ leaves
    def leaf(self, el: Node, imap: Map, vis, ctx: Ctx, avis=None) -> list[Piece]:
        tag = el.tag
        ref = self.res.get(el.get("ref"))
        name = el.get("name") or (ctx.clip_name if tag in ("video", "audio") else None) \
            or (ref.get("name") if ref is not None else None) or tag
        if tag == "live-drawing":
            return [self.unknown(el, imap, vis, ctx, "live drawing")]
        generator = None
        kinds: set
        if tag in ("title", "generator") or (ref is not None and ref.tag == "effect"):
            generator = "title" if tag == "title" else "generator"
            kinds = {"video"}
        elif ref is None or ref.tag != "asset":
            return [self.unknown(el, imap, vis, ctx, f"<{tag}> refers to a missing resource '{el.get('ref')}'")]
        else:
            has_v, has_a = self.asset_kinds(ref)
            if tag == "video":
                kinds = {"video"}
            elif tag == "audio":
                kinds = {"audio"}
            else:
                kinds = ({"video"} if has_v else set()) | ({"audio"} if has_a else set())
                kinds &= _src_enable(el.get("srcEnable"))
        kinds &= ctx.kinds
        avis = vis if avis is None else avis
        if vis[1] <= vis[0]:
            kinds.discard("video")
        if avis[1] <= avis[0]:
            kinds.discard("audio")
        if not kinds:
            return []
        tm = self.time_map(el)

        def media(rng):
            """(media time at rng's start, media seconds per record second) (timeMap: local -> media)."""
            l0, l1 = imap.local(rng[0]), imap.local(rng[1])
            m0, m1 = (tm(l0), tm(l1)) if tm else (l0, l1)
            speed = (m1 - m0) / (rng[1] - rng[0])
            return m0, (ZERO if abs(speed) <= HOLD_SPEED * 1000 else speed)   # a hold, also inside a retimed clip

        m0, speed = media(vis if "video" in kinds else avis)
        s2v: dict = {}
        if ctx.host is not None:
            host, hmap = ctx.host
            s2v["locator"] = {"element": host.index, "tag": host.tag, "name": host.get("name") or "",
                              "base_local": str(hmap.base_local), "base_rec": str(hmap.base_rec), "k": str(hmap.k)}
        if ctx.nested_in:
            s2v["nested_in"] = ctx.nested_in
        if ctx.angle:
            s2v["multicam_angle"] = ctx.angle
        if speed != 1:
            s2v["speed"] = float(speed)
        if tm and not tm.linear():
            self.notes.append(f"'{name}' at {self.tc(vis[0])}: speed ramp read as its average speed")
        if tag in ("video", "audio") and el.parent is not None and el.parent.tag == "clip":
            s2v.update(self.md(el.parent))   # our conform's renders in FCPXML before 1.4
        s2v.update(self.md(el))
        url = available = None
        src_rate = ctx.rate
        if generator is None:
            url = _asset_url(ref)
            available = (seconds(ref.get("start")), seconds(ref.get("duration")))
            src_rate = self.rate_of(ref.get("format"), f"media '{ref.get('name')}'") or ctx.rate
        base = dict(lane=ctx.lane, name=name, rec0=vis[0], rec1=vis[1], src0=m0, speed=speed, src_rate=src_rate,
                    node=el, enabled=ctx.enabled and el.get("enabled", "1") != "0", url=url, available=available,
                    generator=generator)
        out: list[Piece] = []
        if "video" in kinds:
            # picture sits on the sequence's frame grid: an item whose parent time is off the grid
            # (a storyline in a rate-conformed clip) shows from the nearest frame
            g0, g1 = self.on_grid(vis[0]), self.on_grid(vis[1])
            if g1 <= g0:
                kinds = kinds - {"video"}
        if "video" in kinds:
            own_role = el.get("videoRole") or (el.get("role") if tag == "video" else None)
            vbase = dict(base, rec0=g0, rec1=g1, src0=m0 + (g0 - vis[0]) * speed)
            v = Piece("video", s2v=dict(s2v), video_role=own_role or ctx.video_role, **vbase)
            if generator:
                v.s2v["generator"] = generator
            out.append(v)
        if "audio" in kinds:
            gain = ctx.gain_db   # already holds this element's own adjust-volume
            fades = self.fades(el)
            sources = [s for s in el.findall("audio-channel-source")] or [None]
            for src in sources:
                role = ((src.get("role") if src is not None else None) or el.get("role") or el.get("audioRole")
                        or ctx.role)
                am0, aspeed = media(avis)
                a = Piece("audio", role=role, s2v=dict(s2v), **dict(base, rec0=avis[0], rec1=avis[1], src0=am0,
                                                                      speed=aspeed))
                if gain:
                    a.s2v["gain_db"] = max(float(gain), -144.0)
                a.s2v.update(fades)
                if src is not None:
                    chans = [c.strip() for c in (src.get("srcCh") or "").split(",") if c.strip()]
                    if len(chans) == 1 and chans[0].isdigit():
                        a.s2v["source_channel"] = int(chans[0]) - 1
                    if src.get("active") == "0" or src.get("enabled") == "0":
                        a.s2v["muted"] = True
                if role and role in ctx.muted_roles:
                    a.s2v["muted"] = True
                out.append(a)
        if el.damaged:
            self.notes.append(f"'{name}' at {self.tc(vis[0])}-{self.tc(vis[1])}: its element (line "
                              f"{el.line(self.doc.text)}) is damaged; attributes lost: '{el.damaged[:60]}'")
        self.pieces += out
        return out

    def asset_kinds(self, asset: Node) -> tuple[bool, bool]:
        """(video, audio) of an asset; where hasVideo/hasAudio are left out (hand-made or other
        applications' files), a video format means picture and audio channels mean sound."""
        fmt = self.res.get(asset.get("format"))
        if asset.get("hasVideo") is not None:
            has_v = asset.get("hasVideo") == "1"
        else:
            has_v = fmt is not None and fmt.get("frameDuration") is not None
        if asset.get("hasAudio") is not None:
            has_a = asset.get("hasAudio") == "1"
        else:
            has_a = bool(asset.get("audioSources") or asset.get("audioChannels")) or not has_v
        return has_v, has_a

    def on_grid(self, rec: Fraction) -> Fraction:
        """``rec`` moved to the nearest frame of the sequence (halves go later)."""
        return Fraction(math.floor(rec * self.seq_rate + Fraction(1, 2))) / self.seq_rate

    def unknown(self, el: Node, imap: Map, vis, ctx: Ctx, reason: str) -> Piece:
        name = el.get("name") or el.tag
        p = Piece("video", ctx.lane, name, vis[0], vis[1], imap.local(vis[0]), Fraction(1), ctx.rate, el,
                  enabled=ctx.enabled, s2v={"unknown_picture": reason})
        self.notes.append(f"'{name}' at {self.tc(vis[0])}-{self.tc(vis[1])}: {reason}; its picture is unknown")
        self.pieces.append(p)
        return p

    def time_map(self, el: Node) -> TimeMap | None:
        tmap = el.find("timeMap")
        if tmap is None:
            return None
        pts = sorted((seconds(p.get("time")), seconds(p.get("value"))) for p in tmap.findall("timept"))
        return TimeMap(tuple(pts)) if pts else None

    def md(self, el: Node) -> dict:
        out = {}
        meta = el.find("metadata")
        for md in (meta.findall("md") if meta is not None else []):
            key = md.get("key") or ""
            if key.startswith(MD_PREFIX):
                value = md.get("value") or ""
                try:  # our conform writes strings as they are and anything else as JSON
                    out[key[len(MD_PREFIX):]] = json.loads(value) if value[:1] in '[{"-0123456789tfn' else value
                except ValueError:
                    out[key[len(MD_PREFIX):]] = value
        return out

    def attach_markers(self, el: Node, imap: Map, vis, pieces: list[Piece], ctx: Ctx) -> None:
        if not ctx.markers:
            return
        for m in el.children:
            kind = MARKERS.get(m.tag)
            if kind is None:
                continue
            t0 = seconds(m.get("start"))
            t1 = t0 + seconds(m.get("duration"), ZERO)
            r0, r1 = imap.rec(t0), imap.rec(t1)
            if not (vis[0] <= r0 < vis[1]) and not (r0 == vis[0] == vis[1]):
                continue  # hidden by the clip's trim (or its compound clip's)
            # the clip it is on, else (a compound clip's marker over a gap inside it) the nearest clip
            # that came from this element, so that it stays where the editor put it
            cands = [p for p in pieces if p.rec0 <= r0 < p.rec1] or sorted(
                pieces, key=lambda p: min(abs(p.rec0 - r0), abs(p.rec1 - r0)))[:1]
            cands.sort(key=lambda p: (p.kind != "video", abs(p.lane - ctx.lane)))
            if not cands:
                self.notes.append(f"marker '{m.get('value')}' at {self.tc(r0)} on '{el.get('name')}', which shows "
                                  "no clip: not read")
                continue
            color = "GREEN" if m.get("completed") == "1" else ("RED" if m.get("completed") == "0" else
                                                                ("ORANGE" if kind == "chapter" else
                                                                 ("PURPLE" if kind == "keyword" else "BLUE")))
            cands[0].markers.append((r0, max(r1, r0), m.get("value") or "", color, m.get("note") or "", kind))

    def tc(self, rec: Fraction) -> str:
        frames = round((rec + self.tc_start) * self.seq_rate)
        try:
            return otio.opentime.to_timecode(RationalTime(frames, float(self.seq_rate)), float(self.seq_rate),
                                             self.drop)
        except Exception:
            return f"{float(rec):.3f}s"

class _Named:
    """A stand-in for the <project> element where the timeline is not a project (its name only)."""

    def __init__(self, name: str):
        self.name = name

    def get(self, key, default=None):
        return self.name if key == "name" else default


def _src_enable(value: str | None) -> frozenset:
    if value == "video":
        return frozenset({"video"})
    if value == "audio":
        return frozenset({"audio"})
    if value == "none":
        return frozenset()
    return frozenset({"video", "audio"})


def _asset_url(asset: Node) -> str | None:
    reps = asset.findall("media-rep")
    for rep in reps:
        if rep.get("kind", "original-media") == "original-media" and rep.get("src"):
            return rep.get("src")
    for rep in reps:
        if rep.get("src"):
            return rep.get("src")
    return asset.get("src")
