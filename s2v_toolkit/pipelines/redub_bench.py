"""Cost of crop-space re-dub against generating the full frame: FLOPs, and GPU time per step.

``python -m s2v_toolkit.pipelines.redub_bench`` prints the FLOPs of one sampling step (two forwards:
classifier-free guidance) of the S2V-14B transformer for an 80-frame clip at the crop size and at
the full frame (1080p: the model needs sides that are multiples of 16, so 1088x1920), and their
ratio. ``--time`` also measures the time of one forward of the full-size model with random weights
(bf16, on the GPU) at both sizes. The transformer dominates a step; the VAE and audio encoder run
once per clip, not per step.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch


def _model_side(pixels: int) -> int:
    """The model's side for a frame side: latent (pixels/8) must be even -> multiples of 16."""
    return 16 * math.ceil(pixels / 16)


def cost_ratio(frame: tuple[int, int] = (1080, 1920), crop: int = 512, frames: int = 80) -> dict:
    from s2v_toolkit.models import S2VTransformerConfig, forward_flops

    cfg = S2VTransformerConfig.full()
    fh, fw = _model_side(frame[0]), _model_side(frame[1])
    full = forward_flops(cfg, fh, fw, frames=frames)
    cropped = forward_flops(cfg, crop, crop, frames=frames)
    return {"frames_per_clip": frames, "full_frame": [fh, fw], "crop": [crop, crop],
            "full_tokens": full.tokens, "crop_tokens": cropped.tokens,
            "full_step_pflop": round(2 * full.total / 1e15, 3), "crop_step_pflop": round(2 * cropped.total / 1e15, 3),
            "flop_ratio_full_over_crop": round(full.total / cropped.total, 2)}


@torch.no_grad()
def time_forward(height: int, width: int, frames: int = 80, repeats: int = 2, model=None) -> float:
    """Seconds of one forward of ``model`` (default: S2V-14B, random bf16 weights) on the GPU."""
    from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer

    device = torch.device("cuda")
    model = model or random_s2v_transformer(S2VTransformerConfig.full(), device=device, dtype=torch.bfloat16)
    cfg = model.config
    lat_f, lat_h, lat_w = frames // 4, height // 8, width // 8
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(1, cfg.in_dim, lat_f, lat_h, lat_w, device=device, generator=g, dtype=torch.bfloat16)
    ref = torch.randn(1, cfg.in_dim, 1, lat_h, lat_w, device=device, generator=g, dtype=torch.bfloat16)
    motion = torch.randn(1, cfg.in_dim, cfg.motion_latent_frames, lat_h, lat_w, device=device, generator=g,
                         dtype=torch.bfloat16)
    text = torch.randn(1, cfg.text_len, cfg.text_dim, device=device, generator=g, dtype=torch.bfloat16)
    audio = torch.randn(1, cfg.num_audio_layers, cfg.audio_dim, frames, device=device, generator=g,
                        dtype=torch.bfloat16)
    t = torch.full((1,), 500.0, device=device)

    def once():
        model(x, t, text, audio, ref, motion_latents=motion)

    once()  # warm-up (kernels, RoPE tables)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frame", default="1080x1920", help="full frame HEIGHTxWIDTH (default 1080x1920)")
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--frames", type=int, default=80)
    p.add_argument("--time", action="store_true", help="also time one forward at both sizes on the GPU")
    args = p.parse_args(argv)
    fh, fw = (int(v) for v in args.frame.lower().split("x"))
    report = cost_ratio((fh, fw), args.crop, args.frames)
    if args.time:
        from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer

        model = random_s2v_transformer(S2VTransformerConfig.full(), device="cuda", dtype=torch.bfloat16)
        crop_s = time_forward(args.crop, args.crop, args.frames, model=model)
        full_s = time_forward(_model_side(fh), _model_side(fw), args.frames, repeats=1, model=model)
        report.update({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "crop_step_seconds": round(2 * crop_s, 3), "full_step_seconds": round(2 * full_s, 3),
                       "time_ratio_full_over_crop": round(full_s / crop_s, 2),
                       "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)})
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
