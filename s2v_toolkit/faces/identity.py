"""Face similarity between a character's reference image and a face track (documented method).

A :class:`FaceDescriptor` has three parts, each computed on a face aligned by :mod:`.align` (so
position, size and in-plane rotation do not matter):

* ``geometry``: the rigid landmarks (eyes, brows, nose, upper outline) with translation, rotation
  and scale removed (:func:`.landmarks.shape_signature`). Compared by RMS distance.
* ``texture``: uniform local binary patterns (LBP, 8 neighbours, radius 1; 59 bins) of the grey
  aligned face, in a 3 x 4 grid of cells over forehead, eyes and nose: the mouth and chin are left
  out, because the person talks. Compared by the chi-square distance of the cell histograms
  (the classic LBPH face-recognition descriptor).
* ``colour``: a hue x saturation histogram (12 x 4 bins) of the face oval above the mouth: skin tone
  and lighting. Compared by the Bhattacharyya coefficient.

Each distance d becomes a similarity exp(-d / scale) with the scale listed in
:data:`SIMILARITY_SCALES`; the combined similarity is their weighted mean
(:data:`SIMILARITY_WEIGHTS`). A track's descriptor is the mean of descriptors at a few of its frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import landmarks as L
from .align import face_crop_transform
from .landmarks import shape_signature

ALIGNED_SIZE = 64
ALIGNED_FACE_FRACTION = 0.9
TEXTURE_GRID = (3, 4)
# Rows/cols of the aligned 64 px face used for texture: forehead to the base of the nose.
TEXTURE_WINDOW = (8, 40, 6, 58)  # y0, y1, x0, x1
HUE_BINS, SAT_BINS = 12, 4
SIMILARITY_SCALES = {"geometry": 0.05, "texture": 0.35, "colour": 0.35}
SIMILARITY_WEIGHTS = {"geometry": 1.0, "texture": 1.0, "colour": 1.0}


def _uniform_lbp_table() -> np.ndarray:
    """Map the 256 LBP codes to 59 bins: one per 'uniform' code (<= 2 bit transitions), one for the rest."""
    table = np.full(256, 58, np.int64)
    k = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        if transitions <= 2:
            table[code] = k
            k += 1
    return table


_LBP_TABLE = _uniform_lbp_table()


def lbp_codes(gray: np.ndarray) -> np.ndarray:
    """Uniform LBP bin (0..58) of each interior pixel of a 2-D image."""
    g = gray.astype(np.int16)
    c = g[1:-1, 1:-1]
    h, w = g.shape
    offsets = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
    code = np.zeros(c.shape, np.int64)
    for bit, (dy, dx) in enumerate(offsets):
        code |= (g[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] >= c).astype(np.int64) << bit
    return _LBP_TABLE[code]


@dataclass
class FaceDescriptor:
    geometry: np.ndarray
    texture: np.ndarray   # (cells, 59) normalised histograms
    colour: np.ndarray    # (HUE_BINS * SAT_BINS,) normalised histogram

    def to_dict(self) -> dict:
        return {"geometry": self.geometry.round(5).tolist(), "texture": self.texture.round(5).tolist(),
                "colour": self.colour.round(5).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> FaceDescriptor:
        return cls(np.asarray(d["geometry"]), np.asarray(d["texture"]), np.asarray(d["colour"]))

    @staticmethod
    def mean(descriptors: list[FaceDescriptor]) -> FaceDescriptor:
        if not descriptors:
            raise ValueError("no descriptors to average")
        return FaceDescriptor(*(np.mean([getattr(d, f) for d in descriptors], 0)
                                for f in ("geometry", "texture", "colour")))


def face_descriptor(image: np.ndarray, landmarks: np.ndarray) -> FaceDescriptor:
    """Descriptor of the face with these landmarks in ``image`` (RGB uint8, H x W x 3)."""
    import cv2

    lm = np.asarray(landmarks, np.float32)
    t = face_crop_transform(lm, ALIGNED_SIZE, ALIGNED_FACE_FRACTION)
    face = t.crop(np.ascontiguousarray(image), cv2.INTER_AREA if t.scale < 1 else cv2.INTER_LINEAR)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    gray = cv2.equalizeHist(gray)  # texture independent of exposure
    y0, y1, x0, x1 = TEXTURE_WINDOW
    codes = lbp_codes(gray[y0 - 1:y1 + 1, x0 - 1:x1 + 1])
    rows, cols = TEXTURE_GRID
    cells = []
    for band in np.array_split(codes, rows, 0):
        for cell in np.array_split(band, cols, 1):
            hist = np.bincount(cell.ravel(), minlength=59).astype(np.float64)
            cells.append(hist / max(hist.sum(), 1))
    # colour: the face oval above the mouth (mouth interior and lips change while talking)
    oval = t.to_crop(lm[list(L.FACE_OVAL), :2])
    region = np.zeros((ALIGNED_SIZE, ALIGNED_SIZE), np.uint8)
    cv2.fillPoly(region, [np.round(oval).astype(np.int32)], 1)
    mouth_top = float(t.to_crop(lm[list(L.LIPS_OUTER), :2])[:, 1].min())
    region[max(int(mouth_top), 0):] = 0
    hsv = cv2.cvtColor(face, cv2.COLOR_RGB2HSV)
    sel = hsv[region > 0]
    hist, _, _ = np.histogram2d(sel[:, 0].astype(np.float64), sel[:, 1].astype(np.float64),
                                bins=(HUE_BINS, SAT_BINS), range=((0, 180), (0, 256)))
    hist = hist.ravel()
    return FaceDescriptor(shape_signature(lm), np.asarray(cells), hist / max(hist.sum(), 1))


def face_similarity(a: FaceDescriptor, b: FaceDescriptor) -> dict[str, float]:
    """Per-part similarities in [0, 1] and their weighted mean (``"combined"``)."""
    d_geom = float(np.sqrt(np.mean((a.geometry - b.geometry) ** 2)))
    num = (a.texture - b.texture) ** 2
    den = a.texture + b.texture
    d_tex = float(0.5 * np.sum(np.divide(num, den, out=np.zeros_like(num), where=den > 0)) / len(a.texture))
    d_col = float(1.0 - np.sum(np.sqrt(a.colour * b.colour)))
    sims = {
        "geometry": float(np.exp(-d_geom / SIMILARITY_SCALES["geometry"])),
        "texture": float(np.exp(-d_tex / SIMILARITY_SCALES["texture"])),
        "colour": float(np.exp(-max(d_col, 0.0) / SIMILARITY_SCALES["colour"])),
    }
    total = sum(SIMILARITY_WEIGHTS.values())
    sims["combined"] = sum(SIMILARITY_WEIGHTS[k] * sims[k] for k in SIMILARITY_WEIGHTS) / total
    return sims


def appearance_similarity(a: FaceDescriptor, b: FaceDescriptor) -> float:
    """Mean of the texture and colour similarities (no geometry): for telling two tracked faces apart."""
    sims = face_similarity(a, b)
    return 0.5 * (sims["texture"] + sims["colour"])
