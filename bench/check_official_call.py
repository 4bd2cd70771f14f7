"""Check that the end-to-end bench calls the official ``WanModel_S2V`` with the inputs our forward gets.

Tiny random weights on the CPU, float32, the same state dict in both models and the bench's own call
(``bench_end_to_end.official_forward_times``). The official ``flash_attention`` casts q/k/v to bf16
even in a float32 run, so the check runs it twice: with that cast (as the official code computes) and
with float32 attention (what must agree with ours to round-off). The official audio encoder has 25
layers built in, so the tiny config is given 25 audio layers.

    python bench/check_official_call.py --official-repo /path/to/Wan2.2   # needs diffusers + einops

Measured (session 5, CPU): relative L2 2.7e-7 with float32 attention, 1.6e-3 with the official bf16 cast.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from official_wan import call_official, import_official_s2v, sdpa_flash_attention, use_official_attention  # noqa: E402

from s2v_toolkit.commands.models import transformer_inputs  # noqa: E402
from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer  # noqa: E402

def float32_attention(q, k, v, q_lens=None, k_lens=None, dropout_p=0.0, softmax_scale=None, q_scale=None,
                      causal=False, window_size=(-1, -1), deterministic=False, dtype=torch.bfloat16, version=None):
    """The official ``flash_attention`` signature in float32 (no bf16 cast; the tiny run has no padding)."""
    if q_scale is not None:
        q = q * q_scale
    out = F.scaled_dot_product_attention(q.transpose(1, 2).float(), k.transpose(1, 2).float(),
                                         v.transpose(1, 2).float(), is_causal=causal, scale=softmax_scale)
    return out.transpose(1, 2).to(q.dtype)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official-repo", required=True, help="a Wan2.2 checkout (with the wan package)")
    ap.add_argument("--size", default="64x64", help="HxW of the clip (default 64x64)")
    ap.add_argument("--frames", type=int, default=16, help="pixel frames (multiple of 4, default 16)")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))

    cfg = replace(S2VTransformerConfig.tiny(), num_audio_layers=25)
    torch.manual_seed(0)
    ours = random_s2v_transformer(cfg).float().eval()
    official = import_official_s2v(args.official_repo, attention="sdpa")(**cfg.to_official_dict()).float().eval()
    missing, unexpected = official.load_state_dict(ours.state_dict(), strict=False)
    print(f"official state dict: {len(missing)} missing, {len(unexpected)} unexpected keys")
    inp = transformer_inputs(cfg, h, w, args.frames, True, "cpu", torch.float32)
    worst = 0.0
    with torch.no_grad():
        a = ours(**inp)
        a = a[0] if isinstance(a, (list, tuple)) else a
        for name, fn in (("official bf16 attention cast", sdpa_flash_attention), ("float32 attention", float32_attention)):
            use_official_attention(fn)
            b = call_official(official, cfg, inp)  # the call bench_end_to_end times
            b = (b[0] if isinstance(b, (list, tuple)) else b).reshape(a.shape)
            rel = float((a - b).norm() / a.norm())
            print(f"{name:<30} relative L2 {rel:.2e}")
            if fn is float32_attention:
                worst = rel
    ok = worst < 1e-5 and not missing and not unexpected
    print("the bench's official call matches ours" if ok else "MISMATCH: check the call's inputs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
