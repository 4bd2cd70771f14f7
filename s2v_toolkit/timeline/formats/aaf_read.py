"""Reading an AAF composition the way the editor sees it, with pyaaf2 (no OTIO adapter in between).

otio-aaf-adapter prints to stdout, times Pro Tools audio clips in their media's sample rate, keeps
23.976 as 23.976 instead of 24000/1001, reads Avid clip mute (a Selector) as a plain clip and
drops clip gain; so the toolkit reads the top-level composition itself:

* every TimelineMobSlot of picture or sound is a track; a NestedScope (Avid's layered video)
  gives one track per layer, ScopeReferences in it are transparent (gaps);
* SourceClips that point at compositions (nested sequences, sub-sequences) are flattened with
  their offsets (``nested_in`` names the sequence);
* SourceClips that point at master/source mobs are clips: the chain master -> file -> tape mob
  gives the media file (locator), the source timecode and the channel the clip plays;
* OperationGroups: "Audio Gain"/"Volume" sum into ``gain_db`` (constant or flat keyframes;
  a varying level is kept as ``gain_envelope``), "Motion Control"/"Audio Warp" give the speed,
  "Audio Channel Combiner" (stereo/5.1 clips) gives one clip per channel in a stack, titles
  are generators; other effects pass their first input through and are listed on the clip;
* Selectors with Avid's ``_DISABLE_CLIP_FLAG`` are muted clips (``muted``, ``enabled=False``):
  silence (a Filler, sound) or the layer below (a ScopeReference, picture) is selected;
* operations are known by name or, unnamed (Pro Tools), by their AAF definition id;
* Transitions trim the two components they join (by sequence order: a dissolve may be as long
  as a whole clip) at their cut point and become OTIO transitions; an audio
  transition against silence is a fade (``fade_in``/``fade_out``);
* DescriptiveMarkers in event slots are markers on the clip under them (or the track/timeline).

Every clip records its ``locator`` (composition mob id, slot id, record position in the slot's
edit units) for the surgical writer. Anything not understood goes to the notes with the clip's
name and record range.
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction

from s2v_toolkit.timeline.roles import METADATA_NAMESPACE

NS = METADATA_NAMESPACE
STANDARD_RATES = [Fraction(24000, 1001), Fraction(30000, 1001), Fraction(48000, 1001),
                  Fraction(60000, 1001), Fraction(120000, 1001)]
PICTURE_KINDS = {"picture", "legacypicture", "datadef_picture"}
SOUND_KINDS = {"sound", "legacysound", "datadef_sound"}
GAIN_OPS = ("audio gain", "volume", "clip gain", "audio level")
SPEED_OPS = ("motion control", "audio warp", "speed", "retime", "timewarp", "time warp")
FREEZE_OPS = ("repeat", "freeze")   # Avid Xpress' "Repeat Control": one input frame held for the effect's length
TITLE_OPS = ("title", "generator", "matte key")
# level parameters of gain operations: AAF Amplitude, Avid clip gain/volume automation
GAIN_PARAMS = {"amplitude", "avidcontrolclipratio", "level", "gain", "volume", "audiogain"}
GAIN_PARAM_IDS = ("e4962321-2267-11d3-8a4c-0050040ef7d2", "47c00f7d-fb55-11d3-9ff7-0004ac969f50")
MIN_DB = -144.0
# operations known by their AAF definition id (Pro Tools writes them without a name)
GAIN_OP_IDS = ("9d2ea894-0968-11d3-8a38-0050040ef7d2",)    # MonoAudioGain
PAN_OP_IDS = ("9d2ea893-0968-11d3-8a38-0050040ef7d2",)     # MonoAudioPan
REPEAT_OP_IDS = ("9d2ea891-0968-11d3-8a38-0050040ef7d2",)  # VideoRepeat (Avid: "Repeat Control")
SPEED_OP_IDS = ("9d2ea890-0968-11d3-8a38-0050040ef7d2",)   # VideoSpeedControl (Avid: "Motion Control")


def snap_rate(rate) -> Fraction:
    """An AAF edit rate as the exact rational rate it stands for (23976/1000 -> 24000/1001)."""
    r = Fraction(rate.numerator, rate.denominator) if hasattr(rate, "numerator") else Fraction(rate)
    if r.denominator == 1:
        return r
    for s in STANDARD_RATES:
        if abs(r - s) / s < Fraction(5, 10000):
            return s
    near = round(r)
    if near and abs(r - near) / near < Fraction(1, 100000):
        return Fraction(near)
    return r


def linear_to_db(value) -> float:
    v = float(value)
    return max(MIN_DB, 20 * math.log10(v)) if v > 0 else MIN_DB


@contextlib.contextmanager
def quiet():
    """pyaaf2 and the AAF adapter print; stdout must stay clean for ``--json``."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def kind_of(component) -> str | None:
    try:
        k = (component.media_kind or "").lower()
    except Exception:  # a missing data definition: not a track we can use
        return None
    if k in PICTURE_KINDS:
        return "video"
    if k in SOUND_KINDS:
        return "audio"
    return None


