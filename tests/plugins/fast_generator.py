"""A fast generator for end-to-end tests of the jobs stage behind `s2vt serve --generator`: writes a real
H.264 file of exactly the job's frame count at the timeline rate (no model)."""

from __future__ import annotations

import numpy as np


class FastGenerator:
    name = "test-fast"
    suffix = ".mp4"

    def render(self, inputs, out_path):
        from s2v_toolkit.media import write_video

        n = inputs.frame_count
        frames = np.zeros((n, 32, 32, 3), np.uint8)
        frames[..., 0] = (np.arange(n) * 3 % 256)[:, None, None]
        write_video(out_path, frames, inputs.fps, preset="h264")
        return {"model": self.name, "frames": n}


def make(spec):
    return FastGenerator()
