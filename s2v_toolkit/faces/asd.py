"""Active speaker by the audio-visual networks (Light-ASD, ``asd_model``, and LR-ASD, ``lr_asd_model``):
inputs, scores, calibration, and their average.

For one face and one line: the line's frames are decoded again from the analysed file (only the line's;
the analysis keeps landmarks, not pixels), the lower face is cropped as the network was trained
(``face_crop``), resampled to 25 fps, and scored against the line's MFCCs (``mfcc``). The network's own
output says "speaking" or not, but its authors trained it with a visual-only auxiliary head and a moving
mouth alone already raises it, so a mouth that talks scores high with any speech. What decides is whether
the score depends on **this** audio being aligned with **this** mouth: the same face is scored against
the line's audio circularly shifted by every offset of at least 1 s (the audio's own rhythm kept, its
alignment broken), and the line's score is compared with that null (``AsdEvidence.z``). Each network is
scored so; their z's are averaged (``combine_evidence``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .landmarks import landmark_box

ASD_FPS = 25           # the network's video rate (4 MFCC frames per video frame)
CROP_PX = 112          # its input size
DURATIONS_S = (1, 2, 3, 4, 5, 6)   # chunk lengths the backend is run over, scores averaged (as its authors)


# --- audio ------------------------------------------------------------------------------------------------


def _mel_filterbank(n_filters: int, n_fft: int, rate: int) -> np.ndarray:
    """Triangular filters on FFT bins rounded down from mel-spaced edges (0 Hz to Nyquist), as the
    network's training features used (``python_speech_features`` 0.6 with its defaults)."""
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)          # noqa: E731
    to_hz = lambda mel: 700.0 * (10.0 ** (mel / 2595.0) - 1.0)       # noqa: E731
    edges = np.floor((n_fft + 1) * to_hz(np.linspace(0.0, to_mel(rate / 2), n_filters + 2)) / rate).astype(int)
    bank = np.zeros((n_filters, n_fft // 2 + 1))
    for j in range(n_filters):
        lo, mid, hi = edges[j], edges[j + 1], edges[j + 2]
        bank[j, lo:mid] = (np.arange(lo, mid) - lo) / max(mid - lo, 1)
        bank[j, mid:hi] = (hi - np.arange(mid, hi)) / max(hi - mid, 1)
    return bank


def mfcc(samples: np.ndarray, rate: int = 16000) -> np.ndarray:
    """13 MFCCs per 10 ms (25 ms rectangular frames, pre-emphasis 0.97, 26 mel filters, FFT 512, lifter
    22, the first coefficient replaced by the log frame energy) of mono samples in [-1, 1], scaled as
    16-bit integers first (the log energies depend on the scale). ``(frames, 13)`` float32."""
    from scipy.fft import dct

    x = np.asarray(samples, np.float64) * 32768.0
    x = np.append(x[:1], x[1:] - 0.97 * x[:-1])
    win, hop = int(round(0.025 * rate)), int(round(0.010 * rate))
    n = 1 if len(x) <= win else 1 + int(math.ceil((len(x) - win) / hop))
    x = np.pad(x, (0, max(0, (n - 1) * hop + win - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
    power = np.abs(np.fft.rfft(frames, 512)) ** 2 / 512
    eps = np.finfo(float).eps
    energy = np.maximum(power.sum(1), eps)
    feats = np.log(np.maximum(power @ _mel_filterbank(26, 512, rate).T, eps))
    cep = dct(feats, type=2, axis=1, norm="ortho")[:, :13]
    cep *= 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)
    cep[:, 0] = np.log(energy)
    return cep.astype(np.float32)


# --- faces ------------------------------------------------------------------------------------------------


def face_crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The network's view of a face: the grey square of side 0.7 box sizes from 0.15 box sizes above the
    box's centre, centred across, at 112 px (for a box of size ``s`` = its larger side: the middle
    half of the authors' crop, which spans ``2.8 * s/2`` from ``s/2`` above the centre). Outside the frame
    is grey 110, as theirs."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    half = max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = 1.4 * half
    left, top = cx - 0.7 * half, cy - 0.3 * half
    from .detector import to_rgb8

    grey = frame if frame.ndim == 2 else cv2.cvtColor(to_rgb8(frame), cv2.COLOR_RGB2GRAY)
    scale = CROP_PX / max(side, 1.0)
    src, kx, ky = grey, 1.0, 1.0
    if scale < 1.0:  # shrinking: average areas first (a plain bilinear sample would alias), then place
        h, w = grey.shape
        src = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        kx, ky = src.shape[1] / w, src.shape[0] / h
    # crop pixel u covers [left + u / scale, left + (u + 1) / scale); pixel centres at +0.5 on both sides
    m = np.array([[scale / kx, 0, 0.5 * scale / kx - left * scale - 0.5],
                  [0, scale / ky, 0.5 * scale / ky - top * scale - 0.5]], np.float32)
    return cv2.warpAffine(src, m, (CROP_PX, CROP_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=110)


def _median(v: np.ndarray, k: int = 13) -> np.ndarray:
    from scipy.signal import medfilt

    return medfilt(v, k) if len(v) >= k else v


def asd_frame_times(n_frames: int, fps: float) -> np.ndarray:
    """Indices (0-based within the line) of the line's frames shown at each 1/25 s of the network."""
    n25 = int(math.floor(n_frames / fps * ASD_FPS + 1e-6))
    return np.minimum(np.floor((np.arange(n25) + 0.5) * fps / ASD_FPS).astype(int), n_frames - 1)


def track_boxes(track, start: int, end: int) -> np.ndarray | None:
    """Per line frame ``start..end``: the face's landmark box, smoothed (median of 13 frames of its size and
    centre, as the network's authors smoothed their detector's boxes), nearest found frame where missing."""
    frames = np.asarray(track.frames)
    inside = (frames >= start) & (frames <= end)
    if not inside.any():
        return None
    boxes = landmark_box(track.best_landmarks()[inside])
    found = frames[inside] - start
    pos = np.arange(end - start + 1)
    idx = np.clip(np.searchsorted(found, pos), 0, len(found) - 1)
    prev = np.clip(idx - 1, 0, len(found) - 1)
    pick = np.where(np.abs(found[prev] - pos) < np.abs(found[idx] - pos), prev, idx)
    b = boxes[pick]
    half = _median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / 2)
    cx, cy = _median((b[:, 0] + b[:, 2]) / 2), _median((b[:, 1] + b[:, 3]) / 2)
    return np.stack([cx - half, cy - half, cx + half, cy + half], 1)


def load_light_asd(path=None, device=None):
    """Light-ASD (``asd_model.load_light_asd``: on a GPU when torch sees one, ``S2VT_ASD_DEVICE`` overrides;
    torch is imported on first use, not with the package)."""
    from .asd_model import load_light_asd as load

    return load(path, device)


def load_networks(device=None) -> list[tuple[str, object]]:
    """``(name, network)`` of each network to run (``asd_model.network_names``: both shipped ones unless
    ``S2VT_ASD_NETWORKS`` names fewer)."""
    from .asd_model import load_network, network_names

    return [(name, load_network(name, device)) for name in network_names()]


# --- scoring ----------------------------------------------------------------------------------------------


@dataclass
class AsdEvidence:
    """One face against one line's audio."""

    score: float          # mean speaking logit over the line with its own audio (> 0: the network says speaking)
    null_mean: float      # the same with the audio circularly shifted (>= 1 s), mean over the shifts
    null_sd: float        # and their spread
    z: float              # (score - null_mean) / null_sd
    frames: int           # 25 fps frames scored
    network: str = ""     # which network ("light-asd", "lr-asd"; "light-asd+lr-asd" for their average)
    parts: tuple = ()     # an average's members, one AsdEvidence each

    @property
    def evidence(self) -> float:
        """``2 Phi(z) - 1``: 0 at chance, towards 1 when the score needs this alignment (the rule's scale)."""
        return float(max(0.0, math.erf(self.z / math.sqrt(2.0)))) if np.isfinite(self.z) else 0.0

    def to_dict(self) -> dict:
        d = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items() if k != "parts"}
        if self.parts:
            d["parts"] = [p.to_dict() for p in self.parts]
        return d


def combine_evidence(parts: list[AsdEvidence]) -> AsdEvidence | None:
    """Several networks' evidence for one face and line as one: the mean of their z's (and, for the record,
    of their scores and nulls); the members are kept in ``parts``. One member is returned as it is.

    Why the mean: the two shipped networks err on different lines (their z's on unrelated lines correlate
    0.58), and Light-ASD's z on unrelated lines is not centred (mean 0.68) while LR-ASD's is (-0.02):
    averaged, an unrelated line passes the rule's cut far less often than with Light-ASD alone (2 of 330
    against 14 on real talking heads) while its own line still does in about as many clips (24 of 33
    against 25; docs/faces.md)."""
    parts = [p for p in parts if p is not None]
    if len(parts) <= 1:
        return parts[0] if parts else None
    zs = [p.z for p in parts]
    z = float(np.mean(zs)) if all(np.isfinite(zs)) else float("nan")
    return AsdEvidence(float(np.mean([p.score for p in parts])), float(np.mean([p.null_mean for p in parts])),
                       float(np.mean([p.null_sd for p in parts])), z, parts[0].frames,
                       "+".join(p.network for p in parts), tuple(parts))


def _chunked_logits(model, audio_emb, face_emb) -> "torch.Tensor":  # noqa: F821
    """Mean over ``DURATIONS_S`` of the backend run on consecutive chunks of that length: ``(B, T)``.

    The whole chunks of one length go through the GRUs as one batch (the recurrence then runs over one
    chunk's length, not the line's), the shorter last chunk on its own; the same numbers as chunk by chunk."""
    import torch

    n, t = audio_emb.shape[0], face_emb.shape[1]
    faces = face_emb.expand(n, -1, -1)
    out = torch.zeros(n, t, device=audio_emb.device)
    for d in DURATIONS_S:
        step = d * ASD_FPS
        whole = (t // step) * step
        if whole:
            k = whole // step
            a = audio_emb[:, :whole].reshape(n * k, step, -1)
            v = faces[:, :whole].reshape(n * k, step, -1)
            out[:, :whole] += model.backend(a, v).reshape(n, whole)
        if whole < t:
            out[:, whole:] += model.backend(audio_emb[:, whole:], faces[:, whole:])
    return out / len(DURATIONS_S)


def _device_of(model) -> "torch.device":  # noqa: F821
    """The device of a network's weights (the CPU for a model without parameters, e.g. a test's stand-in)."""
    import torch

    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


FACE_WINDOW = 250      # frames encoded at once (bounds memory: block 1's activations are ~0.4 MB a frame)
FACE_CONTEXT = 8       # frames of context either side: the encoder's temporal reach is 6 (3 blocks of radius 2)


def encode_faces_windowed(model, faces: np.ndarray) -> "torch.Tensor":  # noqa: F821
    """``model.encode_faces`` over ``(T, 112, 112)`` crops in windows of ``FACE_WINDOW`` frames, each with
    ``FACE_CONTEXT`` frames of context it does not keep: the same embeddings as one pass (the encoder is
    convolutional in time with a reach of 6 frames) at a memory cost that does not grow with the line."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(faces)).to(_device_of(model))
    t = len(x)
    if t <= FACE_WINDOW + 2 * FACE_CONTEXT:
        return model.encode_faces(x[None])
    parts = []
    for a in range(0, t, FACE_WINDOW):
        b = min(t, a + FACE_WINDOW)
        lo, hi = max(0, a - FACE_CONTEXT), min(t, b + FACE_CONTEXT)
        parts.append(model.encode_faces(x[None, lo:hi])[:, a - lo:a - lo + (b - a)])
    return torch.cat(parts, 1)


def line_mfcc(audio: np.ndarray, frames: int, rate: int = 16000) -> np.ndarray:
    """The network's audio input for ``frames`` video frames at 25 fps: 4 MFCC frames per video frame,
    ``(4 * frames, 13)``; where the audio is shorter its last MFCC frame is repeated (zeros without audio)."""
    feats = mfcc(audio, rate)
    need = 4 * frames
    if len(feats) < need:
        feats = np.concatenate([feats, np.repeat(feats[-1:], need - len(feats), 0)]) if len(feats) else np.zeros((need, 13), np.float32)
    return feats[:need]


def shifted_scores(model, audio_emb, face_emb, shifts) -> np.ndarray:
    """The mean speaking logit over the line with the audio embedding circularly shifted by each of
    ``shifts`` video frames (0: as recorded), one batch: ``(len(shifts),)``. The shift is applied to the
    embedding (the encoder's edge effects aside, the same as encoding the shifted MFCCs)."""
    import torch

    batch = torch.cat([torch.roll(audio_emb, int(k), dims=1) for k in shifts])
    return _chunked_logits(model, batch, face_emb).mean(1).cpu().numpy()


def loudest_frame_dbfs(audio: np.ndarray, rate: int = 16000) -> float:
    """The RMS level of the loudest 1/25 s of ``audio`` (full scale 0 dBFS; -inf for digital silence)."""
    x = np.asarray(audio, np.float64).reshape(-1)
    hop = max(1, rate // ASD_FPS)
    n = len(x) // hop
    if n == 0:
        return 20 * math.log10(math.sqrt(float(np.mean(x * x)))) if len(x) and np.any(x) else -math.inf
    power = np.mean(x[: n * hop].reshape(n, hop) ** 2, 1).max()
    return 10 * math.log10(power) if power > 0 else -math.inf


def asd_evidence(faces: np.ndarray, audio: np.ndarray, rate: int = 16000, *, model=None, network: str = "",
                 min_shift_s: float = 1.0, max_shifts: int = 40, min_shifts: int = 10,
                 silence_dbfs: float = -50.0, face_embedding=None) -> AsdEvidence | None:
    """Score a face (``(T, 112, 112)`` uint8 crops at 25 fps) against the line's audio (mono, starting at
    the first crop's time): by ``model`` (labelled ``network``), or without one by every network of
    :func:`load_networks`, averaged (:func:`combine_evidence`). ``None`` when the line is too short for a
    null of ``min_shifts`` shifts (under ~2.8 s: a spread from fewer shifts is too unsure to divide by), or
    silent (its loudest 1/25 s under ``silence_dbfs``, the cut ``SpeakerParams.silence_dbfs`` uses): on
    digital silence the encoder's edge effects alone made the shifted copies differ, and a silent line
    scored z 5.5 against a talking face.

    The null takes the shifts from ``min_shift_s`` to the line's length minus that, every second frame or
    evenly spaced to at most ``max_shifts`` (the GRUs over every shift are most of the cost after the
    visual encoder; 40 shifts estimate a mean and a spread well enough).

    ``face_embedding``: ``model``'s :func:`encode_faces_windowed` of these ``faces``, when one face is scored
    against several lines (the visual encoder is most of the cost of a line)."""
    import torch

    t = len(faces)
    lo = int(round(min_shift_s * ASD_FPS))
    if (t - 2 * lo + 2) // 2 < min_shifts or loudest_frame_dbfs(audio, rate) < silence_dbfs:
        return None
    if model is None:
        return combine_evidence([asd_evidence(faces, audio, rate, model=m, network=name, min_shift_s=min_shift_s,
                                              max_shifts=max_shifts, min_shifts=min_shifts,
                                              silence_dbfs=silence_dbfs) for name, m in load_networks()])
    span = t - 2 * lo + 1
    shifts = sorted({lo + int(round(v)) for v in np.linspace(0, span - 1, min(max_shifts, (span + 1) // 2))})
    with torch.inference_mode():
        face_emb = encode_faces_windowed(model, faces) if face_embedding is None else face_embedding
        audio_emb = model.encode_audio(torch.from_numpy(line_mfcc(audio, t, rate))[None].to(_device_of(model)))
        logits = shifted_scores(model, audio_emb, face_emb, [0, *shifts])
    own, null = float(logits[0]), logits[1:]
    mean, sd = float(null.mean()), float(null.std(ddof=1))   # min_shifts >= 2 shifts: a spread exists
    z = (own - mean) / sd if sd > 1e-6 else float("nan")
    return AsdEvidence(own, mean, sd, float(z), t, network)


def line_face_crops(source: str, rotation: int, tracks: list, start: int, end: int,
                    fps: float) -> dict[int, np.ndarray]:
    """Decode the line's frames ``start..end`` of ``source`` once and crop each track's face at 25 fps:
    track id -> ``(T, 112, 112)`` uint8 (tracks not found on the line are left out)."""
    from .analyze import iter_video_frames

    boxes = {t.track_id: b for t in tracks if (b := track_boxes(t, start, end)) is not None}
    if not boxes:
        return {}
    times = asd_frame_times(end - start + 1, fps)
    wanted: dict[int, list[int]] = {}
    for k, f in enumerate(times):
        wanted.setdefault(int(f), []).append(k)
    crops = {tid: np.zeros((len(times), CROP_PX, CROP_PX), np.uint8) for tid in boxes}
    for index, frame in iter_video_frames(source, start, end, rotation):
        for k in wanted.get(index - start, ()):
            for tid, b in boxes.items():
                crops[tid][k] = face_crop(frame, b[index - start])
    return crops


def network_evidence(analysis, tracks: list, start: int, end: int, audio: np.ndarray, rate: int = 16000) -> dict:
    """Track id -> :class:`AsdEvidence` for the line on frames ``start..end`` of an analysis of a file.

    Empty when the analysis has no file to read the frames from (frames analysed from memory), or when the
    file cannot be read again (it moved since): the line is then judged by the landmarks alone, as before
    the network existed; a warning says why."""
    import warnings

    from s2v_toolkit.errors import S2VError

    if not tracks or not getattr(analysis, "source", None):
        return {}
    x = np.asarray(audio, np.float32).reshape(-1)
    if rate != 16000:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), 16000)
        x = resample_poly(x, 16000 // g, int(rate) // g).astype(np.float32)
    # loaded before the frames are read: a broken install or a wrong S2VT_ASD_DEVICE / S2VT_ASD_NETWORKS
    # is an error of its own, not "could not be read again" (the warning below used to say that for it)
    models = load_networks()
    out = {}
    try:
        crops = line_face_crops(analysis.source, analysis.rotation, tracks, start, end, analysis.fps)
        for tid, faces in crops.items():
            line = x[: int(round(len(faces) / ASD_FPS * 16000)) + 400]
            ev = combine_evidence([asd_evidence(faces, line, 16000, model=m, network=name) for name, m in models])
            if ev is not None:
                out[tid] = ev
    except (S2VError, OSError, ValueError, RuntimeError) as exc:
        warnings.warn(f"{analysis.source}: frames {start}-{end} could not be read again for the audio-visual "
                      f"active-speaker network ({exc}); judged by the landmarks alone", stacklevel=2)
        return {}
    return out