def _name(obj) -> str:
    try:
        n = obj.name
    except Exception:
        n = None
    return n or ""


def _operation_def(op):
    """An OperationGroup's (or a Transition's) OperationDef, or None. pyaaf2 knows the property as
    ``Operation``; AAF 1.0 files (Avid Xpress Pro) name it ``OperationDefinition`` in their own dictionary, so
    pyaaf2's ``op.operation`` raises KeyError on every effect of such a file."""
    for key in ("Operation", "OperationDefinition"):
        if key in op.keys():
            try:
                return op[key].value
            except Exception:  # a weak reference the file's dictionary cannot resolve
                return None
    return None


def _attrs(obj, key="ComponentAttributeList") -> dict:
    try:
        if key in obj.keys():
            return {a.name: a.value for a in obj[key].value}
    except Exception:
        pass
    return {}


# ----------------------------------------------------------------------------- pieces


@dataclass
class ClipPiece:
    """One clip of the composition, placed in seconds from the start of its segment."""

    start: Fraction
    length: Fraction                 # record length (seconds)
    name: str
    kind: str
    source: dict                     # from resolve_source (media, source start, rate, channel)
    src_offset: Fraction = Fraction(0)   # seconds into the source after trimming (head trims)
    speed: Fraction = Fraction(1)
    gain_db: float = 0.0
    gain_envelope: list | None = None   # [(seconds from clip start, dB)]
    muted: bool = False
    fade_in: Fraction | None = None
    fade_out: Fraction | None = None
    effects: list = field(default_factory=list)
    nested_in: str | None = None
    generator: str | None = None
    unknown_picture: str | None = None
    path: tuple = ()                 # component indices from the slot's segment
    pan: object = None               # a constant pan position, as the file gives it
    lane: int = 0                    # channel lane inside a channel combiner
    lanes: int = 1

    def shifted(self, dt: Fraction) -> "ClipPiece":
        c = ClipPiece(**self.__dict__)
        c.effects = list(self.effects)
        c.start = self.start + dt
        return c

    def clipped(self, lo: Fraction, hi: Fraction) -> "ClipPiece | None":
        """The part of the piece inside [lo, hi) (source follows the record trim)."""
        s, e = max(self.start, lo), min(self.start + self.length, hi)
        if e <= s:
            return None
        c = ClipPiece(**self.__dict__)
        c.effects = list(self.effects)
        head = s - self.start
        c.src_offset = self.src_offset + head * self.speed
        c.start, c.length = s, e - s
        if head and c.fade_in is not None:
            c.fade_in = max(Fraction(0), c.fade_in - head) or None
        if e < self.start + self.length and c.fade_out is not None:
            c.fade_out = max(Fraction(0), c.fade_out - (self.start + self.length - e)) or None
        if c.gain_envelope:
            c.gain_envelope = [(float(Fraction(t) - head), db) for t, db in c.gain_envelope]
        return c


