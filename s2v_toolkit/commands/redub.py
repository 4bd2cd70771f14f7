"""``s2vt redub``: re-dub an existing shot with a new line: only the mouth region changes."""

from __future__ import annotations

import argparse
import sys

from s2v_toolkit.commands.generation_options import (
    add_fast_path_options,
    add_parallel_option,
    add_sampling_options,
    apply_generation_options,
    parse_lora_args,
)


def register(sub) -> None:
    p = sub.add_parser("redub", help="lip-sync a shot to a new line of dialogue (masked mouth-region re-dub)",
                       description="Regenerate only the mouth region of the speaking face so the lips match "
                                   "the new audio; every other pixel of the shot stays the source's. The "
                                   "output keeps the shot's frame count, rate and timecode (see docs/redub.md).")
    p.add_argument("video", nargs="?", help="the shot's video file (or --video)")
    p.add_argument("--video", dest="video_opt", metavar="VIDEO", help=argparse.SUPPRESS)
    p.add_argument("--audio", required=True, help="the new line's audio (any format FFmpeg reads)")
    p.add_argument("--range", dest="frame_range", metavar="IN-OUT",
                   help="the shot inside the file: inclusive frames (100-250) or source timecodes "
                        "(01:00:04:00-01:00:09:12); default the whole file")
    p.add_argument("--line-start", metavar="TC",
                   help="where the line starts: a source timecode or a frame number (default: the shot's start)")
    p.add_argument("--face", default="auto",
                   help="whose mouth: auto (the only face, else the active speaker) or a track id "
                        "(see `s2vt faces track`)")
    p.add_argument("--reference", metavar="IMAGE",
                   help="reference image of the character (default: a frame of the shot)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="DIR", help="official Wan2.2-S2V-14B checkpoint folder")
    src.add_argument("--model", choices=("tiny",),
                     help="'tiny': random weights, plumbing tests only (the mouth comes out as noise)")
    p.add_argument("--expert2", metavar="DIR", help="a second (low-noise) DiT expert, with --boundary")
    p.add_argument("--boundary", type=float, default=None, help="MoE boundary as a fraction of 1000 timesteps")
    p.add_argument("--guidance2", type=float, default=None, help="guidance of the low-noise expert")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--prompt", default=None, help="text prompt (default: a person talking to the camera)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (default: the S2V config's)")
    p.add_argument("--max-vram", type=float, default=None, metavar="GB",
                   help="fit the run in GB of GPU memory (see `s2vt generate --max-vram`)")
    p.add_argument("--fp8", default="off", choices=("off", "linears", "all-linears", "attention"),
                   help="approximate fp8 fast path on Hopper GPUs (see `s2vt generate --fp8`; default off)")
    add_sampling_options(p)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, in the sidecar); "
                                                          "clip r draws its noise from seed + r")
    p.add_argument("--clip-frames", type=int, default=80, help="frames per clip, a multiple of 4 (default 80)")
    p.add_argument("--cfg-batch", default="auto", choices=("auto", "on", "off"),
                   help="run both guidance branches in one batch (auto: when memory allows)")
    p.add_argument("--crop", type=int, default=512, help="face crop side in pixels, a multiple of 64 (default 512)")
    p.add_argument("--motion-frames", type=int, default=73,
                   help="preceding frames used as motion context, 1 + 4k (default 73, the model's)")
    p.add_argument("--mask-dilation", type=int, default=1,
                   help="latent cells (8 px of the crop) the latent mask is grown by (default 1)")
    p.add_argument("--blend-until", type=float, default=1.0,
                   help="fraction of the steps during which the unmasked latent is reset to the source "
                        "(default 1: every step)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="1: the mouth is generated from noise; < 1: starts from the source mouth (default 1)")
    p.add_argument("--jaw", action="store_true", help="also regenerate the jaw and chin (larger mask)")
    p.add_argument("--no-color-match", action="store_true", help="paste back without the colour match")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never the source)")
    add_parallel_option(p)
    add_fast_path_options(p, clips=False)
    p.add_argument("--json", action="store_true", help="print the sidecar document")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("-o", "--out", required=True, help="output video (.mov: ProRes 422 HQ, or the source's "
                                                       "codec family); OUT.json sidecar next to it")
    p.set_defaults(func=_cmd_redub)


