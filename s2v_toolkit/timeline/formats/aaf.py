"""AAF (Media Composer, Resolve, Premiere, Pro Tools): reader, writer and surgical writer.

Reading is the toolkit's own (``aaf_read``: pyaaf2 on the top-level composition), because
otio-aaf-adapter prints to stdout, reads Pro Tools clips at the media's sample rate, keeps
23.976 as a float, drops clip mute/gain/markers and cannot read some Resolve exports; see
docs/timeline.md. ``write_additions`` copies the original file and adds the render track and
markers with pyaaf2, leaving every other object in the file as it was (``aaf_write``).
A whole new timeline (``write``) still goes through the adapter.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.aaf_read import (
    ClipPiece, CompositionReader, NotePiece, TransitionPiece, kind_of, quiet, snap_rate, _attrs, _name, _timecode_of,
)
from s2v_toolkit.timeline.formats.base import TimelineFormat, first_line
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE

ADAPTER = "AAF"
NS = METADATA_NAMESPACE
RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    import aaf2

    path = Path(path)
    notes: list[str] = []
    try:
        with quiet(), aaf2.open(str(path), "r") as f:
            timeline = _read_file(f, path, notes)
    except TimelineError:
        raise
    except Exception as exc:  # pyaaf2 raises anything on a damaged file
        raise TimelineError(path, f"cannot read as AAF: {first_line(exc)}") from exc
    if rate is not None and abs(float(rate) - float(_tl_rate(timeline))) > 1e-3:
        notes.append(f"AAF says its rate ({float(_tl_rate(timeline)):.3f}); --rate {float(rate):.3f} is ignored")
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes)


def _tl_rate(timeline) -> Fraction:
    return Fraction(timeline.metadata[NS]["rate"])


def composition_rate(comp) -> tuple[Fraction, object]:
    """The composition's frame rate (its picture slots', else its timecode's) and its timecode."""
    tc = _timecode_of(comp)
    for slot in comp.slots:
        if type(slot).__name__ == "TimelineMobSlot" and kind_of(slot.segment) == "video":
            return snap_rate(slot.edit_rate), tc
    if tc is not None and tc[1] <= 120:
        return tc[1], tc
    for slot in comp.slots:
        r = snap_rate(slot.edit_rate)
        if type(slot).__name__ == "TimelineMobSlot" and r <= 120:
            return r, tc
    if tc is not None:
        fps = Fraction(tc[0]["FPS"].value or 25)
        return (fps * 1000 / 1001 if tc[0]["Drop"].value else fps), tc
    return Fraction(25), tc


def pick_composition(f, path: Path, notes: list[str]):
    comps = list(f.content.toplevel())
    if not comps:
        comps = list(f.content.compositionmobs())
        # the cut is the composition no other composition uses (the others are nested in it)
        used = set()
        for c in comps:
            try:
                used.update(str(m.mob_id) for m in c.dependant_mobs())
            except Exception:
                continue
        roots = [c for c in comps if str(c.mob_id) not in used]
        comps = roots or comps
        if comps:
            notes.append(f"AAF marks no composition as top level; reading '{_name(comps[0])}', "
                         "which no other composition uses")
    if not comps:
        # an exported master clip (no sequence): the editor opens that clip, so it is the timeline
        comps = [m for m in f.content.mastermobs() if any(kind_of(s.segment) for s in m.slots)]
        if comps:
            notes.append(f"AAF holds no composition; reading the clip '{_name(comps[0])}' as the timeline")
    if not comps:
        raise TimelineError(path, "AAF has no composition (no tracks to read)")
    if len(comps) > 1:
        names = ", ".join(f"'{_name(c)}'" for c in comps[:5])
        notes.append(f"AAF holds {len(comps)} top-level compositions ({names}); reading the first")
    return comps[0]


