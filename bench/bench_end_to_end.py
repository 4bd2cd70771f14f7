"""End to end, per preset: 5 s of 720p new shot and 5 s of 1080p re-dub (512x512 face crop), random weights.

What is timed (one process, one GPU, models resident): the whole ``S2VGenerator.generate`` call for the
new shot and the whole ``redub_frames`` call for the re-dub: text (umT5, the prompt cache emptied before
each run), audio (wav2vec2), VAE encodes, every denoising step, VAE decodes (and for the re-dub the
face crops and the paste back). The breakdown comes from wrappers that synchronise the device around
each part; "denoise" is the sampling loops (DiT forwards, solver, blending), the rest is total minus
the parts (crops, paste back, copies, retiming).

Presets (``s2v_toolkit.pipelines.presets``): exact (40 UniPC steps, guidance 4.5: two forwards per step),
fast (exact + TeaCache 0.2), few-step (4 Euler steps on [1000, 750, 500, 250], shift 5, no guidance).
With random weights TeaCache's skip pattern is not the one real weights give (its criterion depends on
the time embedding's weights): the fast preset's time here is an illustration of the mechanism, not a
prediction. Few-step with random weights times the schedule; quality needs a distilled LoRA.

Next to ours, in the same run: the official ``WanModel_S2V`` forward time at 704x1280 and at the re-dub's
512x512 on the same random weights (our state dict loads into it unchanged), when ``--official-repo``
points at a Wan2.2 checkout (its ``wan`` package importable); skipped with the reason otherwise.

    python bench/bench_end_to_end.py --json bench/results/h100_end_to_end.json          # GPU (H100)
    python bench/bench_end_to_end.py --tiny --device cpu --json /tmp/e2e_cpu.json       # CPU smoke mode

``--tiny``: the tiny random models at small sizes (64x80 shot, 320x192 frames with a 64 crop), the same
code path: a plumbing check, its times mean nothing for the GPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from s2v_toolkit.pipelines.generation_inputs import DriveAudio, GenerationSettings, ReferenceImage  # noqa: E402
from s2v_toolkit.pipelines.presets import apply_preset  # noqa: E402

PRESETS = ("exact", "fast", "few-step")
SR = 16000


def log(msg: str) -> None:
    print(msg, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------
def build_generator(tiny: bool, device: torch.device, bundle_dir: Path):
    """The tiny bundle loaded as usual, or full-size random models built in memory (no 50 GB on disk:
    the tiny bundle only lends its tokenizer and feature-extractor files and the metadata)."""
    from s2v_toolkit.pipelines.checkpoint_bundle import build_tiny_bundle
    from s2v_toolkit.pipelines.s2v_generator import S2VGenerator

    bundle = build_tiny_bundle(bundle_dir)
    if tiny:
        return S2VGenerator.load(bundle, device=device)
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from s2v_toolkit.commands.models import randomize_
    from s2v_toolkit.models import (
        S2VTransformerConfig,
        UMT5Config,
        UMT5TextEncoder,
        WanVAEConfig,
        Wav2Vec2AudioEncoder,
        build_wan_vae,
        enable_fused_blocks,
        load_umt5_tokenizer,
        random_s2v_transformer,
    )
    from s2v_toolkit.models.umt5 import UMT5Encoder

    bf16 = torch.bfloat16
    log("building full-size random models on the device ...")
    dit = random_s2v_transformer(S2VTransformerConfig.full(), device=device, dtype=bf16, seed=0)
    enable_fused_blocks(dit)
    vae = build_wan_vae(WanVAEConfig.full(), device=device, dtype=torch.float32)
    with torch.device("meta"):
        t5 = UMT5Encoder(UMT5Config.full()).to(bf16)
    t5 = randomize_(t5.to_empty(device=device), 0).eval().requires_grad_(False)
    text = UMT5TextEncoder(t5, load_umt5_tokenizer(bundle.tokenizer))
    w2v_cfg = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                             do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    with torch.device("meta"):
        w2v = Wav2Vec2Model(w2v_cfg)
    w2v = randomize_(w2v.to_empty(device=device), 0)
    audio = Wav2Vec2AudioEncoder(w2v, Wav2Vec2FeatureExtractor.from_pretrained(str(bundle.wav2vec2)), device)
    return S2VGenerator(bundle, {"expert1": dit}, vae, text, audio, device, bf16)


# ----------------------------------------------------------------------------------------------
# timing of the parts
# ----------------------------------------------------------------------------------------------
class PartTimer:
    """Wraps the generator's parts to add up their synchronised wall times; counts DiT forwards."""

    def __init__(self, generator):
        self.g = generator
        self.device = generator.device
        self.times: dict[str, float] = {}
        self.forwards = 0
        self._undo = []

    def _wrap(self, obj, name: str, part: str | None) -> None:
        original = getattr(obj, name)

        def timed(*args, **kwargs):
            if part is None:  # a counter only: every DiT forward (computed or cached) embeds its inputs once
                self.forwards += 1
                return original(*args, **kwargs)
            sync(self.device)
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                sync(self.device)
                self.times[part] = self.times.get(part, 0.0) + time.perf_counter() - t0

        setattr(obj, name, timed)
        self._undo.append((obj, name, original))

    @contextmanager
    def active(self):
        from s2v_toolkit.pipelines import s2v_generator, sampling

        g = self.g
        self._wrap(g.text_cache.encoder, "encode", "text")
        self._wrap(g.audio_encoder, "frame_features", "audio")
        self._wrap(g.vae, "encode", "vae_encode")
        self._wrap(g.vae, "decode", "vae_decode")
        # the sampling loops (forwards + solver + blending); new shots and re-dubs import it differently
        self._wrap(s2v_generator, "denoise_clip", "denoise")
        self._wrap(sampling, "denoise_clip", "denoise")
        for expert in g.experts.values():
            self._wrap(expert, "embed_inputs", None)
        try:
            yield self
        finally:
            for obj, name, original in reversed(self._undo):
                if isinstance(obj, torch.nn.Module) or not hasattr(type(obj), name):
                    setattr(obj, name, original)  # modules, and functions of a module
                else:
                    del obj.__dict__[name]  # an instance attribute over the class's method
            self._undo.clear()


