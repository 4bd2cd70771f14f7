"""Paste a regenerated face crop back into its frame through the inverse crop transform.

``out = src`` wherever the mask is 0 (bit-identical: those pixels are copied, never recomputed);
inside the mask ``out = a * matched + (1 - a) * src``, rounded to the frame's dtype.

A frame may also be a :class:`s2v_toolkit.media.PlanarFrame` (the decoded planes of a 10-bit
4:2:2 master, say): then the matched patch is converted into the frame's own format and blended
into its planes (:func:`s2v_toolkit.media.blend_rgb_patch`), so every sample the mask does not
reach stays the decoded sample at the source's bit depth; only the mouth region is converted.

Colour/luminance matching: generators drift in tint and brightness. We compare the regenerated
crop with the source frame on a *band around the mouth region* (the mask's feathered edge plus
``band`` pixels outside it): skin the generator was not meant to change, so any difference there is
drift. Per channel, the regenerated pixels get a gain and offset that give them the source's mean
and standard deviation on that band (gain limited to ``[1/max_gain, max_gain]``), applied only to
the pixels composited inside the mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .align import CropTransform
from .mask import mask_bbox


@dataclass(frozen=True)
class CompositeParams:
    color_match: bool = True
    band: int = 12           # pixels outside the mask's support used (with the feather) for the statistics
    max_gain: float = 1.25   # limit of the per-channel gain of the colour match


def warp_crop_to_frame(crop: np.ndarray, transform: CropTransform, window: tuple[int, int, int, int]) -> np.ndarray:
    """The crop resampled into frame pixels ``window = (x0, y0, x1, y1)`` (float32)."""
    import cv2

    x0, y0, x1, y1 = window
    # dst (window pixel) -> src (crop pixel): crop = M [x + x0, y + y0, 1]
    m = transform.matrix.copy()
    m[:, 2] = m[:, 2] + m[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(crop.astype(np.float32), m, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def color_match_gain(regen: np.ndarray, src: np.ndarray, weights: np.ndarray, max_gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (gain, offset) so that gain*regen+offset matches src's weighted mean/std."""
    w = weights.reshape(-1).astype(np.float64)
    total = w.sum()
    channels = regen.shape[-1]
    if total < 1.0:
        return np.ones(channels), np.zeros(channels)
    # Only the pixels with a weight: the others add exact zeros to the sums. Each weighted sum is the
    # running sum over the pixels in order (what numpy's reduction of the pixel axis of an (N, C)
    # array computes), taken along a contiguous row per channel: the same additions in the same order,
    # so the same bits (tests/faces/test_composite_exact.py), at a fraction of the work.
    keep = np.flatnonzero(w)
    wk = w[keep]
    r = np.ascontiguousarray(regen.reshape(-1, channels)[keep].T, dtype=np.float64)   # (C, K)
    s = np.ascontiguousarray(src.reshape(-1, channels)[keep].T, dtype=np.float64)
    mr = _running_sum(wk * r) / total
    ms = _running_sum(wk * s) / total
    sr = np.sqrt(_running_sum(wk * (r - mr[:, None]) ** 2) / total)
    ss = np.sqrt(_running_sum(wk * (s - ms[:, None]) ** 2) / total)
    gain = np.clip(ss / np.maximum(sr, 1e-6), 1.0 / max_gain, max_gain)
    gain = np.where(sr < 1e-3, 1.0, gain)  # flat band: match the mean only
    return gain, ms - gain * mr


def _running_sum(rows: np.ndarray) -> np.ndarray:
    """Per row, the sum of its values added one after the other (not numpy's pairwise sum)."""
    return np.add.accumulate(rows, axis=1)[:, -1]


