"""Image sequences (DPX 10-bit, OpenEXR half) as sources and outputs, numbered by timecode.

A sequence is named by a printf pattern (``plate.%07d.dpx``) or by its folder (which must hold one
sequence). As finishing pipelines number them, a file's number is its timecode as a frame count at
the rate: at 24 fps, ``01:00:00:00`` is ``plate.0086400.dpx``. Frames are addressed like a video's,
0-based from the first file; a gap in the numbering is an error that names the missing frames
(never a silently shorter shot).

Routes (all inside PyAV's FFmpeg, no other package):

* DPX: FFmpeg's ``dpx`` encoder at ``gbrp10le`` (10-bit R'G'B', packed method A) and its decoder.
  FFmpeg writes only the generic header; we add the industry film and TV headers with the frame
  rate and the SMPTE timecode (offsets 1724, 1920, 1940 of SMPTE 268M), so the files say their own
  rate and timecode; reading takes both from there (else from the file number and ``fps``).
* OpenEXR: FFmpeg's ``exr`` encoder with ``format=half`` (16-bit float, uncompressed) and its
  decoder. We add the standard ``framesPerSecond`` and ``timeCode`` header attributes (and shift the
  line offset table), and read them back. The values are the plate's R'G'B' code values scaled to
  0..1 (display-referred, not linearised: no transfer conversion is made).

16-bit R'G'B' frames go into 10-bit DPX by the exact mapping of :mod:`.pixels` (a 10-bit DPX read
back at 16 bits and written again is bit-identical).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from s2v_toolkit.errors import MediaError, OutputError
from s2v_toolkit.media.container import check_readable
from s2v_toolkit.media.pixels import (
    ColourInfo,
    PlanarFrame,
    check_depth,
    convert_frame,
    frame_buffer,
    from_av,
    scale_from_16,
    scale_to_16,
    to_av,
    to_rgb_float,
)
from s2v_toolkit.media.timecode import frames_to_timecode, snap_rate, timecode_to_frames

SEQUENCE_EXTENSIONS = (".dpx", ".exr")
DEFAULT_SEQUENCE_FPS = Fraction(24)
_PATTERN = re.compile(r"%0?(\d*)d")
_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<num>\d+)(?P<ext>\.[A-Za-z]+)$")


def is_sequence_path(path: str | os.PathLike) -> bool:
    """A ``name.%07d.dpx`` pattern, or a folder holding DPX/EXR files."""
    p = Path(path)
    if p.suffix.lower() in SEQUENCE_EXTENSIONS and _PATTERN.search(p.name):
        return True
    try:
        return p.is_dir() and any(f.suffix.lower() in SEQUENCE_EXTENSIONS for f in p.iterdir())
    except OSError:
        return False


@dataclass
class ImageSequence:
    pattern: Path          # folder/name.%07d.dpx
    numbers: list[int]     # contiguous, ascending

    @property
    def first(self) -> int:
        return self.numbers[0]

    def file(self, index: int) -> Path:
        return Path(str(self.pattern) % (self.first + index))

    def __len__(self) -> int:
        return len(self.numbers)


def find_sequence(path: str | os.PathLike) -> ImageSequence:
    """The files of a sequence (pattern or folder); MediaError naming the gap if numbers are missing."""
    p = Path(path)
    if p.is_dir():
        groups: dict[tuple[str, int, str], list[int]] = {}
        for f in p.iterdir():
            m = _NUMBERED.match(f.name)
            if m and m["ext"].lower() in SEQUENCE_EXTENSIONS:
                groups.setdefault((m["stem"], len(m["num"]), m["ext"]), []).append(int(m["num"]))
        if not groups:
            raise MediaError(p, "holds no numbered .dpx or .exr files")
        if len(groups) > 1:
            names = ", ".join(f"{s}{'#' * w}{e}" for s, w, e in sorted(groups))
            raise MediaError(p, f"holds {len(groups)} image sequences ({names}): name one as name.%07d.ext")
        (stem, width, ext), numbers = next(iter(groups.items()))
        pattern = p / f"{stem}%0{width}d{ext}"
    else:
        m = _PATTERN.search(p.name)
        if not m:
            raise MediaError(p, "is not an image sequence pattern (expected e.g. plate.%07d.dpx)")
        width = int(m.group(1) or 0)
        regex = re.compile("^" + re.escape(p.name[:m.start()]) + (rf"(\d{{{width}}})" if width else r"(\d+)")
                           + re.escape(p.name[m.end():]) + "$")
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise MediaError(p, "folder not found")
        numbers = [int(r.group(1)) for f in folder.iterdir() if (r := regex.match(f.name))]
        if not numbers:
            raise MediaError(p, "no file of the sequence was found")
        pattern = p
    numbers = sorted(set(numbers))
    expected = numbers[-1] - numbers[0] + 1
    if len(numbers) != expected:
        have = set(numbers)
        gaps, start = [], None
        for n in range(numbers[0], numbers[-1] + 2):
            if n not in have and n <= numbers[-1]:
                start = n if start is None else start
            elif start is not None:
                gaps.append(f"{start}-{n - 1}" if n - 1 > start else f"{start}")
                start = None
        raise MediaError(pattern, f"frames {', '.join(gaps)} are missing from the sequence "
                                  f"({numbers[0]}-{numbers[-1]}): a sequence must be contiguous")
    return ImageSequence(pattern, numbers)


# -------------------------------------------------------------------------------------------------
# DPX industry headers: frame rate and timecode
# -------------------------------------------------------------------------------------------------
_GENERIC = 1664          # FFmpeg writes the generic file + image + orientation headers only
_INDUSTRY = 384          # film (256) + TV (128) headers
_UNDEFINED_U32 = 0xFFFFFFFF


def _bcd_timecode(text: str) -> int:
    digits = [int(c) for c in text if c.isdigit()]
    value = 0
    for d in digits:
        value = (value << 4) | d
    return value


def _timecode_from_bcd(value: int, drop: bool = False) -> str:
    digits = f"{value:08x}"
    sep = ";" if drop else ":"
    return f"{digits[0:2]}:{digits[2:4]}:{digits[4:6]}{sep}{digits[6:8]}"


def add_dpx_timing(data: bytes, fps: Fraction, timecode: str | None) -> bytes:
    """A DPX file from FFmpeg (generic header only) with film and TV headers carrying rate and timecode."""
    magic = data[:4]
    if magic not in (b"SDPX", b"XPDS"):
        raise ValueError("not a DPX file")
    e = ">" if magic == b"SDPX" else "<"
    offset = struct.unpack(e + "I", data[4:8])[0]
    if offset != _GENERIC:
        return data  # already has industry headers (or an unknown layout): leave it alone
    film = bytearray(b"\xff" * 256)
    film[0:2] = b"\x00\x00"
    struct.pack_into(e + "f", film, 1724 - _GENERIC, float(fps))
    tv = bytearray(b"\xff" * 128)
    tc = _bcd_timecode(timecode) if timecode else _UNDEFINED_U32
    struct.pack_into(e + "I", tv, 0, tc)                     # 1920: time code
    struct.pack_into(e + "I", tv, 4, 0)                      # 1924: user bits
    struct.pack_into(e + "f", tv, 1940 - 1920, float(fps))   # 1940: frame rate
    header = bytearray(data[:_GENERIC])
    new_offset = _GENERIC + _INDUSTRY
    struct.pack_into(e + "I", header, 4, new_offset)                         # image data offset
    struct.pack_into(e + "I", header, 16, len(data) + _INDUSTRY)             # file size
    struct.pack_into(e + "I", header, 28, _INDUSTRY)                         # industry header size
    struct.pack_into(e + "I", header, 808, new_offset)                       # element 1 data offset
    return bytes(header) + bytes(film) + bytes(tv) + data[_GENERIC:]


def read_dpx_timing(path: str | os.PathLike) -> tuple[Fraction | None, str | None]:
    """(frame rate, timecode) from a DPX file's film / TV headers, where they are set."""
    with open(path, "rb") as fh:
        head = fh.read(2048)
    if len(head) < 1948 or head[:4] not in (b"SDPX", b"XPDS"):
        return None, None
    e = ">" if head[:4] == b"SDPX" else "<"
    offset = struct.unpack(e + "I", head[4:8])[0]
    if offset < 2048:
        return None, None
    fps = None
    for at in (1940, 1724):
        rate = struct.unpack(e + "f", head[at:at + 4])[0]
        if np.isfinite(rate) and 1.0 <= rate <= 1000.0:
            fps = snap_rate(Fraction(rate).limit_denominator(1001))
            break
    tc_raw = struct.unpack(e + "I", head[1920:1924])[0]
    tc = None
    if tc_raw != _UNDEFINED_U32 and all(int(c, 16) < 10 for c in f"{tc_raw:08x}"):
        tc = _timecode_from_bcd(tc_raw)
    return fps, tc


