"""Corpus check: real EDLs read with each cut event's record and source timecodes as the list says.

Expected values come from the EDL's own event lines (a regex here), never from the adapter: every
cut event ("C", no M2 speed line, no dissolve) must be a clip of its kind (per channel: V, A, A2,
AA, B...) whose record in/out and source in are the event's; speed events use the source range the
list states (or, where the source out is not scaled, the M2 speed); LOC markers sit at their record
timecode. An EDL the toolkit cannot read must fail with one clear line.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from corpus_testkit import corpus_params

from s2v_toolkit.timeline import TimelineError, describe_timeline, read_timeline

pytestmark = pytest.mark.corpus
FILES = corpus_params("timelines", "edl_*.edl")
TC = r"\d\d[:;]\d\d[:;]\d\d[:;]\d\d"
SRC = rf"{TC}|\d+"   # source in/out: a timecode, or a frame number (lists of VFX plates: "1009 1064")
EVENT = re.compile(rf"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+\d+)?\s+({SRC})\s+({SRC})\s+({TC})\s+({TC})\s*$")


def _frames(tc: str, fps: int) -> int:
    if tc.isdigit():
        return int(tc)
    h, m, s, f = (int(x) for x in re.split("[:;]", tc))
    return ((h * 60 + m) * 60 + s) * fps + f


def _source_tc(value: str, fps: int) -> str:
    """A source column as a timecode: a frame number counted at the list's rate."""
    if not value.isdigit():
        return value
    n = int(value)
    return f"{n // (3600 * fps):02d}:{n // (60 * fps) % 60:02d}:{n // fps % 60:02d}:{n % fps:02d}"


def expected_speed_events(text: str, rate: float) -> tuple[Counter, dict]:
    """Video events with an M2 line (not freeze frames). Where the source out is scaled by the speed
    (Avid: the last source frame used + 1) the source range used is the one the list states:
    (record in, out, source in, out). Where the source is nearer the record length than the record
    length x the M2 speed, the source out was written unscaled (Resolve, some Avid lists): the speed
    used is the M2 speed over the rate, {(record in, out): speed}."""
    lines = text.splitlines()
    fps = round(rate)
    events = [(i, m) for i, m in ((i, EVENT.match(x)) for i, x in enumerate(lines)) if m]
    ranges, speeds = Counter(), {}
    for k, (i, m) in enumerate(events):
        nxt = events[k + 1][0] if k + 1 < len(events) else len(lines)
        m2 = [b for b in lines[i + 1:nxt] if b.lstrip().startswith("M2")]
        _, reel, chan, trans, s_in, s_out, r_in, r_out = m.groups()
        # a transition pair lists both halves' M2 lines: each names the reel it retimes
        m2 = [b for b in m2 if b.split()[1] == reel] or m2[-1:]
        if not (m2 and "V" in chan.upper() and float(m2[0].split()[2]) != 0 and s_in != s_out):
            continue
        m2_fps = abs(float(m2[0].split()[2]))
        s_len, r_len = _frames(s_out, fps) - _frames(s_in, fps), _frames(r_out, fps) - _frames(r_in, fps)
        if r_len > 1 and abs(s_len - r_len) < abs(s_len - r_len * m2_fps / rate):
            speeds[(r_in, r_out)] = m2_fps / rate
        else:
            ranges[(r_in, r_out, _source_tc(s_in, fps), _source_tc(s_out, fps))] += 1
    return ranges, speeds


def _kinds(chan: str) -> list[str]:
    """Clips one event puts on tracks: V video, A/A2/A3... one audio, AA two audio, B picture + sound."""
    chan = chan.upper()
    out = []
    for part in chan.split("/"):
        if part == "V":
            out.append("video")
        elif part == "B":
            out += ["video", "audio"]
        elif part == "AA":
            out += ["audio", "audio"]
        elif re.fullmatch(r"A\d*", part):
            out.append("audio")
    return out


