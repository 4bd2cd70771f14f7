"""Whose face speaks a dialogue line: active-speaker evidence from the mouth against the audio, and the
reference image.

Active-speaker evidence. Per frame, the mouth activity of each track (:func:`mouth_activity`: outer-lip
height and lip speed, standardised and averaged, from the raw landmarks) and the line's speech envelope
(log RMS of the 300-3000 Hz band per video frame, floored 50 dB under its peak so the depth of silences
does not count) are both smoothed over ``smooth_seconds`` (0.12 s, 3 frames at 25 fps: shorter than a
syllable, so the fast mouth motion is kept), and their Pearson correlation is taken at the best lag within
``max_lag_seconds`` either way (the sound and the picture of real footage are rarely aligned to the
frame). ``ranks=True`` correlates the series' ranks instead (:func:`rank_series`: a few glitched frames or
a click cannot dominate); measured on real clips it is no better overall (docs/faces.md), so it is an
option.

Calibration: the same statistic (best lag included) for the envelope circularly shifted by every offset of
at least ``min_shift_seconds`` gives the null mean and spread (a mouth that talks, but not this line); the
spread is floored by Bartlett's variance of the correlation of two independent autocorrelated series
(:func:`bartlett_sd`: the shifts alone underestimate it on short lines). The track's audio evidence is
``2 * Phi(z) - 1`` (0 at chance, towards 1 for a strong match), where z is the observed correlation in
null standard deviations above the null mean. ``audio_confidence`` (0.9, z = 1.64: an unrelated line
passes it about one time in twenty, and a margin over every other face) is the threshold for choosing a
face by the audio; docs/faces.md has the table of real clips behind it. A still mouth (inner-lip gap std
under ``min_mouth_motion``) gives no evidence. A line shorter than ``min_line_seconds`` or a silent one
(its loudest frame under ``silence_dbfs``) cannot be judged from the audio.

The audio-visual networks (``asd.py``: Light-ASD and LR-ASD with their authors' AVA weights, their z's
averaged; ``network=True``, the default): for a line of an analysed file, each candidate's lower-face
crops are scored against the line's MFCCs and against the same audio circularly shifted (>= 1 s); the
networks' mean z counts from 0 up and is combined with the landmarks' z, ``(max(z_net, 0) + z) /
sqrt(2)``, and a face is then chosen at ``combined_confidence`` (0.98, z = 2.33: the networks' mean z on
unrelated lines is centred a little above 0).
Where it cannot run (frames analysed from memory, a file that cannot be read again, lines under ~2.8 s)
the landmarks decide alone at ``audio_confidence``.

When the audio decides (a margin of the cut in use), the reference similarity is only reported.
When it does not (no usable audio, or no mouth follows it clearly), the reference image names the
character's face: each candidate's combined face similarity, rescaled so that ``reference_floor`` maps to
0, needs a margin of ``min_confidence`` over the next; the reason says the audio was undecided and why.

Several lines of one character on the same faces (one shot): :func:`line_audio_z` gives each face's z
per line against that line's own null, :func:`pool_audio_z` combines them by Stouffer (sum / sqrt(lines),
standard normal again under the null, so the same cut applies); the planner pools the lines the audio
left undecided alone (``s2v_toolkit.jobs.FaceChecker.pool``; docs/faces.md has the measurements).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import landmarks as L
from .identity import FaceDescriptor, face_similarity
from .tracking import FaceTrack


@dataclass(frozen=True)
class SpeakerParams:
    max_lag_seconds: float = 0.3      # audio/video offset searched, either way
    smooth_seconds: float = 0.12      # moving average of both series (3 frames at 25 fps; docs/faces.md)
    min_shift_seconds: float = 0.5    # smallest circular shift of the envelope in the null distribution
    min_line_seconds: float = 2.0     # shorter lines are not judged from the audio
    silence_dbfs: float = -50.0       # a line whose loudest frame is under this is silent
    audio_confidence: float = 0.9     # 2*Phi(z)-1 margin needed to choose a face by the audio (z = 1.64)
    min_mouth_motion: float = 0.03    # std of the mouth opening below which a mouth counts as still
    min_coverage: float = 0.3         # fraction of the line a track must be visible to be a candidate
    min_confidence: float = 0.3       # reference-similarity margin needed without usable audio
    reference_floor: float = 0.45     # combined similarity at or below this is no evidence
    mouth_signal: str = "activity"    # "activity": outer-lip height + lip speed; "opening": inner-lip gap only
    null_floor: str = "bartlett"      # "bartlett": null sd floored by Bartlett's variance; "shifts": shifts only
    ranks: bool = False               # correlate the series' ranks (Spearman-like), not their values
    network: bool = True              # add the audio-visual network's evidence where the line's frames can be read
    combined_confidence: float = 0.98  # 2*Phi(z)-1 needed when the network's z is combined in (z = 2.33; docs/faces.md)
    min_z_margin: float = 1.0         # with several faces, the chosen one's z must lead every other's by this much


@dataclass
class CandidateEvidence:
    track_id: int
    coverage: float
    mouth_motion: float               # std of the mouth opening over the line
    audio_correlation: float | None   # best Pearson r over the lags, None without audio
    reference_similarity: float | None  # combined face similarity, None without a reference
    score: float
    audio_z: float | None = None      # correlation in null standard deviations above the null mean
    audio_lag: int | None = None      # frames the audio is shifted by at the best correlation (+: audio later)
    audio_evidence: float | None = None  # 2 * Phi(z) - 1, clipped at 0 (of the combined z with the network)
    network_score: float | None = None   # the audio-visual network's mean speaking logit over the line
    network_z: float | None = None       # that score in null sd above its circular-shift null
    combined_z: float | None = None      # (audio_z + network_z) / sqrt(2): what decides when the network ran
    network_zs: dict[str, float] | None = None  # each network's z where network_z is their mean (asd.combine_evidence)

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


def speech_envelope(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """:func:`audio_envelope` of the 300-3000 Hz band (where the mouth shapes speech; hum and hiss are left
    out), one value per video frame."""
    from scipy.signal import butter, sosfilt

    x = np.asarray(samples, np.float64).reshape(-1)
    if sample_rate > 6400 and x.size > 32:
        x = sosfilt(butter(2, [300, 3000], btype="band", fs=sample_rate, output="sos"), x)
    return audio_envelope(x, sample_rate, fps, n_frames)


def _fill_and_smooth(series: np.ndarray, width: int) -> np.ndarray:
    """NaN gaps (face not found) filled by linear interpolation, then a centred moving average."""
    v = np.asarray(series, np.float64).copy()
    ok = np.isfinite(v)
    if not ok.any():
        return v
    if not ok.all():
        v[~ok] = np.interp(np.flatnonzero(~ok), np.flatnonzero(ok), v[ok])
    if width > 1:
        pad = np.pad(v, width // 2, mode="edge")
        v = np.convolve(pad, np.ones(width) / width, mode="valid")[:len(series)]
    return v


def _lagged_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[float, int]:
    """(max Pearson r of a[t] with b[t + lag] over |lag| <= max_lag, that lag)."""
    best, best_lag = -1.0, 0
    n = len(a)
    for lag in range(-max_lag, max_lag + 1):
        lo, hi = max(0, -lag), min(n, n - lag)
        x, y = a[lo:hi], b[lo + lag:hi + lag]
        if len(x) < 8 or x.std() < 1e-9 or y.std() < 1e-9:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        if r > best:
            best, best_lag = r, lag
    return best, best_lag


def bartlett_sd(a: np.ndarray, b: np.ndarray) -> float:
    """Standard deviation of the Pearson r of two independent series with the autocorrelations of ``a``
    and ``b`` (Bartlett 1935): sqrt((1 + 2 sum_{k>=1} rho_a(k) rho_b(k)) / N), lags up to N/4."""
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    n = len(a)
    da, db = float(a @ a), float(b @ b)
    if n < 8 or da <= 0 or db <= 0:
        return 0.0
    k_max = n // 4
    ra = np.array([float(a[:n - k] @ a[k:]) / da for k in range(1, k_max + 1)])
    rb = np.array([float(b[:n - k] @ b[k:]) / db for k in range(1, k_max + 1)])
    return float(np.sqrt(max(1.0 + 2.0 * float(ra @ rb), 0.0) / n))


def rank_series(series: np.ndarray) -> np.ndarray:
    """Each finite value replaced by its rank in (0, 1] (ties share their mean rank); NaN stays NaN.

    Correlating ranks (Spearman) lets no single frame weigh more than its place in the order: a breath or
    a click in the audio, a blink-time landmark jump or the log floor's long flat silences would otherwise
    pull Pearson's r on a few frames."""
    from scipy.stats import rankdata

    v = np.asarray(series, np.float64)
    out = np.full(v.shape, np.nan)
    ok = np.isfinite(v)
    if ok.any():
        out[ok] = rankdata(v[ok]) / ok.sum()
    return out


