"""``s2vt bench``: time the S2V networks at full size with random weights.

Times the transformer forward, a full denoising step with classifier-free guidance (both branches in
one batch of 2, plus the UniPC update), the VAE encode and decode, and the umT5 / wav2vec2 encoders;
prints seconds, achieved TFLOP/s against :func:`~s2v_toolkit.models.forward_flops` (transformer
only) and peak GPU memory, and writes JSON with ``--json``.

The timing helpers below are also used by the scripts in ``bench/`` (which compare variants in one
run). Nothing is downloaded: every network gets seeded random weights made on the target device.
A machine without CUDA gets a one-line error unless ``--device cpu --tiny`` asks for the tiny
configs (a plumbing check for CI, not a benchmark).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from s2v_toolkit.errors import S2VError

WHAT_CHOICES = ("forward", "step", "vae", "text", "audio")
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
DEFAULT_SIZES = ("448x832", "704x1280")


class BenchError(S2VError):
    """A benchmark cannot run as asked (no CUDA, bad size, bad option)."""


# ----------------------------------------------------------------------------------------------
# Command
# ----------------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("bench", help="time the S2V transformer, CFG step, VAE and encoders with random "
                                     "weights (GPU; --device cpu --tiny for a plumbing check)")
    p.add_argument("--size", action="append", default=None, metavar="HxW",
                   help="video size in pixels, HEIGHTxWIDTH, multiples of 16; repeatable "
                        f"(default {' '.join(DEFAULT_SIZES)})")
    p.add_argument("--what", default="forward,step",
                   help=f"comma-separated parts to time, from {','.join(WHAT_CHOICES)} (default forward,step)")
    p.add_argument("--dtype", default="bf16", choices=tuple(DTYPES), help="weights/activations dtype (default bf16)")
    p.add_argument("--frames", type=int, default=80, help="video frames per clip, a multiple of 4 (default 80)")
    p.add_argument("--no-motion", action="store_true", help="no FramePack motion tokens (the first clip)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per item; the median is reported (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--mode", default="optimized", choices=("optimized", "baseline"),
                   help="optimized: best attention backend + fused blocks (default); baseline: plain "
                        "PyTorch SDPA and the plain blocks")
    p.add_argument("--attention", default=None, choices=("auto", "sdpa", "cudnn", "flash"),
                   help="attention backend (default: auto for optimized, sdpa for baseline)")
    p.add_argument("--no-compile", action="store_true",
                   help="run the fused blocks eagerly instead of through torch.compile")
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--tiny", action="store_true", help="tiny random configs (with --device cpu: CI plumbing check)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    p.add_argument("--json", metavar="OUT", help="write all results as JSON to OUT")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    options = BenchOptions.from_args(args)
    results = run_bench(options, progress=print)
    print()
    print(format_table(results))
    if args.json:
        write_json(args.json, options, results)
        print(f"wrote {args.json}")
    return 0


# ----------------------------------------------------------------------------------------------
# Options and results
# ----------------------------------------------------------------------------------------------
@dataclass
class BenchOptions:
    sizes: list[tuple[int, int]]
    what: list[str]
    dtype: str = "bf16"
    frames: int = 80
    with_motion: bool = True
    repeat: int = 3
    warmup: int = 1
    mode: str = "optimized"
    attention: str | None = None
    compile: bool = True
    device: str = "cuda"
    tiny: bool = False
    seed: int = 0

    @classmethod
    def from_args(cls, args) -> "BenchOptions":
        what = [w.strip() for w in args.what.split(",") if w.strip()]
        unknown = [w for w in what if w not in WHAT_CHOICES]
        if unknown or not what:
            raise BenchError(f"--what {args.what!r}: choose from {','.join(WHAT_CHOICES)}")
        if args.frames <= 0 or args.frames % 4:
            raise BenchError(f"--frames {args.frames}: must be a positive multiple of 4")
        if args.repeat < 1 or args.warmup < 0:
            raise BenchError("--repeat must be >= 1 and --warmup >= 0")
        opts = cls(sizes=[parse_size(s) for s in (args.size or DEFAULT_SIZES)], what=what, dtype=args.dtype,
                   frames=args.frames, with_motion=not args.no_motion, repeat=args.repeat, warmup=args.warmup,
                   mode=args.mode, attention=args.attention, compile=not args.no_compile,
                   device=args.device, tiny=args.tiny, seed=args.seed)
        check_device(opts.device, opts.tiny)
        return opts

    @property
    def attention_backend(self) -> str:
        return self.attention or ("sdpa" if self.mode == "baseline" else "auto")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sizes"] = [f"{h}x{w}" for h, w in self.sizes]
        d["attention_backend"] = self.attention_backend
        return d


@dataclass
class BenchResult:
    what: str
    size: str
    seconds: float  # median of the timed runs
    runs: list[float]
    peak_gb: float | None  # peak GPU memory allocated during the timed runs (None on CPU)
    flops: float | None = None  # FLOPs of one timed call (transformer items only)
    first_call_s: float | None = None  # the first (warm-up) call, compile time included
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tflops(self) -> float | None:
        return None if not self.flops else self.flops / self.seconds / 1e12

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tflops"] = self.tflops
        return d


def parse_size(text: str) -> tuple[int, int]:
    """``"704x1280"`` -> (704, 1280); both multiples of 16 (latent side even after the VAE's /8)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BenchError(f"--size {text!r}: expected HEIGHTxWIDTH, e.g. 704x1280") from None
    if h <= 0 or w <= 0 or h % 16 or w % 16:
        raise BenchError(f"--size {text!r}: height and width must be positive multiples of 16")
    return h, w


def check_device(device: str, tiny: bool) -> None:
    """Refuse, in one line, what cannot run here: CUDA asked for on a machine without it, or a
    full-size benchmark on the CPU."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BenchError("s2vt bench needs a CUDA GPU (none found); for a CPU plumbing check use "
                             "--device cpu --tiny")
    elif not tiny:
        raise BenchError(f"--device {device}: full-size benchmarks run on CUDA only; add --tiny for a "
                         "CPU plumbing check")


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device, repeat: int, warmup: int) -> BenchResult:
    """Median wall time of ``repeat`` calls of ``fn`` after ``warmup`` calls, synchronising the device
    around each call (every call here is seconds long, so host timing is exact enough and sees the
    whole call, host work included). Peak memory is that of the timed calls."""
    import torch

    is_cuda = torch.device(device).type == "cuda"
    first = None
    for i in range(warmup):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        if i == 0:
            first = time.perf_counter() - t0
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    runs = []
    for _ in range(repeat):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        runs.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if is_cuda else None
    return BenchResult(what="", size="", seconds=statistics.median(runs), runs=runs, peak_gb=peak,
                       first_call_s=first)


# ----------------------------------------------------------------------------------------------
# Models and inputs
# ----------------------------------------------------------------------------------------------
def torch_dtype(name: str):
    import torch

    return getattr(torch, DTYPES[name])


def randomize_(module, seed: int = 0):
    """Seeded random weights in place, on the parameters' own device and dtype (for encoders made on
    the meta device: no host copy of a multi-GB model)."""
    import torch

    params = list(module.parameters())
    g = torch.Generator(device=params[0].device).manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight") and p.ndim == 1:
                p.normal_(1.0, 0.05, generator=g)
            elif p.ndim >= 2:
                p.normal_(0.0, max(p[0].numel(), 1) ** -0.5, generator=g)
            else:
                p.normal_(0.0, 0.02, generator=g)
    return module


def build_transformer(opts: BenchOptions):
    from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer

    cfg = S2VTransformerConfig.tiny() if opts.tiny else S2VTransformerConfig.full()
    return random_s2v_transformer(cfg, device=opts.device, dtype=torch_dtype(opts.dtype), seed=opts.seed)


def transformer_inputs(cfg, height: int, width: int, frames: int, with_motion: bool, device, dtype,
                       batch: int = 1, seed: int = 1) -> dict[str, Any]:
    """The forward's keyword arguments for a ``height x width`` clip of ``frames`` pixel frames:
    latents ``[B, 16, frames/4, H/8, W/8]``, full-length text, wav2vec2 features per frame, one
    reference latent and (with motion) 19 motion latents."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    lf, lh, lw = frames // 4, height // 8, width // 8

    def rnd(*shape):
        return torch.randn(*shape, generator=g, device=device, dtype=torch.float32).to(dtype)

    inputs = dict(
        latents=rnd(batch, cfg.in_dim, lf, lh, lw),
        timestep=torch.full((batch,), 700.0, device=device),
        text_embeddings=rnd(batch, cfg.text_len, cfg.text_dim),
        audio_features=rnd(batch, cfg.num_audio_layers, cfg.audio_dim, 4 * lf),
        ref_latents=rnd(batch, cfg.in_dim, 1, lh, lw),
    )
    if with_motion:
        inputs["motion_latents"] = rnd(batch, cfg.in_dim, cfg.motion_latent_frames, lh, lw)
    return inputs


