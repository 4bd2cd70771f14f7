"""Synthetic speech with known voices (espeak-ng), for tests and benchmarks with exact turn times."""

from __future__ import annotations

import io
import subprocess

import numpy as np


def espeak_speech(voice: str, options: list[str], text: str, sample_rate: int = 16000,
                  trim_db: float = 40.0) -> np.ndarray:
    """``text`` spoken by espeak-ng ``voice`` as float32 at ``sample_rate``, trimmed to its voiced extent.

    The extent is the first to last 10 ms frame whose RMS is within ``trim_db`` of the loudest, so a
    reference turn built from it starts and ends where the voice does.
    """
    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "-v", voice, *options, "--stdout", text],
                         capture_output=True, check=True).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    x = soxr.resample(x, rate, sample_rate).astype(np.float32)
    hop = sample_rate // 100
    n = len(x) // hop
    rms = np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    on = np.nonzero(rms > rms.max() * 10 ** (-trim_db / 20))[0]
    return x[on[0] * hop:(on[-1] + 1) * hop]


def microphone_tilt(samples: np.ndarray, tilt_db: float, sample_rate: int = 16000,
                    corner_hz: float = 1000.0) -> np.ndarray:
    """``samples`` as heard through a microphone ``tilt_db`` brighter (or duller, when negative) above
    ``corner_hz``: a second-order high-shelf filter (Robert Bristow-Johnson's audio EQ cookbook, slope 1)."""
    from scipy.signal import lfilter

    a_gain = 10 ** (tilt_db / 40)
    w0 = 2 * np.pi * corner_hz / sample_rate
    alpha = np.sin(w0) / 2 * np.sqrt(2)
    cos, two_sqrt_a_alpha = np.cos(w0), 2 * np.sqrt(a_gain) * alpha
    b = [a_gain * ((a_gain + 1) + (a_gain - 1) * cos + two_sqrt_a_alpha),
         -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * cos),
         a_gain * ((a_gain + 1) + (a_gain - 1) * cos - two_sqrt_a_alpha)]
    a = [(a_gain + 1) - (a_gain - 1) * cos + two_sqrt_a_alpha, 2 * ((a_gain - 1) - (a_gain + 1) * cos),
         (a_gain + 1) - (a_gain - 1) * cos - two_sqrt_a_alpha]
    return lfilter(np.array(b) / a[0], np.array(a) / a[0], np.asarray(samples, dtype=np.float64)).astype(np.float32)
