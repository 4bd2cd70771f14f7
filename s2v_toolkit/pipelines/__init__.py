"""Pipelines that compose the stages: S2V generation (long video, CFG, experts) and masked re-dub.

Public API:
- generation: :class:`S2VGenerator` (``S2VGenerator.load(bundle).generate(...)``), :func:`locate_checkpoint`,
  :func:`tiny_bundle`, :class:`GenerationSettings`, :func:`denoise_clip` (the one denoising loop, with a
  per-step callback for masked blending), :class:`ClipStore` (resumable long generations)
- re-dub: :func:`redub_video`, :class:`RedubSettings`, :class:`RedubReport`, :class:`LatentBlend`
- arithmetic: :func:`plan_long_video` and the frame/audio index helpers, :func:`guided_prediction`

The names are loaded on first use (PEP 562): most of them need torch, and commands that only read
timelines or media (``s2vt probe``, ``convert``, ``conform-timeline``, ``plan`` from given turns) import
this package for its ``--preset`` choices alone; importing torch there cost them ~2.4 s of start-up each.
"""

from __future__ import annotations

import importlib
from typing import Any

# submodule -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    "checkpoint_bundle": ("CheckpointBundle", "build_tiny_bundle", "locate_checkpoint", "tiny_bundle"),
    "clip_store": ("ClipStore",),
    "frame_math": ("INFER_FRAMES", "MODEL_FPS", "MOTION_FRAMES", "ClipSpan", "LongVideoPlan",
        "audio_feature_index", "drive_source_index", "model_frames_for_output", "official_clip_count",
        "output_frame_count", "plan_long_video", "retime_sources"),
    "generation_inputs": ("DEFAULT_NEGATIVE_PROMPT", "DriveAudio", "GenerationSettings", "PoseVideo",
        "ReferenceImage", "fit_size", "load_drive_audio", "load_pose_video", "load_reference_image",
        "parse_fps", "parse_max_area"),
    "guidance": ("combine_guidance", "guidance_active", "guided_prediction"),
    "presets": ("PRESETS", "apply_preset"),
    "redub": ("LineTiming", "RedubError", "RedubReport", "RedubSettings", "place_line", "redub_frames",
        "redub_video"),
    "redub_crop": ("FaceCropPlan", "plan_face_crops"),
    "redub_mask": ("LatentBlend", "LatentBlendParams", "latent_mask"),
    "s2v_generator": ("RANDOM_WEIGHTS_WARNING", "ClipTrace", "GenerationResult", "GenerationTrace",
        "S2VGenerator", "sidecar_path"),
    "sampling": ("StepCallback", "StepInfo", "denoise_clip"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
