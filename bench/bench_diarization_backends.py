"""The embedded and the neural diarization backends side by side on real recordings, in one run.

    python bench/bench_diarization_backends.py [--corpus ../shared/corpus] [--extra DIR ...] [--threads 2]
        [--minutes 5] [--repeat 2] [--similar] [--neural-set KEY=VALUE ...] [--backends embedded,neural]
        [--out bench/results/diarization_backends.json]

Recordings: every ``audio/*.wav`` of the corpus with a reference ``<name>.rttm``; a longer scene of real
voices built from the corpus (libri4.wav, then every ``libri4_cast/*.flac`` voice sample - other utterances of
the same readers and of a fifth one, named by their file names - trimmed and put after it with 0.6 s pauses;
the reference is libri4.rttm plus each sample's extent); the two espeak-ng scenes of
``bench_corpus_speakers.py`` with exact turns (three distinct voices of one synthesiser; three similar male
voices with overlaps and noise: issue 18's hard similar-voice case), where espeak-ng is installed; and every
``URI.wav`` of each ``--extra`` folder with turns of ``URI`` in one of its RTTM files (``--no-corpus``: only
these). For each, both backends with the
count estimated and with the reference's count given: DER (no collar, overlap scored) and its parts
(missed, false alarm, confusion, as shares of the reference speech), speakers found.

Speed: ``libri4.wav`` repeated to ``--minutes``, count estimated, each backend warmed up once (model
loading), then the best of ``--repeat`` calls, alternating the backends; real-time factor = seconds /
audio seconds, and the ratio neural / embedded (the figure that carries to other machines).

``--similar`` adds the 18 similar-voice espeak-ng scenes of ``bench_similar_voices.py``; ``--neural-set``
changes a :class:`NeuralConfig` field for the neural runs (``--neural-set change_similarity=2.0``: the
variants of docs/diarization.md, "Voices of one synthesiser"); ``--backends neural`` runs one backend;
``--backends auto`` runs what ``s2vt`` runs by default (run with ``S2VT_DIARIZATION_BACKEND`` unset or ``auto``).
``--monologue``: the speed of ``--backends`` on one reader instead of four.

The neural backend needs its model files (``s2vt diarize --setup``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import libri4_minutes, neural_fields, one_reader_minutes, write_results

BACKENDS = ("embedded", "neural")


def recordings(corpus: Path | None, extras: list[Path]):
    """(name, wav, reference) of the corpus's recordings (None: none) and the extra folders'."""
    from s2v_toolkit.diarization import read_rttm

    out = []
    audio = corpus / "audio" if corpus is not None else None
    for rttm in sorted(audio.glob("*.rttm")) if audio is not None else []:
        wav = audio / f"{rttm.stem}.wav"
        if wav.is_file():
            out.append((f"corpus/{wav.stem}", wav, next(iter(read_rttm(rttm).values()))))
    for folder in extras:
        refs = {}
        for f in sorted(folder.glob("*.rttm")):
            refs.update(read_rttm(f))
        for uri, ref in sorted(refs.items()):
            if (folder / f"{uri}.wav").is_file():
                out.append((f"{folder.name}/{uri}", folder / f"{uri}.wav", ref))
    return out


def cast_samples_scene(corpus: Path):
    """(name, 16 kHz samples, reference) of libri4.wav followed by the cast's voice samples, or None."""
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns, open_audio, read_rttm

    audio = corpus / "audio"
    samples = sorted((audio / "libri4_cast").glob("*.flac"))
    if not (audio / "libri4.rttm").is_file() or not samples:
        return None
    x = [open_audio(audio / "libri4.wav").read_all()]
    turns = [SpeakerTurn(t.start, t.end, t.speaker) for t in next(iter(read_rttm(audio / "libri4.rttm").values()))]
    t = len(x[0]) / 16000
    for f in samples:  # file names: <LibriSpeech speaker id>_<n>.flac
        a = open_audio(f).read_all()
        energy = np.convolve(a ** 2, np.ones(160) / 160, "same")
        loud = np.flatnonzero(energy > 1e-5)
        a = a[loud[0]:loud[-1]] if len(loud) else a
        x += [np.zeros(int(0.6 * 16000), np.float32), a]
        t += 0.6
        turns.append(SpeakerTurn(t, t + len(a) / 16000, "spk" + f.stem.split("_")[0]))
        t += len(a) / 16000
    return "corpus/libri4 + libri4_cast samples", np.concatenate(x).astype(np.float32), SpeakerTurns(turns)


MIN_VOICE_SECONDS = 2.0  # the neural count rule's floor: a voice with less speech is not counted as one


def voices_with(ref, seconds: float) -> int:
    """Speakers of a reference holding at least ``seconds`` of speech (the real meeting excerpts name speakers
    with 0.3-1.8 s in 30 s: no count rule can be asked to find those)."""
    held: dict[str, float] = {}
    for t in ref:
        held[t.speaker] = held.get(t.speaker, 0.0) + t.end - t.start
    return sum(v >= seconds for v in held.values())


