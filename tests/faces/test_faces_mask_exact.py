"""The mouth mask is the same bytes on every call: its distance transform is the exact one.

OpenCV's precise distance transform (IPP in the pip wheels) returned values one float ulp apart for
the same input from call to call; through the mask that changed re-dub output samples between two
runs of the same settings (issue 20). The reference here is scipy's exact Euclidean transform, an
independent implementation.
"""

import numpy as np
from scipy import ndimage

from s2v_toolkit.faces import MaskParams, mouth_mask
from s2v_toolkit.faces.mask import distance_to_region
from s2v_toolkit.faces.synthetic import posed_face


def _regions():
    """Filled quadrilaterals (sub-pixel corners) in windows from mouth-mask size to a 4K close-up's."""
    import cv2

    rng = np.random.default_rng(7)
    for h, w in [(40, 57), (97, 131), (200, 300), (480, 700)]:
        region = np.zeros((h, w), np.uint8)
        corners = rng.uniform(0.2, 0.8, (4, 2)) * [w, h]
        hull = cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2)
        cv2.fillPoly(region, [np.round(hull * 16).astype(np.int32)], 255, shift=4)
        yield region


def test_distance_to_region_is_the_exact_euclidean_distance():
    for region in _regions():
        exact = ndimage.distance_transform_edt(region == 0).astype(np.float32)
        got = distance_to_region(region)
        assert got.dtype == np.float32 and got.shape == region.shape
        assert np.array_equal(got, exact), np.count_nonzero(got != exact)


def test_mouth_mask_is_the_same_bytes_on_every_call():
    rng = np.random.default_rng(0)
    faces = [posed_face((300.0 + 0.37 * k, 200.0 - 0.21 * k), 180.0 + 3.1 * k, angle_deg=2.0 * k) for k in range(4)]
    first = [mouth_mask((480, 640), lm, MaskParams()).tobytes() for lm in faces]
    for _ in range(40):
        # allocations of varying sizes between calls move the transform's buffers around
        churn = [np.empty(int(n), np.float32) for n in rng.integers(16, 200_000, 4)]
        assert [mouth_mask((480, 640), lm, MaskParams()).tobytes() for lm in faces] == first
        del churn
