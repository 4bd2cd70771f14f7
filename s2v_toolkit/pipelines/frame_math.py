"""Frame arithmetic of long-video S2V generation: clips, the causal VAE's frame grid, audio alignment.

Facts (``shared/spec/wan_s2v_dit.md``, sections Audio path and Sampling; official ``speech2video.py``):

* The model runs at 16 fps. Each clip generates ``infer_frames`` (80) frames = 20 latent frames; the
  motion buffer holds the last ``motion_frames`` (73) output pixel frames = 19 latent frames
  (73 = 1 + 4 * 18, the causal VAE's "1 + 4k" frame count).
* Causal VAE: latent 0 <-> pixel frame 0, latent i >= 1 <-> pixel frames 4i-3 .. 4i.
  The clip is always laid out behind a leading block (the 73 motion frames, or the 1-frame
  reference latent on the first clip), so generated latent j <-> clip frames 4j .. 4j+3.
* Audio: wav2vec2 features resampled to 30 fps; model frame k takes feature index round(k*30/16)
  (numpy round: half to even), indices past the end are zeros. The audio encoder sees
  [73 x frame 0] + the clip's 80 frames and keeps the last 20 latent positions, so its latent j also
  covers clip frames 4j .. 4j+3: within a clip, audio and video are aligned.
* Clip 0 (motion tokens dropped) decodes [reference latent, 20 latents] = 81 frames, keeps the last
  80 and then drops 3 more, keeping clip frames 3 .. 79 (77 frames); later clips keep all 80.
  The official code feeds clip r the audio of model frames [80r, 80r+80).

What the 3-frame trim does to sync (worked out from the facts above): output frame 0 is clip-0
frame 3, generated for audio frame 3; clip r (r >= 1) starts at output index 77 + 80(r-1) = 80r - 3
and was generated for audio frames from 80r. So *every* output frame n shows the mouth for audio
frame n + 3: a constant offset of 3 frames (187.5 ms at 16 fps), the picture ahead of the sound
when the audio is muxed from t = 0, and no jump at clip boundaries. The official clip count
``int(T30 / 150) + 1`` also ignores the trim and can yield fewer frames than the audio needs.

The aligned plan used here keeps the trim (its first frames follow the reference image, not the
audio) but shifts what drives the clips by the same 3 frames: clip r is fed drive frames starting
at its first *output* index minus the trim, so output frame n is generated for audio/pose frame n,
for every n, and the clip count is the smallest that covers the requested frames.
Drive frames before 0 repeat frame 0 (as the audio encoder's own front padding does); drive frames
past the end of the audio are zeros.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Mapping

__all__ = [
    "AUDIO_FEATURE_FPS",
    "FIRST_CLIP_TRIM",
    "INFER_FRAMES",
    "MODEL_FPS",
    "MOTION_FRAMES",
    "ClipSpan",
    "LongVideoPlan",
    "audio_feature_index",
    "clip_latent_frames",
    "drive_source_index",
    "frames_of_latent",
    "latent_frames_for_video_frames",
    "latent_index_of_frame",
    "model_frames_for_output",
    "official_clip_count",
    "output_frame_count",
    "plan_long_video",
    "retime_sources",
    "video_frames_for_latent_frames",
]

MODEL_FPS = 16
AUDIO_FEATURE_FPS = 30
INFER_FRAMES = 80
MOTION_FRAMES = 73
FIRST_CLIP_TRIM = 3
VAE_TEMPORAL_STRIDE = 4


# ---------------------------------------------------------------------------------------------
# causal VAE frame grid
# ---------------------------------------------------------------------------------------------
def latent_frames_for_video_frames(num_frames: int) -> int:
    """Latent frames of a ``1 + 4k`` pixel-frame sequence (k + 1); other counts are an error."""
    if num_frames < 1 or (num_frames - 1) % VAE_TEMPORAL_STRIDE:
        raise ValueError(f"the causal VAE encodes 1 + 4k frames, got {num_frames}")
    return (num_frames - 1) // VAE_TEMPORAL_STRIDE + 1


def video_frames_for_latent_frames(num_latents: int) -> int:
    """Pixel frames decoded from ``num_latents`` latent frames: 1 + 4 (t - 1)."""
    if num_latents < 1:
        raise ValueError(f"need at least one latent frame, got {num_latents}")
    return 1 + VAE_TEMPORAL_STRIDE * (num_latents - 1)


def latent_index_of_frame(frame: int) -> int:
    """The latent frame that pixel frame ``frame`` of a sequence belongs to."""
    if frame < 0:
        raise ValueError(f"frame index must be >= 0, got {frame}")
    return 0 if frame == 0 else (frame - 1) // VAE_TEMPORAL_STRIDE + 1


def frames_of_latent(latent: int) -> range:
    """Pixel frames of latent ``latent``: frame 0 alone for latent 0, else 4i-3 .. 4i."""
    if latent < 0:
        raise ValueError(f"latent index must be >= 0, got {latent}")
    if latent == 0:
        return range(0, 1)
    return range(VAE_TEMPORAL_STRIDE * latent - 3, VAE_TEMPORAL_STRIDE * latent + 1)


def clip_latent_frames(infer_frames: int = INFER_FRAMES, motion_frames: int = MOTION_FRAMES) -> int:
    """Latent frames generated per clip, as the official code computes them (80, 73 -> 20)."""
    if infer_frames % VAE_TEMPORAL_STRIDE:
        raise ValueError(f"infer_frames must be a multiple of 4, got {infer_frames}")
    lat_motion = (motion_frames + 3) // VAE_TEMPORAL_STRIDE
    return (infer_frames + 3 + motion_frames) // VAE_TEMPORAL_STRIDE - lat_motion


# ---------------------------------------------------------------------------------------------
# frame rates
# ---------------------------------------------------------------------------------------------
def _fraction(value: int | float | Fraction | str) -> Fraction:
    if isinstance(value, float):
        return Fraction(value).limit_denominator(1001 * 1000)
    return Fraction(value)


def audio_feature_index(frame: int, fps: int | Fraction = MODEL_FPS,
                        feature_fps: int | Fraction = AUDIO_FEATURE_FPS) -> int:
    """30 fps feature index for video frame ``frame`` at ``fps``: round(frame * 30 / fps), ties to even
    (numpy's rounding in the official ``get_sample_indices``)."""
    return round(Fraction(frame) * _fraction(feature_fps) / _fraction(fps))


def output_frame_count(duration_s: float | Fraction, fps: int | float | Fraction) -> int:
    """Frames a clip of ``duration_s`` seconds has at ``fps``: round(duration * fps), halves up."""
    exact = _fraction(duration_s) * _fraction(fps)
    return math.floor(exact + Fraction(1, 2))


def retime_sources(num_output: int, output_fps: int | float | Fraction,
                   model_fps: int | Fraction = MODEL_FPS) -> list[tuple[int, int, float]]:
    """For each output frame n (at ``output_fps``), the model frames around its time and the blend
    weight: ``(i0, i1, w)`` with output = (1 - w) * model[i0] + w * model[i1]; w = 0 means the output
    frame falls exactly on model frame i0 (then i1 == i0). Nearest-frame retiming uses
    ``i1 if w >= 0.5 else i0``."""
    ratio = _fraction(model_fps) / _fraction(output_fps)
    sources = []
    for n in range(num_output):
        pos = n * ratio
        i0 = math.floor(pos)
        w = pos - i0
        sources.append((i0, i0 + 1 if w else i0, float(w)))
    return sources


def model_frames_for_output(num_output: int, output_fps: int | float | Fraction,
                            model_fps: int | Fraction = MODEL_FPS) -> int:
    """Model frames to generate so that every output frame has both blend neighbours."""
    if num_output <= 0:
        return 0
    return max(i1 for _, i1, _ in retime_sources(num_output, output_fps, model_fps)) + 1


# ---------------------------------------------------------------------------------------------
# long-video plan
# ---------------------------------------------------------------------------------------------
def official_clip_count(num_feature_frames: int, infer_frames: int = INFER_FRAMES,
                        fps: int = MODEL_FPS, feature_fps: int = AUDIO_FEATURE_FPS) -> int:
    """The official ``get_audio_embed_bucket_fps`` clip count: int(T30 / (infer * 30/16)) + 1."""
    return int(num_feature_frames / (infer_frames * (feature_fps / fps))) + 1


def drive_source_index(drive_frame: int, num_drive_frames: int) -> int | None:
    """Which real audio/pose frame feeds drive frame ``drive_frame``: frames before 0 repeat frame 0,
    frames at or past ``num_drive_frames`` get None (zeros: silence past the end)."""
    if drive_frame >= num_drive_frames:
        return None
    return max(drive_frame, 0)


@dataclass(frozen=True)
class ClipSpan:
    """One clip of a long video, in model frames (16 fps).

    Generated clip frame c (0 .. generated-1) is driven by audio/pose frame ``drive_start + c``;
    frames ``keep_start .. keep_start + kept - 1`` go to output indices ``output_start ..``.
    The motion buffer is the output frames ``motion_start .. output_start - 1`` (indices below 0 are
    the initial zero frames); it is unused when ``drop_motion`` (first clip, no start image).
    """

    index: int
    drive_start: int
    generated: int
    keep_start: int
    kept: int
    output_start: int
    motion_start: int
    drop_motion: bool

    @property
    def output_range(self) -> range:
        return range(self.output_start, self.output_start + self.kept)

    @property
    def drive_range(self) -> range:
        return range(self.drive_start, self.drive_start + self.generated)

    def drive_frame_of_output(self, output_index: int) -> int:
        """The drive (audio/pose) frame an output frame of this clip was generated for."""
        if output_index not in self.output_range:
            raise IndexError(f"output frame {output_index} is not in clip {self.index} {self.output_range}")
        return self.drive_start + self.keep_start + (output_index - self.output_start)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "ClipSpan":
        return cls(**{k: (bool(data[k]) if k == "drop_motion" else int(data[k]))
                      for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LongVideoPlan:
    """All clips needed for ``num_frames`` output frames at the model rate."""

    num_frames: int
    infer_frames: int
    motion_frames: int
    first_clip_trim: int
    aligned: bool
    start_from_reference: bool
    clips: tuple[ClipSpan, ...]

    @property
    def num_clips(self) -> int:
        return len(self.clips)

    @property
    def generated_frames(self) -> int:
        """Frames the clips produce after the first-clip trim, before cutting to ``num_frames``."""
        return sum(c.generated - c.keep_start for c in self.clips)

    def clip_of_output(self, output_index: int) -> ClipSpan:
        if not 0 <= output_index < self.num_frames:
            raise IndexError(f"output frame {output_index} outside 0..{self.num_frames - 1}")
        for clip in self.clips:
            if output_index < clip.output_start + clip.kept:
                return clip
        raise AssertionError("clips do not cover the output")  # plan_long_video guarantees it

    def drive_frame_of_output(self, output_index: int) -> int:
        """The audio/pose frame (16 fps index) that output frame ``output_index`` was generated for."""
        return self.clip_of_output(output_index).drive_frame_of_output(output_index)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["clips"] = [c.to_dict() for c in self.clips]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "LongVideoPlan":
        return cls(num_frames=int(data["num_frames"]), infer_frames=int(data["infer_frames"]),
                   motion_frames=int(data["motion_frames"]), first_clip_trim=int(data["first_clip_trim"]),
                   aligned=bool(data["aligned"]), start_from_reference=bool(data["start_from_reference"]),
                   clips=tuple(ClipSpan.from_dict(c) for c in data["clips"]))


def plan_long_video(num_frames: int, infer_frames: int = INFER_FRAMES, motion_frames: int = MOTION_FRAMES,
                    first_clip_trim: int = FIRST_CLIP_TRIM, aligned: bool = True,
                    start_from_reference: bool = False, fit_last_clip: bool = False) -> LongVideoPlan:
    """Clips for exactly ``num_frames`` output frames (model rate).

    ``aligned=True`` (default): output frame n is generated for drive frame n (see module docstring).
    ``aligned=False`` reproduces the official layout (clip r driven from 80r; output n <-> n + trim).
    ``start_from_reference`` (official ``init_first_frame``): the reference image is the last motion
    frame, the first clip keeps its motion tokens and no frame is trimmed.
    ``fit_last_clip``: the last clip generates only the frames it keeps, rounded up to a multiple of 4
    (the official ``--infer_frames`` accepts any multiple of 4; it uses one length for every clip),
    instead of a full ``infer_frames`` clip of which most is thrown away. 5 s at 16 fps is 77 + 3
    frames: the second clip then denoises 1 latent frame instead of 20. Off: the official layout.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if infer_frames < 4 or infer_frames % VAE_TEMPORAL_STRIDE:
        raise ValueError(f"infer_frames must be a positive multiple of 4, got {infer_frames}")
    if motion_frames < 1 or (motion_frames - 1) % VAE_TEMPORAL_STRIDE:
        raise ValueError(f"motion_frames must be 1 + 4k, got {motion_frames}")
    trim = 0 if start_from_reference else first_clip_trim
    if not 0 <= trim < infer_frames:
        raise ValueError(f"first_clip_trim must be in 0..{infer_frames - 1}, got {first_clip_trim}")

    first_kept = infer_frames - trim
    num_clips = 1 if num_frames <= first_kept else 1 + math.ceil((num_frames - first_kept) / infer_frames)
    clips = []
    output_start = 0
    for r in range(num_clips):
        keep_start = trim if r == 0 else 0
        kept = min(infer_frames - keep_start, num_frames - output_start)
        generated = infer_frames
        if fit_last_clip and r == num_clips - 1:
            generated = min(infer_frames, VAE_TEMPORAL_STRIDE * math.ceil((keep_start + kept) / VAE_TEMPORAL_STRIDE))
        if aligned:
            drive_start = output_start - keep_start
        else:
            drive_start = r * infer_frames
        clips.append(ClipSpan(index=r, drive_start=drive_start, generated=generated,
                              keep_start=keep_start, kept=kept, output_start=output_start,
                              motion_start=output_start - motion_frames,
                              drop_motion=(r == 0 and not start_from_reference)))
        output_start += kept
    return LongVideoPlan(num_frames=num_frames, infer_frames=infer_frames, motion_frames=motion_frames,
                         first_clip_trim=trim, aligned=aligned, start_from_reference=start_from_reference,
                         clips=tuple(clips))
