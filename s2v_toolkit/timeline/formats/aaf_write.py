"""Surgical AAF write-back: a byte copy of the editor's AAF with only the conform's additions.

The original file is copied, then opened with pyaaf2 in ``rw`` mode and given

* per render track: a new picture TimelineMobSlot on the top-level composition holding the render
  clips (fillers between them), each a SourceClip of a new MasterMob whose SourceMob has an
  ImportDescriptor with a NetworkLocator to the render file (Avid relinks it like an imported file);
* the markers on the editor's clips: DescriptiveMarkers in a new EventMobSlot, ``DescribedSlots``
  naming the marked clip's slot, as Media Composer writes its own markers.

Nothing already in the file is changed; tests compare every mob, slot and component before and after.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.aaf_read import quiet

NS = "s2v_toolkit"
MARKER_RGB = {"CYAN": (0, 65535, 65535), "RED": (65535, 0, 0), "GREEN": (0, 65535, 0),
              "BLUE": (0, 0, 65535), "YELLOW": (65535, 65535, 0), "MAGENTA": (65535, 0, 65535)}


def _frames(t, rate: Fraction) -> int:
    """An OTIO time as a whole number of edit units at ``rate`` (nearest: renders sit on frames)."""
    return int(round(Fraction(t.value).limit_denominator(10 ** 6) * rate
                     / Fraction(t.rate).limit_denominator(10 ** 6)))


def write_additions(original, additions, tmp_path: Path) -> list[str]:
    import aaf2

    from s2v_toolkit.timeline.formats.aaf import composition_rate

    notes: list[str] = []
    mob_id = original.timeline.metadata.get(NS, {}).get("mob_id")
    shutil.copyfile(original.path, tmp_path)
    with quiet(), aaf2.open(str(tmp_path), "rw") as f:
        comp = next((m for m in f.content.mobs if str(m.mob_id) == str(mob_id)), None)
        if comp is None:
            raise TimelineError(original.path, f"AAF composition {mob_id} not found for write-back")
        rate, _ = composition_rate(comp)
        if type(comp).__name__ == "MasterMob":
            notes.append(f"the AAF holds a clip ('{comp.name}'), not a sequence: the render track is added to that clip")
        phys = [s["PhysicalTrackNumber"].value for s in comp.slots
                if "PhysicalTrackNumber" in s.keys() and _is_picture(s)]
        next_phys = max([p for p in phys if p is not None] or [0]) + 1
        for track in additions.tracks:
            slot = comp.create_empty_sequence_slot(rate, slot_id=_free_slot_id(comp), media_kind="picture")
            slot.name = track.name
            slot["PhysicalTrackNumber"].value = next_phys
            next_phys += 1
            seq = slot.segment
            cursor = 0
            for clip in track.clips:
                start = _frames(clip.record.start_time, rate)
                length = _frames(clip.record.duration, rate)
                if start < cursor:
                    notes.append(f"render '{clip.name}' overlaps the one before it on '{track.name}'; its head is cut")
                    length -= cursor - start
                    start = cursor
                if length <= 0:
                    continue
                if start > cursor:
                    seq.components.append(f.create.Filler("picture", start - cursor))
                master = _render_master(f, clip, rate, length, _absolute_url(clip.media_url, original.path.parent))
                seq.components.append(master.create_source_clip(1, _frames(clip.media_start, rate), length))
                cursor = start + length
        if additions.markers:
            _add_markers(f, comp, additions.markers, rate, notes)
    return notes


def _is_picture(slot) -> bool:
    try:
        return (slot.segment.media_kind or "").lower() in ("picture", "legacypicture", "datadef_picture")
    except Exception:
        return False


def _free_slot_id(comp) -> int:
    used = {s.slot_id for s in comp.slots}
    n = max((i for i in used if i < 1000), default=0) + 1
    while n in used:
        n += 1
    return n


def _absolute_url(url: str, base: Path) -> str:
    """AAF locators are absolute URLs: a render path relative to the editor's timeline becomes one."""
    from urllib.parse import urlparse

    if urlparse(url).scheme and len(urlparse(url).scheme) > 1:
        return url
    p = Path(url)
    return (p if p.is_absolute() else (base / p)).resolve().as_uri()


