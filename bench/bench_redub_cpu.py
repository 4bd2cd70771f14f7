"""CPU side of the streamed re-dub: ms per 1080p frame of everything except the models (issue 20).

    python bench/bench_redub_cpu.py [--repeats 3] [--baseline-repo /tmp/redub_base]
                                    [--json bench/results/cpu_redub_stream.json] [--profile 30]

The shot: bench_end_to_end's synthetic 1080p re-dub shot (5 s, 25 fps, 1920x1080, a 260 px face, the
line over the whole shot), the default crop (512), clip (80 frames) and motion context (73 frames).
What is timed: ``plan_face_crops`` and the whole ``redub_frames`` call, the real streaming path, with a
stand-in generator whose parts cost next to nothing:

- ``vae.encode`` returns zeros of the latent's shape, ``vae.decode`` a placeholder, ``frame_features``
  zeros, ``sample_masked_clip`` returns the original latent;
- ``to_video_tensor`` only wraps the (already stacked) crops without the float scaling and
  ``to_frames`` returns fixed pseudo-random uint8 crops (the "generated" mouths): on a GPU those
  conversions run on the device, so they are not part of the host's share.

So what is left is the host's work: the frame copies, the crops (warpAffine), the crop-space masks, the
latent mask, the motion-context mix, the frame-space masks and the paste back (warp, colour match,
blend). The generated crops are the same in every run, so the output frames can be hashed: the bench
prints each tree's hash, and with ``--baseline-repo`` (a checkout of an earlier commit, e.g. ``git
worktree add /tmp/redub_base <commit>``) the two trees run alternately in subprocesses (each repo
first on PYTHONPATH), median of ``--repeats`` runs each, and the hashes must agree.

``--profile N``: one cProfile run of this tree, the top N functions by own time.

``--pix-fmt yuv422p10le`` (or another planar format): the frames are given as PlanarFrames in that format
(converted from the RGB shot before timing), as ``redub_video`` reads a 10-bit master: the crops and the
paste back then convert only their windows, and the crops are 16-bit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


class _StubVAE:
    """Zeros of the latent's shape (causal time: 1 + (T - 1) / 4 latents, 8x8 pixels per cell)."""

    def encode(self, x, chunked=False):
        import torch

        t = x.shape[2]
        return torch.zeros(1, 16, 1 + (t - 1) // 4, x.shape[3] // 8, x.shape[4] // 8)

    def decode(self, z, chunked=False):
        import torch

        t = 1 + 4 * (z.shape[2] - 1)
        return torch.zeros(1, 1, t, 1, 1)  # shape carrier only: the stub to_frames makes the pixels


def _install_stubs(crop: int):
    """Patch the re-dub module's model calls; returns the stand-in generator."""
    import types

    import torch

    import s2v_toolkit.pipelines.redub as redub

    rng = np.random.default_rng(7)
    pool = rng.integers(30, 220, (160, crop, crop, 3), dtype=np.uint8)

    def to_video_tensor(frames, device, dtype=torch.float32):
        frames = np.ascontiguousarray(frames)  # the host copy the real call makes before the upload
        return torch.from_numpy(frames).permute(3, 0, 1, 2)[None]

    def to_frames(video, dtype=np.uint8):
        t = video.shape[2]
        return pool[:t].astype(dtype) if np.dtype(dtype) != np.uint8 else pool[:t].copy()

    def sample_masked_clip(generator, *, original, **kw):
        return original

    redub.to_video_tensor = to_video_tensor
    redub.to_frames = to_frames
    redub.sample_masked_clip = sample_masked_clip
    return types.SimpleNamespace(
        device=torch.device("cpu"), vae=_StubVAE(),
        frame_features=lambda audio, fps, n: torch.zeros(n, 2, 8))


def _shot(seconds: float):
    sys.path.insert(0, str(HERE))
    from bench_end_to_end import synthetic_redub_shot

    return synthetic_redub_shot(tiny=False, seconds=seconds)


def _planar_shot(shot, pix_fmt: str):
    from s2v_toolkit.media import from_rgb

    frames, analysis, fps = shot
    return [from_rgb(f, pix_fmt) for f in frames], analysis, fps


def _hash_frames(h, out) -> None:
    if isinstance(out, np.ndarray):
        h.update(np.ascontiguousarray(out).tobytes())
        return
    for fr in out:
        for p in fr.planes:
            h.update(np.ascontiguousarray(p).tobytes())


def _run_once(shot, generator, crop: int):
    from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
    from s2v_toolkit.pipelines.redub import RedubSettings, place_line, redub_frames
    from s2v_toolkit.pipelines.redub_crop import plan_face_crops

    frames, analysis, fps = shot
    n = len(frames)
    settings = RedubSettings(crop_size=crop, motion_frames=73,
                             generation=GenerationSettings(prompt="x", seed=0, infer_frames=80, steps=4))
    timing = place_line(0, n - 1, 0, n / float(fps), fps)
    audio = np.zeros(int(16000 * n / float(fps)), np.float32)
    t0 = time.perf_counter()
    plan = plan_face_crops(analysis.tracks[0], 0, n - 1, crop)
    t1 = time.perf_counter()
    out, report = redub_frames(frames, timing, audio, plan, generator, settings)
    t2 = time.perf_counter()
    h = hashlib.blake2b(digest_size=16)
    _hash_frames(h, out)
    h.update(json.dumps([report.status, report.mask_coverage]).encode())
    return {"plan_s": t1 - t0, "stream_s": t2 - t1, "total_s": t2 - t0, "frames": n,
            "generated": report.status.count("generated"), "hash": h.hexdigest()}


def worker(args) -> dict:
    import s2v_toolkit

    shot = _shot(args.seconds)
    if args.pix_fmt:
        shot = _planar_shot(shot, args.pix_fmt)
    generator = _install_stubs(args.crop)
    _run_once(shot, generator, args.crop)  # warm-up: imports, first allocations
    runs = [_run_once(shot, generator, args.crop) for _ in range(args.inner)]
    return {"repo": str(Path(s2v_toolkit.__file__).resolve().parents[1]), "runs": runs}


def profile(args) -> list[dict]:
    import cProfile
    import pstats

    shot = _shot(args.seconds)
    if args.pix_fmt:
        shot = _planar_shot(shot, args.pix_fmt)
    generator = _install_stubs(args.crop)
    _run_once(shot, generator, args.crop)
    prof = cProfile.Profile()
    prof.enable()
    res = _run_once(shot, generator, args.crop)
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _) in st.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({name})", "calls": nc,
                     "own_ms_per_frame": 1e3 * tt / res["frames"], "cum_ms_per_frame": 1e3 * ct / res["frames"]})
    rows.sort(key=lambda r: -r["own_ms_per_frame"])
    print(f"profiled run: {1e3 * res['total_s'] / res['frames']:.1f} ms/frame (with profiler overhead)")
    for r in rows[:args.profile]:
        print(f"{r['own_ms_per_frame']:8.2f} {r['cum_ms_per_frame']:8.2f} {r['calls']:7d}  {r['function']}")
    return rows[:args.profile]