def _read_file(f, path: Path, notes: list[str]) -> otio.schema.Timeline:
    comp = pick_composition(f, path, notes)
    rate, tc = composition_rate(comp)
    reader = CompositionReader(f, comp, notes, rate)
    timeline = otio.schema.Timeline(name=_name(comp) or path.stem)
    ns = {"rate": f"{rate.numerator}/{rate.denominator}", "mob_id": str(comp.mob_id)}
    if tc is not None:
        tcomp = tc[0]
        fps = Fraction(tcomp["FPS"].value or round(rate))
        start = Fraction(tcomp["Start"].value or 0) * round(rate) / fps
        timeline.global_start_time = RT(float(start), float(rate))
        ns["drop_frame"] = bool(tcomp["Drop"].value)
    else:
        timeline.global_start_time = RT(0, float(rate))
    timeline.metadata[NS] = ns
    by_slot: dict[int, list] = {}
    slots = [s for s in comp.slots if type(s).__name__ == "TimelineMobSlot"]
    video = [s for s in slots if kind_of(s.segment) == "video"]
    audio = [s for s in slots if kind_of(s.segment) == "audio"]
    counters = {"video": 0, "audio": 0}
    for slot in video + audio:
        kind = kind_of(slot.segment)
        srate = snap_rate(slot.edit_rate)
        seg = slot.segment
        layers = list(seg["Slots"].value) if type(seg).__name__ == "NestedScope" else [seg]
        for li, layer in enumerate(layers):
            counters[kind] += 1
            letter = "V" if kind == "video" else "A"
            # Avid's layered video (NestedScope) is V1, V2...; a named slot keeps its name
            name = _name(slot) if len(layers) == 1 and _name(slot) else f"{letter}{counters[kind]}"
            track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video if kind == "video"
                                      else otio.schema.TrackKind.Audio)
            tmeta = {"locator": {"mob_id": str(comp.mob_id), "slot_id": slot.slot_id, "layer": li if len(layers) > 1 else None}}
            attrs = _attrs(slot, "TimelineMobAttributeList")
            for k, v in attrs.items():
                if "mute" in k.lower() and _truthy(v):
                    tmeta["muted"] = True
                if "solo" in k.lower() and _truthy(v):
                    tmeta["solo"] = True
            track.metadata[NS] = tmeta
            path_prefix = (li,) if len(layers) > 1 else ()
            pieces = reader.walk(layer, srate, path_prefix)
            _fill_track(track, pieces, rate, comp, slot, srate, notes, timeline.global_start_time,
                        bool(ns.get("drop_frame")))
            timeline.tracks.append(track)
            by_slot.setdefault(slot.slot_id, []).append(track)
    _read_markers(comp, timeline, by_slot, rate, notes)
    return timeline


def _truthy(v) -> bool:
    try:
        return bool(int(v))
    except (TypeError, ValueError):
        return False


def _fill_track(track, pieces, rate: Fraction, comp, slot, srate: Fraction, notes, start_tc=None,
                drop: bool = False) -> None:
    for n in sorted((p for p in pieces if isinstance(p, NotePiece)), key=lambda p: p.start):
        notes.append(f"AAF: track '{track.name}' {_tc_range(n.start, n.length, rate, start_tc, drop)}: {n.text}")
    clips = sorted((p for p in pieces if isinstance(p, ClipPiece)), key=lambda p: (p.start, p.lane))
    trans = sorted((p for p in pieces if isinstance(p, TransitionPiece)), key=lambda p: p.start)
    # channel lanes of one combined clip (stereo, 5.1) go into one stack
    groups: list[list[ClipPiece]] = []
    for p in clips:
        if p.lanes > 1 and groups and groups[-1][0].lanes > 1 and groups[-1][0].start == p.start \
                and groups[-1][0].path[:-1] == p.path[:-1] and p.lane > groups[-1][-1].lane:
            groups[-1].append(p)
        else:
            groups.append([p])
    cursor = Fraction(0)
    for g in groups:
        start, length = g[0].start, max(p.length for p in g)
        label = f"'{g[0].name}' at {_tc_range(start, max(p.length for p in g), rate, start_tc, drop)}"
        if start < cursor:
            over = cursor - start
            if over >= length:
                notes.append(f"AAF: clip {label} on track '{track.name}' is hidden under the clip before it; left out")
                continue
            notes.append(f"AAF: clip {label} on track '{track.name}' overlaps the clip before it by "
                         f"{float(over):.3f}s; its head is not shown")
            g = [p.clipped(cursor, p.start + p.length) for p in g]
            g = [p for p in g if p is not None]
            start, length = cursor, max(p.length for p in g)
        if start > cursor:
            track.append(otio.schema.Gap(source_range=TR(RT(0, float(rate)), RT(float((start - cursor) * rate), float(rate)))))
            cursor = start
        for t in trans:
            if t.start + t.cut == start and len(track) and not isinstance(track[-1], otio.schema.Transition) \
                    and start > 0:
                track.append(otio.schema.Transition(
                    name=t.name, transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                    in_offset=RT(float(t.cut * rate), float(rate)),
                    out_offset=RT(float((t.length - t.cut) * rate), float(rate))))
                break
        if len(g) == 1:
            track.append(_make_clip(g[0], rate, comp, slot, srate))
        else:
            stack = otio.schema.Stack(name=g[0].name)
            for p in g:
                sub = otio.schema.Track(name=f"ch {p.lane + 1}", kind=track.kind)
                sub.append(_make_clip(p, rate, comp, slot, srate))
                stack.append(sub)
            track.append(stack)
        cursor = start + length


