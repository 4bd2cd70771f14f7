"""Preview video: boxes, track ids, landmarks and the mouth mask drawn over the shot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .analyze import FaceAnalysis, iter_video_frames
from .mask import MaskParams, mouth_mask

_COLOURS = ((255, 80, 80), (80, 200, 255), (120, 255, 120), (255, 200, 60), (220, 120, 255), (255, 255, 255))


def draw_faces(frame: np.ndarray, analysis: FaceAnalysis, frame_index: int,
               mask_params: MaskParams = MaskParams()) -> np.ndarray:
    """A copy of ``frame`` (RGB uint8, display orientation) with every track present at ``frame_index`` drawn."""
    import cv2

    out = frame.copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 360))
    for t in analysis.tracks:
        lm = t.landmarks_at(frame_index)
        if lm is None:
            continue
        colour = _COLOURS[t.track_id % len(_COLOURS)]
        alpha = mouth_mask((h, w), lm, mask_params)
        sel = alpha > 0
        out[sel] = (out[sel] * (1 - 0.5 * alpha[sel, None]) + np.array(colour) * 0.5 * alpha[sel, None]).astype(np.uint8)
        for x, y in np.rint(lm[:, :2]).astype(int):
            if 0 <= x < w and 0 <= y < h:
                out[y, x] = colour
        x0, y0, x1, y1 = (int(round(v)) for v in t.boxes()[t.index_of(frame_index)])
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick)
        cv2.putText(out, f"#{t.track_id}", (x0, max(y0 - 4 * thick, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thick, colour, thick, cv2.LINE_AA)
    cv2.putText(out, str(frame_index), (8, 20 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (255, 255, 255),
                thick, cv2.LINE_AA)
    return out


def write_preview(out_path: str | os.PathLike, video_path: str | os.PathLike, analysis: FaceAnalysis,
                  mask_params: MaskParams = MaskParams(), overwrite: bool = False) -> Path:
    """Encode the analysed range of ``video_path`` with the faces drawn (H.264, written atomically)."""
    from fractions import Fraction

    from s2v_toolkit.media import probe, write_video

    fps = probe(video_path).video.fps or Fraction(analysis.fps).limit_denominator(1001)
    frames = (draw_faces(f, analysis, i, mask_params)
              for i, f in iter_video_frames(video_path, analysis.start, analysis.end, analysis.rotation))
    return write_video(out_path, frames, fps, preset="h264", overwrite=overwrite,
                       frame_count=analysis.end - analysis.start + 1)
