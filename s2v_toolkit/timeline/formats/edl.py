"""CMX 3600 EDL: reader and writer.

An EDL does not state its frame rate (23.976 vs 24 and 29.97 vs 30 cannot be told apart): the caller
gives it, or it is guessed from the timecodes with a note. otio-cmx3600-adapter starts the cut at 0 and
keeps event 1's record timecode as a negative track trim; the toolkit makes it the timeline's start.
"""

from __future__ import annotations

import re
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats.base import TimelineFormat, adapter_read_file, adapter_read_string
from s2v_toolkit.timeline.formats.edl_channels import channel_tracks, channels_from_aud, layer_overlaps
from s2v_toolkit.timeline.formats.edl_text import (
    header_drop_frame, invalid_cdl_lines, missing_transition_types, normalize_timecodes, source_drop_modes,
    split_edits,
)
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE
from s2v_toolkit.timeline.timecode import RationalTime, can_drop_frame, rate_fraction, timecode

ADAPTER = "cmx_3600"


def read(path: Path, *, rate: float | None = None) -> LoadedTimeline:
    notes: list[str] = []
    if rate is None:
        rate, note = guess_edl_rate(path)
        notes.append(note)
    text = path.read_text(errors="replace")
    r = float(rate)
    # each pass rewrites the list's text for the adapter and says what it changed: timecode spellings
    # first (the later passes read timecodes), then event structure, then channels and layers
    passes = (lambda t: normalize_timecodes(t, r, can_drop_frame(r)), missing_transition_types, split_edits,
              invalid_cdl_lines, lambda t: drop_backwards_events(t, r), lambda t: normalize_source_out(t, r),
              channels_from_aud, lambda t: layer_overlaps(t, _frames_at(r)))
    fixed = strip_eof_padding(text)
    for fix in passes:
        fixed, fixes = fix(fixed)
        notes.extend(fixes)
    try:
        if fixed == text:
            timeline = adapter_read_file(path, ADAPTER, notes, rate=float(rate))
        else:
            timeline = adapter_read_string(path, fixed, ADAPTER, notes, rate=float(rate))
    except TimelineError as exc:
        if "transaction_id" in exc.problem:   # the adapter's own error fails on a typo: say what it meant
            raise TimelineError(path, _unpaired_number(fixed)) from exc
        if "transition" not in exc.problem.lower():
            raise
        # otio-cmx3600-adapter cannot place a dissolve whose outgoing clip is not the previous event
        # on the same channel: read those dissolves as cuts at their start, and say so
        fixed, cut_notes = dissolves_as_cuts(fixed)
        if not cut_notes:
            raise
        notes.extend(cut_notes)
        timeline = adapter_read_string(path, fixed, ADAPTER, notes, rate=float(rate))
    _normalize_start(timeline)
    notes.extend(exact_speeds(fixed, timeline, float(rate)))
    notes.extend(loc_markers_at_record(timeline))
    mark_source_modes(timeline, fixed, float(rate))
    name_media(timeline)
    md = {"drop_frame": header_drop_frame(text) and can_drop_frame(float(rate))}
    if timeline.global_start_time is not None:
        md["start_timecode"] = timecode(timeline.global_start_time, float(rate), md["drop_frame"])
    timeline.metadata[METADATA_NAMESPACE] = {**dict(timeline.metadata.get(METADATA_NAMESPACE, {})), **md}
    return LoadedTimeline(timeline=timeline, path=path, adapter=ADAPTER, notes=notes)


def _frames_at(rate: float):
    from s2v_toolkit.media import timecode_to_frames

    r = rate_fraction(rate)
    return lambda tc: timecode_to_frames(tc, r)


_EDL_EVENT = re.compile(
    r"^(\s*\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+\S+\s+\S+\s+)(\d\d:\d\d:\d\d[:;]\d\d)(\s+)"
    r"(\d\d:\d\d:\d\d[:;]\d\d)(.*)$")


