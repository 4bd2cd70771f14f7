"""Where the time of one full-size transformer forward goes, by kernel kind (torch.profiler), for the
bf16 optimized path and the fastest fp8 mode, in one run (issue 6: the profile behind the targets).

    python bench/profile_forward.py --out bench_out [--sizes 704x1280] [--fp8-mode attention]

Random bf16 weights at full size, 80 frames with motion tokens, fused compiled blocks. For each size:
the bf16 forward (attention ``auto``) is profiled, then the model gets ``apply_fp8_mode(--fp8-mode)``
and the same forward is profiled again. Kernel time by kind (attention, matrix products, our fused
Triton kernels, everything else) and the top kernels go to ``profile_forward.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_transformer import kernel_profile  # noqa: E402

from s2v_toolkit.commands.models import environment, parse_size, transformer_inputs  # noqa: E402
from s2v_toolkit.models import S2VTransformerConfig, forward_flops, random_s2v_transformer  # noqa: E402
from s2v_toolkit.models.attention import set_attention_backend  # noqa: E402
from s2v_toolkit.models.fp8 import apply_fp8_mode  # noqa: E402
from s2v_toolkit.models.fused import enable_fused_blocks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--sizes", default="704x1280")
    ap.add_argument("--fp8-mode", default="attention")
    ap.add_argument("--frames", type=int, default=80)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"environment": environment(), "rows": []}
    cfg = S2VTransformerConfig.full()
    model = random_s2v_transformer(cfg, device="cuda", dtype=torch.bfloat16, seed=0)
    set_attention_backend("auto")
    enable_fused_blocks(model)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]

    def profile_all(variant: str) -> None:
        for h, w in sizes:
            inputs = transformer_inputs(cfg, h, w, args.frames, True, "cuda", torch.bfloat16)
            t0 = time.perf_counter()
            with torch.no_grad():
                row = kernel_profile(lambda: model(**inputs))
            row.update(variant=variant, size=f"{h}x{w}", wall_s_incl_warmup=time.perf_counter() - t0,
                       pflop=forward_flops(cfg, h, w, args.frames, True).total / 1e15)
            record["rows"].append(row)
            print(json.dumps(row), flush=True)
            (out / "profile_forward.json").write_text(json.dumps(record, indent=1))
            del inputs
            torch.cuda.empty_cache()

    profile_all("bf16")
    info = apply_fp8_mode(model, args.fp8_mode, "cuda")
    record["fp8"] = info
    profile_all(f"fp8 {args.fp8_mode}")
    set_attention_backend("auto")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