def composite_crop(frame: np.ndarray, crop: np.ndarray, transform: CropTransform, mask: np.ndarray,
                   params: CompositeParams = CompositeParams(), *, origin: tuple[int, int] | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Return a copy of ``frame`` with ``crop`` blended in where ``mask`` (H, W, frame space) > 0.

    ``frame``: (H, W, C) integer or float image, with ``crop`` (size, size, C) in the same value
    range; or a PlanarFrame, with an R'G'B' ``crop`` (uint8, uint16 or float in [0, 1]).

    ``origin=(x0, y0)``: ``mask`` is only a window of the frame's mask whose top-left pixel is frame
    pixel (x0, y0) (zero elsewhere; :func:`.mask.mouth_mask_window`): the same result without a
    frame-sized mask. ``out`` (arrays only): a copy of ``frame`` already made by the caller (e.g. a
    row of its output buffer); only the pixels inside the mask are written into it, and it is returned.
    """
    if not isinstance(frame, np.ndarray) and hasattr(frame, "planes"):
        return _composite_planar(frame, crop, transform, mask, params, origin)
    frame = np.asarray(frame)
    if frame.ndim != 3 or crop.ndim != 3 or crop.shape[2] != frame.shape[2]:
        raise ValueError(f"frame {frame.shape} and crop {crop.shape} must both be (H, W, C) with the same C")
    _check_mask(mask, origin, frame.shape[:2])
    if out is None:
        out = frame.copy()
    elif out.shape != frame.shape or out.dtype != frame.dtype:
        raise ValueError(f"out {out.shape} {out.dtype} does not match frame {frame.shape} {frame.dtype}")
    found = _alpha_window(mask, origin, frame.shape[:2], params)
    if found is None:
        return out
    (x0, y0, x1, y1), alpha = found
    src = frame[y0:y1, x0:x1].astype(np.float32)
    # the window reaches ``band`` past the mask for the colour statistics; the blend itself (per
    # pixel) is computed on the mask's box only
    ix0, iy0, ix1, iy1 = mask_bbox(alpha > 0)
    inner = (slice(iy0, iy1), slice(ix0, ix1))
    regen = _matched(crop, transform, (x0, y0, x1, y1), alpha, src, params, inner)
    alpha, src = alpha[inner], src[inner]
    a = np.repeat(alpha[..., None], frame.shape[2], axis=2)  # per sample: no 1-wide broadcast in the loops
    blended = a * regen + (1.0 - a) * src
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    window = out[y0 + iy0:y0 + iy1, x0 + ix0:x0 + ix1]
    np.copyto(window, blended.astype(frame.dtype), where=(alpha > 0)[..., None])
    return out


def _check_mask(mask: np.ndarray, origin, shape: tuple[int, int]) -> None:
    if origin is None:
        if mask.shape != tuple(shape):
            raise ValueError(f"mask {mask.shape} does not match frame {tuple(shape)}")
        return
    x0, y0 = origin
    if mask.ndim != 2 or x0 < 0 or y0 < 0 or x0 + mask.shape[1] > shape[1] or y0 + mask.shape[0] > shape[0]:
        raise ValueError(f"mask window {mask.shape} at {tuple(origin)} is not inside the frame {tuple(shape)}")


def _alpha_window(mask: np.ndarray, origin, shape: tuple[int, int], params: CompositeParams):
    """((x0, y0, x1, y1), alpha): the mask's box grown by the colour-match band (the pixels compositing
    reads) and the float32 mask over it; None for an empty mask."""
    ox, oy = origin if origin is not None else (0, 0)
    box = mask_bbox(mask > 0)
    if box is None:
        return None
    h, w = shape
    b = params.band if params.color_match else 0
    x0, y0 = max(box[0] + ox - b, 0), max(box[1] + oy - b, 0)
    x1, y1 = min(box[2] + ox + b, w), min(box[3] + oy + b, h)
    if origin is None:
        return (x0, y0, x1, y1), mask[y0:y1, x0:x1].astype(np.float32)
    # the window's mask: zero where the given window does not reach (the mask is zero there)
    alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
    ax0, ay0 = max(x0, ox), max(y0, oy)
    ax1, ay1 = min(x1, ox + mask.shape[1]), min(y1, oy + mask.shape[0])
    alpha[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = mask[ay0 - oy:ay1 - oy, ax0 - ox:ax1 - ox]
    return (x0, y0, x1, y1), alpha


def _matched(crop: np.ndarray, transform: CropTransform, window, alpha: np.ndarray, src: np.ndarray,
             params: CompositeParams, inner: tuple[slice, slice] | None = None) -> np.ndarray:
    """The crop warped into the window, colour-matched to ``src`` on the band around the mask;
    ``inner``: only that part of the window is returned (the statistics still use the whole band)."""
    import cv2

    regen = warp_crop_to_frame(crop, transform, window)
    out = regen if inner is None else regen[inner]
    if params.color_match:
        b = params.band
        support = (alpha > 0).astype(np.uint8)
        ring = cv2.dilate(support, _disc(b)) if b > 0 else support
        weights = ((ring > 0) & (alpha < 0.999)).astype(np.float32)
        gain, offset = color_match_gain(regen, src, weights, params.max_gain)
        out = _per_channel(out, gain.astype(np.float32), offset.astype(np.float32))
    return out


def _per_channel(x: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``x * gain + offset`` with per-channel ``gain``/``offset``, each row done as one flat run of
    samples (the same operations per sample, without numpy's 3-long inner loops)."""
    h, w, c = x.shape
    return (x.reshape(h, w * c) * np.tile(gain, w) + np.tile(offset, w)).reshape(h, w, c)


@lru_cache(maxsize=8)
def _disc(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _composite_planar(frame, crop: np.ndarray, transform: CropTransform, mask: np.ndarray,
                      params: CompositeParams, origin=None):
    from s2v_toolkit.media import blend_rgb_patch, to_rgb_float

    _check_mask(mask, origin, frame.shape)
    found = _alpha_window(mask, origin, frame.shape, params)
    if found is None:
        return frame.copy()
    window, alpha = found
    crop = np.asarray(crop)
    scale = float(np.iinfo(crop.dtype).max) if np.issubdtype(crop.dtype, np.integer) else 1.0
    src = to_rgb_float(frame, window) * scale            # the same value range as the crop
    regen = _matched(crop, transform, window, alpha, src, params) / scale
    return blend_rgb_patch(frame, window, np.clip(regen, 0.0, 1.0), alpha)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 255.0) -> float:
    """PSNR in dB between two images, optionally only where ``mask`` > 0."""
    d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        d = d[np.asarray(mask) > 0]
    mse = float(d.mean()) if d.size else 0.0
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)
