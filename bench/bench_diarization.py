"""CPU benchmark of the embedded diarization backend against two baselines, in one run.

    python bench/bench_diarization.py [--repeat 3] [--out bench/results/cpu_diarization.json]

Recordings:

* two voices, espeak-ng "en-us+f3" at pitch 70 and "en-us", 30 alternating lines (~75 s);
* three voices, the same two and "en-us+grandma", 30 lines in an irregular order (~75 s);
* the two-voice conversation repeated 8 times (~10 min; for the real-time factor on a longer file);
* pyannote.audio's ``sample.wav`` with its ``sample.rttm`` (real speech, 30 s, two speakers), when a
  pyannote.audio wheel is installed somewhere on this machine (``--pyannote-sample`` or found under
  /work/venv-pyannote, /work/main/.venv-pyannote or the running Python).

Reference turns of the synthetic recordings are each utterance's own extent (trimmed at -40 dB below its
loudest 10 ms frame), placed one after the other with pauses of 0.3-0.9 s: no overlap.

Systems, all on 16 kHz mono float32 arrays:

* ours: ``s2v_toolkit.diarization.diarize(backend="embedded")`` (silero VAD + 256-d voice encoder +
  agglomerative clustering + turn smoothing), with the speaker count given and estimated;
* baseline "VAD only": the same silero VAD regions (``speech_probabilities`` + ``speech_regions``), every
  region one speaker (the DER floor of the VAD: what a one-speaker answer costs);
* baseline "MFCC k-means": the same VAD regions cut into 1.5 s windows (hop 0.75 s), each described by
  the mean and standard deviation of 20 MFCCs (librosa), standardised, k-means (k-means++ start, 10
  restarts; count given, or estimated as the k in 2..6 with the best silhouette); every 10 ms of speech
  gets the label of the nearest window centre. Written here; no smoothing.

All systems run with ``--threads`` torch threads (default 1; see the thread comparison at the end of the
run: ours with torch's default of one thread per core against one thread, same call, same run).

DER with ``s2v_toolkit.diarization.diarization_error_rate`` (pyannote.metrics' definition), no collar
and a 0.25 s collar. Real-time factor = processing seconds / audio seconds; one warm-up call of each
system (model loading), then the median of ``--repeat`` timed calls.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from s2v_toolkit.diarization.synthetic import espeak_speech  # noqa: E402

SR = 16000
VOICES = {"ann": ("en-us+f3", ["-p", "70"]), "bob": ("en-us", []), "cid": ("en-us+grandma", [])}
LINES = [
    "Where were you last night", "I was at the harbour watching the boats come in",
    "That is not what your brother told me", "My brother was not even there",
    "Then who left the gate open", "Maybe the wind did it", "The wind does not carry keys",
    "Fine. I went back for my coat", "You could have said so from the start", "I know and I am sorry",
    "Did anyone see you at the harbour", "The old man who sells the fish saw me",
    "He sees everybody and remembers nobody", "He remembered my coat, it is bright red",
    "Half the town owns a red coat", "Then ask the other half",
    "Do not be clever with me this morning", "I am not being clever, I am being tired",
    "We were worried, all of us", "I did not mean to worry anyone",
    "Next time leave a note on the table", "I will leave two notes and a map",
    "Now you are being clever again", "Perhaps a little, but the coffee is ready",
    "Pour me a cup and sit down", "Only if you stop asking questions",
    "One more question, and then I stop", "Go on then, what is it",
    "Who closed the gate this morning", "That was me, before anyone was awake",
]
TWO = ["ann", "bob"] * 15
THREE = ["ann", "bob", "cid", "ann", "cid", "bob", "ann", "cid", "bob", "bob", "ann", "cid", "ann", "bob", "cid",
         "cid", "ann", "bob", "cid", "ann", "bob", "ann", "cid", "bob", "ann", "bob", "cid", "cid", "ann", "bob"]
PYANNOTE_PLACES = ["/work/venv-pyannote/lib/python3*/site-packages",
                   "/work/main/.venv-pyannote/lib/python3*/site-packages"]


# ---- recordings --------------------------------------------------------------------------------------

def say(speaker: str, text: str) -> np.ndarray:
    """16 kHz float32 speech of ``speaker``, trimmed to its voiced extent (-40 dB)."""
    voice, opts = VOICES[speaker]
    return espeak_speech(voice, opts, text, SR)


def conversation(order: list[str], seed: int):
    """(signal, [(start, end, speaker)]) of LINES said in ``order`` with pauses of 0.3-0.9 s."""
    rng = np.random.default_rng(seed)
    pieces, ref, t = [np.zeros(SR // 2, np.float32)], [], 0.5
    for speaker, text in zip(order, LINES):
        x = say(speaker, text)
        gap = int(round(rng.uniform(0.3, 0.9) * SR))
        ref.append((t, t + len(x) / SR, speaker))
        pieces += [x, np.zeros(gap, np.float32)]
        t += (len(x) + gap) / SR
    pieces.append(np.zeros(SR // 2, np.float32))
    return np.concatenate(pieces), ref


def repeated(signal: np.ndarray, ref: list, times: int):
    d = len(signal) / SR
    return np.tile(signal, times), [(a + i * d, b + i * d, s) for i in range(times) for a, b, s in ref]


def find_pyannote_sample(explicit: str | None) -> Path | None:
    places = [explicit] if explicit else []
    places += PYANNOTE_PLACES + [p for p in sys.path if p.endswith("site-packages")]
    for place in places:
        for root in glob.glob(place):
            wav = Path(root) / "pyannote" / "audio" / "sample" / "sample.wav"
            if wav.is_file() and wav.with_suffix(".rttm").is_file():
                return wav
            if Path(root).name == "sample.wav" and Path(root).with_suffix(".rttm").is_file():
                return Path(root)
    return None


# ---- baselines ---------------------------------------------------------------------------------------

def vad_regions(samples: np.ndarray) -> list[tuple[float, float]]:
    from s2v_toolkit.diarization import speech_probabilities, speech_regions

    return speech_regions(speech_probabilities(samples), len(samples) / SR)


def turns_from(segments, duration: float, backend: str):
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns

    return SpeakerTurns([SpeakerTurn(a, b, s) for a, b, s in segments], "bench", duration, backend)


def vad_only(samples: np.ndarray, num_speakers: int | None = None):
    return turns_from([(a, b, "S0") for a, b in vad_regions(samples)], len(samples) / SR, "vad-only")


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 10, iters: int = 50):
    """Plain Lloyd's k-means with k-means++ starts; the labels of the restart with the least inertia."""
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        centers = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
            centers.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(len(x))])
        c = np.array(centers)
        for _ in range(iters):
            labels = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
            new = np.array([x[labels == j].mean(0) if (labels == j).any() else c[j] for j in range(k)])
            if np.allclose(new, c):
                break
            c = new
        inertia = ((x - c[labels]) ** 2).sum()
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def silhouette(x: np.ndarray, labels: np.ndarray, most: int = 400) -> float:
    """Mean silhouette (Euclidean); on an evenly spaced subset of ``most`` points for long recordings."""
    if len(x) > most:
        keep = np.linspace(0, len(x) - 1, most).round().astype(int)
        x, labels = x[keep], labels[keep]
    d = np.sqrt(((x[:, None, :] - x[None]) ** 2).sum(-1))
    ks = np.unique(labels)
    if len(ks) < 2:
        return -1.0
    s = np.zeros(len(x))
    for i in range(len(x)):
        same = labels == labels[i]
        if same.sum() <= 1:
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, labels == k].mean() for k in ks if k != labels[i])
        s[i] = (b - a) / max(a, b)
    return float(s.mean())