@dataclass
class NotePiece:
    """Something not understood, kept at its place so the note can name its record range."""

    start: Fraction
    length: Fraction
    text: str

    def shifted(self, dt: Fraction) -> "NotePiece":
        return NotePiece(self.start + dt, self.length, self.text)

    def clipped(self, lo: Fraction, hi: Fraction) -> "NotePiece | None":
        s, e = max(self.start, lo), min(self.start + self.length, hi)
        return NotePiece(s, max(e - s, Fraction(0)), self.text) if e >= s else None


@dataclass
class TransitionPiece:
    start: Fraction                  # where the overlap begins
    length: Fraction
    cut: Fraction                    # cut point from ``start``
    name: str
    path: tuple = ()
    # the components it joins (their paths): a transition can be as long as a whole clip, so which
    # side a clip is on comes from the sequence order, not from where the clip lies
    prev: tuple | None = None
    next: tuple | None = None

    def shifted(self, dt: Fraction) -> "TransitionPiece":
        return TransitionPiece(self.start + dt, self.length, self.cut, self.name, self.path, self.prev, self.next)


class CompositionReader:
    """Walks one top-level composition into tracks of placed pieces (seconds)."""

    def __init__(self, f, comp, notes: list[str], timeline_rate: Fraction):
        self.f = f
        self.comp = comp
        self.notes = notes
        self.timeline_rate = timeline_rate
        self.source_cache: dict = {}
        self.depth = 0

    # --------------------------------------------------------------- segments

    def walk(self, seg, rate: Fraction, path: tuple, scope=None) -> list:
        """Pieces of ``seg`` with times in seconds from the segment's start."""
        t = type(seg).__name__
        if t == "Sequence":
            return self.walk_sequence(seg, rate, path, scope)
        if t == "Filler":
            return []
        if t == "SourceClip":
            return self.walk_source_clip(seg, rate, path)
        if t == "OperationGroup":
            return self.walk_operation(seg, rate, path, scope)
        if t == "Selector":
            return self.walk_selector(seg, rate, path, scope)
        if t == "ScopeReference":
            return []  # transparent: the layer below shows through (it is its own track)
        if t == "EssenceGroup":
            choices = list(seg["Choices"].value) if "Choices" in seg.keys() else []
            return self.walk(choices[0], rate, path + (0,), scope) if choices else []
        if t == "NestedScope":
            slots = list(seg["Slots"].value)
            return self.walk(slots[-1], rate, path + (len(slots) - 1,), scope) if slots else []
        if t in ("Timecode", "EdgeCode", "Pulldown", "DescriptiveMarker", "CommentMarker", "Event"):
            return []
        length = Fraction(seg.length or 0) / rate
        note = NotePiece(Fraction(0), length, f"{t} '{_name(seg)}' is not understood; left out")
        return [note] + ([ClipPiece(Fraction(0), length, _name(seg) or t, "video", {}, path=path,
                                    unknown_picture=f"AAF {t} not understood")] if kind_of(seg) == "video" and length else [])

    def walk_sequence(self, seq, rate, path, scope) -> list:
        out: list = []
        pos = Fraction(0)
        for i, comp in enumerate(seq.components):
            length = Fraction(comp.length or 0) / rate
            if type(comp).__name__ == "Transition":
                pos -= length
                cut = Fraction(comp["CutPoint"].value or 0) / rate if "CutPoint" in comp.keys() else length / 2
                op = comp["OperationGroup"].value if "OperationGroup" in comp.keys() else None
                # the next component starts under the transition: the sequence is shorter by its length
                out.append(TransitionPiece(pos, length, cut, _name(_operation_def(op)) if op is not None else "",
                                           path + (i,), path + (i - 1,), path + (i + 1,)))
                continue
            out.extend(p.shifted(pos) for p in self.walk(comp, rate, path + (i,), scope))
            pos += length
        return _apply_transitions(out)

    def walk_selector(self, sel, rate, path, scope) -> list:
        attrs = _attrs(sel)
        selected = sel["Selected"].value if "Selected" in sel.keys() else None
        alternates = list(sel["Alternates"].value) if "Alternates" in sel.keys() else []
        if any("DISABLE_CLIP" in k for k in attrs) and alternates \
                and type(selected).__name__ in ("Filler", "ScopeReference"):
            # Avid's clip mute: the muted clip is the alternate; silence (sound) or the layer below
            # (picture, a ScopeReference) is selected
            pieces = self.walk(alternates[0], rate, path + ("alt", 0), scope)
            for p in pieces:
                p.muted = True
            return pieces
        out = self.walk(selected, rate, path + ("sel",), scope) if selected is not None else []
        if alternates:
            out.append(NotePiece(Fraction(0), Fraction(sel.length or 0) / rate,
                                 f"selector '{_name(sel)}' has {len(alternates)} alternate(s); the selected one is read"))
        return out

    def walk_operation(self, op, rate, path, scope) -> list:
        op_def = _operation_def(op)
        opname = _name(op_def) if op_def is not None else ""
        try:
            op_id = str(op_def.auid) if op_def is not None else ""
        except Exception:
            op_id = ""
        if not opname:
            # an unnamed definition: the standard effects by their AAF identifiers
            opname = ("Audio Gain" if op_id in GAIN_OP_IDS else "Audio Pan" if op_id in PAN_OP_IDS
                      else "Repeat" if op_id in REPEAT_OP_IDS else "Speed Control" if op_id in SPEED_OP_IDS else "")
        low = opname.lower()
        inputs = list(op.segments) if "InputSegments" in op.keys() else []
        params = {}
        for prm in (op.parameters if "Parameters" in op.keys() else []):
            try:
                params[_name(prm) or str(prm["Definition"].value)] = prm
            except Exception:
                continue
        length = Fraction(op.length or 0) / rate
        if any(k in low for k in TITLE_OPS) and kind_of(op) == "video":
            return [ClipPiece(Fraction(0), length, opname, "video", {}, path=path, generator="title",
                              effects=[opname])]
        if "channel combiner" in low:
            out = []
            for i, seg in enumerate(inputs):
                for p in self.walk(seg, rate, path + (i,), scope):
                    p.lane, p.lanes = i, len(inputs)
                    if p.start == 0 and isinstance(p, ClipPiece) and p.length < length:
                        # Resolve writes the combined clip longer than its channels' media: the
                        # editor's clip is the operation's length (the media check reports the rest)
                        p.length = length
                    out.append(p)
            return out
        if not inputs:
            return [NotePiece(Fraction(0), length, f"effect '{opname}' without input left out")] if length else []
        if any(k in low for k in SPEED_OPS):
            return self.walk_speed(op, opname, inputs[0], params, rate, path)
        if any(k in low for k in FREEZE_OPS):
            return self.walk_freeze(op, opname, inputs[0], rate, path, scope)
        pieces = self.walk(inputs[0], rate, path + (0,), scope)
        if any(k in low for k in GAIN_OPS):
            db, envelope = _gain_of(params, length)
            for p in (x for x in pieces if isinstance(x, ClipPiece)):
                p.gain_db = max(MIN_DB, p.gain_db + db)
                if envelope is not None:
                    # the envelope is over the operation's time: make it the clip's own
                    env = [(float(Fraction(t) - p.start), d) for t, d in envelope]
                    p.gain_envelope = _add_envelopes(p.gain_envelope, env)
                p.effects.append(opname)
            return pieces
        if "pan" in low.split() or "pan" in low.replace("_", " ").split() or "balance" in low:
            # the analysis signal is mono: a pan position does not change what is said
            value = _first_constant(params)
            for p in (x for x in pieces if isinstance(x, ClipPiece)):
                p.effects.append(opname)
                if value is not None:
                    p.pan = value
            pieces.append(NotePiece(Fraction(0), length, f"'{opname}' (stereo position) is kept, not applied: "
                                                         "dialogue is analysed in mono"))
            return pieces
        if len(inputs) > 1 and kind_of(op) == "video":
            pieces.append(NotePiece(Fraction(0), length, f"effect '{opname}' has {len(inputs)} inputs; the first is read"))
        if not any(isinstance(p, ClipPiece) for p in pieces) and kind_of(op) == "video" and length:
            pieces.append(NotePiece(Fraction(0), length, f"effect '{opname}' over the layer below is not applied"))
        for p in pieces:
            if isinstance(p, ClipPiece):
                p.effects.append(opname)
        return pieces

    def walk_freeze(self, op, opname, inner, rate, path, scope) -> list:
        """A held frame: the input's first frame shown for the whole effect (speed 0). Read as the input
        alone, the clip lasted its one input frame and the rest of the effect was a gap."""
        length = Fraction(op.length or 0) / rate
        pieces = self.walk(inner, rate, path + (0,), scope)
        clips = [p for p in pieces if isinstance(p, ClipPiece)]
        if len(clips) != 1:
            for p in clips:
                p.effects.append(opname)
            return pieces + [NotePiece(Fraction(0), length, f"'{opname}' over {len(clips)} clips is not a held "
                                                            "frame; read as its inputs")]
        p = clips[0]
        p.start, p.length, p.speed = Fraction(0), length, Fraction(0)
        p.effects.append(opname)
        return [x for x in pieces if not isinstance(x, ClipPiece)] + [p]

    def walk_speed(self, op, opname, inner, params, rate, path) -> list:
        outer_len = Fraction(op.length or 0) / rate
        # Avid counts a Motion Control's input at the rate of the media it plays (_MIXMATCH_RATE)
        inner_rate = self.inner_rate(inner) or rate
        ratio = _speed_ratio(params)     # input edit units per output edit unit
        pieces = self.walk(inner, inner_rate, path + (0,))
        clips = [p for p in pieces if isinstance(p, ClipPiece)]
        if ratio is None:
            used = sum((p.length for p in clips), Fraction(0))
            speed = used / outer_len if outer_len else Fraction(1)
        else:
            speed = Fraction(ratio) * rate / inner_rate   # seconds of media per second of record
        if len(clips) != 1:
            for p in clips:
                p.effects.append(opname)
            if clips:
                return clips + [NotePiece(Fraction(0), outer_len, f"'{opname}' over {len(clips)} clips is read at speed 1")]
            return clips
        p = clips[0]
        p.start, p.length, p.speed = Fraction(0), outer_len, speed * p.speed
        p.effects.append(opname)
        curve = params.get("PARAM_SPEED_OFFSET_MAP_U")
        if curve is not None and _param_value(curve)[0] == "vary" and not _linear(_param_value(curve)[1]):
            return [p, NotePiece(Fraction(0), outer_len, f"'{opname}' on '{p.name}' has a speed curve "
                                                         f"({len(_param_value(curve)[1])} keyframes, not constant); "
                                                         f"read at its average speed {float(p.speed):.3f}x")]
        return [p]

    def inner_rate(self, seg) -> Fraction | None:
        for sc in _source_clips(seg):
            try:
                mob = sc.mob
                if mob is not None and type(mob).__name__ != "CompositionMob":
                    return snap_rate(mob.slot_at(sc["SourceMobSlotID"].value).edit_rate)
            except Exception:
                continue
        return None

    def walk_source_clip(self, sc, rate, path) -> list:
        length = Fraction(sc.length or 0) / rate
        try:
            mob = sc.mob
        except Exception:
            mob = None
        if mob is None:
            return [NotePiece(Fraction(0), length, f"a source clip '{_name(sc)}' points at no mob (offline); left out")]
        start = Fraction(sc.start or 0) / rate
        kind = kind_of(sc) or "video"
        fades = {}
        for key, attr in (("FadeInLength", "fade_in"), ("FadeOutLength", "fade_out")):
            if key in sc.keys() and sc[key].value:
                fades[attr] = Fraction(sc[key].value) / rate
        if type(mob).__name__ == "CompositionMob":
            return self.walk_nested(mob, sc, start, length, rate, path)
        source = self.resolve_source(mob, sc["SourceMobSlotID"].value, start)
        name = _name(mob) or _name(sc) or "clip"
        return [ClipPiece(Fraction(0), length, name, kind, source, path=path,
                          fade_in=fades.get("fade_in"), fade_out=fades.get("fade_out"))]

    def walk_nested(self, mob, sc, start, length, rate, path) -> list:
        if self.depth > 16:
            return [NotePiece(Fraction(0), length, f"nesting deeper than 16 levels at '{_name(mob)}'; left out")]
        try:
            slot = mob.slot_at(sc["SourceMobSlotID"].value)
        except Exception:
            return [NotePiece(Fraction(0), length, f"nested sequence '{_name(mob)}' has no slot "
                                                   f"{sc['SourceMobSlotID'].value}; left out")]
        self.depth += 1
        try:
            inner = self.walk(slot.segment, snap_rate(slot.edit_rate), path + ("nest",))
        finally:
            self.depth -= 1
        out = []
        for p in inner:
            if isinstance(p, TransitionPiece):
                continue
            c = p.clipped(start, start + length)
            if c is None:
                continue
            c = c.shifted(-start)
            if isinstance(c, ClipPiece):
                c.nested_in = c.nested_in or _name(mob) or str(mob.mob_id)
                c.path = path
            out.append(c)
        return out

    # --------------------------------------------------------------- sources

    def resolve_source(self, mob, slot_id, offset: Fraction) -> dict:
        """Media, source timecode and channel of a clip that starts ``offset`` seconds into ``mob``'s slot."""
        key = (str(mob.mob_id), slot_id)
        if key not in self.source_cache:
            self.source_cache[key] = self._chain(mob, slot_id)
        base = self.source_cache[key]
        out = dict(base)
        rate = base["rate"]
        if rate is None:
            return out
        # source value = the timecode at the chain's timecode mob, counted on from there
        out["start"] = base["tc_base"] + offset * rate
        out["file_start"] = base["tc_base"] - base["file_delta"] * rate if base["has_file"] else None
        return out

    def _chain(self, mob, slot_id) -> dict:
        info = {"name": _name(mob), "url": None, "import_url": None, "channel": None, "rate": None,
                "tc_base": Fraction(0), "file_delta": Fraction(0), "has_file": False,
                "file_length": None, "master_mob_id": str(mob.mob_id), "master_slot": slot_id, "drop": None}
        delta = Fraction(0)          # seconds from the first mob's slot origin to this mob's slot origin
        tc = None
        seen = 0
        rate = self.timeline_rate
        while mob is not None and seen < 12:
            seen += 1
            try:
                slot = mob.slot_at(slot_id)
            except Exception:
                break
            rate = snap_rate(slot.edit_rate)
            if type(mob).__name__ == "SourceMob":
                desc = mob.descriptor
                dname = type(desc).__name__
                urls = _locators(desc)
                if dname == "ImportDescriptor":
                    info["import_url"] = info["import_url"] or (urls[0] if urls else None)
                elif dname not in ("TapeDescriptor", "FilmDescriptor") and not info["has_file"]:
                    info["has_file"] = True
                    info["url"] = urls[0] if urls else None
                    info["file_delta"] = delta
                    info["file_length"] = _essence_seconds(desc)
                    sound = [s for s in mob.slots if kind_of(s.segment) == "audio"]
                    chans = _channels(desc)
                    if len(sound) > 1:
                        ids = [s.slot_id for s in sorted(sound, key=lambda s: s.slot_id)]
                        info["channel"] = ids.index(slot_id) if slot_id in ids else None
                    elif chans and chans > 1 and info.get("phys"):
                        info["channel"] = info["phys"] - 1 if info["phys"] <= chans else None
                t = _timecode_of(mob)
                if t is not None:
                    tc = (t, delta, rate)
            elif type(mob).__name__ == "MasterMob":
                try:
                    phys = slot["PhysicalTrackNumber"].value if "PhysicalTrackNumber" in slot.keys() else None
                except Exception:
                    phys = None
                info["phys"] = phys
                try:  # what the toolkit wrote on its own render clips (aaf_write)
                    import json

                    if "UserComments" in mob.keys() and NS in mob.comments:
                        info["s2v"] = json.loads(mob.comments[NS])
                except Exception:
                    pass
            seg = slot.segment
            nxt = _first_source_clip(seg)
            if nxt is None:
                break
            try:
                nmob = nxt.mob
            except Exception:
                nmob = None
            if nmob is None:
                break
            delta += Fraction(nxt.start or 0) / rate
            mob, slot_id = nmob, nxt["SourceMobSlotID"].value
        if tc is not None:
            (tcomp, tslot_rate), at_delta, _ = tc
            s_rate = tslot_rate if tslot_rate <= 120 else snap_rate(Fraction(tcomp["FPS"].value or 25))
            info["tc_base"] = Fraction(tcomp["Start"].value or 0) + at_delta * s_rate
            info["drop"] = bool(tcomp["Drop"].value)
        else:
            # no timecode: count from the file's start, at its frame rate (else the timeline's)
            s_rate = rate if rate <= 120 else self.timeline_rate
            info["tc_base"] = info["file_delta"] * s_rate
        info["rate"] = s_rate
        return info