def expected_cuts(text: str, fps: int) -> Counter:
    """Cut events ("C", no M2 speed line, not half of a dissolve pair): (kind, record in, out, source in);
    a source frame number as the timecode of that frame at the list's rate ``fps``."""
    lines = text.splitlines()
    events = [(i, m) for i, m in ((i, EVENT.match(x)) for i, x in enumerate(lines)) if m]
    out = Counter()
    for k, (i, m) in enumerate(events):
        nxt = events[k + 1][0] if k + 1 < len(events) else len(lines)
        body = lines[i + 1:nxt]
        prev_num = events[k - 1][1].group(1) if k else None
        _, reel, chan, trans, s_in, s_out, r_in, r_out = m.groups()
        if trans != "C" or any(b.lstrip().startswith("M2") for b in body):
            continue
        if prev_num == m.group(1) or (k + 1 < len(events) and events[k + 1][1].group(1) == m.group(1)):
            continue   # one half of a dissolve pair
        if r_out <= r_in:   # zero length, or a record out before its in (no place on the cut)
            continue
        # an "AUD 3", "AUD 4" or "AUD 3 4" note puts the event on audio channels 3/4 as well
        auds = [len(b.split()) - 1 for b in body if re.match(r"^\s*AUD\s+\d", b)]
        for kind in _kinds(chan) + ["audio"] * sum(auds):
            out[(kind, r_in, r_out, _source_tc(s_in, fps))] += 1
    return out


def _colons(tc: str) -> str:
    return tc.replace(";", ":")


def expected_locators(text: str) -> Counter:
    """LOC timecodes inside the cut (between the first record in and the last record out: a LOC that
    names a time outside the cut is no record timecode of it)."""
    rec = [(m.group(7), m.group(8)) for m in map(EVENT.match, text.splitlines()) if m]
    first, last = min(r[0] for r in rec), max(r[1] for r in rec)
    return Counter(t for t in re.findall(rf"^\*\s*LOC:\s*({TC})", text, re.M) if first <= t < last)


@pytest.mark.parametrize("path", FILES)
def test_edl_cut_events_read_at_their_timecodes(path):
    text = path.read_text(errors="replace")
    try:
        desc = describe_timeline(read_timeline(path), check_media=False)
    except TimelineError as exc:   # not read: it must say so in one line naming the file
        assert str(path) in str(exc) and "\n" not in str(exc)
        pytest.xfail(f"not read: {exc}")
    doc = desc.to_dict()
    # a drop-frame list may write its timecodes with colons (FCM: DROP FRAME says which): compare digits
    text = re.sub(rf"{TC}", lambda m: _colons(m.group(0)), text)
    for c in doc["clips"]:
        for side in ("record", "source", "media_range"):
            for end in ("tc_in", "tc_out"):
                if c[side].get(end):
                    c[side][end] = _colons(c[side][end])
        for m in c["markers"]:
            m["record"]["tc_in"] = _colons(m["record"]["tc_in"])
    got = Counter((c["kind"], c["record"]["tc_in"], c["record"]["tc_out"], c["source"]["tc_in"])
                  for c in doc["clips"])
    want = expected_cuts(text, round(doc["rate"]))
    want_ranges, want_speeds = expected_speed_events(text, doc["rate"])
    assert any(EVENT.match(x) for x in text.splitlines())   # the list has events
    missing = want - got
    assert not missing, f"{sum(missing.values())} of {sum(want.values())} cut events differ: {list(missing)[:5]}"
    # LOC markers sit at the record timecode they name
    marks = Counter(m["record"]["tc_in"] for c in doc["clips"] for m in c["markers"])
    assert not expected_locators(text) - marks
    # speed effects: the source range used is the one the list states
    used = Counter((c["record"]["tc_in"], c["record"]["tc_out"], c["media_range"]["tc_in"], c["media_range"]["tc_out"])
                   for c in doc["clips"] if c["kind"] == "video" and c["speed"] != 0.0)
    speed_missing = want_ranges - used
    assert not speed_missing, f"speed events read differently: {list(speed_missing)[:5]}"
    got_speeds: dict = {}   # a multi-track list can have several events at one record range
    for c in doc["clips"]:
        if c["kind"] == "video":
            got_speeds.setdefault((c["record"]["tc_in"], c["record"]["tc_out"]), []).append(abs(c["speed"]))
    wrong = {k: (v, got_speeds.get(k)) for k, v in want_speeds.items()
             if not any(abs(g - v) <= 1e-3 for g in got_speeds.get(k, []))}
    assert not wrong, f"M2 speeds (unscaled source out) read differently: {list(wrong.items())[:5]}"
