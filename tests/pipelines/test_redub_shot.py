"""The whole re-dub with the tiny random-weight S2V models on a moving real face (skimage's astronaut).

Landmarks come from a scripted stand-in detector (synthetic landmarks fitted to the astronaut's face),
except in the CLI test, which runs the real landmarker and skips when its bundle is not built.
"""

import json
import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest
import soundfile as sf
from skimage import data

from pipelines_testkit import ClipSaves, ScriptedDetector, moving_astronaut

from s2v_toolkit.errors import OutputError
from s2v_toolkit.faces import MaskParams, analyze_frames, find_landmarker_bundle, mouth_mask
from s2v_toolkit.media import (
    ColourInfo,
    VideoReader,
    from_rgb,
    probe,
    read_audio,
    read_frames,
    sample_masks,
    scale_to_16,
    write_video,
)
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
from s2v_toolkit.pipelines.redub import (
    RedubError,
    RedubReport,
    RedubSettings,
    place_line,
    redub_stream,
    redub_video,
    sidecar_path,
)
from s2v_toolkit.pipelines.redub_crop import plan_face_crops

FPS = Fraction(25)
W, H = 320, 192
LOST = (11, 12)  # frames where the detector "loses" the face


def _settings(**kw):
    return RedubSettings(crop_size=64, motion_frames=5,
                         generation=GenerationSettings(steps=2, infer_frames=8, seed=3, guidance=4.5), **kw)


def _astronaut_shot(n=24):
    """Frames of the astronaut's face moving and turning slightly; the scripted landmarks miss LOST."""
    frames, marks = moving_astronaut(n, W, H)
    script = {k: [lm] for k, lm in enumerate(marks) if not LOST[0] <= k <= LOST[1]}
    return np.stack(frames), script


def _analysis(frames, script, start, end):
    return analyze_frames(((k, frames[k]) for k in range(start, end + 1)), float(FPS), ScriptedDetector(script),
                          start=start, end=end)


