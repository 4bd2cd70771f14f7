"""The embedded (offline, default) diarization backend: Silero VAD -> voice-encoder embeddings of sliding
windows -> clustering -> frame labels -> smoothed, non-overlapping speaker turns.

Everything it needs ships in this package (``weights/``); nothing is downloaded. Two passes over the
audio keep memory bounded for long files: the VAD pass reads blocks of ``block_seconds``; the embedding
pass reads each speech region (in pieces of at most ``block_seconds``) and keeps only one 256-d vector per
window. The speaker count is estimated on embeddings averaged over microphone tilts (the encoder hears the
channel); windows where two voices mix (overlap) are kept out of the speaker centroids; each moment still
goes to the one speaker whose voice dominates it (turns never overlap).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from s2v_toolkit.diarization.audio import AudioSource
from s2v_toolkit.diarization.clustering import (
    MIN_SPEAKER_SECONDS,
    centroids_of,
    cluster_embeddings,
    estimate_speaker_count,
    mixed_windows,
)
from s2v_toolkit.diarization.embedding import SAMPLE_RATE, VoiceEncoder
from s2v_toolkit.diarization.turns import SpeakerTurn, SpeakerTurns
from s2v_toolkit.diarization.vad import ChunkCues, SileroVAD, VADConfig, speech_regions

FRAME = 0.01  # label resolution, seconds
COUNT_ALL_WINDOWS = 20  # up to twice this many full-length windows, the channel-robust count uses all


@dataclass
class EmbeddedConfig:
    """Knobs of the embedded backend (seconds unless said). Defaults are documented in docs/diarization.md."""

    vad: VADConfig = field(default_factory=VADConfig)
    window: float = 1.6  # embedding window: the piece length the voice encoder was trained on
    step: float = 0.4  # hop between windows
    min_window: float = 1.0  # shorter windows (short speech regions) join speakers but do not form them
    threshold: float = 0.35  # window-level cosine distance of "someone else" in the turn posteriors
    min_speaker_seconds: float = MIN_SPEAKER_SECONDS  # speech a cluster needs to stand as a voice (count unknown)
    temperature: float = 0.05  # softmax temperature turning similarities into per-window posteriors
    min_turn: float = 0.4  # shorter turns inside a speech region join a neighbour
    merge_gap: float = 0.0  # same-speaker turns this close are joined across the pause (0: keep pauses)
    block_seconds: float = 60.0  # audio read per step (memory bound)
    # count estimated: on embeddings averaged over these microphone tilts (dB above 1 kHz); () for plain ones
    count_tilts_db: tuple[float, ...] = (-6.0, 0.0, 6.0)

    def to_dict(self) -> dict:
        return asdict(self)


class _Progress:
    def __init__(self, progress, total: float, desc: str, unit: str = "s") -> None:
        self._bar = None
        if progress is True:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def update(self, amount: float) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def detect_speech(source: AudioSource, config: VADConfig = VADConfig(), block_seconds: float = 60.0,
                  progress=False, confident: bool = False):
    """Speech regions of a whole source, read block by block.

    With ``confident``, returns ``(regions, confident_regions)``: the second are the regions the network
    alone finds (no level/harmonicity cue), the speech sure enough to form speakers."""
    vad, cue = SileroVAD(), ChunkCues()
    bar = _Progress(progress, source.duration, "speech detection")
    probs, levels, harmonicity, t = [], [], [], 0.0
    while t < source.duration:
        length = min(block_seconds, source.duration - t)
        block = source.read(t, length)
        probs.append(vad(block))
        for out, part in zip((levels, harmonicity), cue(block)):
            out.append(part)
        bar.update(length)
        t += length
    probs.append(vad.flush())
    for out, part in zip((levels, harmonicity), cue.flush()):
        out.append(part)
    bar.close()
    probs = np.concatenate(probs)
    regions = speech_regions(probs, source.duration, config,
                             cues=(np.concatenate(levels), np.concatenate(harmonicity)))
    return (regions, speech_regions(probs, source.duration, config)) if confident else regions



def _windows(regions: list[tuple[float, float]], window: float, step: float) -> list[tuple[float, float]]:
    out = []
    for r0, r1 in regions:
        if r1 - r0 <= window:
            out.append((r0, r1))
            continue
        s = r0
        while s + window <= r1 + 1e-9:
            out.append((s, s + window))
            s += step
        if out[-1][1] < r1 - 1e-9:
            out.append((r1 - window, r1))
    return out


def embed_windows(source: AudioSource, windows: list[tuple[float, float]], encoder: VoiceEncoder,
                  block_seconds: float = 60.0, progress=False, tilts_db: tuple[float, ...] = ()) -> np.ndarray:
    """Embeddings of (start, end) windows, reading the audio in spans of about ``block_seconds``.

    With ``tilts_db``, each window's embedding is the mean (normalised) of its embeddings as heard through
    each of those microphone tilts (:func:`~s2v_toolkit.diarization.embedding.tilt_gains`)."""
    out = np.zeros((len(windows), encoder.dim), dtype=np.float32)
    bar = _Progress(progress, len(windows), "speaker embeddings", "window")
    i = 0
    while i < len(windows):
        j = i + 1
        while j < len(windows) and windows[j][1] - windows[i][0] <= block_seconds:
            j += 1
        span0, span1 = windows[i][0], max(b for _, b in windows[i:j])
        audio = source.read(span0, span1 - span0)
        pieces = [audio[int(round((a - span0) * SAMPLE_RATE)):int(round((b - span0) * SAMPLE_RATE))]
                  for a, b in windows[i:j]]
        if tilts_db:
            total = sum(encoder.embed(pieces, tilt_db=t) for t in tilts_db)
            out[i:j] = total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)
        else:
            out[i:j] = encoder.embed(pieces)
        bar.update(j - i)
        i = j
    bar.close()
    return out


def _speech_shares(windows: list[tuple[float, float]], regions: list[tuple[float, float]]) -> np.ndarray:
    """Seconds of speech each window stands for: its region's length shared among the region's windows."""
    shares = np.zeros(len(windows))
    i = 0
    for r0, r1 in regions:
        j = i
        while j < len(windows) and windows[j][0] < r1 - 1e-9:
            j += 1
        if j > i:
            shares[i:j] = (r1 - r0) / (j - i)
        i = j
    return shares


def _posteriors(sims: np.ndarray, temperature: float, other: float) -> np.ndarray:
    """Softmax over the speakers plus an implicit "someone else" at similarity ``other``; returns only the
    speakers' columns, so a window unlike every centroid gets low posteriors everywhere."""
    logits = np.concatenate([sims, np.full((len(sims), 1), other)], axis=1) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(axis=1, keepdims=True))[:, :-1]


