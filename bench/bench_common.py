"""Helpers shared by the benchmark scripts in this folder: CUDA event timing, and writing a results file."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def write_results(doc: dict, out: str | Path) -> Path:
    """``doc`` as indented JSON at ``out`` (its folder made if needed); says where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return out


def event_times(fn, repeat: int = 5, warmup: int = 2) -> list[float]:
    """Seconds of each of ``repeat`` calls of ``fn`` after ``warmup`` calls, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    return times


def event_time(fn, repeat: int = 5, warmup: int = 2) -> float:
    """Median seconds of ``fn`` timed with CUDA events (for kernel micro-benchmarks)."""
    times = sorted(event_times(fn, repeat, warmup))
    return times[len(times) // 2]
