"""build_plan on the demo project (real stages and injected turns), plan JSON round trip, edits."""

from __future__ import annotations

import json

import pytest

from jobs_helpers import DEMO, demo_project, demo_turns, fast_plan
from s2v_toolkit.jobs import (
    PlanError, RenderPlan, build_plan, lines_from_turns, load_plan, stable_job_id, validate_plan,
)


def _by_clip(plan):
    return {(j.clip_name or "SH040"): j for j in plan.jobs}


@pytest.mark.slow
def test_demo_plan_through_real_stages_gives_expected_actions(tmp_path):
    """Dialogue extraction -> embedded diarization -> voice assignment -> faces (real models)."""
    pytest.importorskip("mediapipe")
    from s2v_toolkit.faces import find_landmarker_bundle

    if find_landmarker_bundle() is None:
        pytest.skip("face landmarker bundle not built (s2vt faces setup)")
    proj = demo_project()
    plan = build_plan(DEMO / "scene.otio", DEMO / "cast.yaml")
    assert [ln.character for ln in plan.lines] == [ln["character"] for ln in proj["lines"]]
    assert any(n.startswith("dialogue A1: diarization embedded backend ($S2VT_DIARIZATION_BACKEND), 2 voice(s)") for n in plan.notes)
    # each line's record range holds the line's clip (the speech inside it), give or take the pauses
    for ln, ref in zip(plan.lines, proj["lines"]):
        assert ref["record_frame"] - 1 <= ln.record_in <= ref["record_frame"] + 24
        assert ref["record_frame"] + ref["frames"] - 24 <= ln.record_out <= ref["record_frame"] + ref["frames"] + 2
    jobs = _by_clip(plan)
    assert {k: j.action for k, j in jobs.items()} == proj["expected_actions"]
    assert "no face" in jobs["SH030"].reason
    assert "gap" in jobs["SH040"].reason and jobs["SH040"].clip_id is None
    for name in ("SH010", "SH020"):
        assert jobs[name].face["track_id"] is not None
    # SH010's clip starts 12 frames into its media (handle): record frame r shows file frame r + 12
    assert jobs["SH010"].source_in == jobs["SH010"].record_in + 12
    sh020 = next(s for s in proj["shots"] if s["name"] == "SH020")
    assert jobs["SH020"].source_in >= jobs["SH020"].record_in - sh020["record_frame"]


def test_demo_plan_with_the_neural_diarizer_finds_the_same_lines():
    """The same dialogue through the neural backend (real weights; skipped without them): the same characters
    line for line, within the same record ranges, and the plan says which backend found them."""
    from s2v_toolkit.diarization import find_neural_models

    if find_neural_models() is None:
        pytest.skip("no neural diarization models (s2vt diarize --setup)")
    proj = demo_project()
    plan = build_plan(DEMO / "scene.otio", DEMO / "cast.yaml", backend="neural", face_check=False)
    assert [ln.character for ln in plan.lines] == [ln["character"] for ln in proj["lines"]]
    for ln, ref in zip(plan.lines, proj["lines"]):
        # a turn may start up to 2 frames (83 ms) before the line's audio: where half the segmentation's chunks
        # hear a voice, it is speech (session 21; 1 frame before); the re-dub range is then a little longer
        assert ref["record_frame"] - 2 <= ln.record_in <= ref["record_frame"] + 24
        assert ref["record_frame"] + ref["frames"] - 24 <= ln.record_out <= ref["record_frame"] + ref["frames"] + 2
    assert any(n.startswith("dialogue A1: diarization neural backend (asked for), 2 voice(s)") for n in plan.notes)


def test_plan_from_injected_turns_ids_and_round_trip(tmp_path):
    plan = fast_plan(tmp_path)
    jobs = _by_clip(plan)
    assert [j.action for j in plan.jobs] == ["redub", "redub", "redub", "new_shot"]  # no face check: SH030 redub
    assert jobs["SH040"].reason.startswith("no video under the line")
    assert jobs["SH010"].character == "collins" and "white shirt" in jobs["SH010"].prompt
    # stable ids: a second plan of the same timeline has the same ids
    again = fast_plan(tmp_path / "again")
    assert [j.id for j in again.jobs] == [j.id for j in plan.jobs]
    assert jobs["SH040"].id == stable_job_id(f"gap@{jobs['SH040'].record_in}", jobs["SH040"].record_in,
                                             jobs["SH040"].record_out)
    # JSON round trip: everything but the load path is equal; paths are relative to the plan in the file
    loaded = load_plan(tmp_path / "plan.json")
    assert loaded.to_dict() == plan.to_dict()
    raw = json.loads((tmp_path / "plan.json").read_text())
    assert raw["schema"] == "s2v.plan" and raw["schema_version"] == 1
    assert raw["timeline"] == "demo/scene.otio"
    assert raw["jobs"][0]["media_path"] == "demo/media/SH010_collins.mp4"
    assert raw["jobs"][0]["record_tc"][0] == plan.record_timecode(plan.jobs[0].record_in)
    assert raw["jobs"][0]["record_tc"][0].startswith("01:00:0")


