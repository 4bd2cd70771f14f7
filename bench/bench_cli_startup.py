"""Start-up of ``s2vt`` commands that need no model, two checkouts side by side in one run: each command
in a fresh process per tree, alternating tree by tree, ``--repeat`` rounds; wall-clock medians and the
median of the rounds' own ratios (now / before).

    git worktree add /tmp/before <commit>
    python bench/bench_cli_startup.py --before /tmp/before [--repeat 7] [--out bench/results/cpu_cli_startup.json]

Commands (each tree runs ``python -m s2v_toolkit`` with its own package first on ``PYTHONPATH``, the same
interpreter and libraries): ``probe`` of a short generated clip, and ``plan`` of a copy of the demo project
from its lines as given speaker turns, without the face check (what editors' hosts run before any render).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "jobs")]
from jobs_helpers import copy_demo, demo_turns  # noqa: E402  (the job tests' demo copy and its lines as turns)


def write_inputs(folder: Path) -> dict[str, list[str]]:
    """The commands' arguments, on inputs written into ``folder`` (the plan is written over each run)."""
    import numpy as np

    from s2v_toolkit.media import write_video

    clip = write_video(folder / "clip.mp4", (np.full((64, 64, 3), 128, np.uint8) for _ in range(25)),
                       Fraction(25), preset="h264")
    demo = copy_demo(folder)
    turns = folder / "turns.json"
    turns.write_text(json.dumps(demo_turns().to_dict()))
    return {"probe": ["probe", str(clip)],
            "plan from turns, no face check": ["plan", str(demo / "scene.otio"), "--cast", str(demo / "cast.yaml"),
                                               "--turns", str(turns), "--no-face-check",
                                               "-o", str(folder / "plan.json"), "--overwrite"]}


def run_tree(tree: Path, argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "s2v_toolkit", *argv], capture_output=True, text=True, env=env,
                         cwd=str(tree))
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{tree}: s2vt {argv[0]} failed:\n{out.stderr[-2000:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the other checkout (e.g. a git worktree of the base commit)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "cpu_cli_startup.json"))
    args = ap.parse_args()
    trees = {"before": Path(args.before).resolve(), "now": REPO}
    if not (trees["before"] / "s2v_toolkit").is_dir():
        ap.error(f"--before {args.before}: not a checkout of this project (no s2v_toolkit folder)")
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_cli_startup_") as tmp:
        commands = write_inputs(Path(tmp))
        for name, argv in commands.items():
            for tree in trees.values():
                run_tree(tree, argv)  # warm-up: page cache, .pyc files
            times: dict[str, list[float]] = {label: [] for label in trees}
            for _ in range(args.repeat):
                for label, tree in trees.items():
                    times[label].append(run_tree(tree, argv))
            ratios = [n / b for n, b in zip(times["now"], times["before"])]
            results[name] = {"seconds": times, "median_before": statistics.median(times["before"]),
                             "median_now": statistics.median(times["now"]), "median_ratio": statistics.median(ratios)}
            r = results[name]
            print(f"{name}: before {r['median_before']:.2f} s, now {r['median_now']:.2f} s, "
                  f"ratio {r['median_ratio']:.2f}x (median of {args.repeat} paired rounds)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python bench/bench_cli_startup.py " + " ".join(sys.argv[1:]),
                               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                           "load_before": load_before, "load_after": os.getloadavg()},
                               "results": results}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
