"""TeaCache at its default setting against every forward run: one clip's sampling loop, side by side.

One clip of the S2V sampler (``denoise_clip``: 40 UniPC steps, shift 3, guidance 4.5 with both branches
in one batch) with and without ``--cache teacache`` (threshold 0.2, e0 mode), runs alternating, the
median of each reported with the ratio, the forwards skipped and the output difference.

Random weights: TeaCache's rescaling polynomial was fitted on Wan 2.1 14B's real weights and its
criterion reads the time embedding, so the skip pattern (and so the speed-up) on random weights is
not what a real checkpoint gives; this measures the mechanism's cost and gain for the pattern that
occurs, nothing about quality.

    python bench/bench_step_cache.py --tiny --device cpu            # tiny model (CPU)
    python bench/bench_step_cache.py --size 448x832 --json out.json  # full-size DiT on a GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from s2v_toolkit.commands.models import transformer_inputs  # noqa: E402
from s2v_toolkit.models import ExpertSchedule, S2VTransformerConfig, make_scheduler, random_s2v_transformer  # noqa: E402
from s2v_toolkit.models.step_cache import TeaCache, parse_cache  # noqa: E402
from s2v_toolkit.pipelines.sampling import denoise_clip  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--size", default=None, help="HxW pixels (default 448x832; tiny 64x64)")
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default 80; tiny 16)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--cache", default="teacache", help="the cache setting to compare (default teacache = 0.2)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: use --tiny --device cpu")
        return 2
    h, w = (int(v) for v in (args.size or ("64x64" if args.tiny else "448x832")).split("x"))
    frames = args.frames or (16 if args.tiny else 80)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    cfg = S2VTransformerConfig.tiny() if args.tiny else S2VTransformerConfig.full()
    model = random_s2v_transformer(cfg, device=device, dtype=dtype, seed=0).eval()
    inp = transformer_inputs(cfg, h, w, frames, True, device, dtype)
    noise = inp.pop("latents").float()
    inp.pop("timestep")
    cond = {"text_embeddings": inp.pop("text_embeddings"), "audio_features": inp.pop("audio_features")}
    uncond = {"text_embeddings": torch.zeros_like(cond["text_embeddings"]),
              "audio_features": torch.zeros_like(cond["audio_features"])}
    shared = dict(inp, drop_motion_frames=False)
    schedule = ExpertSchedule.single("expert1", 4.5)
    params = parse_cache(args.cache)

    def run(cached: bool):
        cache = TeaCache(params) if cached else None
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = denoise_clip(model, schedule, make_scheduler("unipc"), noise, shared, cond, uncond,
                           steps=args.steps, shift=3.0, batched_cfg=True, step_cache=cache)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out, cache

    run(False)  # warm-up
    times = {"off": [], "on": []}
    for _ in range(args.repeat):
        t, ref, _ = run(False)
        times["off"].append(t)
        t, out, cache = run(True)
        times["on"].append(t)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    stats = cache.to_dict()
    diff = float((out - ref).abs().max() / ref.abs().max())
    record = {"device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
              "model": "tiny" if args.tiny else "S2V-14B", "size": f"{h}x{w}", "frames": frames, "steps": args.steps,
              "cache": params.to_string(), "seconds_off": off, "seconds_on": on, "speedup": off / on,
              "runs": times, "forwards_skipped": stats["forwards_skipped"], "forwards_total": stats["forwards_total"],
              "skipped_steps": [s for _, s in stats["skipped_steps"]],
              "max_rel_diff_of_result": diff, "random_weights": True}
    print(json.dumps({k: v for k, v in record.items() if k != "runs"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