def _tc_range(start: Fraction, length: Fraction, rate: Fraction, start_tc, drop: bool = False) -> str:
    """Record range as the editor reads it: "01:00:10:00-01:00:12:05"."""
    from s2v_toolkit.timeline.timecode import timecode

    base = start_tc if start_tc is not None else RT(0, float(rate))
    a = base + RT(float(start * rate), float(rate))
    b = base + RT(float((start + length) * rate), float(rate))
    return f"{timecode(a, float(rate), drop)}-{timecode(b, float(rate), drop)}"


def _make_clip(p: ClipPiece, rate: Fraction, comp, slot, srate: Fraction) -> otio.schema.Clip:
    src = p.source or {}
    s_rate = src.get("rate") or rate
    start = src.get("start")
    start = (start if start is not None else Fraction(0)) + p.src_offset * s_rate
    rec_len = p.length
    source_range = TR(RT(float(start), float(s_rate)), RT(float(rec_len * s_rate), float(s_rate)))
    url = _pick_url(src.get("url"), src.get("import_url"))
    avail = None
    if src.get("file_length") is not None and src.get("file_start") is not None:
        avail = TR(RT(float(src["file_start"]), float(s_rate)), RT(float(src["file_length"] * s_rate), float(s_rate)))
    if url and not p.generator:
        ref = otio.schema.ExternalReference(target_url=url, available_range=avail)
    else:
        ref = otio.schema.MissingReference(name=src.get("name") or p.name, available_range=avail)
    clip = otio.schema.Clip(name=p.name, media_reference=ref, source_range=source_range)
    if p.speed == 0:  # a held frame (Avid's "Repeat Control", a Motion Control at speed 0)
        clip.effects.append(otio.schema.FreezeFrame(name="freeze"))
    elif p.speed != 1:
        clip.effects.append(otio.schema.LinearTimeWarp(name="speed", time_scalar=float(p.speed)))
    meta = {"locator": {"mob_id": str(comp.mob_id), "slot_id": slot.slot_id,
                        "record_start": float(p.start * srate), "record_length": float(p.length * srate),
                        "path": [x if isinstance(x, int) else str(x) for x in p.path]}}
    if p.gain_db:
        meta["gain_db"] = round(float(p.gain_db), 4)
    if p.gain_envelope:
        meta["gain_envelope"] = [[round(float(t), 6), round(float(d), 4)] for t, d in p.gain_envelope]
    if p.fade_in:
        meta["fade_in"] = float(p.fade_in)
    if p.fade_out:
        meta["fade_out"] = float(p.fade_out)
    if p.muted:
        meta["muted"] = True
        clip.enabled = False
    channel = src.get("channel")
    if channel is not None:
        meta["source_channel"] = int(channel)
    if p.generator:
        meta["generator"] = p.generator
    if p.unknown_picture:
        meta["unknown_picture"] = p.unknown_picture
    if p.nested_in:
        meta["nested_in"] = p.nested_in
    if p.speed != 1:
        meta["speed"] = float(p.speed)
    if p.effects:
        meta["effects"] = list(p.effects)
    if p.pan is not None:
        meta["pan"] = p.pan
    if p.lanes > 1:
        meta["channel_lane"] = [p.lane, p.lanes]
    if src.get("import_url") and src.get("url"):
        meta["import_url"] = src["import_url"]
    if src.get("master_mob_id"):
        meta["aaf_mob_id"] = src["master_mob_id"]
    for k, v in (src.get("s2v") or {}).items():
        meta.setdefault(k, v)
    clip.metadata[NS] = meta
    return clip


def _pick_url(file_url: str | None, import_url: str | None) -> str | None:
    """The file mob's media, unless only the file the editor imported is there (Avid's managed MXF
    rarely travels with an AAF; the imported original is what a search by name finds)."""
    if file_url and import_url and not _exists(file_url):
        return import_url
    return file_url or import_url


def _exists(url: str) -> bool:
    from s2v_toolkit.timeline.media_link import url_to_path

    try:
        return Path(url_to_path(url)).exists()
    except Exception:
        return False


MARKER_COLORS = {
    "RED": (1, 0, 0), "ORANGE": (1, .5, 0), "YELLOW": (1, 1, 0), "GREEN": (0, 1, 0), "CYAN": (0, 1, 1),
    "BLUE": (0, 0, 1), "PURPLE": (.5, 0, .5), "MAGENTA": (1, 0, 1), "BLACK": (0, 0, 0), "WHITE": (1, 1, 1),
}


