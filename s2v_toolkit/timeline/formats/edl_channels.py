"""CMX 3600 channel fields the OTIO reader does not place: ``AUD 3 4`` notes and events that overlap.

Both rewrite only the channel field of event lines, in place (the list's order and every other field
stay as they are), so otio-cmx3600-adapter puts each event on the tracks the list means:

- A channel-3/4 event is written with channel ``NONE`` (or ``V``, ``A``...) and a note line ``AUD 3``,
  ``AUD 4`` or ``AUD 3 4`` after it (Avid, Premiere): the event is also on A3/A4. A ``NONE`` event
  without one records no channel and is left out (with a note).
- A list of a multi-track cut (Final Cut Pro, Premiere with several video tracks, a hand edit) has
  video events whose record ranges overlap: each such event goes to the lowest free layer, V2, V3...,
  instead of the whole list being refused.
"""

from __future__ import annotations

import re

import opentimelineio as otio

_EVENT = re.compile(
    r"^(\s*\d+\s+.*?\s)(\S+)(\s+(?:C|D|K[BO]?|W\d+)(?:\s+\d+)?\s+)(\d\d:\d\d:\d\d[:;]\d\d)\s+(\d\d:\d\d:\d\d[:;]\d\d)"
    r"\s+(\d\d:\d\d:\d\d[:;]\d\d)\s+(\d\d:\d\d:\d\d[:;]\d\d)(.*)$")
_AUD = re.compile(r"^\s*AUD\s+(\d+)(?:\s+(\d+))?\s*$")


def _blocks(lines: list[str]) -> list[list[int]]:
    """Line indexes of each event: its event line(s) (two for a transition, sharing the number) and
    the note lines after them."""
    blocks: list[list[int]] = []
    number = None
    for i, line in enumerate(lines):
        m = _EVENT.match(line)
        if m:
            n = line.split()[0]
            if blocks and n == number:
                blocks[-1].append(i)   # the incoming half of a transition pair (as the reader pairs them)
            else:
                blocks.append([i])
            number = n
        elif blocks:
            blocks[-1].append(i)
    return blocks


def _channel_map() -> dict[str, list[str]]:
    """The reader's channel shorthand map, from the module OTIO's plugin system runs (it loads the
    adapter from its manifest: not necessarily the module an import here would give)."""
    return otio.adapters.from_name("cmx_3600").module().channel_map


def channel_tracks(code: str) -> list[str]:
    """The reader's track names for a channel code (``AA`` -> A1, A2; ``NONE`` -> none)."""
    return [] if code.upper() == "NONE" else list(_channel_map().get(code, [code]))


def _code_for(tracks: list[str]) -> str:
    """A channel code the reader maps onto exactly these tracks (combinations are added to its map)."""
    if len(tracks) == 1:
        return tracks[0]
    code = "/".join(tracks)
    # the adapter reads any code missing from its map as one track of that name: say which tracks
    _channel_map().setdefault(code, list(tracks))
    return code


def _set_channel(line: str, code: str) -> str:
    m = _EVENT.match(line)
    return m.group(1) + code + line[m.end(2):]


def channels_from_aud(text: str) -> tuple[str, list[str]]:
    """Events with an ``AUD n [m]`` note are also on audio tracks An (and Am). An event on channel
    ``NONE`` without one records no channel (Final Cut and Premiere repeat each dissolve so): it puts
    nothing on any track and is left out, with a note (the reader made a video track "NONE" of them)."""
    lines = text.splitlines()
    changed = 0
    drop: set[int] = set()
    for block in _blocks(lines):
        auds = [m for m in (_AUD.match(lines[j]) for j in block) if m]
        events = [m for m in (_EVENT.match(lines[j]) for j in block) if m]
        if not auds and events and all(m.group(2).upper() == "NONE" for m in events):
            drop.update(block)
            continue
        if not auds:
            continue
        extra = [f"A{int(n)}" for m in auds for n in m.groups() if n]
        for j in block:
            m = _EVENT.match(lines[j])
            if not m:
                continue
            tracks = channel_tracks(m.group(2))
            tracks += [t for t in extra if t not in tracks]
            lines[j] = _set_channel(lines[j], _code_for(tracks))
        changed += 1
    if not changed and not drop:
        return text, []
    notes = [f"{changed} event(s) with an AUD note read onto audio channels 3/4"] if changed else []
    if drop:
        numbers = sorted({lines[j].split()[0] for j in drop if _EVENT.match(lines[j])})
        notes.append(f"{len(numbers)} event(s) on channel NONE (no AUD note: no channel) left out")
    out = "\n".join(line for j, line in enumerate(lines) if j not in drop) + ("\n" if text.endswith("\n") else "")
    return out, notes


def layer_overlaps(text: str, to_frames) -> tuple[str, list[str]]:
    """Video-only events whose record range overlaps an earlier one on its layer go to the lowest
    layer that is free at their record in (V2, V3...). ``to_frames`` turns a timecode into frames."""
    lines = text.splitlines()
    ends: list[int] = []   # record out of the last event on each video layer
    notes: list[str] = []
    for block in _blocks(lines):
        events = [(j, _EVENT.match(lines[j])) for j in block]
        events = [(j, m) for j, m in events if m]
        if any(channel_tracks(m.group(2)) != ["V"] for _, m in events):
            continue
        try:
            rec = [(to_frames(m.group(6)), to_frames(m.group(7))) for _, m in events]
        except ValueError:
            continue
        rec_in, rec_out = rec[-1][0], max(r[1] for r in rec)
        if rec_out <= rec_in:
            continue
        layer = next((k for k, end in enumerate(ends) if end <= rec_in), len(ends))
        if layer == len(ends):
            ends.append(rec_out)
        ends[layer] = rec_out
        if layer:
            for j, _ in events:
                lines[j] = _set_channel(lines[j], f"V{layer + 1}")
            m = events[-1][1]
            notes.append(f"event {lines[events[-1][0]].split()[0]} ({m.group(6)}-{m.group(7)}) overlaps the "
                         f"video events before it: read onto track V{layer + 1}")
    if not notes:
        return text, []
    return "\n".join(lines) + ("\n" if text.endswith("\n") else ""), notes