# ----------------------------------------------------------------------------------------------
# scenarios
# ----------------------------------------------------------------------------------------------
def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def settings_for(preset: str, tiny: bool, max_steps: int | None, **kw) -> GenerationSettings:
    s = apply_preset(GenerationSettings(prompt="a person talking to the camera", seed=0, **kw), preset)
    if max_steps is not None and s.steps > max_steps and s.sampler_timesteps is None:
        s = replace(s, steps=max_steps)
    return s


def run_new_shot(generator, preset: str, args, clips: int | None = None, last_clip: str | None = None) -> dict:
    h, w = (80, 100) if args.tiny else (720, 1280)
    rng = np.random.default_rng(0)
    image = ReferenceImage(path=Path("reference.png"), pixels=rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    audio = DriveAudio(path=Path("line.wav"), waveform=tone(args.seconds))
    settings = settings_for(preset, args.tiny, args.max_steps, size="64x80" if args.tiny else "704x1280",
                            fps=Fraction(16), infer_frames=16 if args.tiny else 80, num_clips=clips)
    if last_clip is not None:
        settings = replace(settings, fit_last_clip=last_clip == "fit")
    generator.text_cache._cache.clear()
    timer = PartTimer(generator)
    with timer.active():
        sync(generator.device)
        t0 = time.perf_counter()
        result = generator.generate(image, audio, settings)
        sync(generator.device)
        total = time.perf_counter() - t0
    cache = generator.step_cache.to_dict() if generator.step_cache is not None else None
    h, w = result.frames.shape[1:3]
    return {"scenario": "new_shot", "preset": preset, "size": f"{h}x{w}",
            "frames": result.num_frames, "clips": result.plan.num_clips, "steps": settings.steps,
            "guidance": settings.guidance, "seconds": total, "parts": timer.times, "forwards": timer.forwards,
            "last_clip": "fit" if settings.fit_last_clip else "full",
            "generated_per_clip": [c.generated for c in result.plan.clips],
            "pflop_all_forwards": plan_pflops(generator, result.plan, h, w, settings),
            "step_cache": cache}


def plan_pflops(generator, plan, height: int, width: int, settings) -> float:
    """FLOPs (1e15) of every DiT forward the plan asks for, from the layer shapes (no step skipped): a
    fitted last clip shows here as what it saves."""
    from s2v_toolkit.models import forward_flops

    config = next(iter(generator.experts.values())).config
    branches = 2 if settings.guidance > 1 else 1
    return sum(forward_flops(config, height, width, c.generated, not c.drop_motion).total
               for c in plan.clips) * settings.steps * branches / 1e15


def synthetic_redub_shot(tiny: bool, seconds: float):
    """A face (synthetic landmarks, scripted detector) on a moving noise background; 25 fps."""
    from s2v_toolkit.faces import FaceObservation, analyze_frames
    from s2v_toolkit.faces.synthetic import posed_face

    fps = Fraction(25)
    w, h = (320, 192) if tiny else (1920, 1080)
    n = int(seconds * fps)
    rng = np.random.default_rng(1)
    base = rng.integers(40, 200, (h + 64, w + 64, 3), dtype=np.uint8)
    frames = np.stack([base[k % 64: k % 64 + h, 0:w] for k in range(n)])
    face_w = 60 if tiny else 260
    script = {k: [posed_face(center=(w / 2 + 0.5 * k, h / 2), width=face_w, mouth_open=0.1 + 0.05 * (k % 5))]
              for k in range(n)}

    class Scripted:
        def detect(self, frame, index):
            return [FaceObservation(lm) for lm in script.get(index, [])]

    analysis = analyze_frames(((k, frames[k]) for k in range(n)), float(fps), Scripted(), start=0, end=n - 1)
    return frames, analysis, fps


def run_redub(generator, preset: str, args, shot) -> dict:
    from s2v_toolkit.pipelines.redub import RedubSettings, place_line, redub_frames
    from s2v_toolkit.pipelines.redub_crop import plan_face_crops

    frames, analysis, fps = shot
    n = len(frames)
    crop = 64 if args.tiny else 512
    gen = settings_for(preset, args.tiny, args.max_steps, infer_frames=16 if args.tiny else 80)
    settings = RedubSettings(crop_size=crop, motion_frames=5 if args.tiny else 73, generation=gen)
    timing = place_line(0, n - 1, 0, n / float(fps), fps)
    generator.text_cache._cache.clear()
    timer = PartTimer(generator)
    with timer.active():
        sync(generator.device)
        t0 = time.perf_counter()
        plan = plan_face_crops(analysis.tracks[0], 0, n - 1, crop)
        out, report = redub_frames(frames, timing, tone(n / float(fps)), plan, generator, settings)
        sync(generator.device)
        total = time.perf_counter() - t0
    cache = generator.step_cache.to_dict() if generator.step_cache is not None else None
    return {"scenario": "redub", "preset": preset, "size": f"{frames.shape[1]}x{frames.shape[2]} crop {crop}",
            "frames": n, "clips": len(report.clips), "steps": gen.steps, "guidance": gen.guidance,
            "seconds": total, "parts": timer.times, "forwards": timer.forwards, "step_cache": cache}


# ----------------------------------------------------------------------------------------------
# the attention backends and the official forward, same weights
# ----------------------------------------------------------------------------------------------
def forward_call(model, cfg, h: int, w: int, device):
    from s2v_toolkit.commands.models import transformer_inputs

    inp = transformer_inputs(cfg, h, w, 80, True, device, torch.bfloat16)

    def call():
        with torch.no_grad():
            return model(**inp)
    return inp, call


def backend_forward_times(generator, backends: list[str], sizes: list[tuple[int, int]], repeat: int) -> list[dict]:
    """Seconds per forward of our DiT with each attention backend, and the relative L2 difference of
    its output from the ``cudnn`` backend's (the exact bf16 path) on the same inputs."""
    from bench_common import event_time

    from s2v_toolkit.models.attention import get_attention_backend, set_attention_backend

    ours = next(iter(generator.experts.values()))
    rows, before = [], get_attention_backend()
    for h, w in sizes:
        _, call = forward_call(ours, ours.config, h, w, generator.device)
        reference = None
        for name in backends:
            row = {"size": f"{h}x{w}", "backend": name}
            try:
                set_attention_backend(name)
                out = call()
                out = out[0] if isinstance(out, (list, tuple)) else out
                if reference is None:
                    reference = out.float()
                row["seconds"] = event_time(call, repeat, 1)
                row["rel_l2_vs_first"] = float((out.float() - reference).norm() / reference.norm())
                row["compared_with"] = backends[0]
            except Exception as exc:  # noqa: BLE001 - a backend that is not built is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {exc}"[:400]
            finally:
                set_attention_backend(before)
            log(f"backend forward: {row}")
            rows.append(row)
        del reference
    return rows


def official_sharing_weights(cls, ours, device):
    """The official model built on ``device`` in bf16 and given our very weight tensors (``assign=True``).

    Built in float32 and then cast, as before, it needed twice our bf16 model's bytes beside our resident
    model: out of memory on an 80 GB H100 (session 6). Built in bf16, the peak is two bf16 copies, and
    after the assignment one copy of the weights serves both models."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            official = cls(**ours.config.to_official_dict())
    finally:
        torch.set_default_dtype(default)
    missing, unexpected = official.load_state_dict(ours.state_dict(), strict=False, assign=True)
    return official.to(torch.bfloat16).eval().requires_grad_(False), missing, unexpected


def official_forward_times(generator, repo: str | None, sizes: list[tuple[int, int]], repeat: int,
                           attentions: list[str]) -> list[dict]:
    """Seconds per forward of the official WanModel_S2V and of ours on the same weights and inputs.

    ``attentions``: "sdpa" runs the official model with its flash_attention computed by SDPA, cuDNN first
    (the kernel of our default backend on Hopper: the rest of the model is compared); "official" with its
    own flash_attention (FlashAttention 3 when flash_attn_interface imports)."""
    if repo is None:
        return [{"skipped": "no --official-repo given (a Wan2.2 checkout with the wan package)"}]
    if generator.device.type != "cuda":
        return [{"skipped": "the official model is timed on CUDA only"}]
    from bench_common import event_time
    from official_wan import call_official as call_official_model
    from official_wan import import_official_s2v

    ours = next(iter(generator.experts.values()))
    cfg = ours.config
    rows = []
    ours_s: dict[tuple[int, int], float] = {}  # ours is timed once per size, next to every official variant
    for attention in attentions:
        try:
            cls = import_official_s2v(repo, attention=attention)
            official, missing, unexpected = official_sharing_weights(cls, ours, generator.device)
        except Exception as exc:  # noqa: BLE001 - report why, keep the rest of the benchmark
            rows.append({"attention": attention, "skipped": f"{type(exc).__name__}: {exc}"[:400]})
            continue
        for h, w in sizes:
            inp, call_ours = forward_call(ours, cfg, h, w, generator.device)

            def call_official():
                with torch.no_grad(), torch.amp.autocast("cuda", dtype=torch.bfloat16):
                    return call_official_model(official, cfg, inp)

            try:
                official_s = event_time(call_official, repeat, 1)
                if (h, w) not in ours_s:
                    ours_s[(h, w)] = event_time(call_ours, repeat, 1)
                row = {"size": f"{h}x{w}", "attention": attention, "official_s": official_s, "ours_s": ours_s[(h, w)],
                       "official_missing_keys": len(missing), "official_unexpected_keys": len(unexpected)}
                row["speedup"] = row["official_s"] / row["ours_s"]
            except Exception as exc:  # noqa: BLE001
                row = {"size": f"{h}x{w}", "attention": attention, "error": f"{type(exc).__name__}: {exc}"[:400]}
            log(f"official forward: {row}")
            rows.append(row)
        official = None  # room for the next variant
        torch.cuda.empty_cache()
    return rows


def parse_runs(spec: str) -> list[tuple[str, str, int | None, str | None]]:
    """``new_shot:exact,redub:few-step,new_shot:fast@1,new_shot:few-step+full`` -> (scenario, preset,
    clips or None, last clip "fit"/"full" or None: the preset's)."""
    runs = []
    for item in (x.strip() for x in spec.split(",") if x.strip()):
        scenario, _, rest = item.partition(":")
        rest, _, clips = rest.partition("@")
        preset, _, last = rest.partition("+")
        if scenario not in ("new_shot", "redub") or preset not in PRESETS or last not in ("", "fit", "full"):
            raise SystemExit(f"--runs: {item!r} is not scenario:preset[+fit|+full][@clips] with scenario "
                             f"new_shot|redub and preset one of {', '.join(PRESETS)}")
        runs.append((scenario, preset, int(clips) if clips else None, last or None))
    return runs


def extrapolate(run: dict, full_steps: int) -> None:
    """A run cut to fewer steps (--max-steps): add the time of the missing steps at the measured
    per-step denoising cost (every step of a 40-step preset without a step cache costs the same)."""
    if run["steps"] < full_steps and not run.get("step_cache") and "denoise" in run["parts"]:
        per_step = run["parts"]["denoise"] / run["steps"]
        run["extrapolated_to_steps"] = full_steps
        run["extrapolated_seconds"] = run["seconds"] + per_step * (full_steps - run["steps"])


# ----------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny random models, small sizes (CPU smoke mode)")
    ap.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated, from {','.join(PRESETS)}")
    ap.add_argument("--scenarios", default="new_shot,redub", help="new_shot,redub")
    ap.add_argument("--runs", default=None,
                    help="explicit list instead of scenarios x presets: scenario:preset[+fit|+full][@clips], "
                         "e.g. new_shot:few-step,new_shot:few-step+full,redub:few-step,new_shot:fast@1 (@N: only "
                         "the first N clips of the new shot, the --num-clips preview; +fit/+full: the new shot's "
                         "last clip fitted or whole, default the preset's)")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds of audio / shot (default 5)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="cap the steps of the 40-step presets; the missing steps are then added at the measured "
                         "per-step cost (extrapolated_seconds; not for step-cached runs)")
    ap.add_argument("--warmup", choices=("full", "light", "none"), default="full",
                    help="full: one few-step run of each scenario first; light: one forward per size")
    ap.add_argument("--attention", default=None, help="attention backend for the runs (default: auto)")
    ap.add_argument("--fast-attention", default=None, help="attention backend for the fast preset's runs")
    ap.add_argument("--backends", default=None,
                    help="time one forward at 704x1280 and 512x512 per attention backend, e.g. cudnn,flash,sage "
                         "(difference measured against the first)")
    ap.add_argument("--official-repo", default=None, help="a Wan2.2 checkout: time its WanModel_S2V forward too")
    ap.add_argument("--official-attention", default="sdpa",
                    help="sdpa (its attention by cuDNN SDPA, as ours) and/or official (its own flash_attention)")
    ap.add_argument("--repeat", type=int, default=3, help="timed forwards of the forward comparisons")
    ap.add_argument("--budget", type=float, default=None, help="seconds; later runs are skipped past it")
    ap.add_argument("--json", default=None, help="write the results here (after every run)")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        log("no CUDA device: run with --tiny --device cpu for the smoke mode")
        return 2
    if device.type == "cpu" and not args.tiny:
        log("full-size end-to-end runs need a GPU; use --tiny for the CPU smoke mode")
        return 2
    if args.tiny and args.max_steps is None:
        args.max_steps = 4
    if args.runs:
        runs = parse_runs(args.runs)
    else:
        presets = [p.strip() for p in args.presets.split(",") if p.strip()]
        scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        runs = [(sc, pr, None, None) for sc in scenarios for pr in presets]
    from s2v_toolkit.models.attention import get_attention_backend, set_attention_backend

    if args.attention:
        set_attention_backend(args.attention)
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "attention": get_attention_backend()}
    log(f"environment: {env}")
    record = {"kind": "s2vt.bench_end_to_end", "tiny": args.tiny, "environment": env, "seconds_of_media": args.seconds,
              "random_weights": True, "max_steps": args.max_steps, "runs": [], "backend_forward": [],
              "official_forward": [], "skipped": []}
    t_start = time.perf_counter()

    def save():
        if args.json:
            Path(args.json).write_text(json.dumps(record, indent=1, default=str) + "\n")

    def over_budget() -> bool:
        return args.budget is not None and time.perf_counter() - t_start > args.budget

    with tempfile.TemporaryDirectory() as tmp:
        generator = build_generator(args.tiny, device, Path(tmp) / "bundle")
        shot = synthetic_redub_shot(args.tiny, args.seconds) if any(r[0] == "redub" for r in runs) else None
        if args.warmup == "full":  # kernels, compile caches: one few-step run of each scenario
            for scenario in sorted({r[0] for r in runs}):
                (run_new_shot(generator, "few-step", args) if scenario == "new_shot"
                 else run_redub(generator, "few-step", args, shot))
        elif args.warmup == "light" and not args.tiny:
            ours = next(iter(generator.experts.values()))
            for h, w in ((704, 1280), (512, 512)):
                forward_call(ours, ours.config, h, w, device)[1]()
            sync(device)
        log(f"models built and warm after {time.perf_counter() - t_start:.0f} s")
        if args.backends and not args.tiny:
            names = [b.strip() for b in args.backends.split(",") if b.strip()]
            record["backend_forward"] = backend_forward_times(generator, names, [(704, 1280), (512, 512)], args.repeat)
            save()
        for scenario, preset, clips, last_clip in runs:
            if over_budget():
                record["skipped"].append(f"{scenario}:{preset}: past --budget {args.budget:.0f} s")
                log(record["skipped"][-1])
                continue
            backend = args.fast_attention if preset == "fast" and args.fast_attention else None
            before = get_attention_backend()
            try:
                if backend:
                    set_attention_backend(backend)
                r = (run_new_shot(generator, preset, args, clips, last_clip) if scenario == "new_shot"
                     else run_redub(generator, preset, args, shot))
            finally:
                set_attention_backend(before)
            r["attention"] = backend or before
            extrapolate(r, 40 if preset != "few-step" else r["steps"])
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["parts"].items()))
            skipped = f", skipped {r['step_cache']['forwards_skipped']}" if r["step_cache"] else ""
            extra = f", {r['extrapolated_seconds']:.1f} s at 40 steps" if "extrapolated_seconds" in r else ""
            log(f"{scenario:<9} {preset:<9} {r['size']:<22} {r['seconds']:8.2f} s  "
                f"({r['clips']} clips, {r['forwards']} forwards{skipped}{extra}; {parts})")
            record["runs"].append(r)
            save()
        if not args.tiny and args.official_repo and not over_budget():
            # room for a second 16B model on an 80 GB card: the text and audio encoders and the VAE go to the CPU
            for module in (generator.text_cache.encoder.model, generator.audio_encoder.model, generator.vae):
                module.to("cpu")
            torch.cuda.empty_cache()
            attentions = [a.strip() for a in args.official_attention.split(",") if a.strip()]
            record["official_forward"] = official_forward_times(generator, args.official_repo,
                                                                [(704, 1280), (512, 512)], args.repeat, attentions)
        elif not args.tiny and args.official_repo:
            record["skipped"].append(f"official forward: past --budget {args.budget:.0f} s")
    record["wall_seconds"] = time.perf_counter() - t_start
    save()
    if args.json:
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
