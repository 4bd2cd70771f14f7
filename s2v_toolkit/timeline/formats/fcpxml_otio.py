"""The OTIO timeline of what fcpxml_read.Reader found: tracks per lane (picture) and per role (sound).

Picture: one video track per lane, bottom to top (lane 0 = the primary storyline), named by the
clips' video role where they all share one; clips that overlap on a lane go to a further track.
Sound: one audio track per main role (dialogue, effects, music, then others). Record times count
from the sequence's first frame at the sequence rate; source times are the media's own.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import opentimelineio as otio

from s2v_toolkit.timeline.formats.fcpxml_doc import Node
from s2v_toolkit.timeline.formats.fcpxml_time import ZERO, seconds
from s2v_toolkit.timeline.timecode import RationalTime, TimeRange

if TYPE_CHECKING:
    from s2v_toolkit.timeline.formats.fcpxml_read import Piece, Reader

NS = "s2v_toolkit"
ROLE_ORDER = ("dialogue", "effects", "music")


def _main_role(role: str | None) -> str | None:
    if not role:
        return None
    return role.split(".")[0].strip() or None


def build(reader: Reader, project: Node, seq: Node) -> otio.schema.Timeline:
    rate = reader.seq_rate
    frate = float(rate)
    tl = otio.schema.Timeline(name=project.get("name") or seq.get("name") or "FCPXML project")
    start_frames = reader.tc_start * rate
    tl.global_start_time = RationalTime(_frames(start_frames), frate)
    drop = (seq.get("tcFormat") or "NDF").upper() == "DF"
    tl.metadata[NS] = {"drop_frame": drop, "start_timecode": reader.tc(ZERO)}
    tl.metadata["fcpxml"] = {"version": reader.doc.root.get("version") or "",
                             "sequence_format": seq.get("format") or ""}
    video = [p for p in reader.pieces if p.kind == "video"]
    audio = [p for p in reader.pieces if p.kind == "audio"]
    tracks: list[tuple[otio.schema.Track, list]] = []
    for lane in sorted({p.lane for p in video}):
        lane_pieces = [p for p in video if p.lane == lane]
        base = "Primary Storyline" if lane == 0 else f"Lane {lane}"
        for i, group in enumerate(_first_fit(lane_pieces)):
            roles = {p.video_role for p in group}
            name = roles.pop() if len(roles) == 1 and None not in roles else base
            name = name if i == 0 else f"{name} ({i + 1})"
            track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video)
            track.metadata[NS] = {"lane": lane}
            if name.split(" (")[0] != base:   # every clip on it has this video role
                track.metadata[NS]["role"] = _main_role(name.split(" (")[0]).lower()
            tracks.append((track, group))
    roles = sorted({_main_role(p.role) or "" for p in audio},
                   key=lambda r: (ROLE_ORDER.index(r.lower()) if r.lower() in ROLE_ORDER else len(ROLE_ORDER), r))
    for role in roles:
        role_pieces = [p for p in audio if (_main_role(p.role) or "") == role]
        for i, group in enumerate(_first_fit(role_pieces)):
            name = (role or "Audio") if i == 0 else f"{role or 'Audio'} ({i + 1})"
            track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
            if role:
                track.metadata[NS] = {"role": role.lower()}
            tracks.append((track, group))
    seq_end = seconds(seq.get("duration"))
    for track, group in tracks:
        fill(reader, track, group, rate)
        tl.tracks.append(track)
    if not tracks:
        reader.notes.append("the project's sequence holds no clips")
    # the primary storyline runs to the sequence's end (trailing gap), as the editor sees it
    for track, _ in tracks:
        if track.kind == otio.schema.TrackKind.Video and track.metadata[NS].get("lane") == 0:
            end = _frames(seq_end * rate)
            have = track.duration().value
            if end > have:
                track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, frate),
                                                                    RationalTime(end - have, frate))))
            break
    place_transitions(reader, tracks, rate)
    return tl

def fill(reader: Reader, track: otio.schema.Track, group: list[Piece], rate: Fraction) -> None:
    frate = float(rate)
    cursor = 0
    for p in sorted(group, key=lambda p: p.rec0):
        f0, f1 = _frames(p.rec0 * rate), _frames(p.rec1 * rate)
        if f1 <= f0:
            continue
        if f0 > cursor:
            track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, frate),
                                                                RationalTime(f0 - cursor, frate))))
        track.append(clip(reader, p, f1 - f0, rate))
        cursor = f1

def clip(reader: Reader, p: Piece, frames, rate: Fraction) -> otio.schema.Clip:
    srate = float(p.src_rate)
    src_start = RationalTime(_frames(p.src0 * p.src_rate), srate)
    ref = None
    if p.generator:
        ref = otio.schema.GeneratorReference(name=p.name, generator_kind=p.generator)
    elif p.url:
        avail = None
        if p.available is not None:
            avail = TimeRange(RationalTime(_frames(p.available[0] * p.src_rate), srate),
                              RationalTime(_frames(p.available[1] * p.src_rate), srate))
        ref = otio.schema.ExternalReference(target_url=p.url, available_range=avail)
    clip = otio.schema.Clip(name=p.name, media_reference=ref,
                            source_range=TimeRange(src_start, RationalTime(frames, float(rate))))
    clip.enabled = p.enabled
    if p.speed == 0:   # a held frame (a timeMap whose value stands still)
        clip.effects.append(otio.schema.FreezeFrame(name="freeze"))
    elif p.speed != 1:
        clip.effects.append(otio.schema.LinearTimeWarp(name="speed", time_scalar=float(p.speed)))
    clip.metadata[NS] = p.s2v
    clip.metadata["fcpxml"] = {"element": p.node.tag, "ref": p.node.get("ref") or "", "lane": p.lane,
                               **({"role": p.role} if p.role else {})}
    for r0, r1, name, color, note, kind in p.markers:
        # OTIO keeps clip markers in the source_range's own time, where one unit is one unit of
        # record time (speed effects apply after it): not in media time
        ms = p.src0 + (r0 - p.rec0)
        md = r1 - r0
        clip.markers.append(otio.schema.Marker(
            name=name, color=color, comment=note,
            marked_range=TimeRange(RationalTime(_frames(ms * p.src_rate), srate),
                                   RationalTime(_frames(md * p.src_rate), srate)),
            metadata={"fcpxml": {"kind": kind}}))
    return clip

def place_transitions(reader: Reader, tracks, rate: Fraction) -> None:
    frate = float(rate)
    for tr in reader.transitions:
        placed = False
        for track, _ in tracks:
            if track.kind != otio.schema.TrackKind.Video or track.metadata[NS].get("lane") != tr.lane:
                continue
            f0, f1 = _frames(tr.rec0 * rate), _frames(tr.rec1 * rate)
            pos = 0
            for i, item in enumerate(list(track)):
                dur = item.duration().value
                cut = pos + dur
                if f0 <= cut <= f1 and i + 1 < len(track) and isinstance(item, otio.schema.Clip) \
                        and isinstance(track[i + 1], otio.schema.Clip) \
                        and not isinstance(track[i + 1], otio.schema.Transition):
                    track.insert(i + 1, otio.schema.Transition(
                        name=tr.name, transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                        in_offset=RationalTime(cut - f0, frate), out_offset=RationalTime(f1 - cut, frate)))
                    placed = True
                    break
                pos = cut
            break
        if not placed:
            reader.notes.append(f"transition '{tr.name}' at {reader.tc(tr.rec0)}-{reader.tc(tr.rec1)} is not "
                              "between two clips (a fade from or to nothing); kept only as this note")


def _frames(value: Fraction):
    """A frame count as OTIO holds it: an int when whole, else the exact value as a float."""
    value = Fraction(value)
    return int(value) if value.denominator == 1 else float(value)


def _first_fit(pieces: list[Piece]) -> list[list[Piece]]:
    groups: list[list[Piece]] = []
    for p in sorted(pieces, key=lambda p: (p.rec0, p.rec1)):
        for g in groups:
            if g[-1].rec1 <= p.rec0:
                g.append(p)
                break
        else:
            groups.append([p])
    return groups