def audio_evidence(series: np.ndarray, envelope: np.ndarray, fps: float,
                   params: SpeakerParams = SpeakerParams()) -> dict:
    """How well a mouth-opening series follows a speech envelope, against chance (see the module doc).

    Returns {"r", "lag", "z", "evidence", "null_mean", "null_std", "null_size"}; ``evidence`` is
    ``2 * Phi(z) - 1`` clipped at 0 (None with fewer than 8 null offsets: too short to tell)."""
    from scipy.stats import norm

    width = max(1, int(round(params.smooth_seconds * fps)) | 1)
    max_lag = max(1, int(round(params.max_lag_seconds * fps)))
    if params.ranks:
        series, envelope = rank_series(series), rank_series(envelope)
    m = _fill_and_smooth(series, width)
    e = _fill_and_smooth(envelope, width)
    r, lag = _lagged_correlation(m, e, max_lag)
    n = len(e)
    lo = max(2 * max_lag + 1, int(round(params.min_shift_seconds * fps)))
    null = np.array([_lagged_correlation(m, np.roll(e, k), max_lag)[0] for k in range(lo, n - lo + 1)])
    out = {"r": r, "lag": lag, "z": None, "evidence": None, "null_mean": None, "null_std": None,
           "null_size": int(len(null))}
    if len(null) < 8:
        return out
    # The shifts' spread underestimates the spread of r against other recordings on short lines (the
    # shifted copies share one envelope, and the circular cross-correlation sums to zero over all shifts):
    # on 8 s real clips, unrelated lines scored z with sd 1.4-1.8. Bartlett's large-lag variance of the
    # correlation of two independent autocorrelated series, (1 + 2 sum_k rho_m(k) rho_e(k)) / N, is a
    # floor that brings it back to ~1 (docs/faces.md).
    mu = float(null.mean())
    floor = bartlett_sd(m, e) if params.null_floor == "bartlett" else 0.0
    sd = max(float(null.std()), floor, 1e-3)
    z = (r - mu) / sd
    out.update(z=z, evidence=max(0.0, 2.0 * float(norm.cdf(z)) - 1.0), null_mean=mu, null_std=sd)
    return out


