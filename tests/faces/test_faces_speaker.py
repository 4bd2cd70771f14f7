"""Whose face speaks: audio/mouth correlation and reference-image similarity (synthetic landmarks)."""

import matplotlib.cbook as cbook
import matplotlib.image as mpimg
import numpy as np
import pytest
from skimage import data

from s2v_toolkit.faces import (
    FaceTrack,
    SpeakerParams,
    audio_envelope,
    choose_speaker,
    face_descriptor,
    face_similarity,
)
from s2v_toolkit.faces.synthetic import FaceIdentity, posed_face

from faces_testkit import syllable_speech

FPS = 25.0
RATE = 16000
N = 100  # 4 s line

# Nose tip, face width, roll of the two public-domain photos' faces (measured once with the model).
ASTRONAUT_POSE = dict(center=(223.6, 129.4), width=93.5, angle_deg=3.3)
HOPPER_POSE = dict(center=(267.4, 245.7), width=186.5, angle_deg=-2.3)


def _speech(seed=0):
    """Noise bursts at syllable rate: (audio, per-frame loudness in 0..1)."""
    return syllable_speech(seed, N, int(FPS), RATE)


def _track(tid, x, opening, identity=FaceIdentity(), present=None):
    frames = np.arange(N) if present is None else np.asarray(present)
    lm = np.stack([posed_face((x, 300), 160, 0, identity, float(opening[f])) for f in frames])
    lm[:, :, :2] += np.random.default_rng(tid).normal(0, 0.2, lm[:, :, :2].shape)  # landmark noise
    return FaceTrack(tid, frames, lm.astype(np.float32), np.ones(len(frames), np.float32))


def test_audio_envelope_follows_loudness_per_frame():
    audio, loud = _speech()
    env = audio_envelope(audio, RATE, FPS, N)
    assert env.shape == (N,)
    assert np.all(env[loud == 0] < env[loud > 0].min())


def test_the_moving_mouth_that_follows_the_audio_is_chosen_with_confidence():
    audio, loud = _speech(1)
    env = audio_envelope(audio, RATE, FPS, N)
    still = np.full(N, 0.05)
    lag = np.roll(0.05 + 0.35 * loud, 1)  # the mouth opens one frame after the sound starts
    for speaker_x in (400, 900):
        tracks = [_track(0, 400, lag if speaker_x == 400 else still),
                  _track(1, 900, lag if speaker_x == 900 else still)]
        choice = choose_speaker(tracks, 0, N - 1, envelope=env)
        assert choice.track_id == (0 if speaker_x == 400 else 1)
        assert choice.confidence > 0.6
        assert not choice.low_confidence


def test_still_mouths_or_two_equally_moving_mouths_give_low_confidence():
    audio, loud = _speech(2)
    env = audio_envelope(audio, RATE, FPS, N)
    still = np.full(N, 0.05)
    both_still = choose_speaker([_track(0, 400, still), _track(1, 900, still)], 0, N - 1, envelope=env)
    assert both_still.track_id is None and both_still.confidence < 0.3
    assert "low confidence" in both_still.reason
    moving = 0.05 + 0.35 * loud
    both_moving = choose_speaker([_track(0, 400, moving), _track(1, 900, moving)], 0, N - 1, envelope=env)
    assert both_moving.track_id is None
    # a mouth moving out of step with the line (someone else chewing, say) is no evidence either
    other = 0.05 + 0.35 * _speech(7)[1]
    unrelated = choose_speaker([_track(0, 400, other), _track(1, 900, still)], 0, N - 1, envelope=env)
    assert unrelated.track_id is None


def test_faces_seen_too_briefly_are_not_candidates():
    audio, loud = _speech(3)
    env = audio_envelope(audio, RATE, FPS, N)
    brief = _track(0, 400, 0.05 + 0.35 * loud, present=range(10))
    choice = choose_speaker([brief], 0, N - 1, envelope=env, params=SpeakerParams(min_coverage=0.3))
    assert choice.track_id is None and choice.candidates == []
    assert "no face visible" in choice.reason


