"""Diarization error rate, computed exactly on segment boundaries (no frame grid).

DER = (missed speech + false alarm + speaker confusion) / total reference speech, after mapping each
hypothesis speaker to at most one reference speaker so that their co-occurring time is largest (Hungarian
assignment). ``collar`` follows pyannote.metrics: a zone of ``collar`` seconds in all (half before, half
after) around every reference turn boundary is not scored. ``skip_overlap`` leaves out reference regions
where two or more people speak. With ``pyannote.metrics`` installed the two agree (a test checks that).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from s2v_toolkit.diarization.turns import SpeakerTurns


@dataclass
class DERReport:
    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float  # scored reference speech, seconds
    mapping: dict[str, str] = field(default_factory=dict)  # hypothesis speaker -> reference speaker

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _excluded_zones(reference: SpeakerTurns, collar: float) -> list[tuple[float, float]]:
    if collar <= 0:
        return []
    half = collar / 2
    zones = sorted((b - half, b + half) for t in reference for b in (t.start, t.end))
    merged: list[list[float]] = []
    for a, b in zones:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def diarization_error_rate(reference: SpeakerTurns, hypothesis: SpeakerTurns, collar: float = 0.0,
                           skip_overlap: bool = False) -> DERReport:
    """Score ``hypothesis`` against ``reference``; see the module doc. Empty reference speech gives
    ``der = 0`` when the hypothesis is empty too, else ``inf`` (all false alarm, nothing to divide by)."""
    from scipy.optimize import linear_sum_assignment

    from s2v_toolkit.diarization.turns import elementary_segments

    zones = _excluded_zones(reference, collar)
    ref_names, hyp_names = reference.speakers, hypothesis.speakers
    ref_index = {n: i for i, n in enumerate(ref_names)}
    hyp_index = {n: i for i, n in enumerate(hyp_names)}
    zone_starts = np.array([z[0] for z in zones])

    def in_zone(t: float) -> bool:
        i = int(np.searchsorted(zone_starts, t, side="right")) - 1
        return i >= 0 and zones[i][0] < t < zones[i][1]

    # elementary segments with the sets of active speakers on each side
    segments = []
    for a, b, ref_active, hyp_active in elementary_segments(
            reference.turns, hypothesis.turns, extra_bounds=[z for zone in zones for z in zone]):
        if b - a <= 0 or in_zone((a + b) / 2):
            continue
        refs = {ref_index[t.speaker] for t in ref_active}
        if skip_overlap and len(refs) > 1:
            continue
        hyps = {hyp_index[t.speaker] for t in hyp_active}
        if refs or hyps:
            segments.append((b - a, refs, hyps))

    cooccurrence = np.zeros((max(1, len(hyp_names)), max(1, len(ref_names))))
    for d, refs, hyps in segments:
        for h in hyps:
            for r in refs:
                cooccurrence[h, r] += d
    rows, cols = linear_sum_assignment(cooccurrence, maximize=True)
    mapping = {h: r for h, r in zip(rows, cols) if cooccurrence[h, r] > 0}

    total = missed = false_alarm = confusion = 0.0
    for d, refs, hyps in segments:
        n_ref, n_hyp = len(refs), len(hyps)
        correct = sum(1 for h in hyps if mapping.get(h) in refs)
        total += n_ref * d
        missed += max(0, n_ref - n_hyp) * d
        false_alarm += max(0, n_hyp - n_ref) * d
        confusion += (min(n_ref, n_hyp) - correct) * d
    errors = missed + false_alarm + confusion
    der = errors / total if total > 0 else (0.0 if errors == 0 else float("inf"))
    return DERReport(der, missed, false_alarm, confusion, total,
                     {hyp_names[h]: ref_names[r] for h, r in mapping.items()})