def _locators(desc) -> list[str]:
    out = []
    try:
        for loc in desc["Locator"].value:
            url = loc["URLString"].value if "URLString" in loc.keys() else None
            if url:
                out.append(url)
    except Exception:
        pass
    return out


def _channels(desc) -> int | None:
    try:
        return int(desc["Channels"].value) if "Channels" in desc.keys() else None
    except Exception:
        return None


def _essence_seconds(desc) -> Fraction | None:
    try:
        length = desc["Length"].value
        sr = desc["SampleRate"].value
        return Fraction(length) / Fraction(sr.numerator, sr.denominator) if length and sr else None
    except Exception:
        return None


def _timecode_of(mob):
    """(Timecode component, its slot's edit rate) of a mob: physical track 1 first."""
    found = []
    for slot in mob.slots:
        seg = slot.segment
        cand = seg
        if type(seg).__name__ == "Sequence":
            comps = list(seg.components)
            cand = comps[0] if len(comps) == 1 else None
        if type(cand).__name__ == "Timecode":
            phys = slot["PhysicalTrackNumber"].value if "PhysicalTrackNumber" in slot.keys() else None
            found.append((0 if phys in (1, None) else 1, cand, snap_rate(slot.edit_rate)))
    if not found:
        return None
    found.sort(key=lambda x: x[0])
    return found[0][1], found[0][2]


