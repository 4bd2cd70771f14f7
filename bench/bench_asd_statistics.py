"""Which statistic of the active-speaker network's score separates a face's own audio from unrelated lines
best: the network's score at every audio delay, once per clip and line, then several statistics of it.

    python bench/bench_asd_statistics.py --corpus ../shared/corpus --corpus /work/extra_corpus \
        [--corpus /work/extra_corpus/new] [--cache /tmp/asd_statistics] [--others 8]

For each talking head (``bench_corpus_speakers.talking_heads``: one tracked face, >= 2 s of speech) the
face's crops are scored by the network (``faces.asd``) against its own audio and the unrelated lines (its
audio reversed, rolled by half, and the audio of ``--others`` other clips) circularly shifted by every
frame within 30 frames of 0 and every 3rd frame beyond. Statistics (z against the shifts >= 31 frames,
the null of the rule):

* ``z_d``: the score at audio delay ``d`` frames (``z_0`` is the rule's network z);
* ``window_a_b``: the mean score over delays a..b against the same window's mean along the null;
* ``max_a_b``: the largest score over delays a..b against the largest over windows of the null.

Each is reported alone and combined with the landmarks' z as the rule combines them,
``(max(z_net, 0) + z_landmarks) / sqrt(2)``: AUC (own audio against unrelated lines), and own lines above /
unrelated lines above cuts of 2.0, 2.33 (the rule's), 2.6 and 3.0. One face per clip: no face choice is
involved, only the evidence.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

NEAR = 30   # delays scored at every frame: -NEAR..NEAR
STEP = 3    # beyond: every STEP-th frame


def lines_of(names: list[str], clips: dict, name: str, others: int) -> dict[str, np.ndarray]:
    x = clips[name][1]
    lines = {"own": x, "reversed": x[::-1].copy(), "rolled": np.roll(x, len(x) // 2)}
    i = names.index(name)
    for k in range(1, others + 1):
        other = names[(i + k * 4) % len(names)]  # spread over the set, not only the next clips by name
        if other != name:
            lines[f"audio of {other}"] = np.resize(clips[other][1], len(x))
    return lines


def score_curves(crops: np.ndarray, lines: dict[str, np.ndarray], model) -> dict[str, np.ndarray]:
    """Line -> mean logit at each circular delay (NaN where not scored)."""
    import torch

    from s2v_toolkit.faces.asd import encode_faces_windowed, line_mfcc, shifted_scores

    t = len(crops)
    shifts = np.array(sorted(set(range(0, NEAR + 1)) | set(range(t - NEAR, t)) | set(range(NEAR + 1, t - NEAR, STEP))))
    out = {}
    with torch.inference_mode():
        faces = encode_faces_windowed(model, crops)
        for key, audio in lines.items():
            emb = model.encode_audio(torch.from_numpy(line_mfcc(audio, t))[None])
            curve = np.full(t, np.nan, np.float32)
            for a in range(0, len(shifts), 64):  # 64 shifts a batch: bounded memory on a CPU
                part = shifts[a:a + 64]
                curve[part] = shifted_scores(model, emb, faces, part)
            out[key] = curve
    return out


def statistics(c: np.ndarray) -> dict[str, float]:
    t = len(c)
    ks = np.array([k for k in range(NEAR + 1, t - NEAR) if np.isfinite(c[k])])
    far = c[ks]
    m, s = far.mean(), far.std(ddof=1)
    dense = np.interp(np.arange(ks[0], ks[-1] + 1), ks, far)  # the null on every frame (STEP-frame grid)
    near = np.array([c[k % t] for k in range(-NEAR, NEAR + 1)])
    out = {f"z_{d}": float((c[d % t] - m) / s) for d in (-1, 0, 1, 2, 3)}
    for a, b in ((0, 3), (0, 4), (-1, 5)):
        n = b - a + 1
        null = np.convolve(dense, np.ones(n) / n, "valid")
        out[f"window_{a}_{b}"] = float((near[NEAR + a:NEAR + b + 1].mean() - null.mean()) / null.std(ddof=1))
    for a, b in ((-3, 3), (-2, 5), (-2, 8)):
        null = np.lib.stride_tricks.sliding_window_view(dense, b - a + 1).max(1)
        out[f"max_{a}_{b}"] = float((near[NEAR + a:NEAR + b + 1].max() - null.mean()) / null.std(ddof=1))
    return out


def table(rows: list[dict]) -> list[dict]:
    keys = [k for k in rows[0]["stats"]]
    own = [r for r in rows if r["line"] == "own"]
    other = [r for r in rows if r["line"] != "own"]
    summary = []
    for k in keys:
        for combined in (False, True):
            def val(r):
                z = r["stats"][k]
                return (max(z, 0.0) + (r["landmarks_z"] or 0.0)) / np.sqrt(2) if combined else z
            p = np.array([val(r) for r in own])
            n = np.array([val(r) for r in other])
            auc = float(np.mean(p[:, None] > n[None, :]) + 0.5 * np.mean(p[:, None] == n[None, :]))
            summary.append({"statistic": k, "combined_with_landmarks": combined, "auc": round(auc, 3),
                            "cuts": {str(c): f"{int((p >= c).sum())}/{len(p)} own, {int((n >= c).sum())}/{len(n)} unrelated"
                                     for c in (2.0, 2.33, 2.6, 3.0)}})
    return summary


def corpus_arguments(doc: str, out_name: str, cache_help: str) -> argparse.Namespace:
    """The arguments of the benches over the corpus's talking heads (this one, bench_asd_networks)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--corpus", action="append", required=True, help="a folder with media/ (repeatable)")
    ap.add_argument("--others", type=int, default=8)
    ap.add_argument("--cache", default=None, help=cache_help)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / out_name))
    return ap.parse_args()


