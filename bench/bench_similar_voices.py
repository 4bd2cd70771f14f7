"""Similar voices of one synthesiser: both diarization backends on 18 espeak-ng scenes, in one run.

    python bench/bench_similar_voices.py [--backends embedded,neural] [--out bench/results/similar_voices.json]

Issue 18 asks for DER <= 0.25 on hard similar-voice scenes ("a 34 s three-voice dialogue from one speech
synthesiser with an overlap and noise"). ``bench_corpus_speakers.py`` measures one such scene; this bench
measures the kind: six triplets of espeak-ng voices (male variants with close pitches, female variants,
British variants, one voice at three pitches, three named variants), each in three layouts built with exact
turns: 12 lines with overlaps of up to 0.3 s and noise, 12 lines with clean 0.3-0.8 s pauses, and 16 lines
(about 30 s) in a random speaker order with overlaps and noise. DER (no collar, overlap scored) with the
count estimated and given (3), and the count found; with a cast file of the voices' samples (the ``_cast`` rows: the
count bounded by the cast size + 1, as `s2vt plan` runs; ``_cast_count``: the cast size as the count,
`--cast-count`), the DER of the characters. Needs espeak-ng; the neural backend needs its model
files (``s2vt diarize --setup``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from bench_common import neural_fields, write_results

LINES = ["Where were you last night", "I was at the harbour watching the boats come in",
         "That is not what your brother told me", "My brother was not even there",
         "Then who left the gate open", "Maybe the wind did it", "The wind does not carry keys",
         "Fine. I went back for my coat", "You could have said so from the start", "I know and I am sorry",
         "Did anyone see you at the harbour", "The old man who sells the fish saw me",
         "Nobody believes a word that man says", "He has never lied to me", "Then you do not know him well",
         "I know him better than you think"]
ORDER = ["a", "b", "c", "a", "c", "b", "a", "b", "c", "b", "a", "c", "b", "a", "c", "a"]
VOICES = {
    "en-us m1/m3/m7, pitch 40/55/48": {"a": ("en-us+m1", ["-p", "40"]), "b": ("en-us+m3", ["-p", "55"]),
                                       "c": ("en-us+m7", ["-p", "48"])},
    "en-us m2/m4/m6, pitch 45/50/55": {"a": ("en-us+m2", ["-p", "45"]), "b": ("en-us+m4", ["-p", "50"]),
                                       "c": ("en-us+m6", ["-p", "55"])},
    "en-us f1/f2/f4": {"a": ("en-us+f1", []), "b": ("en-us+f2", []), "c": ("en-us+f4", [])},
    "en-gb m1/m3/m5": {"a": ("en-gb+m1", []), "b": ("en-gb+m3", []), "c": ("en-gb+m5", [])},
    "en-us at pitch 35/50/65": {"a": ("en-us", ["-p", "35"]), "b": ("en-us", ["-p", "50"]),
                                "c": ("en-us", ["-p", "65"])},
    "en-us Andy/Michael/Mike": {"a": ("en-us+Andy", []), "b": ("en-us+Michael", []), "c": ("en-us+Mike", [])},
}
# each voice's samples for a cast file (the `--cast` rows): four other sentences, never heard in the scenes
ENROLL = ["The weather was cold and grey all week long", "She asked me to bring the books back to the library",
          "We walked along the river until the sun went down", "Nobody knew how the story would end"]
LAYOUTS = {  # gap range after each line (negative: overlap), noise sd, seed, lines, random speaker order
    "12 lines, overlaps, noise": ((-0.3, 0.6), 0.01, 5, 12, False),
    "12 lines, clean pauses": ((0.3, 0.8), 0.0, 6, 12, False),
    "16 lines, random order, overlaps, noise": ((-0.3, 0.6), 0.01, 7, 16, True),
}


def scene(voices: dict, gap: tuple, noise: float, seed: int, n_lines: int, shuffled: bool):
    """(16 kHz samples, reference SpeakerTurns) of one scene."""
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns
    from s2v_toolkit.diarization.synthetic import espeak_speech

    rng = np.random.default_rng(seed)
    order = list(np.random.default_rng(seed).choice(list(voices), n_lines)) if shuffled else ORDER[:n_lines]
    t, placed, turns = 0.5, [], []
    for who, text in zip(order, LINES):
        x = espeak_speech(*voices[who], text)
        placed.append((int(t * 16000), x))
        turns.append(SpeakerTurn(t, t + len(x) / 16000, str(who)))
        t = max(t + 0.3, t + len(x) / 16000 + rng.uniform(*gap))
    sig = np.zeros(max(p + len(x) for p, x in placed) + 8000, np.float32)
    for p, x in placed:
        sig[p:p + len(x)] += x
    if noise:
        sig += rng.normal(0, noise, len(sig)).astype(np.float32)
    return sig, SpeakerTurns(turns, "scene", len(sig) / 16000)


def cast_prints(voices: dict) -> dict:
    """Enrolled voice prints of a cast file holding each voice's samples (:data:`ENROLL`, 4 sentences)."""
    from s2v_toolkit.diarization import enroll
    from s2v_toolkit.diarization.synthetic import espeak_speech

    return enroll({who: [(np.concatenate([espeak_speech(*voices[who], s) for s in ENROLL]), 16000)]
                   for who in voices})


