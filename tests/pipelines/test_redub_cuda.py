"""The in-memory re-dub on a CUDA GPU with the tiny models (skips without CUDA): tensors land on the
right device, the known region stays exact, the same seed gives the same output."""

from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from s2v_toolkit.faces import FaceObservation, MaskParams, analyze_frames, mouth_mask
from s2v_toolkit.faces.synthetic import posed_face
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
from s2v_toolkit.pipelines.redub import RedubSettings, place_line, redub_frames
from s2v_toolkit.pipelines.redub_crop import plan_face_crops

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class ScriptedDetector:
    def __init__(self, script):
        self.script = script

    def detect(self, frame, index):
        return [FaceObservation(lm) for lm in self.script.get(index, [])]


def test_redub_on_the_gpu_keeps_everything_outside_the_mask():
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    astro = np.ascontiguousarray(data.astronaut())
    base = posed_face(center=(223.6, 129.4), width=93.5, angle_deg=3.3, mouth_open=0.15)
    frames, script = [], {}
    for k in range(12):
        m = np.float64([[1, 0, 96 - 223.6 + 160 + k], [0, 1, 96 - 129.4]])
        frames.append(cv2.warpAffine(astro, m, (320, 192), borderValue=(60, 60, 60)))
        lm = base.copy()
        lm[:, :2] = base[:, :2] @ m[:, :2].T + m[:, 2]
        script[k] = [lm]
    frames = np.stack(frames)
    analysis = analyze_frames(enumerate(frames), 25.0, ScriptedDetector(script), start=0, end=11)
    gen = load_generator(tiny=True, device="cuda")
    timing = place_line(0, 11, 2, 8 / 25, Fraction(25))
    plan = plan_face_crops(analysis.tracks[0], 0, 11, 64)
    settings = RedubSettings(crop_size=64, motion_frames=5,
                             generation=GenerationSettings(steps=2, infer_frames=8, seed=5))
    out, report = redub_frames(frames, timing, np.zeros(5120, np.float32), plan, gen, settings)
    again, _ = redub_frames(frames, timing, np.zeros(5120, np.float32), plan, gen, settings)
    assert np.array_equal(out, again)
    for k in range(12):
        if k < 2 or k > 9:
            assert np.array_equal(out[k], frames[k])
            continue
        mask = mouth_mask(frames.shape[1:3], analysis.tracks[0].landmarks_at(k), MaskParams())
        assert np.array_equal(out[k][mask == 0], frames[k][mask == 0])
        assert np.abs(out[k][mask > 0.5].astype(int) - frames[k][mask > 0.5]).mean() > 2
    assert report.status.count("generated") == 8