def _cmd_redub(args) -> int:
    from pathlib import Path

    from s2v_toolkit.commands import print_json
    from s2v_toolkit.errors import ConfigError, MediaError
    from s2v_toolkit.faces import CompositeParams, MaskParams
    from s2v_toolkit.media import probe
    from s2v_toolkit.pipelines.generation_inputs import DEFAULT_NEGATIVE_PROMPT, GenerationSettings
    from s2v_toolkit.pipelines.redub import (
        PLUMBING_NOTE,
        RedubSettings,
        check_output,
        parse_frame,
        parse_frame_range,
        redub_video,
    )
    from s2v_toolkit.pipelines.redub_mask import LatentBlendParams
    from s2v_toolkit.pipelines.redub_sampler import DEFAULT_REDUB_PROMPT, load_generator

    video = args.video or args.video_opt
    if not video:
        raise ConfigError("redub: give the shot's video file (VIDEO or --video)")
    if args.video and args.video_opt and args.video != args.video_opt:
        raise ConfigError("redub: two different videos given (VIDEO and --video)")
    try:
        blend = LatentBlendParams(dilation=args.mask_dilation, blend_until=args.blend_until,
                                  strength=args.strength)
    except ValueError as exc:
        raise ConfigError(f"redub: {exc}") from None
    generation = GenerationSettings(
        prompt=DEFAULT_REDUB_PROMPT if args.prompt is None else args.prompt,
        negative_prompt=DEFAULT_NEGATIVE_PROMPT if args.negative_prompt is None else args.negative_prompt,
        seed=args.seed, infer_frames=args.clip_frames, cfg_batch=args.cfg_batch, boundary=args.boundary,
        guidance2=args.guidance2)
    generation = apply_generation_options(generation, args)
    loras = parse_lora_args(args.lora)
    from s2v_toolkit.pipelines.distributed import finish_distributed, resolve_parallel

    parallel = resolve_parallel(args.parallel)  # WORLD_SIZE/RANK from torchrun; one process: "none"
    settings = RedubSettings(crop_size=args.crop, motion_frames=args.motion_frames, generation=generation,
                             blend=blend, mask=MaskParams(include_jaw=args.jaw),
                             composite=CompositeParams(color_match=not args.no_color_match))
    out = Path(args.out)
    check_output(Path(video), out, args.overwrite)  # before anything slow
    info = probe(video)
    if info.video is None:
        raise MediaError(video, "has no video stream: nothing to re-dub")
    frame_range = parse_frame_range(args.frame_range, info.video) if args.frame_range else None
    line_start = parse_frame(args.line_start, info.video, "--line-start") if args.line_start else None
    face = None
    if args.face != "auto":
        try:
            face = int(args.face)
        except ValueError:
            raise ConfigError(f"--face {args.face!r}: expected auto or a track id") from None
    if args.model == "tiny":
        print(f"WARNING: {PLUMBING_NOTE}", file=sys.stderr)

    def progress(done, total):
        if not args.quiet:
            print(f"\rre-dub: {done}/{total} line frames generated", end="", file=sys.stderr, flush=True)

    finished = False
    try:
        doc = redub_video(video, args.audio, out,
                          generator=lambda: load_generator(args.checkpoint, tiny=args.model == "tiny",
                                                           device=args.device, expert2=args.expert2,
                                                           max_vram_gb=args.max_vram, fp8=args.fp8, loras=loras,
                                                           lora_mode=args.lora_mode,
                                                           lora_ignore_unmatched=args.lora_ignore_unmatched,
                                                           parallel=parallel),
                          settings=settings, frame_range=frame_range, line_start=line_start, face=face,
                          reference=args.reference, overwrite=args.overwrite,
                          progress=progress if parallel.is_main else None)
        finished = True
    finally:
        finish_distributed(parallel, wait=finished)
    if not parallel.is_main:  # rank 0 wrote the output and reports it
        return 0
    if not args.quiet:
        print(file=sys.stderr)
    if args.json:
        print_json(doc)
    else:
        rep = doc["report"]
        t = rep["timing"]
        n_gen = sum(1 for f in rep["frames"] if f["status"] == "generated")
        print(f"wrote {doc['output']['path']} ({doc['output']['frames']} frames at {t['fps']} fps, "
              f"timecode {doc['output']['start_timecode'] or 'none'}); line frames {t['line'][0]}-{t['line'][1]}, "
              f"mouth regenerated in {n_gen}; sidecar {doc['sidecar']}")
    for w in doc["report"]["warnings"]:
        print(f"WARNING: {w}", file=sys.stderr)
    return 0
