"""``s2vt render --parallel``: one plan rendered by a torchrun launch, each job's forwards split over the GPUs.

Every rank loads the same models (:class:`~s2v_toolkit.jobs.wan_generator.WanS2VJobGenerator` with a
``parallel`` option: CFG-parallel and/or Ulysses, as ``s2vt generate --parallel``). Rank 0 runs the
normal runner: job store, claims, files, sidecars; its generator is wrapped so that each render first
sends the job's inputs to the other ranks. The other ranks loop: receive a job's inputs, render them
with their copy of the models (the same collective calls as rank 0, in the same order; their file
goes to a scratch folder and is deleted) until rank 0 sends the end of the plan.

A job that fails on every rank the same way (bad input found before sampling) fails once in the
store and the ranks go on to the next; a failure on rank 0 alone in the middle of sampling leaves the
others waiting in a collective until torchrun stops the launch.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from s2v_toolkit.jobs.generator import GeneratorSpec, load_generator

__all__ = ["LeaderGenerator", "follow_leader", "render_plan_parallel"]


class LeaderGenerator:
    """Rank 0's generator: sends each job's inputs to the other ranks, then renders."""

    def __init__(self, generator, parallel):
        self.generator = generator
        self.parallel = parallel
        self.name = getattr(generator, "name", type(generator).__name__)
        self.suffix = getattr(generator, "suffix", ".mov")

    def __getattr__(self, name):
        return getattr(self.generator, name)

    def render(self, inputs, out_path: Path) -> dict:
        from s2v_toolkit.pipelines.distributed import broadcast_from_main

        broadcast_from_main(self.parallel, dataclasses.replace(inputs, progress=None))
        return self.generator.render(inputs, out_path)


def follow_leader(generator, parallel) -> int:
    """Ranks > 0: render what rank 0 sends until it sends None; returns the number of jobs followed."""
    from s2v_toolkit.pipelines.distributed import broadcast_from_main

    followed = 0
    with tempfile.TemporaryDirectory(prefix="s2vt-follower-") as scratch:
        while True:
            inputs = broadcast_from_main(parallel, None)
            if inputs is None:
                return followed
            followed += 1
            out = Path(scratch) / f"job{followed}{getattr(generator, 'suffix', '.mov')}"
            try:
                generator.render(inputs, out)
            except Exception:  # noqa: BLE001 - rank 0 records the job's failure; go on with the next
                pass
            finally:
                out.unlink(missing_ok=True)


def render_plan_parallel(plan, spec: GeneratorSpec, parallel, **options):
    """:func:`~s2v_toolkit.jobs.runner.render_plan` on rank 0 with a :class:`LeaderGenerator`, the
    follower loop elsewhere. Returns rank 0's summary (None on the other ranks)."""
    from s2v_toolkit.jobs.runner import render_plan
    from s2v_toolkit.pipelines.distributed import broadcast_from_main

    generator = load_generator(spec)  # the Wan generator joins the process group (nccl on GPUs) here
    import torch.distributed as dist

    if not dist.is_initialized():  # a generator of another kind: a CPU group for the job hand-over
        from s2v_toolkit.pipelines.distributed import init_distributed

        init_distributed(parallel, "cpu")
    if not parallel.is_main:
        follow_leader(generator, parallel)
        return None
    try:
        return render_plan(plan, LeaderGenerator(generator, parallel), workers=1, **options)
    finally:
        broadcast_from_main(parallel, None)  # the end: followers leave their loop
