"""Find host-device synchronisations inside one S2V transformer forward (CUDA only).

    python bench/host_syncs.py [--full --size 448x832]

Runs one warm forward per path (baseline: plain blocks + SDPA; optimized: fused compiled blocks +
attention "auto") under ``torch.cuda.set_sync_debug_mode("warn")``, which warns at each
synchronising call, and prints the Python line of each. The tiny config is enough: a sync comes
from the code path, not the width.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2v_toolkit.commands.models import parse_size, transformer_inputs  # noqa: E402
from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer  # noqa: E402
from s2v_toolkit.models.attention import set_attention_backend  # noqa: E402
from s2v_toolkit.models.fused import disable_fused_blocks, enable_fused_blocks  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="full-size config (default tiny)")
    ap.add_argument("--size", default="256x256")
    args = ap.parse_args()
    cfg = S2VTransformerConfig.full() if args.full else S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, device="cuda", dtype=torch.bfloat16)
    h, w = parse_size(args.size)
    inputs = transformer_inputs(cfg, h, w, 80, True, "cuda", torch.bfloat16)
    for name, backend, fused in (("baseline", "sdpa", False), ("optimized", "auto", True)):
        set_attention_backend(backend)
        (enable_fused_blocks if fused else disable_fused_blocks)(model)
        with torch.no_grad():
            model(**inputs)  # warm: compile, cuDNN plans, RoPE tables
            torch.cuda.synchronize()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    model(**inputs)
                finally:
                    torch.cuda.set_sync_debug_mode("default")
        syncs = [f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0][:120]}" for w in caught
                 if "called a synchronizing" in str(w.message)]
        print(f"{name}: {len(syncs)} host sync(s)", *syncs, sep="\n  ", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
