"""GPU benchmark of the S2V transformer: our baseline against our optimized path, in ONE run.

Run on a CUDA machine from the repository root (it writes JSON and a log under --out):

    python bench/bench_transformer.py --out bench_out [--sizes 704x1280,448x832] [--repeat 2]

What it does, in order (a time guard skips what is left near --budget seconds, so a partial run still
reports):
1. environment (torch, CUDA, cuDNN, GPU) and a bf16 matmul ceiling (8192^3);
2. attention kernels alone at each size's self-attention shape [1, S, 40, 128]: PyTorch flash
   (FlashAttention-2), cuDNN, memory-efficient; TFLOP/s, and error against a float32 reference on a
   subset of queries;
3. the FFN's first matrix product with GELU afterwards vs GELU in the cuBLASLt epilogue;
4. the full-size transformer (random bf16 weights), per size: baseline (attention backend "sdpa":
   PyTorch's own SDPA choice, plain blocks) and optimized (backend "auto", fused compiled blocks;
   the first call's time, compile included, is reported apart). The optimized output on the same
   inputs is compared with the baseline's (max abs error, relative L2 error);
5. a host-sync check of one optimized forward (torch.cuda.set_sync_debug_mode);
6. GPU kernel time by kind (attention, GEMM, fused Triton, other) of one forward of each variant
   at --profile-sizes (torch.profiler);
7. one CFG sampling step (batch 2 + UniPC) with the optimized path at --step-sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_common import event_time  # noqa: E402  (this folder is on sys.path when run as a script)

from s2v_toolkit.commands.models import (  # noqa: E402
    BenchOptions,
    bench_step,
    environment,
    parse_size,
    time_calls,
    transformer_inputs,
)
from s2v_toolkit.models import S2VTransformerConfig, forward_flops, random_s2v_transformer  # noqa: E402
from s2v_toolkit.models.attention import set_attention_backend  # noqa: E402
from s2v_toolkit.models.fused import disable_fused_blocks, enable_fused_blocks  # noqa: E402
from s2v_toolkit.models.rope import s2v_token_positions  # noqa: E402

START = time.perf_counter()
RECORD: dict = {"environment": {}, "attention_kernels": [], "ffn_gelu": [], "transformer": [], "checks": [],
                "step": [], "profile": [], "errors": []}


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {msg}", flush=True)


def save(out: Path) -> None:
    (out / "bench_transformer.json").write_text(json.dumps(RECORD, indent=2, default=str) + "\n")



def compare(out: torch.Tensor, ref: torch.Tensor) -> dict:
    d = (out.float() - ref.float())
    return {"max_abs": d.abs().max().item(), "rel_l2": (d.norm() / ref.float().norm()).item(),
            "ref_max_abs": ref.float().abs().max().item(), "finite": bool(torch.isfinite(out).all().item())}


def matmul_ceiling() -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    t = event_time(lambda: a @ b, repeat=10, warmup=3)
    return 2 * 8192**3 / t / 1e12


def attention_kernels(tokens: int, heads: int = 40, head_dim: int = 128) -> list[dict]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator(device="cuda").manual_seed(tokens)
    # The model's layout: [B, S, H, D] projections viewed as [B, H, S, D] (non-contiguous).
    q, k, v = (torch.randn(1, tokens, heads, head_dim, generator=g, device="cuda", dtype=torch.bfloat16)
               .transpose(1, 2) for _ in range(3))
    sub = 256  # reference for the first queries only (float32, exact softmax)
    s = torch.einsum("hqd,hkd->hqk", q[0, :, :sub].float(), k[0].float()) / head_dim**0.5
    ref = torch.einsum("hqk,hkd->hqd", s.softmax(-1), v[0].float())
    del s
    flops = 4.0 * tokens * tokens * head_dim * heads
    rows = []
    default_out = F.scaled_dot_product_attention(q, k, v)  # PyTorch's own choice, no context
    all_backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.MATH]
    for name, backends in (("default", all_backends), ("flash (FA2)", [SDPBackend.FLASH_ATTENTION]),
                           ("cudnn", [SDPBackend.CUDNN_ATTENTION]), ("efficient", [SDPBackend.EFFICIENT_ATTENTION])):
        row = {"tokens": tokens, "backend": name}
        try:
            with sdpa_kernel(backends):
                fn = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
                out = fn()
                row.update(compare(out[0, :, :sub], ref))
                row["bitwise_equal_to_default"] = bool(torch.equal(out, default_out))
                t = event_time(fn)
            row.update(ms=t * 1e3, tflops=flops / t / 1e12)
        except Exception as exc:  # a backend refusing the shape is a result, not a crash
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        rows.append(row)
        log(f"attention S={tokens} {name}: {row}")
    return rows


def ffn_gelu(tokens: int, dim: int = 5120, ffn: int = 13824) -> dict:
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(tokens, dim, generator=g, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(ffn, dim, generator=g, device="cuda", dtype=torch.bfloat16) * dim**-0.5
    b = torch.randn(ffn, generator=g, device="cuda", dtype=torch.bfloat16) * 0.1
    plain = lambda: F.gelu(F.linear(x, w, b), approximate="tanh")  # noqa: E731
    fused = lambda: torch._addmm_activation(b, x, w.t(), use_gelu=True)  # noqa: E731
    row = {"tokens": tokens, **compare(fused(), plain())}
    row["plain_ms"] = event_time(plain) * 1e3
    row["epilogue_ms"] = event_time(fused) * 1e3
    row["gemm_only_ms"] = event_time(lambda: F.linear(x, w, b)) * 1e3
    log(f"ffn gelu: {row}")
    return row


def kernel_profile(fn) -> dict:
    """GPU kernel time of one call of ``fn`` by kind (torch.profiler), in seconds."""
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm (compiled kernels, cuDNN plans)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    kinds = {"attention": 0.0, "gemm": 0.0, "triton_fused": 0.0, "other": 0.0}
    top: dict[str, float] = {}
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        us = e.time_range.elapsed_us()
        name = e.name.lower()
        if any(t in name for t in ("fmha", "flash", "attention", "cudnn_generated", "sdpa", "_attn_fwd")):
            kind = "attention"
        elif any(t in name for t in ("gemm", "nvjet", "cutlass", "xmma", "sm90_", "cublas")):
            kind = "gemm"
        elif name.startswith("triton"):
            kind = "triton_fused"
        else:
            kind = "other"
        kinds[kind] += us / 1e6
        top[e.name[:90]] = top.get(e.name[:90], 0.0) + us / 1e6
    kinds["total_kernel_s"] = sum(kinds.values())
    kinds["top"] = sorted(top.items(), key=lambda kv: -kv[1])[:12]
    return kinds


def count_syncs(fn) -> tuple[int, list[str]]:
    """Host-device synchronisations inside ``fn`` (CUDA sync debug mode warns at each) and where."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    # (the mode's own one-time "prototype feature" notice is not a sync)
    syncs = [f"{w.filename}:{w.lineno}: {str(w.message).splitlines()[0]}" for w in caught
             if "called a synchronizing" in str(w.message)]
    return len(syncs), syncs[:5]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--sizes", default="704x1280,448x832,512x512")
    ap.add_argument("--step-sizes", default="448x832")
    ap.add_argument("--profile-sizes", default="448x832")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--budget", type=float, default=540.0, help="seconds; later items are skipped past it")
    ap.add_argument("--frames", type=int, default=80)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    step_sizes = [parse_size(s) for s in args.step_sizes.split(",") if s]
    left = lambda: args.budget - (time.perf_counter() - START)  # noqa: E731

    env = environment()
    env["flash_attn_importable"] = any(
        __import__("importlib").util.find_spec(m) is not None for m in ("flash_attn", "flash_attn_interface"))
    RECORD["environment"] = env
    log(f"environment: {env}")
    try:
        RECORD["environment"]["bf16_matmul_tflops"] = matmul_ceiling()
        log(f"bf16 matmul 8192^3: {RECORD['environment']['bf16_matmul_tflops']:.0f} TFLOP/s")
    except Exception:
        RECORD["errors"].append(traceback.format_exc())

    cfg = S2VTransformerConfig.full()
    lat = lambda h, w: sum(len(v) for v in s2v_token_positions(args.frames // 4, h // 8, w // 8, True).values())  # noqa: E731
    for h, w in sizes[:2]:
        try:
            RECORD["attention_kernels"] += attention_kernels(lat(h, w))
        except Exception:
            RECORD["errors"].append(traceback.format_exc())
    try:
        RECORD["ffn_gelu"].append(ffn_gelu(lat(*sizes[0])))
    except Exception:
        RECORD["errors"].append(traceback.format_exc())
    torch.cuda.empty_cache()
    save(out)

    t0 = time.perf_counter()
    model = random_s2v_transformer(cfg, device="cuda", dtype=torch.bfloat16, seed=0)
    torch.cuda.synchronize()
    n_params = sum(p.numel() for p in model.parameters())
    RECORD["parameters"] = n_params  # the official S2V-14B count is 16,295,755,609
    log(f"model built in {time.perf_counter() - t0:.1f} s, {torch.cuda.memory_allocated() / 1e9:.1f} GB, "
        f"{n_params:,} parameters")

    variants = (("baseline", "sdpa", False), ("optimized", "auto", True))
    for h, w in sizes:
        inputs = transformer_inputs(cfg, h, w, args.frames, True, "cuda", torch.bfloat16)
        flops = forward_flops(cfg, h, w, args.frames, True).total
        ref = None
        for name, backend, fused in variants:
            if left() < 60:
                log(f"skipping {name} {h}x{w}: time budget")
                continue
            set_attention_backend(backend)
            (enable_fused_blocks if fused else disable_fused_blocks)(model)
            outputs = []

            def call():
                outputs.append(model(**inputs))
                if len(outputs) > 1:
                    outputs.pop()  # keep the first output only: no extra GPU memory per call

            try:
                with torch.no_grad():
                    r = time_calls(call, "cuda", repeat=args.repeat, warmup=1)
                row = {"variant": name, "size": f"{h}x{w}", "attention": backend, "fused": fused,
                       "seconds": r.seconds, "runs": r.runs, "first_call_s": r.first_call_s,
                       "tflops": flops / r.seconds / 1e12, "peak_gb": r.peak_gb, "flops": flops}
                if ref is None:
                    ref = outputs[0].float().clone()
                    row["vs_baseline"] = None
                else:
                    row["vs_baseline"] = compare(outputs[0], ref)
                RECORD["transformer"].append(row)
                log(f"{name} {h}x{w}: {r.seconds:.3f} s ({row['tflops']:.0f} TFLOP/s, peak {r.peak_gb:.1f} GB, "
                    f"first call {r.first_call_s:.1f} s) vs baseline {row['vs_baseline']}")
            except Exception:
                RECORD["errors"].append(f"{name} {h}x{w}:\n{traceback.format_exc()}")
                log(f"{name} {h}x{w} FAILED")
            outputs.clear()
            save(out)
        del inputs, ref
        torch.cuda.empty_cache()

    # Host syncs inside one optimized forward (smallest size, already compiled).
    if left() > 30:
        try:
            h, w = sizes[-1]
            set_attention_backend("auto")
            enable_fused_blocks(model)
            inputs = transformer_inputs(cfg, h, w, args.frames, True, "cuda", torch.bfloat16)
            with torch.no_grad():
                n, where = count_syncs(lambda: model(**inputs))
            RECORD["checks"].append({"host_syncs_in_forward": n, "where": where, "size": f"{h}x{w}"})
            log(f"host syncs in one optimized forward: {n} {where}")
            del inputs
        except Exception:
            RECORD["errors"].append(traceback.format_exc())
        save(out)

    for h, w in [parse_size(s) for s in args.profile_sizes.split(",") if s]:
        if left() < 60:
            continue
        for name, backend, fused in variants:
            try:
                set_attention_backend(backend)
                (enable_fused_blocks if fused else disable_fused_blocks)(model)
                inputs = transformer_inputs(cfg, h, w, args.frames, True, "cuda", torch.bfloat16)
                with torch.no_grad():
                    row = kernel_profile(lambda: model(**inputs))
                row.update(variant=name, size=f"{h}x{w}")
                RECORD["profile"].append(row)
                log(f"profile {name} {h}x{w}: {row}")
                del inputs
            except Exception:
                RECORD["errors"].append(traceback.format_exc())
            save(out)

    for h, w in step_sizes:
        if left() < 90:
            log(f"skipping step {h}x{w}: time budget")
            continue
        try:
            set_attention_backend("auto")
            enable_fused_blocks(model)
            opts = BenchOptions(sizes=[(h, w)], what=["step"], frames=args.frames, repeat=args.repeat, warmup=1)
            r = bench_step(model, opts, (h, w))
            RECORD["step"].append(r.to_dict())
            log(f"CFG step {h}x{w}: {r.seconds:.3f} s ({r.tflops:.0f} TFLOP/s, first {r.first_call_s:.1f} s)")
        except Exception:
            RECORD["errors"].append(traceback.format_exc())
        save(out)

    # Summary table (the reply carries the end of the output).
    print("\nvariant    size        seconds  TFLOP/s  peakGB  first_s  speedup  rel_l2_vs_base")
    base = {r["size"]: r["seconds"] for r in RECORD["transformer"] if r["variant"] == "baseline"}
    for r in RECORD["transformer"]:
        vs = r["vs_baseline"]
        print(f"{r['variant']:<10} {r['size']:<10} {r['seconds']:8.3f} {r['tflops']:8.0f} {r['peak_gb']:7.1f} "
              f"{r['first_call_s']:8.1f} {base.get(r['size'], float('nan')) / r['seconds']:8.3f}  "
              f"{'-' if vs is None else format(vs['rel_l2'], '.2e')}")
    for row in RECORD["attention_kernels"]:
        print("attn", row.get("tokens"), row.get("backend"), f"{row.get('tflops', 0):.0f} TFLOP/s",
              f"rel {row.get('rel_l2', float('nan')):.1e}", row.get("error", ""))
    if RECORD["errors"]:
        print(f"{len(RECORD['errors'])} error(s); first:\n{RECORD['errors'][0][-1500:]}")
    save(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