def configure_transformer(model, opts: BenchOptions) -> None:
    """Apply ``opts``' attention backend and (optimized mode) the fused blocks."""
    from s2v_toolkit.models.attention import set_attention_backend
    from s2v_toolkit.models.fused import disable_fused_blocks, enable_fused_blocks

    try:
        set_attention_backend(opts.attention_backend)
    except ValueError as exc:  # e.g. --attention flash without the flash_attn package
        raise BenchError(f"--attention {opts.attention_backend}: {exc}") from None
    if opts.mode == "optimized":
        enable_fused_blocks(model, compile=opts.compile and opts.device.startswith("cuda"))
    else:
        disable_fused_blocks(model)


def bench_forward(model, opts: BenchOptions, size: tuple[int, int]) -> BenchResult:
    import torch

    from s2v_toolkit.models import forward_flops

    h, w = size
    dtype = torch_dtype(opts.dtype)
    inputs = transformer_inputs(model.config, h, w, opts.frames, opts.with_motion, opts.device, dtype)
    with torch.no_grad():
        r = time_calls(lambda: model(**inputs), opts.device, opts.repeat, opts.warmup)
    r.what, r.size = "forward", f"{h}x{w}"
    r.flops = forward_flops(model.config, h, w, opts.frames, opts.with_motion).total
    return r


