"""Mouth masks, aligned crops and compositing back, on a real photo with landmarks placed on its face."""

import cv2
import numpy as np
import pytest
from skimage import data

from s2v_toolkit.faces import (
    CompositeParams,
    MaskParams,
    composite_crop,
    face_crop_transform,
    fit_similarity,
    mouth_mask,
    psnr,
)
from s2v_toolkit.faces import landmarks as L
from s2v_toolkit.faces.align import template_points
from s2v_toolkit.faces.synthetic import posed_face

# Synthetic landmarks fitted to the astronaut's face (nose tip, face width and roll measured once
# with the landmark model): good enough to place masks and crops on the real face.
ASTRONAUT_POSE = dict(center=(223.6, 129.4), width=93.5, angle_deg=3.3)


@pytest.fixture(scope="module")
def astronaut():
    img = np.ascontiguousarray(data.astronaut())
    return img, posed_face(**ASTRONAUT_POSE, mouth_open=0.15)


def _distance_to_lips(shape, lm):
    core = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(lm[list(L.LIPS_OUTER), :2]).reshape(-1, 2)
    cv2.fillPoly(core, [np.round(hull).astype(np.int32)], 1)
    return cv2.distanceTransform((1 - core).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE), core


def test_mask_is_one_on_the_lips_and_exactly_zero_beyond_padding_plus_feather(astronaut):
    img, lm = astronaut
    params = MaskParams(padding=0.25, feather=0.2)
    m = mouth_mask(img.shape[:2], lm, params)
    width = np.linalg.norm(lm[61, :2] - lm[291, :2])
    dist, core = _distance_to_lips(img.shape[:2], lm)
    assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    inner = cv2.erode(core, np.ones((3, 3), np.uint8)) > 0
    assert np.all(m[inner] == 1.0)
    assert np.all(m[dist <= 0.25 * width - 1.5] > 0.99)
    assert np.all(m[dist > 0.45 * width + 1.5] == 0.0)
    # soft edge: values strictly between 0 and 1 exist and fall off with distance
    ring = (dist > 0.28 * width) & (dist < 0.42 * width)
    assert np.all((m[ring] > 0) & (m[ring] < 1))
    assert np.corrcoef(dist[ring], m[ring])[0, 1] < -0.9


def test_mask_jaw_option_and_pixel_overrides(astronaut):
    img, lm = astronaut
    lips = mouth_mask(img.shape[:2], lm, MaskParams())
    jaw = mouth_mask(img.shape[:2], lm, MaskParams(include_jaw=True))
    chin = np.rint(lm[L.CHIN, :2] - [0, 3]).astype(int)
    assert lips[chin[1], chin[0]] == 0 and jaw[chin[1], chin[0]] == 1
    assert np.all(jaw >= lips - 1e-6)
    tight = mouth_mask(img.shape[:2], lm, MaskParams(padding_px=0, feather_px=2))
    dist, _ = _distance_to_lips(img.shape[:2], lm)
    assert np.all(tight[dist > 3.5] == 0)


def test_mask_scales_with_the_face_and_handles_faces_leaving_the_frame():
    small = mouth_mask((720, 1280), posed_face((400, 300), 100), MaskParams())
    big = mouth_mask((720, 1280), posed_face((400, 300), 200), MaskParams())
    assert np.count_nonzero(big) / np.count_nonzero(small) == pytest.approx(4.0, rel=0.1)
    half_out = mouth_mask((720, 1280), posed_face((1275, 300), 200), MaskParams())
    assert 0 < np.count_nonzero(half_out) < np.count_nonzero(big)
    assert not mouth_mask((720, 1280), posed_face((1600, 300), 200), MaskParams()).any()


