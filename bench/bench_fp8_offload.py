"""GPU benchmark of the fp8 path and the block-offload (low-memory) mode, in ONE run.

Run on a CUDA machine from the repository root (JSON and the log go under --out):

    python bench/bench_fp8_offload.py --out bench_out [--sizes 448x832,704x1280] [--repeat 2]

In order (a time guard skips what is left past --budget seconds, so a partial run still reports):
1. environment, what torch._scaled_mm supports here (fp8, row-wise scales, fused bias);
2. one FFN-sized product (tokens of the first size x 5120 -> 13824) and a 5120 -> 5120 one:
   bf16 F.linear against the fp8 product (row-wise scales; fast accumulation on and off), with and
   without the activation quantization, CUDA-event timed;
3. the full-size transformer (random bf16 weights), optimized bf16 path (attention "auto" + fused
   compiled blocks) at each size: the reference outputs;
4. block offload (bf16, prefetch 1) with the allocator capped at --max-vram GB
   (torch.cuda.set_per_process_memory_fraction): time, peak allocated/reserved, output against
   the resident run (expected bitwise equal); a size that runs out of memory is retried with
   fewer frames (--offload-fallback-frames) and reported as such;
5. fp8 block linears (enable_fp8_linears, fast accumulation) + fused blocks at each size: time,
   TFLOP/s against forward_flops, peak, error against the bf16 output (rel L2 and max abs of the
   velocity, and rel L2 of the denoised latent x0 = x_t - sigma * v at the benchmark's t = 700);
   --fp8-steps ffn,attn_out,all converts layer sets one after another, timing each; then, time
   permitting, the first size again without fast accumulation (--exact-accum), and the fp8 model
   with block offload under --max-vram (--fp8-offload-sizes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_common  # noqa: E402  (this folder is on sys.path when run as a script)

from s2v_toolkit.commands.models import environment, parse_size, time_calls, transformer_inputs  # noqa: E402
from s2v_toolkit.models import S2VTransformerConfig, forward_flops, random_s2v_transformer  # noqa: E402
from s2v_toolkit.models.attention import set_attention_backend  # noqa: E402
from s2v_toolkit.models.fp8 import (  # noqa: E402
    DEFAULT_FP8_LAYERS,
    Fp8Linear,
    enable_fp8_linears,
    fp8_gemm_support,
    quantize_rowwise,
)
from s2v_toolkit.models.fused import enable_fused_blocks  # noqa: E402
from s2v_toolkit.models.offload import disable_block_offload, enable_block_offload  # noqa: E402
from s2v_toolkit.models.rope import s2v_token_positions  # noqa: E402

START = time.perf_counter()
RECORD: dict = {"environment": {}, "gemm": [], "transformer": [], "errors": []}


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {msg}", flush=True)


def save(out: Path) -> None:
    (out / "bench_fp8_offload.json").write_text(json.dumps(RECORD, indent=2, default=str) + "\n")


def event_time(fn, repeat: int = 10, warmup: int = 3) -> float:
    return bench_common.event_time(fn, repeat, warmup)


def compare(out: torch.Tensor, ref: torch.Tensor, latents: torch.Tensor, sigma: float) -> dict:
    d = out.float() - ref.float()
    x0_ref = latents.float() - sigma * ref.float()
    return {"rel_l2": (d.norm() / ref.float().norm()).item(), "max_abs": d.abs().max().item(),
            "ref_max_abs": ref.float().abs().max().item(),
            "x0_rel_l2": ((sigma * d).norm() / x0_ref.norm()).item(),
            "bitwise_equal": bool(torch.equal(out, ref)), "finite": bool(torch.isfinite(out).all().item())}


def gemm_rows(tokens: int) -> list[dict]:
    rows = []
    g = torch.Generator(device="cuda").manual_seed(0)
    for k, n in ((5120, 13824), (5120, 5120), (13824, 5120)):
        x = torch.randn(tokens, k, generator=g, device="cuda").to(torch.bfloat16)
        lin = torch.nn.Linear(k, n, device="cuda", dtype=torch.bfloat16)
        flops = 2.0 * tokens * k * n
        row = {"tokens": tokens, "k": k, "n": n}
        row["bf16_ms"] = event_time(lambda: F.linear(x, lin.weight, lin.bias)) * 1e3
        ref = F.linear(x, lin.weight, lin.bias).float()
        for fast in (True, False):
            layer = Fp8Linear.from_linear(lin, backend="scaled_mm", use_fast_accum=fast)
            tag = "fast" if fast else "exact_accum"
            row[f"fp8_{tag}_ms"] = event_time(lambda: layer(x)) * 1e3
            out = layer(x).float()
            row[f"fp8_{tag}_rel_l2"] = ((out - ref).norm() / ref.norm()).item()
            xq, xs = quantize_rowwise(x)
            w_t, ws = layer.weight_fp8.t(), layer.weight_scale[None, :]
            row[f"fp8_{tag}_gemm_only_ms"] = event_time(lambda: torch._scaled_mm(
                xq, w_t, scale_a=xs, scale_b=ws, bias=lin.bias, out_dtype=torch.bfloat16,
                use_fast_accum=fast)) * 1e3
        for key in [k_ for k_ in row if k_.endswith("_ms")]:
            row[key.replace("_ms", "_tflops")] = flops / (row[key] / 1e3) / 1e12
        rows.append(row)
        log(f"gemm {tokens}x{k}->{n}: " + ", ".join(f"{k_}={v:.3g}" for k_, v in row.items()
                                                   if isinstance(v, float)))
        del x, lin, layer
    torch.cuda.empty_cache()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--sizes", default="448x832,704x1280")
    ap.add_argument("--offload-sizes", default="448x832,704x1280")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--offload-repeat", type=int, default=1)
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--offload-fallback-frames", default="40,16")
    ap.add_argument("--max-vram", type=float, default=24.0, help="GB (1e9 bytes) for the offload runs")
    ap.add_argument("--skip-gemm", action="store_true")
    ap.add_argument("--fp8-steps", default="all",
                    help="comma list of layer sets converted one after another (ffn, attn_out, all), "
                         "each timed at --fp8-sizes")
    ap.add_argument("--fp8-sizes", default=None, help="default: --sizes")
    ap.add_argument("--fp8-big-steps", default=None,
                    help="steps that also run at the --fp8-sizes after the first (default: all steps)")
    ap.add_argument("--attn-fp8", type=int, default=0,
                    help="1: time each size also with the fp8 attention backend (our Triton e4m3 kernel): "
                         "once before any linear is converted, and after every fp8 step")
    ap.add_argument("--attn-fp8-backend", default="fp8", choices=("fp8", "cudnn-fp8"),
                    help="fp8: our Triton e4m3 kernel; cudnn-fp8: cuDNN's (needs nvidia-cudnn-frontend)")
    ap.add_argument("--exact-accum", type=int, default=1, help="also time the first size without fast accumulation")
    ap.add_argument("--fp8-offload-sizes", default="", help="fp8 model with block offload under --max-vram")
    ap.add_argument("--budget", type=float, default=400.0, help="seconds; later items are skipped past it")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    offload_sizes = [parse_size(s) for s in args.offload_sizes.split(",") if s]
    left = lambda: args.budget - (time.perf_counter() - START)  # noqa: E731
    cfg = S2VTransformerConfig.full()
    sigma = 0.7  # transformer_inputs uses t = 700

    env = environment()
    env["scaled_mm"] = fp8_gemm_support()
    env["total_memory_gb"] = torch.cuda.get_device_properties(0).total_memory / 1e9
    RECORD["environment"] = env
    log(f"environment: {env}")
    if not env["scaled_mm"]["fp8"]:
        log("no fp8 matrix products on this GPU: the fp8 rows will run the float32 emulation (slow)")

    tokens = lambda h, w, f=args.frames: sum(  # noqa: E731
        len(v) for v in s2v_token_positions(f // 4, h // 8, w // 8, True).values())
    try:
        if not args.skip_gemm:
            with torch.no_grad():
                RECORD["gemm"] = gemm_rows(tokens(*sizes[0]))
    except Exception:
        RECORD["errors"].append(traceback.format_exc())
    save(out)

    t0 = time.perf_counter()
    model = random_s2v_transformer(cfg, device="cuda", dtype=torch.bfloat16, seed=0)
    torch.cuda.synchronize()
    RECORD["environment"]["weights_gb_bf16"] = torch.cuda.memory_allocated() / 1e9
    log(f"model built in {time.perf_counter() - t0:.1f} s, {torch.cuda.memory_allocated() / 1e9:.1f} GB")
    set_attention_backend("auto")
    enable_fused_blocks(model)

    refs: dict[tuple, torch.Tensor] = {}
    latents: dict[tuple, torch.Tensor] = {}

    def run(variant: str, h: int, w: int, frames: int, repeat: int, extra: dict | None = None) -> dict | None:
        inputs = transformer_inputs(cfg, h, w, frames, True, "cuda", torch.bfloat16)
        flops = forward_flops(cfg, h, w, frames, True).total
        outputs = []

        def call():
            outputs.append(model(**inputs))
            if len(outputs) > 1:
                outputs.pop()

        try:
            with torch.no_grad():
                r = time_calls(call, "cuda", repeat=repeat, warmup=1)
        except torch.cuda.OutOfMemoryError as exc:
            row = {"variant": variant, "size": f"{h}x{w}", "frames": frames, "oom": str(exc).splitlines()[0][:300]}
            RECORD["transformer"].append(row)
            log(f"{variant} {h}x{w} {frames} frames: OUT OF MEMORY")
            outputs.clear()
            del inputs
            torch.cuda.empty_cache()
            return row
        row = {"variant": variant, "size": f"{h}x{w}", "frames": frames, "tokens": tokens(h, w, frames),
               "seconds": r.seconds, "runs": r.runs, "first_call_s": r.first_call_s, "flops": flops,
               "tflops": flops / r.seconds / 1e12, "peak_gb": r.peak_gb,
               "peak_reserved_gb": torch.cuda.max_memory_reserved() / 1e9, **(extra or {})}
        key = (h, w, frames)
        if variant == "bf16":
            refs[key] = outputs[0].float().clone()
            latents[key] = inputs["latents"].float().clone()
        elif key in refs:
            row["vs_bf16"] = compare(outputs[0], refs[key], latents[key], sigma)
        RECORD["transformer"].append(row)
        log(f"{variant} {h}x{w} ({frames} frames): {r.seconds:.3f} s, {row['tflops']:.0f} TFLOP/s, peak "
            f"{r.peak_gb:.1f} GB (reserved {row['peak_reserved_gb']:.1f}), first {r.first_call_s:.1f} s, "
            f"vs bf16 {row.get('vs_bf16')}")
        outputs.clear()
        del inputs
        torch.cuda.empty_cache()
        return row

    # 3. bf16 optimized, resident
    for h, w in sizes:
        if left() < 60:
            log(f"skipping bf16 {h}x{w}: time budget")
            continue
        try:
            run("bf16", h, w, args.frames, args.repeat)
        except Exception:
            RECORD["errors"].append(f"bf16 {h}x{w}:\n{traceback.format_exc()}")
        save(out)

    def offload_runs(variant: str, run_sizes: list[tuple[int, int]]) -> None:
        """Block offload (prefetch 1) with the allocator capped at --max-vram, then resident again."""
        try:
            t0 = time.perf_counter()
            off = enable_block_offload(model, "cuda", prefetch=1)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            setup = time.perf_counter() - t0
            resident = torch.cuda.memory_allocated() / 1e9
            frac = min(1.0, args.max_vram * 1e9 / torch.cuda.get_device_properties(0).total_memory)
            torch.cuda.set_per_process_memory_fraction(frac)
            info = {"prefetch": 1, "max_vram_gb": args.max_vram, "memory_fraction": frac,
                    "resident_weights_gb": resident, "slot_gb": off.device_bytes() / 1e9,
                    "host_gb": off.host_bytes() / 1e9, "setup_s": setup}
            log(f"offload on ({variant}): {info}")
            fallbacks = [int(f) for f in args.offload_fallback_frames.split(",") if f]
            for h, w in run_sizes:
                for frames in [args.frames] + fallbacks:
                    if left() < 45:
                        log(f"skipping {variant} {h}x{w}: time budget")
                        break
                    torch.cuda.reset_peak_memory_stats()
                    row = run(variant, h, w, frames, args.offload_repeat, dict(info))
                    save(out)
                    if row is not None and "oom" not in row:
                        break
            torch.cuda.set_per_process_memory_fraction(1.0)
            t0 = time.perf_counter()
            disable_block_offload(model)
            torch.cuda.synchronize()
            log(f"offload off (blocks back on the GPU) in {time.perf_counter() - t0:.1f} s")
        except Exception:
            torch.cuda.set_per_process_memory_fraction(1.0)
            RECORD["errors"].append(f"{variant}:\n{traceback.format_exc()}")
        save(out)

    # 4. block offload under a memory cap
    if offload_sizes and left() > 90:
        offload_runs("bf16+offload", offload_sizes)

    # 5. fp8 block linears + fused blocks (layer sets converted one after another)
    layer_sets = {"ffn": ("blocks.*.ffn.0", "blocks.*.ffn.2"),
                  "qkv": ("blocks.*.self_attn.q", "blocks.*.self_attn.k", "blocks.*.self_attn.v",
                          "blocks.*.cross_attn.q"),
                  "attn_out": ("blocks.*.self_attn.o", "blocks.*.cross_attn.o"),
                  "all": DEFAULT_FP8_LAYERS}
    big_steps = None if args.fp8_big_steps is None else set(args.fp8_big_steps.split(","))

    def with_fp8_attention(variant: str, h: int, w: int, extra: dict) -> None:
        set_attention_backend(args.attn_fp8_backend)
        tag = "+attn_fp8" if args.attn_fp8_backend == "fp8" else "+attn_cudnn_fp8"
        try:
            run(variant + tag, h, w, args.frames, args.repeat, {**extra, "attention": args.attn_fp8_backend})
        except Exception:
            RECORD["errors"].append(f"{variant}{tag} {h}x{w}:\n{traceback.format_exc()}")
        finally:
            set_attention_backend("auto")
        save(out)
    fp8_sizes = [parse_size(s_) for s_ in (args.fp8_sizes or args.sizes).split(",") if s_]
    if args.attn_fp8:
        for h, w in fp8_sizes:
            if left() > 60:
                with_fp8_attention("bf16", h, w, {})
    converted: list[str] = []
    done_steps: list[str] = []
    for step in [s_ for s_ in args.fp8_steps.split(",") if s_]:
        if left() < 60:
            log(f"skipping fp8 step {step}: time budget")
            continue
        try:
            t0 = time.perf_counter()
            converted += enable_fp8_linears(model, layer_sets[step])
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            done_steps.append(step)
            variant = "fp8+fused" if step == "all" else f"fp8[{'+'.join(done_steps)}]+fused"
            RECORD["environment"][f"fp8_layers_{step}"] = len(converted)
            RECORD["environment"][f"weights_gb_fp8_{step}"] = torch.cuda.memory_allocated() / 1e9
            log(f"fp8 {step}: {len(converted)} layers converted so far ({time.perf_counter() - t0:.1f} s), "
                f"weights now {torch.cuda.memory_allocated() / 1e9:.1f} GB")
            torch.cuda.reset_peak_memory_stats()
            for i, (h, w) in enumerate(fp8_sizes):
                if left() < 50:
                    log(f"skipping {variant} {h}x{w}: time budget")
                    continue
                if i and big_steps is not None and step not in big_steps:
                    continue
                extra = {"use_fast_accum": True, "fp8_layers": len(converted)}
                run(variant, h, w, args.frames, args.repeat, extra)
                save(out)
                if args.attn_fp8 and left() > 50:
                    with_fp8_attention(variant, h, w, extra)
        except Exception:
            RECORD["errors"].append(f"fp8 {step}:\n{traceback.format_exc()}")
        save(out)
    if converted and args.exact_accum and left() > 40:
        try:
            for m in model.modules():
                if isinstance(m, Fp8Linear):
                    m.use_fast_accum = False
            h, w = fp8_sizes[0]
            run("fp8+fused (exact accum)", h, w, args.frames, args.repeat, {"use_fast_accum": False})
            for m in model.modules():
                if isinstance(m, Fp8Linear):
                    m.use_fast_accum = True
        except Exception:
            RECORD["errors"].append(f"fp8 exact accum:\n{traceback.format_exc()}")
        save(out)
    fp8_offload_sizes = [parse_size(s_) for s_ in args.fp8_offload_sizes.split(",") if s_]
    if converted and fp8_offload_sizes and left() > 60:
        offload_runs("fp8+fused+offload", fp8_offload_sizes)

    print("\nvariant                   size       frames  seconds  TFLOP/s  peakGB  reservedGB  first_s  "
          "speedup  rel_l2   max_abs  x0_rel_l2")
    base = {(r["size"], r["frames"]): r["seconds"] for r in RECORD["transformer"] if r["variant"] == "bf16"}
    for r in RECORD["transformer"]:
        if "oom" in r:
            print(f"{r['variant']:<25} {r['size']:<10} {r['frames']:6d}  OUT OF MEMORY")
            continue
        vs = r.get("vs_bf16") or {}
        sp = base.get((r["size"], r["frames"]), float("nan")) / r["seconds"]
        print(f"{r['variant']:<25} {r['size']:<10} {r['frames']:6d} {r['seconds']:8.3f} {r['tflops']:8.0f} "
              f"{r['peak_gb']:7.1f} {r['peak_reserved_gb']:10.1f} {r['first_call_s']:8.1f} {sp:8.3f} "
              f"{vs.get('rel_l2', float('nan')):8.2e} {vs.get('max_abs', float('nan')):8.3g} "
              f"{vs.get('x0_rel_l2', float('nan')):8.2e}")
    for g in RECORD["gemm"]:
        print("gemm", {k: round(v, 4) if isinstance(v, float) else v for k, v in g.items()})
    if RECORD["errors"]:
        print(f"{len(RECORD['errors'])} error(s); first:\n{RECORD['errors'][0][-2000:]}")
    save(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