def _normalize_start(timeline: otio.schema.Timeline) -> None:
    """otio-cmx3600-adapter starts each track at its own first event and keeps that event's record
    timecode as a negative track trim (different per track when channels start at different times:
    the tracks that start later then show nothing at all). The earliest becomes the timeline's start
    timecode (what OTIO means by it), and each later track gets a leading gap of the difference, so
    every clip sits at its own record timecode."""
    offsets = {}
    for t in timeline.tracks:
        sr = t.source_range
        if sr is not None and sr.start_time.value < 0:
            offsets[id(t)] = -sr.start_time
    if not offsets or timeline.global_start_time is not None:
        return
    # a track whose first event is at record 00:00:00:00 has no trim left (the adapter drops a source
    # range equal to the track's extent): it starts at 0
    rate = next(iter(offsets.values())).rate
    for t in timeline.tracks:
        if t.source_range is None and id(t) not in offsets:
            offsets[id(t)] = otio.opentime.RationalTime(0, rate)
    first = min(offsets.values(), key=lambda o: o.value)
    for t in timeline.tracks:
        if id(t) not in offsets:
            continue
        lead = offsets[id(t)] - first
        t.source_range = None
        if lead.value > 0:
            t.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, lead.rate), lead)))
    timeline.global_start_time = first


def shift_edl_record(text: str, offset: RationalTime, rate: float) -> str:
    """Add ``offset`` to the record in/out timecodes of every event (the EDL writer starts at 0)."""
    out = []
    for line in text.splitlines():
        m = _EDL_EVENT.match(line)
        if m:
            drop = ";" in m.group(2)
            rec_in = otio.opentime.from_timecode(m.group(2), rate) + offset.rescaled_to(rate)
            rec_out = otio.opentime.from_timecode(m.group(4), rate) + offset.rescaled_to(rate)
            line = (m.group(1) + otio.opentime.to_timecode(rec_in, rate, drop) + m.group(3)
                    + otio.opentime.to_timecode(rec_out, rate, drop) + m.group(5))
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


_EVENT_TC = re.compile(
    r"^(\s*\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+)(\d\d:\d\d:\d\d[:;]\d\d)(\s+)(\d\d:\d\d:\d\d[:;]\d\d)"
    r"(\s+)(\d\d:\d\d:\d\d[:;]\d\d)(\s+)(\d\d:\d\d:\d\d[:;]\d\d)(.*)$")


def normalize_source_out(text: str, rate: float) -> tuple[str, list[str]]:
    """Events whose source length differs from their record length without a speed (M2) line: the
    record side is what the editor sees (a leader or black with a 00:00:00:00 source, a trimmed
    list); the source out is made in + record length, with a note (otio-cmx3600-adapter refuses
    the whole file otherwise)."""
    from s2v_toolkit.media import frames_to_timecode, timecode_to_frames

    r = rate_fraction(rate)
    lines = text.splitlines()
    notes: list[str] = []
    for i, line in enumerate(lines):
        m = _EVENT_TC.match(line)
        if not m:
            continue
        # an M2 line belongs to the event it follows or precedes (before the next event line)
        j = i + 1
        speed = False
        while j < len(lines) and not _EVENT_TC.match(lines[j]):
            speed = speed or lines[j].lstrip().startswith("M2")
            j += 1
        if speed or (i > 0 and lines[i - 1].lstrip().startswith("M2")):
            continue
        try:
            si, so, ri, ro = (timecode_to_frames(m.group(k), r) for k in (2, 4, 6, 8))
        except ValueError:
            continue
        if so - si == ro - ri or ro <= ri:
            continue
        new_out = frames_to_timecode(si + (ro - ri), r, drop_frame=";" in m.group(4))
        notes.append(f"event {line.split()[0]} ({m.group(6)}-{m.group(8)}): source {m.group(2)}-{m.group(4)} is not "
                     f"as long as its record range; read as {m.group(2)}-{new_out}")
        lines[i] = m.group(1) + m.group(2) + m.group(3) + new_out + "".join(m.group(k) for k in (5, 6, 7, 8, 9))
    return "\n".join(lines) + ("\n" if text.endswith("\n") else ""), notes


