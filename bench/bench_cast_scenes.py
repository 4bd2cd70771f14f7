"""Characters from a cast's voice samples on conversations of real voices: the assignment rules side by side.

    python bench/bench_cast_scenes.py [--scenes 24] [--backends embedded,neural] [--corpus ../shared/corpus]
        [--out bench/results/cast_scenes.json]

Each scene: 2-4 of the corpus's LibriSpeech readers (``audio/libri4_cast/``: 1998, 2033, 2414, 533; 3331 has
too little speech) taking 5-13 turns, one utterance piece each (cut at pauses), 0.2-0.8 s apart, light
noise. Half of each reader's pieces make the scenes, the other half the cast's voice samples, so no sample is
heard in a scene. Three kinds: as recorded; each scene piece through a microphone shelf of 0, +6 or -6 dB
above 1 kHz (the cast recorded elsewhere); and with the last reader left out of the cast (a stranger, whose
turns must come out ``unknown``). Diarization as `s2vt plan` runs it (count estimated, the cast size + 1 as
its bound), by each backend of ``--backends`` (the neural one needs its model files), then, on the same
turns, the characters by:

* ``one_to_one``: the speaker-level Hungarian matching alone (the rule before session 17);
* ``turns``: + every turn of 1 s or more goes to the enrolled voice it is closest to (session 17);
* ``now``: + a speaker the matching leaves over whose voice matches a character is that character too.

DER of the characters (no collar, overlap scored; a character is a speaker, ``unknown`` one more); the rows'
keys are ``<backend>/<rule>``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from bench_common import neural_fields, write_results

READERS = ["1998", "2033", "2414", "533"]
RULES = {"one_to_one": dict(same_voice=False, move_turns=False), "turns": dict(same_voice=False, move_turns=True),
         "now": dict(same_voice=True, move_turns=True)}


def scenes(cast_dir: Path, count: int, kind: str, seed: int):
    """The corpus's cast voice samples cut at pauses, as conversations with a cast
    (``s2v_toolkit.diarization.synthetic.cast_scenes``)."""
    import soundfile as sf

    from s2v_toolkit.diarization.synthetic import cast_scenes, cut_at_pauses

    pieces: dict[str, list] = {}
    for f in sorted(cast_dir.glob("*_*.flac")):
        x, rate = sf.read(f, dtype="float32")
        pieces.setdefault(f.stem.split("_")[0], []).extend(cut_at_pauses(x, rate))
    return cast_scenes(pieces, count, kind, seed, readers=READERS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("S2VT_CORPUS", str(Path(__file__).resolve().parents[2]
                                                                          / "shared" / "corpus")))
    ap.add_argument("--scenes", type=int, default=24, help="scenes of each kind")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backends", default="embedded", help="comma-separated: embedded, neural")
    ap.add_argument("--neural-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a NeuralConfig field for the neural runs (repeatable)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cast_scenes.json"))
    args = ap.parse_args()
    cast_dir = Path(args.corpus) / "audio" / "libri4_cast"
    if not cast_dir.is_dir():
        print(f"{cast_dir} is absent: nothing measured")
        return 0
    import torch

    from s2v_toolkit.diarization import NeuralConfig, assign_characters, diarization_error_rate, diarize, enroll

    torch.set_num_threads(args.threads)
    backends = args.backends.split(",")
    configs = {"neural": NeuralConfig(**neural_fields(args.neural_set)) if args.neural_set else None}
    keys = [f"{b}/{rule}" for b in backends for rule in RULES]
    t0 = time.perf_counter()
    rows = []
    for kind in ("recorded", "microphones", "stranger"):
        for name, sig, ref, samples, characters in scenes(cast_dir, args.scenes, kind, args.seed):
            prints = enroll(samples)
            row = {"scene": name, "kind": kind, "readers": len(ref.speakers)}
            for backend in backends:
                est = diarize(sig, 16000, backend=backend, max_speakers=len(characters) + 1, overlap=False,
                              config=configs.get(backend))
                row[f"{backend}/found"] = len(est.speakers)
                for rule, switches in RULES.items():
                    named = assign_characters(est, sig, prints, characters=characters, sample_rate=16000, **switches)
                    by_character = named.with_turns([replace(t, speaker=t.character or "unknown") for t in named])
                    row[f"{backend}/{rule}"] = round(diarization_error_rate(ref, by_character).der, 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {kind: {key: {"mean_der": round(float(np.mean([r[key] for r in rows if r["kind"] == kind])), 4),
                            "at_most_0.25": sum(r[key] <= 0.25 for r in rows if r["kind"] == kind)}
                      for key in keys} | {"scenes": sum(r["kind"] == kind for r in rows)}
               for kind in ("recorded", "microphones", "stranger")}
    print(json.dumps(summary))
    write_results({"command": f"python bench/bench_cast_scenes.py --scenes {args.scenes} --backends {args.backends}"
                              + "".join(f" --neural-set {a}" for a in args.neural_set),
                   "seconds": round(time.perf_counter() - t0, 1), "load_average": os.getloadavg(),
                   "summary": summary, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