def mouth_series(track: FaceTrack, start: int, end: int) -> np.ndarray:
    """Mouth opening per frame of ``[start, end]`` (NaN where the track's face was not found)."""
    out = np.full(end - start + 1, np.nan)
    sel = (track.frames >= start) & (track.frames <= end)
    out[track.frames[sel] - start] = L.mouth_opening(track.landmarks[sel])  # raw: keep the fast motion
    return out


def _standardised(v: np.ndarray) -> np.ndarray:
    sd = float(np.nanstd(v)) if np.isfinite(v).any() else 0.0
    return (v - np.nanmean(v)) / sd if sd > 1e-9 else np.zeros_like(v)


def mouth_activity(track: FaceTrack, start: int, end: int) -> np.ndarray:
    """What the audio is compared with, per frame of ``[start, end]`` (NaN where not found): the mean of
    two standardised series, the outer lips' height (upper to lower lip, in face widths: the mouth
    opening, jaw included) and the lips' speed (mean frame-to-frame motion of the 40 lip points relative
    to the nose tip, in face widths: lips move while speaking whether or not the mouth opens wide). Both
    rise with speech; on real clips together they follow the speech envelope more often than the
    inner-lip gap alone (docs/faces.md)."""
    n = end - start + 1
    sel = (track.frames >= start) & (track.frames <= end)
    frames = track.frames[sel] - start
    lm = track.landmarks[sel]
    height, speed = np.full(n, np.nan), np.full(n, np.nan)
    if len(frames):
        size = np.maximum(L.face_size(lm), 1e-6)
        height[frames] = np.linalg.norm(lm[:, L.OUTER_LIP_MIDS[0], :2] - lm[:, L.OUTER_LIP_MIDS[1], :2],
                                        axis=1) / size
        idx = list(L.LIPS_OUTER) + list(L.LIPS_INNER)
        rel = (lm[:, idx, :2] - lm[:, [L.NOSE_TIP], :2]) / size[:, None, None]
        step = np.linalg.norm(np.diff(rel, axis=0), axis=2).mean(1)
        after = np.diff(frames) == 1  # speed only between consecutive found frames
        speed[frames[1:][after]] = step[after]
    return 0.5 * (_standardised(height) + _standardised(speed))


