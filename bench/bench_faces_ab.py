"""Face tracking speed of two checkouts side by side, in one run: ``bench_faces.ours`` (analyze_video + a
mouth mask per tracked face) of each tree on the same H.264 clips, alternating tree by tree, each in a
fresh process (one warm-up, then one timed run), ``--repeat`` rounds; medians, and the median of the
rounds' own ratios. Both trees run this checkout's ``bench_faces`` (the same measurement) on their own
package.

    git worktree add /tmp/before <commit>
    python bench/bench_faces_ab.py --before /tmp/before [--repeat 3] [--clips 1080p_4_faces,...] \\
        [--video REAL.mp4 ...] [--out bench/results/cpu_faces_ab.json]

The clips are bench_faces' own (``bench_faces.CLIPS``, written once here) and any real ``--video`` files
(read where they are). Each process imports the
package from its tree (``PYTHONPATH``), so both see the same mediapipe and the same landmarker bundle.
Wall-clock fps depend on the machine's load; the CPU ms per frame (all threads) much less so.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

CHILD = """
import json, sys
sys.path.insert(0, sys.argv[3])
import bench_faces as B  # this checkout's bench: both trees run the same measurement
sys.path.insert(0, sys.argv[1])  # ... on the package of the tree under test (ahead of the bench's own)
B.ours(B.Path(sys.argv[2]))  # warm-up: imports, model, page cache
seconds, found = B.ours(B.Path(sys.argv[2]))
print(json.dumps({"seconds": seconds, "cpu_seconds": found["cpu_seconds"], "masks": found["masks"],
                  "frames": found["frames"]}))