def test_similarity_fit_recovers_a_known_transform_and_crop_round_trips(astronaut):
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (30, 2))
    th = np.deg2rad(17)
    m_true = np.array([[1.7 * np.cos(th), -1.7 * np.sin(th), 40], [1.7 * np.sin(th), 1.7 * np.cos(th), -12]])
    dst = src @ m_true[:, :2].T + m_true[:, 2]
    assert np.allclose(fit_similarity(src, dst), m_true, atol=1e-9)

    _, lm = astronaut
    t = face_crop_transform(lm, 512)
    rigid = t.to_crop(lm[list(L.RIGID_POINTS)])[:, :2]
    assert np.abs(rigid - template_points(512)).max() < 1.0  # synthetic face == template shape
    back = t.to_frame(t.to_crop(lm))
    assert np.allclose(back, lm, atol=1e-3)
    assert t.scale == pytest.approx(512 * 0.5 / 93.5, rel=0.01)


def test_crop_ignores_the_mouth_and_follows_head_rotation():
    closed = face_crop_transform(posed_face((640, 360), 180, 10, mouth_open=0.0))
    open_ = face_crop_transform(posed_face((640, 360), 180, 10, mouth_open=0.5))
    assert np.allclose(closed.matrix, open_.matrix, atol=1e-6)  # talking does not move the crop
    angle = np.degrees(np.arctan2(closed.matrix[1, 0], closed.matrix[0, 0]))
    assert angle == pytest.approx(-10, abs=0.01)


def test_unchanged_crop_composites_back_losslessly_and_outside_is_bit_identical(astronaut):
    img, lm = astronaut
    frame = cv2.resize(img, (1024, 1024), interpolation=cv2.INTER_CUBIC)  # face ~190 px wide
    lm2 = lm.copy()
    lm2[:, :3] *= 2
    t = face_crop_transform(lm2, 512)
    crop = t.crop(frame)
    for jaw in (False, True):
        m = mouth_mask(frame.shape[:2], lm2, MaskParams(include_jaw=jaw))
        out = composite_crop(frame, crop, t, m)
        assert out.dtype == frame.dtype
        assert np.array_equal(out[m == 0], frame[m == 0])
        assert psnr(out, frame, m) > 40.0


def test_colour_match_pulls_a_tinted_regeneration_back_to_the_source(astronaut):
    img, lm = astronaut
    t = face_crop_transform(lm, 256)
    crop = t.crop(img).astype(np.float32)
    tinted = np.clip(crop * [0.85, 0.95, 1.1] + [12, -5, 8], 0, 255).astype(np.uint8)
    m = mouth_mask(img.shape[:2], lm, MaskParams())
    matched = composite_crop(img, tinted, t, m, CompositeParams(color_match=True))
    raw = composite_crop(img, tinted, t, m, CompositeParams(color_match=False))
    assert psnr(matched, img, m) > psnr(raw, img, m) + 6
    assert np.array_equal(matched[m == 0], img[m == 0])


def test_regenerated_mouth_lands_inside_the_mask_only(astronaut):
    img, lm = astronaut
    t = face_crop_transform(lm, 256)
    new = np.full((256, 256, 3), 255, np.uint8)  # a white "regeneration"
    m = mouth_mask(img.shape[:2], lm, MaskParams())
    out = composite_crop(img, new, t, m, CompositeParams(color_match=False))
    changed = np.any(out != img, axis=2)
    assert changed[m == 1].mean() > 0.99
    assert not changed[m == 0].any()


def test_compositing_keeps_16_bit_frames_and_checks_shapes(astronaut):
    img, lm = astronaut
    frame16 = img.astype(np.uint16) * 257
    t = face_crop_transform(lm, 256)
    m = mouth_mask(img.shape[:2], lm, MaskParams())
    out = composite_crop(frame16, t.crop(frame16), t, m)
    assert out.dtype == np.uint16
    assert np.array_equal(out[m == 0], frame16[m == 0])
    assert psnr(out, frame16, m, peak=65535) > 40
    with pytest.raises(ValueError):
        composite_crop(img, t.crop(img), t, m[:-1])
