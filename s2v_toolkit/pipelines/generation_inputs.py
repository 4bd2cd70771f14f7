"""Inputs of a generation, checked before any model is loaded: settings, reference image, audio, size.

Size rule (``--size``): the value is a *maximum area*, as the official ``--size 832*480``; the output
orientation follows the reference image. With ``scale = sqrt(area / (h * w))`` of the reference
(h x w), the output is ``floor(h * scale / 64) * 64`` by ``floor(w * scale / 64) * 64``
(480*832 -> 448x832, 720*1280 -> 704x1280). The reference is resized (bicubic, antialiased) to cover
that size and centre-cropped to it.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from s2v_toolkit.errors import ConfigError, MediaError

__all__ = [
    "DEFAULT_NEGATIVE_PROMPT",
    "RETIME_METHODS",
    "GenerationSettings",
    "ReferenceImage",
    "SIZE_DIVISOR",
    "DriveAudio",
    "PoseVideo",
    "fit_pixels",
    "fit_size",
    "load_drive_audio",
    "load_pose_video",
    "load_reference_image",
    "parse_fps",
    "parse_max_area",
]

#: Wan2.x's default negative prompt (the unconditional branch of classifier-free guidance).
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
SIZE_DIVISOR = 64
#: largest accepted area: the 720p training area with a margin (more is outside what the model knows)
MAX_AREA = 1280 * 768
#: ``native``: generate on the output frame grid (audio features sampled at the output rate);
#: ``blend``/``nearest``: generate at the model's 16 fps and retime (linear blend / nearest frame).
RETIME_METHODS = ("native", "blend", "nearest")
#: peak below this (about -80 dBFS) counts as silence
SILENCE_PEAK = 1e-4
AUDIO_RATE = 16000


def parse_fps(value: str | int | float | Fraction) -> Fraction:
    """``24000/1001``, ``23.976``, ``25`` -> exact Fraction (23.976 and 29.97 snap to the NTSC rates)."""
    try:
        if isinstance(value, str) and "/" in value:
            fps = Fraction(value.strip())
        else:
            fps = Fraction(str(value).strip()) if not isinstance(value, Fraction) else value
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--fps {value!r}: not a frame rate (use e.g. 25, 24000/1001, 29.97)") from None
    for ntsc in (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)):
        if fps != ntsc and abs(fps - ntsc) < Fraction(1, 100):
            fps = ntsc
    if not Fraction(1) <= fps <= Fraction(120):
        raise ConfigError(f"--fps {value}: frame rate must be between 1 and 120")
    return fps


def parse_max_area(size: str | int) -> int:
    """``448x832`` / ``832*480`` / an integer area -> maximum area in pixels."""
    text = str(size).strip().lower()
    try:
        for sep in ("x", "*"):
            if sep in text:
                a, b = (int(p) for p in text.split(sep))
                area = a * b
                break
        else:
            area = int(text)
    except ValueError:
        raise ConfigError(f"--size {size!r}: expected HEIGHTxWIDTH (e.g. 448x832) or an area") from None
    if area < SIZE_DIVISOR * SIZE_DIVISOR:
        raise ConfigError(f"--size {size}: unsupported size, the area must be at least "
                          f"{SIZE_DIVISOR}x{SIZE_DIVISOR}")
    if area > MAX_AREA:
        raise ConfigError(f"--size {size}: unsupported size, the area {area} is above the largest "
                          f"supported ({MAX_AREA} = 1280x768)")
    return area


def fit_size(height: int, width: int, max_area: int, divisor: int = SIZE_DIVISOR) -> tuple[int, int]:
    """Output (H, W) for a ``height x width`` reference under ``max_area`` (module docstring)."""
    scale = math.sqrt(max_area / (height * width))
    out_h = int(height * scale // divisor) * divisor
    out_w = int(width * scale // divisor) * divisor
    if out_h < divisor or out_w < divisor:
        raise ConfigError(f"unsupported size: a {width}x{height} (WxH) reference under the area {max_area} "
                          f"would be {out_w}x{out_h}, a side under {divisor} px (raise --size)")
    return out_h, out_w


@dataclass
class GenerationSettings:
    """Everything that decides what a generation produces (written to the sidecar)."""

    prompt: str = ""
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    steps: int = 40
    guidance: float = 4.5
    seed: int | None = None  # None: a random seed, chosen and recorded at the start
    fps: Fraction = Fraction(16)  # output frame rate
    size: str = "448x832"  # maximum area
    scheduler: str = "unipc"
    shift: float = 3.0
    infer_frames: int = 80  # frames per clip
    retime: str = "native"
    cfg_batch: str = "auto"  # "auto", "on", "off"
    boundary: float | None = None  # MoE: high-noise expert for t >= boundary * 1000
    guidance2: float | None = None  # guidance of the second (low-noise) expert; default: guidance
    start_from_reference: bool = False
    aligned: bool = True  # audio/video aligned plan (False: the official 3-frame offset)
    max_audio_seconds: float = 600.0
    offload: bool = True  # park the inactive expert on the CPU (GPU only)

    def __post_init__(self):
        self.fps = parse_fps(self.fps)

    def validate(self) -> None:
        """Raise ConfigError for a bad value (before anything heavy runs)."""
        from s2v_toolkit.models import SCHEDULER_NAMES

        problems = []
        if self.steps < 1:
            problems.append(f"steps must be >= 1 (got {self.steps})")
        if self.guidance < 0 or (self.guidance2 is not None and self.guidance2 < 0):
            problems.append("guidance must be >= 0")
        if self.scheduler not in SCHEDULER_NAMES:
            problems.append(f"scheduler {self.scheduler!r} is not one of {', '.join(SCHEDULER_NAMES)}")
        if not self.shift > 0:
            problems.append(f"shift must be > 0 (got {self.shift})")
        if self.infer_frames < 4 or self.infer_frames % 4:
            problems.append(f"frames per clip must be a positive multiple of 4 (got {self.infer_frames})")
        if self.retime not in RETIME_METHODS:
            problems.append(f"retime {self.retime!r} is not one of {', '.join(RETIME_METHODS)}")
        if self.cfg_batch not in ("auto", "on", "off"):
            problems.append(f"cfg_batch {self.cfg_batch!r} is not auto, on or off")
        if self.boundary is not None and not 0 < self.boundary < 1:
            problems.append(f"boundary {self.boundary} must be a fraction in (0, 1)")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            problems.append(f"seed {self.seed} must be in 0 .. 2**63-1")
        if not self.max_audio_seconds > 0:
            problems.append("max_audio_seconds must be > 0")
        if problems:
            raise ConfigError("generation settings: " + "; ".join(problems))
        parse_max_area(self.size)

    def resolved_seed(self) -> int:
        """The seed to use: the given one, or a fresh random one (stored back, for the sidecar)."""
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        return self.seed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GenerationSettings":
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"generation settings: unknown keys {unknown}")
        return cls(**dict(data))


# ---------------------------------------------------------------------------------------------
# reference image
# ---------------------------------------------------------------------------------------------
@dataclass
class ReferenceImage:
    """The reference as decoded (uint8 RGB, H x W x 3) and its path."""

    path: Path
    pixels: np.ndarray

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    def fitted(self, out_h: int, out_w: int):
        """``[1, 3, 1, out_h, out_w]`` float32 torch tensor in [-1, 1]: resized to cover, centre-cropped."""
        return fit_pixels(self.pixels[None], out_h, out_w)


def fit_pixels(pixels: np.ndarray, out_h: int, out_w: int):
    """uint8 RGB ``[T, H, W, 3]`` -> ``[1, 3, T, out_h, out_w]`` float32 in [-1, 1]: resized to cover
    (bicubic, antialiased) and centre-cropped, the reference's rule."""
    import torch
    import torch.nn.functional as F

    height, width = pixels.shape[1:3]
    img = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    scale = max(out_h / height, out_w / width)
    cover_h = max(out_h, round(height * scale))
    cover_w = max(out_w, round(width * scale))
    if (cover_h, cover_w) != (height, width):
        img = F.interpolate(img, size=(cover_h, cover_w), mode="bicubic", align_corners=False,
                            antialias=True).clamp_(-1.0, 1.0)
    top, left = (cover_h - out_h) // 2, (cover_w - out_w) // 2
    return img[:, :, top:top + out_h, left:left + out_w].permute(1, 0, 2, 3)[None].contiguous()


