"""Clips recomputed when a render is SIGKILLed at random points: per-clip resume vs none, in one run.

A plan with one tiny-model new-shot job of several clips is first rendered once without a kill (its
sampling time T). Then, per mode, a child process is killed ``--kills`` times, each at a moment drawn
uniformly from [0, T) after its sampling starts, and then left to finish. Every finished
clip is logged; clips computed more than once are work a kill threw away. The baseline is the same
render with the per-clip resume turned off (what ``s2vt render`` did before: a killed job started over).

    .venv/bin/python bench/bench_render_kill.py --kills 4 --frames 24 --clip 8 --seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The kill tests' child (it logs the clip store's events with their times) and their one-job plan.
CHILD = REPO / "tests" / "reliability" / "render_child.py"
sys.path[:0] = [str(REPO), str(REPO / "tests" / "jobs"), str(CHILD.parent)]
from jobs_helpers import one_new_shot_plan  # noqa: E402
from render_child import read_events  # noqa: E402


def _sampling_seconds(log: Path) -> float | None:
    """From the first job start (``resumed``) to ``done``: the render's sampling time."""
    stamps = [t for text, t in read_events(log) if text.startswith(("resumed", "done"))]
    return stamps[-1] - stamps[0] if len(stamps) >= 2 else None


def run_mode(resume: bool, args, rng: random.Random, window: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"s2vt-kill-{'resume' if resume else 'none'}-"))
    plan = one_new_shot_plan(folder, args.frames)
    log = folder / "clips.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(CHILD), str(plan), str(log), str(args.clip)] + ([] if resume else ["--no-resume"])
    t0 = time.time()
    kills = 0
    while kills < args.kills:
        n_before = len(read_events(log))
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while child.poll() is None and not any(text.startswith("resumed") for text, _ in read_events(log)[n_before:]):
            time.sleep(0.05)
        time.sleep(rng.uniform(0, window))
        if child.poll() is not None:
            break
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    saves = [text for text, _ in read_events(log) if text.startswith("saved")]
    clips = len(set(saves))
    return {"mode": "per-clip resume" if resume else "no resume (before)", "kills": kills, "finished": done,
            "clips": clips, "clip_computations": len(saves), "recomputed": len(saves) - clips,
            "seconds": round(time.time() - t0, 1), "sampling_seconds": _sampling_seconds(log)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--frames", type=int, default=40, help="frames of the job")
    ap.add_argument("--clip", type=int, default=8, help="frames per clip")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    reference = run_mode(True, argparse.Namespace(**{**vars(args), "kills": 0}), random.Random(0), 0.0)
    window = reference["sampling_seconds"]
    print(json.dumps({"mode": "uninterrupted", **reference}), flush=True)
    for resume in (False, True):
        print(json.dumps(run_mode(resume, args, random.Random(args.seed), window)), flush=True)


if __name__ == "__main__":
    main()