# -------------------------------------------------------------------------------------------------
# EXR header attributes: framesPerSecond and timeCode
# -------------------------------------------------------------------------------------------------
def _exr_attributes(data: bytes) -> tuple[dict[str, tuple[str, bytes]], int]:
    """{name: (type, value bytes)} of an EXR header, and the offset of its terminating null byte."""
    if data[:4] != b"\x76\x2f\x31\x01":
        raise ValueError("not an OpenEXR file")
    attrs, i = {}, 8
    while data[i] != 0:
        n = data.index(b"\0", i)
        t = data.index(b"\0", n + 1)
        size = struct.unpack("<i", data[t + 1:t + 5])[0]
        attrs[data[i:n].decode()] = (data[n + 1:t].decode(), data[t + 5:t + 5 + size])
        i = t + 5 + size
    return attrs, i


def add_exr_timing(data: bytes, fps: Fraction, timecode: str | None) -> bytes:
    """An uncompressed scan-line EXR from FFmpeg with ``framesPerSecond`` and ``timeCode`` attributes."""
    attrs, end = _exr_attributes(data)
    if "framesPerSecond" in attrs:
        return data
    extra = b"framesPerSecond\0rational\0" + struct.pack("<iiI", 8, fps.numerator, fps.denominator)
    if timecode:
        extra += b"timeCode\0timecode\0" + struct.pack("<iII", 8, _bcd_timecode(timecode), 0)
    x0, y0, x1, y1 = struct.unpack("<iiii", attrs["dataWindow"][1])
    lines_per_chunk = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32}[attrs["compression"][1][0]]
    chunks = -(-(y1 - y0 + 1) // lines_per_chunk)
    table_at = end + 1
    offsets = np.frombuffer(data, "<u8", chunks, table_at) + len(extra)
    return data[:end] + extra + b"\0" + offsets.astype("<u8").tobytes() + data[table_at + 8 * chunks:]


def read_exr_timing(path: str | os.PathLike) -> tuple[Fraction | None, str | None]:
    """(frame rate, timecode) from an EXR header's ``framesPerSecond`` / ``timeCode``, where set."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    try:
        attrs, _ = _exr_attributes(head)
    except (ValueError, IndexError, struct.error):
        return None, None
    fps = tc = None
    if "framesPerSecond" in attrs:
        num, den = struct.unpack("<iI", attrs["framesPerSecond"][1][:8])
        if num > 0 and den > 0:
            fps = snap_rate(Fraction(num, den))
    if "timeCode" in attrs:
        raw = struct.unpack("<I", attrs["timeCode"][1][:4])[0] & 0x3F7F7F3F  # drop the flag bits
        tc = _timecode_from_bcd(raw)
    return fps, tc


# -------------------------------------------------------------------------------------------------
# Reading
# -------------------------------------------------------------------------------------------------
def _decode_image(path: Path) -> av.VideoFrame:
    check_readable(path)
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            for frame in container.decode(video=0):
                return frame
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"cannot decode the image: {exc.strerror or exc}") from None
    raise MediaError(path, "holds no image")


def probe_sequence(path: str | os.PathLike, fps: Fraction | int | str | None = None):
    """:class:`MediaInfo` of an image sequence (rate: ``fps``, else the file's header, else 24)."""
    from s2v_toolkit.media.pixels import bit_depth
    from s2v_toolkit.media.probe import MediaInfo, VideoInfo

    seq = find_sequence(path)
    first = seq.file(0)
    frame = _decode_image(first)
    header_fps, header_tc = (read_dpx_timing if first.suffix.lower() == ".dpx" else read_exr_timing)(first)
    rate = snap_rate(Fraction(fps)) if fps is not None else (header_fps or DEFAULT_SEQUENCE_FPS)
    start_frame, drop = seq.first, False
    if header_tc:
        try:
            start_frame = timecode_to_frames(header_tc, rate)
        except ValueError:
            start_frame = seq.first
    tc = frames_to_timecode(start_frame, rate)
    planar = from_av(frame)
    video = VideoInfo(index=0, codec=first.suffix.lower().lstrip("."), width=frame.width, height=frame.height,
                      fps=rate, frame_count=len(seq), start_timecode=tc, drop_frame=drop, start_frame=start_frame,
                      vfr=False, pix_fmt=frame.format.name, duration=float(len(seq) / rate),
                      declared_frames=len(seq), source_frames=len(seq))
    video.bit_depth = 16 if "f16" in frame.format.name else bit_depth(planar.pix_fmt)
    video.colour = ColourInfo.from_av(frame).to_dict()
    return MediaInfo(path=str(seq.pattern), format_name="image2", duration=video.duration, video=video, audio=[])


class SequenceReader:
    """Frames of an image sequence, with :class:`VideoReader`'s interface (``read``, ``read_mapped``).

    A sequence is constant-rate by construction: file ``k`` is source frame ``k`` at ``k / rate``.
    ``fps`` other than the sequence's rate places the files on that grid by time, as a video's reader
    does (``index``, ``frame_map`` and ``last_map`` as in :class:`VideoReader`).
    """

    def __init__(self, path: str | os.PathLike, info=None, fps: Fraction | None = None, warn_vfr: bool = True,
                 depth: int | str = 8):
        from s2v_toolkit.media.frame_index import FrameIndex, place_on_grid

        self.path = os.fspath(path)
        self.depth = check_depth(depth)
        self.display_rotation, self.display_matrix = 0, None  # as VideoReader's: image files carry none
        self.sequence = find_sequence(path)
        self.info = info or probe_sequence(path)
        rate = self.info.video.fps
        n = len(self.sequence)
        tb = 1 / Fraction(rate)
        grid = Fraction(fps) if fps is not None else Fraction(rate)
        source_pts = list(range(n))
        slots, dropped, jitter = (place_on_grid(source_pts, 0, grid, tb, end_pts=n) if grid != rate
                                  else (list(range(n)), [], 0.0))
        self.index = FrameIndex(time_base=tb, fps=grid, start_pts=0, source_pts=source_pts, slot_source=slots,
                                dropped=dropped, declared_frames=n, max_jitter=jitter)
        self.last_map = None
        self.frame_map = None

    def __enter__(self) -> "SequenceReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        pass

    @property
    def frame_count(self) -> int:
        return self.index.frame_count

    def read_mapped(self, start: int, count: int):
        """Grid frames ``start`` .. ``start+count-1`` at ``depth`` and their FrameMap (as VideoReader's)."""
        from s2v_toolkit.media.video_reader import FrameMap, note_read

        if count <= 0:
            raise ValueError("count must be positive")
        end = start + count
        if start < 0 or end > self.frame_count:
            raise MediaError(self.path, f"frames {start}-{end - 1} are outside the sequence "
                                        f"(it has frames 0-{self.frame_count - 1})")
        v = self.info.video
        out = frame_buffer(count, v.height, v.width, self.depth)
        slots = self.index.slot_source[start:end]
        fmap = FrameMap(self.path, start)
        for i, k in enumerate(slots):
            out[i] = convert_frame(_decode_image(self.sequence.file(k)), self.depth)
            dup = (i and slots[i - 1] == k) or (i == 0 and start and self.index.slot_source[start - 1] == k)
            fmap.source.append(k)
            fmap.times.append(float(self.index.seconds(self.index.source_pts[k])))
            fmap.kinds.append("duplicated" if dup else "exact")
        fmap.dropped = [d for d in self.index.dropped if self.index.slot_of_source(d) in range(start, end)]
        note_read(self, fmap)
        return out, fmap

    def read(self, start: int, count: int):
        return self.read_mapped(start, count)[0]

    def frames(self, start: int, count: int, chunk: int = 16):
        """Grid frames ``start`` .. ``start+count-1`` one by one (:meth:`VideoReader.frames`)."""
        for first in range(start, start + count, chunk):
            yield from self.read(first, min(chunk, start + count - first))

    def __iter__(self):
        return self.frames(0, self.frame_count)


# -------------------------------------------------------------------------------------------------
# Writing
# -------------------------------------------------------------------------------------------------
def sequence_pattern(path: str | os.PathLike, digits: int = 7) -> Path:
    """``plate.dpx`` -> ``plate.%07d.dpx``; a pattern stays as it is."""
    p = Path(path)
    if _PATTERN.search(p.name):
        return p
    return p.with_name(f"{p.stem}.%0{digits}d{p.suffix}")


def _gbr10(item) -> PlanarFrame:
    """A frame as 10-bit planar R'G'B' (exact for 16-bit and 10-bit R'G'B' input)."""
    if isinstance(item, PlanarFrame):
        if item.pix_fmt == "gbrp10le":
            return item
        if item.kind == "gbr":
            g, b, r = (scale_from_16(scale_to_16(p, item.bits), 10) for p in item.planes)
            tags = ColourInfo(item.colour.primaries, item.colour.transfer, "gbr", "pc")
            return PlanarFrame("gbrp10le", [g, b, r], tags)
        rgb16 = np.rint(to_rgb_float(item) * 65535.0).astype(np.uint16)
        colour = item.colour
    else:
        rgb = np.asarray(item)
        rgb16 = rgb if rgb.dtype == np.uint16 else scale_to_16(rgb.astype(np.uint8), 8)
        colour = ColourInfo()
    r, g, b = (scale_from_16(rgb16[..., i], 10) for i in range(3))
    return PlanarFrame("gbrp10le", [g, b, r], ColourInfo(colour.primaries, colour.transfer, "gbr", "pc"))


def _float_rgb(item) -> np.ndarray:
    if isinstance(item, PlanarFrame):
        return to_rgb_float(item)
    rgb = np.asarray(item)
    top = 65535.0 if rgb.dtype == np.uint16 else 255.0
    return rgb.astype(np.float32) / top


def _encode_still(codec: str, frame: av.VideoFrame, options: dict) -> bytes:
    cc = av.CodecContext.create(codec, "w")
    cc.width, cc.height, cc.pix_fmt = frame.width, frame.height, frame.format.name
    cc.time_base = Fraction(1, 24)
    cc.options = dict(options)
    packets = cc.encode(frame) + cc.encode(None)
    return b"".join(bytes(p) for p in packets)


def write_sequence(path: str | os.PathLike, frames: Iterable, fps: Fraction | int | str, preset: str = "dpx",
                   start_timecode: str | None = None, overwrite: bool = False, audio: np.ndarray | None = None,
                   audio_rate: int = 48000, progress: bool = False, frame_count: int | None = None) -> Path:
    """Write frames as a DPX (10-bit) or EXR (half) sequence numbered by timecode; returns the pattern.

    The files are written into a temporary folder beside the target and moved into place only when
    every frame is encoded, so a failure leaves no partial sequence. ``audio`` goes to
    ``<name>.wav`` (24-bit PCM, exactly as long as the frames) next to the sequence.
    """
    pattern = sequence_pattern(path)
    ext = pattern.suffix.lower()
    if preset not in ("dpx", "exr") or ext != f".{preset}":
        raise OutputError(pattern, f"preset {preset} cannot write {ext} files (dpx -> .dpx, exr -> .exr)")
    fps = snap_rate(Fraction(fps))
    start = 0
    tc = None
    if start_timecode:
        try:
            start = timecode_to_frames(start_timecode, fps)
            tc = frames_to_timecode(start, fps, drop_frame=";" in start_timecode)
        except ValueError as exc:
            raise OutputError(pattern, f"bad start timecode: {exc}") from None
    folder = pattern.parent if str(pattern.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(folder, "output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(folder, "output folder is read-only")
    tmp = Path(tempfile.mkdtemp(prefix=".s2vt-seq-", dir=folder))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frame_count, unit="frame", desc=f"writing {pattern.name}", leave=False)
    written: list[Path] = []
    try:
        n = 0
        for item in frames:
            number = start + n
            name = Path(str(pattern) % number).name
            if (folder / name).exists() and not overwrite:
                raise OutputError(folder / name, "already exists (choose another name or pass --overwrite)")
            if preset == "dpx":
                frame = to_av(_gbr10(item))
                tc_n = frames_to_timecode(number, fps, drop_frame=bool(tc and ";" in tc)) if tc else None
                data = add_dpx_timing(_encode_still("dpx", frame, {}), fps, tc_n)
            else:
                rgb = np.clip(_float_rgb(item), 0.0, None)
                h, w = rgb.shape[:2]
                frame = av.VideoFrame(w, h, "gbrpf32le")
                for plane, ch in zip(frame.planes, (1, 2, 0)):  # G, B, R
                    dst = np.frombuffer(memoryview(plane).cast("B"), np.float32)
                    dst = dst.reshape(plane.height, plane.line_size // 4)[:, :w]
                    dst[...] = rgb[..., ch]
                tc_n = frames_to_timecode(number, fps, drop_frame=bool(tc and ";" in tc)) if tc else None
                data = add_exr_timing(_encode_still("exr", frame, {"format": "half"}), fps, tc_n)
            (tmp / name).write_bytes(data)
            written.append(tmp / name)
            n += 1
            if bar:
                bar.update(1)
        if n == 0:
            raise OutputError(pattern, "no frames to write")
        if audio is not None:
            import soundfile as sf

            a = np.asarray(audio, np.float32)
            a = a[None] if a.ndim == 1 else a
            want = int(round(Fraction(n) / fps * audio_rate))
            out = np.zeros((a.shape[0], want), np.float32)
            out[:, :min(want, a.shape[1])] = a[:, :want]
            wav = pattern.with_name(pattern.name.split("%")[0].rstrip("._-") + ".wav")
            if wav.exists() and not overwrite:
                raise OutputError(wav, "already exists (choose another name or pass --overwrite)")
            sf.write(tmp / wav.name, out.T, audio_rate, subtype="PCM_24")
            written.append(tmp / wav.name)
        for f in written:
            os.replace(f, folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if bar:
            bar.close()
    return pattern
