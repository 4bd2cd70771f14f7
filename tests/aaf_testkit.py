"""Small AAF files built with pyaaf2, one structure at a time, for the AAF reader/writer tests.

``AAFBuilder`` makes the chain an editor's export has: composition -> master mob -> file source
mob (descriptor + locator) -> tape mob (timecode), and the pieces the reader must understand:
Avid clip mute (a Selector), "Audio Gain" operations, channel combiners, transitions, markers,
nested compositions.
"""

from __future__ import annotations

from fractions import Fraction

import aaf2
from aaf2.auid import AUID

AUDIO_GAIN = "9d2ea894-0968-11d3-8a38-0050040ef7d2"
AMPLITUDE = "e4962321-2267-11d3-8a4c-0050040ef7d2"
COMBINER = "6b46dd7a-132d-4856-ab97-e2ac9ba0ee4c"
DISSOLVE = "0c3bea41-fc05-11d2-8a29-0050040ef7d2"
REPEAT = "9d2ea891-0968-11d3-8a38-0050040ef7d2"      # AAF's VideoRepeat, Avid's "Repeat Control"


class AAFBuilder:
    def __init__(self, f, rate, tc_start=86400, tc_fps=24, drop=False, name="cut"):
        self.f = f
        self.rate = rate
        self.comp = f.create.CompositionMob(name)
        self.comp.usage = "Usage_TopLevel"
        f.content.mobs.append(self.comp)
        tc = self.comp.create_timeline_slot(rate)
        tc.segment = f.create.Timecode(tc_fps, drop=drop)
        tc.segment.start = tc_start
        tc.segment.length = 100000
        tc["PhysicalTrackNumber"].value = 1
        self._ops = {}

    # ------------------------------------------------------------------ media
    def media(self, name, url, *, kind="sound", rate=None, length=10000, tape_tc=0, tc_fps=24, tc_rate=None,
              channels=1, sample_rate=48000):
        """A master mob for a file (``channels`` slots) whose tape starts at frame ``tape_tc``."""
        f, rate = self.f, rate or self.rate
        tape = f.create.SourceMob(name + " tape")
        tape.descriptor = f.create.TapeDescriptor()
        tslot = tape.create_empty_slot(rate, media_kind=kind, slot_id=1)
        tslot.segment.length = 10 ** 7
        tcs = tape.create_timeline_slot(tc_rate or rate)
        tcs.segment = f.create.Timecode(tc_fps)
        tcs.segment.start = tape_tc
        tcs.segment.length = 10 ** 7
        f.content.mobs.append(tape)
        src = f.create.SourceMob(name)
        src.descriptor = f.create.WAVEDescriptor() if kind == "sound" else f.create.CDCIDescriptor()
        if kind == "sound":
            src.descriptor["Summary"].value = b"RIFF\x00\x00\x00\x00WAVE"   # a header is required
        else:
            d = src.descriptor
            for k, v in (("ComponentWidth", 8), ("HorizontalSubsampling", 2), ("StoredHeight", 1080),
                         ("StoredWidth", 1920), ("FrameLayout", "FullFrame"), ("VideoLineMap", [42, 0]),
                         ("ImageAspectRatio", Fraction(16, 9))):
                d[k].value = v
        src.descriptor["Length"].value = length
        src.descriptor["SampleRate"].value = sample_rate if kind == "sound" else rate
        loc = f.create.NetworkLocator()
        loc["URLString"].value = url
        src.descriptor["Locator"].append(loc)
        master = f.create.MasterMob(name)
        for ch in range(channels):
            s = src.create_timeline_slot(rate, slot_id=ch + 1)
            s.segment = tape.create_source_clip(1, 0, length, media_kind=kind)
            m = master.create_timeline_slot(rate, slot_id=ch + 1)
            m.segment = src.create_source_clip(ch + 1, 0, length, media_kind=kind)
            m["PhysicalTrackNumber"].value = ch + 1
        f.content.mobs.append(src)
        f.content.mobs.append(master)
        return master

    # ------------------------------------------------------------------ tracks
    def track(self, kind="sound", rate=None, name=None, phys=1, attrs=None):
        slot = self.comp.create_empty_sequence_slot(rate or self.rate, media_kind=kind)
        slot["PhysicalTrackNumber"].value = phys
        if name:
            slot.name = name
        for k, v in (attrs or {}).items():
            tv = self.f.create.TaggedValue(k, v)
            slot["TimelineMobAttributeList"].append(tv)
        return slot

    def clip(self, master, start, length, slot_id=1, kind="sound"):
        return master.create_source_clip(slot_id, start, length, media_kind=kind)

    def filler(self, length, kind="sound"):
        return self.f.create.Filler(kind, length)

    def muted(self, component, kind="sound"):
        sel = self.f.create.Selector()
        sel.media_kind = kind
        sel.length = component.length
        filler = self.filler(component.length, kind)
        sel["Selected"].value = filler
        sel["Alternates"].append(component)
        flag = self.f.create.TaggedValue("_DISABLE_CLIP_FLAG", 1)
        sel["ComponentAttributeList"].append(flag)
        return sel

    def _op(self, auid, name, inputs, kind="sound"):
        if auid not in self._ops:
            opdef = self.f.create.OperationDef(AUID(auid), name, "")
            opdef.media_kind = kind
            opdef["NumberInputs"].value = inputs
            self.f.dictionary.register_def(opdef)
            self._ops[auid] = opdef
        return self._ops[auid]

    def gain(self, component, linear):
        opdef = self._op(AUDIO_GAIN, "Audio Gain", 1)   # first: pyaaf2's f.create is not re-entrant
        op = self.f.create.OperationGroup(opdef, component.length)
        op.media_kind = "sound"
        if "amp" not in self._ops:
            self._ops["amp"] = self.f.create.ParameterDef(AUID(AMPLITUDE), "Amplitude", "", "Rational")
            self.f.dictionary.register_def(self._ops["amp"])
        value = self.f.create.ConstantValue(self._ops["amp"], Fraction(linear))
        op.parameters.append(value)
        op.segments.append(component)
        return op

    def combine(self, components):
        opdef = self._op(COMBINER, "Audio Channel Combiner", -1)
        op = self.f.create.OperationGroup(opdef, components[0].length)
        op.media_kind = "sound"
        for c in components:
            op.segments.append(c)
        return op

    def hold(self, component, length, kind="picture"):
        """Avid Xpress' freeze frame: a "Repeat Control" effect of ``length`` over a one-frame clip."""
        opdef = self._op(REPEAT, "Repeat Control", 1, kind)
        op = self.f.create.OperationGroup(opdef, length)
        op.media_kind = kind
        op.segments.append(component)
        return op

    def transition(self, length, cut, kind="sound"):
        opdef = self._op(DISSOLVE, "Mono Audio Dissolve", 2, kind)
        op = self.f.create.OperationGroup(opdef, length)
        op.media_kind = kind
        tr = self.f.create.Transition(media_kind=kind, length=length)
        tr["CutPoint"].value = cut
        tr["OperationGroup"].value = op
        return tr

    def nested(self, name, kind="sound"):
        """A lower-level composition (a nested sequence) with one slot; returns (mob, its sequence)."""
        mob = self.f.create.CompositionMob(name)
        mob.usage = "Usage_LowerLevel"
        self.f.content.mobs.append(mob)
        slot = mob.create_empty_sequence_slot(self.rate, media_kind=kind)
        return mob, slot.segment

    def marker(self, position, described_slot, comment, length=1):
        from s2v_toolkit.timeline.formats.aaf_write import _descriptive_datadef, _new_component

        dd = _descriptive_datadef(self.f)
        ev = self.f.create.EventMobSlot()
        ev.slot_id = 1000 + described_slot
        ev.edit_rate = self.rate
        seq = _new_component(self.f, "Sequence", dd)
        seq["Components"].value = []
        ev.segment = seq
        self.comp.slots.append(ev)
        m = _new_component(self.f, "DescriptiveMarker", dd)
        m["Position"].value = position
        m["Length"].value = length
        m["Comment"].value = comment
        m["DescribedSlots"].value = {described_slot}
        seq.components.append(m)