def bench_step(model, opts: BenchOptions, size: tuple[int, int], guidance: float = 4.5) -> BenchResult:
    """One sampling step: both guidance branches in one batch-2 forward (negative prompt and zeroed
    audio for the unconditional one) and the UniPC update."""
    import torch

    from s2v_toolkit.models import forward_flops, make_scheduler
    from s2v_toolkit.pipelines.guidance import guided_prediction

    h, w = size
    dtype = torch_dtype(opts.dtype)
    inputs = transformer_inputs(model.config, h, w, opts.frames, opts.with_motion, opts.device, dtype)
    negative = transformer_inputs(model.config, h, w, opts.frames, opts.with_motion, opts.device, dtype,
                                  seed=2)["text_embeddings"]
    cond = {"text_embeddings": inputs.pop("text_embeddings"), "audio_features": inputs.pop("audio_features")}
    uncond = {"text_embeddings": negative, "audio_features": torch.zeros_like(cond["audio_features"])}
    scheduler = make_scheduler("unipc")
    scheduler.set_timesteps(40, shift=3.0, device=opts.device)
    sample = inputs["latents"].float()

    def step():
        # The same step index every call: the multistep history is reset so each call does the same work.
        scheduler.set_timesteps(40, shift=3.0, device=opts.device)
        v = guided_prediction(model, inputs, cond, uncond, guidance, batched=True)
        return scheduler.step(v, 0, sample)

    with torch.no_grad():
        r = time_calls(step, opts.device, opts.repeat, opts.warmup)
    r.what, r.size = "step", f"{h}x{w}"
    r.flops = forward_flops(model.config, h, w, opts.frames, opts.with_motion, batch=2).total
    return r