def _unpaired_number(text: str) -> str:
    """Why a list with two event lines of one number that are not a cut + transition pair is refused."""
    events = [line for line in text.splitlines() if _EVENT_TC.match(line)]
    for a, b in zip(events, events[1:]):
        if a.split()[0] == b.split()[0] and not re.match(r"^(D|W\d+|K[BO]?)$", b.split()[3]):
            return (f"event {a.split()[0]} is listed twice and the second line is not a transition (D, W### or K): "
                    "the list's event numbers cannot tell which events they are")
    return "two event lines share an event number but are not a cut and its transition"


def strip_eof_padding(text: str) -> str:
    """Lists written on DOS-era systems end with a Ctrl-Z end-of-file mark, often padded with NUL bytes
    to a block size: nothing after the mark is part of the list. Note lines in the header, before the
    first event (``*FCM: DIGITAL TV 24P``, ``* COMMENT:``), describe no event; the reader refuses the
    whole list for them, so they are not passed on."""
    lines = text.split("\x1a", 1)[0].replace("\x00", "").splitlines()
    # the first event: a line that starts with its number and ends with the record in/out (the source
    # columns may be frame numbers; any separator spelling)
    tc = r"\d\d[:;]\d\d[:;]\d\d[:;]\d\d"
    event = re.compile(rf"^\s*\d+\s+\S.*\s{tc}\s+{tc}\s*$")
    first = next((i for i, line in enumerate(lines) if event.match(line)), len(lines))
    keep = [line for i, line in enumerate(lines)
            if i >= first or not line.strip() or re.match(r"^\s*(TITLE|FCM)\b", line)]
    return "\n".join(keep) + ("\n" if text.endswith("\n") or "\x1a" in text else "")


def drop_backwards_events(text: str, rate: float) -> tuple[str, list[str]]:
    """Single-line events whose record out is before their record in (Final Cut writes such black
    events at the end of a list), or with no record length but a source range (Premiere), cannot be
    placed: they are left out with their note lines, and each is named in a note."""
    to_frames = _frames_at(rate)
    lines = text.splitlines()
    events = [i for i, line in enumerate(lines) if _EVENT_TC.match(line)]
    drop: set[int] = set()
    notes: list[str] = []
    for k, i in enumerate(events):
        m = _EVENT_TC.match(lines[i])
        number = lines[i].split()[0]
        paired = any(0 <= j < len(events) and lines[events[j]].split()[0] == number for j in (k - 1, k + 1))
        try:
            rec_len = to_frames(m.group(8)) - to_frames(m.group(6))
            src_len = to_frames(m.group(4)) - to_frames(m.group(2))
        except ValueError:
            continue
        if paired or rec_len > 0 or (rec_len == 0 and src_len == 0):
            continue
        end = events[k + 1] if k + 1 < len(events) else len(lines)
        drop.update(range(i, end))
        why = "record out before record in" if rec_len < 0 else "no record length but a source range"
        notes.append(f"event {number} ({m.group(6)}-{m.group(8)}): {why}; left out")
    if not drop:
        return text, []
    out = [line for i, line in enumerate(lines) if i not in drop]
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), notes


def dissolves_as_cuts(text: str) -> tuple[str, list[str]]:
    """Drop the zero-length outgoing half of each dissolve/wipe pair and make the transition event a
    cut (its incoming clip starts at the transition's record in)."""
    lines = text.splitlines()
    out, notes = [], []
    for i, line in enumerate(lines):
        m = _EVENT_TC.match(line)
        # the next event line (Premiere and Final Cut put an "FCM:" line between the two halves)
        k = next((k for k in range(i + 1, len(lines)) if _EVENT_TC.match(lines[k])), None)
        if m and k is not None and line.split()[0] == lines[k].split()[0] and m.group(6) == m.group(8):
            continue   # the outgoing half: zero record length
        if m and len(line.split()) > 3 and re.match(r"^(D|W\d+|K)$", line.split()[3]):
            parts = line.split()
            notes.append(f"event {parts[0]} ({m.group(6)}-{m.group(8)}): {parts[3]} transition read as a cut "
                         "at its start")
            line = re.sub(r"^(\s*\d+\s+\S+\s+\S+\s+)(?:D|W\d+|K)(\s+)\d+(\s+)", r"\1C  \2\3", line)
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), notes


