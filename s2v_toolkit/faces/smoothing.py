"""Temporal smoothing of landmark sequences: the One-Euro filter, run forward and backward.

One-Euro (Casiez, Roussel, Vogel, CHI 2012) is a low-pass filter whose cutoff rises with speed:
still faces are smoothed hard (no mask jitter), moving faces lightly (little lag). We have the whole
shot, so we run it forwards and backwards and average the two passes: their lags have opposite sign
and cancel for steady motion, which a causal filter cannot do.

Speeds are measured in face sizes per second (the caller passes the face's size in pixels), so the
same parameters work for a close-up and a wide shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    min_cutoff: float = 1.5   # Hz: cutoff when the face is still (lower = smoother, more lag)
    beta: float = 2.0         # cutoff increase per (face size / s) of speed (higher = less lag when moving)
    d_cutoff: float = 2.0     # Hz: cutoff of the speed estimate itself


def _alpha(cutoff, dt):
    tau = 1.0 / (2 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(values: np.ndarray, fps: float, scale: np.ndarray | float = 1.0,
             params: OneEuroParams = OneEuroParams()) -> np.ndarray:
    """Causal One-Euro filter along axis 0 of ``values`` (T, ...), all samples 1/fps apart.

    ``scale`` (scalar or (T,)) divides the speed before the cutoff adapts: the face size in pixels.
    The cutoff adapts per sample row from the row's mean speed, so all landmarks of a face share it.
    """
    x = np.asarray(values, np.float64)
    if len(x) == 0:
        return x.astype(np.float32)
    dt = 1.0 / fps
    scale = np.broadcast_to(np.asarray(scale, np.float64), (len(x),))
    out = np.empty_like(x)
    out[0] = x[0]
    dx_hat = np.zeros(x.shape[1:])
    a_d = _alpha(params.d_cutoff, dt)
    for t in range(1, len(x)):
        dx = (x[t] - out[t - 1]) / dt
        dx_hat = a_d * dx + (1 - a_d) * dx_hat
        speed = float(np.sqrt(np.mean(dx_hat ** 2))) / max(scale[t], 1e-6)
        a = _alpha(params.min_cutoff + params.beta * speed, dt)
        out[t] = a * x[t] + (1 - a) * out[t - 1]
    return out.astype(np.float32)


def _linear_extension(x: np.ndarray, fit: int, pad: int, before: bool) -> np.ndarray:
    """``pad`` samples continuing the least-squares line through the first/last ``fit`` samples."""
    seg = x[:fit] if before else x[-fit:]
    t = np.arange(fit, dtype=np.float64)
    tm = t.mean()
    flat = seg.reshape(fit, -1).astype(np.float64)
    slope = ((t - tm)[:, None] * (flat - flat.mean(0))).sum(0) / max(((t - tm) ** 2).sum(), 1e-12)
    at = np.arange(-pad, 0) if before else np.arange(fit, fit + pad)
    line = flat.mean(0) + (at - tm)[:, None] * slope
    return line.reshape((pad,) + x.shape[1:])


def smooth_zero_phase(values: np.ndarray, fps: float, scale: np.ndarray | float = 1.0,
                      params: OneEuroParams = OneEuroParams()) -> np.ndarray:
    """Forward and backward One-Euro passes, averaged (no net lag for steady motion).

    Both ends are padded with the straight line fitted to the first/last few samples (as filtfilt
    pads its input), so the filters have settled when they reach the real samples: the first and
    last frames are smoothed like the others instead of being copied through.
    """
    x = np.asarray(values, np.float64)
    n = len(x)
    if n < 3:
        return x.astype(np.float32)
    scale = np.broadcast_to(np.asarray(scale, np.float64), (n,))
    fit = min(n, max(3, int(round(fps / 5))))
    pad = max(1, int(round(fps / 2)))
    xp = np.concatenate([_linear_extension(x, fit, pad, True), x, _linear_extension(x, fit, pad, False)])
    sp = np.concatenate([np.full(pad, scale[0]), scale, np.full(pad, scale[-1])])
    fwd = one_euro(xp, fps, sp, params)
    bwd = one_euro(xp[::-1], fps, sp[::-1], params)[::-1]
    return (0.5 * (fwd + bwd))[pad:pad + n].astype(np.float32)


def contiguous_runs(frames: np.ndarray) -> list[slice]:
    """Slices of ``frames`` (sorted frame numbers) over runs without gaps."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    bounds = [0, *breaks.tolist(), len(frames)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass(frozen=True)
class LandmarkSmoothing:
    """Head pose and face shape are smoothed separately (see :func:`smooth_track_landmarks`)."""

    pose: OneEuroParams = OneEuroParams(min_cutoff=1.5, beta=2.0)
    shape: OneEuroParams = OneEuroParams(min_cutoff=8.0, beta=1.0)


def _pose_and_shape(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: similarity canonical->frame as (a, b, tx, ty) and the landmarks in canonical units."""
    from . import landmarks as L
    from .align import fit_similarity, template_points

    template = template_points(1, 1.0)  # canonical face, width 1
    rigid = list(L.RIGID_POINTS)
    poses = np.empty((len(landmarks), 4))
    shapes = np.empty_like(landmarks, dtype=np.float64)
    for k, lm in enumerate(landmarks):
        m = fit_similarity(template, lm[rigid, :2])  # canonical -> frame
        a, b = m[0, 0], m[1, 0]
        poses[k] = (a, b, m[0, 2], m[1, 2])
        inv_scale = 1.0 / max(a * a + b * b, 1e-12)
        d = lm[:, :2] - m[:, 2]
        # inverse of [[a, -b], [b, a]] is [[a, b], [-b, a]] / (a^2 + b^2)
        shapes[k, :, 0] = (a * d[:, 0] + b * d[:, 1]) * inv_scale
        shapes[k, :, 1] = (-b * d[:, 0] + a * d[:, 1]) * inv_scale
        shapes[k, :, 2] = lm[:, 2] * np.sqrt(inv_scale)
    return poses, shapes


def _compose(poses: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    a, b, tx, ty = (poses[:, i, None] for i in range(4))
    out = np.empty_like(shapes)
    out[..., 0] = a * shapes[..., 0] - b * shapes[..., 1] + tx
    out[..., 1] = b * shapes[..., 0] + a * shapes[..., 1] + ty
    out[..., 2] = shapes[..., 2] * np.sqrt(a * a + b * b)
    return out


def smooth_track_landmarks(frames: np.ndarray, landmarks: np.ndarray, fps: float,
                           params: LandmarkSmoothing = LandmarkSmoothing()) -> np.ndarray:
    """Smooth a track's (K, 478, 3) landmarks; each gap-free run on its own (missed frames are not filled).

    Each frame is split into a head pose (similarity fitted to the rigid landmarks) and the face's
    shape in canonical units. The pose is smoothed hard (head jitter makes masks and crops shake)
    and the shape lightly (lips move at syllable rate, 3-8 Hz, and the mask must keep up with them).
    """
    landmarks = np.asarray(landmarks, np.float64)
    out = np.empty(landmarks.shape, np.float32)
    for run in contiguous_runs(frames):
        poses, shapes = _pose_and_shape(landmarks[run])
        size = np.hypot(poses[:, 0], poses[:, 1])  # face width in pixels
        poses = smooth_zero_phase(poses, fps, size, params.pose)
        shapes = smooth_zero_phase(shapes, fps, 1.0, params.shape)
        out[run] = _compose(poses.astype(np.float64), shapes.astype(np.float64))
    return out
