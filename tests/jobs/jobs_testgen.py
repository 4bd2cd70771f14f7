"""A small real generator for the job machinery's tests: writes a flat-colour H.264 clip of the job's
length with the job's audio. Behaviour is steered by environment variables so that worker processes
(spawned, or `s2vt render` in a subprocess) behave like the test's own process:

S2VT_TESTGEN_LOG    file to append "<job id>\n" to after each finished render (counts renders)
S2VT_TESTGEN_FAIL   substring of a job label whose render raises
S2VT_TESTGEN_SLEEP  seconds to sleep inside each render (to kill a worker mid-job)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


class FlatColourGenerator:
    name = "test-flat-colour"
    suffix = ".mp4"

    def __init__(self, spec=None):
        self.loads = 1
        self.rendered: list[str] = []

    def render(self, inputs, out_path: Path) -> dict:
        from s2v_toolkit.media import write_video

        job = inputs.job
        fail = os.environ.get("S2VT_TESTGEN_FAIL")
        if fail and fail in job.label:
            raise RuntimeError(f"test generator refuses {job.label}")
        sleep = float(os.environ.get("S2VT_TESTGEN_SLEEP", "0") or 0)
        if sleep:
            time.sleep(sleep)
        shade = (job.seed % 200) + 30
        frames = np.full((inputs.frame_count, 48, 64, 3), shade, np.uint8)
        if inputs.progress:
            inputs.progress(0.5)
        write_video(out_path, frames, inputs.fps, preset="h264", audio=inputs.audio, audio_rate=inputs.audio_rate)
        self.rendered.append(job.id)
        log = os.environ.get("S2VT_TESTGEN_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(job.id + "\n")
        return {"model": self.name, "shade": shade}


def make(spec=None):
    return FlatColourGenerator(spec)
