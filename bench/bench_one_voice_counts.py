"""How many voices each diarization backend hears in real recordings of one speaker (talking heads with their
own sound), count estimated: where one backend hears one voice and the other several, which is right.

    python bench/bench_one_voice_counts.py [--media DIR ...] [--out bench/results/one_voice_counts.json]

Every video or audio file of each ``--media`` folder with at least 3 s of sound (default: the corpus's
``media/``); the voices each backend finds, and the files where the neural backend hears one voice and the
embedded backend several. Session 21 measured a rule on this (docs/diarization.md, "One voice heard: a
second opinion"): such a split is wrong on every one of these files. The neural backend needs its model
files (``s2vt diarize --setup``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_common import neural_fields, write_results

SUFFIXES = {".mp4", ".mov", ".mkv", ".wav", ".flac", ".m4a"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", action="append", default=[], help="a folder of one-speaker files (repeatable)")
    ap.add_argument("--neural-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a NeuralConfig field: adds a column `neural_set`, the neural backend with it (repeatable)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "one_voice_counts.json"))
    args = ap.parse_args()
    import torch

    from s2v_toolkit.diarization import NeuralConfig, diarize, open_audio

    torch.set_num_threads(2)
    variant = NeuralConfig(**neural_fields(args.neural_set)) if args.neural_set else None
    folders = args.media or [str(Path(__file__).resolve().parents[2] / "shared" / "corpus" / "media")]
    rows = []
    for folder in folders:
        for f in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in SUFFIXES):
            try:
                x = open_audio(f).read_all()
            except Exception:  # no audio stream
                continue
            if len(x) < 3 * 16000:
                continue
            row = {"file": f"{Path(folder).name}/{f.name}", "seconds": round(len(x) / 16000, 1),
                   **{b: len(diarize(x, 16000, backend=b).speakers) for b in ("neural", "embedded")}}
            if variant is not None:
                row["neural_set"] = len(diarize(x, 16000, backend="neural", config=variant).speakers)
            rows.append(row)
            print(json.dumps(row), flush=True)
    split = [r["file"] for r in rows if r["neural"] == 1 and r["embedded"] >= 2]
    summary = {"files": len(rows), "neural_one_voice": sum(r["neural"] == 1 for r in rows),
               "embedded_one_voice": sum(r["embedded"] == 1 for r in rows),
               "neural_one_embedded_several": len(split), "those_files": split}
    if args.neural_set:
        summary["neural_set"] = args.neural_set
        summary["neural_set_one_voice"] = sum(r["neural_set"] == 1 for r in rows)
    print(json.dumps(summary))
    write_results({"command": "python bench/bench_one_voice_counts.py " + " ".join(f"--media {m}" for m in args.media)
                   + "".join(f" --neural-set '{a}'" for a in args.neural_set),
                   "summary": summary, "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
