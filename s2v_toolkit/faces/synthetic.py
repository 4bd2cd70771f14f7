"""Synthetic 478-point landmark sets with a known pose, identity and mouth opening.

For tests and for other stages' plumbing without the landmark model: every named group of
:mod:`.landmarks` sits where it would on a frontal face (oval, eyes, nose, lips, irises); the
remaining points are fixed pseudo-random points inside the face. Units of the canonical face:
face width 1, origin at the nose tip, y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L

# Canonical positions (face width 1, nose tip at 0) measured from the landmark model's output on a
# frontal face; the alignment template (:mod:`.align`) uses the same numbers.
CANONICAL_POINTS = {
    33: (-0.33, -0.31), 133: (-0.12, -0.29), 362: (0.12, -0.29), 263: (0.33, -0.31),
    1: (0.0, 0.0), 168: (0.0, -0.32), 6: (0.0, -0.22), 197: (0.0, -0.15), 195: (0.0, -0.09),
    5: (0.0, -0.05), 4: (0.0, -0.02), 2: (0.0, 0.03), 98: (-0.14, -0.01), 327: (0.14, -0.01),
    234: (-0.5, -0.2), 454: (0.5, -0.2), 127: (-0.49, -0.3), 356: (0.49, -0.3),
    10: (0.0, -0.63), 109: (-0.1, -0.62), 338: (0.1, -0.62),
    70: (-0.38, -0.42), 105: (-0.26, -0.45), 107: (-0.1, -0.41),
    300: (0.38, -0.42), 334: (0.26, -0.45), 336: (0.1, -0.41),
    159: (-0.22, -0.34), 145: (-0.22, -0.28), 386: (0.22, -0.34), 374: (0.22, -0.28),
    205: (-0.31, -0.03), 207: (-0.35, 0.03), 425: (0.31, -0.03), 427: (0.35, 0.03),
}
OVAL_CENTER = (0.0, -0.06)
OVAL_AXES = (0.5, 0.57)
MOUTH_CENTER_Y = 0.13
MOUTH_HALF_WIDTH = 0.22


@dataclass(frozen=True)
class FaceIdentity:
    """Shape parameters that make synthetic faces distinguishable (1.0 = the canonical face)."""

    eye_spacing: float = 1.0
    face_aspect: float = 1.0   # oval height / width factor
    nose_length: float = 1.0
    mouth_width: float = 1.0
    seed: int = 0              # jitter of the unnamed interior points


def _loop(center, axes, n, start_angle=0.0):
    """n points on an ellipse, clockwise in image coordinates (y down), first at start_angle."""
    t = start_angle + np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([center[0] + axes[0] * np.sin(t), center[1] - axes[1] * np.cos(t)], 1)


def canonical_face(identity: FaceIdentity = FaceIdentity(), mouth_open: float = 0.0) -> np.ndarray:
    """(478, 3) landmarks of a frontal face in canonical units; ``mouth_open`` = inner-lip gap / mouth width."""
    rng = np.random.default_rng(1234)  # interior points are the same for every identity...
    pts = np.zeros((L.NUM_LANDMARKS, 3), np.float32)
    r = np.sqrt(rng.uniform(0, 1, L.NUM_LANDMARKS)) * 0.85
    a = rng.uniform(0, 2 * np.pi, L.NUM_LANDMARKS)
    pts[:, 0] = OVAL_CENTER[0] + OVAL_AXES[0] * r * np.cos(a)
    pts[:, 1] = OVAL_CENTER[1] + OVAL_AXES[1] * identity.face_aspect * r * np.sin(a)
    pts[:, :2] += np.random.default_rng(identity.seed).normal(0, 0.01, (L.NUM_LANDMARKS, 2))  # ...but jitter
    pts[:, 2] = 0.1 * (pts[:, 0] ** 2 + pts[:, 1] ** 2)

    for idx, (x, y) in CANONICAL_POINTS.items():
        if idx in (33, 133, 263, 362, 159, 145, 386, 374, 70, 105, 107, 300, 334, 336):
            x *= identity.eye_spacing
        if idx in (1, 2, 4, 5, 98, 327, 195):
            y = -0.05 + (y + 0.05) * identity.nose_length
        pts[idx, :2] = (x, y * (identity.face_aspect if y < -0.4 else 1.0))
    oval_axes = (OVAL_AXES[0], OVAL_AXES[1] * identity.face_aspect)
    pts[list(L.FACE_OVAL), :2] = _loop(OVAL_CENTER, oval_axes, len(L.FACE_OVAL))
    half_w = MOUTH_HALF_WIDTH * identity.mouth_width
    gap = mouth_open * 2 * half_w
    mouth_c = (0.0, MOUTH_CENTER_Y + gap / 2)
    # lip loops start at the image-left corner and run along the lower lip first
    pts[list(L.LIPS_OUTER), :2] = _loop(mouth_c, (half_w, 0.05 + gap / 2), len(L.LIPS_OUTER), -np.pi / 2)
    pts[list(L.LIPS_OUTER), 1] = 2 * mouth_c[1] - pts[list(L.LIPS_OUTER), 1]
    inner = _loop(mouth_c, (half_w * 0.8, gap / 2), len(L.LIPS_INNER), -np.pi / 2)
    inner[:, 1] = 2 * mouth_c[1] - inner[:, 1]
    pts[list(L.LIPS_INNER), :2] = inner
    for iris, corners in ((L.LEFT_IRIS, L.LEFT_EYE_CORNERS), (L.RIGHT_IRIS, L.RIGHT_EYE_CORNERS)):
        c = pts[list(corners), :2].mean(0)
        pts[iris[0], :2] = c
        pts[list(iris[1:]), :2] = c + 0.04 * np.array([[1, 0], [0, -1], [-1, 0], [0, 1]])
    return pts


def posed_face(center, width: float, angle_deg: float = 0.0, identity: FaceIdentity = FaceIdentity(),
               mouth_open: float = 0.0) -> np.ndarray:
    """Landmarks in frame pixels: canonical face scaled to ``width`` px, rotated, nose tip at ``center``."""
    pts = canonical_face(identity, mouth_open)
    th = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], np.float32)
    out = pts.copy()
    out[:, :2] = pts[:, :2] @ rot.T * width + np.asarray(center, np.float32)
    out[:, 2] = pts[:, 2] * width
    return out


def turned_view(img: np.ndarray, yaw_deg: float, center=(223.0, 150.0), focal: float = 400.0) -> np.ndarray:
    """``img``'s plane turned about a vertical axis through ``center`` by ``yaw_deg`` (pinhole camera at
    ``focal`` px): a face in it narrows and its far side shrinks, as a head turned towards profile does (a
    planar stand-in: no self-occlusion). The default centre is the astronaut photo's face."""
    import cv2

    h, w = img.shape[:2]
    a = np.deg2rad(yaw_deg)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = []
    for x, y in src:
        s = focal / (focal + (x - center[0]) * np.sin(a))
        dst.append([center[0] + (x - center[0]) * np.cos(a) * s, center[1] + (y - center[1]) * s])
    m = cv2.getPerspectiveTransform(src, np.float32(dst))
    return cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