@pytest.fixture(scope="module")
def photos():
    astro = np.ascontiguousarray(data.astronaut())
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.ascontiguousarray(mpimg.imread(fh))
    return astro, hopper


def _shifted(img, pose, scale, angle, shift, size):
    """The photo zoomed/rotated/shifted into a new canvas, and the face pose that goes with it."""
    import cv2

    c = np.array(pose["center"])
    m = cv2.getRotationMatrix2D(tuple(c), angle, scale)
    m[:, 2] += shift
    out = cv2.warpAffine(img, m, size, borderMode=cv2.BORDER_REFLECT)
    new_c = m[:, :2] @ c + m[:, 2]
    lm = posed_face(new_c, pose["width"] * scale, pose["angle_deg"] - angle)
    return out, lm


def test_reference_similarity_tells_the_two_photos_apart(photos):
    astro, hopper = photos
    ref_astro = face_descriptor(astro, posed_face(**ASTRONAUT_POSE))
    ref_hopper = face_descriptor(hopper, posed_face(**HOPPER_POSE))
    a2 = face_descriptor(*_shifted(astro, ASTRONAUT_POSE, 1.4, 6, (30, -20), (640, 640)))
    h2 = face_descriptor(*_shifted(hopper, HOPPER_POSE, 0.7, -5, (-40, 10), (512, 512)))
    same_a = face_similarity(ref_astro, a2)["combined"]
    same_h = face_similarity(ref_hopper, h2)["combined"]
    cross = [face_similarity(ref_astro, h2)["combined"], face_similarity(ref_hopper, a2)["combined"]]
    assert min(same_a, same_h) > max(cross) + 0.2


def test_reference_image_chooses_the_character_without_audio(photos):
    astro, hopper = photos
    tracks = [_track(0, 400, np.full(N, 0.05)), _track(1, 900, np.full(N, 0.05))]
    descriptors = {
        0: face_descriptor(*_shifted(hopper, HOPPER_POSE, 0.8, 3, (0, 0), (512, 600))),
        1: face_descriptor(*_shifted(astro, ASTRONAUT_POSE, 1.2, -4, (10, 10), (600, 600))),
    }
    ref = face_descriptor(astro, posed_face(**ASTRONAUT_POSE))
    choice = choose_speaker(tracks, 0, N - 1, reference=ref, track_descriptors=descriptors)
    assert choice.track_id == 1 and choice.confidence > 0.3
    ref_h = face_descriptor(hopper, posed_face(**HOPPER_POSE))
    assert choose_speaker(tracks, 0, N - 1, reference=ref_h, track_descriptors=descriptors).track_id == 0
    nothing = choose_speaker(tracks, 0, N - 1)
    assert nothing.track_id is None and "nothing to decide on" in nothing.reason


def test_audio_evidence_is_calibrated_against_shifted_audio():
    """z of the mouth that follows the line is far above the circular-shift null; the same mouth against an
    unrelated line (another seed) is near chance, and chooses no face, even as the only face."""
    from s2v_toolkit.faces import audio_evidence

    audio, loud = _speech(11)
    env = audio_envelope(audio, RATE, FPS, N)
    mouth = np.roll(0.05 + 0.35 * loud, 1) + np.random.default_rng(0).normal(0, 0.03, N)
    own = audio_evidence(mouth, env, FPS)
    assert own["z"] > 3 and own["evidence"] > 0.99 and own["null_size"] >= 8 and abs(own["lag"]) <= 2
    other_audio, _ = _speech(12)
    other_env = audio_envelope(other_audio, RATE, FPS, N)
    unrelated = audio_evidence(mouth, other_env, FPS)
    assert unrelated["z"] < 2
    alone = [_track(0, 400, mouth)]
    assert choose_speaker(alone, 0, N - 1, envelope=env, fps=FPS).track_id == 0
    assert choose_speaker(alone, 0, N - 1, envelope=other_env, fps=FPS).track_id is None


