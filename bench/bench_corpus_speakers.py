"""Who speaks, on real material: DER of the embedded diarizer and the active-speaker choice on the corpus.

    python bench/bench_corpus_speakers.py [--corpus DIR] [--out bench/results/corpus_speakers.json] [--no-faces]
                                          [--no-diarization] [--extra DIR]
    python bench/bench_corpus_speakers.py --no-diarization --out bench/results/corpus_active_speaker.json
    python bench/bench_corpus_speakers.py --no-diarization --corpus /work/extra_corpus \
        --out bench/results/extra_active_speaker.json   # any folder with README.md and media/

Reads ``../shared/corpus`` (or ``--corpus`` / ``$S2VT_CORPUS``); nothing from it is copied. Two tables:

Diarization (DER: no collar, overlap scored, ``s2v_toolkit.diarization.diarization_error_rate``, which agrees
with pyannote.metrics): for every corpus recording with a reference RTTM, and two synthetic espeak-ng scenes,

* ours, count estimated (``diarize(audio)``); ours, count given (the reference's speaker count);
* the old count rule: the speaker count from the previous estimator (average linkage on the raw window
  embeddings cut at cosine distance 0.35, clusters under 1 s folded), then the same clustering;
* one speaker: every VAD region one speaker (what a single-voice answer costs);
* with a cast file (``libri4_cast/*.yaml``): what ``s2vt diarize --cast`` does now (count estimated, at most
  the cast size + 1, voices matched to characters) against the old default (count = cast size).

* microphone changes: scenes built from the ``libri4_cast/`` voice samples (cut at pauses) where readers
  change microphone from piece to piece (a high shelf of 0, +6, -6 dB above 1 kHz in turn), and the same
  scenes without the shelves; the count on microphone-averaged embeddings (the default) against plain ones;
* speed: the real-time factor of ``diarize`` on libri4.wav repeated to 5 minutes (after a warm-up call);
* ``--extra DIR``: recordings outside the corpus (every ``URI.wav`` with turns of ``URI`` in one of the
  folder's RTTM files), count estimated and given.

Active speaker (``s2v_toolkit.faces.speaker_for_line`` over the whole clip): every corpus clip with speech
(VAD) with its own audio (the right face must be chosen), and with an unrelated line (another clip's audio,
its own audio reversed, its own audio rolled by half its length: no face may be chosen), next to the
previous default (the same, smoothed over 0.2 s), ours on the series' ranks, the older rule (inner-lip
gap, circular-shift null only, cut 0.8) and the baseline "the only visible face" (always right with its
own audio, never undecided); ours and the variants are also scored at cuts 0.8 / 0.9 / 0.95.
Real-time factor = processing seconds / audio seconds; the machine's load average is recorded.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def corpus_root(explicit: str | None) -> Path | None:
    for c in [explicit, os.environ.get("S2VT_CORPUS"), REPO.parent / "shared" / "corpus", "/work/shared/corpus"]:
        if c and (Path(c) / "README.md").is_file():
            return Path(c)
    return None


def old_count(samples: np.ndarray) -> int:
    """The speaker count of the previous estimator, on the same windows the backend embeds."""
    from scipy.cluster.hierarchy import fcluster, linkage

    from s2v_toolkit.diarization import EmbeddedConfig, VoiceEncoder, open_audio
    from s2v_toolkit.diarization.clustering import _normalize, _refine
    from s2v_toolkit.diarization.embedded import _speech_shares, _windows, detect_speech, embed_windows

    cfg, src = EmbeddedConfig(), open_audio(samples, 16000)
    regions = detect_speech(src, cfg.vad)
    if not regions:
        return 0
    windows = _windows(regions, cfg.window, cfg.step)
    x = _normalize(embed_windows(src, windows, VoiceEncoder()).astype(np.float64))
    w = _speech_shares(windows, regions)
    if len(x) < 2:
        return 1
    labels = fcluster(linkage(x, method="average", metric="cosine"), t=0.35, criterion="distance") - 1
    labels = _refine(x, labels, int(labels.max()) + 1, w, 3)
    while True:  # fold clusters under 1 s of speech into their nearest neighbour
        present = np.unique(labels)
        mass = {c: w[labels == c].sum() for c in present}
        small = [c for c in present if mass[c] < 1.0]
        if not small or len(present) <= 1:
            return len(present)
        c = min(small, key=lambda s: mass[s])
        others = [o for o in present if o != c]
        cents = _normalize(np.stack([(x[labels == o] * w[labels == o, None]).sum(0) for o in others]))
        labels[labels == c] = np.array(others)[np.argmax(x[labels == c] @ cents.T, axis=1)]


def one_speaker(samples: np.ndarray):
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns, speech_probabilities, speech_regions

    regions = speech_regions(speech_probabilities(samples), len(samples) / 16000)
    return SpeakerTurns([SpeakerTurn(a, b, "A") for a, b in regions], "one", len(samples) / 16000)


def synthetic_scenes():
    """Two espeak-ng scenes with exact turns: three distinct voices; three similar male voices of one
    synthesiser with overlaps and noise (the hard case)."""
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns
    from s2v_toolkit.diarization.synthetic import espeak_speech

    lines = ["Where were you last night", "I was at the harbour watching the boats come in",
             "That is not what your brother told me", "My brother was not even there",
             "Then who left the gate open", "Maybe the wind did it", "The wind does not carry keys",
             "Fine. I went back for my coat", "You could have said so from the start", "I know and I am sorry",
             "Did anyone see you at the harbour", "The old man who sells the fish saw me"]
    order = ["a", "b", "c", "a", "c", "b", "a", "b", "c", "b", "a", "c"]
    scenes = {"espeak 3 distinct voices": ({"a": ("en-us+f3", ["-p", "70"]), "b": ("en-us", []),
                                            "c": ("en-us+grandma", [])}, (0.3, 0.8), 0.0),
              "espeak 3 similar male voices, overlaps, noise": ({"a": ("en-us+m1", ["-p", "40"]),
                                                                 "b": ("en-us+m3", ["-p", "55"]),
                                                                 "c": ("en-us+m7", ["-p", "48"])}, (-0.3, 0.6), 0.01)}
    out = []
    for name, (voices, gap, noise) in scenes.items():
        rng = np.random.default_rng(5)
        t, placed, turns = 0.5, [], []
        for who, text in zip(order, lines):
            x = espeak_speech(*voices[who], text)
            placed.append((int(t * 16000), x))
            turns.append(SpeakerTurn(t, t + len(x) / 16000, who))
            t = max(t + 0.3, t + len(x) / 16000 + rng.uniform(*gap))
        sig = np.zeros(max(p + len(x) for p, x in placed) + 8000, np.float32)
        for p, x in placed:
            sig[p:p + len(x)] += x
        sig += rng.normal(0, noise, len(sig)).astype(np.float32) if noise else 0
        out.append((name, sig, SpeakerTurns(turns, name, len(sig) / 16000)))
    return out


def channel_scenes(cast_dir: Path, tilted: bool = True):
    """Readings built from the LibriSpeech voice samples of ``libri4_cast/`` (cut at pauses) where readers
    change microphone from piece to piece (``s2v_toolkit.diarization.synthetic.microphone_change_scenes``:
    a high shelf of 0, +6 and -6 dB above 1 kHz in turn; ``tilted=False``: without, the control).
    Readers: the four with the most speech in their samples (1998, 2033, 2414 and 533, the cast's fifth
    voice; 3331 has 6 s)."""
    import soundfile as sf

    from s2v_toolkit.diarization.synthetic import cut_at_pauses, microphone_change_scenes

    pieces: dict[str, list] = {}
    for f in sorted(cast_dir.glob("*_*.flac")):
        x, rate = sf.read(f, dtype="float32")
        pieces.setdefault(f.stem.split("_")[0], []).extend(cut_at_pauses(x, rate))
    return microphone_change_scenes(pieces, tilted)


def channel_table(root: Path) -> list[dict]:
    """Counts on the channel scenes: the default (count on tilt-averaged embeddings) against the plain
    embeddings (``EmbeddedConfig(count_tilts_db=())``), with and without the microphone changes."""
    from s2v_toolkit.diarization import EmbeddedConfig, EmbeddedDiarizer, diarization_error_rate, open_audio

    cast_dir = root / "audio" / "libri4_cast"
    if not cast_dir.is_dir():
        return []
    from s2v_toolkit.diarization import read_rttm
    from s2v_toolkit.diarization.synthetic import microphone_changes_in_turns

    plain, robust = EmbeddedDiarizer(EmbeddedConfig(count_tilts_db=())), EmbeddedDiarizer()
    scenes = []
    if (root / "audio" / "libri4.rttm").is_file():  # the real conversation, one reader's turns (or all) tilted
        src = open_audio(root / "audio" / "libri4.wav")
        x = src.read(0, src.duration)
        ref = read_rttm(root / "audio" / "libri4.rttm")
        ref = next(iter(ref.values())) if isinstance(ref, dict) else ref
        for who in ref.speakers + [None]:
            scenes.append((f"libri4.wav, {who or 'every reader'}'s turns through 3 microphones",
                           microphone_changes_in_turns(x, ref, who), ref))
    rows = []
    for tilted in (True, False):
        for name, x, ref in (scenes if tilted else []) + channel_scenes(cast_dir, tilted):
            a, b = robust(open_audio(x, 16000)), plain(open_audio(x, 16000))
            rows.append({"recording": name, "speakers": len(ref.speakers), "estimated": len(a.speakers),
                         "der_estimated": diarization_error_rate(ref, a).der,
                         "estimated_plain_embeddings": len(b.speakers),
                         "der_plain_embeddings": diarization_error_rate(ref, b).der})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def extra_table(extra: Path) -> list[dict]:
    """DER on recordings outside the corpus: every ``URI.wav`` of ``extra`` with a turn of ``URI`` in one of
    its ``*.rttm`` files (pyannote.audio's test recordings, for one), count estimated and given."""
    from s2v_toolkit.diarization import diarization_error_rate, diarize, open_audio, read_rttm

    refs = {}
    for f in sorted(extra.glob("*.rttm")):
        r = read_rttm(f)
        refs.update(r if isinstance(r, dict) else {f.stem: r})
    rows = []
    for uri, ref in sorted(refs.items()):
        if not (extra / f"{uri}.wav").is_file():
            continue
        src = open_audio(extra / f"{uri}.wav")
        x = src.read(0, src.duration)
        est, given = diarize(x, 16000), diarize(x, 16000, num_speakers=len(ref.speakers))
        rows.append({"set": extra.name, "recording": uri, "speakers": len(ref.speakers),
                     "estimated": len(est.speakers),
                     "der_estimated": diarization_error_rate(ref, est).der,
                     "der_given": diarization_error_rate(ref, given).der,
                     "der_one_speaker": diarization_error_rate(ref, one_speaker(x)).der,
                     "missed": diarization_error_rate(ref, est).missed / max(diarization_error_rate(ref, est).total, 1e-9)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def speed(root: Path, minutes: float = 5.0, repeat: int = 3) -> dict:
    """Real-time factor of ``diarize`` (count estimated) on ``libri4.wav`` repeated to ``minutes``: one
    warm-up call (model loading, about 1 s once per process), then the median of ``repeat`` timed calls."""
    from s2v_toolkit.diarization import diarize, open_audio

    src = open_audio(root / "audio" / "libri4.wav")
    x = src.read(0, src.duration)
    x = np.tile(x, int(np.ceil(minutes * 60 / src.duration)))[: int(minutes * 60 * 16000)]
    diarize(x[: 16000 * 10], 16000)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        diarize(x, 16000)
        times.append(time.perf_counter() - t0)
    row = {"audio_seconds": len(x) / 16000, "seconds": times, "rtf": float(np.median(times)) / (len(x) / 16000),
           "load_average": os.getloadavg()}
    print(json.dumps(row), flush=True)
    return row


def diarization_table(root: Path) -> list[dict]:
    from s2v_toolkit.diarization import (
        assign_characters,
        diarization_error_rate,
        diarize,
        enroll,
        load_cast_voices,
        open_audio,
        read_rttm,
    )

    def load(path):
        src = open_audio(path)
        return src.read(0, src.duration)

    def ref_of(path):
        r = read_rttm(path)
        return next(iter(r.values())) if isinstance(r, dict) else r

    recs = []
    audio = root / "audio"
    for rttm in sorted(audio.glob("*.rttm")):
        wav = audio / (rttm.stem.split("_")[0] + ".wav")
        if wav.is_file():
            recs.append((f"{wav.name} vs {rttm.name}", load(wav), ref_of(rttm)))
    if shutil.which("espeak-ng"):
        recs += synthetic_scenes()
    rows = []
    diarize(recs[0][1][: 16000 * 10], 16000)  # warm-up: model loading is not part of the real-time factor
    for name, x, ref in recs:
        n_ref = len(ref.speakers)
        t0 = time.perf_counter()
        est = diarize(x, 16000)
        rtf = (time.perf_counter() - t0) / (len(x) / 16000)
        given = diarize(x, 16000, num_speakers=n_ref)
        k_old = old_count(x)
        old = diarize(x, 16000, num_speakers=max(1, k_old))
        rows.append({"recording": name, "speakers": n_ref, "estimated": len(est.speakers),
                     "der_estimated": diarization_error_rate(ref, est).der, "rtf_estimated": rtf,
                     "der_given": diarization_error_rate(ref, given).der,
                     "old_rule_count": k_old, "der_old_rule": diarization_error_rate(ref, old).der,
                     "der_one_speaker": diarization_error_rate(ref, one_speaker(x)).der})
        print(json.dumps(rows[-1]), flush=True)
    # the cast as a bound and a prior, against the old default (count = cast size)
    for cast_file in sorted((audio / "libri4_cast").glob("*.yaml")) if (audio / "libri4_cast").is_dir() else []:
        x, cast = load(audio / "libri4.wav"), load_cast_voices(cast_file)
        voices = enroll(cast)
        now = assign_characters(diarize(x, 16000, max_speakers=len(cast.characters) + 1), x, voices,
                                characters=cast.characters, sample_rate=16000)
        before = assign_characters(diarize(x, 16000, num_speakers=len(cast.characters)), x, voices,
                                   characters=cast.characters, sample_rate=16000)
        for rttm in ("libri4.rttm", "libri4_tight.rttm"):
            ref = ref_of(audio / rttm)
            rows.append({"recording": f"libri4.wav + {cast_file.name} vs {rttm}", "speakers": len(ref.speakers),
                         "cast": len(cast.characters), "estimated": len(now.speakers),
                         "der_cast_bound": diarization_error_rate(ref, now).der,
                         "der_cast_count_old_default": diarization_error_rate(ref, before).der,
                         "unknown_seconds": round(sum(t.duration for t in now if t.character == "unknown"), 2),
                         "characters": sorted({t.character for t in now})})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def talking_heads(root: Path) -> dict:
    """{name: (FaceAnalysis, 16 kHz audio)} of every clip of ``root/media`` with at least 2 s of speech
    (VAD) and one tracked face (a talking head: the right face is known without our own output)."""
    from s2v_toolkit.diarization import open_audio, speech_probabilities, speech_regions
    from s2v_toolkit.faces import analyze_video

    clips = {}
    for path in sorted((root / "media").glob("*")):
        try:
            src = open_audio(path)
        except Exception:  # no audio stream
            continue
        x = src.read(0, src.duration)
        speech = sum(b - a for a, b in speech_regions(speech_probabilities(x), len(x) / 16000))
        if speech < 2.0:
            continue
        analysis = analyze_video(path)
        if len(analysis.tracks) != 1:
            continue  # a talking head: one face, so the right face is known without our own output
        clips[path.name] = (analysis, x)
    return clips


def unrelated_lines(clips: dict, name: str, x: np.ndarray,
                    others: int | None = None) -> list[tuple[str, np.ndarray, bool]]:
    """The clip's own audio (the face speaks it) and the unrelated lines: its own audio reversed, rolled by
    half its length, and every other clip's audio of the folder (cut or repeated to the same length); with
    ``others``, only the audio of the ``others`` clips that follow it in name order (wrapping round)."""
    lines = [("own audio", x, True), ("own audio reversed", x[::-1].copy(), False),
             ("own audio rolled by half", np.roll(x, len(x) // 2), False)]
    names = sorted(clips)
    chosen = [o for o in names if o != name]
    if others is not None:
        i = names.index(name)
        chosen = [names[(i + k) % len(names)] for k in range(1, min(others, len(names) - 1) + 1)]
    return lines + [(f"audio of {o}", np.resize(clips[o][1], len(x)), False) for o in chosen]


def _auc(own, other) -> float | None:
    own, other = np.asarray(own, float), np.asarray(other, float)
    if not len(own) or not len(other):
        return None
    return round(float((own[:, None] > other[None, :]).mean() + 0.5 * (own[:, None] == other[None, :]).mean()), 3)


def pooled_table(clips: dict) -> list[dict]:
    """Several lines of one character on one face: each clip's line (own audio or unrelated) split into
    consecutive parts of 2.5-2.7 s (3 parts of an 8 s clip, 2 of a 5-6.6 s one), judged part by part
    (``speaker_for_line`` on each) and pooled (``speakers_pooled``: Stouffer's z over the parts, each
    with its own shift null), next to the whole clip as one line."""
    from s2v_toolkit.faces import SpeakerParams, speaker_for_line, speakers_pooled

    cut = SpeakerParams().audio_confidence
    rows = []
    for name, (analysis, x) in clips.items():
        n = analysis.end - analysis.start + 1
        k = 3 if n / analysis.fps >= 7.5 else 2
        edges = np.linspace(0, n, k + 1).round().astype(int)
        tid = analysis.tracks[0].track_id
        for what, audio, speaks in unrelated_lines(clips, name, x):
            parts = []
            for a, b in zip(edges[:-1], edges[1:]):
                s0 = int(round(a / analysis.fps * 16000))
                s1 = int(round(b / analysis.fps * 16000))
                parts.append((analysis.start + int(a), analysis.start + int(b) - 1, audio[s0:s1]))
            # the landmarks' evidence throughout (pooling combines the landmarks' z per line; the network
            # is not pooled): parts alone, pooled and the whole line compared on the same evidence
            marks = SpeakerParams(network=False)
            single = [speaker_for_line(analysis, a, b, audio=y, sample_rate=16000, params=marks) for a, b, y in parts]
            pooled = speakers_pooled(analysis, parts, sample_rate=16000)
            whole = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000,
                                     params=marks)
            ok = (lambda c: c.track_id == tid) if speaks else (lambda c: c.track_id is None)
            rows.append({"clip": name, "line": what, "face_speaks": speaks, "parts": k,
                         "part_seconds": round(n / k / analysis.fps, 2),
                         "part_confidence": [round(c.confidence, 3) for c in single],
                         "parts_correct": sum(ok(c) for c in single),
                         "pooled_confidence": round(pooled.confidence, 3), "pooled_correct": ok(pooled),
                         "pooled_z": {int(t): round(v, 2) for t, v in pooled.z.items()},
                         "whole_confidence": round(whole.confidence, 3), "whole_correct": ok(whole),
                         "pooled_reason": pooled.reason})
            assert pooled.confidence < cut or pooled.track_id is not None
            print(json.dumps(rows[-1]), flush=True)
    own = [r for r in rows if r["face_speaks"]]
    other = [r for r in rows if not r["face_speaks"]]
    summary = {"parts_alone": {"own_audio_right": f"{sum(r['parts_correct'] for r in own)}/{sum(r['parts'] for r in own)}",
                               "unrelated_undecided": f"{sum(r['parts_correct'] for r in other)}/"
                                                      f"{sum(r['parts'] for r in other)}",
                               "auc": _auc([c for r in own for c in r["part_confidence"]],
                                           [c for r in other for c in r["part_confidence"]])},
               "pooled": {"own_audio_right": f"{sum(r['pooled_correct'] for r in own)}/{len(own)}",
                          "unrelated_undecided": f"{sum(r['pooled_correct'] for r in other)}/{len(other)}",
                          "auc": _auc([r["pooled_confidence"] for r in own], [r["pooled_confidence"] for r in other])},
               "whole_line": {"own_audio_right": f"{sum(r['whole_correct'] for r in own)}/{len(own)}",
                              "unrelated_undecided": f"{sum(r['whole_correct'] for r in other)}/{len(other)}",
                              "auc": _auc([r["whole_confidence"] for r in own], [r["whole_confidence"] for r in other])}}
    print(json.dumps(summary), flush=True)
    rows.append({"summary": summary})
    return rows


# --- evidence variants (issue 18): spectral bands, the line's pauses, mouth width; none kept (docs/faces.md)


def _cancorr(x: np.ndarray, y: np.ndarray) -> tuple[float, tuple | None]:
    """First canonical correlation of the columns of x and y (Pearson r when both have one column), and
    the weights of the two canonical variates."""
    x, y = x - x.mean(0), y - y.mean(0)
    sx, sy = x.std(0), y.std(0)
    if np.any(sx < 1e-9) or np.any(sy < 1e-9):
        return -1.0, None
    x, y = x / sx, y / sy
    n = len(x)
    if x.shape[1] == 1 and y.shape[1] == 1:
        return float(x[:, 0] @ y[:, 0] / n), (np.ones(1) / sx, np.ones(1) / sy)
    ix = np.linalg.inv(np.linalg.cholesky(x.T @ x / n))
    iy = np.linalg.inv(np.linalg.cholesky(y.T @ y / n))
    u, sv, vt = np.linalg.svd(ix @ (x.T @ y / n) @ iy.T)
    return float(sv[0]), ((ix.T @ u[:, 0]) / sx, (iy.T @ vt[0]) / sy)


def _lagged_cancorr(m: np.ndarray, a: np.ndarray, max_lag: int):
    best, weights = -1.0, None
    n = len(m)
    for lag in range(-max_lag, max_lag + 1):
        lo, hi = max(0, -lag), min(n, n - lag)
        r, w = _cancorr(m[lo:hi], a[lo + lag:hi + lag])
        if r > best:
            best, weights = r, w
    return best, weights


def multi_evidence(mouth: list[np.ndarray], audio: list[np.ndarray], fps: float) -> float:
    """The default statistic generalised to several mouth and audio series: the first canonical
    correlation (a least-squares fit when one side has one series) at the best lag within +-0.3 s, after
    the same 0.12 s smoothing; z against the circular shifts of the audio series (0.5 s or more), the
    fit redone on every shift (extra series are paid for in the null), the spread floored by Bartlett's
    sd of the two canonical variates. Returns 2 Phi(z) - 1, clipped at 0."""
    from scipy.stats import norm

    from s2v_toolkit.faces.speaker import _fill_and_smooth, bartlett_sd

    width = max(1, int(round(0.12 * fps)) | 1)
    max_lag = max(1, int(round(0.3 * fps)))
    m = np.stack([_fill_and_smooth(c, width) for c in mouth], 1)
    a = np.stack([_fill_and_smooth(c, width) for c in audio], 1)
    r, w = _lagged_cancorr(m, a, max_lag)
    n = len(m)
    lo = max(2 * max_lag + 1, int(round(0.5 * fps)))
    null = np.array([_lagged_cancorr(m, np.roll(a, k, axis=0), max_lag)[0] for k in range(lo, n - lo + 1)])
    floor = bartlett_sd((m - m.mean(0)) @ w[0], (a - a.mean(0)) @ w[1]) if w is not None else 0.0
    z = (r - null.mean()) / max(null.std(), floor, 1e-3)
    return max(0.0, 2.0 * float(norm.cdf(z)) - 1.0)


def mouth_signals(track, n: int) -> dict[str, np.ndarray]:
    """Per frame: outer-lip height, lip speed (as ``mouth_activity``), mouth width (lip corners), all in
    face widths, the default activity, and fixed sums with the width."""
    from s2v_toolkit.faces import landmarks as L
    from s2v_toolkit.faces.speaker import _standardised, mouth_activity

    lm, frames = track.landmarks, track.frames
    size = np.maximum(L.face_size(lm), 1e-6)
    h, w = np.full(n, np.nan), np.full(n, np.nan)
    h[frames] = np.linalg.norm(lm[:, L.OUTER_LIP_MIDS[0], :2] - lm[:, L.OUTER_LIP_MIDS[1], :2], axis=1) / size
    w[frames] = np.linalg.norm(lm[:, L.MOUTH_CORNERS[0], :2] - lm[:, L.MOUTH_CORNERS[1], :2], axis=1) / size
    act = mouth_activity(track, 0, n - 1)
    s = 2 * act - _standardised(h)  # the activity is the mean of standardised height and speed
    return {"height": h, "speed": s, "width": w, "activity": act,
            "activity_minus_width": (_standardised(h) + s - _standardised(w)) / 3,
            "activity_plus_width": (_standardised(h) + s + _standardised(w)) / 3}


def audio_signals(x: np.ndarray, fps: float, n: int) -> dict[str, np.ndarray]:
    """Per video frame: the default envelope (300-3000 Hz), log energy in 300-1000 Hz (F1: the jaw),
    1-3 kHz and 4-7.9 kHz (fricatives: the mouth narrows), each floored 50 dB under its peak; the speech
    probability of the line (Silero VAD, 32 ms chunks, interpolated) and its > 0.5 mask (speech vs pauses)."""
    from scipy.signal import butter, sosfilt

    from s2v_toolkit.diarization import speech_probabilities
    from s2v_toolkit.faces import audio_envelope, speech_envelope

    x = np.resize(np.asarray(x, np.float64), int(round(n * 16000 / fps)))

    def floored(e):
        return np.maximum(e, e.max() - 50 * np.log(10) / 20)

    out = {"envelope": floored(speech_envelope(x, 16000, fps, n))}
    for key, band in (("band_300_1000", [300, 1000]), ("band_1k_3k", [1000, 3000]), ("band_4k_8k", [4000, 7900])):
        y = sosfilt(butter(2, band, btype="band", fs=16000, output="sos"), x)
        out[key] = floored(audio_envelope(y, 16000, fps, n))
    out["band_f1_minus_fricative"] = out["band_300_1000"] - out["band_4k_8k"]
    p = speech_probabilities(x.astype(np.float32))
    prob = np.interp((np.arange(n) + 0.5) / fps, (np.arange(len(p)) + 0.5) * 0.032, p)
    out["vad"], out["vad_mask"] = prob, (prob > 0.5).astype(float)
    return out


VARIANTS = {  # name: (mouth series, audio series)
    "default (activity ~ envelope)": (["activity"], ["envelope"]),
    "a: activity ~ 300-1000 Hz": (["activity"], ["band_300_1000"]),
    "a: activity ~ 1-3 kHz": (["activity"], ["band_1k_3k"]),
    "a: activity ~ 4-8 kHz": (["activity"], ["band_4k_8k"]),
    "a: activity ~ (300-1000 Hz) - (4-8 kHz), fixed": (["activity"], ["band_f1_minus_fricative"]),
    "a: activity ~ 3 bands, least squares": (["activity"], ["band_300_1000", "band_1k_3k", "band_4k_8k"]),
    "a: activity ~ 3 bands + envelope, least squares": (["activity"], ["band_300_1000", "band_1k_3k",
                                                                        "band_4k_8k", "envelope"]),
    "a: height, speed ~ 3 bands, CCA": (["height", "speed"], ["band_300_1000", "band_1k_3k", "band_4k_8k"]),
    "b: activity ~ speech probability (VAD)": (["activity"], ["vad"]),
    "b: activity ~ speech/pause mask": (["activity"], ["vad_mask"]),
    "b: lip speed ~ speech/pause mask": (["speed"], ["vad_mask"]),
    "b: activity ~ envelope + VAD, least squares": (["activity"], ["envelope", "vad"]),
    "c: height, speed, width ~ envelope, least squares": (["height", "speed", "width"], ["envelope"]),
    "c: (height + speed - width) / 3 ~ envelope, fixed": (["activity_minus_width"], ["envelope"]),
    "c: (height + speed + width) / 3 ~ envelope, fixed": (["activity_plus_width"], ["envelope"]),
    "c: height, speed, width ~ 3 bands, CCA": (["height", "speed", "width"],
                                               ["band_300_1000", "band_1k_3k", "band_4k_8k"]),
}


def variants_table(clips: dict) -> list[dict]:
    """Every variant's confidence (one face: its audio evidence) on every line of ``faces_table``: own
    audio must reach the cut, unrelated lines must not. A mouth under ``min_mouth_motion`` scores 0, as
    in ``choose_speaker``."""
    from s2v_toolkit.faces import SpeakerParams
    from s2v_toolkit.faces.speaker import mouth_series

    rows = []
    for name, (analysis, x) in clips.items():
        n = analysis.end - analysis.start + 1
        t = analysis.tracks[0]
        mouth = mouth_signals(t, n)
        moving = float(np.nanstd(mouth_series(t, 0, n - 1))) >= SpeakerParams().min_mouth_motion
        for what, audio, speaks in unrelated_lines(clips, name, x):
            sound = audio_signals(audio, analysis.fps, n)
            row = {"clip": name, "line": what, "face_speaks": speaks}
            for key, (ms, as_) in VARIANTS.items():
                row[key] = round(multi_evidence([mouth[k] for k in ms], [sound[k] for k in as_], analysis.fps)
                                 if moving else 0.0, 4)
            rows.append(row)
        print(json.dumps(next(r for r in rows if r["clip"] == name and r["face_speaks"])), flush=True)
    summary = {}
    for key in VARIANTS:
        own = [r[key] for r in rows if r["face_speaks"]]
        other = [r[key] for r in rows if not r["face_speaks"]]
        summary[key] = {f"at_{cut}": f"{sum(v >= cut for v in own)}/{len(own)} / {sum(v < cut for v in other)}/{len(other)}"
                        for cut in (0.8, 0.9)}
        summary[key]["auc"] = _auc(own, other)
    print(json.dumps(summary, indent=1), flush=True)
    rows.append({"summary": summary})
    return rows


def faces_table(root: Path, clips: dict | None = None, others: int | None = None,
                quick: bool = False) -> list[dict]:
    """Every clip against its own audio and the unrelated lines. ``quick``: ours and the landmarks alone
    only (no older rules); ``others``: see :func:`unrelated_lines`."""
    from s2v_toolkit.faces import SpeakerParams, speaker_for_line

    clips = talking_heads(root) if clips is None else clips
    rows = []
    for name, (analysis, x) in clips.items():
        for what, audio, speaks in unrelated_lines(clips, name, x, others):
            t0 = time.perf_counter()
            choice = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000)
            best = next((c for c in choice.candidates if c.track_id == choice.best_candidate), None)
            seconds = time.perf_counter() - t0
            # the landmarks alone (the default before the audio-visual network; cut 0.9)
            t1 = time.perf_counter()
            marks = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000,
                                     params=SpeakerParams(network=False))
            marks_seconds = time.perf_counter() - t1
            rows.append({"clip": name, "line": what, "face_speaks": speaks, "chosen": choice.track_id,
                         "confidence": round(choice.confidence, 3),
                         "z": None if best is None or best.audio_z is None else round(best.audio_z, 2),
                         "network_z": None if best is None or best.network_z is None else round(best.network_z, 2),
                         "combined_z": None if best is None or best.combined_z is None else round(best.combined_z, 2),
                         "landmarks_chosen": marks.track_id, "landmarks_confidence": round(marks.confidence, 3),
                         "landmarks_correct": (marks.track_id == analysis.tracks[0].track_id) if speaks
                         else marks.track_id is None, "landmarks_seconds": round(marks_seconds, 3),
                         "correct": (choice.track_id == analysis.tracks[0].track_id) if speaks
                         else choice.track_id is None,
                         # baseline: the only visible face, whatever the audio
                         "only_face_correct": speaks,
                         "seconds": round(seconds, 3), "reason": choice.reason})
            if quick:
                print(json.dumps(rows[-1]), flush=True)
                continue
            # the previous rule, for comparison: inner-lip gap, circular-shift null only, Pearson r of the
            # values smoothed over 0.2 s, cut 0.8
            prev = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000,
                                    params=SpeakerParams(mouth_signal="opening", null_floor="shifts",
                                                         audio_confidence=0.8, smooth_seconds=0.2, ranks=False,
                                                         network=False))
            # the previous default: lip height + speed, Bartlett floor, Pearson r smoothed over 0.2 s
            values = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000,
                                      params=SpeakerParams(smooth_seconds=0.2, ranks=False, network=False))
            ranked = speaker_for_line(analysis, analysis.start, analysis.end, audio=audio, sample_rate=16000,
                                      params=SpeakerParams(ranks=True, network=False))  # landmarks on ranks
            rows[-1].update({"previous_rule_chosen": prev.track_id,
                         "previous_rule_confidence": round(prev.confidence, 3),
                         "previous_rule_correct": (prev.track_id == analysis.tracks[0].track_id) if speaks
                         else prev.track_id is None,
                         "ranks_confidence": round(ranked.confidence, 3),
                         "values_rule_confidence": round(values.confidence, 3),
                         "values_rule_correct": (values.track_id == analysis.tracks[0].track_id) if speaks
                         else values.track_id is None})
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    baselines = () if quick else ("values_rule_correct", "previous_rule_correct")
    for key in ("correct", "landmarks_correct") + baselines + ("only_face_correct",):
        own = [r[key] for r in rows if r["face_speaks"]]
        other = [r[key] for r in rows if not r["face_speaks"]]
        summary[key] = {"own_audio_right": f"{sum(own)}/{len(own)}", "unrelated_undecided": f"{sum(other)}/{len(other)}"}
    for cut in (0.8, 0.9, 0.95, 0.98, 0.99):  # at other thresholds (combined_confidence / audio_confidence)
        for name, key in (("ours", "confidence"), ("landmarks", "landmarks_confidence")) + (() if quick else (
                          ("values_rule", "values_rule_confidence"), ("ranks", "ranks_confidence"))):
            own = [r[key] >= cut for r in rows if r["face_speaks"]]
            other = [r[key] < cut for r in rows if not r["face_speaks"]]
            summary[f"{name}_at_{cut}"] = {"own_audio_right": f"{sum(own)}/{len(own)}",
                                           "unrelated_undecided": f"{sum(other)}/{len(other)}"}
    for name, key in (("ours", "confidence"), ("landmarks", "landmarks_confidence"),
                      ("network_z_alone", "network_z"), ("combined_z", "combined_z")) + (() if quick else (
                      ("values_rule", "values_rule_confidence"), ("ranks", "ranks_confidence"))):
        # how often an own-audio line is more confident than an unrelated one (AUC; ties count half)
        own = np.array([r[key] if r[key] is not None else -1e9 for r in rows if r["face_speaks"]])
        other = np.array([r[key] if r[key] is not None else -1e9 for r in rows if not r["face_speaks"]])
        if len(own) and len(other):
            auc = (own[:, None] > other[None, :]).mean() + 0.5 * (own[:, None] == other[None, :]).mean()
            summary[f"{name}_auc"] = round(float(auc), 3)
    print(json.dumps(summary), flush=True)
    rows.append({"summary": summary})
    return rows


def side_by_side(left: tuple, right: tuple, out: Path) -> Path:
    """Write the two talking heads side by side (each scaled to 512 px high, at the left clip's rate, as
    long as the shorter) with no audio: a two-shot of two real faces whose lines are known."""
    import cv2

    from s2v_toolkit.faces.analyze import iter_video_frames
    from s2v_toolkit.media import write_video

    (la, _), (ra, _) = left, right
    fps = la.fps
    n = int(min((la.end - la.start + 1) / la.fps, (ra.end - ra.start + 1) / ra.fps) * fps)
    def frames(a):
        got = [f for _, f in iter_video_frames(a.source, a.start, a.end, a.rotation)]
        pick = np.minimum((np.arange(n) / fps * a.fps).astype(int), len(got) - 1)
        return [cv2.resize(got[i], (int(round(got[i].shape[1] * 512 / got[i].shape[0])) // 2 * 2, 512),
                           interpolation=cv2.INTER_AREA) for i in pick]
    both = [np.concatenate([a, b], 1) for a, b in zip(frames(la), frames(ra))]
    from fractions import Fraction

    return write_video(out, np.stack(both), Fraction(fps).limit_denominator(1001), preset="h264", overwrite=True)


def multi_face_table(folder: Path) -> list[dict]:
    """Real clips with several people visible and one speaking: ``folder/speakers.json`` maps a clip's file
    name to the speaker's horizontal place, ``{"clip.mp4": {"speaker_x": [x0, x1]}}`` (pixels; from the
    clip's own annotation, e.g. MSDWild's face boxes and RTTM). The clip's own audio is the line; right when
    the chosen track's median landmark x lies in that range, wrong when another track is chosen."""
    from s2v_toolkit.diarization import open_audio
    from s2v_toolkit.faces import SpeakerParams, analyze_video, speaker_for_line

    truth = json.loads((folder / "speakers.json").read_text())
    rows = []
    for name, spec in sorted(truth.items()):
        path = folder / name
        analysis = analyze_video(path)
        src = open_audio(path)
        x = src.read(0, src.duration)
        x0, x1 = spec["speaker_x"]
        place = {t.track_id: float(np.median(t.landmarks[:, :, 0])) for t in analysis.tracks}
        row = {"clip": name, "tracks": len(analysis.tracks),
               "speaker_tracks": [tid for tid, px in place.items() if x0 <= px <= x1]}
        for key, params in (("ours", SpeakerParams()), ("landmarks", SpeakerParams(network=False))):
            choice = speaker_for_line(analysis, analysis.start, analysis.end, audio=x, sample_rate=16000,
                                      params=params)
            verdict = ("undecided" if choice.track_id is None
                       else "right" if x0 <= place[choice.track_id] <= x1 else "wrong")
            row[key] = {"chosen": choice.track_id, "confidence": round(choice.confidence, 3), "verdict": verdict,
                        "reason": choice.reason}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def two_faces_table(clips: dict, workdir: Path) -> list[dict]:
    """Two real talking heads side by side, each clip paired with the next of the folder: the left face's
    own audio must choose the left face, the right's the right one, and a third clip's audio neither (the
    serious error is the other face). Ours (network + landmarks) next to the landmarks alone."""
    from s2v_toolkit.faces import SpeakerParams, analyze_video, speaker_for_line

    names = sorted(clips)
    rows = []
    for i, a in enumerate(names):
        b = names[(i + 1) % len(names)]
        if a == b:
            continue
        path = side_by_side(clips[a], clips[b], workdir / f"pair_{i}.mp4")
        an = analyze_video(path)
        if len(an.tracks) != 2:
            rows.append({"left": a, "right": b, "note": f"{len(an.tracks)} tracks, not 2: skipped"})
            continue
        by_x = sorted(an.tracks, key=lambda t: float(np.median(t.boxes()[:, 0])))
        ids = {"left": by_x[0].track_id, "right": by_x[1].track_id}
        n = an.end - an.start + 1
        need = int(round(n / an.fps * 16000))
        third = names[(i + 2) % len(names)]
        lines = [("left", np.resize(clips[a][1], need)), ("right", np.resize(clips[b][1], need))]
        if third not in (a, b):
            lines.append((None, np.resize(clips[third][1], need)))
        for who, audio in lines:
            row = {"left": a, "right": b, "audio_of": who or third, "speaks": who}
            for name, params in (("ours", SpeakerParams()), ("landmarks", SpeakerParams(network=False))):
                c = speaker_for_line(an, an.start, an.end, audio=audio, sample_rate=16000, params=params)
                want = ids[who] if who else None
                row[name] = ("right" if c.track_id == want else
                             "undecided" if c.track_id is None else "wrong face")
                row[name + "_confidence"] = round(c.confidence, 3)
                side = {v: k for k, v in ids.items()}
                row[name + "_z"] = {side[x.track_id]: (x.combined_z if x.combined_z is not None else x.audio_z)
                                    for x in c.candidates if x.track_id in side}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for name in ("ours", "landmarks"):
        for kind, sel in (("own_line", lambda r: r.get("speaks")), ("third_clip_line", lambda r: "speaks" in r and not r["speaks"])):
            got = [r[name] for r in rows if name in r and sel(r)]
            summary[f"{name}_{kind}"] = {k: got.count(k) for k in ("right", "undecided", "wrong face")}
    print(json.dumps(summary), flush=True)
    rows.append({"summary": summary})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "corpus_speakers.json"))
    ap.add_argument("--no-faces", action="store_true")
    ap.add_argument("--no-diarization", action="store_true")
    ap.add_argument("--variants", action="store_true",
                    help="also score the evidence variants (spectral bands, pauses, mouth width) on the same lines")
    ap.add_argument("--no-active-speaker", action="store_true",
                    help="leave out the whole-clip active-speaker table (the pooled-lines table only)")
    ap.add_argument("--extra", action="append", default=[],
                    help="a folder of URI.wav + RTTM files outside the corpus (repeat for several folders)")
    ap.add_argument("--two-faces", action="store_true",
                    help="also pair the talking heads side by side: which of two real faces speaks")
    ap.add_argument("--no-pooled", action="store_true", help="leave out the pooled-lines table")
    ap.add_argument("--others", type=int, default=None,
                    help="unrelated lines from the audio of only this many other clips per clip (default: all)")
    ap.add_argument("--backend", default="embedded", choices=("auto", "embedded", "neural"),
                    help="the diarization backend measured (default embedded: the backend its tables in "
                         "docs/diarization.md describe; the package's own default is auto)")
    ap.add_argument("--quick", action="store_true",
                    help="active speaker: ours and the landmarks alone only (not the older rules)")
    ap.add_argument("--multi", default=None,
                    help="a folder of real clips with several people, one speaking, and speakers.json (see "
                         "multi_face_table)")
    args = ap.parse_args()
    os.environ["S2VT_DIARIZATION_BACKEND"] = args.backend  # every diarize() and plan below
    root = corpus_root(args.corpus)
    if root is None:
        print("no corpus found (../shared/corpus, $S2VT_CORPUS or --corpus)")
        return 0
    import torch

    torch.set_num_threads(1)
    doc = {"load_average": os.getloadavg(), "cpu_count": os.cpu_count()}
    if not args.no_diarization:
        doc["diarization"] = diarization_table(root)
        doc["channel"] = channel_table(root)
        doc["speed"] = speed(root)
        if args.extra:
            doc["extra"] = [row for folder in args.extra for row in extra_table(Path(folder))]
    if not args.no_faces:
        clips = talking_heads(root)
        if not args.no_active_speaker:
            doc["active_speaker"] = faces_table(root, clips, args.others, args.quick)
        if not args.no_pooled:
            doc["pooled_lines"] = pooled_table(clips)
        if args.two_faces:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                doc["two_faces"] = two_faces_table(clips, Path(tmp))
        if args.variants:
            doc["evidence_variants"] = variants_table(clips)
    if args.multi:
        doc["multi_face"] = multi_face_table(Path(args.multi))
    doc["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
