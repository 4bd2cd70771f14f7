"""Whose face speaks a dialogue line: reference-image similarity and active-speaker evidence.

Active-speaker evidence: the mouth opening of each track (inner-lip gap / mouth width, from the
raw landmarks, one value per frame) is correlated with the line's audio envelope (log RMS per video
frame). Speech opens and closes the mouth at syllable rate, so the speaker's opening follows the
envelope (allowing a lag of up to ``max_lag`` frames either way). Only correlation above chance
counts: r is rescaled so that the 95th percentile of r against circularly shifted copies of the
envelope (:func:`chance_correlation`) maps to 0 and 1 stays 1. A still mouth gives no evidence:
tracks whose opening varies less than ``min_mouth_motion`` (std) score 0.

Each candidate (a track present on at least ``min_coverage`` of the line's frames) gets a score
in [0, 1]: the mean of the evidence available (positive audio correlation, reference similarity
rescaled so that ``reference_floor`` maps to 0). The choice's confidence is the margin between the
best and the second-best score (the best score itself when only one candidate is present). Below
``min_confidence`` no track is chosen: ``track_id`` is None and ``reason`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import landmarks as L
from .identity import FaceDescriptor, face_similarity
from .tracking import FaceTrack


@dataclass(frozen=True)
class SpeakerParams:
    max_lag: int = 3                  # frames of audio/video offset searched
    min_mouth_motion: float = 0.03    # std of the mouth opening below which a mouth counts as still
    min_coverage: float = 0.3         # fraction of the line a track must be visible to be a candidate
    min_confidence: float = 0.3
    reference_floor: float = 0.45     # combined similarity at or below this is no evidence


@dataclass
class CandidateEvidence:
    track_id: int
    coverage: float
    mouth_motion: float               # std of the mouth opening over the line
    audio_correlation: float | None   # best Pearson r over the lags, None without audio
    reference_similarity: float | None  # combined face similarity, None without a reference
    score: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class SpeakerChoice:
    track_id: int | None              # None: not confident enough to choose
    confidence: float
    best_candidate: int | None
    reason: str
    candidates: list[CandidateEvidence] = field(default_factory=list)

    @property
    def low_confidence(self) -> bool:
        return self.track_id is None

    def to_dict(self) -> dict:
        return {"track_id": self.track_id, "confidence": round(self.confidence, 4),
                "best_candidate": self.best_candidate, "low_confidence": self.low_confidence,
                "reason": self.reason, "candidates": [c.to_dict() for c in self.candidates]}


def audio_envelope(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Log RMS of ``samples`` in each video frame's interval (n_frames values; first frame at sample 0)."""
    x = np.asarray(samples, np.float64).reshape(-1)
    edges = np.rint(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    env = np.empty(n_frames)
    for k in range(n_frames):
        seg = x[edges[k]:edges[k + 1]]
        env[k] = np.sqrt(np.mean(seg ** 2)) if seg.size else 0.0
    return np.log(env + 1e-4)


def _lagged_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """Max Pearson r of a[t] with b[t + lag] over |lag| <= max_lag (NaNs in a are skipped)."""
    best = -1.0
    n = len(a)
    for lag in range(-max_lag, max_lag + 1):
        lo, hi = max(0, -lag), min(n, n - lag)
        x, y = a[lo:hi], b[lo + lag:hi + lag]
        ok = np.isfinite(x)
        if ok.sum() < 8:
            continue
        x, y = x[ok], y[ok]
        if x.std() < 1e-9 or y.std() < 1e-9:
            continue
        best = max(best, float(np.corrcoef(x, y)[0, 1]))
    return best


def chance_correlation(series: np.ndarray, envelope: np.ndarray, max_lag: int, quantile: float = 0.95) -> float:
    """The correlation a mouth unrelated to this audio would reach: ``quantile`` of the lagged
    correlation with the envelope circularly shifted by at least a second's worth of offsets
    (a permutation test that keeps both series' own rhythm)."""
    n = len(envelope)
    lo = max(3 * max_lag + 1, n // 10)
    shifts = np.unique(np.linspace(lo, n - lo, num=min(48, max(n - 2 * lo, 0))).astype(int))
    if len(shifts) == 0:
        return 1.0  # too short to tell chance from evidence
    vals = [_lagged_correlation(series, np.roll(envelope, int(s)), max_lag) for s in shifts]
    return float(np.quantile(vals, quantile))


def mouth_series(track: FaceTrack, start: int, end: int) -> np.ndarray:
    """Mouth opening per frame of ``[start, end]`` (NaN where the track's face was not found)."""
    out = np.full(end - start + 1, np.nan)
    sel = (track.frames >= start) & (track.frames <= end)
    out[track.frames[sel] - start] = L.mouth_opening(track.landmarks[sel])  # raw: keep the fast motion
    return out


def choose_speaker(tracks: list[FaceTrack], start: int, end: int, *, envelope: np.ndarray | None = None,
                   reference: FaceDescriptor | None = None,
                   track_descriptors: dict[int, FaceDescriptor] | None = None,
                   params: SpeakerParams = SpeakerParams()) -> SpeakerChoice:
    """Pick the speaking track for the line on frames ``[start, end]`` (inclusive).

    ``envelope``: :func:`audio_envelope` of the line, one value per frame of the range.
    ``reference`` + ``track_descriptors``: the character's reference face and each track's descriptor.
    """
    n = end - start + 1
    if envelope is not None and len(envelope) != n:
        raise ValueError(f"envelope has {len(envelope)} values for {n} frames")
    candidates = []
    for t in tracks:
        cov = t.coverage(start, end)
        if cov < params.min_coverage:
            continue
        series = mouth_series(t, start, end)
        motion = float(np.nanstd(series)) if np.isfinite(series).any() else 0.0
        evidence = []
        corr = None
        if envelope is not None:
            env = np.asarray(envelope, np.float64)
            corr = _lagged_correlation(series, env, params.max_lag)
            if motion >= params.min_mouth_motion and corr > 0:
                chance = min(chance_correlation(series, env, params.max_lag), 0.95)
                evidence.append(max(0.0, (corr - chance) / (1.0 - chance)))
            else:
                evidence.append(0.0)
        sim = None
        if reference is not None and track_descriptors and t.track_id in track_descriptors:
            sim = face_similarity(reference, track_descriptors[t.track_id])["combined"]
            evidence.append(max(0.0, (sim - params.reference_floor) / (1.0 - params.reference_floor)))
        score = float(np.mean(evidence)) if evidence else 0.0
        candidates.append(CandidateEvidence(t.track_id, cov, motion, corr, sim, score))
    if not candidates:
        return SpeakerChoice(None, 0.0, None, f"no face visible on at least {params.min_coverage:.0%} of frames "
                                              f"{start}-{end}", [])
    ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
    best = ranked[0]
    confidence = best.score - (ranked[1].score if len(ranked) > 1 else 0.0)
    if envelope is None and reference is None:
        return SpeakerChoice(None, 0.0, best.track_id, "no audio and no reference image: nothing to decide on",
                             candidates)
    if confidence < params.min_confidence:
        if best.score == 0.0:
            why = " and ".join(w for w, given in (("no mouth moves with the audio", envelope is not None),
                                                 ("no face matches the reference", reference is not None)) if given)
        elif len(ranked) > 1 and ranked[1].score > 0.5 * best.score:
            why = f"tracks {best.track_id} and {ranked[1].track_id} are about equally likely"
        else:
            why = f"weak evidence for track {best.track_id}"
        return SpeakerChoice(None, confidence, best.track_id, f"low confidence ({confidence:.2f}): {why}", candidates)
    parts = []
    if best.audio_correlation is not None:
        parts.append(f"mouth follows audio r={best.audio_correlation:.2f}")
    if best.reference_similarity is not None:
        parts.append(f"reference similarity {best.reference_similarity:.2f}")
    return SpeakerChoice(best.track_id, confidence, best.track_id, "; ".join(parts), candidates)


def reference_descriptor(image: np.ndarray, bundle=None) -> FaceDescriptor:
    """Descriptor of the largest face in a character's reference image (needs the landmark model)."""
    from s2v_toolkit.errors import S2VError

    from .detector import FaceLandmarkDetector, to_rgb8
    from .identity import face_descriptor

    rgb = to_rgb8(image)
    with FaceLandmarkDetector(bundle, video=False, max_faces=4) as det:
        faces = det.detect(rgb)
    if not faces:
        raise S2VError("no face found in the reference image")
    best = max(faces, key=lambda f: float(L.face_size(f.landmarks)))
    return face_descriptor(rgb, best.landmarks)


def speaker_for_line(analysis, start: int, end: int, *, audio: np.ndarray | None = None, sample_rate: int = 16000,
                     reference: FaceDescriptor | None = None, params: SpeakerParams = SpeakerParams()) -> SpeakerChoice:
    """:func:`choose_speaker` on a :class:`.analyze.FaceAnalysis` for the line on frames ``start..end``.

    ``audio``: the line's mono samples starting at frame ``start`` (any length; cut or padded to the range).
    """
    if not (analysis.start <= start <= end <= analysis.end):
        raise ValueError(f"line frames {start}-{end} are outside the analysed range {analysis.start}-{analysis.end}")
    envelope = None
    if audio is not None:
        envelope = audio_envelope(audio, sample_rate, analysis.fps, end - start + 1)
    return choose_speaker(analysis.tracks, start, end, envelope=envelope, reference=reference,
                          track_descriptors=analysis.descriptors, params=params)