def candidate_tracks(tracks: list[FaceTrack], start: int, end: int, params: SpeakerParams) -> list[FaceTrack]:
    """The tracks a line's speaker is chosen from: visible on at least ``min_coverage`` of its frames."""
    return [t for t in tracks if t.coverage(start, end) >= params.min_coverage]


def choose_speaker(tracks: list[FaceTrack], start: int, end: int, *, envelope: np.ndarray | None = None,
                   reference: FaceDescriptor | None = None,
                   track_descriptors: dict[int, FaceDescriptor] | None = None,
                   params: SpeakerParams = SpeakerParams(), fps: float = 25.0,
                   network: dict | None = None) -> SpeakerChoice:
    """Pick the speaking track for the line on frames ``[start, end]`` (inclusive).

    ``envelope``: :func:`speech_envelope` (or :func:`audio_envelope`) of the line, one value per frame of
    the range (natural-log RMS, full scale 0). ``fps``: the frame rate (lags and smoothing are in seconds).
    ``reference`` + ``track_descriptors``: the character's reference face and each track's descriptor.
    ``network``: track id -> :class:`.asd.AsdEvidence` of the audio-visual network for this line; where
    given, a candidate's audio evidence is the combined z of the mouth/envelope correlation and the
    network (Stouffer), and a face is chosen at ``params.combined_confidence``.
    """
    n = end - start + 1
    if envelope is not None and len(envelope) != n:
        raise ValueError(f"envelope has {len(envelope)} values for {n} frames")
    audio_note = None
    env = None
    if envelope is not None:
        env = np.asarray(envelope, np.float64)
        peak_dbfs = float(np.max(env)) * 20 / np.log(10) if n else -np.inf
        if n < params.min_line_seconds * fps:
            audio_note = f"the line is shorter than {params.min_line_seconds:g} s: too short to judge by the audio"
        elif peak_dbfs < params.silence_dbfs:
            audio_note = f"the line's audio is silent (peak {peak_dbfs:.0f} dBFS)"
        else:
            env = np.maximum(env, env.max() - 50 * np.log(10) / 20)  # silences 50 dB down are all alike
    use_audio = env is not None and audio_note is None
    candidates = []
    for t in candidate_tracks(tracks, start, end, params):
        cov = t.coverage(start, end)
        series = mouth_series(t, start, end)
        motion = float(np.nanstd(series)) if np.isfinite(series).any() else 0.0
        corr = z = lag = ev = None
        if use_audio:
            if motion >= params.min_mouth_motion:
                signal = mouth_activity(t, start, end) if params.mouth_signal == "activity" else series
                got = audio_evidence(signal, env, fps, params)
                corr, z, lag, ev = got["r"], got["z"], got["lag"], got["evidence"]
                if ev is None:
                    audio_note = "the line is too short for a null distribution of the mouth/audio correlation"
            else:
                ev = 0.0
        sim = None
        ref_ev = None
        if reference is not None and track_descriptors and t.track_id in track_descriptors:
            sim = face_similarity(reference, track_descriptors[t.track_id])["combined"]
            ref_ev = _reference_evidence(sim, params)
        net = (network or {}).get(t.track_id)
        net_score = net_z = comb = net_parts = None
        if use_audio and net is not None and np.isfinite(net.z) and z is not None:
            # the two kinds of evidence look at different things (landmark motion against the envelope; the
            # network's learned view of the mouth against MFCCs): their z on unrelated lines correlate
            # only ~0.2, so their sum separates own from unrelated audio better than either (docs/faces.md).
            # The network's z counts from 0 up: below its null it says "not speech as I know it" (a drawn
            # mouth, a noise burst), which is no evidence against a mouth the landmarks see following the sound.
            net_score, net_z = float(net.score), float(net.z)
            net_parts = {p.network: round(float(p.z), 4) for p in net.parts} or None
            comb = (max(net_z, 0.0) + z) / math.sqrt(2.0)
            ev = float(max(0.0, math.erf(comb / math.sqrt(2.0))))
        score = float(ev) if use_audio and ev is not None else (ref_ev if ref_ev is not None else 0.0)
        candidates.append(CandidateEvidence(t.track_id, cov, motion, corr, sim, score, z, lag, ev,
                                            net_score, net_z, comb, net_parts))
    if not candidates:
        return SpeakerChoice(None, 0.0, None, f"no face visible on at least {params.min_coverage:.0%} of frames "
                                              f"{start}-{end}", [])
    if audio_note is not None:
        use_audio = False

    def margin(scores):
        ranked = sorted(scores, key=lambda cs: cs[1], reverse=True)
        return ranked, ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)

    audio_ranked = audio_conf = None
    networked = any(c.combined_z is not None for c in candidates)
    audio_cut = params.combined_confidence if networked else params.audio_confidence
    if use_audio:
        for c in candidates:
            c.score = float(c.audio_evidence or 0.0)
        audio_ranked = sorted([(c, c.score) for c in candidates], key=lambda cs: cs[1], reverse=True)
        audio_conf, z_lead = _audio_confidence([c for c, _ in audio_ranked], audio_cut, params.min_z_margin)
        if audio_conf >= audio_cut:  # the mouth that follows the line decides
            best = audio_ranked[0][0]
            parts = []
            if best.combined_z is not None:
                parts.append(f"audio-visual network {best.network_z:.1f} sd above chance, combined {best.combined_z:.1f} sd")
            if best.audio_correlation is not None:
                parts.append(f"mouth follows audio r={best.audio_correlation:.2f}, {best.audio_z:.1f} sd above chance, "
                             f"lag {best.audio_lag:+d} frames")
            if best.reference_similarity is not None:
                parts.append(f"reference similarity {best.reference_similarity:.2f}")
            return SpeakerChoice(best.track_id, audio_conf, best.track_id, "; ".join(parts), candidates)
    audio_why = None
    if use_audio:
        lead = audio_ranked[0][0]
        if lead.score == 0.0:
            audio_why = "no mouth moves with the audio"
        elif z_lead is not None and z_lead < params.min_z_margin and lead.score >= audio_cut:
            audio_why = (f"tracks {lead.track_id} and {audio_ranked[1][0].track_id} follow the audio about equally "
                         f"(z {_z_of(lead):.1f} and {_z_of(audio_ranked[1][0]):.1f}, a lead of {z_lead:.1f} < "
                         f"{params.min_z_margin:g})")
        elif len(audio_ranked) > 1 and audio_ranked[1][1] > 0.5 * lead.score:
            audio_why = f"tracks {lead.track_id} and {audio_ranked[1][0].track_id} follow the audio about equally"
        else:
            sd = _z_of(lead, missing=None)
            audio_why = (f"track {lead.track_id}'s mouth follows the audio only {sd:.1f} sd above chance"
                         if sd is not None else f"weak audio evidence for track {lead.track_id}")
    else:
        audio_why = audio_note
    if reference is None:
        why = audio_why or "no audio and no reference image: nothing to decide on"
        conf = audio_conf or 0.0
        lead = audio_ranked[0][0].track_id if audio_ranked else candidates[0].track_id
        prefix = f"low confidence ({conf:.2f} < {audio_cut:g}): " if use_audio else ""
        return SpeakerChoice(None, conf, lead, prefix + why, candidates)
    # the audio did not decide: the reference image names the character's face
    for c in candidates:
        c.score = _reference_evidence(c.reference_similarity, params)
    ranked, confidence = margin([(c, c.score) for c in candidates])
    best = ranked[0][0]
    tail = f"; audio undecided: {audio_why}" if audio_why else ""
    if confidence < params.min_confidence:
        if best.score == 0.0:
            why = "no face matches the reference"
        elif len(ranked) > 1 and ranked[1][1] > 0.5 * best.score:
            why = f"tracks {best.track_id} and {ranked[1][0].track_id} are about equally likely"
        else:
            why = f"weak evidence for track {best.track_id}"
        return SpeakerChoice(None, confidence, best.track_id,
                             f"low confidence ({confidence:.2f} < {params.min_confidence:g}): {why}{tail}", candidates)
    return SpeakerChoice(best.track_id, confidence, best.track_id,
                         f"reference similarity {best.reference_similarity:.2f}{tail}", candidates)


