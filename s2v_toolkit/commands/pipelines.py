"""``s2vt generate``: a new shot from a reference image and a line of audio (Wan S2V)."""

from __future__ import annotations

import sys

from s2v_toolkit.commands.generation_options import (
    add_fast_path_options,
    add_parallel_option,
    add_sampling_options,
    apply_generation_options,
    parse_lora_args,
)


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate a talking shot from a reference image and a line's audio "
                                        "(Wan2.2-S2V)")
    p.add_argument("--image", required=True, help="reference image (PNG, JPEG, ...; the first frame of a video)")
    p.add_argument("--audio", required=True, help="the line's audio (any format FFmpeg reads)")
    p.add_argument("--pose", default=None, metavar="VIDEO",
                   help="pose video that drives the body (its frames follow the output by time)")
    p.add_argument("--prompt", default="", help="text prompt describing the shot")
    p.add_argument("--negative-prompt", default=None,
                   help="negative prompt (default: the S2V config's, as the official pipeline)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="DIR", help="official Wan2.2-S2V-14B checkpoint folder")
    src.add_argument("--model", choices=("tiny",),
                     help="'tiny': random weights built locally, for plumbing tests and the demo only")
    p.add_argument("--transformer", metavar="FILE",
                   help="the DiT weights from a single-file repack (.safetensors incl. fp8, .pth) or another "
                        "folder, instead of the checkpoint's shards")
    p.add_argument("--expert2", metavar="DIR", help="a second S2V-compatible DiT (folder or file): the "
                                                    "low-noise expert, used for steps with t < boundary*1000")
    p.add_argument("--boundary", type=float, default=None,
                   help="MoE boundary as a fraction of 1000 timesteps (e.g. 0.9); needed with --expert2")
    p.add_argument("--guidance2", type=float, default=None, help="guidance of the low-noise expert "
                                                                  "(default: --guidance)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--max-vram", type=float, default=None, metavar="GB",
                   help="fit the run in GB (10^9 bytes) of GPU memory: DiT blocks streamed from host memory, "
                        "text/audio encoders and VAE on the GPU only while used; the cap is enforced")
    p.add_argument("--fp8", default="off", choices=("off", "linears", "all-linears", "attention"),
                   help="approximate fp8 fast path on Hopper GPUs (default off): linears = e4m3 block linears "
                        "except the attention out-projections; all-linears = every block linear; attention = "
                        "all linears plus fp8 self-attention. Outputs differ from bf16; docs/performance.md "
                        "has speed and error")
    add_sampling_options(p)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, recorded in the sidecar); "
                                                          "clip r draws its noise from seed + r, as the official")
    p.add_argument("--fps", default="16", help="output frame rate, e.g. 25, 24000/1001, 29.97 (default 16)")
    p.add_argument("--size", default="448x832",
                   help="maximum area, HEIGHTxWIDTH (default 448x832); orientation follows the reference")
    p.add_argument("--clip-frames", type=int, default=80, help="frames per clip, a multiple of 4 (default 80)")
    p.add_argument("--retime", default="native", choices=("native", "blend", "nearest"),
                   help="native: generate on the output frame grid (default); blend/nearest: generate at "
                        "16 fps and retime")
    p.add_argument("--cfg-batch", default="auto", choices=("auto", "on", "off"),
                   help="run both guidance branches in one batch (auto: when memory allows)")
    p.add_argument("--start-from-reference", action="store_true",
                   help="the reference is the frame before the shot: it fills the last 6 motion frames (the "
                        "official init_first_frame) and the first clip keeps its motion tokens (no trim)")
    p.add_argument("--plan", default=None, choices=("aligned", "official"),
                   help="clip plan: aligned (default: output frame n shows audio frame n) or official (the "
                        "official 3-frame offset); --official sets official")
    p.add_argument("--reference-fit", default=None, choices=("cover", "official"),
                   help="cover (default: resize to cover, centre crop, no borders) or official (the official "
                        "resize + centre crop, black padding where the size was rounded up)")
    p.add_argument("--noise-device", default=None, choices=("model", "cpu"),
                   help="draw each clip's noise on the compute device in the DiT dtype (model: the official, "
                        "default) or on the CPU in float32 (cpu: the same noise for a seed on every machine)")
    p.add_argument("--max-audio-seconds", type=float, default=600.0, help="refuse longer audio (default 600)")
    p.add_argument("--codec", choices=("prores_hq", "h264", "dnxhr_hq"), default=None,
                   help="output codec (default from the extension: .mov ProRes 422 HQ)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-resume", action="store_true",
                   help="do not keep finished clips in .OUT.s2vt-parts/ (kept by default, so that a killed "
                        "run of the same command continues after the last finished clip)")
    add_parallel_option(p)
    add_fast_path_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("-o", "--out", required=True, help="output video (.mov, .mp4, .mxf); a .json sidecar is "
                                                       "written next to it")
    p.set_defaults(func=_cmd_generate)


