"""GPU benchmark of the pieces around the transformer: VAE encode/decode, umT5 text and wav2vec2 audio.

    python bench/bench_components.py --out bench_out [--sizes 448x832,704x1280] [--repeat 1]

Full-size random weights made on the GPU (nothing downloaded); prints each result as it lands and
writes bench_components.json under --out after every item, so a run cut short still reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2v_toolkit.commands.models import (  # noqa: E402
    BenchOptions,
    bench_audio,
    bench_text,
    bench_vae,
    environment,
    format_row,
    parse_size,
)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--sizes", default="448x832,704x1280")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--dtype", default="bf16")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = BenchOptions(sizes=[parse_size(s) for s in args.sizes.split(",") if s], what=["text", "audio", "vae"],
                        dtype=args.dtype, frames=args.frames, repeat=args.repeat, warmup=args.warmup)
    record = {"options": opts.to_dict(), "environment": environment(), "results": [], "errors": []}

    def save():
        (out / "bench_components.json").write_text(json.dumps(record, indent=2, default=str) + "\n")

    jobs = [lambda: [bench_text(opts)], lambda: [bench_audio(opts)]]
    jobs += [lambda s=s: bench_vae(opts, s) for s in opts.sizes]
    for job in jobs:
        try:
            for r in job():
                record["results"].append(r.to_dict())
                print(format_row(r), flush=True)
        except Exception:
            record["errors"].append(traceback.format_exc())
            print(record["errors"][-1], flush=True)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
