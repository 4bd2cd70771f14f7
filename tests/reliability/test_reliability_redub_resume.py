"""A re-dub job interrupted after its first clip continues from the saved clip and gives the same frames."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_interrupted_redub_job_resumes_to_the_same_frames(tmp_path, monkeypatch):
    from jobs_helpers import fast_plan

    from s2v_toolkit.jobs import GeneratorSpec, RenderContext, load_plan
    from s2v_toolkit.jobs.generator import load_generator
    from s2v_toolkit.jobs.runner import parts_dir, produce_render
    from s2v_toolkit.media import read_frames
    from pipelines_testkit import ClipSaves

    gen = load_generator(GeneratorSpec(model="tiny", options=(("infer_frames", 8), ("steps", 1))))

    def one_redub_plan(folder):
        folder.mkdir()
        plan = fast_plan(folder)
        raw = json.loads(plan.path.read_text())
        job = next(j for j in raw["jobs"] if j["label"].startswith("SH020"))
        job["face"] = {"track_id": 0}
        job["record_out"] = job["record_in"] + 12
        raw["jobs"] = [job]
        plan.path.write_text(json.dumps(raw))
        plan = load_plan(plan.path)
        return plan, plan.jobs[0]

    plan_a, job_a = one_redub_plan(tmp_path / "a")
    whole = read_frames(produce_render(plan_a, job_a, gen, RenderContext(plan_a))["output_path"], 0, 12)

    plan_b, job_b = one_redub_plan(tmp_path / "b")
    saves = ClipSaves(monkeypatch, kill_next=True)
    with pytest.raises(KeyboardInterrupt):
        produce_render(plan_b, job_b, gen, RenderContext(plan_b))
    assert saves.indices == [0] and parts_dir(plan_b, job_b).is_dir()

    out = produce_render(plan_b, job_b, gen, RenderContext(plan_b))
    assert saves.indices[0] == 0 and 0 not in saves.indices[1:], saves.indices  # clip 0 was not computed again
    assert len(saves.indices) >= 2, saves.indices                              # and the rest was
    resumed = read_frames(out["output_path"], 0, 12)
    assert np.array_equal(resumed, whole)
    assert not parts_dir(plan_b, job_b).exists()
