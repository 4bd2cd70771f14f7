"""The 478-point face landmark layout (mediapipe FaceMesh + irises) and per-frame face observations.

Landmarks are ``(478, 3)`` float32 arrays in frame pixels: x right, y down, z depth in the same
pixel scale (smaller = nearer the camera). Only the named index groups below are used by this
package, so any landmark source with this layout works (the mediapipe Tasks FaceLandmarker, or
:mod:`.synthetic` for tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_LANDMARKS = 478

# Closed loops, in drawing order. "Left"/"right" are image left/right (mediapipe naming is the
# subject's, so its "right eye" 33/133 is on the image's left).
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
# Lower face: the oval from below the image-left cheekbone round the chin to below the right one,
# closed along the base of the nose. The jaw-inclusive mask region.
JAW_REGION = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361,
              323, 427, 425, 327, 2, 98, 205, 207, 93)
LEFT_EYE_CORNERS = (33, 133)    # outer, inner (image left)
RIGHT_EYE_CORNERS = (263, 362)  # outer, inner (image right)
NOSE_TIP = 1
NOSE_BRIDGE = (168, 6)
CHEEK_EDGES = (234, 454)
CHIN = 152
FOREHEAD = 10
MOUTH_CORNERS = (61, 291)
INNER_LIP_MIDS = (13, 14)       # upper, lower
OUTER_LIP_MIDS = (0, 17)        # top of the upper lip, bottom of the lower lip
LEFT_IRIS = tuple(range(468, 473))
RIGHT_IRIS = tuple(range(473, 478))

# Points that do not move when the person talks (eyes, nose, brows, upper face outline): used for
# alignment and for the geometric identity descriptor, so neither follows the mouth.
RIGID_POINTS = (33, 133, 263, 362, 1, 168, 6, 197, 195, 5, 4, 98, 327, 234, 454, 127, 356, 10,
                70, 105, 107, 300, 334, 336, 159, 145, 386, 374, 109, 338)


def shape_signature(landmarks: np.ndarray) -> np.ndarray:
    """The rigid landmarks after removing translation, rotation and scale (flattened, unit face size).

    Differs between people (eye spacing, nose length, face proportions) and stays put while the
    person talks (no mouth or jaw points).
    """
    pts = np.asarray(landmarks, np.float64)[list(RIGID_POINTS), :2]
    pts = pts - pts.mean(0)
    eye_vec = pts[RIGID_POINTS.index(RIGHT_EYE_CORNERS[0])] - pts[RIGID_POINTS.index(LEFT_EYE_CORNERS[0])]
    angle = np.arctan2(eye_vec[1], eye_vec[0])
    c, s = np.cos(-angle), np.sin(-angle)
    pts = pts @ np.array([[c, -s], [s, c]]).T
    return (pts / max(np.sqrt((pts ** 2).sum(1).mean()), 1e-9)).ravel()


@dataclass
class FaceObservation:
    """One face found in one frame: landmarks in frame pixels and the detector's score."""

    landmarks: np.ndarray  # (478, 3) float32
    score: float = 1.0
    appearance: object | None = None  # a FaceDescriptor of this face in this frame, when computed

    def __post_init__(self):
        self.landmarks = np.asarray(self.landmarks, np.float32)

    @property
    def box(self) -> np.ndarray:
        return landmark_box(self.landmarks)


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Axis-aligned box ``[x0, y0, x1, y1]`` around the face's landmarks (pixels)."""
    # the points' axis made the last and contiguous first: numpy reduces a (478, 2) array along its first
    # axis about 5x slower than the same numbers laid out (2, 478) (this runs ~30 times a frame in tracking)
    xy = np.ascontiguousarray(np.swapaxes(np.asarray(landmarks)[..., :2], -1, -2))
    return np.concatenate([xy.min(-1), xy.max(-1)], -1).astype(np.float32, copy=False)


def face_size(landmarks: np.ndarray) -> np.ndarray:
    """A rotation-invariant face scale in pixels: distance between the two outer eye corners x 2.5.

    Eye corners are rigid (unlike the jaw) and visible in profile-ish views, so this is steadier
    than the box size. For a frontal face it is close to the face's width. Works on (..., 478, 3).
    """
    lm = np.asarray(landmarks, np.float32)
    return 2.5 * np.linalg.norm(lm[..., LEFT_EYE_CORNERS[0], :2] - lm[..., RIGHT_EYE_CORNERS[0], :2], axis=-1)


def turn_steady_size(landmarks: np.ndarray) -> np.ndarray:
    """A face scale that does not collapse as the face turns: the larger of :func:`face_size` and 1.1 x the
    forehead-to-chin distance. The eye corners close in towards profile (face_size falls to ~0.5 of the
    face's height there, against 1.24-1.37 x for frontal faces), and on a face in profile the landmark model
    flips between a frontal and a profile fit from frame to frame, so face_size jumped by up to 2.4x between
    consecutive frames of one real face; the face's height barely moves. On a frontal face this is
    face_size itself. Works on (..., 478, 3)."""
    lm = np.asarray(landmarks, np.float32)
    height = np.linalg.norm(lm[..., FOREHEAD, :2] - lm[..., CHIN, :2], axis=-1)
    return np.maximum(face_size(lm), 1.1 * height)


def face_yaw(landmarks: np.ndarray) -> np.ndarray:
    """How far the face is turned from the camera about the vertical axis, in degrees (0 frontal, the sign
    says which way), from the landmark model's 3-D points of the face's two sides (``CHEEK_EDGES``): the
    angle of the line between them in the x-z plane. The model's depth is flatter than a real head's, so a
    full profile reads ~55-60, a three-quarter view ~30-40. Works on (..., 478, 3)."""
    lm = np.asarray(landmarks, np.float64)
    a, b = lm[..., CHEEK_EDGES[0], :], lm[..., CHEEK_EDGES[1], :]
    return np.degrees(np.arctan2(b[..., 2] - a[..., 2], b[..., 0] - a[..., 0]))


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap divided by mouth width (0 closed, ~0.5 wide open). Works on (..., 478, 3)."""
    lm = np.asarray(landmarks, np.float32)
    gap = np.linalg.norm(lm[..., INNER_LIP_MIDS[0], :2] - lm[..., INNER_LIP_MIDS[1], :2], axis=-1)
    width = np.linalg.norm(lm[..., MOUTH_CORNERS[0], :2] - lm[..., MOUTH_CORNERS[1], :2], axis=-1)
    return gap / np.maximum(width, 1e-6)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a).tolist(), np.asarray(b).tolist()  # Python floats: numpy scalars cost ~10x here
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