def test_silent_or_short_lines_are_not_judged_by_the_audio():
    audio, loud = _speech(13)
    mouth = 0.05 + 0.35 * loud
    quiet = audio_envelope(audio * 1e-4, RATE, FPS, N)  # peak far under -50 dBFS
    choice = choose_speaker([_track(0, 400, mouth)], 0, N - 1, envelope=quiet, fps=FPS)
    assert choice.track_id is None and "silent" in choice.reason
    short = audio_envelope(audio[: RATE], RATE, FPS, 25)  # 1 s
    choice = choose_speaker([_track(0, 400, mouth)], 0, 24, envelope=short, fps=FPS)
    assert choice.track_id is None and "too short" in choice.reason


def _slow_series(rng, n, width):
    """A slowly varying random series (a moving average of noise): strong autocorrelation, like a mouth
    that opens and closes with phrases, or a speech envelope with pauses."""
    x = rng.normal(0, 1, n + width)
    return np.convolve(x, np.ones(width) / width, mode="valid")[:n]


def test_unrelated_slow_series_score_a_calibrated_z():
    """8 s lines (200 frames) of independent, strongly autocorrelated series: z must be spread like a
    standard normal (the circular-shift null alone gives a spread of ~1.5 here: unrelated lines would be
    chosen far more often than the threshold promises)."""
    from s2v_toolkit.faces import audio_evidence
    from s2v_toolkit.faces.speaker import bartlett_sd

    rng = np.random.default_rng(5)
    zs = []
    for _ in range(60):
        mouth, env = _slow_series(rng, 200, 15), _slow_series(rng, 200, 15)
        zs.append(audio_evidence(mouth, env, FPS)["z"])
    zs = np.array(zs)
    assert 0.7 < zs.std() < 1.25, zs.std()
    assert np.mean(zs >= 1.64) <= 0.1
    # Bartlett's sd: white noise gives 1/sqrt(N); shared slow autocorrelation gives more
    white = bartlett_sd(rng.normal(size=400), rng.normal(size=400))
    assert abs(white - 1 / np.sqrt(400)) < 0.01
    assert bartlett_sd(_slow_series(rng, 400, 15), _slow_series(rng, 400, 15)) > 2.5 * white


def test_rank_series_keeps_order_ties_and_gaps():
    from s2v_toolkit.faces.speaker import rank_series

    r = rank_series(np.array([5.0, np.nan, -1.0, 5.0, 2.0]))
    assert np.isnan(r[1])
    np.testing.assert_allclose(r[[0, 2, 3, 4]], [3.5 / 4, 1 / 4, 3.5 / 4, 2 / 4])


def test_with_ranks_a_few_outlier_frames_do_not_hide_the_mouth_that_follows_the_line():
    """Landmark glitches (a mouth 'opening' 30x its range on 4 frames, e.g. a hand passing) ruin Pearson's r
    of the values; the ranks' correlation (``SpeakerParams(ranks=True)``) still finds the mouth that follows
    the line, and an unrelated line with the same glitches still chooses nothing."""
    from s2v_toolkit.faces import SpeakerParams, audio_evidence

    audio, loud = _speech(21)
    env = audio_envelope(audio, RATE, FPS, N)
    mouth = 0.05 + 0.35 * loud + np.random.default_rng(1).normal(0, 0.05, N)
    glitch = np.arange(N) % (N // 4) == N // 8
    mouth[glitch] = 10.0
    ranks = SpeakerParams(ranks=True)
    ranked = audio_evidence(mouth, env, FPS, ranks)
    values = audio_evidence(mouth, env, FPS)
    assert ranked["z"] > 2.5 and ranked["z"] > values["z"] + 1, (ranked["z"], values["z"])
    other_env = audio_envelope(_speech(22)[0], RATE, FPS, N)
    alone = [_track(0, 400, mouth)]
    assert choose_speaker(alone, 0, N - 1, envelope=env, fps=FPS, params=ranks).track_id == 0
    assert choose_speaker(alone, 0, N - 1, envelope=other_env, fps=FPS, params=ranks).track_id is None
