"""Timing helpers shared by the GPU benchmark scripts in this folder."""

from __future__ import annotations

import torch


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
