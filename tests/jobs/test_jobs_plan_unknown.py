"""The planner never plans a new shot over picture the reader could not understand, nor over titles."""

from __future__ import annotations


def test_unknown_picture_and_titles_are_skipped_not_filled(tmp_path):
    import opentimelineio as otio

    from jobs_helpers import copy_demo, demo_turns
    from s2v_toolkit.jobs import build_plan

    root = copy_demo(tmp_path)
    tl = otio.adapters.read_from_file(str(root / "scene.otio"))
    video = next(t for t in tl.tracks if t.kind == otio.schema.TrackKind.Video)
    sh010, sh020, sh030 = list(video)[:3]
    # an offline clip would be a placeholder (new_shot); marked unknown picture it is left alone
    sh030.media_reference = otio.schema.MissingReference()
    sh030.metadata["s2v_toolkit"] = {"unknown_picture": "multiclip without a readable active angle"}
    sh020.metadata["s2v_toolkit"] = {"generator": "title"}
    otio.adapters.write_to_file(tl, str(root / "unknown.otio"))

    plan = build_plan(root / "unknown.otio", root / "cast.yaml", turns=demo_turns(), face_check=False)
    by_clip = {j.clip_name: j for j in plan.jobs}
    assert by_clip["SH030"].action == "skip"
    assert by_clip["SH030"].reason == "unknown picture: multiclip without a readable active angle"
    assert by_clip["SH020"].action == "skip" and "title/generator" in by_clip["SH020"].reason
    assert by_clip["SH010"].action == "redub"
    # a real gap in the cut is still a new shot
    assert any(j.clip_name is None and j.action == "new_shot" for j in plan.jobs)
