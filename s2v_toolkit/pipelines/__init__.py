"""Pipelines that compose the stages: guidance, long-video frame arithmetic, generation, re-dub.

Public API: :func:`guided_prediction`, :func:`combine_guidance`, :func:`plan_long_video` and the
frame/audio index helpers of :mod:`frame_math`.
"""

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
from s2v_toolkit.pipelines.guidance import combine_guidance, guided_prediction

__all__ = [
    "INFER_FRAMES", "MODEL_FPS", "MOTION_FRAMES", "ClipSpan", "LongVideoPlan", "audio_feature_index",
    "combine_guidance", "drive_source_index", "guided_prediction", "model_frames_for_output",
    "official_clip_count", "output_frame_count", "plan_long_video", "retime_sources",
]