"""

# --first-frame: a shot's start alone (bench_faces.first_frames: detector creation, first frame, later frames)
CHILD_FIRST = """
import json, sys
sys.path.insert(0, sys.argv[3])
import bench_faces as B
sys.path.insert(0, sys.argv[1])
B.first_frames(B.Path(sys.argv[2]), tries=1)  # warm-up
print(json.dumps(B.first_frames(B.Path(sys.argv[2]))))
"""


def run_tree(tree: Path, clip: Path, child: str = CHILD) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", child, str(tree), str(clip), str(REPO / "bench")],
                         capture_output=True, text=True, env=env, cwd=str(tree))
    if out.returncode == 0 and not out.stdout.strip():
        raise SystemExit(f"{tree}: the run printed nothing")
    if out.returncode != 0:
        raise SystemExit(f"{tree}: the run failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the other checkout (e.g. a git worktree of the base commit)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all; none with --video "
                    "unless named)")
    ap.add_argument("--video", action="append", default=[], metavar="PATH",
                    help="a real video file to run as well (repeatable; read in place, never copied)")
    ap.add_argument("--first-frame", action="store_true",
                    help="time a shot's start instead (detector creation, first frame, later frames; "
                    "bench_faces.first_frames, 5 fresh detectors a round)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "cpu_faces_ab.json"))
    args = ap.parse_args()
    for video in args.video:
        if not Path(video).is_file():
            ap.error(f"--video {video}: no such file")
    trees = {"before": Path(args.before).resolve(), "now": REPO}
    if args.first_frame:
        return first_frame_ab(args, trees)
    load_before = os.getloadavg()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_faces_ab_") as tmp:
        clips = bench_clips(args, Path(tmp), args.frames)
        for k in range(args.repeat):
            for name, path in clips.items():
                for label, tree in trees.items():
                    r = run_tree(tree, path)
                    results.setdefault(name, {}).setdefault(label, []).append(r)
                    print(f"round {k + 1}: {name} {label}: {r['frames'] / r['seconds']:.1f} fps, "
                          f"{1000 * r['cpu_seconds'] / r['frames']:.1f} CPU ms/frame", flush=True)
    summary = {}
    for name, per in results.items():
        frames = per["now"][0]["frames"]
        summary[name] = {label: {"fps": round(frames / statistics.median(r["seconds"] for r in runs), 1),
                                 "cpu_ms_per_frame": round(1000 * statistics.median(r["cpu_seconds"] for r in runs)
                                                           / frames, 1), "frames": frames,
                                 "masks": sorted({r["masks"] for r in runs}), "runs": runs}
                         for label, runs in per.items()}
        s = summary[name]
        s["ratio_fps_now_over_before"] = round(s["now"]["fps"] / s["before"]["fps"], 3)
        # round by round (the two trees ran back to back): steadier than the ratio of medians on a shared
        # machine whose speed drifts by +-20 % between rounds
        s["paired_ratio_median"] = round(statistics.median(b["seconds"] / a["seconds"]
                                                           for a, b in zip(per["now"], per["before"])), 3)
    print("\nclip | before fps | now fps | now/before (medians) | now/before (median of rounds) | "
          "before CPU ms/frame | now CPU ms/frame")
    for name, s in summary.items():
        print(f"{name} | {s['before']['fps']} | {s['now']['fps']} | {s['ratio_fps_now_over_before']:.2f}x | "
              f"{s['paired_ratio_median']:.2f}x | {s['before']['cpu_ms_per_frame']} | {s['now']['cpu_ms_per_frame']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "command": "python bench/bench_faces_ab.py " + " ".join(sys.argv[1:]),
        "before": str(trees["before"]), "frames": args.frames, "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "results": summary}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def bench_clips(args, folder: Path, frames: int) -> dict[str, Path]:
    """bench_faces' clips named by ``--clips`` (all when neither ``--clips`` nor ``--video`` is given), written
    into ``folder`` with ``frames`` frames, then the ``--video`` files where they are."""
    import bench_faces as B

    wanted = {c for c in args.clips.split(",") if c}
    clips = {name: B.write_clip(folder, name, w, h, face, frames, nf)
             for name, w, h, face, nf in B.CLIPS if (not wanted and not args.video) or name in wanted}
    clips.update({Path(v).name: Path(v) for v in args.video})
    return clips


def first_frame_ab(args, trees: dict) -> int:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench_faces_ab_") as tmp:
        clips = bench_clips(args, Path(tmp), 13)
        for k in range(args.repeat):
            for name, path in clips.items():
                for label, tree in trees.items():
                    r = run_tree(tree, path, CHILD_FIRST)
                    results.setdefault(name, {}).setdefault(label, []).append(r)
                    print(f"round {k + 1}: {name} {label}: creation {r['create_ms']:.0f} ms, first frame "
                          f"{r['first_frame_ms']:.0f} ms, later {r['later_frame_ms']:.1f} ms", flush=True)
    summary = {}
    print("\nclip | faces | first frame before / now (ms, medians) | paired ratio now/before | "
          "creation before / now | later frames before / now")
    for name, per in results.items():
        med = {label: {key: round(statistics.median(r[key] for r in runs), 1)
                       for key in ("create_ms", "first_frame_ms", "later_frame_ms")} for label, runs in per.items()}
        paired = statistics.median(a["first_frame_ms"] / b["first_frame_ms"] for a, b in zip(per["now"], per["before"]))
        faces = sorted({n for runs in per.values() for r in runs for n in r["faces_first_frame"]})
        summary[name] = {**med, "paired_first_frame_ratio_now_over_before": round(paired, 3), "faces": faces,
                         "runs": per}
        b, n = med["before"], med["now"]
        print(f"{name} | {faces} | {b['first_frame_ms']} / {n['first_frame_ms']} | {paired:.2f}x | "
              f"{b['create_ms']} / {n['create_ms']} | {b['later_frame_ms']} / {n['later_frame_ms']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python bench/bench_faces_ab.py " + " ".join(sys.argv[1:]),
                               "before": str(trees["before"]), "repeat": args.repeat,
                               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                           "load_average": [round(x, 2) for x in os.getloadavg()]},
                               "results": summary}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