def _spawn(repo: Path, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--inner", str(args.inner),
           "--seconds", str(args.seconds), "--crop", str(args.crop)] + (["--pix-fmt", args.pix_fmt] if args.pix_fmt else [])
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"worker for {repo} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="subprocesses per tree (alternating)")
    ap.add_argument("--inner", type=int, default=1, help="timed runs per subprocess (after a warm-up)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--pix-fmt", help="give the frames as PlanarFrames in this planar format (e.g. yuv422p10le)")
    ap.add_argument("--baseline-repo", type=Path, help="an earlier checkout to time side by side")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", type=int, default=0, help="profile this tree; print the top N functions")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.profile:
        rows = profile(args)
        if args.json:
            args.json.write_text(json.dumps({"profile": rows}, indent=1))
        return
    here = HERE.parent
    trees = {"optimised": here}
    if args.baseline_repo is not None:
        trees = {"baseline": args.baseline_repo.resolve(), "optimised": here}
    load_before = os.getloadavg()
    samples: dict[str, list[dict]] = {k: [] for k in trees}
    for _ in range(args.repeats):
        for name, repo in trees.items():  # alternate, so a load change hits both
            got = _spawn(repo, args)
            samples[name] += got["runs"]
            r = got["runs"][-1]
            print(f"{name:9s} {1e3 * r['total_s'] / r['frames']:7.2f} ms/frame  (plan {r['plan_s']:.2f} s, "
                  f"stream {r['stream_s']:.2f} s)  load {os.getloadavg()[0]:.2f}  hash {r['hash']}", flush=True)
    load_after = os.getloadavg()
    summary = {}
    for name, runs in samples.items():
        n = runs[0]["frames"]
        summary[name] = {"repo": str(trees[name]),
                         "ms_per_frame_median": 1e3 * statistics.median(r["total_s"] for r in runs) / n,
                         "ms_per_frame_runs": [round(1e3 * r["total_s"] / n, 2) for r in runs],
                         "plan_ms_per_frame_median": 1e3 * statistics.median(r["plan_s"] for r in runs) / n,
                         "stream_ms_per_frame_median": 1e3 * statistics.median(r["stream_s"] for r in runs) / n,
                         "frames": n, "generated_frames": runs[0]["generated"],
                         "hashes": sorted({r["hash"] for r in runs})}
    doc = {"bench": "bench/bench_redub_cpu.py", "args": {k: str(v) for k, v in vars(args).items()},
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "python": platform.python_version()},
           "loadavg_before": load_before, "loadavg_after": load_after, "trees": summary}
    if "baseline" in summary:
        b, o = summary["baseline"], summary["optimised"]
        doc["speedup"] = b["ms_per_frame_median"] / o["ms_per_frame_median"]
        doc["same_output"] = b["hashes"] == o["hashes"] and len(b["hashes"]) == 1
        print(f"baseline {b['ms_per_frame_median']:.2f} ms/frame, optimised {o['ms_per_frame_median']:.2f} ms/frame: "
              f"x{doc['speedup']:.2f}; same output: {doc['same_output']}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