def mfcc_kmeans(samples: np.ndarray, num_speakers: int | None = None):
    import librosa

    duration = len(samples) / SR
    regions = vad_regions(samples)
    windows = []
    for r0, r1 in regions:
        s = r0
        while True:
            e = min(s + 1.5, r1)
            windows.append((s, e))
            if e >= r1 or r1 - (s + 0.75) < 0.3:
                break
            s += 0.75
    if not windows:
        return turns_from([], duration, "mfcc-kmeans")
    feats = []
    for a, b in windows:
        piece = samples[int(a * SR):int(b * SR)]
        m = librosa.feature.mfcc(y=piece, sr=SR, n_mfcc=20, n_fft=400, hop_length=160)
        feats.append(np.concatenate([m.mean(1), m.std(1)]))
    x = np.array(feats)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    rng = np.random.default_rng(0)
    if num_speakers is not None:
        labels = kmeans(x, min(num_speakers, len(x)), rng)
    else:
        options = [kmeans(x, k, rng) for k in range(2, min(6, len(x) - 1) + 1)]
        labels = max(options, key=lambda lab: silhouette(x, lab)) if options else np.zeros(len(x), int)
    centres = np.array([(a + b) / 2 for a, b in windows])
    segments = []
    for r0, r1 in regions:  # 10 ms frames, label of the nearest window centre
        t = np.arange(r0, r1, 0.01)
        lab = labels[np.abs(centres[None, :] - (t[:, None] + 0.005)).argmin(1)]
        start = 0
        for i in range(1, len(t) + 1):
            if i == len(t) or lab[i] != lab[start]:
                segments.append((t[start], min(r1, t[i - 1] + 0.01), f"S{lab[start]}"))
                start = i
    return turns_from(segments, duration, "mfcc-kmeans")


def ours(samples: np.ndarray, num_speakers: int | None = None):
    from s2v_toolkit.diarization import diarize

    return diarize(samples, SR, backend="embedded", num_speakers=num_speakers)


SYSTEMS = {"ours (embedded)": ours, "baseline: MFCC k-means": mfcc_kmeans, "baseline: VAD only": vad_only}