def _first_source_clip(seg):
    t = type(seg).__name__
    if t == "SourceClip":
        return seg
    if t == "Sequence":
        for c in seg.components:
            if type(c).__name__ == "SourceClip":
                return c
    if t == "EssenceGroup" and "Choices" in seg.keys():
        for c in seg["Choices"].value:
            r = _first_source_clip(c)
            if r is not None:
                return r
    return None


def _source_clips(seg):
    t = type(seg).__name__
    if t == "SourceClip":
        yield seg
    elif t == "Sequence":
        for c in seg.components:
            yield from _source_clips(c)
    elif t == "OperationGroup" and "InputSegments" in seg.keys():
        for c in seg.segments:
            yield from _source_clips(c)


def _param_value(prm):
    t = type(prm).__name__
    if t == "ConstantValue":
        return ("const", prm.value)
    if t == "VaryingValue":
        pts = [(Fraction(p.time), p.value) for p in prm["PointList"].value]
        return ("vary", pts)
    return (None, None)


def _first_constant(params: dict):
    for prm in params.values():
        kind, value = _param_value(prm)
        if kind == "const":
            try:
                return float(Fraction(value))
            except (TypeError, ValueError):
                continue
    return None


def _gain_of(params: dict, length: Fraction) -> tuple[float, list | None]:
    """(constant dB, envelope or None) of a gain operation's level parameter."""
    db, envelope = 0.0, None
    for name, prm in params.items():
        try:
            ident = str(prm["Definition"].value)
        except Exception:
            ident = ""
        if name.lower() not in GAIN_PARAMS and ident not in GAIN_PARAM_IDS:
            continue
        kind, value = _param_value(prm)
        try:
            if kind == "const":
                db += linear_to_db(Fraction(value))
            elif kind == "vary" and value:
                levels = [linear_to_db(Fraction(v)) for _, v in value]
                if len(set(round(x, 3) for x in levels)) == 1:
                    db += levels[0]
                else:
                    # control point times are fractions of the operation's length
                    envelope = [(float(Fraction(t) * length), d) for (t, _), d in zip(value, levels)]
        except (TypeError, ValueError, ZeroDivisionError):
            continue
    return db, envelope