def test_hand_edits_are_respected_and_bad_edits_named(tmp_path):
    fast_plan(tmp_path)
    path = tmp_path / "plan.json"
    raw = json.loads(path.read_text())
    raw["jobs"][2]["action"] = "skip"                # the cutaway: user says skip
    raw["jobs"][0]["character"] = "nobody"            # unknown character
    raw["jobs"][1]["record_out"] = 10_000             # outside the timeline
    raw["jobs"][3]["media_path"] = None               # new_shot needs no media: still fine
    path.write_text(json.dumps(raw))
    plan = load_plan(path)
    assert plan.jobs[2].action == "skip"
    problems = dict(validate_plan(plan, ["collins", "hopper"]))
    assert set(problems) == {plan.jobs[0].id, plan.jobs[1].id}
    assert "unknown character 'nobody'" in problems[plan.jobs[0].id]
    assert "outside the timeline" in problems[plan.jobs[1].id]
    raw["jobs"][1]["id"] = raw["jobs"][0]["id"]
    path.write_text(json.dumps(raw))
    with pytest.raises(PlanError, match="used twice"):
        validate_plan(load_plan(path))
    path.write_text('{"schema": "s2v.plan", "schema_version": 99}')
    with pytest.raises(PlanError, match="schema_version 99"):
        load_plan(path)
    path.write_text("{not json")
    with pytest.raises(PlanError, match="not valid JSON"):
        load_plan(path)


def test_spec_hash_changes_with_edits():
    from s2v_toolkit.jobs import ShotJob

    a = ShotJob("j1", "x", "redub", "", 1, "collins", 10, 20)
    b = ShotJob("j1", "x changed label", "redub", "other reason", 1, "collins", 10, 20)
    assert a.spec_hash() == b.spec_hash()            # labels and reasons are not render inputs
    for change in ({"record_out": 21}, {"character": "hopper"}, {"action": "new_shot"}, {"seed": 5}):
        c = ShotJob(**{**a.__dict__, **change})
        assert c.spec_hash() != a.spec_hash(), change


def test_lines_merge_a_characters_turns_and_split_at_speaker_changes():
    from fractions import Fraction

    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns

    t = SpeakerTurns([SpeakerTurn(1.0, 2.0, "S0", character="a"), SpeakerTurn(2.4, 3.0, "S0", character="a"),
                      SpeakerTurn(3.1, 4.0, "S1", character="b"), SpeakerTurn(5.0, 5.1, "S1", character="b"),
                      SpeakerTurn(6.0, 7.0, "S0", character="a")])
    lines = lines_from_turns(t, Fraction(25), 1000, "A1", max_gap=0.6, min_line=0.25)
    assert [(ln.character, ln.record_in, ln.record_out) for ln in lines] == [
        ("a", 25, 75), ("b", 77, 100), ("a", 150, 175)]


def test_action_rules_on_an_edited_cut(tmp_path):
    """Placeholder and marked clips become new shots; missing media, unknown voices, slivers and
    retimed clips are skipped with their reason; the face check sees the shot's own frames and audio."""
    from dataclasses import replace

    import opentimelineio as otio

    from jobs_helpers import copy_demo
    from s2v_toolkit.diarization import SpeakerTurn
    from s2v_toolkit.jobs import FaceVerdict
    from s2v_toolkit.media import probe

    root = copy_demo(tmp_path)
    tl = otio.adapters.read_from_file(str(root / "scene.otio"))
    video = next(t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video)
    sh010, sh020, sh030 = list(video)[:3]
    sh020.metadata["s2v_toolkit"] = {"generate": True}
    sh030.media_reference = otio.schema.MissingReference()       # offline: a placeholder
    otio.adapters.write_to_file(tl, str(root / "edited.otio"))
    # SH010's media goes missing in a second cut
    sh020.metadata["s2v_toolkit"] = {}
    sh010.media_reference = otio.schema.ExternalReference(target_url="media/GONE.mp4")
    otio.adapters.write_to_file(tl, str(root / "missing.otio"))

    turns = demo_turns()
    turns.turns[0] = replace(turns.turns[0], character="unknown")           # L01: nobody in the cast
    # L03 spills 3 frames past SH030's end into the gap: a sliver
    t3 = turns.turns[2]
    turns.turns[2] = replace(t3, end=float((372 + 3) / (24000 / 1001)))
    seen = []

    def check(ctx):
        seen.append(ctx)
        return FaceVerdict("redub", "checked", {"track_id": 7})

    plan = build_plan(root / "edited.otio", root / "cast.yaml", turns=turns, face_check=check)
    acts = [(j.clip_name or "GAP", j.action, j.reason.split(" (")[0]) for j in plan.jobs]
    assert acts[0][:2] == ("SH010", "skip") and "matches no cast character" in acts[0][2]
    assert acts[1][:2] == ("SH020", "new_shot") and "marked for generation" in acts[1][2]
    assert acts[2][:2] == ("SH030", "new_shot") and acts[2][2].startswith("placeholder clip")
    assert acts[3][:2] == ("GAP", "skip") and acts[3][2].startswith("only 3 frame(s)")
    assert acts[4][:2] == ("GAP", "new_shot")
    assert seen == []                        # nothing above needed a face check
    plan2 = build_plan(root / "missing.otio", root / "cast.yaml", turns=demo_turns(), face_check=check)
    j1 = plan2.jobs[0]
    assert j1.action == "skip" and j1.reason.startswith("media not found")
    j2 = plan2.jobs[1]
    assert j2.action == "redub" and j2.face == {"track_id": 7}
    ctx = seen[0]
    assert ctx.job is j2 and ctx.last_frame - ctx.first_frame + 1 == j2.frame_count
    assert ctx.last_frame < probe(ctx.media_path).video.frame_count
    assert abs(len(ctx.audio) - j2.frame_count / (24000 / 1001) * 16000) <= 1
    assert float(abs(ctx.audio).max()) > 0.01                  # the line's speech, not silence