MAX_IMAGE_PIXELS = 50_000_000  # a reference image is scaled to at most ~1 MP; larger ones only cost memory


def check_image_size(path: str | os.PathLike, limit: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse an image whose header says it has more than ``limit`` pixels (decoding a 12000x12000 PNG
    of 140 KB would take gigabytes). Reads the header only; formats Pillow does not know pass through to
    the decoder's own check."""
    try:
        from PIL import Image
    except ImportError:
        return
    try:
        with Image.open(path) as im:  # lazy: reads the header, decodes nothing
            w, h = im.size
    except Exception:  # noqa: BLE001 - not an image Pillow knows (e.g. a video): the decoder checks it
        return
    if w * h > limit:
        raise MediaError(path, f"image is {w}x{h}, more than {limit / 1e6:g} megapixels; scale it down first")


def load_reference_image(path: str | os.PathLike) -> ReferenceImage:
    """Decode the first frame of an image (PNG, JPEG, TIFF...) or video as RGB; MediaError if none."""
    import av

    from s2v_toolkit.safety import note_input

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "reference image not found")
    note_input(path)
    check_image_size(path)  # from the header, before anything is decoded
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path, "no image in this file (no video/image stream)")
            vs = container.streams.video[0]
            if (vs.codec_context.width or 0) * (vs.codec_context.height or 0) > MAX_IMAGE_PIXELS:
                raise MediaError(path, f"image is {vs.codec_context.width}x{vs.codec_context.height}, more than "
                                       f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels; scale it down first")
            for frame in container.decode(video=0):
                pixels = frame.to_ndarray(format="rgb24")
                break
            else:
                raise MediaError(path, "reference image has no decodable pixels")
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(path, f"reference image has no decodable pixels ({type(exc).__name__})") from None
    if pixels.size == 0 or min(pixels.shape[:2]) < 2:
        raise MediaError(path, "reference image has no decodable pixels")
    return ReferenceImage(path=path, pixels=pixels)


# ---------------------------------------------------------------------------------------------
# audio
# ---------------------------------------------------------------------------------------------
@dataclass
class DriveAudio:
    """The line that drives the mouth: 16 kHz mono for the audio encoder, and its duration."""

    path: Path
    waveform: np.ndarray  # float32, 16 kHz mono, starting at output frame 0
    sample_rate: int = AUDIO_RATE

    @property
    def duration(self) -> Fraction:
        return Fraction(len(self.waveform), self.sample_rate)


def check_audible(path: str | os.PathLike, waveform: np.ndarray) -> None:
    """The one rule for a line that drives a mouth (generate, redub, render): finite, and not silent."""
    if waveform.size == 0:
        raise MediaError(path, "audio is empty (0 samples)")
    peak = float(np.max(np.abs(waveform)))
    if not np.isfinite(peak):
        raise MediaError(path, "audio contains non-finite samples")
    if peak < SILENCE_PEAK:
        db = 20 * math.log10(peak) if peak > 0 else float("-inf")
        raise MediaError(path, f"audio is silent (peak {db:.0f} dBFS): nothing to drive the mouth")


def load_drive_audio(path: str | os.PathLike, max_seconds: float = 600.0) -> DriveAudio:
    """Read and check the driving audio: MediaError if missing, undecodable, empty, silent or too long."""
    from s2v_toolkit.media import probe, read_audio

    from s2v_toolkit.safety import note_input

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "audio file not found")
    note_input(path)
    info = probe(path)
    if not info.audio:
        raise MediaError(path, "no audio stream")
    duration = max(a.duration for a in info.audio[:1]) or info.duration
    if duration and duration > max_seconds:
        raise MediaError(path, f"audio is {duration:.1f} s long, more than the maximum {max_seconds:g} s "
                               "(raise --max-audio-seconds to allow it)")
    waveform = read_audio(path, sample_rate=AUDIO_RATE)
    if waveform.size == 0:
        raise MediaError(path, "audio is empty (0 samples)")
    if len(waveform) / AUDIO_RATE > max_seconds:
        raise MediaError(path, f"audio is {len(waveform) / AUDIO_RATE:.1f} s long, more than the maximum "
                               f"{max_seconds:g} s (raise --max-audio-seconds to allow it)")
    check_audible(path, waveform)
    return DriveAudio(path=path, waveform=np.ascontiguousarray(waveform, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# pose video
# ---------------------------------------------------------------------------------------------
@dataclass
class PoseVideo:
    """A pose (skeleton) video that drives the body; frame k of the generation grid (at ``grid_fps``)
    takes the pose frame nearest its time, the last pose frame past the video's end."""

    path: Path
    fps: Fraction
    frame_count: int

    def indices(self, grid_frames: list[int], grid_fps: Fraction) -> list[int]:
        """Pose frame index for each generation-grid frame (frames before 0 take pose frame 0)."""
        return [min(self.frame_count - 1, round(Fraction(max(d, 0)) * self.fps / Fraction(grid_fps)))
                for d in grid_frames]

    def frames(self, grid_frames: list[int], grid_fps: Fraction) -> np.ndarray:
        """uint8 ``[len(grid_frames), H, W, 3]`` pose frames for those grid frames."""
        from s2v_toolkit.media import read_frames

        wanted = self.indices(grid_frames, grid_fps)
        lo, hi = min(wanted), max(wanted)
        block = read_frames(self.path, lo, hi - lo + 1)
        return block[[i - lo for i in wanted]]


def load_pose_video(path: str | os.PathLike) -> PoseVideo:
    """Check a pose video (exists, has decodable video); MediaError otherwise."""
    from s2v_toolkit.media import probe

    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "pose video not found")
    info = probe(path)
    if info.video is None or info.video.frame_count < 1:
        raise MediaError(path, "pose video has no video frames")
    return PoseVideo(path=path, fps=Fraction(info.video.fps), frame_count=int(info.video.frame_count))
