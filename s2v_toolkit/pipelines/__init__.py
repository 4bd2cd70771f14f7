"""Pipelines that compose the stages: S2V generation (long video, CFG, experts) and masked re-dub.

Public API:
- generation: :class:`S2VGenerator` (``S2VGenerator.load(bundle).generate(...)``), :func:`locate_checkpoint`,
  :func:`tiny_bundle`, :class:`GenerationSettings`, :func:`denoise_clip` (the one denoising loop, with a
  per-step callback for masked blending), :class:`ClipStore` (resumable long generations)
- re-dub: :func:`redub_video`, :class:`RedubSettings`, :class:`RedubReport`, :class:`LatentBlend`
- arithmetic: :func:`plan_long_video` and the frame/audio index helpers, :func:`guided_prediction`
"""

from s2v_toolkit.pipelines.checkpoint_bundle import CheckpointBundle, build_tiny_bundle, locate_checkpoint, tiny_bundle
from s2v_toolkit.pipelines.clip_store import ClipStore
from s2v_toolkit.pipelines.frame_math import (
    INFER_FRAMES,
    MODEL_FPS,
    MOTION_FRAMES,
    ClipSpan,
    LongVideoPlan,
    audio_feature_index,
    drive_source_index,
    model_frames_for_output,
    official_clip_count,
    output_frame_count,
    plan_long_video,
    retime_sources,
)
from s2v_toolkit.pipelines.generation_inputs import (
    DEFAULT_NEGATIVE_PROMPT,
    DriveAudio,
    GenerationSettings,
    PoseVideo,
    ReferenceImage,
    fit_size,
    load_drive_audio,
    load_pose_video,
    load_reference_image,
    parse_fps,
    parse_max_area,
)
from s2v_toolkit.pipelines.guidance import combine_guidance, guidance_active, guided_prediction
from s2v_toolkit.pipelines.presets import PRESETS, apply_preset
from s2v_toolkit.pipelines.redub import (
    LineTiming,
    RedubError,
    RedubReport,
    RedubSettings,
    place_line,
    redub_frames,
    redub_video,
)
from s2v_toolkit.pipelines.redub_crop import FaceCropPlan, plan_face_crops
from s2v_toolkit.pipelines.redub_mask import LatentBlend, LatentBlendParams, latent_mask
from s2v_toolkit.pipelines.s2v_generator import (
    RANDOM_WEIGHTS_WARNING,
    ClipTrace,
    GenerationResult,
    GenerationTrace,
    S2VGenerator,
    sidecar_path,
)
from s2v_toolkit.pipelines.sampling import StepCallback, StepInfo, denoise_clip

__all__ = [name for name in dir() if not name.startswith("_") and name != "annotations"]