def write_aaf(path, rate, build, **kw):
    with aaf2.open(str(path), "w") as f:
        b = AAFBuilder(f, rate, **kw)
        build(b)
    return path


def _value(p):
    try:
        return p.value
    except Exception as exc:  # noqa: BLE001 - an unreadable property is compared by its error
        return f"<{type(exc).__name__}>"


def _dump(obj, depth=0):
    """Every property of an AAF object, recursively (definitions by their id)."""
    if depth > 40:
        return "..."
    if isinstance(obj, aaf2.dictionary.DefinitionObject):
        return str(obj.auid)
    if isinstance(obj, aaf2.core.AAFObject):
        return {p.name: _dump(_value(p), depth + 1) for p in obj.properties()}
    if isinstance(obj, (list, tuple)):
        return [_dump(v, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _dump(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted(str(v) for v in obj)
    return str(obj)


def mob_dumps(path) -> dict:
    """mob id -> (its properties but slots, {slot id: the whole slot}) as comparable text."""
    import json

    with aaf2.open(str(path), "r") as f:
        return {str(m.mob_id): (json.dumps(_dump({p.name: _value(p) for p in m.properties() if p.name != "Slots"}),
                                           sort_keys=True, default=str),
                                {s.slot_id: json.dumps(_dump(s), sort_keys=True, default=str) for s in m.slots})
                for m in f.content.mobs}


def assert_only_additions(before_path, after_path, comp_id) -> set:
    """Every mob, slot and component of ``before`` is in ``after`` unchanged; returns the new slot ids
    of the composition."""
    before, after = mob_dumps(before_path), mob_dumps(after_path)
    assert set(before) <= set(after), "mobs disappeared"
    for mob_id, (props, slots) in before.items():
        props2, slots2 = after[mob_id]
        if mob_id != comp_id:
            assert props2 == props, f"mob {mob_id} changed"
        assert set(slots) <= set(slots2), f"slots of mob {mob_id} disappeared"
        for sid, dump in slots.items():
            assert slots2[sid] == dump, f"slot {sid} of mob {mob_id} changed"
    return set(after[comp_id][1]) - set(before[comp_id][1])