def _marker_color(value) -> str:
    try:
        rgb = [float(value[k]) / 65535 for k in ("red", "green", "blue")]
    except Exception:
        return otio.schema.MarkerColor.RED
    best = min(MARKER_COLORS, key=lambda n: sum((a - b) ** 2 for a, b in zip(MARKER_COLORS[n], rgb)))
    return best


def _read_markers(comp, timeline, by_slot, rate: Fraction, notes) -> None:
    for slot in comp.slots:
        if type(slot).__name__ not in ("EventMobSlot", "TimelineMobSlot"):
            continue
        seg = slot.segment
        comps = list(seg.components) if type(seg).__name__ == "Sequence" else [seg]
        srate = snap_rate(slot.edit_rate)
        for c in comps:
            if type(c).__name__ not in ("DescriptiveMarker", "CommentMarker"):
                continue
            pos = Fraction(c["Position"].value or 0) if "Position" in c.keys() else Fraction(0)
            length = Fraction(c.length or 0) if c.length else Fraction(0)
            comment = c["Comment"].value if "Comment" in c.keys() else ""
            user = c["CommentMarkerUSer"].value if "CommentMarkerUSer" in c.keys() else ""
            color = _marker_color(c["CommentMarkerColor"].value) if "CommentMarkerColor" in c.keys() else "RED"
            described = list(c["DescribedSlots"].value) if "DescribedSlots" in c.keys() and c["DescribedSlots"].value else []
            rec = TR(RT(float(pos / srate * rate), float(rate)), RT(float(length / srate * rate), float(rate)))
            name = (comment or "marker").splitlines()[0][:60]
            md = {NS: {"aaf": {"slot_id": slot.slot_id, "described_slots": described, "user": user or ""}}}
            placed = False
            for sid in described:
                tracks = by_slot.get(sid) or []
                if not tracks:
                    continue
                hits = [c for c in (_clip_at(t, rec.start_time) for t in reversed(tracks)) if c is not None]
                track, clip = tracks[-1], (hits[0] if hits else None)
                if clip is not None:
                    rng = clip.transformed_time_range(clip.trimmed_range(), track)
                    src = clip.source_range
                    off = (rec.start_time - rng.start_time).rescaled_to(src.start_time.rate)
                    clip.markers.append(otio.schema.Marker(
                        name=name, color=color, comment=comment or "", metadata=md,
                        marked_range=TR(src.start_time + off, rec.duration.rescaled_to(src.start_time.rate))))
                else:
                    track.markers.append(otio.schema.Marker(name=name, color=color, comment=comment or "",
                                                            marked_range=rec, metadata=md))
                placed = True
            if not placed:
                timeline.tracks.markers.append(otio.schema.Marker(name=name, color=color, comment=comment or "",
                                                                  marked_range=rec, metadata=md))


def _clip_at(track, t):
    """The clip under record time ``t`` (first channel of a combined clip)."""
    for item in track:
        if isinstance(item, (otio.schema.Clip, otio.schema.Stack)):
            r = item.range_in_parent()
            if r.start_time <= t < r.end_time_exclusive():
                if isinstance(item, otio.schema.Stack):
                    clips = list(item.find_clips())
                    return clips[0] if clips else None
                return item
    return None


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    # clips that did not come from an AAF (e.g. renders) have no mob id; let the writer make one
    kwargs.setdefault("use_empty_mob_ids", True)
    with quiet():
        otio.adapters.write_to_file(timeline, str(path), adapter_name=ADAPTER, **kwargs)


def aaf_drop_frame(path: Path) -> bool | None:
    """Drop-frame flag of the top-level composition's timecode track in an AAF (``None`` if none)."""
    try:
        import aaf2

        with quiet(), aaf2.open(str(path), "r") as f:
            for mob in f.content.toplevel():
                tc = _timecode_of(mob)
                if tc is not None:
                    return bool(tc[0]["Drop"].value)
    except Exception:  # an unreadable flag only changes how timecode is shown
        return None
    return None


def write_additions(original: LoadedTimeline, additions, tmp_path: Path) -> list[str]:
    from s2v_toolkit.timeline.formats.aaf_write import write_additions as _write

    return _write(original, additions, tmp_path)


FORMAT = TimelineFormat(ADAPTER, ".aaf", read, write, write_additions=write_additions,
                        description="AAF (Media Composer, Resolve, Premiere, Pro Tools)")
