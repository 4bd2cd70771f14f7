"""A re-dub of a variable-rate source (a phone dropping frames): frames placed by time, repeats recorded in the
sidecar, never a black frame. (The bug: 11 all-black `face_lost`/`passthrough` frames on such a clip.)"""

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from s2v_toolkit.faces import FaceObservation, analyze_frames
from s2v_toolkit.media import probe, read_frames
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
from s2v_toolkit.pipelines.redub import RedubSettings, redub_video, sidecar_path

from media_factory import shown_on_grid
from pipelines_testkit import moving_astronaut, tone

FPS = Fraction(25)
W, H = 320, 192
MISSING = (6, 7, 15)  # source frames the "phone" dropped


def _shot(n=24):
    return moving_astronaut(n, W, H)


class _Scripted:
    def __init__(self, script):
        self.script = script

    def detect(self, frame, index):
        return [FaceObservation(self.script[index])] if index in self.script else []


@pytest.mark.filterwarnings("ignore::s2v_toolkit.errors.MediaWarning")
def test_redub_of_a_vfr_source_places_frames_by_time(tmp_path):
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    frames, marks = _shot()
    kept = [k for k in range(len(frames)) if k not in MISSING]
    times = [Fraction(k) / FPS for k in kept]
    video = tmp_path / "phone.mkv"  # lossless: the expected pixels are exactly the frames written
    with av.open(str(video), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "bgr0"
        s.time_base = Fraction(1, 1000)
        for k, t in zip(kept, times):
            f = av.VideoFrame.from_ndarray(frames[k], format="rgb24")
            f.pts, f.time_base = round(t * 1000), Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    v = probe(video).video
    assert v.vfr and v.fps == FPS and v.frame_count == len(frames) and v.duplicated == len(MISSING)
    shown = [kept[i] for i in shown_on_grid(times, FPS, len(frames))]  # grid frame -> the frame written
    # the face as a tracker would see it on the grid (a repeated frame: the same face)
    script = {g: marks[shown[g]] for g in range(len(frames))}
    grid = read_frames(video, 0, len(frames))
    analysis = analyze_frames(((g, grid[g]) for g in range(2, 22)), float(FPS), _Scripted(script), start=2, end=21)
    line = tmp_path / "line.wav"
    sf.write(line, tone(0.4, sr=48000), 48000)
    out = tmp_path / "take.mkv"
    settings = RedubSettings(crop_size=64, motion_frames=5,
                             generation=GenerationSettings(steps=2, infer_frames=8, seed=3, guidance=4.5))
    doc = redub_video(video, line, out, generator=load_generator(tiny=True, device="cpu"), settings=settings,
                      frame_range=(2, 21), line_start=4, analysis=analysis)
    result = read_frames(out, 0, 20)
    statuses = [f["status"] for f in doc["report"]["frames"]]
    for k in range(20):
        src = frames[shown[k + 2]]
        assert result[k].max() > 0, f"frame {k} is black"
        if statuses[k] != "generated":
            assert np.array_equal(result[k], src), f"frame {k + 2} ({statuses[k]}) is not the frame shown then"
    side = json.loads(sidecar_path(out).read_text())
    fm = side["source"]["frame_map"]
    assert fm["duplicated"] == [g for g in range(3, 22) if shown[g] == shown[g - 1]] == list(MISSING)
    assert side["source"]["vfr"] is True
    assert any("variable-rate source" in w for w in side["report"]["warnings"])
