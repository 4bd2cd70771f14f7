"""CMX 3600 timecode and edit-type spellings real lists use that the OTIO reader misreads or refuses.

- Drop-frame lists: ``FCM: DROP FRAME`` governs the events after it, but Avid and Final Cut write the
  timecodes with colons (``01:00:06:17``); the reader takes a colon timecode as non-drop, so every time
  lands 3;18 late per hour. Timecodes under a DROP FRAME mode are given their ``;``.
- Some lists (Final Cut Pro's EDL-X) separate every field with ``;`` (``10;35;42;53``).
- A split edit (``SPLIT:`` before two lines of one event) is read as two events.
- A transition line whose edit type is missing (``005  REEL  V      008  ...``: Avid writes it so for a
  dissolve-like effect it has no CMX code for) is read as a dissolve of that length, with a note.
"""

from __future__ import annotations

import re

_TC = r"\d\d[:;]\d\d[:;]\d\d[:;]\d\d"
_EVENT = re.compile(rf"^\s*\d+\s+.*?({_TC})\s+({_TC})\s+({_TC})\s+({_TC})\s*$")
_FCM = re.compile(r"^\s*FCM:\s*(NON[- ]?DROP|DROP)", re.I)
_MISSING_TYPE = re.compile(rf"^(\s*(\d+)\s+\S+\s+\S+\s+)(\d{{3}})(\s+{_TC})")


def _drop_tc(tc: str) -> str:
    return tc[:8] + ";" + tc[9:]


def _colon_tc(tc: str) -> str:
    """``10;35;42;53`` -> ``10:35:42;53`` (the reader splits hours/minutes/seconds on colons)."""
    return tc[:2] + ":" + tc[3:5] + ":" + tc[6:8] + tc[8] + tc[9:]


def header_drop_frame(text: str) -> bool:
    """The list's record frame code mode: the last FCM line before the first event."""
    drop = False
    for line in text.splitlines():
        if _EVENT.match(line):
            break
        m = _FCM.match(line)
        if m:
            drop = m.group(1).upper() == "DROP"
    return drop


def normalize_timecodes(text: str, rate: float, can_drop: bool) -> tuple[str, list[str]]:
    """Event, M2 and LOC timecodes spelled as the reader understands them (see the module doc).

    The FCM line before the first event gives the record mode; an FCM line between events gives the
    mode of the source timecodes from there on (Avid writes one wherever a source tape's mode
    changes). The reader takes M2 and LOC timecodes with colons only (a ``;`` M2 fails the list, a
    ``;`` LOC is dropped): an M2's is written with colons (its value is not used), a drop-frame LOC as
    the colon timecode of the same frame number."""
    from fractions import Fraction

    from s2v_toolkit.media import frames_to_timecode, timecode_to_frames

    r = Fraction(rate).limit_denominator(1001)
    lines = text.splitlines()
    rec_drop = header_drop_frame(text)
    src_drop = rec_drop
    dropped = semis = 0

    def spell(tc: str, drop: bool) -> str:
        nonlocal dropped, semis
        if tc[2] == ";" or tc[5] == ";":
            tc = _colon_tc(tc)
            semis += 1
        if drop and can_drop and tc[8] == ":":
            tc = _drop_tc(tc)
            dropped += 1
        return tc

    for i, line in enumerate(lines):
        m = _FCM.match(line)
        if m:
            src_drop = m.group(1).upper() == "DROP"
            continue
        ev = _EVENT.match(line)
        if ev:
            tcs = [spell(ev.group(1), src_drop), spell(ev.group(2), src_drop),
                   spell(ev.group(3), rec_drop), spell(ev.group(4), rec_drop)]
            pos = [ev.span(k) for k in range(1, 5)]
            out = line[:pos[0][0]]
            for k in range(4):
                out += tcs[k] + line[pos[k][1]:pos[k + 1][0] if k < 3 else len(line)]
            lines[i] = out
        elif line.lstrip().startswith("M2"):
            lines[i] = re.sub(_TC, lambda m: m.group(0).replace(";", ":"), line)
        elif re.match(r"^\s*\*\s*LOC:", line):
            def loc(m: re.Match) -> str:
                tc = spell(m.group(0), rec_drop)
                return frames_to_timecode(timecode_to_frames(tc, r), r, drop_frame=False) if tc[8] == ";" else tc
            lines[i] = re.sub(_TC, loc, line)
    notes = []
    if dropped:
        notes.append(f"{dropped} timecode(s) under FCM: DROP FRAME written with colons read as drop-frame")
    if semis:
        notes.append(f"{semis} timecode(s) written hh;mm;ss;ff read as drop-frame timecodes")
    if lines == text.splitlines():
        return text, notes
    return "\n".join(lines) + ("\n" if text.endswith("\n") else ""), notes