def _add_envelopes(a, b):
    if not a:
        return b
    # two envelopes on one clip: keep the points of both, summed at each point
    import numpy as np

    times = sorted({t for t, _ in a} | {t for t, _ in b})
    fa = np.interp(times, [t for t, _ in a], [d for _, d in a])
    fb = np.interp(times, [t for t, _ in b], [d for _, d in b])
    return [(float(t), float(max(MIN_DB, x + y))) for t, x, y in zip(times, fa, fb)]


def _linear(points) -> bool:
    """Whether an offset map's points lie on one line (a constant speed), within a hundredth of a frame."""
    if len(points) <= 2:
        return True
    (t0, v0), (t1, v1) = points[0], points[-1]
    if t1 == t0:
        return False
    slope = (Fraction(v1) - Fraction(v0)) / (t1 - t0)
    return all(abs(Fraction(v) - Fraction(v0) - slope * (t - t0)) < Fraction(1, 100) for t, v in points)


def _speed_ratio(params: dict) -> Fraction | None:
    """Input edit units per output edit unit of an Avid Motion Control / Audio Warp."""
    offset = params.get("PARAM_SPEED_OFFSET_MAP_U")
    if offset is not None:
        kind, pts = _param_value(offset)
        if kind == "vary" and len(pts) >= 2 and pts[-1][0] != pts[0][0]:
            # the offset map gives the source frame at each output frame: its end points give the
            # media used over the clip (a curve's average speed)
            return (Fraction(pts[-1][1]) - Fraction(pts[0][1])) / (pts[-1][0] - pts[0][0])
    ratio = params.get("SpeedRatio")
    if ratio is not None:
        kind, v = _param_value(ratio)
        if kind == "const" and v:
            return 1 / Fraction(v)
    return None