def _z_of(c: CandidateEvidence, missing: float | None = 0.0) -> float | None:
    """The z a candidate's audio evidence stands on (combined where the network ran); ``missing`` for a
    still mouth (no z)."""
    z = c.combined_z if c.combined_z is not None else c.audio_z
    return float(z) if z is not None else missing


def _reference_evidence(similarity: float | None, params: SpeakerParams) -> float:
    """Reference-image similarity rescaled so ``reference_floor`` is 0 and 1 is 1 (no reference: 0)."""
    if similarity is None:
        return 0.0
    return max(0.0, (similarity - params.reference_floor) / (1.0 - params.reference_floor))


def _audio_confidence(ranked: list[CandidateEvidence], cut: float, min_z_margin: float) -> tuple[float, float | None]:
    """Confidence of the audio's choice of ``ranked[0]`` (candidates sorted by evidence) and its z lead.

    One face: its evidence. Several: its evidence where its z leads every other face's by at least
    ``min_z_margin``; otherwise scaled down by the fraction of that lead reached and kept under ``cut``.
    Why a lead in z and not the difference of the evidences: ``2 Phi(z) - 1`` saturates, so a face that
    speaks the line (z 3-8) and a face talking at the same time by chance (z 1-2, evidence 0.7-0.95)
    differ little in evidence though far apart in z: on two real talking heads side by side the evidence
    difference left 16 of 22 lines undecided, the z lead 4, with no wrong face either way (docs/faces.md)."""
    best = ranked[0]
    return lead_confidence(float(best.score), _z_of(best), [_z_of(c) for c in ranked[1:]], cut, min_z_margin)