# ---- run -----------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every system (the thread comparison runs 1 and torch's default regardless)")
    ap.add_argument("--pyannote-sample", default=None, help="a sample.wav with sample.rttm beside it")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu_diarization.json"))
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 2

    import soundfile as sf
    import soxr
    import torch

    from s2v_toolkit.diarization import diarization_error_rate, read_rttm

    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    recordings = []  # name, samples, reference SpeakerTurns, true speaker count
    two, two_ref = conversation(TWO, seed=1)
    three, three_ref = conversation(THREE, seed=2)
    long_, long_ref = repeated(two, two_ref, 8)
    recordings += [("espeak-ng, 2 voices", two, two_ref, 2), ("espeak-ng, 3 voices", three, three_ref, 3),
                   ("espeak-ng, 2 voices, x8", long_, long_ref, 2)]
    recordings = [(name, x, turns_from(ref, len(x) / SR, "reference"), n) for name, x, ref, n in recordings]
    sample = find_pyannote_sample(args.pyannote_sample)
    if sample is not None:
        x, rate = sf.read(sample, dtype="float32")
        if x.ndim > 1:
            x = x.mean(axis=1)
        if rate != SR:
            x = soxr.resample(x, rate, SR).astype(np.float32)
        ref = next(iter(read_rttm(sample.with_suffix(".rttm")).values()))
        recordings.append(("pyannote.audio sample.wav (real)", x, ref, len(ref.speakers)))
    else:
        print("pyannote.audio's sample.wav not found: real recording left out", flush=True)

    for system in SYSTEMS.values():  # warm-up: model loading, librosa's first call
        system(two[: 10 * SR], 2)

    rows = []
    for name, x, ref, n_true in recordings:
        duration = len(x) / SR
        for system_name, system in SYSTEMS.items():
            modes = [n_true, None] if system is not vad_only else [None]
            for count in modes:
                times, hyp = [], None
                for _ in range(args.repeat if duration < 300 else 1):
                    t0 = time.perf_counter()
                    hyp = system(x, count)
                    times.append(time.perf_counter() - t0)
                der0 = diarization_error_rate(ref, hyp, collar=0.0)
                der25 = diarization_error_rate(ref, hyp, collar=0.25)
                row = {"recording": name, "duration_s": round(duration, 2), "speakers": n_true,
                       "system": system_name,
                       "count": "-" if system is vad_only else ("given" if count else "estimated"),
                       "speakers_found": len(hyp.speakers), "der": round(der0.der, 4),
                       "der_collar_0.25": round(der25.der, 4),
                       "der_parts": {k: round(getattr(der0, k), 3)
                                     for k in ("missed", "false_alarm", "confusion", "total")},
                       "seconds": [round(t, 4) for t in times], "rtf": round(statistics.median(times) / duration, 5)}
                rows.append(row)
                print(f"{name} | {system_name} | count {row['count']} -> {row['speakers_found']} | "
                      f"DER {100 * row['der']:.1f} % / {100 * row['der_collar_0.25']:.1f} % | RTF {row['rtf']:.4f}",
                      flush=True)

    # Same call, torch's default thread count (one per core) against one thread: on a 2-core machine
    # shared with other jobs, OpenMP threads waiting for each other can cost more than they give.
    threads = []
    for n in sorted({1, default_threads}):
        torch.set_num_threads(n)
        ours(two[: 10 * SR], 2)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ours(two, 2)
            times.append(time.perf_counter() - t0)
        threads.append({"torch_threads": n, "recording": "espeak-ng, 2 voices", "count": "given",
                        "seconds": [round(t, 4) for t in times],
                        "rtf": round(statistics.median(times) / (len(two) / SR), 5),
                        "load_average_1min": round(os.getloadavg()[0], 2)})
        print(f"ours, count given, 2 voices, torch threads {n}: RTF {threads[-1]['rtf']:.4f} "
              f"(load {threads[-1]['load_average_1min']})", flush=True)
    torch.set_num_threads(args.threads)
    load_after = os.getloadavg()

    print()
    print("recording | s | spk | system | count | found | DER no collar | DER 0.25 s collar | RTF")
    for r in rows:
        print(f"{r['recording']} | {r['duration_s']:.1f} | {r['speakers']} | {r['system']} | {r['count']} | "
              f"{r['speakers_found']} | {100 * r['der']:.1f} % | {100 * r['der_collar_0.25']:.1f} % | {r['rtf']:.4f}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")

    record = {
        "command": "python bench/bench_diarization.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads,
                    "torch_default_threads": default_threads,
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__,
                    "espeak-ng": subprocess.run(["espeak-ng", "--version"], capture_output=True,
                                                text=True).stdout.strip(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in load_after]},
        "pyannote_sample": str(sample) if sample else None, "repeat": args.repeat, "results": rows,
        "thread_comparison": threads,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
