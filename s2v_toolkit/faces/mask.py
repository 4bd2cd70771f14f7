"""Soft mouth-region masks from lip (and optionally jaw) landmarks.

The mask is 1 over the lips' convex hull grown by ``padding``, then falls to 0 over a further
``feather`` with a smoothstep of the distance to that region. Both are fractions of the mouth width
(so a close-up and a wide shot get the same mask shape) unless ``*_px`` overrides are given. Beyond
``padding + feather`` the mask is exactly 0: compositing leaves those pixels untouched.

``include_jaw`` adds the lower face (jaw line up to the base of the nose), for generators that move
the jaw as well as the lips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import landmarks as L


@dataclass(frozen=True)
class MaskParams:
    padding: float = 0.25        # x mouth width: full-strength margin around the lips
    feather: float = 0.2         # x mouth width: soft edge outside that margin
    include_jaw: bool = False    # also cover jaw and chin up to the nose base
    padding_px: float | None = None  # absolute overrides (pixels of the image the mask is drawn on)
    feather_px: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def mouth_width(landmarks: np.ndarray) -> float:
    lm = np.asarray(landmarks)
    return float(np.linalg.norm(lm[L.MOUTH_CORNERS[0], :2] - lm[L.MOUTH_CORNERS[1], :2]))


def mask_extent_px(landmarks: np.ndarray, params: MaskParams = MaskParams()) -> tuple[float, float]:
    """(padding, feather) in pixels for these landmarks."""
    w = mouth_width(landmarks)
    pad = params.padding_px if params.padding_px is not None else params.padding * w
    feather = params.feather_px if params.feather_px is not None else params.feather * w
    return float(max(pad, 0.0)), float(max(feather, 1.0))


def core_polygons(landmarks: np.ndarray, include_jaw: bool = False) -> list[np.ndarray]:
    """The full-strength region before padding: lips hull (and the jaw region)."""
    import cv2

    lm = np.asarray(landmarks, np.float32)
    polys = [cv2.convexHull(lm[list(L.LIPS_OUTER), :2]).reshape(-1, 2)]
    if include_jaw:
        polys.append(lm[list(L.JAW_REGION), :2])
    return polys


def distance_to_region(region: np.ndarray) -> np.ndarray:
    """Float32 Euclidean distance of every pixel to the nearest non-zero pixel of ``region`` (0 inside),
    the same bytes on every call.

    OpenCV's precise transform runs Intel IPP's in the pip wheels, whose float result for the same
    input varies by an ulp from call to call (it follows the buffers' addresses; OpenCV's own code
    does not). One ulp was enough to move a 16-bit sample of the re-dub's motion context across a
    rounding step, so two runs of one re-dub differed. The true distance is the square root of an
    integer (dx² + dy²): rounding the squared result to that integer and taking the root gives the
    exact, correctly rounded value (the float error of ``d²`` stays far below 0.5 for distances under
    1000 px; masks use distances up to padding + feather only).
    """
    import cv2

    dist = cv2.distanceTransform(np.where(region > 0, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(np.square(dist, dtype=np.float64))).astype(np.float32)


def mouth_mask(shape: tuple[int, int], landmarks: np.ndarray, params: MaskParams = MaskParams()) -> np.ndarray:
    """Float32 (H, W) mask in [0, 1] for landmarks given in the same pixel space as ``shape``.

    Only a window around the mouth is computed (:func:`mouth_mask_window`); the rest is zeros.
    """
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), np.float32)
    win, (x0, y0) = mouth_mask_window(shape, landmarks, params)
    out[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] = win
    return out


def mouth_mask_window(shape: tuple[int, int], landmarks: np.ndarray,
                      params: MaskParams = MaskParams()) -> tuple[np.ndarray, tuple[int, int]]:
    """The non-zero part of :func:`mouth_mask`: ``(alpha, (x0, y0))``, the float32 window whose top-left
    pixel is image pixel (x0, y0), inside the image; the mask is 0 outside it (a (0, 0) window when the
    mouth lies outside the image). The same values as the full mask, without a frame-sized array.

    Sub-pixel landmark positions are kept (polygons rasterised with 1/16 px precision) so the mask
    moves smoothly with the face.
    """
    import cv2

    h, w = int(shape[0]), int(shape[1])
    pad, feather = mask_extent_px(landmarks, params)
    reach = pad + feather
    polys = core_polygons(landmarks, params.include_jaw)
    allpts = np.concatenate(polys)
    x0 = int(np.floor(allpts[:, 0].min() - reach - 2))
    y0 = int(np.floor(allpts[:, 1].min() - reach - 2))
    x1 = int(np.ceil(allpts[:, 0].max() + reach + 2))
    y1 = int(np.ceil(allpts[:, 1].max() + reach + 2))
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((0, 0), np.float32), (0, 0)  # mouth entirely outside the image
    # Work in the unclipped window so distances near the image border stay right.
    core = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shift = 4
    for poly in polys:
        pts = np.round((poly - [x0, y0]) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(core, [pts], 255, lineType=cv2.LINE_8, shift=shift)
    dist = distance_to_region(core)
    ramp = np.clip((reach - dist) / feather, 0.0, 1.0)
    alpha = (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)  # smoothstep
    return alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], (cx0, cy0)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) exclusive bounds of the non-zero part of a mask, or None if empty."""
    ys = np.flatnonzero(mask.any(1))
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(mask.any(0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def mouth_mask_in_crop(landmarks: np.ndarray, transform, params: MaskParams = MaskParams()) -> np.ndarray:
    """The mouth mask drawn in an aligned crop (``transform``: :class:`.align.CropTransform`).

    Relative padding/feather give the same mask shape as :func:`mouth_mask` in the frame; pixel
    overrides are taken as crop pixels.
    """
    return mouth_mask((transform.size, transform.size), transform.to_crop(landmarks), params)


def mouth_mask_in_crop_window(landmarks: np.ndarray, transform,
                              params: MaskParams = MaskParams()) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`mouth_mask_in_crop` as a window (see :func:`mouth_mask_window`)."""
    return mouth_mask_window((transform.size, transform.size), transform.to_crop(landmarks), params)