def unscaled_source_out(src_len: int, rec_len: int, m2_speed: float) -> bool:
    """Whether an M2 event's source length is its record length (unscaled, within a frame) rather
    than the record length times the M2 speed (Avid's scaled source out). One record frame shows one
    source frame either way: the list's range stands."""
    return rec_len > 1 and abs(src_len - rec_len) < abs(src_len - rec_len * m2_speed)


def exact_speeds(text: str, timeline: otio.schema.Timeline, rate: float) -> list[str]:
    """Speed of each M2 event from its own timecodes (source length / record length): the M2 line's
    speed is rounded to 0.1 fps (047.6 for 47.56), so the adapter's time scalar makes the source range
    disagree with the source out the list states; the timecodes are what the editor sees (Avid's
    source out is the last source frame used + 1). Where the source is about as long as the record
    (nearer to it than to record x speed) the source out was written unscaled (in + record length, as
    Resolve and some Avid lists do) and the M2 speed is the one used."""
    from s2v_toolkit.media import timecode_to_frames

    r = rate_fraction(rate)
    lines = text.splitlines()
    wanted: dict[tuple, float] = {}
    for i, line in enumerate(lines):
        m = _EVENT_TC.match(line)
        if not m:
            continue
        tracks = channel_tracks(line.split()[2])
        j = i + 1
        m2s = []
        while j < len(lines) and not _EVENT_TC.match(lines[j]):
            if lines[j].lstrip().startswith("M2"):
                m2s.append(lines[j])
            j += 1
        if not m2s:
            continue
        # a transition pair lists both halves' M2 lines after it: the one naming this event's reel
        m2 = next((x for x in m2s if len(x.split()) > 1 and x.split()[1] == line.split()[1]), m2s[-1])
        try:
            si, so, ri, ro = (timecode_to_frames(m.group(k), r) for k in (2, 4, 6, 8))
        except ValueError:
            continue
        try:
            m2_speed = float(m2.split()[2])
        except (IndexError, ValueError):
            continue
        if ro > ri and so > si and m2_speed != 0:
            speed = (so - si) / (ro - ri)
            if unscaled_source_out(so - si, ro - ri, abs(m2_speed) / float(r)):
                # the source out is in + record length (Resolve, some Avid lists): it does not state
                # the source used, the M2 speed does (a 2.5x event shows 2.5 source frames per record frame)
                speed = abs(m2_speed) / float(r)
            # reverse (negative M2 speed) plays the same source range backwards
            for track in tracks:
                # keyed by track and record range: a multi-track list has several events at one record in
                wanted[(track, ri, ro)] = speed * (-1 if m2_speed < 0 else 1)
    if not wanted:
        return []
    start = timeline.global_start_time
    fixed = 0
    for track in timeline.tracks:
        for clip in track.find_clips(shallow_search=True):
            warps = [e for e in clip.effects if isinstance(e, otio.schema.LinearTimeWarp)]
            if len(warps) > 1 or any(isinstance(w, otio.schema.FreezeFrame) or w.time_scalar == 0 for w in warps):
                continue
            span = clip.transformed_time_range(clip.trimmed_range(), timeline.tracks)
            rec = span.start_time if start is None else span.start_time + start
            r0 = round(rec.rescaled_to(rate).value)
            key = (track.name, r0, r0 + round(span.duration.rescaled_to(rate).value))
            if key not in wanted:
                continue
            if not warps:   # the adapter dropped it (e.g. a reverse M2 at the record rate)
                clip.effects.append(otio.schema.LinearTimeWarp(name="M2", time_scalar=wanted[key]))
                fixed += 1
            elif wanted[key] != warps[0].time_scalar:
                warps[0].time_scalar = wanted[key]
                fixed += 1
    return [f"{fixed} speed effect(s) read from their event's source/record timecodes "
            "(the M2 speed is rounded)"] if fixed else []


# reels that name no file: black, auxiliary source (Premiere and Resolve write AX for file-based media)
_NO_FILE_REELS = {"BL", "BLK", "BLACK", "AX", "AUX"}
_FILE_COMMENT = re.compile(r"^\s*(?:SOURCE FILE|FROM FILE)\s*:\s*(.+?)\s*$", re.I)


