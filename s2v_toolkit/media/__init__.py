"""Media I/O on PyAV: probe, frame-accurate video reads, sample-exact audio reads, atomic writes.

Public API::

    probe(path) -> MediaInfo
    read_frames(path, start, count) -> (count, H, W, 3) uint8;  VideoReader(path).read(start, count)
    VideoReader(path).read_mapped(start, count) -> (frames, FrameMap): duplicates/drops/damage per grid frame
    VideoReader(path).frames(start, count) -> one (H, W, 3) array a frame (no stacked block); .display_rotation
    read_audio(path, start, duration, sample_rate=16000, channel=None) -> float32 mono
    read_audio_channels(path, start, duration, sample_rate=None) -> ((channels, n) float32, rate)
    write_video(path, frames, fps, preset="prores_hq"|"dnxhr_hq"|"h264", audio=..., start_timecode=...)
    convert(src, dst, preset=None, cfr=False, rate=None); convert_report(...) -> ConversionReport
    VideoReader(path, depth=16).read(...) -> uint16 R'G'B'; depth="native" -> [PlanarFrame] (decoded planes)
    PlanarFrame, ColourInfo, to_rgb / to_rgb_float / from_rgb, blend_rgb_patch (pixels: bit depth, colour)
    display_transform(path) -> (degrees, display matrix); rotate_frame(frame, degrees): a frame turned upright;
    write_video(..., display_rotation=degrees or matrix) carries a source's rotation to an output
    atomic_output(path) ; timecode helpers
"""

from s2v_toolkit.media.atomic import atomic_group, atomic_output, clean_stale, ensure_output_dir, pid_alive
from s2v_toolkit.media.audio import ANALYSIS_RATE, frame_to_sample, read_audio, read_audio_channels
from s2v_toolkit.media.convert import ConversionReport, convert, convert_report
from s2v_toolkit.media.pixels import (
    ColourInfo,
    PlanarFrame,
    blend_rgb_patch,
    from_av,
    from_rgb,
    rotate_frame,
    sample_masks,
    scale_from_16,
    scale_to_16,
    to_av,
    to_rgb,
    to_rgb_float,
)
from s2v_toolkit.media.png import encode_png, write_png
from s2v_toolkit.media.probe import AudioInfo, MediaInfo, VideoInfo, probe
from s2v_toolkit.media.timecode import (
    STANDARD_RATES,
    frames_to_timecode,
    is_drop_frame_rate,
    snap_rate,
    timecode_to_frames,
)
from s2v_toolkit.media.frame_index import FrameIndex, index_frames
from s2v_toolkit.media.video_reader import FrameMap, VideoReader, display_transform, export_frames_png, read_frames
from s2v_toolkit.media.writer import (
    VIDEO_PRESETS,
    VideoPreset,
    check_display_rotation,
    field_order_warnings,
    keeps_field_order,
    write_video,
)

__all__ = [
    "ColourInfo", "PlanarFrame", "blend_rgb_patch", "from_av", "from_rgb", "rotate_frame", "sample_masks",
    "scale_from_16", "scale_to_16", "to_av", "to_rgb",
    "ANALYSIS_RATE", "atomic_group", "atomic_output", "AudioInfo", "check_display_rotation", "clean_stale",
    "ConversionReport", "convert", "convert_report", "display_transform", "encode_png", "ensure_output_dir",
    "export_frames_png", "field_order_warnings", "frame_to_sample", "FrameIndex", "FrameMap",
    "frames_to_timecode", "index_frames", "is_drop_frame_rate", "keeps_field_order", "MediaInfo", "pid_alive",
    "probe", "read_audio", "read_audio_channels", "read_frames", "snap_rate", "STANDARD_RATES",
    "timecode_to_frames", "to_rgb_float", "VIDEO_PRESETS", "VideoInfo", "VideoPreset", "VideoReader",
    "write_png", "write_video",
]