def with_cast(sig, ref, prints: dict, backend: str, characters: list[str], cast_count: bool = False,
              config=None) -> dict:
    """What `s2vt diarize --cast` gives (`s2vt plan` asks for exclusive turns): the count estimated with the
    cast size + 1 as its bound (``cast_count``: the cast size as the count, `--cast-count`), characters
    assigned from the voice samples; DER of the characters (a character is a speaker)."""
    from dataclasses import replace

    from s2v_toolkit.diarization import assign_characters, diarization_error_rate, diarize

    counts = {"num_speakers": len(characters)} if cast_count else {"max_speakers": len(characters) + 1}
    est = diarize(sig, 16000, backend=backend, config=config, **counts)
    named = assign_characters(est, sig, prints, characters=characters, sample_rate=16000)
    by_character = named.with_turns([replace(t, speaker=t.character or "unknown") for t in named])
    return {"found": len(est.speakers), "der": round(diarization_error_rate(ref, by_character).der, 4),
            "turns_moved": named.info["assignment"].get("turns_moved", 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="embedded,neural")
    ap.add_argument("--no-cast", action="store_true",
                    help="leave out the rows with a cast file (voice samples of each voice), as `s2vt plan` runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--neural-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a NeuralConfig field for the neural runs (repeatable)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "similar_voices.json"))
    args = ap.parse_args()
    if not shutil.which("espeak-ng"):
        print("espeak-ng is not installed: nothing measured")
        return 0
    import torch

    from s2v_toolkit.diarization import NeuralConfig, diarization_error_rate, diarize

    torch.set_num_threads(args.threads)
    backends = args.backends.split(",")
    configs = {"embedded": None, "neural": NeuralConfig(**neural_fields(args.neural_set)), "auto": None}
    rows = []
    t0 = time.perf_counter()
    for voices_name, voices in VOICES.items():
        prints = None if args.no_cast else cast_prints(voices)
        for layout, spec in LAYOUTS.items():
            sig, ref = scene(voices, *spec)
            row = {"voices": voices_name, "layout": layout, "seconds": round(len(sig) / 16000, 1)}
            for b in backends:
                est = diarize(sig, 16000, backend=b, config=configs[b])
                given = diarize(sig, 16000, backend=b, num_speakers=3, config=configs[b])
                row[b] = {"found": len(est.speakers), "der": round(diarization_error_rate(ref, est).der, 4),
                          "der_given": round(diarization_error_rate(ref, given).der, 4)}
                if prints is not None:
                    row[b + "_cast"] = with_cast(sig, ref, prints, b, list(voices), config=configs[b])
                    row[b + "_cast_count"] = with_cast(sig, ref, prints, b, list(voices), True, configs[b])
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = [k for k in rows[0] if k in backends or k.endswith(("_cast", "_cast_count"))]
    summary = {b: {"mean_der": round(float(np.mean([r[b]["der"] for r in rows])), 4),
                   **({"mean_der_given": round(float(np.mean([r[b]["der_given"] for r in rows])), 4)}
                      if "der_given" in rows[0][b] else {}),
                   "at_most_0.25": sum(r[b]["der"] <= 0.25 for r in rows),
                   "count_right": sum(r[b]["found"] == 3 for r in rows), "scenes": len(rows)} for b in keys}
    print(json.dumps(summary))
    write_results({"command": "python bench/bench_similar_voices.py --backends " + args.backends
                   + (" --no-cast" if args.no_cast else "") + "".join(f" --neural-set {a}" for a in args.neural_set),
                   "threads": args.threads, "seconds": round(time.perf_counter() - t0, 1),
                   "load_average": os.getloadavg(), "summary": summary, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