def name_media(timeline: otio.schema.Timeline) -> None:
    """An EDL holds no file references (the adapter gives every clip a MissingReference); what it holds
    are names: ``* SOURCE FILE:`` / ``* FROM FILE:`` comments (Avid, Resolve), the clip name
    (``* FROM CLIP NAME:``, often the file's name) and the reel. They go on the reference, in that
    order, as ``media_names``, for the media resolver to find the files by (timeline folder, --search)."""
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if not isinstance(ref, otio.schema.MissingReference):
            continue
        cmx = clip.metadata.get("cmx_3600", {})
        names = []
        for comment in cmx.get("comments", []) or []:
            m = _FILE_COMMENT.match(str(comment))
            if m:
                names.append(m.group(1))
        names.append(clip.name or "")
        reel = str(cmx.get("reel") or "").strip()
        if reel.upper() not in _NO_FILE_REELS:
            names.append(reel)
        names = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
        if names:
            md = dict(ref.metadata.get(METADATA_NAMESPACE, {}))
            md["media_names"] = names
            ref.metadata[METADATA_NAMESPACE] = md


def mark_source_modes(timeline: otio.schema.Timeline, text: str, rate: float) -> None:
    """Clips of events whose source tape's frame code mode differs from the record's (an FCM line
    before the event): their source timecodes are shown in the source's own mode."""
    modes = source_drop_modes(text)
    if not modes or not can_drop_frame(rate):
        return
    at = {}
    for (code, a, b), drop in modes.items():
        for track in channel_tracks(code):
            at[(track, round(otio.opentime.from_timecode(a, rate).value),
                round(otio.opentime.from_timecode(b, rate).value))] = drop
    start = timeline.global_start_time
    for track in timeline.tracks:
        for clip in track.find_clips(shallow_search=True):
            span = clip.transformed_time_range(clip.trimmed_range(), timeline.tracks)
            rec = span.start_time if start is None else span.start_time + start
            r0 = round(rec.rescaled_to(rate).value)
            drop = at.get((track.name, r0, r0 + round(span.duration.rescaled_to(rate).value)))
            if drop is not None:
                md = dict(clip.metadata.get(METADATA_NAMESPACE, {}))
                md["source_drop_frame"] = drop
                clip.metadata[METADATA_NAMESPACE] = md


def loc_markers_at_record(timeline: otio.schema.Timeline) -> list[str]:
    """``* LOC: TC`` gives a RECORD timecode; otio-cmx3600-adapter stores it as the clip's source time,
    so a marker on a clip whose source and record timecodes differ lands elsewhere (a marker at
    01:05:43:16 read at 02:11:27:08). Markers whose time lies in the clip's record range are moved
    into its source time. Avid lists a LOC that sits on filler (a black slug) under the next event:
    its time is then in neither of the clip's ranges but inside the cut; it is placed at that record
    time too (before the clip's own start). A LOC in neither range nor the cut is left as read."""
    start = timeline.global_start_time
    moved = left = 0
    cuts = []
    for track in timeline.tracks:
        span = track.trimmed_range()
        if start is not None:
            span = otio.opentime.TimeRange(span.start_time + start, span.duration)
        cuts.append(span)
    for clip in timeline.find_clips():
        if not clip.markers:
            continue
        rec = clip.transformed_time_range(clip.trimmed_range(), timeline.tracks)
        if start is not None:
            rec = otio.opentime.TimeRange(rec.start_time + start, rec.duration)
        src = clip.trimmed_range()
        for m in clip.markers:
            t = m.marked_range.start_time
            if rec.start_time == src.start_time:
                continue
            in_record = rec.start_time <= t < rec.end_time_exclusive()
            in_source = src.start_time <= t < src.end_time_exclusive()
            in_cut = any(c.start_time <= t < c.end_time_exclusive() for c in cuts)
            if in_record or (not in_source and in_cut):
                offset = (t - rec.start_time).rescaled_to(src.start_time.rate)
                m.marked_range = otio.opentime.TimeRange(src.start_time + offset, m.marked_range.duration)
                moved += 1
            elif not in_source:
                left += 1
    notes = [f"{moved} LOC marker(s) placed at their record timecode"] if moved else []
    if left:
        notes.append(f"{left} LOC marker(s) name a time in neither their event's record nor source range nor "
                     "the cut; left at the source time they name")
    return notes