def _apply_transitions(pieces: list) -> list:
    """AAF transitions overlap their neighbours; cut both at the cut point, as the editor shows it."""
    trans = [p for p in pieces if isinstance(p, TransitionPiece)]
    if not trans:
        return pieces
    clips = [p for p in pieces if isinstance(p, ClipPiece)]
    others = [p for p in pieces if isinstance(p, NotePiece)]
    out_clips = []
    for c in clips:
        lo, hi = c.start, c.start + c.length
        for t in trans:
            cut = t.start + t.cut
            t_end = t.start + t.length
            if _under(c, t.prev):
                hi = min(hi, cut)           # outgoing clip: ends at the cut
                if c.kind == "audio" and not _has_clip_at(clips, t_end, c):
                    c.fade_out = t.length
            if _under(c, t.next):
                lo = max(lo, cut)           # incoming clip: starts at the cut
                if c.kind == "audio" and not _has_clip_before(clips, t.start, c):
                    c.fade_in = t.length
        fade_in, fade_out = c.fade_in, c.fade_out
        k = c.clipped(lo, hi)
        if k is not None:
            k.fade_in, k.fade_out = fade_in, fade_out
            out_clips.append(k)
    return out_clips + trans + others


def _under(piece, component_path) -> bool:
    """Whether ``piece`` comes from the component at ``component_path`` (or from inside it)."""
    return component_path is not None and tuple(piece.path[:len(component_path)]) == component_path


def _has_clip_at(clips, t, me) -> bool:
    return any(o is not me and o.start <= t - Fraction(1, 10 ** 6) and o.start + o.length >= t for o in clips
               if o.lane == me.lane)


def _has_clip_before(clips, t, me) -> bool:
    return any(o is not me and o.start <= t and o.start + o.length > t for o in clips if o.lane == me.lane)
