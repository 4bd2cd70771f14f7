"""Synthetic speech for the active-speaker tests (faces and the planner's pooled lines)."""

from __future__ import annotations

import numpy as np


def syllable_speech(seed: int, frames: int, fps: int = 25, rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts at syllable rate (3-6 frames, 70 % voiced, 1-2 frame pauses): (audio at ``rate``,
    per-frame loudness in 0..1)."""
    rng = np.random.default_rng(seed)
    loud = np.zeros(frames)
    k = 0
    while k < frames:
        dur = rng.integers(3, 7)
        loud[k:k + dur] = rng.uniform(0.5, 1.0) if rng.random() < 0.7 else 0.0
        k += dur + rng.integers(1, 3)
    audio = rng.normal(0, 1, frames * (rate // fps)) * 0.3 * np.repeat(loud, rate // fps)
    return audio.astype(np.float32), loud