def guess_edl_rate(p: Path) -> tuple[float, str]:
    """Best guess of an EDL's frame rate from its FCM line and the largest frame number used."""
    text = p.read_text(errors="replace")
    drop = bool(re.search(r"^\s*FCM:\s*DROP", text, re.M | re.I))
    frames = [int(m) for m in re.findall(r"\d\d[:;]\d\d[:;]\d\d[:;.](\d\d)", text)]
    top = max(frames, default=0)
    if top >= 50 or (drop and top >= 30):   # 59.94/60 fps lists (frame numbers past 29 exist only there)
        rate = 60000 / 1001
    elif top >= 30:
        rate = 50.0
    elif drop or top >= 25:
        rate = 30000 / 1001
    elif top == 24:
        rate = 25.0
    else:
        rate = 24.0
    return rate, f"EDL rate not given; assumed {float(rate_fraction(rate)):.3f} fps (pass the rate to be exact)"


def write(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    # The EDL writer counts record timecode from 0: put the cut back at its real record start.
    text = otio.adapters.write_to_string(timeline, adapter_name=ADAPTER, **kwargs)
    start = timeline.global_start_time
    rate = kwargs.get("rate") or timeline.tracks[0].duration().rate
    if start is not None and start.value:
        text = shift_edl_record(text, start, rate)
    drop = dict(timeline.metadata.get(METADATA_NAMESPACE, {})).get("drop_frame")
    if drop is not None and can_drop_frame(float(rate)):
        text = frame_code_mode(text, float(rate), bool(drop))
    renders = {_file_name(clip.media_reference.target_url) for clip in timeline.find_clips()
               if isinstance(clip.media_reference, otio.schema.ExternalReference)
               and "source_clips" in dict(clip.metadata.get(METADATA_NAMESPACE, {}))}  # a conform's render
    Path(path).write_text(name_source_files(text, renders))


def _file_name(url: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path if "://" in url else url).replace("\\", "/").rsplit("/", 1)[-1]


def name_source_files(text: str, names: set[str]) -> str:
    """After each ``* FROM CLIP: <url>`` note (OTIO's own) of a file in ``names`` (the renders: the editor's
    own events are written as they were), the file's name as ``* SOURCE FILE:``: the note Avid and
    Resolve write and relink by (an EDL holds no paths they read), and that this reader finds media by."""
    out = []
    for line in text.splitlines(keepends=True):
        out.append(line)
        m = re.match(r"^\*\s*FROM CLIP:\s*(\S.*?)\s*$", line)
        if m and _file_name(m.group(1)) in names:
            out.append(f"* SOURCE FILE: {_file_name(m.group(1))}\n")
    return "".join(out)


def frame_code_mode(text: str, rate: float, drop: bool) -> str:
    """The writer spells 29.97/59.94 timecodes drop-frame whatever the list was: write them in the
    list's own mode (the same frames) and say which in an FCM line after the title."""
    def spell(m: re.Match) -> str:
        t = otio.opentime.from_timecode(m.group(0), rate)
        return otio.opentime.to_timecode(t, rate, drop)

    out, fcm = [], f"FCM: {'DROP FRAME' if drop else 'NON-DROP FRAME'}"
    for line in text.splitlines():
        if re.match(r"^\s*FCM:", line):
            continue
        if _EVENT_TC.match(line):
            line = re.sub(r"\d\d:\d\d:\d\d[:;]\d\d", spell, line)
        out.append(line)
        if line.startswith("TITLE:"):
            out.append(fcm)
    if not any(x.startswith("TITLE:") for x in out):
        out.insert(0, fcm)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


FORMAT = TimelineFormat(ADAPTER, ".edl", read, write, write_additions=None, description="CMX 3600 EDL")
