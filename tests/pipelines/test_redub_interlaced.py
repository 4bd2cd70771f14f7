"""A re-dub of interlaced footage keeps the source's field order on the render (where the output format
can carry it) and says what the mouth region is: whole frames, both fields from one instant."""

import json

import av
import numpy as np
import pytest
import soundfile as sf

from s2v_toolkit.faces import analyze_frames
from s2v_toolkit.media import probe, read_frames
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
from s2v_toolkit.pipelines.redub import RedubSettings, redub_video, sidecar_path

from pipelines_testkit import ScriptedDetector, moving_astronaut, tone

W, H = 320, 192


def _interlaced_source(path, order_code: int, n=14):
    frames, marks = moving_astronaut(n, W, H)
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv422p10le"
        s.codec_context.field_order = order_code  # 3: bottom field first, as PAL DV and many SD captures
        for k, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv422p10le")
            frame.pts = k
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return frames, marks


@pytest.mark.parametrize("suffix, kept", [(".mkv", True), (".mp4", False)])
def test_redub_keeps_the_field_order_or_says_it_cannot(tmp_path, suffix, kept):
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    video = tmp_path / "capture.mkv"
    frames, marks = _interlaced_source(video, 3)
    assert probe(video).video.field_order == "bb"
    analysis = analyze_frames(((k, frames[k]) for k in range(14)), 25.0,
                              ScriptedDetector({k: [m] for k, m in enumerate(marks)}), start=0, end=13)
    line = tmp_path / "line.wav"
    sf.write(line, tone(0.4, sr=48000), 48000)
    out = tmp_path / f"take{suffix}"
    settings = RedubSettings(crop_size=64, motion_frames=5,
                             generation=GenerationSettings(steps=2, infer_frames=8, seed=3, guidance=4.5))
    redub_video(video, line, out, generator=load_generator(tiny=True, device="cpu"), settings=settings,
                frame_range=(0, 13), line_start=2, analysis=analysis)
    side = json.loads(sidecar_path(out).read_text())
    warnings = side["report"]["warnings"]
    assert side["source"]["field_order"] == "bb"
    assert any(w.startswith("interlaced source (bb): the mouth is generated as whole frames") for w in warnings)
    assert probe(out).video.field_order == ("bb" if kept else "progressive")
    assert any("written flagged progressive" in w for w in warnings) is not kept
    assert len(read_frames(out, 0, 14)) == 14 and np.asarray(read_frames(out, 0, 1)).max() > 0
