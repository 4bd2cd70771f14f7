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

CHILD = r"""
import sys
from pathlib import Path
plan_path, log_path, infer, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
from s2v_toolkit.jobs import GeneratorSpec, load_plan, render_plan
from s2v_toolkit.pipelines import clip_store
import time
def log(text):
    with open(log_path, "a") as fh:
        fh.write(f"{text} {time.time():.3f}\n")
_save, _load = clip_store.ClipStore.save, clip_store.ClipStore.load
def save(self, index, *a, **k):
    _save(self, index, *a, **k)
    log(f"saved {index}")
def load(self, seed):
    log("sampling")
    return _load(self, seed) if resume else []   # the baseline: finished clips are never reused
clip_store.ClipStore.save, clip_store.ClipStore.load = save, load
spec = GeneratorSpec(model="tiny", options=(("infer_frames", infer), ("steps", 1)))
render_plan(load_plan(Path(plan_path)), spec=spec)
log("done")
"""


def make_plan(folder: Path, frames: int) -> Path:
    sys.path[:0] = [str(REPO), str(REPO / "tests" / "jobs")]
    from jobs_helpers import fast_plan

    plan = fast_plan(folder)
    raw = json.loads(plan.path.read_text())
    for j in raw["jobs"]:
        if j["action"] == "new_shot":
            j["record_out"] = j["record_in"] + frames
        else:
            j["action"] = "skip"
    plan.path.write_text(json.dumps(raw))
    return plan.path


def _sampling_seconds(log: Path) -> float | None:
    stamps = [ln.split()[-1] for ln in log.read_text().splitlines() if ln.startswith(("sampling", "done"))]
    return float(stamps[-1]) - float(stamps[0]) if len(stamps) >= 2 else None


def run_mode(resume: bool, args, rng: random.Random, window: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"s2vt-kill-{'resume' if resume else 'none'}-"))
    plan = make_plan(folder, args.frames)
    log = folder / "clips.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-c", CHILD, str(plan), str(log), str(args.clip), "1" if resume else "0"]
    t0 = time.time()
    kills = 0
    while kills < args.kills:
        n_before = len(log.read_text().splitlines()) if log.exists() else 0
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while child.poll() is None and not any(ln.startswith("sampling") for ln in (
                log.read_text().splitlines()[n_before:] if log.exists() else [])):
            time.sleep(0.05)
        time.sleep(rng.uniform(0, window))
        if child.poll() is not None:
            break
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    saves = [ln.rsplit(" ", 1)[0] for ln in log.read_text().splitlines() if ln.startswith("saved")]
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
