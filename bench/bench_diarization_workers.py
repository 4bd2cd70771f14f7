"""Real-time factor of the embedded diarization backend with the voice encoder's batches on one Python thread
against two (``VoiceEncoder(workers=...)``), side by side in one run.

    python bench/bench_diarization_workers.py [--corpus DIR] [--repeat 3] [--out bench/results/diarization_workers.json]

libri4.wav of the corpus repeated to 5 minutes, count estimated (the default), one warm-up call per
variant, then the variants alternated ``--repeat`` times; the process runs torch with one intra-op thread
(as the backend does). Also checks that both give the same turns.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "diarization_workers.json"))
    args = ap.parse_args()
    wav = Path(args.corpus) / "audio" / "libri4.wav"
    if not wav.is_file():
        print(f"no {wav}: nothing measured")
        return 0
    import torch

    from s2v_toolkit.diarization import EmbeddedDiarizer, VoiceEncoder, open_audio

    torch.set_num_threads(1)
    src = open_audio(wav)
    x = src.read(0, src.duration)
    n = int(args.minutes * 60 * 16000)
    x = np.tile(x, int(np.ceil(n / len(x))))[:n]
    variants = {k: EmbeddedDiarizer(encoder=VoiceEncoder(workers=k)) for k in (1, 2)}
    for d in variants.values():
        d(open_audio(x[: 16000 * 10], 16000))  # warm-up
    times: dict[int, list[float]] = {k: [] for k in variants}
    turns = {}
    for _ in range(args.repeat):
        for k, d in variants.items():
            t0 = time.perf_counter()
            result = d(open_audio(x, 16000))
            times[k].append(time.perf_counter() - t0)
            turns[k] = [(round(t.start, 2), round(t.end, 2), t.speaker) for t in result]
    seconds = len(x) / 16000
    doc = {"audio_seconds": seconds, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
           "same_turns": turns[1] == turns[2],
           **{f"workers_{k}": {"seconds": [round(t, 3) for t in v], "rtf": round(float(np.median(v)) / seconds, 4)}
              for k, v in times.items()}}
    doc["speedup"] = round(doc["workers_1"]["rtf"] / doc["workers_2"]["rtf"], 2)
    print(json.dumps(doc))
    Path(args.out).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
