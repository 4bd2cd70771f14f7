"""A minimal PNG writer (8-bit RGB/RGBA/grey), so exporting stills needs no imaging library."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from s2v_toolkit.media.atomic import atomic_output

_COLOR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in _COLOR_TYPE:
        raise ValueError(f"expected HxW[x1|3|4] uint8, got {img.shape} {img.dtype}")
    h, w, c = img.shape
    # Filter type 1 ("Sub": each byte minus the same channel of the pixel to its left) makes
    # photographs compress 2-3x better than unfiltered rows; it is exactly invertible.
    rows = img.reshape(h, w * c)
    sub = rows.copy()
    sub[:, c:] = rows[:, c:] - rows[:, :-c]  # uint8 arithmetic wraps modulo 256, as PNG specifies
    raw = np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE[c], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def write_png(path: str | os.PathLike, image: np.ndarray, overwrite: bool = True) -> None:
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(encode_png(image))
