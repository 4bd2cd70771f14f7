"""Similarity-aligned square face crops, with the transform and its inverse.

The crop transform maps frame pixels to crop pixels by a similarity (rotation, uniform scale,
translation) fitted by least squares (Umeyama) from the face's *rigid* landmarks (eyes, brows, nose,
upper outline: :data:`.landmarks.RIGID_POINTS`) to a fixed template. Talking does not move those
points, so the crop does not follow the jaw; with smoothed landmarks it is steady over time.

Template: the canonical face of :mod:`.synthetic` (face width 1, nose tip at 0), placed so the face
oval's centre is at the crop's centre and the face width is ``face_fraction`` of the crop side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L
from .synthetic import OVAL_CENTER, canonical_face

DEFAULT_CROP_SIZE = 512
DEFAULT_FACE_FRACTION = 0.5


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix M minimising sum |M [src;1] - dst|^2 over similarities (no reflection). Umeyama 1991."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = (sig * sign).sum() / max(var_s, 1e-12)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.vstack([m, [0, 0, 1]])
    return np.linalg.inv(a)[:2]


@dataclass(frozen=True)
class CropTransform:
    """Frame -> crop similarity for a ``size`` x ``size`` crop. ``matrix`` is 2x3 (float64)."""

    matrix: np.ndarray
    size: int

    @property
    def inverse(self) -> np.ndarray:
        """2x3 crop -> frame matrix."""
        return _invert(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Frame points (..., >=2) -> crop points; extra columns (z) are scaled."""
        return _apply(self.matrix, points, self.scale)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        return _apply(self.inverse, points, 1.0 / self.scale)

    def crop(self, frame: np.ndarray, interpolation: int | None = None) -> np.ndarray:
        """The aligned crop of ``frame`` (borders replicated where the crop leaves the frame)."""
        import cv2

        flags = cv2.INTER_CUBIC if interpolation is None else interpolation
        return cv2.warpAffine(frame, self.matrix, (self.size, self.size), flags=flags,
                              borderMode=cv2.BORDER_REPLICATE)

    def to_dict(self) -> dict:
        return {"matrix": np.round(self.matrix, 6).tolist(), "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> CropTransform:
        return cls(np.asarray(d["matrix"], np.float64), int(d["size"]))


def _apply(m: np.ndarray, points: np.ndarray, z_scale: float) -> np.ndarray:
    p = np.asarray(points, np.float64)
    out = p.copy()
    out[..., :2] = p[..., :2] @ m[:, :2].T + m[:, 2]
    if p.shape[-1] > 2:
        out[..., 2:] = p[..., 2:] * z_scale
    return out.astype(np.float32)


def template_points(size: int = DEFAULT_CROP_SIZE, face_fraction: float = DEFAULT_FACE_FRACTION) -> np.ndarray:
    """Crop-pixel positions of :data:`RIGID_POINTS` for a crop of ``size``."""
    canon = canonical_face()[list(L.RIGID_POINTS), :2].astype(np.float64)
    face_px = face_fraction * size
    return (canon - np.asarray(OVAL_CENTER)) * face_px + size / 2.0


def face_crop_transform(landmarks: np.ndarray, size: int = DEFAULT_CROP_SIZE,
                        face_fraction: float = DEFAULT_FACE_FRACTION) -> CropTransform:
    """Crop transform for one frame's landmarks (pass smoothed landmarks for a steady crop)."""
    src = np.asarray(landmarks, np.float64)[list(L.RIGID_POINTS), :2]
    return CropTransform(fit_similarity(src, template_points(size, face_fraction)), int(size))


def track_crop_transforms(landmarks_seq: np.ndarray, size: int = DEFAULT_CROP_SIZE,
                          face_fraction: float = DEFAULT_FACE_FRACTION) -> list[CropTransform]:
    """One transform per frame of a (K, 478, 3) landmark sequence (a track's smoothed landmarks)."""
    return [face_crop_transform(lm, size, face_fraction) for lm in landmarks_seq]