def _frame_scores(windows, posteriors: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame speaker scores: each window adds its posteriors with a Hann taper, so a frame is decided
    mostly by the windows centred near it."""
    scores = np.zeros((n_frames, posteriors.shape[1]), dtype=np.float64)
    for (a, b), p in zip(windows, posteriors):
        f0, f1 = int(round(a / FRAME)), min(n_frames, int(round(b / FRAME)))
        if f1 <= f0:
            continue
        taper = np.hanning(f1 - f0 + 2)[1:-1]
        scores[f0:f1] += taper[:, None] * p[None, :]
    return scores


def _runs(labels: np.ndarray, f0: int, f1: int) -> list[list[int]]:
    """[label, start frame, end frame] runs of ``labels[f0:f1]``."""
    runs: list[list[int]] = []
    for f in range(f0, f1):
        if runs and runs[-1][0] == labels[f]:
            runs[-1][2] = f + 1
        else:
            runs.append([int(labels[f]), f, f + 1])
    return runs


def _smooth(runs: list[list[int]], scores: np.ndarray, min_frames: int) -> list[list[int]]:
    """Fold runs shorter than ``min_frames`` into the neighbour whose speaker scores higher over them."""
    runs = [r[:] for r in runs]
    while len(runs) > 1:
        short = [i for i, r in enumerate(runs) if r[2] - r[1] < min_frames]
        if not short:
            break
        i = min(short, key=lambda k: runs[k][2] - runs[k][1])
        _, a, b = runs[i]
        neighbours = [k for k in (i - 1, i + 1) if 0 <= k < len(runs)]
        k = max(neighbours, key=lambda n: scores[a:b, runs[n][0]].sum())
        runs[i][0] = runs[k][0]
        merged: list[list[int]] = []
        for r in runs:
            if merged and merged[-1][0] == r[0]:
                merged[-1][2] = r[2]
            else:
                merged.append(r)
        runs = merged
    return runs


class EmbeddedDiarizer:
    """``EmbeddedDiarizer()(source, num_speakers=None) -> SpeakerTurns``; see the module doc."""

    name = "embedded"

    def __init__(self, config: EmbeddedConfig | None = None, encoder: VoiceEncoder | None = None) -> None:
        self.config = config or EmbeddedConfig()
        self.encoder = encoder or VoiceEncoder()

    def __call__(self, source: AudioSource, num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None, progress=False, overlap: bool = True) -> SpeakerTurns:
        # ``overlap`` is accepted for the common call and changes nothing: these turns are always exclusive
        cfg = self.config
        info = {"vad": "silero-vad 6.2.3 (v6, 16 kHz)", "embedding": self.encoder.name, "config": cfg.to_dict(),
                "num_speakers": num_speakers, "min_speakers": min_speakers, "max_speakers": max_speakers,
                "overlap": "windows of two voices detected and kept out of the speaker centroids; turns stay "
                           "exclusive: overlapped speech goes to the dominant voice"}
        regions, confident = detect_speech(source, cfg.vad, cfg.block_seconds, progress, confident=True)
        info["speech_seconds"] = round(sum(b - a for a, b in regions), 3)
        result = SpeakerTurns([], source.name, source.duration, self.name, info)
        if not regions:
            result.info["note"] = "no speech detected"
            return result

        windows = _windows(regions, cfg.window, cfg.step)
        embeddings = embed_windows(source, windows, self.encoder, cfg.block_seconds, progress)
        weights = _speech_shares(windows, regions)
        reliable = np.array([b - a >= cfg.min_window for a, b in windows])
        count = num_speakers
        if count is None and cfg.count_tilts_db:
            # the count hears only the speech the network itself is sure of: speech only the level/harmonicity
            # cue added (far, quiet voices) joins the speakers but does not decide how many there are. Counted
            # with it, the estimate moved with the window grid (pyannote's sample.wav: 2 or 1 speakers)
            # without counting the far voices any better (docs/diarization.md)
            if confident and confident != regions:
                c_windows = _windows(confident, cfg.window, cfg.step)
                c_reliable = np.array([b - a >= cfg.min_window for a, b in c_windows])
                known = {w: embeddings[i] for i, w in enumerate(windows)}  # windows both grids share
                count = _channel_robust_count(source, c_windows, known, _speech_shares(c_windows, confident),
                                              c_reliable, self.encoder, cfg, min_speakers, max_speakers, progress)
            else:
                count = _channel_robust_count(source, windows, embeddings, weights, reliable, self.encoder, cfg,
                                              min_speakers, max_speakers, progress)
        labels = cluster_embeddings(embeddings, count, min_speakers or 1, max_speakers, weights=weights,
                                    min_speaker_seconds=cfg.min_speaker_seconds,
                                    reliable=reliable)
        k = int(labels.max()) + 1
        info["count"] = ("given" if num_speakers is not None else
                         "estimated (voice prints" + (", microphone-averaged embeddings" if cfg.count_tilts_db else "")
                         + "; docs/diarization.md)")
        # overlap: windows where two voices mix (overlapped speech, a change of speaker inside the window)
        # are kept out of the speaker centroids, so the posteriors of every window compare it with clean
        # voices; the mixed windows still vote for their own frames
        mixed = mixed_windows(embeddings, labels, weights)
        clean = weights * ~mixed
        for c in range(k):  # a speaker heard only in mixed windows keeps them
            if clean[labels == c].sum() <= 0:
                clean[labels == c] = weights[labels == c]
        info["mixed_windows"] = int(mixed.sum())
        centroids = centroids_of(embeddings.astype(np.float64), labels, k, clean)
        posteriors = _posteriors(embeddings @ centroids.T, cfg.temperature, other=1.0 - cfg.threshold)

        n_frames = int(np.ceil(source.duration / FRAME)) + 1
        scores = _frame_scores(windows, posteriors, n_frames)
        frame_labels = scores.argmax(axis=1)
        # a frame's confidence for a speaker: the taper-weighted mean posterior of that speaker over the
        # windows covering the frame (low where two voices compete, and where a window resembles nobody)
        coverage = _frame_scores(windows, np.ones((len(windows), 1)), n_frames)[:, 0]
        frame_conf = scores / np.maximum(coverage, 1e-12)[:, None]

        turns: list[SpeakerTurn] = []
        min_frames = int(round(cfg.min_turn / FRAME))
        for r0, r1 in regions:
            f0, f1 = int(round(r0 / FRAME)), min(n_frames, int(round(r1 / FRAME)))
            for label, a, b in _smooth(_runs(frame_labels, f0, f1), scores, min_frames):
                start, end = max(r0, a * FRAME), min(r1, b * FRAME)
                confidence = float(np.clip(frame_conf[a:b, label].mean(), 0, 1))  # of the turn's final label
                turns.append(SpeakerTurn(start, end, str(label), confidence))
        turns = _merge_gaps(turns, cfg.merge_gap)

        order = {}
        for t in turns:  # SPEAKER_00, SPEAKER_01, ... in order of first appearance
            order.setdefault(t.speaker, f"SPEAKER_{len(order):02d}")
        turns = [SpeakerTurn(t.start, t.end, order[t.speaker], t.confidence) for t in turns]
        info["windows"] = len(windows)
        result = SpeakerTurns(turns, source.name, source.duration, self.name, info)
        result.speaker_embeddings = {order[str(c)]: centroids[c].astype(np.float32) for c in range(k)
                                     if str(c) in order}
        return result


def _channel_robust_count(source: AudioSource, windows, embeddings: np.ndarray | dict, weights: np.ndarray,
                          reliable: np.ndarray, encoder: VoiceEncoder, cfg: EmbeddedConfig,
                          min_speakers: int | None, max_speakers: int | None, progress=False) -> int:
    """The speaker count, estimated on embeddings that average each window over microphone tilts.

    The voice encoder hears the channel: one reader whose utterances alternate between microphone tilts
    of +-6 dB above 1 kHz came out as 2-3 speakers. Averaging a window's embeddings as heard through tilts
    of -6, 0 and +6 dB (``cfg.count_tilts_db``) makes the average nearly the same for the same voice
    through any of those microphones, while voices stay apart (each term is the voice's own embedding):
    with it the tilted readers counted as the untilted ones did, and the corpus conversations kept their
    counts. Flattening each window's spectrum instead erased what separates alike voices (pyannote's real
    sample became one speaker). The grouping into that many speakers still uses the plain embeddings.
    To bound the cost (each tilt is one more pass of the encoder), the count uses every other full-length
    window when there are more than ``2 * COUNT_ALL_WINDOWS`` of them, each then standing for twice the
    speech. ``embeddings``: the plain embedding of every window, or a dict {window: embedding} of those
    already known (the others the count uses are embedded here)."""
    idx = np.flatnonzero(reliable)
    if len(idx) < max(4, 2 * (min_speakers or 1)):
        idx = np.arange(len(windows))
    stride = 2 if len(idx) > 2 * COUNT_ALL_WINDOWS else 1
    idx = idx[::stride]
    others = tuple(t for t in cfg.count_tilts_db if t != 0.0)
    if isinstance(embeddings, dict):  # plain embeddings known for some windows: embed only the others it uses
        missing = [i for i in idx if windows[i] not in embeddings]
        found = embed_windows(source, [windows[i] for i in missing], encoder, cfg.block_seconds, progress) \
            if missing else np.zeros((0, encoder.dim), dtype=np.float32)
        known = {**embeddings, **{windows[i]: e for i, e in zip(missing, found)}}
        plain = np.stack([known[windows[i]] for i in idx])
    else:
        plain = embeddings[idx]
    total = plain.astype(np.float64) * (len(cfg.count_tilts_db) - len(others))
    for t in others:
        total += embed_windows(source, [windows[i] for i in idx], encoder, cfg.block_seconds, progress,
                               tilts_db=(t,))
    k, _ = estimate_speaker_count(total, min_speakers or 1, max_speakers, weights[idx] * stride,
                                  cfg.min_speaker_seconds)
    return k


def _merge_gaps(turns: list[SpeakerTurn], gap: float) -> list[SpeakerTurn]:
    out: list[SpeakerTurn] = []
    for t in turns:
        if out and out[-1].speaker == t.speaker and t.start - out[-1].end <= gap + 1e-9:
            prev = out[-1]
            w0, w1 = prev.duration, t.duration
            conf = (prev.confidence * w0 + t.confidence * w1) / max(w0 + w1, 1e-9)
            out[-1] = SpeakerTurn(prev.start, t.end, t.speaker, conf)
        else:
            out.append(t)
    return out
