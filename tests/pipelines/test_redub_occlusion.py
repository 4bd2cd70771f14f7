"""A hand over the mouth in the re-dub: the covered frames pass through untouched and are named in the report
(sidecar) and the plan; a line covered in most of its frames is skipped. Tiny random-weight models, generated
shot (skimage's astronaut with a flat skin-coloured patch drawn over her mouth for some frames)."""

from fractions import Fraction

import cv2
import numpy as np
import pytest

from s2v_toolkit.faces import analyze_frames
from s2v_toolkit.jobs.planner import ShotContext, occlusion_verdict
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
from s2v_toolkit.pipelines.redub import RedubSettings, occluded_share, place_line, redub_frames
from s2v_toolkit.pipelines.redub_crop import plan_face_crops

from pipelines_testkit import ASTRONAUT_POSE, ScriptedDetector, moving_astronaut

FPS = Fraction(25)
W, H = 320, 192
N = 24
COVERED = range(8, 12)    # a hand over the mouth (inside the line 5-16)


def _shot(covered):
    frames, marks = moving_astronaut(N, W, H)
    script = {}
    for k, (frame, lm) in enumerate(zip(frames, marks)):
        if k in covered:  # skin-coloured patch over the lips, from the cheeks' line down to the chin
            nose, w = lm[1, :2], ASTRONAUT_POSE["width"]
            p0, p1 = nose + np.array([-0.3, 0.04]) * w, nose + np.array([0.3, 0.3]) * w
            cv2.rectangle(frame, tuple(int(v) for v in p0), tuple(int(v) for v in p1), (226, 176, 150), -1)
        script[k] = [lm]
    frames = np.stack(frames)
    analysis = analyze_frames(((k, frames[k]) for k in range(N)), float(FPS), ScriptedDetector(script),
                              start=0, end=N - 1)
    return frames, analysis


@pytest.fixture(scope="module")
def shot():
    return _shot(COVERED)


def test_covered_frames_pass_through_and_are_named_in_the_report(shot):
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    frames, analysis = shot
    assert analysis.occluded_frames(0) == list(COVERED)
    timing = place_line(0, N - 1, 5, 12 / 25, FPS)  # line frames 5-16
    plan = plan_face_crops(analysis.tracks[0], 0, N - 1, 64, occluded_frames=analysis.occluded_frames(0),
                           occlusion_reasons=analysis.occlusion_reasons(0))
    assert not plan.crop_masks(8, 4, RedubSettings().mask).any()      # covered: empty mask
    assert plan.crop_masks(5, 3, RedubSettings().mask).any()
    assert occluded_share(plan, timing) == pytest.approx(4 / 12)
    settings = RedubSettings(crop_size=64, motion_frames=5,
                             generation=GenerationSettings(steps=2, infer_frames=8, seed=3, guidance=4.5))
    speech = (0.3 * np.sin(2 * np.pi * 180 * np.arange(7680) / 16000)).astype(np.float32)
    out, report = redub_frames(frames, timing, speech, plan, load_generator(tiny=True, device="cpu"), settings,
                               track_id=0)
    for k in range(N):
        if k in COVERED:
            assert np.array_equal(out[k], frames[k]), f"covered frame {k} must be the source"
            assert report.status[k] == "mouth_occluded"
        elif 5 <= k <= 16:
            assert report.status[k] == "generated"
    assert not np.array_equal(out[6], frames[6])
    assert report.occluded_ranges == [(8, 11)]
    doc = report.to_dict()
    # the patch covers the whole lips (not one corner): the sidecar says so
    assert doc["occluded_ranges"] == [{"frames": [8, 11], "reason": "mouth occluded (lips covered)"}]
    assert any("mouth occluded in frames 8-11" in w for w in report.warnings)
    assert report.reference == "shot frame 5"


def _ctx(first, last):
    return ShotContext(None, None, "shot.mov", first, last, np.zeros(0, np.float32))


def test_plan_notes_covered_frames_and_skips_a_mostly_covered_line(shot):
    _, analysis = shot
    v = occlusion_verdict(analysis, 0, _ctx(0, N - 1), {"track_id": 0}, "speaks")
    assert v.action == "redub"
    assert v.face["occluded_ranges"] == [{"frames": [8, 11], "reason": "mouth occluded (lips covered)"}]  # the sidecar's reason
    assert any("mouth occluded in file frames 8-11" in n for n in v.notes)
    v = occlusion_verdict(analysis, 0, _ctx(7, 12), {"track_id": 0}, "speaks")  # 4 of 6 frames covered
    assert v.action == "skip" and v.reason == "mouth occluded in 67% of the line"
    v = occlusion_verdict(analysis, 0, _ctx(14, 23), {"track_id": 0}, "speaks")
    assert v.action == "redub" and not v.notes and "occluded_ranges" not in v.face


def test_plan_names_frames_where_a_turned_face_left_the_mouth_unjudged():
    """Where the mouth cues changed on a face turned too far to trust them (``turned_ranges``), the plan
    re-dubs but says which frames to check, clipped to the line, whether or not other frames are covered."""
    import copy

    _, analysis = _shot(())
    analysis = copy.deepcopy(analysis)
    analysis.occlusion[0].turned_ranges = [(3, 6), (20, 22)]
    v = occlusion_verdict(analysis, 0, _ctx(5, 16), {"track_id": 0}, "speaks")
    assert v.action == "redub" and v.face["turned_ranges"] == [[5, 6]]
    assert len(v.notes) == 1 and "face turned well away in file frames 5-6" in v.notes[0]
    v = occlusion_verdict(analysis, 0, _ctx(8, 18), {"track_id": 0}, "speaks")
    assert v.action == "redub" and not v.notes and "turned_ranges" not in v.face
    covered, analysis = _shot(COVERED)
    analysis.occlusion[0].turned_ranges = [(14, 15)]
    v = occlusion_verdict(analysis, 0, _ctx(0, N - 1), {"track_id": 0}, "speaks")
    assert [n.split(" in file frames ")[0] for n in v.notes] == ["mouth occluded", "face turned well away"]


def test_redub_of_a_mostly_covered_line_stops_with_the_reason_before_any_model_loads(tmp_path):
    import soundfile as sf

    from s2v_toolkit.media import write_video
    from s2v_toolkit.pipelines.redub import RedubError, redub_video

    frames, analysis = _shot(range(6, 16))
    video = write_video(tmp_path / "shot.mov", frames, FPS)
    line = tmp_path / "line.wav"
    sf.write(line, (0.3 * np.sin(np.arange(19200) / 7.0)).astype(np.float32), 48000)  # 0.4 s: frames 7-16

    def must_not_load():
        raise AssertionError("the model must not load for a skipped line")

    with pytest.raises(RedubError, match=r"mouth occluded in 90% of the line"):
        redub_video(video, line, tmp_path / "out.mov", generator=must_not_load, analysis=analysis, line_start=7)
    assert not (tmp_path / "out.mov").exists()