def source_drop_modes(text: str) -> dict[tuple[str, str, str], bool]:
    """{(channel code, record in, record out): source is drop-frame} for the events whose source mode
    (the FCM line before them) differs from the record's (the list's header)."""
    rec_drop = header_drop_frame(text)
    src_drop = rec_drop
    out = {}
    for line in text.splitlines():
        m = _FCM.match(line)
        if m:
            src_drop = m.group(1).upper() == "DROP"
            continue
        ev = _EVENT.match(line)
        if ev and src_drop != rec_drop and len(line.split()) > 2:
            out[(line.split()[2], ev.group(3), ev.group(4))] = src_drop
    return out


def missing_transition_types(text: str) -> tuple[str, list[str]]:
    """The second line of a transition pair with a length but no edit type: read as a dissolve ``D``."""
    lines = text.splitlines()
    events = [i for i, line in enumerate(lines) if _EVENT.match(line)]
    fixed = []
    for k, i in enumerate(events):
        m = _MISSING_TYPE.match(lines[i])
        if not m or k == 0 or lines[events[k - 1]].split()[0] != m.group(2):
            continue
        lines[i] = m.group(1) + "D    " + m.group(3) + lines[i][m.end(3):]
        fixed.append(m.group(2))
    if not fixed:
        return text, []
    return ("\n".join(lines) + ("\n" if text.endswith("\n") else ""),
            [f"{len(fixed)} transition(s) with a length but no edit type read as dissolves "
             f"(events {', '.join(fixed[:5])}{'...' if len(fixed) > 5 else ''})"])


def split_edits(text: str) -> tuple[str, list[str]]:
    """``SPLIT: AUDIO DELAY=`` / ``VIDEO DELAY=`` before two event lines of one number (a split edit:
    picture and sound cut at different times). The reader takes the pair for a transition and fails;
    the two lines are read as two events (the second under a free event number), each with the
    event's note lines, and the SPLIT line is left out."""
    lines = text.splitlines()
    numbers = [int(line.split()[0]) for line in lines if _EVENT.match(line)]
    free = max(numbers, default=0) + 1
    out: list[str] = []
    notes: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\s*SPLIT\s*:", line, re.I):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            k = j + 1
            first = _EVENT.match(lines[j]) if j < len(lines) else None
            second = _EVENT.match(lines[k]) if k < len(lines) else None
            if first and second and lines[j].split()[0] == lines[k].split()[0]:
                end = k + 1
                while end < len(lines) and not _EVENT.match(lines[end]) \
                        and not re.match(r"^\s*(SPLIT|FCM)\b", lines[end], re.I):
                    end += 1
                comments = [c for c in lines[k + 1:end] if c.strip()]
                number = lines[j].split()[0]
                new_number = str(free).zfill(len(number))
                renumbered = re.sub(r"^(\s*)\d+", lambda m: m.group(1) + new_number, lines[k])
                out += [lines[j], *comments, renumbered, *comments]
                notes.append(f"event {number}: split edit ({' '.join(line.split())}) read as two events, the "
                             f"second numbered {new_number}")
                free += 1
                i = end
                continue
        out.append(line)
        i += 1
    if not notes:
        return text, []
    return "\n".join(out) + ("\n" if text.endswith("\n") else ""), notes


_NUM = r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?"
_SOP = re.compile(rf"^\s*\*\s*ASC_SOP\s*:?\s*(\(\s*{_NUM}\s+{_NUM}\s+{_NUM}\s*\)\s*){{3}}$", re.I)
_SAT = re.compile(rf"^\s*\*\s*ASC_SAT\s*:?\s*{_NUM}\s*$", re.I)


def invalid_cdl_lines(text: str) -> tuple[str, list[str]]:
    """``* ASC_SOP`` / ``* ASC_SAT`` notes whose values are not numbers (``*ASC_SOP: asop1``) make the
    reader refuse the whole list; colour notes describe no cut: they are left out, with a note."""
    lines = text.splitlines()
    bad = [i for i, line in enumerate(lines)
           if (re.match(r"^\s*\*\s*ASC_SOP", line, re.I) and not _SOP.match(line))
           or (re.match(r"^\s*\*\s*ASC_SAT", line, re.I) and not _SAT.match(line))]
    if not bad:
        return text, []
    out = [line for i, line in enumerate(lines) if i not in set(bad)]
    return ("\n".join(out) + ("\n" if text.endswith("\n") else ""),
            [f"{len(bad)} ASC_SOP/ASC_SAT note(s) without numbers left out (colour notes, no cut)"])
