"""The neural diarization backend with its blocks side by side (two Python threads, one torch thread each)
against one after another, paired in one process.

    python bench/bench_neural_workers.py [--rounds 5] [--out bench/results/neural_workers.json]

libri4.wav (the corpus's four readers) repeated to 5 minutes, count estimated. For each process-wide torch
thread setting (1, then 2), each round runs the whole diarization once with ``workers=1`` (segmentation
batches and CAM++ trunk blocks one after another, on the process's torch threads) and once with
``workers=2`` (the default on 2 cores), alternating which goes first; the ratio of each round's pair and
their median, and the real-time factors. Needs the neural model files (``s2vt diarize --setup``).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from bench_common import libri4_minutes, neural_models_missing, paired_speech_args, write_results


def main() -> int:
    ap = paired_speech_args(__doc__, "neural_workers.json")
    args = ap.parse_args()
    import torch

    from s2v_toolkit.diarization import open_audio
    from s2v_toolkit.diarization import neural as N

    if neural_models_missing():
        return 0
    x = libri4_minutes(args.corpus, args.minutes)
    audio = open_audio(x, 16000)
    diarizer = N.NeuralDiarizer()
    original = (N.segment_chunks, N.trunk_frames)

    def run(workers: int) -> float:
        N.segment_chunks = lambda *a, **k: original[0](*a, workers=workers, **k)
        N.trunk_frames = lambda *a, **k: original[1](*a, workers=workers, **k)
        try:
            t0 = time.perf_counter()
            diarizer(audio)
            return time.perf_counter() - t0
        finally:
            N.segment_chunks, N.trunk_frames = original

    doc = {"command": f"python bench/bench_neural_workers.py --rounds {args.rounds}", "audio_seconds": len(x) / 16000,
           "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg(), "settings": {}}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        run(1)  # warm-up
        rounds = []
        for r in range(args.rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            times = {w: run(w) for w in order}
            rounds.append(times)
        ratios = [t[2] / t[1] for t in rounds]
        doc["settings"][f"torch_threads_{threads}"] = {
            "seconds": rounds, "ratio_side_by_side_over_serial": [round(q, 3) for q in ratios],
            "median_ratio": round(statistics.median(ratios), 3),
            "rtf_serial": round(min(t[1] for t in rounds) / doc["audio_seconds"], 4),
            "rtf_side_by_side": round(min(t[2] for t in rounds) / doc["audio_seconds"], 4)}
        print(threads, json.dumps({k: v for k, v in doc["settings"][f"torch_threads_{threads}"].items()
                                   if k != "seconds"}), flush=True)
    doc["load_average_after"] = os.getloadavg()
    write_results(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
