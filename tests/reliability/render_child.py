"""Child process of the kill tests and of bench/bench_render_kill.py: render a plan with the tiny model
and log what its clip store does, so that a parent can kill it at a known point and count the clips.

``python render_child.py PLAN LOG [INFER_FRAMES] [--no-resume]``: each line of LOG is an event and the
time it happened (``time.time()``, last field): ``resumed K`` when a job's sampling starts (K clips
taken from a killed run's parts), ``saved N`` per finished clip, ``done STATE,...`` at the end.
``--no-resume`` never reuses saved clips (a killed job starts over: the baseline of the benchmark).
:func:`read_events` parses the log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def read_events(log: str | Path) -> list[tuple[str, float]]:
    """(event, time) per complete line of a child's log; none before it exists."""
    log = Path(log)
    if not log.exists():
        return []
    lines = log.read_text().split("\n")[:-1]  # a line being written has no newline yet
    return [(text, float(stamp)) for text, stamp in (ln.rsplit(" ", 1) for ln in lines)]


def main(argv: list[str]) -> None:
    from s2v_toolkit.jobs import GeneratorSpec, load_plan, render_plan
    from s2v_toolkit.pipelines import clip_store

    args = [a for a in argv if a != "--no-resume"]
    resume = "--no-resume" not in argv
    plan_path, log_path = args[0], args[1]
    infer = int(args[2]) if len(args) > 2 else 8

    def log(text: str) -> None:
        with open(log_path, "a") as fh:
            fh.write(f"{text} {time.time():.3f}\n")
            fh.flush()

    _save, _load = clip_store.ClipStore.save, clip_store.ClipStore.load

    def save(self, index, *a, **k):
        _save(self, index, *a, **k)
        log(f"saved {index}")

    def load(self, seed):
        clips = _load(self, seed) if resume else []
        log(f"resumed {len(clips)}")
        return clips

    clip_store.ClipStore.save, clip_store.ClipStore.load = save, load
    spec = GeneratorSpec(model="tiny", options=(("infer_frames", infer), ("steps", 1)))
    summary = render_plan(load_plan(Path(plan_path)), spec=spec)
    log("done " + ",".join(r.state for r in summary.records))


if __name__ == "__main__":
    main(sys.argv[1:])