def _speech(seconds, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
            + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def generator():
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    return load_generator(tiny=True, device="cpu")


@pytest.fixture(scope="module")
def shot():
    return _astronaut_shot()


STREAM_LOG: dict = {}  # what the streamed re-dub of the `redubbed` fixture held at each output frame


@pytest.fixture(scope="module")
def redubbed(generator, shot):
    frames, script = shot
    analysis = _analysis(frames, script, 0, len(frames) - 1)
    timing = place_line(0, len(frames) - 1, 5, 12 / 25, FPS)       # line frames 5-16
    plan = plan_face_crops(analysis.tracks[0], 0, len(frames) - 1, 64)
    blend_log = []

    def observer(clip_start, step, latents, known, mask):
        keep = (mask == 0).expand_as(latents)
        blend_log.append((clip_start, step, float((latents[keep] - known[keep]).abs().max()),
                          float((latents[~keep] - known[~keep]).abs().mean())))

    # streamed (as redub_video does): an instrumented reader records how many frames are held
    read: list[int] = []

    def reader():
        for k in range(len(frames)):
            read.append(k)
            yield frames[k]

    report = RedubReport.empty(timing, 0, 64)
    out, held = [], []
    for frame in redub_stream(reader(), timing, _speech(0.48), plan, generator, report, _settings(),
                              frame_at=lambda f: frames[f], observer=observer):
        held.append(len(read) - len(out))                            # frames read but not yet handed on
        out.append(frame)
    STREAM_LOG['held'] = held
    return frames, analysis, np.stack(out), report, blend_log


def test_only_the_mouth_of_the_line_frames_changes(redubbed):
    src, analysis, out, report, _ = redubbed
    assert out.shape == src.shape and out.dtype == src.dtype
    line = range(5, 17)
    for k in range(len(src)):
        if k not in line or LOST[0] <= k <= LOST[1]:
            assert np.array_equal(out[k], src[k]), f"frame {k} outside the line/face must be untouched"
            continue
        mask = mouth_mask(src.shape[1:3], analysis.tracks[0].landmarks_at(k), MaskParams())
        assert report.status[k] == "generated"
        assert np.array_equal(out[k][mask == 0], src[k][mask == 0]), f"frame {k}: pixels outside the mask changed"
        inside = mask > 0.5
        assert np.abs(out[k][inside].astype(int) - src[k][inside]).mean() > 2, f"frame {k}: mouth not regenerated"
        assert report.mask_coverage[k] == pytest.approx(np.count_nonzero(mask) / mask.size, rel=0.05)
    assert report.status[LOST[0]:LOST[1] + 1] == ["face_lost", "face_lost"]
    assert report.lost_ranges == [LOST]
    assert any("11-12" in w for w in report.warnings)
    assert report.crop_shape == (64, 64) and report.latent_shape[-2:] == (8, 8)


def test_latent_blend_keeps_the_known_region_on_the_source_trajectory_at_every_step(redubbed):
    *_, log = redubbed
    clips = sorted({c for c, *_ in log})
    assert clips == [5, 13]                                  # two clips of 8 frames for a 12-frame line
    for clip in clips:
        steps = [s for c, s, *_ in log if c == clip]
        assert steps == [0, 1]                                # every step of the clip was blended
    assert all(outside == 0.0 for _, _, outside, _ in log)   # outside the mask: exactly the re-noised source
    assert all(inside > 0.01 for *_, inside in log)          # inside: the model's own latent


@pytest.fixture(scope="module")
def source_file(tmp_path_factory, shot):
    frames, _ = shot
    folder = tmp_path_factory.mktemp("redub_src")
    video = write_video(folder / "shot.mov", frames, FPS, audio=np.zeros(48000, np.float32),
                        start_timecode="01:00:10:00")
    line = folder / "line.wav"
    sf.write(line, _speech(0.4, 48000), 48000)               # 10 frames at 25 fps
    return video, line


def test_file_keeps_frames_rate_and_timecode_and_writes_a_sidecar(generator, shot, source_file, tmp_path):
    frames, script = shot
    video, line = source_file
    decoded = read_frames(video, 0, len(frames))
    analysis = _analysis(decoded, script, 2, 21)
    out = tmp_path / "take1.mov"
    doc = redub_video(video, line, out, generator=generator, settings=_settings(), frame_range=(2, 21),
                      line_start=4, analysis=analysis)
    info = probe(out).video
    assert (info.frame_count, info.fps, info.start_timecode, info.codec) == (20, FPS, "01:00:10:02", "prores")
    result = read_frames(out, 0, 20)
    src = decoded[2:22]
    # what re-encoding the untouched source planes gives (ProRes is lossy): frames and regions the
    # re-dub left alone must come out exactly like this
    with VideoReader(video, depth="native") as reader:
        planes = reader.read(2, 20)
    src_rt = read_frames(write_video(tmp_path / "src_rt.mov", planes, FPS), 0, 20)
    statuses = [f["status"] for f in doc["report"]["frames"]]
    assert statuses[:2] == ["passthrough"] * 2 and statuses[14:] == ["passthrough"] * 6
    assert statuses[9:11] == ["face_lost"] * 2                 # file frames 11-12
    for k in range(20):
        f = k + 2
        if statuses[k] == "generated":
            mask = mouth_mask(src.shape[1:3], analysis.tracks[0].landmarks_at(f), MaskParams())
            rows = np.flatnonzero(mask.any(1))
            band = np.zeros(mask.shape, bool)   # the 16-row macroblock rows the mask touches
            band[rows[0] // 16 * 16:(rows[-1] // 16 + 1) * 16] = True
            assert np.array_equal(result[k][~band], src_rt[k][~band])
            # inside the band, ProRes's DCT blocks and 4:2:2 chroma spread the change a little
            outside = cv2.dilate((mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
            diff = np.abs(result[k].astype(int) - src_rt[k])
            assert diff[outside].max() <= 6 and diff[outside].mean() < 0.5
            assert diff[mask > 0.5].mean() > 2
        else:
            assert np.array_equal(result[k], src_rt[k])
    side = json.loads(sidecar_path(out).read_text())
    assert side["plumbing_only"] is True and "plumbing" in side["note"]
    assert side["report"]["timing"]["line"] == [4, 13] and len(side["report"]["frames"]) == 20
    assert side["settings"]["crop_size"] == 64 and side["settings"]["blend"]["dilation"] == 1
    assert side["output"]["start_timecode"] == "01:00:10:02"
    assert all(f["mask_coverage"] > 0 for f in side["report"]["frames"] if f["status"] == "generated")
    # the line's audio starts at its record frame (2 frames into the shot), silence before
    audio = read_audio(out)
    assert np.abs(audio[:int(0.07 * 16000)]).max() < 1e-3
    assert np.abs(audio[int(0.1 * 16000):int(0.4 * 16000)]).max() > 0.1
    assert probe(video).video.frame_count == len(frames)       # the source is untouched


def _must_not_load():
    pytest.fail("models were loaded for a run that should have been refused first")


def test_bad_requests_are_one_line_errors_before_any_model_loads(shot, source_file, tmp_path, readonly_dir):
    frames, script = shot
    video, line = source_file
    decoded = read_frames(video, 0, 8)
    kw = dict(generator=_must_not_load, settings=_settings())
    with pytest.raises(OutputError, match="is the source video"):
        redub_video(video, line, video, **kw)
    with pytest.raises(OutputError, match="read-only") as e:
        redub_video(video, line, readonly_dir / "out.mov", **kw)
    assert "\n" not in str(e.value) and str(readonly_dir) in str(e.value)
    no_face = _analysis(decoded, {}, 0, 7)
    with pytest.raises(RedubError, match=r"shot.mov: no face found in the line's frames 0-9") as e:
        redub_video(video, line, tmp_path / "a.mov", analysis=no_face, frame_range=(0, 9), **kw)
    assert "\n" not in str(e.value)
    with pytest.raises(RedubError, match=r"shot.mov: .*ends at frame 24, after the shot's last frame 23"):
        redub_video(video, line, tmp_path / "a.mov", line_start=15, **kw)
    with pytest.raises(RedubError, match=r"shot frames 0-99 are outside the file \(frames 0-23\)"):
        redub_video(video, line, tmp_path / "a.mov", frame_range=(0, 99), **kw)
    assert not list(tmp_path.glob("a.mov*"))


needs_bundle = pytest.mark.skipif(find_landmarker_bundle() is None,
                                  reason="face_landmarker.task not built: run `s2vt faces setup` first")


@needs_bundle
def test_cli_redubs_a_real_tracked_face_and_refuses_a_faceless_shot(tmp_path):
    astro = np.ascontiguousarray(data.astronaut())
    frames = []
    for k in range(16):
        m = cv2.getRotationMatrix2D((223.6, 129.4), 0, 1.6)
        m[:, 2] += (320 - 223.6 + 2 * k, 180 - 129.4)
        frames.append(cv2.warpAffine(astro, m, (640, 360), flags=cv2.INTER_LINEAR, borderValue=(60, 60, 60)))
    video = write_video(tmp_path / "take.mov", np.stack(frames), FPS, start_timecode="10:00:00:00")
    line = tmp_path / "line.wav"
    sf.write(line, _speech(0.32), 16000)
    out = tmp_path / "redub.mov"
    def redub(video, out, *extra):
        return subprocess.run([sys.executable, "-m", "s2v_toolkit", "redub", str(video), "--audio", str(line),
                               "--model", "tiny", "--crop", "64", "--steps", "2", "--clip-frames", "8",
                               "--motion-frames", "5", "--seed", "1", "--quiet", "-o", str(out), *extra],
                              capture_output=True, text=True, timeout=300)

    run = redub(video, out, "--line-start", "10:00:00:04")
    assert run.returncode == 0, run.stderr
    assert "plumbing" in run.stderr
    info = probe(out).video
    assert (info.frame_count, info.start_timecode) == (16, "10:00:00:00")
    side = json.loads(sidecar_path(out).read_text())
    assert side["report"]["timing"]["line"] == [4, 11]
    assert sum(f["status"] == "generated" for f in side["report"]["frames"]) >= 6

    grey = write_video(tmp_path / "empty.mov", np.full((8, 360, 640, 3), 90, np.uint8), FPS)
    bad = redub(grey, tmp_path / "none.mov")
    assert bad.returncode == 2
    errors = [x for x in bad.stderr.splitlines() if x.startswith("s2vt: error:")]  # (mediapipe logs too)
    assert errors == [f"s2vt: error: {grey}: no face found in the line's frames 0-7"], bad.stderr
    assert not (tmp_path / "none.mov").exists()


def test_lossless_file_is_bit_identical_outside_the_mask(generator, shot, source_file, tmp_path):
    """With FFV1 (.mkv) the written file itself keeps every pixel outside the mask region exactly."""
    frames, script = shot
    video, line = source_file
    decoded = read_frames(video, 0, len(frames))
    analysis = _analysis(decoded, script, 2, 21)
    out = tmp_path / "take1.mkv"
    doc = redub_video(video, line, out, generator=generator, settings=_settings(), frame_range=(2, 21),
                      line_start=4, analysis=analysis)
    assert probe(out).video.codec == "ffv1" and probe(out).video.start_timecode == "01:00:10:02"
    result, src = read_frames(out, 0, 20), decoded[2:22]
    statuses = [f["status"] for f in doc["report"]["frames"]]
    assert "generated" in statuses
    for k, status in enumerate(statuses):
        if status != "generated":
            assert np.array_equal(result[k], src[k]), k           # frames outside the line: untouched
            continue
        mask = mouth_mask(src.shape[1:3], analysis.tracks[0].landmarks_at(k + 2), MaskParams())
        near = cv2.dilate((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert np.array_equal(result[k][~near], src[k][~near]), k  # outside the mask: bit-identical
        assert np.abs(result[k][mask > 0.5].astype(int) - src[k][mask > 0.5]).mean() > 2  # inside: changed


def test_the_shot_streams_through_a_window_of_one_clip(redubbed):
    """Frames are read, re-dubbed and handed on in order; never more than one clip's frames are held."""
    frames, _, out, report, _ = redubbed
    held = STREAM_LOG['held']
    assert len(out) == len(frames) and max(held) == 8                 # one clip (8 frames) at most
    assert held[:5] == [1] * 5                                        # before the line: straight through
    assert held[17:] == [1] * 7                                       # after it: straight through
    assert report.status.count("generated") == 10 and len(report.clips) == 2


def test_ten_bit_master_keeps_every_sample_outside_the_mask_at_10_bits(generator, shot, source_file, tmp_path):
    """A 10-bit 4:2:2 ProRes master re-dubbed to FFV1: same pix_fmt and colour; outside the mask every
    10-bit sample (luma and chroma) is the source's, bit for bit."""
    frames, script = shot
    _, line = source_file
    rng = np.random.default_rng(1)
    rgb16 = np.clip(scale_to_16(frames, 8).astype(int) + rng.integers(-120, 120, frames.shape), 0, 65535)
    tags = ColourInfo("bt709", "bt709", "bt709", "tv")
    master = write_video(tmp_path / "master.mov", [from_rgb(f.astype(np.uint16), "yuv422p10le", tags) for f in rgb16],
                         FPS, audio=np.zeros(48000, np.float32), start_timecode="01:00:10:00")
    assert probe(master).video.bit_depth == 10
    with VideoReader(master, depth="native") as reader:
        src = reader.read(2, 20)
    analysis = _analysis(read_frames(master, 0, len(frames)), script, 2, 21)
    out = tmp_path / "take.mkv"
    doc = redub_video(master, line, out, generator=generator, settings=_settings(), frame_range=(2, 21),
                      line_start=4, analysis=analysis)
    v = probe(out).video
    assert (v.codec, v.pix_fmt, v.bit_depth, v.start_timecode) == ("ffv1", "yuv422p10le", 10, "01:00:10:02")
    assert v.colour == tags.to_dict() and doc["source"]["bit_depth"] == 10
    with VideoReader(out, depth="native") as reader:
        result = reader.read(0, 20)
    statuses = [f["status"] for f in doc["report"]["frames"]]
    assert statuses.count("generated") >= 6
    for k, status in enumerate(statuses):
        if status != "generated":
            assert result[k].equal(src[k]), k                         # untouched frames: every sample
            continue
        mask = mouth_mask(src[k].shape, analysis.tracks[0].landmarks_at(k + 2), MaskParams())
        touched, core = sample_masks(src[k], mask), sample_masks(src[k], mask > 0.5)
        for p, (a, b, t, c) in enumerate(zip(result[k].planes, src[k].planes, touched, core)):
            assert np.array_equal(a[~t], b[~t]), (k, p)               # outside the mask: bit-identical
            assert np.abs(a[c].astype(int) - b[c]).mean() > 4, (k, p)  # inside: regenerated


def test_killed_streamed_redub_resumes_at_its_last_finished_clip(generator, shot, source_file, tmp_path,
                                                                   monkeypatch):
    """redub_video streams the shot; killed after its first clip, a re-run with the same resume_dir takes
    that clip from the store (never generated again) and writes the same file as an uninterrupted run.
    The sidecar records the read's frame map."""
    frames, script = shot
    video, line = source_file
    analysis = _analysis(read_frames(video, 0, len(frames)), script, 2, 21)

    def run(out, resume):
        return redub_video(video, line, out, generator=generator, settings=_settings(), frame_range=(2, 21),
                           line_start=4, analysis=analysis, resume_dir=resume)

    whole_doc = run(tmp_path / "whole.mkv", None)
    whole = read_frames(tmp_path / "whole.mkv", 0, 20)
    assert whole_doc["source"]["frame_map"]["count"] == 20 and whole_doc["source"]["frame_map"]["start"] == 2
    assert whole_doc["source"]["vfr"] is False and whole_doc["source"]["bit_depth"] == 10

    resume = tmp_path / "parts"
    saves = ClipSaves(monkeypatch, kill_next=True)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "take.mkv", resume)
    assert saves.indices == [0] and not (tmp_path / "take.mkv").exists()

    doc = run(tmp_path / "take.mkv", resume)
    assert saves.indices == [0, 1]                           # clip 0 came from the store, clip 1 was generated
    assert np.array_equal(read_frames(tmp_path / "take.mkv", 0, 20), whole)
    assert doc["report"]["clips"] == whole_doc["report"]["clips"]
