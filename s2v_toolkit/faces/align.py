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
from functools import lru_cache

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

    def crop(self, frame, interpolation: int | None = None) -> np.ndarray:
        """The aligned crop of ``frame`` (borders replicated where the crop leaves the frame).

        ``frame``: an (H, W, C) array, or a :class:`s2v_toolkit.media.PlanarFrame` (a decoded frame in
        its own format): then only the frame window the crop reads is converted, and the crop is
        16-bit R'G'B' (uint16).
        """
        import cv2

        flags = cv2.INTER_CUBIC if interpolation is None else interpolation
        if isinstance(frame, np.ndarray):
            return cv2.warpAffine(frame, self.matrix, (self.size, self.size), flags=flags,
                                  borderMode=cv2.BORDER_REPLICATE)
        from s2v_toolkit.media import to_rgb_float

        x0, y0, x1, y1 = self.frame_window(frame.shape, margin=3)  # 3: the cubic kernel's reach
        rgb = np.rint(to_rgb_float(frame, (x0, y0, x1, y1)) * 65535.0).astype(np.uint16)
        m = self.matrix.copy()
        m[:, 2] = m[:, 2] + m[:, :2] @ np.array([x0, y0], np.float64)  # window pixel -> crop pixel
        return cv2.warpAffine(rgb, m, (self.size, self.size), flags=flags, borderMode=cv2.BORDER_REPLICATE)

    def frame_window(self, shape: tuple[int, int], margin: int = 0) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the frame pixels the crop covers, grown by ``margin``, inside the frame."""
        s = float(self.size)
        corners = self.to_frame(np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64))
        h, w = int(shape[0]), int(shape[1])
        x0 = min(max(int(np.floor(corners[:, 0].min())) - margin, 0), w - 1)
        y0 = min(max(int(np.floor(corners[:, 1].min())) - margin, 0), h - 1)
        x1 = max(min(int(np.ceil(corners[:, 0].max())) + margin + 1, w), x0 + 1)
        y1 = max(min(int(np.ceil(corners[:, 1].max())) + margin + 1, h), y0 + 1)
        return x0, y0, x1, y1

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


@lru_cache(maxsize=1)
def _canonical_rigid() -> np.ndarray:
    """The canonical face's rigid points (built once: every crop transform and descriptor needs them)."""
    out = canonical_face()[list(L.RIGID_POINTS), :2].astype(np.float64)
    out.setflags(write=False)
    return out


def template_points(size: int = DEFAULT_CROP_SIZE, face_fraction: float = DEFAULT_FACE_FRACTION) -> np.ndarray:
    """Crop-pixel positions of :data:`RIGID_POINTS` for a crop of ``size``."""
    canon = _canonical_rigid()
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