def bench_vae(opts: BenchOptions, size: tuple[int, int]) -> list[BenchResult]:
    """Encode ``frames + 1`` pixel frames (the Wan ``1 + 4k`` layout) and decode their latents."""
    import torch

    from s2v_toolkit.models import WanVAEConfig
    from s2v_toolkit.models.wan_vae import build_wan_vae

    h, w = size
    cfg = WanVAEConfig.tiny() if opts.tiny else WanVAEConfig.full()
    torch.manual_seed(opts.seed)
    vae = build_wan_vae(cfg, device=opts.device, dtype=torch_dtype(opts.dtype))
    g = torch.Generator(device=opts.device).manual_seed(opts.seed + 1)
    video = torch.rand(1, 3, opts.frames + 1, h, w, generator=g, device=opts.device).mul_(2).sub_(1)
    latents = torch.randn(1, cfg.z_dim, opts.frames // 4 + 1, h // 8, w // 8, generator=g, device=opts.device)
    out = []
    for name, fn in (("vae_encode", lambda: vae.encode(video)), ("vae_decode", lambda: vae.decode(latents))):
        r = time_calls(fn, opts.device, opts.repeat, opts.warmup)
        r.what, r.size = name, f"{h}x{w}"
        r.extra = {"frames": opts.frames + 1}
        out.append(r)
    del vae
    return out


def bench_text(opts: BenchOptions) -> BenchResult:
    """umT5-XXL encoder on a full 512-token prompt (batch 2: prompt and negative prompt)."""
    import torch

    from s2v_toolkit.models import UMT5Config, UMT5Encoder

    cfg = UMT5Config.tiny() if opts.tiny else UMT5Config.full()
    with torch.device("meta"):
        enc = UMT5Encoder(cfg).to(torch_dtype(opts.dtype))
    enc = randomize_(enc.to_empty(device=opts.device), opts.seed).eval()
    g = torch.Generator(device=opts.device).manual_seed(opts.seed)
    ids = torch.randint(0, cfg.vocab_size, (2, cfg.text_len), generator=g, device=opts.device)
    mask = torch.ones_like(ids)
    mask[:, cfg.text_len // 4:] = 0  # a typical prompt: a quarter of the rows are tokens
    with torch.no_grad():
        r = time_calls(lambda: enc(ids, mask), opts.device, opts.repeat, opts.warmup)
    r.what, r.size = "text", f"2x{cfg.text_len} tokens"
    del enc
    return r


def bench_audio(opts: BenchOptions) -> BenchResult:
    """wav2vec2-large (24 layers, all hidden states) on the audio of one clip (frames at 16 fps)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    if opts.tiny:
        cfg = Wav2Vec2Config(hidden_size=24, num_hidden_layers=4, num_attention_heads=2, intermediate_size=48,
                             conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                             do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    else:  # the architecture of wav2vec2-large-xlsr-53
        cfg = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                             do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    with torch.device("meta"):
        model = Wav2Vec2Model(cfg).to(torch_dtype(opts.dtype))
    model = randomize_(model.to_empty(device=opts.device), opts.seed).eval()
    seconds = opts.frames / 16
    g = torch.Generator(device=opts.device).manual_seed(opts.seed)
    wave = torch.randn(1, int(16000 * seconds), generator=g, device=opts.device).to(torch_dtype(opts.dtype))
    with torch.no_grad():
        r = time_calls(lambda: model(wave, output_hidden_states=True), opts.device, opts.repeat, opts.warmup)
    r.what, r.size = "audio", f"{seconds:g} s"
    del model
    return r


# ----------------------------------------------------------------------------------------------
# Driver, table, JSON
# ----------------------------------------------------------------------------------------------
def run_bench(opts: BenchOptions, progress: Callable[[str], Any] | None = None) -> list[BenchResult]:
    """Run every item of ``opts`` (encoders first, then the transformer) and return the results."""
    import gc

    import torch

    say = progress or (lambda s: None)
    results: list[BenchResult] = []

    def done(r: BenchResult) -> None:
        results.append(r)
        say(f"  {format_row(r)}")

    if "text" in opts.what:
        done(bench_text(opts))
    if "audio" in opts.what:
        done(bench_audio(opts))
    if "vae" in opts.what:
        for size in opts.sizes:
            for r in bench_vae(opts, size):
                done(r)
    gc.collect()
    if opts.device.startswith("cuda"):
        torch.cuda.empty_cache()
    if "forward" in opts.what or "step" in opts.what:
        model = build_transformer(opts)
        configure_transformer(model, opts)
        for size in opts.sizes:
            if "forward" in opts.what:
                done(bench_forward(model, opts, size))
            if "step" in opts.what:
                done(bench_step(model, opts, size))
        del model
    return results


def format_row(r: BenchResult) -> str:
    tf = f"{r.tflops:7.1f}" if r.tflops else "      -"
    peak = f"{r.peak_gb:6.1f}" if r.peak_gb is not None else "     -"
    first = f"{r.first_call_s:8.2f}" if r.first_call_s is not None else "       -"
    return f"{r.what:<11} {r.size:<16} {r.seconds:9.3f} {tf} {peak} {first}"


def format_table(results: list[BenchResult]) -> str:
    head = f"{'what':<11} {'size':<16} {'seconds':>9} {'TFLOP/s':>7} {'peakGB':>6} {'first_s':>8}"
    return "\n".join([head] + [format_row(r) for r in results])


def environment() -> dict[str, Any]:
    """Device and library versions for the record."""
    import platform

    import torch

    env: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}
    if torch.cuda.is_available():
        env["device"] = torch.cuda.get_device_name()
        env["capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
        env["cudnn"] = torch.backends.cudnn.version()
    else:
        env["device"] = "cpu"
    return env


def write_json(path: str | os.PathLike, opts: BenchOptions, results: list[BenchResult]) -> None:
    from s2v_toolkit.media import atomic_output

    doc = {"options": opts.to_dict(), "environment": environment(), "results": [r.to_dict() for r in results]}
    with atomic_output(path, overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2, default=str) + "\n")