def lead_confidence(best_evidence: float, best_z: float, other_z: list[float], cut: float,
                    min_z_margin: float) -> tuple[float, float | None]:
    """The best face's evidence, kept under ``cut`` (scaled by the fraction of the lead reached) where
    another face's z comes within ``min_z_margin`` of its z; with the lead (None for a single face)."""
    if not other_z:
        return best_evidence, None
    lead = best_z - max(other_z)
    if lead >= min_z_margin:
        return best_evidence, lead
    return float(min(best_evidence, cut * max(lead, 0.0) / min_z_margin)), lead


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
    network = None
    if audio is not None:
        envelope = speech_envelope(audio, sample_rate, analysis.fps, end - start + 1)
        if params.network and (end - start + 1) >= params.min_line_seconds * analysis.fps:
            from .asd import network_evidence

            network = network_evidence(analysis, candidate_tracks(analysis.tracks, start, end, params), start,
                                       end, audio, sample_rate)
    return choose_speaker(analysis.tracks, start, end, envelope=envelope, reference=reference,
                          track_descriptors=analysis.descriptors, params=params, fps=analysis.fps, network=network)


# --- several lines of one character on one shot: their evidence pooled -------------------------------------


@dataclass
class PooledChoice:
    """The audio evidence of several lines of one character on the same faces, combined.

    ``line_z``: per line, each visible track's z (its own line's shift null; absent where the line could
    not be judged); ``z``: per track, Stouffer's sum(z) / sqrt(lines); ``confidence``: the best track's
    ``2 * Phi(z) - 1`` with a z lead of ``min_z_margin`` over the others, the same scale, rule and cut
    (``audio_confidence``) as one line judged by the landmarks."""

    track_id: int | None
    confidence: float
    best_candidate: int | None
    reason: str
    z: dict[int, float] = field(default_factory=dict)
    lines: dict[int, int] = field(default_factory=dict)       # track -> lines it was judged on
    line_z: list[dict[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"track_id": self.track_id, "confidence": round(self.confidence, 4),
                "best_candidate": self.best_candidate, "reason": self.reason,
                "z": {int(k): round(v, 3) for k, v in self.z.items()},
                "lines": {int(k): v for k, v in self.lines.items()},
                "line_z": [{int(k): round(v, 3) for k, v in d.items()} for d in self.line_z]}


def line_audio_z(tracks: list[FaceTrack], start: int, end: int, envelope: np.ndarray, *,
                 params: SpeakerParams = SpeakerParams(), fps: float = 25.0) -> tuple[dict[int, float], str | None]:
    """Each visible track's z (mouth against the line's envelope, over its own shift null) for pooling.

    Unlike :func:`choose_speaker` a line shorter than ``min_line_seconds`` is judged when it is long enough
    for a null (8 shifts: ~1.5 s at 25 fps): alone its z is weak, but pooled with the character's other
    lines it counts. A still mouth scores z = 0 (it does not follow the line). Returns ({track: z}, why
    the line gave nothing, or None)."""
    n = end - start + 1
    env = np.asarray(envelope, np.float64)
    if len(env) != n:
        raise ValueError(f"envelope has {len(env)} values for {n} frames")
    if not n or float(np.max(env)) * 20 / np.log(10) < params.silence_dbfs:
        return {}, "silent line"
    env = np.maximum(env, env.max() - 50 * np.log(10) / 20)
    out: dict[int, float] = {}
    for t in candidate_tracks(tracks, start, end, params):
        series = mouth_series(t, start, end)
        motion = float(np.nanstd(series)) if np.isfinite(series).any() else 0.0
        if motion < params.min_mouth_motion:
            out[t.track_id] = 0.0
            continue
        signal = mouth_activity(t, start, end) if params.mouth_signal == "activity" else series
        got = audio_evidence(signal, env, fps, params)
        if got["z"] is None:
            return {}, "too short for a null distribution"
        out[t.track_id] = float(got["z"])
    return out, None if out else "no face visible"


def pool_audio_z(line_z: list[dict[int, float]], params: SpeakerParams = SpeakerParams()) -> PooledChoice:
    """Stouffer's combination of per-line z (:func:`line_audio_z`) per track: lines of different audio are
    independent under the null, so the pooled z is again standard normal for a face that does not speak
    them, and the one-line threshold keeps its meaning."""
    from scipy.stats import norm

    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for d in line_z:
        for tid, z in d.items():
            sums[tid] = sums.get(tid, 0.0) + z
            counts[tid] = counts.get(tid, 0) + 1
    if not sums:
        return PooledChoice(None, 0.0, None, "no line could be judged by the audio", {}, {}, list(line_z))
    z = {tid: sums[tid] / np.sqrt(counts[tid]) for tid in sums}
    ev = {tid: max(0.0, 2.0 * float(norm.cdf(v)) - 1.0) for tid, v in z.items()}
    ranked = sorted(ev, key=lambda t: ev[t], reverse=True)
    best = ranked[0]
    # the same rule as one line: the best face's evidence, with a lead in z over every other face
    conf, _ = lead_confidence(ev[best], z[best], [z[t] for t in ranked[1:]], params.audio_confidence,
                              params.min_z_margin)
    judged = sum(1 for d in line_z if d)
    text = f"pooled over {counts[best]} of {judged} lines: mouth follows the audio {z[best]:.1f} sd above chance"
    if conf >= params.audio_confidence:
        return PooledChoice(best, conf, best, text, z, counts, list(line_z))
    return PooledChoice(None, conf, best, f"low confidence ({conf:.2f} < {params.audio_confidence:g}): {text}",
                        z, counts, list(line_z))


def speakers_pooled(analysis, lines: list[tuple[int, int, np.ndarray]], *, sample_rate: int = 16000,
                    params: SpeakerParams = SpeakerParams()) -> PooledChoice:
    """:func:`pool_audio_z` over ``lines`` (``(start, end, audio)``: frames of ``analysis`` and the line's
    mono samples from frame ``start``) of one character on the faces of one analysis."""
    per_line = []
    for start, end, audio in lines:
        if not (analysis.start <= start <= end <= analysis.end):
            raise ValueError(f"line frames {start}-{end} are outside the analysed range "
                             f"{analysis.start}-{analysis.end}")
        env = speech_envelope(audio, sample_rate, analysis.fps, end - start + 1)
        per_line.append(line_audio_z(analysis.tracks, start, end, env, params=params, fps=analysis.fps)[0])
    return pool_audio_z(per_line, params)


def matching_track(track: FaceTrack, others: list[FaceTrack], start: int, end: int,
                   max_offset: float = 0.25) -> int | None:
    """The track of ``others`` (another analysis of the same file) that is ``track``'s face on frames
    ``start..end``: found on common frames with its nose tip within ``max_offset`` face widths (median)
    of ``track``'s. Both analyses run the same detector on the same frames, so the same face lands on
    the same spot; None when no track does (the face was not found there)."""
    best, best_d = None, max_offset
    for o in others:
        common = np.intersect1d(track.frames[(track.frames >= start) & (track.frames <= end)], o.frames)
        if not len(common):
            continue
        a = track.landmarks[np.searchsorted(track.frames, common)]
        b = o.landmarks[np.searchsorted(o.frames, common)]
        size = np.maximum(L.face_size(a), 1e-6)
        d = float(np.median(np.linalg.norm(a[:, L.NOSE_TIP, :2] - b[:, L.NOSE_TIP, :2], axis=1) / size))
        if d <= best_d:
            best, best_d = o.track_id, d
    return best
