"""A re-dub of rotated media (a phone's display matrix): the face is found and regenerated upright, and the
output keeps the source's stored frames and its display rotation, so it plays the way the source does.
(Before: the re-dub refused such files with "transcode it upright first".)"""

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from s2v_toolkit.errors import OutputError
from s2v_toolkit.faces import analyze_frames
from s2v_toolkit.media import PlanarFrame, VideoReader, from_rgb, rotate_frame, to_rgb
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
from s2v_toolkit.pipelines.redub import RedubSettings, redub_video, sidecar_path

from pipelines_testkit import ScriptedDetector, moving_astronaut, tone

W, H = 320, 192          # as displayed (upright)
ROTATION = 90            # players turn the stored frames 90 degrees counter-clockwise
PIX_FMT = "yuv422p10le"  # 4:2:2: turned sideways its chroma is halved the other way


def _rotated_source(path, n=16):
    """A lossless file whose stored frames are the upright shot turned clockwise, with a display matrix
    that turns them back; returns the upright frames and their landmarks."""
    frames, marks = moving_astronaut(n, W, H)
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = H, W, PIX_FMT
        s.set_display_rotation(ROTATION)
        for f in frames:
            stored = np.ascontiguousarray(np.rot90(f, -1))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24").reformat(format=PIX_FMT)
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return frames, marks


def _settings():
    return RedubSettings(crop_size=64, motion_frames=5,
                         generation=GenerationSettings(steps=2, infer_frames=8, seed=3, guidance=4.5))


def _analysis(video, frames, marks, start, end):
    """The face as the analysis sees it: on upright frames, landmarks in display space."""
    return analyze_frames(((k, frames[k]) for k in range(start, end + 1)), 25.0, ScriptedDetector({k: [m] for k, m in enumerate(marks)}),
                          start=start, end=end, source=str(video), rotation=ROTATION)


def test_rotate_frame_keeps_every_sample_and_the_colour():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (576, 720, 3), dtype=np.uint8)  # SD, untagged: BT.601 by its height
    tagged = from_rgb(rgb.astype(np.float32) / 255.0, "yuv422p10le")
    pf = PlanarFrame(tagged.pix_fmt, tagged.planes)  # as decoded from a file that says nothing
    turned = rotate_frame(pf, 90)
    assert turned.shape == (720, 576)
    assert turned.subsampling(1) == (1, 2)            # 4:2:2 turned sideways: chroma halved vertically
    # the turned frame converts to the turned picture: with the matrix of the stored frame's height
    # (720 rows after turning would otherwise select BT.709)
    assert np.array_equal(to_rgb(turned), np.rot90(to_rgb(pf), 1))
    back = rotate_frame(turned, -90)
    assert all(np.array_equal(a, b) for a, b in zip(back.planes, pf.planes))
    assert np.array_equal(rotate_frame(rgb, 270), np.rot90(rgb, -1))
    assert rotate_frame(rgb, 0) is rgb
    with pytest.raises(ValueError, match="multiple of 90"):
        rotate_frame(rgb, 45)


