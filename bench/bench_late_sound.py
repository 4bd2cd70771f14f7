"""Planning a cut whose sound starts late: the stretch with sound against the whole track, side by side.

    python bench/bench_late_sound.py [--hours 1] [--repeat 3] [--out bench/results/late_sound.json]

A Pro Tools session placed at 01:00:00:00 exports an AAF whose clips start an hour into the composition.
The demo scene (20 s, two characters) is moved ``--hours`` later on every track (a gap before it), and
``build_plan`` runs on it (diarization of the dialogue track, voice assignment from the cast, no face
check) twice per round, alternating: as the planner does now (the dialogue signal is the stretch from the
first audio clip, on a 16 s grid: ``diarization_window``) and as it did before session 17 (the whole track from
the timeline's first frame). Reported: wall seconds (median of the rounds), the dialogue signal's samples,
and whether both give the same lines (they must: the same record frames and characters).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import opentimelineio as otio
from bench_common import write_results

import s2v_toolkit
from s2v_toolkit.jobs import build_plan, planner

# the embedded backend, as measured in docs/performance.md (the package's default is auto: neural where installed)
os.environ.setdefault("S2VT_DIARIZATION_BACKEND", "embedded")


def late_scene(folder: Path, hours: float) -> Path:
    """A copy of the demo project whose timeline starts with ``hours`` of nothing on every track."""
    demo = Path(s2v_toolkit.__file__).parent / "demo_project"
    shutil.copytree(demo, folder / "demo", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    tl = otio.adapters.read_from_file(str(folder / "demo" / "scene.otio"))
    rate = tl.find_clips()[0].source_range.duration.rate
    for track in tl.tracks:
        track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(round(hours * 3600 * rate), rate))))
    path = folder / "demo" / "scene_late.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def plan_once(path: Path, whole: bool) -> tuple[float, int, list]:
    samples = []
    real_diarize = planner._diarize_track

    def spy(signal, *a, **k):
        samples.append(len(signal))
        return real_diarize(signal, *a, **k)

    import s2v_toolkit.timeline as timeline

    saved = timeline.diarization_window
    planner._diarize_track = spy
    if whole:   # the rule before: no window, the track from the timeline's first frame
        timeline.diarization_window = lambda *a, **k: None
    try:
        t0 = time.perf_counter()
        plan = build_plan(path, path.parent / "cast.yaml", face_check=False, dialogue_tracks=["A1"])
        seconds = time.perf_counter() - t0
    finally:
        timeline.diarization_window = saved
        planner._diarize_track = real_diarize
    return seconds, samples[0], [(ln.record_in, ln.record_out, ln.character) for ln in plan.lines]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "late_sound.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = late_scene(Path(tmp), args.hours)
        plan_once(path, False)   # warm-up: models loaded, caches filled
        runs = {"stretch": [], "whole": []}
        lines = {}
        for _ in range(args.repeat):
            for name in ("stretch", "whole"):
                seconds, samples, got = plan_once(path, name == "whole")
                runs[name].append(seconds)
                lines[name] = (samples, got)
    result = {name: {"seconds_median": round(statistics.median(v), 3), "seconds": [round(x, 3) for x in v],
                     "dialogue_samples": lines[name][0], "dialogue_mb": round(lines[name][0] * 4 / 2**20, 1)}
              for name, v in runs.items()}
    result["same_lines"] = lines["stretch"][1] == lines["whole"][1]
    result["speedup"] = round(result["whole"]["seconds_median"] / result["stretch"]["seconds_median"], 2)
    print(json.dumps(result, indent=1))
    write_results({"command": f"python bench/bench_late_sound.py --hours {args.hours} --repeat {args.repeat}",
                   "threads": args.threads, "load_average": os.getloadavg(), **result}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
