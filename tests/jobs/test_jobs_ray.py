"""Ray runner on a local CPU-only Ray instance: same job outcomes as the in-process runner."""

from __future__ import annotations

import json
import os

import pytest

from jobs_helpers import TESTS_DIR, fast_plan
from s2v_toolkit.jobs import GeneratorSpec, load_plan, render_plan, render_plan_ray


@pytest.mark.slow
def test_ray_local_matches_local_runner(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("S2VT_TESTGEN_FAIL", "SH020")
    spec = GeneratorSpec(factory="jobs_testgen:make")
    local = fast_plan(tmp_path / "local")
    via_ray = fast_plan(tmp_path / "ray")
    # one edit by hand in both: a job whose plan entry is bad fails alone
    for plan in (local, via_ray):
        raw = json.loads(plan.path.read_text())
        raw["jobs"][2]["character"] = "nobody"
        plan.path.write_text(json.dumps(raw))
    a = render_plan(load_plan(local.path), spec=spec)
    b = render_plan_ray(load_plan(via_ray.path), spec, address="local", num_gpus=0,
                        init_kwargs={"num_cpus": 2, "runtime_env": {"env_vars": {
                            "PYTHONPATH": os.environ["PYTHONPATH"], "S2VT_TESTGEN_FAIL": "SH020"}}})
    assert not ray.is_initialized()                        # the runner shut down the instance it started

    def outcome(summary):
        return {r.id: (r.state, (r.error or "").split(":")[0]) for r in summary.records}

    assert outcome(a) == outcome(b)
    assert b.counts == {"queued": 0, "running": 0, "done": 2, "failed": 2, "skipped": 0}
    for r in b.records:
        if r.state == "done":
            assert os.path.isfile(r.output_path) and r.output_path.endswith("_v001.mp4")
    # a second Ray run has nothing to do
    c = render_plan_ray(load_plan(via_ray.path), spec, address="local", num_gpus=0, init_kwargs={"num_cpus": 1})
    assert c.outcomes == [] and c.counts == b.counts


def test_ray_missing_gives_a_clear_error(tmp_path, monkeypatch):
    import builtins

    from s2v_toolkit.jobs import RayUnavailable

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    plan = fast_plan(tmp_path)
    with pytest.raises(RayUnavailable, match=r"pip install 's2v-toolkit\[ray\]'"):
        render_plan_ray(plan, GeneratorSpec())