def talking_heads_of(roots: list[str]) -> tuple[dict, dict]:
    """``bench_corpus_speakers.talking_heads`` of every folder: {clip: (analysis, audio)}, {clip: folder}."""
    from bench_corpus_speakers import talking_heads

    clips, folder_of = {}, {}
    for root in roots:
        if (Path(root) / "media").is_dir():
            found = talking_heads(Path(root))
            clips.update(found)
            folder_of.update({name: root for name in found})
    return clips, folder_of


def landmarks_z(analysis, audio: np.ndarray) -> float | None:
    """The landmarks' z of the clip's one face for a line (``speaker_for_line`` without the network)."""
    from s2v_toolkit.faces import SpeakerParams, speaker_for_line

    marks = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000,
                             params=SpeakerParams(network=False))
    return None if not marks.candidates or marks.candidates[0].audio_z is None else float(marks.candidates[0].audio_z)


def main() -> int:
    args = corpus_arguments(__doc__, "asd_statistics.json", "folder for the crops and curves (reused when present)")

    import torch

    from s2v_toolkit.faces.asd import line_face_crops, load_light_asd

    torch.set_num_threads(2)
    clips, _ = talking_heads_of(args.corpus)
    if len(clips) < 2:
        print("fewer than 2 talking heads found: nothing measured")
        return 0
    names = sorted(clips)
    cache = Path(args.cache) if args.cache else None
    model = load_light_asd(device="cpu")
    rows = []
    t0 = time.perf_counter()
    for name in names:
        analysis, _ = clips[name]
        lines = lines_of(names, clips, name, args.others)
        path = cache / f"{name}.npz" if cache else None
        if path is not None and path.is_file():
            curves = dict(np.load(path))
        else:
            crops = line_face_crops(analysis.source, analysis.rotation, analysis.tracks, analysis.start,
                                    analysis.end, analysis.fps)[analysis.tracks[0].track_id]
            curves = score_curves(crops, lines, model)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(path, **curves)
        for key, audio in lines.items():
            lm = landmarks_z(analysis, audio)
            rows.append({"clip": name, "line": key, "landmarks_z": None if lm is None else round(lm, 3),
                         "stats": {k: round(v, 3) for k, v in statistics(curves[key]).items()}})
        print(f"{name}: {len(lines)} lines ({time.perf_counter() - t0:.0f} s)", flush=True)
    summary = table(rows)
    print("\nstatistic | with landmarks | AUC | >= 2.0 | >= 2.33 | >= 2.6 | >= 3.0")
    for s in summary:
        print(" | ".join([s["statistic"], "yes" if s["combined_with_landmarks"] else "no", f"{s['auc']:.3f}",
                          *s["cuts"].values()]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python bench/bench_asd_statistics.py " + " ".join(sys.argv[1:]),
                               "clips": len(names), "summary": summary, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
