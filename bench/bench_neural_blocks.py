"""The neural diarization backend's session-19 speed-ups, paired in one process: segmentation batches of 16
chunks, CAM++ trunk blocks of 60 s, the trunk in float32 (the defaults before); batches of 8 and blocks of
40 s, float32; the defaults now (the same, the trunk in bfloat16 where the CPU computes it natively).

    python bench/bench_neural_blocks.py [--rounds 5] [--minutes 5] [--out bench/results/neural_blocks.json]
    python bench/bench_neural_blocks.py --before split_gap=0.5 [--before KEY=VALUE ...]  # any change of defaults
    python bench/bench_neural_blocks.py --before fine_cuts=never --num-speakers 4  # with the count given
    python bench/bench_neural_blocks.py --before fine_cuts=given --one-reader  # one voice: the second look's cost

``--before``: instead of the three settings below, time the defaults against the defaults with these
``NeuralConfig`` fields changed (e.g. a default changed since: what it costs or saves).

libri4.wav (the corpus's four readers) repeated to 5 minutes, count estimated (or ``--num-speakers``), 2 torch
threads. Each round
runs the whole diarization once with each setting, in a rotating order; per setting the median over rounds
of its time divided by the first setting's in the same round, the real-time factors, and the DER of its
turns against the first setting's (0: the same turns). Smaller pieces keep each worker's data in cache:
the LSTM of a batch of 8 chunks, the trunk's feature maps of 40 s; the trunk's context-aware masking uses
each block's own mean, so the block size changes the prints a little, as bfloat16 does
(docs/diarization.md has the DER of every recording under each).
Needs the neural model files (``s2vt diarize --setup``).
"""

from __future__ import annotations

import os
import statistics
import time

from bench_common import (libri4_minutes, neural_fields, neural_models_missing, one_reader_minutes,
                          paired_speech_args, write_results)

SETTINGS = {"before (batch 16, blocks 60 s, float32 trunk)": dict(batch=16, block_seconds=60.0, trunk_dtype="float32"),
            "batch 8, blocks 40 s, float32 trunk": dict(trunk_dtype="float32"),
            "now (defaults)": {}}


def main() -> int:
    ap = paired_speech_args(__doc__, "neural_blocks.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--before", action="append", default=[], metavar="KEY=VALUE",
                    help="time the defaults against the defaults with these NeuralConfig fields (repeatable)")
    ap.add_argument("--num-speakers", type=int, default=None, help="the count given (default: estimated)")
    ap.add_argument("--one-reader", action="store_true",
                    help="one LibriSpeech reader (libri4_cast's 2414) instead of libri4's four: a monologue")
    args = ap.parse_args()
    import torch

    from s2v_toolkit.diarization import diarization_error_rate, load_neural_models, open_audio
    from s2v_toolkit.diarization.neural import NeuralConfig, NeuralDiarizer

    if neural_models_missing():
        return 0
    torch.set_num_threads(args.threads)
    models = load_neural_models()
    x = (one_reader_minutes if args.one_reader else libri4_minutes)(args.corpus, args.minutes)
    seconds = len(x) / 16000
    settings = SETTINGS
    if args.before:
        settings = {"before (" + ", ".join(args.before) + ")": neural_fields(args.before), "now (defaults)": {}}
    diarizers = {name: NeuralDiarizer(models.segmentation, models.embedding, NeuralConfig(**fields))
                 for name, fields in settings.items()}
    for d in diarizers.values():  # warm-up: first calls allocate
        d(open_audio(x[: 20 * 16000], 16000))
    times: dict[str, list[float]] = {name: [] for name in settings}
    turns = {}
    names = list(settings)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            turns[name] = diarizers[name](open_audio(x, 16000), num_speakers=args.num_speakers)
            times[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names), flush=True)
    from s2v_toolkit.diarization.neural import resolve_trunk_dtype

    first = names[0]
    ratios = {n: [b / a for a, b in zip(times[first], times[n])] for n in names[1:]}
    doc = {"command": f"python bench/bench_neural_blocks.py --rounds {args.rounds} --minutes {args.minutes:g}"
                      + "".join(f" --before {b}" for b in args.before)
                      + (f" --num-speakers {args.num_speakers}" if args.num_speakers else "")
                      + (" --one-reader" if args.one_reader else ""),
           "threads": args.threads, "cpu_count": os.cpu_count(), "audio_seconds": seconds,
           "load_average": os.getloadavg(), "seconds": times,
           "rtf": {n: round(statistics.median(times[n]) / seconds, 4) for n in names},
           "trunk_dtype_now": resolve_trunk_dtype("auto"),
           "ratio_over_before": {n: {"per_round": [round(v, 3) for v in r], "median": round(statistics.median(r), 3)}
                                 for n, r in ratios.items()},
           "der_against_before": {n: round(diarization_error_rate(turns[first], turns[n]).der, 4) for n in names[1:]}}
    print(f"real-time factor: {doc['rtf']} (trunk now: {doc['trunk_dtype_now']})")
    for n in names[1:]:
        print(f"  {n} / before, median of {args.rounds} rounds: {doc['ratio_over_before'][n]['median']}; "
              f"DER of its turns against the first's: {doc['der_against_before'][n]}")
    write_results(doc, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
