"""Given turns that overlap (``s2vt diarize`` keeps both voices of an overlap): the plan gives each moment of a
dialogue track to one line, as when it diarizes itself, and its notes say so."""

from __future__ import annotations

from dataclasses import replace


def test_overlapping_given_turns_give_one_line_per_moment(tmp_path):
    from jobs_helpers import copy_demo, demo_turns
    from s2v_toolkit.jobs import build_plan

    root = copy_demo(tmp_path)
    turns = demo_turns()
    first, second = turns.turns[0], turns.turns[1]
    # the second line's speaker also speaks over the last second of the first line
    over = replace(second, start=first.end - 1.0, end=first.end, confidence=0.5)
    overlapping = turns.with_turns(sorted([*turns.turns, over], key=lambda t: t.start))
    assert overlapping.overlapped_seconds() > 0.9

    plan = build_plan(root / "scene.otio", root / "cast.yaml", turns=overlapping, face_check=False)
    note = next(n for n in plan.notes if "the given turns overlap" in n)
    assert "1.0 s" in note and "more confident turn" in note
    ranges = sorted((ln.record_in, ln.record_out, ln.character) for ln in plan.lines)
    for (a_in, a_out, _), (b_in, b_out, _) in zip(ranges, ranges[1:]):
        assert a_out <= b_in + 1  # record frames: a shared edge frame at most, never a second overlapping
    plain = build_plan(root / "scene.otio", root / "cast.yaml", turns=turns, face_check=False)
    assert [(ln.character, ln.record_in, ln.record_out) for ln in plan.lines] == [
        (ln.character, ln.record_in, ln.record_out) for ln in plain.lines]
    assert not any("the given turns overlap" in n for n in plain.notes)
