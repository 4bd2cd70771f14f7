"""Inputs of a generation, checked before any model is loaded: settings, reference image, audio, size.

Size rule (``--size``): the value is a *maximum area*, as the official ``--size 704*1280``; the output
orientation follows the reference image. The rule is the official S2V one (``WanS2V.get_size_less_than_area``
in Wan2.2 ``wan/speech2video.py``): for a reference larger than the area, try scales from
``sqrt(area / (h * w))`` downwards in 100 even steps towards the scale at which rounding *up* to multiples
of 64 can still fit; the first ``(ceil64(int(h * s)), ceil64(int(w * s)))`` within the area wins
(720x1280 at 704*1280 -> 704x1280; 480x832 at 448*832 -> 448x832). A reference within the area keeps its
scale and is only rounded up to multiples of 64 (a 500x500 reference gives 512x512, it is not blown up to
the area). If no scale fits, the official fallback (sides floored to 64 along the aspect ratio) applies.

Reference fit (``reference_fit``): ``cover`` (default) resizes the reference (bicubic, antialiased) to
cover the output size and centre-crops it: no black borders. ``official`` is the official transform
(torchvision ``Resize(min(H, W))`` + ``CenterCrop((H, W))`` on the PIL image, bilinear): when rounding
up made the output wider than the resized reference (720x1280 -> 704x1251 resized for a 704x1280
output) the official pads it with black; choose it to reproduce the official output exactly.
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
    "OFFICIAL_REFERENCE_MOTION_FRAMES",
    "REFERENCE_FITS",
    "S2V_NEGATIVE_PROMPT",
    "T2V_NEGATIVE_PROMPT",
    "NOISE_DEVICES",
    "RETIME_METHODS",
    "GenerationSettings",
    "ReferenceImage",
    "SIZE_DIVISOR",
    "DriveAudio",
    "PoseVideo",
    "fit_pixels",
    "fit_pixels_official",
    "fit_size",
    "load_drive_audio",
    "load_pose_video",
    "load_reference_image",
    "parse_fps",
    "parse_max_area",
]

#: The S2V config's negative prompt (``sample_neg_prompt`` of Wan2.2 ``wan/configs/wan_s2v_14B.py``),
#: used by the official pipeline when none is given: the default of the unconditional branch.
S2V_NEGATIVE_PROMPT = (
    "画面模糊，最差质量，画面模糊，细节模糊不清，情绪激动剧烈，手快速抖动，字幕，丑陋的，残缺的，多余的手指，"
    "画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
    "三条腿，背景人很多，倒着走"
)
DEFAULT_NEGATIVE_PROMPT = S2V_NEGATIVE_PROMPT
#: Wan's text-to-video negative prompt (this toolkit's default before it followed the S2V config).
T2V_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
SIZE_DIVISOR = 64
#: ``--start-from-reference``: the official ``init_first_frame`` writes the reference into the last 6
#: of the 73 motion frames (``motion_latents[:, :, -6:] = ref_pixel_values``)
OFFICIAL_REFERENCE_MOTION_FRAMES = 6
#: ``cover`` (no black borders) or ``official`` (the official resize + centre crop, black padding)
REFERENCE_FITS = ("cover", "official")
#: where per-clip noise is drawn: ``model`` = on the compute device in the DiT's dtype (official: bf16
#: on the GPU); ``cpu`` = float32 on the CPU, the same noise for a seed on every machine
NOISE_DEVICES = ("model", "cpu")
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
    """Output (H, W) for a ``height x width`` reference under ``max_area``: the official S2V rule
    (module docstring; same arithmetic, float64, as ``get_size_less_than_area``)."""
    if height * width <= max_area:
        min_scale, max_scale = 0.1, 1.0
    else:
        d = divisor - 1
        a, b, c = height * width, d * (height + width), d ** 2 - max_area
        # (the official bound, its "2*a*c" included: it only sets where the 100 tries end)
        min_scale = (-b + math.sqrt(b ** 2 - 2 * a * c)) / (2 * a)
        max_scale = math.sqrt(max_area / (height * width))
    for i in range(100):
        scale = max_scale - (max_scale - min_scale) * i / 100
        new_h, new_w = int(height * scale), int(width * scale)
        out_h = new_h + (divisor - new_h % divisor) % divisor
        out_w = new_w + (divisor - new_w % divisor) % divisor
        if out_h * out_w <= max_area:
            break
    else:  # the official fallback: floor along the aspect ratio, never above the reference
        aspect = width / height
        out_w = int((max_area * aspect) ** 0.5 // divisor * divisor)
        out_h = int((max_area / aspect) ** 0.5 // divisor * divisor)
        if out_w >= width or out_h >= height:
            out_w, out_h = int(width // divisor * divisor), int(height // divisor * divisor)
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
    reference_fit: str = "cover"  # "cover" (no borders) or "official" (the official resize + crop)
    noise_device: str = "model"  # "model" (official: compute device, DiT dtype) or "cpu" (portable)
    num_clips: int | None = None  # preview: only the first N clips (the official --num_clip)
    fit_last_clip: bool = False  # the last clip generates only the frames it keeps (multiple of 4)
    preset: str | None = None  # the named preset that set these values ("official", "few-step", ...)
    sampler_timesteps: list[int] | None = None  # explicit denoising timesteps (few-step LoRAs)
    cache: str | None = None  # step caching, e.g. "teacache:0.2" (None: every forward runs)
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
        if self.reference_fit not in REFERENCE_FITS:
            problems.append(f"reference_fit {self.reference_fit!r} is not one of {', '.join(REFERENCE_FITS)}")
        if self.noise_device not in NOISE_DEVICES:
            problems.append(f"noise_device {self.noise_device!r} is not one of {', '.join(NOISE_DEVICES)}")
        if self.num_clips is not None and self.num_clips < 1:
            problems.append(f"num_clips must be >= 1 (got {self.num_clips})")
        if self.sampler_timesteps is not None:
            ts = list(self.sampler_timesteps)
            if not ts or any(not 0 < t <= 1000 for t in ts) or any(a <= b for a, b in zip(ts, ts[1:])):
                problems.append(f"timesteps {ts} must be decreasing values in (0, 1000]")
            elif len(ts) != self.steps:
                problems.append(f"{len(ts)} timesteps given for {self.steps} steps")
        if self.cache is not None:
            from s2v_toolkit.models.step_cache import parse_cache

            try:
                parse_cache(self.cache)
            except ConfigError as exc:
                problems.append(str(exc))
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

    def fitted(self, out_h: int, out_w: int, mode: str = "cover"):
        """``[1, 3, 1, out_h, out_w]`` float32 torch tensor in [-1, 1]: resized to cover and centre-cropped
        (``cover``), or the official transform (``official``, see :func:`fit_pixels_official`)."""
        if mode == "official":
            return fit_pixels_official(self.pixels, out_h, out_w)
        return fit_pixels(self.pixels[None], out_h, out_w)


def fit_pixels_official(image: np.ndarray, out_h: int, out_w: int):
    """The official reference transform for uint8 RGB ``[H, W, 3]``: torchvision ``Resize(min(out_h,
    out_w))`` (the shorter side to that length, the longer ``int(len * long / short)``, PIL bilinear),
    ``CenterCrop((out_h, out_w))`` (zero padding where the image is smaller, crop offsets rounded half
    to even), ``ToTensor() * 2 - 1``. Returns ``[1, 3, 1, out_h, out_w]`` float32."""
    import torch
    from PIL import Image

    height, width = image.shape[:2]
    side = min(out_h, out_w)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = side, int(side * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    pil = Image.fromarray(np.ascontiguousarray(image))
    if (new_w, new_h) != (width, height):
        pil = pil.resize((new_w, new_h), Image.BILINEAR)
    arr = np.asarray(pil)
    h, w = arr.shape[:2]
    if out_w > w or out_h > h:
        left = (out_w - w) // 2 if out_w > w else 0
        top = (out_h - h) // 2 if out_h > h else 0
        right = (out_w - w + 1) // 2 if out_w > w else 0
        bottom = (out_h - h + 1) // 2 if out_h > h else 0
        arr = np.pad(arr, ((top, bottom), (left, right), (0, 0)))
        h, w = arr.shape[:2]
    top, left = int(round((h - out_h) / 2.0)), int(round((w - out_w) / 2.0))
    arr = arr[top:top + out_h, left:left + out_w]
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 255.0 * 2 - 1.0
    return x[:, None][None].contiguous()


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
        with av.open(str(path), metadata_errors="replace") as container:
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
