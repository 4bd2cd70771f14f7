"""Masked mouth-region re-dub of existing footage: new dialogue, same shot, only the lips change.

Steps (docs/redub.md has the method and every parameter):

1. **Timing** (:func:`place_line`): the shot keeps its frame count and rate; the line's audio starts
   at the line's record frame, silence elsewhere; the mouth is generated on the line's frames only.
2. **Crop space** (:mod:`.redub_crop`): the speaking face's aligned square crop per frame (size a
   multiple of 64), so the generator's cost depends on the crop, not the frame size.
3. **Masked generation** (:mod:`.redub_mask`, :mod:`.redub_sampler`): per clip of up to
   ``clip_frames`` frames, the original crop video is VAE-encoded after its ``motion_frames``
   preceding frames (the FramePack motion context: real footage, or the previous clip's result);
   the model generates inside the down-sampled, dilated mouth mask while the rest of the latent is
   the original re-noised to each step's level. The reference image is a crop of the shot.
4. **Paste back** (:func:`s2v_toolkit.faces.composite_crop`): the generated crop goes back into the
   frame through the inverse crop transform, inside the feathered mouth mask, with colour match.
   Every pixel outside that mask is the source pixel, bit for bit. Frames where the face is lost
   (or outside the line) pass through untouched and are reported.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from s2v_toolkit.errors import MediaError, OutputError, S2VError
from s2v_toolkit.faces import CompositeParams, MaskParams, OcclusionParams, composite_crop, mouth_mask_window
from s2v_toolkit.faces.mask import mask_bbox

from .redub_crop import FaceCropPlan, frame_runs, plan_face_crops
from .redub_mask import LatentBlendParams, latent_mask
from .generation_inputs import GenerationSettings
from .redub_sampler import (
    DEFAULT_REDUB_PROMPT,
    sample_masked_clip,
    to_frames,
    to_video_tensor,
    vae_chunked,
)

AUDIO_RATE = 16000      # the audio encoder's rate
OUTPUT_AUDIO_RATE = 48000
PLUMBING_NOTE = ("plumbing only: random-weight model (--model tiny); the mouth region is noise-like, "
                 "not a lip-sync")


class RedubError(S2VError):
    """A re-dub that cannot be done as asked (no face, line outside the shot, ...); one line."""


@dataclass(frozen=True)
class RedubSettings:
    crop_size: int = 512            # aligned face crop side (multiple of 64): the generator's frame size
    face_fraction: float = 0.5      # face width as a fraction of the crop side
    motion_frames: int = 73         # preceding frames given as motion context (1 + 4k; 73 = 19 latents)
    # the generator options of `s2vt generate` (steps, guidance, seed, scheduler, shift, prompts,
    # infer_frames = frames per clip, experts); size/fps/retime do not apply (crop size, shot rate)
    generation: GenerationSettings = field(default_factory=lambda: GenerationSettings(prompt=DEFAULT_REDUB_PROMPT))
    blend: LatentBlendParams = LatentBlendParams()
    mask: MaskParams = MaskParams()
    max_occluded: float = OcclusionParams.max_line_fraction  # skip a line with its mouth covered more often
    composite: CompositeParams = CompositeParams()

    def __post_init__(self) -> None:
        from s2v_toolkit.errors import ConfigError

        if self.crop_size % 64 or self.crop_size <= 0:
            raise ConfigError(f"--crop {self.crop_size}: must be a positive multiple of 64")
        if self.motion_frames < 1 or (self.motion_frames - 1) % 4:
            raise ConfigError(f"motion frames {self.motion_frames}: must be 1 + 4k (1, 5, ..., 73)")
        self.generation.validate()

    @property
    def clip_frames(self) -> int:
        return self.generation.infer_frames

    def to_dict(self) -> dict:
        d = asdict(self)
        d["generation"] = self.generation.to_dict()
        for k in ("fps", "size", "retime", "start_from_reference", "aligned", "max_audio_seconds",
                  "reference_fit", "noise_device", "num_clips"):
            d["generation"].pop(k, None)  # not used by the re-dub (shot rate, crop size)
        return d


@dataclass(frozen=True)
class LineTiming:
    """Frame numbers (0-based from the file's first frame, inclusive) of the shot and the line."""

    shot_start: int
    shot_end: int
    line_start: int
    line_end: int
    fps: Fraction

    @property
    def shot_frames(self) -> int:
        return self.shot_end - self.shot_start + 1

    @property
    def line_frames(self) -> range:
        return range(self.line_start, self.line_end + 1)

    def to_dict(self) -> dict:
        return {"shot": [self.shot_start, self.shot_end], "line": [self.line_start, self.line_end],
                "fps": str(self.fps), "shot_frames": self.shot_frames,
                "line_frames": self.line_end - self.line_start + 1}


@dataclass(frozen=True)
class SourceLook:
    """How a re-dub's source is shown, carried to its render: its frames turned upright for the face work
    (``turn``: as the face analysis saw them) and back as stored for the write, its display matrix and
    field order written on the render (both re-dub paths: :func:`redub_video` and the render jobs)."""

    turn: int                                  # degrees the analysis turned the stored frames
    rotation: int                              # the source's display rotation (degrees)
    matrix: tuple[int, ...] | None             # its whole display matrix (None: none or the identity)
    written: int | tuple[int, ...]             # what the render carries (check_display_rotation)
    field_order: str | None                    # VideoInfo.field_order

    @classmethod
    def of(cls, video: str | os.PathLike, output: str | os.PathLike, analysis, info=None) -> "SourceLook":
        """The source's look; an OutputError (one line) where ``output`` cannot carry its rotation."""
        from s2v_toolkit.media import check_display_rotation, display_transform, probe

        info = info or probe(video)
        rotation, matrix = display_transform(video, info)
        return cls(int(getattr(analysis, "rotation", 0) or 0), rotation, matrix,
                   check_display_rotation(output, matrix or rotation), info.video.field_order)

    def upright(self, frame):
        from s2v_toolkit.media import rotate_frame

        return rotate_frame(frame, self.turn)

    def stored(self, frame):
        from s2v_toolkit.media import rotate_frame

        return rotate_frame(frame, -self.turn)  # untouched samples stay exact

    def write_options(self) -> dict:
        """``write_video`` keyword arguments."""
        return {"display_rotation": self.written, "field_order": self.field_order}

    def warnings(self, output: str | os.PathLike, preset: str | None) -> list[str]:
        from s2v_toolkit.media import field_order_warnings
        from s2v_toolkit.media.probe import INTERLACED_ORDERS

        if self.field_order not in INTERLACED_ORDERS:
            return []
        return [f"interlaced source ({self.field_order}): the mouth is generated as whole frames, so inside "
                "the mask both fields show one instant (the rest keeps its fields)",
                *field_order_warnings(self.field_order, output, preset)]

    def to_dict(self) -> dict:
        return {"display_rotation": self.rotation, "display_matrix": list(self.matrix) if self.matrix else None,
                "faces_turned": self.turn, "field_order": self.field_order}


def place_line(shot_start: int, shot_end: int, line_start: int, audio_seconds: float, fps: Fraction,
               source: str = "shot") -> LineTiming:
    """The line's frames: from ``line_start`` for as many frames as its audio lasts (rounded up).

    The line must lie inside the shot: the shot keeps its length (no extension policy yet).
    """
    fps = Fraction(fps)
    n = max(1, math.ceil(audio_seconds * fps - 1e-6))
    line_end = line_start + n - 1
    if not shot_start <= line_start <= shot_end:
        raise RedubError(f"{source}: line start frame {line_start} is outside the shot "
                         f"(frames {shot_start}-{shot_end})")
    if line_end > shot_end:
        raise RedubError(f"{source}: the line's audio ({audio_seconds:.2f} s, {n} frames) placed at frame {line_start} "
                         f"ends at frame {line_end}, after the shot's last frame {shot_end}: shorten the line or "
                         f"start it earlier")
    return LineTiming(shot_start, shot_end, line_start, line_end, fps)


def shot_audio(line_audio: np.ndarray, rate: int, timing: LineTiming) -> np.ndarray:
    """Mono audio as long as the shot: silence, with the line starting at its record frame."""
    n = int(round(Fraction(timing.shot_frames) / timing.fps * rate))
    out = np.zeros(n, np.float32)
    offset = int(round(Fraction(timing.line_start - timing.shot_start) / timing.fps * rate))
    take = max(0, min(len(line_audio), n - offset))
    out[offset:offset + take] = line_audio[:take]
    return out


@dataclass
class RedubReport:
    timing: LineTiming
    track_id: int
    status: list[str]                  # per shot frame: passthrough | generated | face_lost | mouth_occluded
    mask_coverage: list[float]         # per shot frame: fraction of frame pixels the mask touches
    lost_ranges: list[tuple[int, int]]  # line frames passed through because the face was lost
    occluded_ranges: list[tuple[int, int]] = field(default_factory=list)  # ... because the mouth was covered
    occluded_reasons: list[str] = field(default_factory=list)  # per occluded range (lips / one corner covered)
    warnings: list[str] = field(default_factory=list)
    clips: list[dict] = field(default_factory=list)
    reference: str = ""
    crop_shape: tuple[int, int] = (0, 0)
    latent_shape: tuple[int, ...] = ()
    seconds: float = 0.0

    @classmethod
    def empty(cls, timing: LineTiming, track_id: int, crop_size: int) -> "RedubReport":
        """Every frame passthrough: what a re-dub fills in as it runs."""
        return cls(timing, track_id, ["passthrough"] * timing.shot_frames, [0.0] * timing.shot_frames, [],
                   crop_shape=(crop_size, crop_size))

    def to_dict(self) -> dict:
        return {"timing": self.timing.to_dict(), "track_id": self.track_id,
                "crop_shape": list(self.crop_shape), "latent_shape": list(self.latent_shape),
                "reference": self.reference,
                "clips": self.clips, "lost_ranges": [list(r) for r in self.lost_ranges],
                "occluded_ranges": [{"frames": list(r), "reason": self.occluded_reasons[k]
                                     if k < len(self.occluded_reasons) else "mouth occluded"}
                                    for k, r in enumerate(self.occluded_ranges)],
                "warnings": self.warnings, "seconds": round(self.seconds, 3),
                "frames": [{"frame": self.timing.shot_start + k, "status": s, "mask_coverage": round(c, 6)}
                           for k, (s, c) in enumerate(zip(self.status, self.mask_coverage))]}


def _crop_mix(generated: np.ndarray, original: np.ndarray, mask: np.ndarray,
              origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """What the pasted frame looks like in crop space (for the next clip's motion context):
    ``rint(a * generated + (1 - a) * original)`` with ``a = mask`` (or a window of it at ``origin``)."""
    # Where the mask is 0 that is the original exactly, so only the mask's box is computed.
    out = original.copy()
    box = mask_bbox(mask != 0)
    if box is None:
        return out
    bx0, by0, bx1, by1 = box
    a = np.repeat(mask[by0:by1, bx0:bx1, None], original.shape[2], axis=2)  # per sample, no 1-wide broadcast
    x0, y0, x1, y1 = bx0 + origin[0], by0 + origin[1], bx1 + origin[0], by1 + origin[1]
    top = float(np.iinfo(original.dtype).max)
    mixed = a * generated[y0:y1, x0:x1].astype(np.float32) + (1.0 - a) * original[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(mixed), 0, top).astype(original.dtype)
    return out


def redub_frames(frames: np.ndarray, timing: LineTiming, line_audio_16k: np.ndarray, plan: FaceCropPlan,
                 generator, settings: RedubSettings | None = None, *,
                 reference: np.ndarray | None = None, track_id: int = 0, observer=None,
                 progress=None, resume_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, RedubReport]:
    """Re-dub the shot's frames in memory. ``frames``: (shot_frames, H, W, 3) from ``shot_start``
    (uint8, or uint16 for 16-bit frames), or a list of PlanarFrames (the source's own planes).

    Returns the new frames (same shape and type; a copy) and the report. ``reference``: an RGB image used
    as the reference instead of the shot's own crop. ``observer``: test hook of :class:`.LatentBlend`.
    ``resume_dir``: keep every finished clip there (see :mod:`.clip_store`) and continue after the last
    one an earlier, killed call with the same inputs saved; the result is the same as uninterrupted.
    """
    if len(frames) != timing.shot_frames:
        raise ValueError(f"{len(frames)} frames given for a shot of {timing.shot_frames}")
    into = isinstance(frames, np.ndarray)
    out = frames.copy() if into else list(frames)
    s0 = timing.shot_start
    report = RedubReport.empty(timing, track_id, plan.size)
    resume_key = None
    if resume_dir is not None:
        resume_key = _frames_key(frames)
    stream = redub_stream(iter(frames), timing, line_audio_16k, plan, generator, report, settings,
                          reference=reference, frame_at=lambda f: frames[f - s0], observer=observer,
                          progress=progress, resume_dir=resume_dir, resume_key=resume_key,
                          _out=out if into else None)
    for k, frame in enumerate(stream):
        if not into:  # an array: the stream pasted the mouths into ``out``, the rest is the copy
            out[k] = frame
    return out, report


def _frames_key(frames) -> str:
    """A content hash of in-memory frames (arrays or PlanarFrames), for the clip store's key."""
    from s2v_toolkit.pipelines.clip_store import hash_inputs

    if isinstance(frames, np.ndarray):
        return hash_inputs(frames)
    parts = []
    for fr in frames:
        if isinstance(fr, np.ndarray):
            parts.append(fr)
        else:
            parts += [fr.pix_fmt, *fr.planes]
    return hash_inputs(*parts)


def source_key(path: str | os.PathLike) -> list:
    """The source file's identity (path, size, modification time) for the clip store's key."""
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


def redub_stream(frames, timing: LineTiming, line_audio_16k: np.ndarray, plan: FaceCropPlan, generator,
                 report: RedubReport, settings: RedubSettings | None = None, *, reference: np.ndarray | None = None,
                 frame_at=None, observer=None, progress=None, resume_dir: str | os.PathLike | None = None,
                 resume_key=None, _out: np.ndarray | None = None):
    """Re-dub a shot streamed through a window: a generator of the output frames, in order.

    ``frames`` yields the shot's frames in order (from ``shot_start``): (H, W, 3) arrays or PlanarFrames.
    ``report`` (:meth:`RedubReport.empty`) is filled in as the stream runs.

    Memory is bounded by the window, never by the shot: the full frames of one clip
    (``clip_frames``) wait for their generation, and crops (``crop_size``² each) are kept only for
    the ``motion_frames`` before the next clip. Frames outside the line go straight through.
    ``frame_at(f)``: the frame ``f`` (one seek) for the reference crop, unless ``reference`` is given.

    ``resume_dir``: every finished clip (its generated crops, motion context and noise state) is kept
    there (:mod:`.clip_store`); a re-run with the same inputs takes the saved clips as they were and
    generates from the first missing one, so a killed render resumes at its last finished clip with
    the same result as an uninterrupted run. The frames are streamed, so their content is not hashed:
    ``resume_key`` names them (:func:`source_key` of the source file and the shot, or a content hash).

    Seeds follow the official rule: clip ``i`` draws its noise from a generator seeded ``seed + i``;
    with several GPUs rank 0's seed is broadcast first, so every rank draws the same noise.

    ``_out`` (for :func:`redub_frames`): a copy of the whole shot; the generated mouths are pasted into
    its frames in place (no copy of each frame) and those frames are yielded.
    """
    t0 = time.perf_counter()
    settings = settings or RedubSettings()
    if plan.start > timing.shot_start or plan.end < timing.shot_end:
        raise ValueError("the crop plan must cover the whole shot")
    device, vae = generator.device, generator.vae
    chunked = vae_chunked(generator, settings.motion_frames + settings.clip_frames, plan.size)
    s0, s1 = timing.shot_start, timing.shot_end
    line = timing.line_frames
    status, coverage, track_id = report.status, report.mask_coverage, report.track_id

    def pass_through(runs, kind: str, why: str) -> list[tuple[int, int]]:
        """The runs inside the line: warned about, and marked as source frames left untouched."""
        runs = [(max(a, timing.line_start), min(b, timing.line_end)) for a, b in runs
                if a <= timing.line_end and b >= timing.line_start]
        if runs:
            spans = ", ".join(f"{a}-{b}" for a, b in runs)
            report.warnings.append(f"{why} in frames {spans} of the line: passed through unchanged")
        for a, b in runs:
            for f in range(a, b + 1):
                status[f - s0] = kind
        return runs

    report.lost_ranges = pass_through(frame_runs(~plan.found[s0 - plan.start:s1 - plan.start + 1], s0),
                                      "face_lost", "face lost")
    report.occluded_ranges = pass_through(plan.occluded_ranges(), "mouth_occluded", "mouth occluded")
    report.occluded_reasons = [plan.occlusion_reason(a) for a, _ in report.occluded_ranges]
    if all(not plan.found[f - plan.start] for f in line):
        raise RedubError(f"no face of track {track_id} in the line's frames {timing.line_start}-{timing.line_end}")

    m = settings.motion_frames
    clips = []  # (first frame, line frames in it, model frames) per clip
    for clip_start in range(timing.line_start, timing.line_end + 1, settings.clip_frames):
        n_line = min(settings.clip_frames, timing.line_end + 1 - clip_start)
        clips.append((clip_start, n_line, 4 * math.ceil(n_line / 4)))
    span_end = clips[-1][0] + clips[-1][2] - 1           # the last model frame (may lie past the shot)

    # Audio features for the frames the clips cover (the line at its record time, silence after it).
    span = LineTiming(timing.line_start, min(span_end, s1), timing.line_start, timing.line_end, timing.fps)
    feats = generator.frame_features(shot_audio(line_audio_16k, AUDIO_RATE, span), timing.fps, span.shot_frames)

    usable = [f for f in line if plan.found[f - plan.start]]
    ref_frame = next((f for f in usable if not plan.is_occluded(f)), usable[0])  # not a covered mouth
    if reference is None:
        if frame_at is None:
            raise ValueError("frame_at is needed for the reference crop unless a reference image is given")
        ref_crop = plan.transform(ref_frame).crop(frame_at(ref_frame))
        report.reference = f"shot frame {ref_frame}"
    else:
        import cv2

        ref_crop = _square(reference, plan.size, cv2)
        report.reference = "given image"
    ref_latents = vae.encode(to_video_tensor(ref_crop[None], device), chunked=chunked).float()
    del ref_crop
    seed = settings.generation.resolved_seed()
    parallel = getattr(generator, "parallel", None)
    if parallel is not None and parallel.enabled:
        from .distributed import broadcast_from_main

        # every rank must draw the same noise: rank 0's seed (given or random) wins
        seed = settings.generation.seed = broadcast_from_main(parallel, seed)
    step_cache = generator._step_cache(settings.generation) if hasattr(generator, "_step_cache") else None
    noise_generator = torch.Generator().manual_seed(seed)
    store, saved = None, []
    if resume_dir is not None and observer is None:
        from s2v_toolkit.pipelines.clip_store import ClipStore, hash_inputs

        key = hash_inputs("redub-stream", settings.to_dict(), track_id, ref_latents, np.asarray(line_audio_16k),
                          [s0, s1, timing.line_start, timing.line_end, str(timing.fps), plan.size],
                          resume_key, str(generator.bundle.to_dict()) if hasattr(generator, "bundle") else "")
        store = ClipStore(resume_dir, key)
        saved = store.load(seed)
        store.start(seed)

    crops: dict[int, np.ndarray] = {}          # source crops of the frames the next clips read
    pasted_crops: dict[int, np.ndarray] = {}   # frame -> crop-space view of the result (motion context)
    pending: list[tuple[int, object]] = []     # frames read but not yet emitted (waiting for their clip)
    need_from = max(timing.line_start - m, s0)  # the first frame whose crop a clip reads

    def crop_of(f: int) -> np.ndarray:
        return pasted_crops[f] if f in pasted_crops else crops[min(max(f, s0), s1)]

    def generate_clip(clip_index: int, clip_start: int, n_line: int, n: int) -> dict[int, np.ndarray]:
        clip_ids = list(range(clip_start, clip_start + n))
        # motion context then the clip, stacked once (the clip is a view of it)
        both = np.stack([crop_of(f) for f in range(clip_start - m, clip_start)]
                        + [crops[min(max(f, s0), s1)] for f in clip_ids])
        clip = both[m:]
        latents_all = vae.encode(to_video_tensor(both, device), chunked=chunked).float()
        n_motion = (m - 1) // 4 + 1
        motion_latents, original = latents_all[:, :, :n_motion], latents_all[:, :, n_motion:]
        masks = plan.crop_mask_windows(clip_start, n, settings.mask, active=line)  # no n x crop² array
        lmask = latent_mask(masks, dilation=settings.blend.dilation).to(device)
        report.latent_shape = tuple(original.shape)
        idx = torch.tensor([min(f, s1) - timing.line_start for f in clip_ids], device=device)
        clip_feats = feats[idx]
        beyond = torch.tensor([f > s1 for f in clip_ids], device=device)
        clip_feats[beyond] = 0.0
        audio_in = clip_feats.permute(1, 2, 0)[None]  # [1, L, D, n]
        latents = sample_masked_clip(
            generator, original=original, mask=lmask, ref_latents=ref_latents, motion_latents=motion_latents,
            audio_features=audio_in, settings=settings.generation, blend=settings.blend,
            # per clip a fresh generator seeded seed + clip (the official rule): a clip's noise does
            # not depend on the clips before it
            noise_generator=torch.Generator().manual_seed(seed + clip_index),
            clip_index=clip_index, step_cache=step_cache,
            observer=(lambda i, x, k, _c=clip_start: observer(_c, i, x, k, lmask)) if observer else None)
        decoded = vae.decode(torch.cat([motion_latents, latents], dim=2), chunked=chunked)
        gen = to_frames(decoded[:, :, -n:], clip.dtype)
        del decoded, latents, latents_all
        generated = {}
        for k, f in enumerate(clip_ids):
            if f in line:
                generated[f] = gen[k]
                pasted_crops[f] = (_crop_mix(gen[k], clip[k], *masks.windows[k]) if masks.windows[k] is not None
                                   else clip[k].copy())
        report.clips.append({"frames": [clip_start, clip_start + n_line - 1], "model_frames": n,
                             "latent_cells_generated": int(lmask.sum().item()),
                             "latent_cells": int(lmask.numel())})
        if store is not None:
            kept = [f for f in clip_ids if f in line]
            store.save(clip_index, np.stack([generated[f] for f in kept]),
                       torch.from_numpy(np.stack([pasted_crops[f] for f in kept]).astype(np.float32)),
                       noise_generator.get_state(), {"frames": kept, "report": report.clips[-1]}, [])
        return generated

    def saved_clip(clip_index: int) -> dict[int, np.ndarray]:
        # finished by a killed run: take it as it was (the motion context is the exact saved crops)
        done = saved[clip_index]
        generated = {}
        for k, f in enumerate(done.trace["frames"]):
            generated[f] = done.frames[k]
            pasted_crops[f] = np.rint(done.motion[k]).astype(done.frames.dtype)
        noise_generator.set_state(done.generator_state)
        report.clips.append(done.trace["report"])
        return generated

    def run_clip(clip_index: int, clip_start: int, n_line: int, n: int) -> None:
        generated = (saved_clip(clip_index) if clip_index < len(saved)
                     else generate_clip(clip_index, clip_start, n_line, n))
        # Paste back: only line frames with the face; everything else is the source, untouched.
        for j, (f, frame) in enumerate(pending):
            if f not in generated or not plan.found[f - plan.start] or plan.is_occluded(f):
                continue  # the source frame, untouched (face lost, or its mouth covered)
            # the mask's window only (the rest of the frame's mask is 0)
            h, w = frame.shape[:2]
            mask, origin = mouth_mask_window((h, w), plan.landmarks_at(f), settings.mask)
            pending[j] = (f, composite_crop(frame, generated[f], plan.transform(f), mask, settings.composite,
                                            origin=origin, out=None if _out is None else _out[f - s0]))
            status[f - s0] = "generated"
            coverage[f - s0] = float(np.count_nonzero(mask)) / (h * w)
        if progress is not None:
            progress(clip_start + n_line - timing.line_start, len(line))

    next_clip = 0
    f = s0 - 1
    for f, frame in enumerate(frames, start=s0):
        if f > s1:
            raise ValueError(f"more frames given than the shot's {timing.shot_frames}")
        if f >= need_from and next_clip < len(clips):
            crops[f] = plan.transform(f).crop(frame)
        pending.append((f, frame))
        while next_clip < len(clips):
            start, n_line, n = clips[next_clip]
            if f < min(start + n - 1, s1):
                break
            run_clip(next_clip, start, n_line, n)
            next_clip += 1
            # keep only the crops the following clips can still read (and the shot's first frame)
            keep_from = clips[next_clip][0] - m if next_clip < len(clips) else f + 1
            for g in [g for g in crops if g < keep_from and g != s0]:
                del crops[g]
            for g in [g for g in pasted_crops if g < keep_from]:
                del pasted_crops[g]
        # emit every frame that no clip still has to change
        waiting_from = clips[next_clip][0] if next_clip < len(clips) else s1 + 1
        while pending and pending[0][0] < waiting_from:
            yield pending.pop(0)[1]
    if f != s1:
        raise ValueError(f"{f - s0 + 1} frames given for a shot of {timing.shot_frames}")
    report.seconds = time.perf_counter() - t0


def _square(image: np.ndarray, size: int, cv2) -> np.ndarray:
    """Centre square of an RGB image, resized to ``size`` (a reference photo)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(np.ascontiguousarray(img[y:y + s, x:x + s]), (size, size), interpolation=cv2.INTER_AREA)


# -------------------------------------------------------------------------------------------------
# Files in, files out
# -------------------------------------------------------------------------------------------------
def parse_frame(text: str | int, video, what: str) -> int:
    """A frame number (0-based from the file's first frame) or a source timecode."""
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.media import timecode_to_frames

    if isinstance(text, int):
        return text
    try:
        if any(c in text for c in ":;"):
            return timecode_to_frames(text, video.fps) - video.start_frame
        return int(text)
    except ValueError as exc:
        raise ConfigError(f"{what} {text!r}: {exc}") from None


def parse_frame_range(text: str, video) -> tuple[int, int]:
    from s2v_toolkit.errors import ConfigError

    parts = text.split("-")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--range {text!r}: expected IN-OUT, e.g. 100-250 or 01:00:04:00-01:00:09:12")
    a, b = (parse_frame(p, video, "--range") for p in parts)
    if a > b:
        raise ConfigError(f"--range {text!r}: IN is after OUT")
    return a, b


def choose_track(analysis, timing: LineTiming, source: str, line_audio_16k: np.ndarray | None,
                 face: int | None = None, reference_descriptor=None) -> tuple[int, dict]:
    """The speaking face's track id: the one given, the only face in the line, or the active speaker."""
    span = f"frames {timing.line_start}-{timing.line_end}"
    if face is not None:
        try:
            analysis.track(face)
        except KeyError:
            ids = ", ".join(str(t.track_id) for t in analysis.tracks) or "none"
            raise RedubError(f"{source}: no face track {face} (tracks: {ids})") from None
        return face, {"how": "given", "track_id": face}
    present = [t for t in analysis.tracks
               if any(t.index_of(f) is not None for f in timing.line_frames)]
    if not present:
        raise RedubError(f"{source}: no face found in the line's {span}")
    if len(present) == 1:
        return present[0].track_id, {"how": "only face in the line", "track_id": present[0].track_id}
    from s2v_toolkit.faces import speaker_for_line

    choice = speaker_for_line(analysis, timing.line_start, timing.line_end, audio=line_audio_16k,
                              sample_rate=AUDIO_RATE, reference=reference_descriptor)
    if choice.track_id is None:
        ids = ", ".join(str(t.track_id) for t in present)
        raise RedubError(f"{source}: {len(present)} faces in the line's {span} (tracks {ids}) and no way to "
                         f"choose ({choice.reason}): pick one with --face N")
    return choice.track_id, {"how": "active speaker", **choice.to_dict()}


def output_preset(source_codec: str, output: Path, pix_fmt: str | None = None) -> str | None:
    """Keep the source's codec family when the output container allows it (ProRes in, ProRes out),
    always at 10 bits (ProRes 422 HQ / DNxHR HQX; the 4444 / 444 variants for a 4:4:4 source)."""
    # Long-GOP sources (H.264, HEVC) get the extension's default instead: ProRes for .mov, an
    # intermediate codec that survives the next edit, rather than a second lossy long-GOP pass.
    full_chroma = bool(pix_fmt) and ("444" in pix_fmt or pix_fmt.startswith("gbr"))
    family = {"prores": "prores_4444" if full_chroma else "prores_hq",
              "dnxhd": "dnxhr_444" if full_chroma else "dnxhr_hqx"}.get(source_codec)
    allowed = {".mov": {"prores_hq", "prores_4444", "dnxhr_hqx", "dnxhr_444"}, ".mxf": {"dnxhr_hqx", "dnxhr_444"}}
    if family in allowed.get(output.suffix.lower(), set()):
        return family
    return None  # the extension's default: ProRes 422 HQ for .mov


def occluded_share(plan, timing: LineTiming) -> float:
    """Share of the line's frames with the face found whose mouth is covered."""
    found = [f for f in timing.line_frames if plan.found[f - plan.start]]
    return sum(plan.is_occluded(f) for f in found) / len(found) if found else 0.0


def sidecar_path(output: str | os.PathLike) -> Path:
    out = Path(output)
    return out.with_name(out.name + ".json")


def check_output(source: Path, output: Path, overwrite: bool) -> None:
    from s2v_toolkit.media import ensure_output_dir

    if output.resolve() == source.resolve():
        raise OutputError(output, "is the source video: a re-dub never overwrites its source")
    if output.exists() and not overwrite:
        raise OutputError(output, "already exists (choose another name or pass --overwrite)")
    if output.suffix.lower() not in (".mov", ".mp4", ".mxf", ".mkv", ".dpx", ".exr"):
        raise OutputError(output, f"unsupported output extension {output.suffix!r} "
                                  "(use .mov, .mp4, .mxf, .mkv for lossless FFV1, or a .dpx / .exr sequence)")
    ensure_output_dir(output.parent if str(output.parent) else ".")


def redub_video(video: str | os.PathLike, audio: str | os.PathLike, output: str | os.PathLike, *,
                generator, settings: RedubSettings | None = None,
                frame_range: tuple[int, int] | None = None, line_start: int | None = None,
                face: int | None = None, reference: str | os.PathLike | None = None,
                analysis=None, overwrite: bool = False, progress=None,
                resume_dir: str | os.PathLike | None = None) -> dict:
    """Re-dub ``video`` (its frames ``frame_range``, default all) with the line ``audio``; write ``output``.

    Returns the sidecar document (also written next to the output as ``<output>.json``).
    ``generator``: a loaded :class:`.S2VGenerator`, or a function returning one: it is then called only
    once the inputs have been checked and the face found (no model load for a doomed run).
    ``analysis``: a precomputed :class:`s2v_toolkit.faces.FaceAnalysis` of the shot (else it is tracked).
    ``resume_dir``: keep finished clips there and resume after the last one (see :func:`redub_stream`).
    """
    from s2v_toolkit.media import VideoReader, frames_to_timecode, probe, read_audio, write_video

    video, audio, output = Path(video), Path(audio), Path(output)
    settings = settings or RedubSettings()
    t0 = time.perf_counter()
    check_output(video, output, overwrite)
    info = probe(video)
    if info.video is None:
        raise MediaError(video, "has no video stream: nothing to re-dub")
    v = info.video
    n = v.frame_count
    shot_start, shot_end = frame_range if frame_range is not None else (0, n - 1)
    if not 0 <= shot_start <= shot_end < n:
        raise RedubError(f"{video}: shot frames {shot_start}-{shot_end} are outside the file (frames 0-{n - 1})")
    a_info = probe(audio)
    if not a_info.audio:
        raise MediaError(audio, "has no audio stream: nothing to re-dub with")
    line_16k = read_audio(audio, sample_rate=AUDIO_RATE)
    line_48k = read_audio(audio, sample_rate=OUTPUT_AUDIO_RATE)
    seconds = len(line_16k) / AUDIO_RATE
    if seconds <= 0:
        raise MediaError(audio, "the line's audio is empty")
    from s2v_toolkit.pipelines.generation_inputs import check_audible

    check_audible(audio, line_16k)  # the same rule as `s2vt generate`: a silent line drives nothing
    timing = place_line(shot_start, shot_end, shot_start if line_start is None else line_start, seconds,
                        v.fps, source=f"{video}")

    ref_image = ref_desc = None
    if reference is not None:
        ref_image = _read_image(reference)
    if analysis is None:
        from s2v_toolkit.faces import analyze_video

        analysis = analyze_video(video, shot_start, shot_end)
    # Rotated media (a phone's display matrix): the face work is done on upright frames, as the
    # analysis saw them; the output keeps the source's stored frames and its display rotation.
    look = SourceLook.of(video, output, analysis, info)
    if ref_image is not None and face is None and len(analysis.tracks) > 1:
        from s2v_toolkit.faces import reference_descriptor

        ref_desc = reference_descriptor(ref_image)
    track_id, choice = choose_track(analysis, timing, str(video), line_16k, face, ref_desc)
    track = analysis.track(track_id)
    occluded = analysis.occluded_frames(track_id, shot_start, shot_end) if hasattr(analysis, "occluded_frames") else []
    plan = plan_face_crops(track, shot_start, shot_end, settings.crop_size, settings.face_fraction,
                           occluded_frames=occluded,
                           occlusion_reasons=analysis.occlusion_reasons(track_id, shot_start, shot_end)
                           if hasattr(analysis, "occlusion_reasons") else None)
    if not any(plan.found[f - plan.start] for f in timing.line_frames):
        raise RedubError(f"{video}: face track {track_id} is not found in the line's frames "
                         f"{timing.line_start}-{timing.line_end}")
    share = occluded_share(plan, timing)
    if share > settings.max_occluded:
        raise RedubError(f"{video}: mouth occluded in {share:.0%} of the line (frames {timing.line_start}-"
                         f"{timing.line_end}; more than {settings.max_occluded:.0%}): not re-dubbed")

    if not hasattr(generator, "vae"):
        generator = generator()
    random_weights = bool(generator.bundle.random_weights)
    start_tc = None
    if v.start_timecode:
        start_tc = frames_to_timecode(v.start_frame + shot_start, v.fps, drop_frame=v.drop_frame)
    preset = output_preset(v.codec, output, v.pix_fmt)
    audio_out = shot_audio(line_48k, OUTPUT_AUDIO_RATE, timing)
    is_main = getattr(generator, "is_main", True)  # several GPUs: rank 0 writes the output and sidecar
    report = RedubReport.empty(timing, track_id, plan.size)
    resume_key = [*source_key(video), shot_start, shot_end] if resume_dir is not None else None
    # The source's own planes, at its bit depth: what the mask does not touch is written as decoded.
    # Frames by presentation time on the source's frame grid: a variable-rate source's gaps repeat the
    # frame shown at that time and damaged frames show their nearest good neighbour; both are recorded
    # in the sidecar (never a black or shifted frame).
    with VideoReader(video, info, depth="native") as reader, VideoReader(video, info, depth="native") as seeker:
        upright = (look.upright(fr) for fr in _shot_frames(reader, shot_start, shot_end))
        stream = redub_stream(upright, timing, line_16k, plan, generator,
                              report, settings, reference=ref_image,
                              frame_at=lambda f: look.upright(seeker.read(f, 1)[0]), progress=progress,
                              resume_dir=resume_dir, resume_key=resume_key)
        stored = (look.stored(fr) for fr in stream)
        try:
            if is_main:
                written = write_video(output, stored, v.fps, preset=preset, audio=audio_out,
                                      audio_rate=OUTPUT_AUDIO_RATE, start_timecode=start_tc, overwrite=overwrite,
                                      frame_count=timing.shot_frames, **look.write_options())
            else:  # the other ranks take part in every clip's generation but write nothing
                for _ in stored:
                    pass
                written = output
        except RedubError as exc:
            raise RedubError(f"{video}: {exc}") from None
        frame_map = reader.frame_map  # every shot frame, read in order from shot_start
    report.warnings += [f"frames {i.start}-{i.end}: {i.message}" for i in analysis.issues
                        if i.track_id == track_id and i.kind not in ("face_lost", "mouth_occluded")
                        and i.start <= timing.line_end and i.end >= timing.line_start]
    report.warnings += frame_map.warnings
    report.warnings += look.warnings(output, preset)
    dup = frame_map.indexes("duplicated")
    if dup or frame_map.dropped:
        report.warnings.append(f"variable-rate source: {len(dup)} frame(s) repeat the previous source frame "
                               f"and {len(frame_map.dropped)} source frame(s) fall between grid frames "
                               "(see source.frame_map; s2vt convert --cfr makes a constant-rate copy)")
    if random_weights:
        report.warnings.insert(0, PLUMBING_NOTE)
    cache = getattr(generator, "step_cache", None)
    doc = {
        "kind": "s2vt.redub", "version": 1,
        "plumbing_only": random_weights,
        "note": PLUMBING_NOTE if random_weights else None,
        "source": {"video": str(video), "audio": str(audio), "codec": v.codec,
                   "width": v.width, "height": v.height, "fps": str(v.fps), "start_timecode": v.start_timecode,
                   "pix_fmt": v.pix_fmt, "bit_depth": v.bit_depth, "colour": v.colour,
                   "reference": None if reference is None else str(reference),
                   "vfr": v.vfr, "source_frames": v.source_frames, "frame_map": frame_map.to_dict(),
                   **look.to_dict()},
        "output": {"path": str(written), "preset": preset or "default for " + output.suffix,
                   "frames": timing.shot_frames, "start_timecode": start_tc, "fps": str(v.fps),
                   "display_rotation": look.rotation if look.written else 0,
                   "display_matrix": list(look.written) if isinstance(look.written, tuple) else None},
        "model": {"checkpoint": generator.bundle.to_dict(), "device": str(generator.device),
                  "dtype": str(generator.dit_dtype).replace("torch.", ""),
                  "loras": list(getattr(generator, "loras", []) or []),
                  "fp8": getattr(generator, "fp8", None),
                  "parallel": generator.parallel.to_dict() if getattr(generator, "parallel", None) else None},
        "preset": settings.generation.preset,
        "step_cache": cache.to_dict() if cache is not None else None,
        "settings": settings.to_dict(),
        "speaker": choice,
        "report": report.to_dict(),
        "total_seconds": round(time.perf_counter() - t0, 3),
    }
    from s2v_toolkit.media import atomic_output

    side = sidecar_path(output)
    if is_main:
        with atomic_output(side, overwrite=True) as tmp:
            Path(tmp).write_text(json.dumps(doc, indent=1, default=str))
    if getattr(generator, "parallel", None) is not None:
        from .distributed import barrier

        barrier(generator.parallel)  # the output exists once any rank returns
    doc["sidecar"] = str(side)
    return doc


def _shot_frames(reader, first: int, last: int, chunk: int = 8):
    """Frames ``first..last`` of an open reader, decoded a few at a time (never the whole shot)."""
    yield from reader.frames(first, last + 1 - first, chunk)


def _read_image(path: str | os.PathLike) -> np.ndarray:
    import cv2

    img = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(path, "cannot read the reference image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
