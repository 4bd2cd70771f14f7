"""The active-speaker networks side by side in one run: Light-ASD, LR-ASD and their average (the rule's
evidence), each combined with the landmarks as ``speaker_for_line`` combines them.

    python bench/bench_asd_networks.py --corpus ../shared/corpus --corpus /work/extra_corpus \
        --corpus /work/extra_corpus/new [--others 8] [--cache /tmp/asd_networks] \
        [--out bench/results/asd_networks.json]

For each talking head (``bench_corpus_speakers.talking_heads``: one tracked face, >= 2 s of speech) the
face's crops (``asd.line_face_crops``) are scored by each network with ``asd.asd_evidence`` (the rule's
own null: the audio circularly shifted by >= 1 s, 40 shifts) against its own audio and unrelated lines
(its audio reversed, rolled by half, and the audio of ``--others`` other clips: ``bench_asd_statistics.
lines_of``). The landmarks' z is ``speaker_for_line(..., network=False)``'s. Per evidence:
``combined z = (max(z_net, 0) + z_landmarks) / sqrt(2)``; reported: AUC (own lines against unrelated
ones), own lines right and unrelated lines picked at the rule's cut (2.33) and at 2.0 / 2.6 / 3.0, and
own lines right at the cut that lets 1 % / 3 % of the unrelated lines through; for all clips and for each
``--corpus`` folder (the last ones were held out from tuning the rule). One face per clip: no face choice
is involved, only the evidence.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

CUTS = (2.0, 2.33, 2.6, 3.0)


def combined(z_net: float, z_landmarks: float | None) -> float:
    return (max(z_net, 0.0) + (z_landmarks or 0.0)) / np.sqrt(2)


def summary(rows: list[dict], evidence: str) -> dict:
    p = np.array([r["combined"][evidence] for r in rows if r["own"]])
    n = np.array([r["combined"][evidence] for r in rows if not r["own"]])
    z = np.array([r["z"][evidence] for r in rows if not r["own"]])
    out = {"auc": round(float(np.mean(p[:, None] > n[None, :]) + 0.5 * np.mean(p[:, None] == n[None, :])), 3),
           "network_z_unrelated_mean": round(float(z.mean()), 2), "network_z_unrelated_sd": round(float(z.std()), 2),
           "cuts": {str(c): {"own_right": int((p >= c).sum()), "own": len(p), "unrelated_picked": int((n >= c).sum()),
                             "unrelated": len(n)} for c in CUTS}}
    ranked = np.sort(n)[::-1]
    for frac in (0.01, 0.03):
        k = int(np.floor(frac * len(n)))
        cut = float(ranked[k]) if k < len(n) else -np.inf
        out[f"own_right_at_{int(frac * 100)}pct_unrelated"] = f"{int((p > cut).sum())}/{len(p)} (cut {cut:.2f})"
    return out


def main() -> int:
    from bench_asd_statistics import corpus_arguments, landmarks_z, lines_of, talking_heads_of

    args = corpus_arguments(__doc__, "asd_networks.json", "folder for the face crops (reused when present)")

    import torch

    from s2v_toolkit.faces.asd import asd_evidence, combine_evidence, encode_faces_windowed, line_face_crops
    from s2v_toolkit.faces.asd_model import NETWORKS, load_network

    torch.set_num_threads(2)
    clips, folder_of = talking_heads_of(args.corpus)
    if len(clips) < 2:
        print("fewer than 2 talking heads found: nothing measured")
        return 0
    names = sorted(clips)
    models = {name: load_network(name, "cpu") for name in NETWORKS}
    evidences = [*NETWORKS, "average"]
    cache = Path(args.cache) if args.cache else None
    rows = []
    t0 = time.perf_counter()
    for name in names:
        analysis, _ = clips[name]
        path = cache / f"{name}.npz" if cache else None
        if path is not None and path.is_file():
            crops = np.load(path)["crops"]
        else:
            crops = line_face_crops(analysis.source, analysis.rotation, analysis.tracks, analysis.start,
                                    analysis.end, analysis.fps)[analysis.tracks[0].track_id]
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(path, crops=crops)
        with torch.inference_mode():   # the face once per network, for all its lines
            faces = {n: encode_faces_windowed(m, crops) for n, m in models.items()}
        for key, audio in lines_of(names, clips, name, args.others).items():
            lm = landmarks_z(analysis, audio)
            with torch.inference_mode():
                each = {n: asd_evidence(crops, audio, 16000, model=m, network=n, face_embedding=faces[n])
                        for n, m in models.items()}
            if any(e is None for e in each.values()):
                continue  # a line too short for the shifts
            each["average"] = combine_evidence([each[n] for n in NETWORKS])
            rows.append({"clip": name, "folder": folder_of[name], "line": key, "own": key == "own",
                         "landmarks_z": None if lm is None else round(lm, 3),
                         "z": {k: round(e.z, 3) for k, e in each.items()},
                         "combined": {k: round(combined(e.z, lm), 3) for k, e in each.items()}})
        print(f"{name}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    groups = {"all clips": rows}
    for root in args.corpus:
        part = [r for r in rows if r["folder"] == root]
        if part:
            groups[root] = part
    results = {g: {e: summary(part, e) for e in evidences} for g, part in groups.items()}
    print("\nclips | evidence | AUC | z of unrelated lines, mean/sd | own right / unrelated picked at "
          + " | ".join(str(c) for c in CUTS) + " | own right at 1 % / 3 % unrelated")
    for g, per in results.items():
        for e, s in per.items():
            print(" | ".join([g, e, f"{s['auc']:.3f}", f"{s['network_z_unrelated_mean']:.2f}/{s['network_z_unrelated_sd']:.2f}",
                              *(f"{c['own_right']}/{c['own']}, {c['unrelated_picked']}/{c['unrelated']}"
                                for c in s["cuts"].values()),
                              s["own_right_at_1pct_unrelated"], s["own_right_at_3pct_unrelated"]]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python bench/bench_asd_networks.py " + " ".join(sys.argv[1:]),
                               "clips": len(names), "results": results, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
