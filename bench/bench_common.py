"""Helpers shared by the benchmark scripts in this folder: CUDA event timing, writing a results file, and the
speech the diarization speed benches time."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

# the corpus: $S2VT_CORPUS, else ../shared/corpus next to the repository
DEFAULT_CORPUS = os.environ.get("S2VT_CORPUS", str(Path(__file__).resolve().parents[2] / "shared" / "corpus"))


def paired_speech_args(doc: str, results_name: str) -> argparse.ArgumentParser:
    """The options of a bench that times diarization settings paired in rounds on :func:`libri4_minutes`:
    ``--corpus``, ``--rounds``, ``--minutes`` and ``--out`` (``results/<results_name>`` by default)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / results_name))
    return ap


def neural_fields(pairs: list[str]) -> dict:
    """``NeuralConfig`` fields from ``KEY=VALUE`` options, each value of its field's type."""
    from s2v_toolkit.diarization import NeuralConfig

    default = NeuralConfig()
    return {k: type(getattr(default, k))(v) for k, v in (a.split("=", 1) for a in pairs)}


def neural_models_missing() -> bool:
    """True (and says so) where the neural diarization models are not installed: nothing to time."""
    from s2v_toolkit.diarization import find_neural_models

    if find_neural_models() is None:
        print("no neural diarization models (s2vt diarize --setup): nothing measured")
        return True
    return False


def libri4_minutes(corpus: str | Path, minutes: float) -> np.ndarray:
    """The corpus's libri4.wav (four readers, 16 kHz mono) repeated to ``minutes``: the diarization speed
    benches' audio."""
    from s2v_toolkit.diarization import open_audio

    src = open_audio(Path(corpus) / "audio" / "libri4.wav")
    return repeat_to_minutes(src.read(0, src.duration), minutes)


def one_reader_minutes(corpus: Path, minutes: float) -> np.ndarray:
    """One LibriSpeech reader (the corpus's libri4_cast samples of speaker 2414) repeated to ``minutes``."""
    from s2v_toolkit.diarization import open_audio

    samples = sorted((Path(corpus) / "audio" / "libri4_cast").glob("2414_*.flac"))
    return repeat_to_minutes(np.concatenate([open_audio(f).read_all() for f in samples]), minutes).astype(np.float32)


def repeat_to_minutes(x: np.ndarray, minutes: float) -> np.ndarray:
    """16 kHz samples ``x`` repeated and cut to ``minutes``."""
    n = int(minutes * 60 * 16000)
    return np.tile(x, int(np.ceil(n / len(x))))[:n]


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