@pytest.mark.filterwarnings("ignore::s2v_toolkit.errors.MediaWarning")
def test_redub_of_rotated_media_keeps_its_stored_frames_and_display_rotation(tmp_path):
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    video = tmp_path / "phone.mkv"
    frames, marks = _rotated_source(video)
    line = tmp_path / "line.wav"
    sf.write(line, tone(0.4, sr=48000), 48000)
    out = tmp_path / "take.mkv"
    start, end = 2, 13
    doc = redub_video(video, line, out, generator=load_generator(tiny=True, device="cpu"), settings=_settings(),
                      frame_range=(start, end), line_start=4, analysis=_analysis(video, frames, marks, start, end))
    side = json.loads(sidecar_path(out).read_text())
    assert side["source"]["display_rotation"] == ROTATION and side["source"]["faces_turned"] == ROTATION
    assert side["output"]["display_matrix"] == side["source"]["display_matrix"] != None  # noqa: E711
    statuses = [f["status"] for f in doc["report"]["frames"]]
    assert "generated" in statuses
    with VideoReader(video, depth="native") as src, VideoReader(out, depth="native") as res:
        source = src.read(start, end - start + 1)
        result = res.read(0, end - start + 1)
        assert res.display_rotation == ROTATION  # plays upright, like the source
        assert res.display_matrix == src.display_matrix
    assert result[0].shape == source[0].shape == (W, H) and result[0].pix_fmt == PIX_FMT
    for k, (a, b) in enumerate(zip(source, result)):
        if statuses[k] != "generated":
            assert all(np.array_equal(p, q) for p, q in zip(a.planes, b.planes)), f"frame {k + start} changed"
            continue
        # what changed lies around the mouth, found upright and turned back to the stored frame
        changed = np.argwhere(rotate_frame(b.planes[0] != a.planes[0], ROTATION))
        assert len(changed), f"frame {k + start}: generated but unchanged"
        mouth = marks[k + start][[13, 14, 61, 291], :2]  # lips: upper, lower, corners (display space)
        centre = changed.mean(axis=0)[::-1]               # (x, y) in display space
        assert np.linalg.norm(centre - mouth.mean(axis=0)) < 20, f"frame {k + start}: change away from the mouth"


def test_rotated_media_into_a_file_that_cannot_carry_the_rotation_is_refused_first(tmp_path):
    video = tmp_path / "phone.mkv"
    frames, marks = _rotated_source(video, n=14)
    line = tmp_path / "line.wav"
    sf.write(line, tone(0.4, sr=48000), 48000)

    def never():
        raise AssertionError("the model was loaded for a run that cannot be written")

    with pytest.raises(OutputError, match="displayed rotated by 90 degrees and .mxf cannot carry a display rotation"):
        redub_video(video, line, tmp_path / "take.mxf", generator=never, settings=_settings(),
                    frame_range=(0, 13), line_start=2, analysis=_analysis(video, frames, marks, 0, 13))
    assert not (tmp_path / "take.mxf").exists()


def test_write_video_carries_a_display_rotation(tmp_path):
    from s2v_toolkit.media import write_video

    frames = [np.full((48, 64, 3), 40 * k, np.uint8) for k in range(3)]
    for ext in (".mov", ".mp4", ".mkv"):
        path = write_video(tmp_path / f"r{ext}", frames, Fraction(25), display_rotation=-90)
        with VideoReader(path) as r:
            assert r.read(0, 1).shape == (1, 48, 64, 3) and r.display_rotation == 270, ext
    with pytest.raises(OutputError, match="multiple of 90"):
        write_video(tmp_path / "x.mov", frames, 25, display_rotation=30)
    with pytest.raises(OutputError, match="cannot carry"):
        write_video(tmp_path / "x.dpx", frames, 25, display_rotation=180)
    assert not list(tmp_path.glob("x*"))


def test_a_mirroring_display_matrix_is_carried_over_exactly(tmp_path):
    from s2v_toolkit.media import write_video

    # a transpose (turn and mirror, as some phones and editors write): the angle alone loses the mirror
    transpose = (0, 1 << 16, 0, 1 << 16, 0, 0, 0, 0, 1 << 30)
    frames = [np.full((48, 64, 3), 40 * k, np.uint8) for k in range(3)]
    src = write_video(tmp_path / "src.mp4", frames, 25, display_rotation=transpose)
    with VideoReader(src) as r:
        r.read(0, 1)
        assert r.display_matrix == transpose
        out = write_video(tmp_path / "out.mov", r.read(0, 3), 25, display_rotation=r.display_matrix)
    with VideoReader(out) as r:
        r.read(0, 1)
        assert r.display_matrix == transpose and r.display_rotation == 270
    # the identity (some cameras write one) is no rotation: an MXF can take it
    big = [np.zeros((128, 256, 3), np.uint8)] * 2  # DNxHR's smallest frame
    assert write_video(tmp_path / "plain.mxf", big, 25, display_rotation=(1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30))
    with pytest.raises(OutputError, match="rotated by 270 degrees and mirrored and .dpx cannot carry"):
        write_video(tmp_path / "x.dpx", frames, 25, display_rotation=transpose)
