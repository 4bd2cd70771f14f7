"""Frames at the source's own bit depth and colour: native planes, exact scaling, tagged conversions.

Why planes: a 10-bit 4:2:2 master converted to RGB and back is not the same file (Y'CbCr -> R'G'B'
-> Y'CbCr rounds, and 4:2:2 chroma must be re-subsampled). So the re-dub keeps the decoded planes
(:class:`PlanarFrame`) untouched and converts only the generated mouth patch into the source's
format, blending it into the planes under the mask (:func:`blend_rgb_patch`). Every sample whose
footprint the mask does not touch is the decoded sample, at the source's bit depth, bit for bit.

Scaling between bit depths is the full-range mapping ``v16 = round(v * 65535 / (2**bits - 1))``;
its inverse ``round(v16 * (2**bits - 1) / 65535)`` gives ``v`` back exactly (the rounding error of
the first step, at most 1/2, shrinks by ``(2**bits - 1) / 65535`` on the way back).

Y'CbCr <-> R'G'B' use the frame's matrix (BT.601 / BT.709 / BT.2020 / SMPTE 240M / FCC) and range
(limited "tv" or full "pc") read from the stream; where the file does not say, the convention FFmpeg
and NLEs use (BT.709 from 720 lines up, BT.601 below; limited range for Y'CbCr). Transfer and
primaries are carried as tags: no conversion changes them, so no gamut or transfer conversion is done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import av
import numpy as np

# FFmpeg's enum values (libavutil/pixfmt.h) -> the names ffprobe prints.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
             10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
             10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
             15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
            9: "bt2020nc", 10: "bt2020c", 14: "ictcp"}
RANGES = {1: "tv", 2: "pc"}

# Luma coefficients (Kr, Kb) of each Y'CbCr matrix.
_KR_KB = {"bt709": (0.2126, 0.0722), "bt470bg": (0.299, 0.114), "smpte170m": (0.299, 0.114),
          "bt2020nc": (0.2627, 0.0593), "bt2020c": (0.2627, 0.0593), "smpte240m": (0.212, 0.087),
          "fcc": (0.30, 0.11)}


def _code(table: dict[int, str], name: str | None) -> int:
    if name is None:
        return 2  # "unspecified" in every one of FFmpeg's colour enums except range (0)
    for k, v in table.items():
        if v == name:
            return k
    raise ValueError(f"unknown colour name {name!r} (known: {', '.join(table.values())})")


@dataclass(frozen=True)
class ColourInfo:
    """Colour description of a video stream (ffprobe's names; None where the file does not say)."""

    primaries: str | None = None   # color_primaries: bt709, bt2020, smpte432 (P3 D65), ...
    transfer: str | None = None    # color_transfer: bt709, smpte2084 (PQ), arib-std-b67 (HLG), ...
    matrix: str | None = None      # color_space: bt709, smpte170m, bt2020nc, ...
    range: str | None = None       # color_range: tv (limited) or pc (full)

    @classmethod
    def from_av(cls, obj) -> "ColourInfo":
        """From a PyAV frame or codec context (their ``color_*`` / ``colorspace`` fields)."""
        def get(attr, table):
            value = getattr(obj, attr, None)
            return None if value is None else table.get(int(value))
        return cls(get("color_primaries", PRIMARIES), get("color_trc", TRANSFERS), get("colorspace", MATRICES),
                   get("color_range", RANGES))

    def apply_to(self, obj) -> None:
        """Tag a PyAV frame or codec context (unknown fields stay unspecified)."""
        if self.primaries:
            obj.color_primaries = _code(PRIMARIES, self.primaries)
        if self.transfer:
            obj.color_trc = _code(TRANSFERS, self.transfer)
        if self.matrix:
            obj.colorspace = _code(MATRICES, self.matrix)
        if self.range:
            obj.color_range = _code(RANGES, self.range)

    def resolved_matrix(self, height: int) -> str:
        """The Y'CbCr matrix to convert with: the tagged one, else BT.709 for HD and up, BT.601 below."""
        if self.matrix in _KR_KB:
            return self.matrix
        return "bt709" if height >= 720 else "smpte170m"

    def resolved_range(self, pix_fmt: str) -> str:
        if self.range:
            return self.range
        return "pc" if pix_fmt.startswith("yuvj") else "tv"

    def with_defaults(self, pix_fmt: str, height: int) -> "ColourInfo":
        """The tags an output should carry: the source's, with the conversion defaults filled in."""
        kind = pixel_kind(pix_fmt)
        if kind == "yuv":
            matrix = self.resolved_matrix(height)
            # an R'G'B' source's range (full) says nothing about a Y'CbCr output: that gets the default
            rng = ColourInfo(range=None if self.matrix == "gbr" else self.range).resolved_range(pix_fmt)
        else:
            matrix = "gbr" if kind in ("gbr", "rgb") else self.matrix
            rng = self.range or "pc"
        default = "bt709" if height >= 720 else "smpte170m"
        return ColourInfo(self.primaries or (default if kind != "gray" else None),
                          self.transfer or (default if kind != "gray" else None), matrix, rng)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ColourInfo":
        return cls(**(d or {}))


def pixel_kind(pix_fmt: str) -> str:
    """'yuv', 'gbr' (planar R'G'B'), 'rgb' (packed), 'gray' or 'other'."""
    if pix_fmt.startswith(("yuv", "yuvj")):
        return "yuv"
    if pix_fmt.startswith("gbr"):
        return "gbr"
    if pix_fmt.startswith("gray"):
        return "gray"
    if pix_fmt.startswith(("rgb", "bgr")):
        return "rgb"
    return "other"


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of a pixel format (8 for 8-bit formats; 16 for half/float ones)."""
    fmt = av.VideoFormat(pix_fmt)
    return max(c.bits for c in fmt.components)


def planar_equivalent(pix_fmt: str) -> str:
    """The planar format holding the same samples (nv12 -> yuv420p, p010le -> yuv420p10le, rgb48le -> gbrp16le).

    Formats that are planar already are returned as they are. Repacking keeps every sample value.
    """
    fmt = av.VideoFormat(pix_fmt, 64, 64)  # a size, so components report their subsampled sizes
    if _is_supported_planar(fmt):
        return pix_fmt
    bits = max(c.bits for c in fmt.components)
    bits = 16 if bits > 16 or "f16" in pix_fmt else bits  # half/float samples: 16-bit integer codes
    suffix = "" if bits <= 8 else f"{bits}le"
    colour = [c for c in fmt.components if not c.is_alpha]
    if len(colour) == 1:
        return "gray" + suffix
    if fmt.is_rgb:
        return "gbrp" + suffix
    luma, chroma = colour[0], colour[1]
    sx, sy = luma.width // max(chroma.width, 1), luma.height // max(chroma.height, 1)
    names = {(1, 1): "444", (2, 1): "422", (2, 2): "420", (1, 2): "440", (4, 1): "411", (4, 4): "410"}
    sub = names.get((sx, sy), "444")
    return f"yuv{sub}p" + suffix


def _is_supported_planar(fmt) -> bool:
    name = fmt.name
    comps = fmt.components
    if name.endswith("be") or "f16" in name or "f32" in name or any(c.is_alpha for c in comps):
        return False  # big-endian, float, alpha: repacked to a plain planar format
    if pixel_kind(name) == "gray":
        return len(comps) == 1
    return pixel_kind(name) in ("yuv", "gbr") and len(comps) == 3 and len({c.plane for c in comps}) == 3


@dataclass
class PlanarFrame:
    """One decoded frame in its own planar pixel format: sample values exactly as decoded.

    ``planes`` are (rows, cols) arrays, uint8 for 8-bit formats and uint16 (LSB-aligned code values:
    10-bit samples are 0..1023) above. Plane order is FFmpeg's: Y, Cb, Cr for Y'CbCr and G, B, R for
    planar R'G'B'.
    """

    pix_fmt: str
    planes: list[np.ndarray]
    colour: ColourInfo = field(default_factory=ColourInfo)

    @property
    def height(self) -> int:
        return int(self.planes[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.planes[0].shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def bits(self) -> int:
        return bit_depth(self.pix_fmt)

    @property
    def kind(self) -> str:
        return pixel_kind(self.pix_fmt)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.planes)

    def subsampling(self, plane: int) -> tuple[int, int]:
        """(horizontal, vertical) factor of plane ``plane`` against the luma plane."""
        p = self.planes[plane]
        return -(-self.width // p.shape[1]) if p.shape[1] else 1, -(-self.height // p.shape[0]) if p.shape[0] else 1

    def copy(self) -> "PlanarFrame":
        return PlanarFrame(self.pix_fmt, [p.copy() for p in self.planes], self.colour)

    def equal(self, other: "PlanarFrame") -> bool:
        return self.pix_fmt == other.pix_fmt and all(np.array_equal(a, b) for a, b in zip(self.planes, other.planes))


IDENTITY_MATRIX = (1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)  # a display matrix that turns nothing (FFmpeg's layout)


def rotate_frame(frame, degrees: int):
    """``frame`` turned ``degrees`` counter-clockwise (a multiple of 90; PyAV's ``frame.rotation`` sense),
    as a new contiguous (H, W, C) array or :class:`PlanarFrame`; the frame itself when ``degrees`` is 0.

    A PlanarFrame keeps its pixel format and every sample value: each plane is turned on its own, so
    a 4:2:2 frame turned by 90 degrees has its chroma halved vertically instead of horizontally (the
    blend and conversion functions here read the subsampling from the planes' shapes), and turning
    it back restores the original planes exactly. An untagged Y'CbCr frame is tagged with the matrix
    its own height implies, so that the turned frame (other height) converts with the same matrix.
    """
    if degrees % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
    k = (degrees // 90) % 4
    if not k:
        return frame
    if isinstance(frame, PlanarFrame):
        colour = frame.colour
        if frame.kind == "yuv" and colour.matrix not in _KR_KB:
            colour = replace(colour, matrix=colour.resolved_matrix(frame.height))
        return PlanarFrame(frame.pix_fmt, [np.ascontiguousarray(np.rot90(p, k)) for p in frame.planes], colour)
    return np.ascontiguousarray(np.rot90(frame, k))


# -------------------------------------------------------------------------------------------------
# PyAV frames <-> planes
# -------------------------------------------------------------------------------------------------
def _plane_array(plane, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    return buf.reshape(plane.height, plane.line_size // itemsize)[:, : plane.width]


def merge_tags(stream: ColourInfo | None, frame: ColourInfo) -> ColourInfo:
    """The stream's (container's) tags, the frame's where the stream says nothing.

    The container is what ffprobe and NLEs report; some decoders stamp a fixed value on every frame
    (DNxHD frames always say BT.709), so the frame's own tags only fill gaps.
    """
    if stream is None:
        return frame
    return ColourInfo(stream.primaries or frame.primaries, stream.transfer or frame.transfer,
                      stream.matrix or frame.matrix, stream.range or frame.range)


def from_av(frame: av.VideoFrame, colour: ColourInfo | None = None) -> PlanarFrame:
    """A decoded frame as planes in its own format (repacked to the planar equivalent where packed).

    ``colour``: the stream's colour tags (they win over the frame's, see :func:`merge_tags`).
    """
    target = planar_equivalent(frame.format.name)
    tags = merge_tags(colour, ColourInfo.from_av(frame))
    if frame.format.name in ("gbrpf16le", "gbrapf16le", "gbrpf32le", "gbrapf32le"):
        # Half/float R'G'B' (EXR): 0..1 scaled to 16-bit codes here, exactly (swscale adds error).
        ftype = np.dtype("<f2") if "f16" in frame.format.name else np.dtype("<f4")
        planes = [_to_code(np.nan_to_num(_plane_array(p, ftype).astype(np.float32)).clip(0, 1) * 65535.0, 16)
                  for p in list(frame.planes)[:3]]
        return PlanarFrame("gbrp16le", planes, ColourInfo(tags.primaries, tags.transfer, "gbr", "pc"))
    if frame.format.name.startswith("yuvj"):
        # FFmpeg's deprecated full-range aliases (JPEG-style phone video): the same samples as the yuv*
        # format, tagged full range. Relabelled, not converted; encoders such as FFV1 refuse yuvj*
        target = "yuv" + frame.format.name[4:]
        tags = ColourInfo(tags.primaries, tags.transfer, tags.matrix, "pc")
    elif target != frame.format.name:
        # A pure repack (same samples, other layout): same matrix and range on both sides.
        frame = frame.reformat(format=target)
    dtype = np.uint8 if bit_depth(target) <= 8 else np.dtype("<u2")
    planes = [_plane_array(p, dtype).copy() for p in frame.planes]
    return PlanarFrame(target, planes, tags)


def to_av(pf: PlanarFrame) -> av.VideoFrame:
    """A PyAV frame holding exactly ``pf``'s samples, tagged with its colour."""
    frame = av.VideoFrame(pf.width, pf.height, pf.pix_fmt)
    dtype = np.dtype(np.uint8) if pf.bits <= 8 else np.dtype("<u2")
    for plane, data in zip(frame.planes, pf.planes):
        dst = np.frombuffer(memoryview(plane).cast("B"), dtype=dtype)
        dst = dst.reshape(plane.height, plane.line_size // dtype.itemsize)[:, : plane.width]
        dst[...] = data
    pf.colour.apply_to(frame)
    return frame


# -------------------------------------------------------------------------------------------------
# Bit depth scaling (exact and reversible)
# -------------------------------------------------------------------------------------------------
def scale_to_16(values: np.ndarray, bits: int) -> np.ndarray:
    """``bits``-bit code values -> uint16 by the full-range mapping (0 -> 0, max -> 65535)."""
    v = np.asarray(values)
    if bits == 16:
        return v.astype(np.uint16)
    top = (1 << bits) - 1
    return ((v.astype(np.uint32) * 65535 * 2 + top) // (2 * top)).astype(np.uint16)  # round(v*65535/top)


def scale_from_16(values: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`scale_to_16`: ``scale_from_16(scale_to_16(v, b), b) == v`` for every code value."""
    v = np.asarray(values)
    if bits == 16:
        return v.astype(np.uint16)
    top = (1 << bits) - 1
    out = (v.astype(np.uint32) * top * 2 + 65535) // (2 * 65535)
    return out.astype(np.uint8 if bits <= 8 else np.uint16)


# -------------------------------------------------------------------------------------------------
# Y'CbCr <-> R'G'B' (float, [0, 1])
# -------------------------------------------------------------------------------------------------
def _levels(bits: int, rng: str) -> tuple[float, float, float, float]:
    """(luma black, luma span, chroma zero, chroma span) in code values."""
    s = float(1 << (bits - 8))
    if rng == "pc":
        top = float((1 << bits) - 1)
        return 0.0, top, float(1 << (bits - 1)), top
    return 16.0 * s, 219.0 * s, 128.0 * s, 224.0 * s


def _upsample(plane: np.ndarray, sx: int, sy: int, height: int, width: int) -> np.ndarray:
    if sx == 1 and sy == 1:
        return plane[:height, :width]
    return np.repeat(np.repeat(plane, sy, axis=0), sx, axis=1)[:height, :width]


def _window_planes(pf: PlanarFrame, window: tuple[int, int, int, int] | None):
    """Each plane's samples covering ``window = (x0, y0, x1, y1)`` of the frame, and the window's
    offset inside the first up-sampled chroma cell (planes, (dx, dy), (x0a, y0a, x1a, y1a))."""
    x0, y0, x1, y1 = window or (0, 0, pf.width, pf.height)
    out = []
    for i, p in enumerate(pf.planes):
        sx, sy = pf.subsampling(i)
        out.append((p[y0 // sy:-(-y1 // sy), x0 // sx:-(-x1 // sx)], sx, sy))
    return out, (x0, y0, x1, y1)


def to_rgb_float(pf: PlanarFrame, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """R'G'B' float32 in [0, 1] of the frame (or of ``window``), with the frame's matrix and range."""
    planes, (x0, y0, x1, y1) = _window_planes(pf, window)
    h, w = y1 - y0, x1 - x0

    def full(i: int) -> np.ndarray:
        p, sx, sy = planes[i]
        up = _upsample(p, sx, sy, p.shape[0] * sy, p.shape[1] * sx)
        ox, oy = x0 - (x0 // sx) * sx, y0 - (y0 // sy) * sy
        return up[oy:oy + h, ox:ox + w].astype(np.float32)

    bits = pf.bits
    if pf.kind == "gray":
        y = full(0) / float((1 << bits) - 1)
        return np.repeat(np.clip(y, 0, 1)[..., None], 3, axis=-1)
    if pf.kind == "gbr":
        top = float((1 << bits) - 1)
        g, b, r = (full(i) / top for i in range(3))
        return np.stack([r, g, b], axis=-1)
    black, yspan, zero, cspan = _levels(bits, pf.colour.resolved_range(pf.pix_fmt))
    kr, kb = _KR_KB[pf.colour.resolved_matrix(pf.height)]
    kg = 1.0 - kr - kb
    y = (full(0) - black) / yspan
    cb = (full(1) - zero) / cspan
    cr = (full(2) - zero) / cspan
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0)


def rgb_float_to_components(rgb: np.ndarray, pix_fmt: str, colour: ColourInfo, height: int) -> list[np.ndarray]:
    """Full-resolution, unrounded component values (code units) of ``pix_fmt`` for R'G'B' in [0, 1],
    in the format's plane order."""
    rgb = np.asarray(rgb, np.float32)
    bits = bit_depth(pix_fmt)
    kind = pixel_kind(pix_fmt)
    top = float((1 << bits) - 1)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if kind == "gbr":
        return [g * top, b * top, r * top]
    kr, kb = _KR_KB[colour.resolved_matrix(height)]
    kg = 1.0 - kr - kb
    y = kr * r + kg * g + kb * b
    if kind == "gray":
        return [y * top]
    black, yspan, zero, cspan = _levels(bits, colour.resolved_range(pix_fmt))
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    return [black + yspan * y, zero + cspan * cb, zero + cspan * cr]


def _block_mean(a: np.ndarray, sx: int, sy: int) -> np.ndarray:
    h, w = a.shape
    return a.reshape(h // sy, sy, w // sx, sx).mean(axis=(1, 3))


def from_rgb(rgb: np.ndarray, pix_fmt: str, colour: ColourInfo | None = None) -> PlanarFrame:
    """An R'G'B' image (uint8, uint16 or float in [0, 1]) as a planar frame of ``pix_fmt``.

    Chroma is the mean over each subsampled cell. ``colour`` gives the matrix and range (defaults
    as in :class:`ColourInfo`); the frame is tagged with the resolved values.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        f = rgb.astype(np.float32) / 255.0
    elif rgb.dtype == np.uint16:
        f = rgb.astype(np.float32) / 65535.0
    else:
        f = np.clip(rgb.astype(np.float32), 0.0, 1.0)
    h, w = f.shape[:2]
    pix_fmt = planar_equivalent(pix_fmt)
    colour = (colour or ColourInfo()).with_defaults(pix_fmt, h)
    bits = bit_depth(pix_fmt)
    fmt = av.VideoFormat(pix_fmt, w, h)
    comps = rgb_float_to_components(f, pix_fmt, colour, h)
    planes = []
    for i, comp in enumerate(comps):
        c = fmt.components[i]
        sx, sy = -(-w // max(c.width, 1)), -(-h // max(c.height, 1))
        if sx > 1 or sy > 1:
            ph, pw = -(-h // sy), -(-w // sx)
            padded = np.pad(comp, ((0, ph * sy - h), (0, pw * sx - w)), mode="edge")
            comp = _block_mean(padded, sx, sy)
        planes.append(_to_code(comp, bits))
    return PlanarFrame(pix_fmt, planes, colour)


def _to_code(values: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    out = np.clip(np.rint(values), 0, top)
    return out.astype(np.uint8 if bits <= 8 else np.uint16)


def to_rgb(pf: PlanarFrame, depth: int = 16) -> np.ndarray:
    """(H, W, 3) R'G'B' at ``depth`` 8 (uint8) or 16 (uint16) bits per channel.

    Planar R'G'B' sources are scaled exactly (:func:`scale_to_16`: reversible); Y'CbCr sources go
    through the frame's matrix and range (a conversion, rounded once at the end).
    """
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8 or 16, got {depth}")
    if pf.kind == "gbr" and depth == 16:
        g, b, r = (scale_to_16(p, pf.bits) for p in pf.planes)
        return np.stack([r, g, b], axis=-1)
    rgb = to_rgb_float(pf)
    top = 65535.0 if depth == 16 else 255.0
    return np.rint(rgb * top).astype(np.uint16 if depth == 16 else np.uint8)


# -------------------------------------------------------------------------------------------------
# Compositing in the source's own format
# -------------------------------------------------------------------------------------------------
def blend_rgb_patch(pf: PlanarFrame, window: tuple[int, int, int, int], patch: np.ndarray,
                    alpha: np.ndarray) -> PlanarFrame:
    """Blend an R'G'B' ``patch`` (float in [0, 1], covering ``window = (x0, y0, x1, y1)``) into a copy
    of ``pf`` with weights ``alpha`` (same size), in the frame's own format and bit depth.

    The patch is converted to the frame's components at full resolution; for subsampled chroma the
    patch is averaged over each chroma cell weighted by alpha, and the cell's alpha is the mean alpha
    of its pixels. Samples whose alpha is 0 (a luma sample outside the mask, a chroma sample none of
    whose pixels the mask touches) are never written: they stay the decoded samples, bit for bit.
    """
    x0, y0, x1, y1 = window
    out = pf.copy()
    if not np.any(alpha > 0):
        return out
    alpha = np.asarray(alpha, np.float32)
    comps = rgb_float_to_components(patch, pf.pix_fmt, pf.colour, pf.height)
    bits = pf.bits
    for i, comp in enumerate(comps):
        sx, sy = pf.subsampling(i)
        # grow the window to whole chroma cells; the added pixels get alpha 0
        ax0, ay0 = (x0 // sx) * sx, (y0 // sy) * sy
        ax1 = min(-(-x1 // sx) * sx, pf.width + (-pf.width) % sx)
        ay1 = min(-(-y1 // sy) * sy, pf.height + (-pf.height) % sy)
        a = np.zeros((ay1 - ay0, ax1 - ax0), np.float32)
        v = np.zeros_like(a)
        a[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0] = alpha
        v[y0 - ay0:y1 - ay0, x0 - ax0:x1 - ax0] = comp
        if sx > 1 or sy > 1:
            wsum = _block_mean(a * v, sx, sy)
            a = _block_mean(a, sx, sy)
            v = np.where(a > 0, wsum / np.maximum(a, 1e-12), 0.0)
        plane = out.planes[i]
        py0, px0 = ay0 // sy, ax0 // sx
        region = plane[py0:py0 + a.shape[0], px0:px0 + a.shape[1]]
        a = a[:region.shape[0], :region.shape[1]]
        v = v[:region.shape[0], :region.shape[1]]
        inside = a > 0
        mixed = a * v + (1.0 - a) * region.astype(np.float32)
        region[inside] = _to_code(mixed, bits)[inside]
    return out


def sample_masks(pf: PlanarFrame, mask: np.ndarray) -> list[np.ndarray]:
    """Per plane, True where a sample's footprint touches ``mask`` > 0 (the samples a blend may change)."""
    m = np.asarray(mask) > 0
    out = []
    for i, p in enumerate(pf.planes):
        sx, sy = pf.subsampling(i)
        if sx == 1 and sy == 1:
            out.append(m.copy())
            continue
        h, w = p.shape[0] * sy, p.shape[1] * sx
        padded = np.zeros((h, w), bool)
        padded[:m.shape[0], :m.shape[1]] = m
        out.append(padded.reshape(p.shape[0], sy, p.shape[1], sx).any(axis=(1, 3)))
    return out


# -------------------------------------------------------------------------------------------------
# The readers' hook: one decoded frame at the depth asked for
# -------------------------------------------------------------------------------------------------
DEPTHS = (8, 16, "native")


def check_depth(depth) -> int | str:
    if depth not in DEPTHS:
        raise ValueError(f"depth must be 8, 16 or 'native', got {depth!r}")
    return depth


def frame_buffer(count: int, height: int, width: int, depth) -> np.ndarray | list:
    """Where a reader puts ``count`` frames: (count, H, W, 3) uint8/uint16, or a list of PlanarFrames."""
    if depth == "native":
        return [None] * count
    return np.empty((count, height, width, 3), dtype=np.uint8 if depth == 8 else np.uint16)


_SWS_MATRIX = {"bt709": "ITU709", "bt470bg": "ITU601", "smpte170m": "ITU601", "smpte240m": "SMPTE240M",
               "fcc": "FCC", "bt2020nc": "BT2020", "bt2020c": "BT2020"}
_SWS_RANGE = {"tv": "MPEG", "pc": "JPEG"}


def sws_args(pix_fmt: str, colour: ColourInfo, height: int, side: str) -> dict:
    """swscale's colourspace arguments (``side`` 'src' or 'dst') for a Y'CbCr format; {} otherwise."""
    if pixel_kind(pix_fmt) != "yuv":
        return {}
    return {f"{side}_colorspace": _SWS_MATRIX[colour.resolved_matrix(height)],
            f"{side}_color_range": _SWS_RANGE[colour.resolved_range(pix_fmt)]}


def convert_frame(frame: av.VideoFrame, depth, colour: ColourInfo | None = None):
    """A decoded frame as 8-bit R'G'B' (uint8), 16-bit R'G'B' (uint16) or its own planes ("native").

    ``colour``: the stream's tags, used where the frame has none. 8-bit goes through swscale with the
    resolved matrix and range; 16-bit through :func:`to_rgb` (exact for planar R'G'B' sources).
    """
    if depth == 8:
        tags = merge_tags(colour, ColourInfo.from_av(frame))
        name = frame.format.name
        return frame.reformat(format="rgb24", **sws_args(name, tags, frame.height, "src")).to_ndarray()
    pf = from_av(frame, colour)
    return pf if depth == "native" else to_rgb(pf, 16)
