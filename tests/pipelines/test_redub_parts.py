"""Re-dub pieces without the generator: latent mask, latent blend, line timing, crop space, errors."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from s2v_toolkit.faces import FaceObservation, MaskParams, analyze_frames
from s2v_toolkit.faces.synthetic import posed_face
from s2v_toolkit.models import S2VTransformerConfig, forward_flops, make_scheduler
from s2v_toolkit.pipelines.redub import RedubError, choose_track, place_line, shot_audio
from s2v_toolkit.pipelines.redub_crop import plan_face_crops
from s2v_toolkit.pipelines.redub_mask import LatentBlend, LatentBlendParams, latent_mask


def test_latent_mask_takes_any_pixel_per_cell_and_dilates_in_cells():
    masks = np.zeros((8, 32, 48), np.float32)
    masks[5, 9, 20] = 0.01                      # one faint pixel: frame 5, cell row 1, cell column 2
    m = latent_mask(masks, dilation=0)
    assert m.shape == (1, 1, 2, 4, 6)           # 4 frames per latent after a motion prefix
    assert m.sum() == 1 and m[0, 0, 1, 1, 2] == 1
    d = latent_mask(masks, dilation=1)
    assert d.sum() == 9 and d[0, 0, 1, 0:3, 1:4].sum() == 9 and d[0, 0, 0].sum() == 0
    causal = latent_mask(np.zeros((9, 32, 48)) + (np.arange(9) == 0)[:, None, None], dilation=0, causal_first=True)
    assert causal.shape[2] == 3 and causal[0, 0, 0].all() and not causal[0, 0, 1:].any()
    with pytest.raises(ValueError):
        latent_mask(np.zeros((6, 32, 48)))        # not a multiple of 4 frames


def _mouth_cells():
    mask = torch.zeros(1, 1, 2, 6, 6)
    mask[..., 2:4, 2:5] = 1
    return mask


def _run_blend(params, steps=6, observer=None):
    torch.manual_seed(0)
    original = torch.randn(1, 4, 2, 6, 6)
    mask = _mouth_cells()
    noise = torch.randn_like(original)
    sched = make_scheduler("unipc")
    sched.set_timesteps(steps, shift=3.0)
    blend = LatentBlend(original, mask, noise, sched, params, observer)
    x = blend.initial()
    for i in range(blend.start_index, steps):
        v = torch.randn_like(x)  # a stand-in denoiser: whatever it predicts, the known region must not care
        x = blend.after_step(i, sched.step(v, i, x))
    return blend, original, mask, noise, sched, x


def test_blend_resets_the_known_region_to_the_renoised_original_after_every_step():
    seen = []
    keep = (_mouth_cells() == 0).expand(1, 4, 2, 6, 6)

    def observer(i, latents, known):
        seen.append(i)
        assert torch.equal(latents[keep], known[keep])

    blend, original, mask, noise, sched, x = _run_blend(LatentBlendParams(), observer=observer)
    assert seen == list(range(6))
    inside = ~keep
    assert torch.equal(x[keep], original[keep])            # the last reset is at sigma 0: the source itself
    assert (x[inside] - original[inside]).abs().mean() > 0.1  # inside: generated
    start = blend.initial()                                # pure noise inside, the source at sigma_0 outside
    assert torch.equal(start[inside], noise[inside])
    assert torch.equal(start[keep], sched.add_noise(original, noise, 0)[keep])


def test_blend_until_and_strength_move_the_first_and_last_blended_steps():
    seen = []
    blend, original, mask, *_ = _run_blend(LatentBlendParams(blend_until=0.5, strength=1.0),
                                           observer=lambda i, *a: seen.append(i))
    assert seen == [0, 1, 2]
    seen.clear()
    blend, original, mask, noise, sched, _ = _run_blend(LatentBlendParams(strength=0.5),
                                                        observer=lambda i, *a: seen.append(i))
    assert blend.start_index == 3 and seen == [3, 4, 5]
    assert torch.equal(blend.initial(), sched.add_noise(original, noise, 3))  # img2img start, mouth included
    with pytest.raises(ValueError):
        LatentBlendParams(strength=0.0)


def test_line_is_placed_at_its_record_frame_and_must_fit_the_shot():
    t = place_line(100, 199, 120, 1.0, Fraction(25))
    assert (t.line_start, t.line_end, t.shot_frames) == (120, 144, 100)
    t2 = place_line(0, 99, 10, 1.01, Fraction(24000, 1001))   # 24.2 frames -> 25
    assert t2.line_end == 34
    audio = np.ones(16000, np.float32)
    wave = shot_audio(audio, 16000, t)
    assert len(wave) == 64000                                    # 100 frames at 25 fps
    assert not wave[:12800].any() and wave[12800:28800].all() and not wave[28800:].any()
    with pytest.raises(RedubError, match=r"shot.mov: .*ends at frame 224, after the shot's last frame 199"):
        place_line(100, 199, 180, 1.8, Fraction(25), source="shot.mov")
    with pytest.raises(RedubError, match=r"line start frame 50 is outside the shot \(frames 100-199\)"):
        place_line(100, 199, 50, 1.0, Fraction(25), source="shot.mov")


class ScriptedDetector:
    def __init__(self, script):
        self.script = script

    def detect(self, frame, index):
        return [FaceObservation(lm) for lm in self.script.get(index, [])]


def _face_track(frames_with_face, center=(400, 300), width=150.0, start=0, end=19):
    script = {k: [posed_face((center[0] + 2 * k, center[1]), width, mouth_open=0.2)] for k in frames_with_face}
    frames = ((k, np.zeros((8, 8, 3), np.uint8)) for k in range(start, end + 1))
    return analyze_frames(frames, 25.0, ScriptedDetector(script), start=start, end=end)


def test_crop_space_is_the_same_for_720p_and_1080p_shots():
    shapes, flops = [], []
    for scale in (1.0, 1.5):  # 1280x720 and 1920x1080, the face scaled with the frame
        a = _face_track(range(20), center=(640 * scale, 360 * scale), width=200 * scale)
        plan = plan_face_crops(a.tracks[0], 0, 19, 512)
        frame = np.zeros((int(720 * scale), int(1280 * scale), 3), np.uint8)
        crops = plan.crop_frames(np.stack([frame] * 4), 0)
        masks = plan.crop_masks(0, 4, MaskParams())
        shapes.append((crops.shape, masks.shape, tuple(latent_mask(masks).shape)))
        flops.append(forward_flops(S2VTransformerConfig.full(), *crops.shape[1:3], frames=80).total)
    assert shapes[0] == shapes[1] == (((4, 512, 512, 3)), (4, 512, 512), (1, 1, 1, 64, 64))
    assert flops[0] == flops[1]
    # the masks agree too: the face sits at the same place in both crops
    a1, a2 = _face_track(range(20), (640, 360), 200), _face_track(range(20), (960, 540), 300)
    m1 = plan_face_crops(a1.tracks[0], 0, 19, 512).crop_masks(0, 1, MaskParams())
    m2 = plan_face_crops(a2.tracks[0], 0, 19, 512).crop_masks(0, 1, MaskParams())
    assert np.abs(m1 - m2).max() < 0.05


def test_lost_face_frames_get_an_interpolated_crop_and_an_empty_mask():
    a = _face_track([k for k in range(20) if not 8 <= k <= 11])
    track = max(a.tracks, key=lambda t: len(t.frames))
    plan = plan_face_crops(track, 0, 19, 128)
    assert plan.lost_ranges() == [(8, 11)]
    masks = plan.crop_masks(0, 20, MaskParams(), active=range(0, 20))
    assert masks[8:12].max() == 0 and all(masks[k].max() == 1 for k in (7, 12))
    # the interpolated transform lies between its neighbours (the face moves 2 px per frame)
    tx = [plan.transform(k).matrix[0, 2] for k in range(6, 14)]
    assert np.all(np.diff(tx) < 0)
    masks_line = plan.crop_masks(0, 20, MaskParams(), active=range(14, 20))
    assert masks_line[:14].max() == 0 and masks_line[14:].max() == 1
    with pytest.raises(ValueError, match="multiple of 64"):
        plan_face_crops(track, 0, 19, 100)


def test_track_choice_no_face_two_faces_and_a_given_track():
    timing = place_line(0, 19, 5, 0.4, Fraction(25))
    empty = _face_track([])
    with pytest.raises(RedubError, match=r"^shot.mov: no face found in the line's frames 5-14$"):
        choose_track(empty, timing, "shot.mov", None)
    script = {k: [posed_face((300, 300), 150, mouth_open=0.2), posed_face((800, 300), 150, mouth_open=0.2)]
              for k in range(20)}
    two = analyze_frames(((k, np.zeros((8, 8, 3), np.uint8)) for k in range(20)), 25.0, ScriptedDetector(script),
                         start=0, end=19)
    assert len(two.tracks) == 2
    with pytest.raises(RedubError, match=r"2 faces in the line's frames 5-14 .*pick one with --face N"):
        choose_track(two, timing, "shot.mov", None)
    tid, how = choose_track(two, timing, "shot.mov", None, face=two.tracks[1].track_id)
    assert tid == two.tracks[1].track_id and how["how"] == "given"
    with pytest.raises(RedubError, match="no face track 7"):
        choose_track(two, timing, "shot.mov", None, face=7)
    one = _face_track(range(20))
    assert choose_track(one, timing, "shot.mov", None)[0] == one.tracks[0].track_id


def test_output_keeps_an_intermediate_codec_family_and_never_the_source(tmp_path):
    from pathlib import Path

    from s2v_toolkit.errors import OutputError
    from s2v_toolkit.pipelines.redub import check_output, output_preset, sidecar_path

    assert output_preset("prores", Path("a.mov")) == "prores_hq"
    assert output_preset("dnxhd", Path("a.mxf")) == "dnxhr_hqx"
    assert output_preset("dnxhd", Path("a.mov"), "yuv444p10le") == "dnxhr_444"
    assert output_preset("prores", Path("a.mov"), "yuv444p10le") == "prores_4444"
    assert output_preset("h264", Path("a.mov")) is None        # the .mov default: ProRes 422 HQ
    assert output_preset("prores", Path("a.mp4")) is None       # .mp4 cannot hold ProRes: H.264
    assert sidecar_path(tmp_path / "take.mov") == tmp_path / "take.mov.json"
    src = tmp_path / "shot.mov"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="is the source video"):
        check_output(src, tmp_path / "." / "shot.mov", overwrite=True)
    with pytest.raises(OutputError, match="already exists"):
        check_output(tmp_path / "other.mov", src, overwrite=False)
    with pytest.raises(OutputError, match="unsupported output extension '.avi'"):
        check_output(src, tmp_path / "out.avi", overwrite=False)


def test_a_reference_photo_is_centre_cropped_to_the_crop_size():
    import cv2

    from s2v_toolkit.pipelines.redub import _square

    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 100:200] = 255                                       # the centre square is white
    sq = _square(img, 64, cv2)
    assert sq.shape == (64, 64, 3) and sq.min() == 255
    grey = _square(np.full((50, 40), 0.5, np.float32), 64, cv2)
    assert grey.shape == (64, 64, 3) and abs(int(grey[0, 0, 0]) - 127) <= 1