def _cmd_generate(args) -> int:
    from pathlib import Path

    from s2v_toolkit.media.writer import preset_for
    from s2v_toolkit.pipelines.checkpoint_bundle import locate_checkpoint, tiny_bundle
    from s2v_toolkit.pipelines.distributed import finish_distributed, resolve_parallel
    from s2v_toolkit.pipelines.generation_inputs import (
        DEFAULT_NEGATIVE_PROMPT,
        GenerationSettings,
        fit_size,
        load_drive_audio,
        load_pose_video,
        load_reference_image,
        parse_max_area,
    )
    from s2v_toolkit.pipelines.s2v_generator import RANDOM_WEIGHTS_WARNING, S2VGenerator

    settings = GenerationSettings(
        prompt=args.prompt,
        negative_prompt=DEFAULT_NEGATIVE_PROMPT if args.negative_prompt is None else args.negative_prompt,
        seed=args.seed, fps=args.fps, size=args.size, infer_frames=args.clip_frames, retime=args.retime,
        cfg_batch=args.cfg_batch, boundary=args.boundary, guidance2=args.guidance2,
        start_from_reference=args.start_from_reference, max_audio_seconds=args.max_audio_seconds)
    settings = apply_generation_options(settings, args)
    explicit = {}
    if args.plan is not None:
        explicit["aligned"] = args.plan == "aligned"
    if args.reference_fit is not None:
        explicit["reference_fit"] = args.reference_fit
    if args.noise_device is not None:
        explicit["noise_device"] = args.noise_device
    if explicit:
        from dataclasses import replace

        settings = replace(settings, **explicit)
    loras = parse_lora_args(args.lora)
    # Everything a user can get wrong is checked before any model is loaded.
    settings.validate()
    parallel = resolve_parallel(args.parallel)  # WORLD_SIZE/RANK from torchrun; one process: "none"
    main_rank = parallel.is_main
    if args.max_vram is not None and not args.max_vram > 0:
        from s2v_toolkit.errors import ConfigError

        raise ConfigError(f"--max-vram {args.max_vram}: must be a positive number of GB")
    out = Path(args.out)
    preset_for(out, args.codec)
    if out.exists() and not args.overwrite:
        from s2v_toolkit.errors import OutputError

        raise OutputError(out, "already exists (use --overwrite)")
    image = load_reference_image(args.image)
    audio = load_drive_audio(args.audio, settings.max_audio_seconds)
    fit_size(image.height, image.width, parse_max_area(settings.size))
    pose = load_pose_video(args.pose) if args.pose else None
    if args.model == "tiny":
        bundle = tiny_bundle()
        if args.expert2 or args.transformer:
            bundle = locate_checkpoint(bundle.root, expert2=args.expert2, transformer=args.transformer)
    else:
        bundle = locate_checkpoint(args.checkpoint, expert2=args.expert2, transformer=args.transformer)
    if bundle.random_weights and main_rank:
        print(f"WARNING: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)

    finished = False
    try:
        generator = S2VGenerator.load(bundle, device=args.device, max_vram_gb=args.max_vram,
                                      parallel=parallel if parallel.enabled else None, fp8=args.fp8,
                                      loras=loras, lora_mode=args.lora_mode,
                                      lora_ignore_unmatched=args.lora_ignore_unmatched)
        result = generator.generate(image, audio, settings, out, preset=args.codec, overwrite=args.overwrite,
                                    progress=not args.quiet, pose=pose,
                                    resume_dir=None if args.no_resume else out.with_name(f".{out.name}.s2vt-parts"))
        finished = True
    finally:
        finish_distributed(parallel, wait=finished)  # after a failure: leave without waiting for the others
    if not main_rank:  # rank 0 wrote the output and reports it
        return 0
    h, w = result.frames.shape[1:3]
    print(f"wrote {result.output} ({result.num_frames} frames, {w}x{h} at {result.fps} fps, "
          f"{result.plan.num_clips} clip(s), seed {result.seed}); settings in {result.sidecar}")
    if generator.step_cache is not None:
        c = generator.step_cache.to_dict()
        print(f"step cache: {c['forwards_skipped']} of {c['forwards_total']} forwards skipped")
    if bundle.random_weights:
        print(f"WARNING: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    return 0
