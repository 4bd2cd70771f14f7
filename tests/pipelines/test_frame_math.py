"""Long-video frame arithmetic: causal VAE grid, clip plan, audio/video alignment of the first-clip trim."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from s2v_toolkit.pipelines.frame_math import (
    LongVideoPlan,
    audio_feature_index,
    clip_latent_frames,
    drive_source_index,
    frames_of_latent,
    latent_frames_for_video_frames,
    latent_index_of_frame,
    model_frames_for_output,
    official_clip_count,
    output_frame_count,
    plan_long_video,
    retime_sources,
    video_frames_for_latent_frames,
)


def test_causal_vae_frame_grid_matches_spec_counts():
    # spec: 73 motion frames = 19 latents; 80 + 73 = 153 frames -> 39; 80 infer frames -> 20 latents
    assert latent_frames_for_video_frames(73) == 19
    assert latent_frames_for_video_frames(153) == 39
    assert latent_frames_for_video_frames(81) == 21
    assert clip_latent_frames(80, 73) == 20
    assert video_frames_for_latent_frames(20) == 77  # the first clip's 77 frames
    with pytest.raises(ValueError):
        latent_frames_for_video_frames(80)
    # every frame belongs to exactly the latent whose frame list holds it
    for f in range(200):
        assert f in frames_of_latent(latent_index_of_frame(f))
    assert list(frames_of_latent(0)) == [0] and list(frames_of_latent(1)) == [1, 2, 3, 4]


def test_audio_feature_index_rounds_half_to_even_like_numpy():
    k = np.arange(2000)
    official = np.round(k / 16 * 30).astype(int)  # get_sample_indices: np.round(time * 30)
    assert [audio_feature_index(int(i)) for i in k] == official.tolist()
    assert audio_feature_index(4) == 8 and audio_feature_index(12) == 22  # 7.5 -> 8, 22.5 -> 22
    assert audio_feature_index(25, fps=25) == 30


def test_output_frame_count_and_retiming():
    assert output_frame_count(7, 25) == 175
    assert output_frame_count(7, Fraction(24000, 1001)) == 168  # 167.83
    assert output_frame_count(7, Fraction(30000, 1001)) == 210  # 209.79
    assert output_frame_count(Fraction(1, 48), 24) == 1  # exactly half a frame rounds up
    src = retime_sources(4, 24)
    assert src[0] == (0, 0, 0.0) and src[3] == (2, 2, 0.0)
    assert src[1][:2] == (0, 1) and src[1][2] == pytest.approx(2 / 3)
    # 7 s at 23.976: the last output frame sits at 167 * 1001/24000 s -> model frame 111.44
    assert model_frames_for_output(168, Fraction(24000, 1001)) == 113
    assert model_frames_for_output(112, 16) == 112  # same rate: one model frame per output frame


def trace_official_layout(num_clips, infer=80, motion=73, trim=3, drive_starts=None):
    """Follow the official decode/trim steps frame by frame, using only the spec's facts, and label
    each output frame with the drive (audio) frame the model generated it for.

    Audio side: the encoder sees [motion x frame 0] + the clip's drive frames and keeps the last 20
    of 39 causal latents, so generated latent j covers padded frames frames_of_latent(19 + j).
    Video side: clip 0 decodes [ref latent] + 20 latents (81 frames), keeps the last 80, drops
    `trim`; later clips decode [19 motion latents] + 20 latents (153 frames) and keep the last 80.
    """
    lat_motion = latent_frames_for_video_frames(motion)
    n_lat = clip_latent_frames(infer, motion)
    out = []
    for r in range(num_clips):
        start = r * infer if drive_starts is None else drive_starts[r]
        # audio latent j -> drive frames, in order of its pixel frames
        audio_of_latent = {j: [start + f - motion for f in frames_of_latent(lat_motion + j)] for j in range(n_lat)}
        lead = 1 if r == 0 else lat_motion
        decoded = []
        for f in range(video_frames_for_latent_frames(lead + n_lat)):
            lat = latent_index_of_frame(f)
            if lat < lead:
                decoded.append(None)  # reference or motion frame
            else:
                j = lat - lead
                decoded.append(audio_of_latent[j][list(frames_of_latent(lat)).index(f)])
        kept = decoded[-infer:]
        if r == 0:
            kept = kept[trim:]
        assert None not in kept
        out.extend(kept)
    return out


def test_official_first_clip_trim_offsets_video_by_three_frames_everywhere():
    labels = trace_official_layout(4)
    assert len(labels) == 77 + 80 * 3  # spec: total frames 77 + 80 (clips - 1)
    # every output frame n was generated for audio frame n + 3: constant, no jump at clip seams
    assert labels == [n + 3 for n in range(len(labels))]
    plan = plan_long_video(len(labels), aligned=False)
    assert plan.num_clips == 4
    assert [plan.drive_frame_of_output(n) for n in range(len(labels))] == labels


@pytest.mark.parametrize("num_frames", [1, 50, 77, 78, 157, 158, 317, 400])
def test_aligned_plan_drives_every_output_frame_with_its_own_audio_frame(num_frames):
    plan = plan_long_video(num_frames)
    # exactly the requested frames, clip outputs contiguous
    assert sum(c.kept for c in plan.clips) == num_frames
    assert [c.output_start for c in plan.clips] == [0] + [c.output_start + c.kept for c in plan.clips[:-1]]
    # the official decode/trim steps, fed the plan's drive windows, put audio frame n at output n
    traced = trace_official_layout(plan.num_clips, drive_starts=[c.drive_start for c in plan.clips])
    assert traced[:num_frames] == list(range(num_frames))
    assert [plan.drive_frame_of_output(n) for n in range(num_frames)] == list(range(num_frames))
    # the fewest clips that cover the frames
    assert plan.generated_frames >= num_frames
    assert plan.num_clips == 1 or plan.generated_frames - 80 < num_frames
    # each later clip's motion buffer is the 73 output frames just before it
    for clip in plan.clips[1:]:
        assert clip.output_start - clip.motion_start == 73 and not clip.drop_motion
    assert plan.clips[0].drop_motion and plan.clips[0].keep_start == 3


def test_official_clip_count_can_fall_short_of_the_audio():
    # 4.9 s of audio: 147 features at 30 fps, 78 frames at 16 fps
    frames_needed = output_frame_count(Fraction(49, 10), 16)
    assert frames_needed == 78
    assert official_clip_count(147) == 1  # -> only 77 frames after the trim
    assert plan_long_video(frames_needed).num_clips == 2
    # where it has enough (10 s -> 300 features, 160 frames) both agree
    assert official_clip_count(300) == plan_long_video(160).num_clips == 3


def test_start_from_reference_keeps_every_frame_and_motion():
    plan = plan_long_video(200, start_from_reference=True)
    assert plan.first_clip_trim == 0 and not plan.clips[0].drop_motion
    assert [c.output_start for c in plan.clips] == [0, 80, 160]
    assert all(plan.drive_frame_of_output(n) == n for n in range(200))


def test_drive_sources_repeat_the_first_frame_and_silence_the_tail():
    plan = plan_long_video(100)
    first = plan.clips[0]
    assert first.drive_start == -3
    assert [drive_source_index(k, 90) for k in first.drive_range][:5] == [0, 0, 0, 0, 1]
    assert drive_source_index(89, 90) == 89 and drive_source_index(90, 90) is None


def test_plan_round_trips_through_json_and_rejects_bad_sizes():
    plan = plan_long_video(250, infer_frames=48)
    again = LongVideoPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    with pytest.raises(ValueError):
        plan_long_video(0)
    with pytest.raises(ValueError):
        plan_long_video(100, infer_frames=81)
    with pytest.raises(ValueError):
        plan_long_video(100, motion_frames=72)
    with pytest.raises(IndexError):
        plan.drive_frame_of_output(250)


@pytest.mark.parametrize("num_frames, last_generated", [(1, 4), (48, 52), (77, 80), (80, 4), (81, 4),
                                                        (82, 8), (157, 80), (200, 44)])
def test_fitted_last_clip_generates_only_what_it_keeps(num_frames, last_generated):
    full = plan_long_video(num_frames)
    fitted = plan_long_video(num_frames, fit_last_clip=True)
    # same clips, same frames out, same audio for every output frame: only the last clip is shorter
    assert fitted.num_clips == full.num_clips
    assert [(c.output_start, c.kept, c.keep_start, c.drive_start) for c in fitted.clips] == \
        [(c.output_start, c.kept, c.keep_start, c.drive_start) for c in full.clips]
    assert [c.generated for c in fitted.clips[:-1]] == [80] * (fitted.num_clips - 1)
    last = fitted.clips[-1]
    assert last.generated == last_generated
    # a multiple of 4 (whole latent frames) that holds every kept frame, and no whole latent to spare
    assert last.generated % 4 == 0 and last.keep_start + last.kept <= last.generated
    assert last.generated - (last.keep_start + last.kept) < 4
    assert [fitted.drive_frame_of_output(n) for n in range(num_frames)] == list(range(num_frames))
