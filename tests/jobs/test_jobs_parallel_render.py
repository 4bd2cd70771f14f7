"""``s2vt render --parallel``: rank 0 runs the job runner and hands every job to the other ranks, which
render it too (with the same collective calls); only rank 0 writes renders and the job store.

Two CPU processes over gloo (torchrun's environment; this file is the ranks' script) with a generator
whose render does an all_reduce (it would hang or fail if the ranks did not render the same jobs in the
same order) and writes a clip (rank 0's is kept, the follower's goes to a scratch folder).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from multiprocess_testkit import launch_ranks

HERE = Path(__file__).resolve().parent


class CollectiveGenerator:
    """Each render: all_reduce the job's seed over the ranks, then write a flat clip (jobs_testgen's)."""

    name = "test-collective"
    suffix = ".mp4"

    def __init__(self, spec=None):
        from jobs_testgen import FlatColourGenerator

        self.inner = FlatColourGenerator(spec)
        self.seen: list[tuple[str, int]] = []

    def render(self, inputs, out_path):
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(inputs.job.seed)], dtype=torch.int64)
        dist.all_reduce(t)
        self.seen.append((inputs.job.id, int(t.item())))
        log = os.environ.get("S2VT_PARALLEL_LOG")
        with open(f"{log}.rank{dist.get_rank()}", "a") as fh:
            fh.write(json.dumps([inputs.job.id, int(t.item()), str(out_path)]) + "\n")
        return self.inner.render(inputs, out_path)


def make(spec=None):
    return CollectiveGenerator(spec)


def _worker(plan_path: str) -> None:
    from s2v_toolkit.jobs import GeneratorSpec
    from s2v_toolkit.jobs.parallel_render import render_plan_parallel
    from s2v_toolkit.pipelines.distributed import finish_distributed, resolve_parallel

    parallel = resolve_parallel("cfg")
    summary = render_plan_parallel(plan_path, GeneratorSpec(factory="test_jobs_parallel_render:make"), parallel)
    if parallel.is_main:
        Path(plan_path).with_suffix(".summary.json").write_text(json.dumps(summary.counts))
    else:
        assert summary is None
    finish_distributed(parallel)


@pytest.mark.timeout(300)
def test_rank0_leads_the_plan_and_the_other_rank_renders_the_same_jobs(tmp_path):
    from jobs_helpers import fast_plan

    plan = fast_plan(tmp_path)
    log = tmp_path / "renders.log"
    launch_ranks(2, lambda rank: [sys.executable, __file__, str(plan.path)], tmp_path, 240,
                 extra_env={"S2VT_PARALLEL_LOG": str(log),
                            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), str(HERE.parents[1])])})
    counts = json.loads(plan.path.with_suffix(".summary.json").read_text())
    assert counts["done"] == len(plan.jobs) and counts["failed"] == 0
    rank0 = [json.loads(line) for line in Path(f"{log}.rank0").read_text().splitlines()]
    rank1 = [json.loads(line) for line in Path(f"{log}.rank1").read_text().splitlines()]
    # the same jobs in the same order; the all_reduce summed both ranks' seeds (= twice the job's)
    assert [r[:2] for r in rank0] == [r[:2] for r in rank1]
    assert sorted(r[0] for r in rank0) == sorted(j.id for j in plan.jobs)
    seeds = {j.id: j.seed for j in plan.jobs}
    assert all(total == 2 * seeds[job] for job, total, _ in rank0)
    # only rank 0's renders are kept beside the plan; the follower wrote into a scratch folder, now gone
    assert all(str(tmp_path) in path for *_, path in rank0)
    assert not any(str(tmp_path) in path for *_, path in rank1)
    assert all(not Path(path).exists() for *_, path in rank1)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    _worker(sys.argv[1])