def der_row(ref, hyp) -> dict:
    from s2v_toolkit.diarization import diarization_error_rate

    r = diarization_error_rate(ref, hyp)
    total = max(r.total, 1e-9)
    return {"found": len(hyp.speakers), "der": round(r.der, 4), "missed": round(r.missed / total, 4),
            "false_alarm": round(r.false_alarm / total, 4), "confusion": round(r.confusion / total, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=os.environ.get("S2VT_CORPUS", str(Path(__file__).resolve().parents[2]
                                                                           / "shared" / "corpus")))
    ap.add_argument("--extra", action="append", default=[], help="a folder of URI.wav + RTTM (repeatable)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the 2-core target machine: 2)")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-der", action="store_true", help="speed only")
    ap.add_argument("--no-speed", action="store_true", help="DER only")
    ap.add_argument("--monologue", action="store_true",
                    help="time --backends on one reader (the cast samples of libri4's reader 2414, repeated)")
    ap.add_argument("--no-corpus", action="store_true", help="only the --extra folders' recordings")
    ap.add_argument("--no-synthetic", action="store_true", help="leave out the two espeak-ng scenes")
    ap.add_argument("--similar", action="store_true", help="add the 18 scenes of bench_similar_voices.py")
    ap.add_argument("--neural-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a NeuralConfig field for the neural runs (repeatable)")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="of embedded, neural, auto")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "diarization_backends.json"))
    args = ap.parse_args()

    import torch

    from s2v_toolkit.diarization import NeuralConfig, diarize, open_audio

    torch.set_num_threads(args.threads)
    backends = tuple(args.backends.split(","))
    fields = neural_fields(args.neural_set)
    # "auto" (what `s2vt` runs by default) takes no config: it decides between the two itself
    configs = {"embedded": None, "neural": NeuralConfig(**fields), "auto": None}
    corpus = Path(args.corpus)
    doc = {"command": "python bench/bench_diarization_backends.py " + " ".join(
        f"--extra {e}" for e in args.extra) + "".join(
        f" --{k.replace('_', '-')}" for k in ("no_der", "no_speed", "no_corpus", "no_synthetic", "similar", "monologue")
        if getattr(args, k)) + "".join(f" --neural-set {a}" for a in args.neural_set)
        + f" --backends {args.backends}", "threads": args.threads, "rows": []}
    if not args.no_der:
        recs = recordings(None if args.no_corpus else corpus, [Path(e) for e in args.extra])
        scene = None if args.no_corpus else cast_samples_scene(corpus)
        if scene is not None:
            recs.insert(2, scene)
        if not (args.no_corpus or args.no_synthetic) and shutil.which("espeak-ng"):
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from bench_corpus_speakers import synthetic_scenes

            at = 3 if scene is not None else 2  # after the corpus's recordings
            recs[at:at] = list(synthetic_scenes())
        if args.similar and shutil.which("espeak-ng"):
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import bench_similar_voices as similar

            recs += [(f"similar voices {name} | {layout}", *similar.scene(voices, *spec))
                     for name, voices in similar.VOICES.items() for layout, spec in similar.LAYOUTS.items()]
        for name, wav, ref in recs:
            src = open_audio(wav, 16000) if isinstance(wav, np.ndarray) else open_audio(wav)
            row = {"recording": name, "speakers": len(ref.speakers), "seconds": round(src.duration, 1),
                   "speakers_2s": voices_with(ref, MIN_VOICE_SECONDS)}
            for backend in backends:
                row[backend] = der_row(ref, diarize(src, backend=backend, config=configs[backend]))
                row[f"{backend}_given"] = der_row(ref, diarize(src, backend=backend, config=configs[backend],
                                                              num_speakers=len(ref.speakers)))
            doc["rows"].append(row)
            print(json.dumps(row), flush=True)
        for key in ("", "_given"):
            doc[f"mean_der{key or '_estimated'}"] = {
                b: round(float(np.mean([r[b + key]["der"] for r in doc["rows"]])), 4) for b in backends}
        real = [r for r in doc["rows"] if not r["recording"].startswith(("espeak", "similar"))]
        doc["count_within_one"] = {b: {"all_voices": sum(abs(r[b]["found"] - r["speakers"]) <= 1 for r in real),
                                       f"voices_of_{MIN_VOICE_SECONDS:g}_s": sum(
                                           abs(r[b]["found"] - r["speakers_2s"]) <= 1 for r in real),
                                       "recordings": len(real)} for b in backends}
        print(json.dumps({k: v for k, v in doc.items() if k.startswith(("mean", "count"))}))

    if args.no_speed:
        return _write(doc, args.out)
    x = one_reader_minutes(corpus, args.minutes) if args.monologue else libri4_minutes(corpus, args.minutes)
    seconds = len(x) / 16000
    timed = backends if args.monologue else BACKENDS
    times = {b: [] for b in timed}
    for b in timed:
        diarize(x[: 16000 * 20], 16000, backend=b)  # warm-up: model loading
    for _ in range(args.repeat):
        for b in timed:
            t0 = time.perf_counter()
            diarize(x, 16000, backend=b)
            times[b].append(time.perf_counter() - t0)
    first = timed[0]
    doc["speed"] = {"audio": "one reader (monologue)" if args.monologue else "libri4.wav's four readers",
                    "audio_seconds": seconds, "seconds": times,
                    "rtf": {b: round(min(t) / seconds, 4) for b, t in times.items()},
                    **({"ratio_neural_over_embedded": round(min(times["neural"]) / min(times["embedded"]), 2)}
                       if not args.monologue else
                       {f"ratio_over_{first}": {b: round(min(times[b]) / min(times[first]), 2) for b in timed[1:]}}),
                    "load_average": os.getloadavg()}
    print(json.dumps(doc["speed"]), flush=True)
    return _write(doc, args.out)


def _write(doc: dict, out: str) -> int:
    write_results(doc, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