def _render_master(f, clip, rate: Fraction, length: int, url: str):
    """A MasterMob -> SourceMob (ImportDescriptor + locator) pair for one render file."""
    full = _frames(clip.media_duration, rate) if clip.media_duration is not None else None
    full = max(full or 0, _frames(clip.media_start, rate) + length)
    src = f.create.SourceMob(clip.name)
    src.descriptor = f.create.ImportDescriptor()
    loc = f.create.NetworkLocator()
    loc["URLString"].value = url
    src.descriptor["Locator"].append(loc)
    s = src.create_empty_slot(rate, media_kind="picture", slot_id=1)
    s.segment.length = full
    f.content.mobs.append(src)
    master = f.create.MasterMob(clip.name)
    m = master.create_timeline_slot(rate, slot_id=1)
    m.segment = src.create_source_clip(1, 0, full)
    master.comments[NS] = json.dumps(clip.metadata, default=str)
    f.content.mobs.append(master)
    return master


def _first_frame_inside(start, duration, rate: Fraction) -> int:
    """The first whole frame inside a range: a clip timed in samples starts between frames, and a
    marker rounded down to the frame before would fall off the clip it marks."""
    import math

    a = Fraction(start.value).limit_denominator(10 ** 6) * rate / Fraction(start.rate).limit_denominator(10 ** 6)
    d = Fraction(duration.value).limit_denominator(10 ** 6) * rate / Fraction(duration.rate).limit_denominator(10 ** 6)
    pos = math.ceil(a - Fraction(1, 10 ** 6))
    return pos if pos < a + d else int(round(a))


def _add_markers(f, comp, markers, rate: Fraction, notes: list[str]) -> None:
    slot = f.create.EventMobSlot()
    slot.slot_id = _free_slot_id(comp) + 1000   # Avid numbers event slots above its tracks
    while slot.slot_id in {s.slot_id for s in comp.slots}:
        slot.slot_id += 1
    slot.edit_rate = rate
    dd = _descriptive_datadef(f)
    seq = _new_component(f, "Sequence", dd)
    seq["Components"].value = []
    slot.segment = seq
    comp.slots.append(slot)
    for m in markers:
        sid = (m.locator or {}).get("slot_id")
        marker = _new_component(f, "DescriptiveMarker", dd)
        marker["Position"].value = _first_frame_inside(m.record.start_time, m.record.duration, rate)
        marker["Length"].value = max(1, _frames(m.record.duration, rate))
        marker["Comment"].value = f"{m.name}\n{m.comment}" if m.comment else m.name
        r, g, b = MARKER_RGB.get(str(m.color).upper(), MARKER_RGB["CYAN"])
        marker["CommentMarkerColor"].value = {"red": r, "green": g, "blue": b}
        if sid is not None:
            marker["DescribedSlots"].value = {int(sid)}
        else:
            notes.append(f"marker '{m.name}' on {m.clip_id}: clip has no AAF slot; put on the timeline")
        seq.components.append(marker)


DESCRIPTIVE_METADATA = "01030201-1000-0000-060e-2b3404010101"


def _descriptive_datadef(f):
    """The file's own "Descriptive Metadata" data definition (Avid and pyaaf2 name it differently)."""
    from aaf2.auid import AUID

    auid = AUID(DESCRIPTIVE_METADATA)
    dd = f.dictionary["DataDefinitions"].get(auid, None)
    if dd is None:
        dd = f.create.DataDef(auid, "DescriptiveMetadata", "Descriptive metadata")
        f.dictionary.register_def(dd)
    return dd


def _new_component(f, class_name: str, datadef):
    # pyaaf2 looks data definitions up by name, which files spell differently: set it directly
    from aaf2.core import AAFObject

    cls = f.metadict.lookup_class(class_name)
    obj = cls.__new__(cls)
    obj.root = f
    AAFObject.__init__(obj)
    obj.datadef = datadef
    return obj
