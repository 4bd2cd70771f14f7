"""Structural difference between two timelines (a conform's input and output): what was added,
removed or changed, as the editor would see it (tracks, clips with record/source ranges, markers)."""

from __future__ import annotations

import os
from collections import Counter

from s2v_toolkit.timeline.describe import TimelineDescription, describe_timeline
from s2v_toolkit.timeline.io import read_timeline
from s2v_toolkit.timeline.timecode import RationalTime


def _clip_key(desc: TimelineDescription, c) -> tuple:
    rec, src = c.record.to_otio(), c.source.to_otio()
    return (desc.track(c.track).name, c.kind, c.name, desc.record_timecode(rec.start_time),
            desc.record_timecode(rec.end_time_exclusive()), round(src.start_time.value, 3),
            c.media.url, c.enabled)


def _marker_keys(desc: TimelineDescription) -> Counter:
    keys = Counter()
    for c in desc.clips:
        for m in c.markers:
            keys[(c.name, m.name, desc.record_timecode(m.record.to_otio().start_time))] += 1
    for m in desc.markers:
        keys[(m.owner, m.name, desc.record_timecode(m.record.to_otio().start_time))] += 1
    return keys


def structural_diff(before: TimelineDescription, after: TimelineDescription) -> list[str]:
    """Lines ``+ ...`` (only in ``after``) and ``- ...`` (only in ``before``); [] when the same."""
    lines: list[str] = []
    tb = Counter((t.kind, t.name, t.enabled) for t in before.tracks)
    ta = Counter((t.kind, t.name, t.enabled) for t in after.tracks)
    lines += [f"+ track {k} '{n}'{'' if e else ' (disabled)'}" for (k, n, e) in (ta - tb).elements()]
    lines += [f"- track {k} '{n}'{'' if e else ' (disabled)'}" for (k, n, e) in (tb - ta).elements()]
    cb = Counter(_clip_key(before, c) for c in before.clips)
    ca = Counter(_clip_key(after, c) for c in after.clips)
    for sign, diff in (("+", ca - cb), ("-", cb - ca)):
        for (track, kind, name, tc_in, tc_out, src, url, enabled) in sorted(diff.elements()):
            lines.append(f"{sign} clip '{name}' on '{track}' ({kind}) record {tc_in}-{tc_out} "
                         f"source frame {src:g}{'' if enabled else ' (disabled)'} {url or ''}".rstrip())
    mb, ma = _marker_keys(before), _marker_keys(after)
    lines += [f"+ marker '{n}' on '{o}' at {tc}" for (o, n, tc) in sorted((ma - mb).elements())]
    lines += [f"- marker '{n}' on '{o}' at {tc}" for (o, n, tc) in sorted((mb - ma).elements())]
    if before.global_start.to_otio() != after.global_start.to_otio():
        zero_b, zero_a = RationalTime(0, before.rate), RationalTime(0, after.rate)
        lines.append(f"~ start timecode {before.record_timecode(zero_b)} -> {after.record_timecode(zero_a)}")
    return lines


def diff_files(original: str | os.PathLike, output: str | os.PathLike, *, rate: float | None = None) -> list[str]:
    before = describe_timeline(read_timeline(original, rate=rate), check_media=False)
    after = describe_timeline(read_timeline(output, rate=rate), check_media=False)
    return structural_diff(before, after)
