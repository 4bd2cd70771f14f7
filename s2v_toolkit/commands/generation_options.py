"""Options shared by ``s2vt generate``, ``s2vt redub`` and ``s2vt render``: presets, LoRAs, step
caching, several GPUs. One definition, so the three commands spell and document them the same way."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

PARALLEL_CHOICES = ("auto", "none", "cfg", "ulysses", "cfg+ulysses")
PARALLEL_HELP = ("several GPUs, one process each, launched with torchrun --nproc_per_node N: cfg (2: one "
                 "guidance branch per GPU), ulysses (N dividing the 40 heads: each forward's tokens split), "
                 "cfg+ulysses (2P); auto: none for 1 process, cfg for 2, cfg+ulysses for an even N > 2, "
                 "ulysses for an odd N (default)")
#: sampling options a preset may set: their argparse default is None so that a given value wins
SAMPLING_OPTIONS = {"steps": "steps", "guidance": "guidance", "shift": "shift", "scheduler": "scheduler"}


def add_sampling_options(p, *, steps_help: str = "sampling steps per clip") -> None:
    """--steps/--guidance/--shift/--scheduler with None defaults (the preset's or the official values)."""
    p.add_argument("--steps", type=int, default=None, help=f"{steps_help} (default 40; few-step preset 4)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale, applied only when > 1 (default 4.5; few-step 1)")
    p.add_argument("--scheduler", default=None, choices=("unipc", "dpm++", "euler"),
                   help="sampler (default unipc; few-step euler)")
    p.add_argument("--shift", type=float, default=None, help="timestep shift (default 3; few-step 5)")


def add_fast_path_options(p, *, clips: bool = True) -> None:
    """--preset, --official, --lora, --lora-mode, --lora-ignore-unmatched, --cache, --last-clip (and --num-clips)."""
    from s2v_toolkit.pipelines.presets import PRESETS

    p.add_argument("--preset", default=None, choices=tuple(PRESETS),
                   help="named settings: exact (default: official sampling + aligned audio plan), official "
                        "(reproduce the official S2V output: its 3-frame audio offset and reference "
                        "transform), fast (exact + TeaCache), few-step (4 steps [1000,750,500,250], shift 5, "
                        "Euler, no guidance: for step-distilled LoRAs); explicit options win")
    p.add_argument("--official", action="store_true", help="same as --preset official")
    p.add_argument("--lora", action="append", default=None, metavar="PATH[:STRENGTH]",
                   help="a LoRA file (.safetensors; PEFT/diffusers lora_A/B, kohya lora_down/up+alpha, "
                        "diff/diff_b deltas); repeatable; strength default 1")
    p.add_argument("--lora-mode", default="merge", choices=("merge", "runtime"),
                   help="merge: add the deltas into the weights once (bf16 or fp8; no cost per step, "
                        "default); runtime: low-rank products at every forward (weights untouched)")
    p.add_argument("--lora-ignore-unmatched", action="store_true",
                   help="apply a LoRA even if some of its keys match no layer (they are listed); "
                        "default: refuse")
    p.add_argument("--cache", default=None, metavar="teacache[:THRESH]",
                   help="step caching: teacache[:THRESHOLD[:e|e0]] skips the blocks while the accumulated "
                        "rescaled change of the timestep modulation stays under THRESHOLD (default 0.2; "
                        "coefficients of Wan 2.1 14B, uncalibrated for S2V); none (default) runs all")
    p.add_argument("--last-clip", default=None, choices=("full", "fit"),
                   help="new shots: fit = the last clip generates only the frames it keeps (a multiple of "
                        "4; 5 s = 77 + 3 frames, so 1 latent frame instead of 20), full = a whole clip as the "
                        "official code does (default full; fit with the fast and few-step presets). "
                        "Re-dubs always fit their last clip")
    if clips:
        p.add_argument("--num-clips", type=int, default=None, metavar="N",
                       help="preview: generate only the first N clips (the official --num_clip); the video "
                            "is then shorter than the audio")


def add_parallel_option(p) -> None:
    p.add_argument("--parallel", default="auto", choices=PARALLEL_CHOICES, help=PARALLEL_HELP)


def preset_name(args) -> str | None:
    preset = getattr(args, "preset", None)
    if getattr(args, "official", False):
        if preset not in (None, "official"):
            from s2v_toolkit.errors import ConfigError

            raise ConfigError(f"--official and --preset {preset} conflict: choose one")
        preset = "official"
    return preset


def apply_generation_options(settings, args):
    """``settings`` (a GenerationSettings built from the other options) with the preset applied, then
    the explicitly given sampling options and --cache / --last-clip / --num-clips on top."""
    from s2v_toolkit.pipelines.presets import apply_preset

    explicit = {name for arg, name in SAMPLING_OPTIONS.items() if getattr(args, arg, None) is not None}
    given: dict[str, Any] = {name: getattr(args, arg) for arg, name in SAMPLING_OPTIONS.items()
                             if getattr(args, arg, None) is not None}
    if getattr(args, "cache", None) is not None:
        explicit.add("cache")
        given["cache"] = None if args.cache.lower() in ("none", "off") else args.cache
    if getattr(args, "last_clip", None) is not None:
        explicit.add("fit_last_clip")
        given["fit_last_clip"] = args.last_clip == "fit"
    if getattr(args, "num_clips", None) is not None:
        given["num_clips"] = args.num_clips
    settings = replace(settings, **given)
    return apply_preset(settings, preset_name(args), explicit)


def parse_lora_args(values: list[str] | None):
    """``--lora PATH[:STRENGTH]`` values -> LoraSpec list (files checked to exist)."""
    from s2v_toolkit.models.lora import parse_lora_spec

    return [parse_lora_spec(v) for v in (values or [])]


def settings_field_names(cls) -> set[str]:
    return {f.name for f in fields(cls)}
