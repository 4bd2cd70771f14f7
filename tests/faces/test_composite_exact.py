"""The re-dub's faster CPU paths give the same bits as the straightforward versions they replaced.

Each reference below is the earlier code, written out plainly: frame-sized masks, the colour match's
sums over every pixel of the window, the crop-space mix over the whole crop, the latent mask as float
max-pools in torch. They run on random data (random weights, random masks, masks touching the frame's
edges) and the results must be equal bit for bit.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s2v_toolkit.faces import (
    CompositeParams,
    MaskParams,
    composite_crop,
    face_crop_transform,
    mouth_mask,
    mouth_mask_in_crop,
    mouth_mask_window,
)
from s2v_toolkit.faces.composite import color_match_gain
from s2v_toolkit.faces.synthetic import posed_face
from s2v_toolkit.pipelines.redub import _crop_mix
from s2v_toolkit.pipelines.redub_crop import FaceCropPlan
from s2v_toolkit.pipelines.redub_mask import latent_mask


def _gain_reference(regen, src, weights, max_gain):
    w = weights.reshape(-1).astype(np.float64)
    total = w.sum()
    channels = regen.shape[-1]
    if total < 1.0:
        return np.ones(channels), np.zeros(channels)
    r = regen.reshape(-1, channels).astype(np.float64)
    s = src.reshape(-1, channels).astype(np.float64)
    mr = (w[:, None] * r).sum(0) / total
    ms = (w[:, None] * s).sum(0) / total
    sr = np.sqrt((w[:, None] * (r - mr) ** 2).sum(0) / total)
    ss = np.sqrt((w[:, None] * (s - ms) ** 2).sum(0) / total)
    gain = np.clip(ss / np.maximum(sr, 1e-6), 1.0 / max_gain, max_gain)
    gain = np.where(sr < 1e-3, 1.0, gain)
    return gain, ms - gain * mr


def test_color_match_gain_matches_the_sum_over_every_pixel():
    rng = np.random.default_rng(3)
    for h, w in [(7, 9), (61, 83), (180, 250), (301, 217)]:
        regen = (rng.normal(120, 50, (h, w, 3))).astype(np.float32)      # cubic overshoot: some < 0
        src = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
        for weights in [(rng.random((h, w)) < 0.4).astype(np.float32),      # a band: 0 / 1
                        rng.random((h, w)).astype(np.float32) * (rng.random((h, w)) < 0.5)]:  # fractional
            got = color_match_gain(regen, src, weights, 1.25)
            want = _gain_reference(regen, src, weights, 1.25)
            assert all(np.array_equal(g, r) for g, r in zip(got, want)), (h, w, got, want)
    flat = np.full((20, 20, 3), 90.0, np.float32)
    assert all(np.array_equal(g, r) for g, r in zip(color_match_gain(flat, flat + 3, np.ones((20, 20)), 1.25),
                                                    _gain_reference(flat, flat + 3, np.ones((20, 20)), 1.25)))


def _composite_reference(frame, crop, transform, mask, params):
    """The plain composite: a frame copy, frame-sized mask, every step over the whole window."""
    import cv2

    from s2v_toolkit.faces.composite import warp_crop_to_frame
    from s2v_toolkit.faces.mask import mask_bbox

    out = frame.copy()
    box = mask_bbox(mask > 0)
    if box is None:
        return out
    h, w = mask.shape
    b = params.band if params.color_match else 0
    x0, y0, x1, y1 = max(box[0] - b, 0), max(box[1] - b, 0), min(box[2] + b, w), min(box[3] + b, h)
    alpha = mask[y0:y1, x0:x1].astype(np.float32)
    src = frame[y0:y1, x0:x1].astype(np.float32)
    regen = warp_crop_to_frame(crop, transform, (x0, y0, x1, y1))
    if params.color_match:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * b + 1, 2 * b + 1))
        ring = cv2.dilate((alpha > 0).astype(np.uint8), kernel)
        weights = ((ring > 0) & (alpha < 0.999)).astype(np.float32)
        gain, offset = _gain_reference(regen, src, weights, params.max_gain)
        regen = regen * gain.astype(np.float32) + offset.astype(np.float32)
    a = alpha[..., None]
    blended = a * regen + (1.0 - a) * src
    if np.issubdtype(frame.dtype, np.integer):
        info = np.iinfo(frame.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    inside = alpha > 0
    out[y0:y1, x0:x1][inside] = blended[inside].astype(frame.dtype)
    return out


def _faces(w, h):
    """Mouths in the frame, across its left / top edge, and one outside it."""
    yield posed_face((w * 0.5, h * 0.5), 260.0, angle_deg=7.0, mouth_open=0.3)
    yield posed_face((w * 0.31, h * 0.62), 180.0, angle_deg=-12.0, mouth_open=0.1)
    yield posed_face((15.0, 20.0), 150.0, angle_deg=3.0)            # mouth over the top-left corner
    yield posed_face((w - 10.0, h - 30.0), 200.0)                   # bottom-right corner
    yield posed_face((-400.0, -400.0), 100.0)                        # off the frame


def test_mouth_mask_window_is_the_frame_mask_non_zero_part():
    w, h = 640, 360
    for lm in _faces(w, h):
        full = mouth_mask((h, w), lm, MaskParams())
        win, (x0, y0) = mouth_mask_window((h, w), lm, MaskParams())
        rebuilt = np.zeros((h, w), np.float32)
        rebuilt[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] = win
        assert np.array_equal(rebuilt, full)
        assert np.count_nonzero(win) == np.count_nonzero(full)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_composite_with_a_mask_window_and_out_is_the_plain_full_mask_composite(dtype):
    rng = np.random.default_rng(5)
    w, h = 640, 360
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    frame = (rng.random((h, w, 3)) * top).astype(dtype)
    crop = (rng.random((256, 256, 3)) * top).astype(dtype)
    for lm in _faces(w, h):
        transform = face_crop_transform(lm, 256)
        for params in [CompositeParams(), CompositeParams(color_match=False)]:
            want = _composite_reference(frame, crop, transform, mouth_mask((h, w), lm), params)
            assert np.array_equal(composite_crop(frame, crop, transform, mouth_mask((h, w), lm), params), want)
            win, origin = mouth_mask_window((h, w), lm)
            got = composite_crop(frame, crop, transform, win, params, origin=origin)
            assert np.array_equal(got, want)
            into = frame.copy()
            assert composite_crop(frame, crop, transform, win, params, origin=origin, out=into) is into
            assert np.array_equal(into, want)
    with pytest.raises(ValueError):
        composite_crop(frame, crop, transform, np.ones((10, 10), np.float32), origin=(w - 5, 0))


def _crop_mix_reference(generated, original, mask):
    a = mask[..., None]
    top = float(np.iinfo(original.dtype).max)
    mixed = a * generated.astype(np.float32) + (1.0 - a) * original.astype(np.float32)
    return np.clip(np.rint(mixed), 0, top).astype(original.dtype)


def test_crop_mix_on_the_mask_box_is_the_whole_crop_mix():
    rng = np.random.default_rng(9)
    for dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        gen = rng.integers(0, top, (128, 128, 3), dtype=dtype)
        orig = rng.integers(0, top, (128, 128, 3), dtype=dtype)
        for lm in [posed_face((64.0, 50.0), 90.0), posed_face((5.0, 120.0), 90.0)]:
            mask = mouth_mask((128, 128), lm)
            assert np.array_equal(_crop_mix(gen, orig, mask), _crop_mix_reference(gen, orig, mask))
        noisy = (rng.random((128, 128)) * (rng.random((128, 128)) < 0.1)).astype(np.float32)
        assert np.array_equal(_crop_mix(gen, orig, noisy), _crop_mix_reference(gen, orig, noisy))
        empty = np.zeros((128, 128), np.float32)
        assert np.array_equal(_crop_mix(gen, orig, empty), orig)


def _latent_mask_reference(pixel_masks, dilation, causal_first):
    m = torch.as_tensor(np.asarray(pixel_masks, np.float32) > 0, dtype=torch.float32)
    t = m.shape[0]
    if causal_first:
        groups = [m[:1]] + [m[i:i + 4] for i in range(1, t, 4)]
    else:
        groups = [m[i:i + 4] for i in range(0, t, 4)]
    cells = F.max_pool2d(torch.stack([g.amax(0) for g in groups])[:, None], 8)
    if dilation > 0:
        cells = F.max_pool2d(cells, 2 * dilation + 1, stride=1, padding=dilation)
    return cells.permute(1, 0, 2, 3)[None]


def test_latent_mask_matches_the_float_max_pools():
    rng = np.random.default_rng(2)
    for t, causal in [(8, False), (16, False), (9, True), (13, True)]:
        masks = (rng.random((t, 64, 96)) * (rng.random((t, 64, 96)) < 0.01)).astype(np.float32)
        masks[0, :3, :5] = 1e-30                    # tiny but positive: a generated cell
        for dilation in (0, 1, 2):
            got = latent_mask(masks, dilation=dilation, causal_first=causal)
            want = _latent_mask_reference(masks, dilation, causal)
            assert got.shape == want.shape and got.dtype == want.dtype and torch.equal(got, want)
    as64 = np.zeros((4, 16, 16)); as64[0, 2, 2] = 1e-300   # rounds to 0 in float32, as it always was read
    assert torch.equal(latent_mask(as64, dilation=0), _latent_mask_reference(as64, 0, False))


def test_crop_masks_draws_the_crop_mask_window():
    lms = [posed_face((320.0 + 3 * k, 180.0), 200.0, angle_deg=2.0 * k, mouth_open=0.1 * k) for k in range(3)]
    transforms = [face_crop_transform(lm, 128) for lm in lms]
    plan = FaceCropPlan(10, 12, 128, transforms, np.array([True, True, True]), lms, np.array([False, True, False]))
    got = plan.crop_masks(9, 5, MaskParams(), active=range(10, 12))
    want = np.zeros_like(got)
    want[1] = mouth_mask_in_crop(lms[0], transforms[0])   # frame 10; 11 occluded; 12 outside ``active``
    assert np.array_equal(got, want) and got[1].any()


def test_mask_windows_give_the_dense_masks_latent_mask_and_crop_mix():
    lms = [posed_face((320.0 + 9 * k, 180.0 - 4 * k), 300.0, angle_deg=3.0 * k, mouth_open=0.1 * k) for k in range(8)]
    transforms = [face_crop_transform(lm, 128) for lm in lms]
    occluded = np.array([False, False, True, False, False, False, False, False])
    plan = FaceCropPlan(0, 7, 128, transforms, np.ones(8, bool), lms, occluded)
    windows = plan.crop_mask_windows(0, 8, MaskParams(), active=range(0, 7))
    dense = plan.crop_masks(0, 8, MaskParams(), active=range(0, 7))
    assert np.array_equal(windows.dense(), dense) and dense[0].any() and not dense[2].any()
    for dilation in (0, 1):
        assert torch.equal(latent_mask(windows, dilation=dilation), _latent_mask_reference(dense, dilation, False))
    rng = np.random.default_rng(4)
    gen = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    orig = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for k in range(8):
        assert np.array_equal(windows.frame(k), dense[k])
        if windows.windows[k] is not None:
            got = _crop_mix(gen, orig, *windows.windows[k])
            assert np.array_equal(got, _crop_mix_reference(gen, orig, dense[k]))


def test_planar_composite_with_a_mask_window_is_the_full_mask_composite():
    from s2v_toolkit.media import PlanarFrame

    rng = np.random.default_rng(11)
    h, w = 180, 320
    frame = PlanarFrame("yuv422p10le", [rng.integers(64, 940, (h, w), dtype=np.uint16),
                                        rng.integers(64, 960, (h, w // 2), dtype=np.uint16),
                                        rng.integers(64, 960, (h, w // 2), dtype=np.uint16)])
    crop = rng.integers(0, 65535, (128, 128, 3), dtype=np.uint16)
    for lm in [posed_face((160.0, 90.0), 120.0, mouth_open=0.3), posed_face((8.0, 10.0), 90.0)]:
        transform = face_crop_transform(lm, 128)
        want = composite_crop(frame, crop, transform, mouth_mask((h, w), lm), CompositeParams())
        win, origin = mouth_mask_window((h, w), lm)
        assert composite_crop(frame, crop, transform, win, CompositeParams(), origin=origin).equal(want)
        assert not want.equal(frame)
