"""wav2vec2 audio features: local loading, all hidden states, 50 -> 30 Hz, per-video-frame alignment."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from s2v_toolkit.errors import S2VError
from s2v_toolkit.models.audio_encoder import (
    WAV2VEC2_DIRNAME,
    Wav2Vec2AudioEncoder,
    bucket_per_frame,
    frame_feature_indices,
    frames_in_samples,
    interpolate_features,
    load_audio_encoder,
    official_audio_buckets,
    samples_for_frames,
    to_transformer_layout,
    write_tiny_wav2vec2,
)

HIDDEN = 16
LAYERS = 2


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A tiny random wav2vec2 saved the way the official folder is (a CTC model + preprocessor config)."""
    root = tmp_path_factory.mktemp("ckpt")
    folder = write_tiny_wav2vec2(root, hidden_size=HIDDEN, num_hidden_layers=LAYERS)
    assert folder == root / WAV2VEC2_DIRNAME and (folder / "preprocessor_config.json").is_file()
    return root


@pytest.fixture(scope="module")
def encoder(checkpoint_dir) -> Wav2Vec2AudioEncoder:
    return load_audio_encoder(checkpoint_dir, device="cpu")  # checkpoint folder -> wav2vec2 subfolder


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 0.1


def _conv_frames(n_samples: int) -> int:
    length = n_samples
    for kernel, stride in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
        length = (length - kernel) // stride + 1
    return length


def test_missing_or_incomplete_folder_gives_a_clear_error(tmp_path):
    with pytest.raises(S2VError, match=r"nowhere.*wav2vec2 model folder not found"):
        load_audio_encoder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(S2VError, match=r"empty: .*config\.json"):
        load_audio_encoder(tmp_path / "empty")


def test_weights_missing_from_the_folder_are_an_error_not_random_init(tmp_path, checkpoint_dir):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "broken"
    shutil.copytree(checkpoint_dir / WAV2VEC2_DIRNAME, folder)
    weights = load_file(folder / "model.safetensors")
    key = next(k for k in weights if "encoder.layers.1.feed_forward.output_dense.weight" in k)
    del weights[key]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(S2VError, match=r"broken: wav2vec2 weights lack .*output_dense\.weight"):
        load_audio_encoder(folder)


def test_all_hidden_states_with_the_official_v4_semantics(encoder):
    wave = _noise(16000)
    states = encoder.hidden_states(wave)
    assert states.shape == (LAYERS + 1, _conv_frames(16000), HIDDEN) == (3, 49, 16)
    assert states.dtype == torch.float32

    # independent capture: input of layer 0 and raw outputs of each layer, plus the final LayerNorm
    seen = []
    model = encoder.model
    hooks = [model.encoder.layers[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].clone()))]
    for layer in model.encoder.layers:
        hooks.append(layer.register_forward_hook(lambda m, a, out: seen.append((out[0] if isinstance(out, tuple) else out).clone())))
    values = torch.from_numpy((wave - wave.mean()) / np.sqrt(wave.var() + 1e-7))[None]
    with torch.no_grad():
        last = model(values).last_hidden_state
    for h in hooks:
        h.remove()
    torch.testing.assert_close(states[0], seen[0][0])
    torch.testing.assert_close(states[1], seen[1][0])  # output of layer 0
    torch.testing.assert_close(states[2], last[0])  # after the final LayerNorm, not the raw layer output
    torch.testing.assert_close(model.encoder.layer_norm(seen[2])[0], last[0])
    assert (states[2] - seen[2][0]).abs().max() > 1e-3

    # the folder's feature extractor normalises the waveform: loudness does not change features
    torch.testing.assert_close(encoder.hidden_states(wave * 7.0), states, rtol=1e-4, atol=1e-4)


def test_interpolation_to_30hz_matches_a_numpy_reference():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 49, 5, generator=g)
    out = interpolate_features(hidden)
    assert out.shape == (3, 29, 5)  # int(49 / 50 * 30)
    pos = np.arange(29) * (48 / 28)  # align_corners: end points meet
    ref = np.stack([[np.interp(pos, np.arange(49), hidden[l, :, d].numpy()) for d in range(5)] for l in range(3)])
    np.testing.assert_allclose(out.numpy(), ref.transpose(0, 2, 1), rtol=1e-5, atol=1e-5)


def test_frame_indices_at_16fps_equal_the_official_bucketing():
    n = 240
    official = np.round(np.linspace(0, n / 16, n, endpoint=False) * 30).astype(int)
    assert frame_feature_indices(n, 16) == official.tolist()
    assert frame_feature_indices(13, 16)[4] == 8 and frame_feature_indices(13, 16)[12] == 22  # 7.5, 22.5: to even


def test_samples_for_frames_is_exact_for_ntsc_rates():
    assert samples_for_frames(24, Fraction(24000, 1001)) == 16016
    assert samples_for_frames(10, 25) == 6400
    assert samples_for_frames(1, Fraction(30000, 1001)) == 534  # 533.87 rounded up
    assert samples_for_frames(80, 16) == 80000
    for fps in (Fraction(24000, 1001), 25, Fraction(30000, 1001)):
        for n in (1, 7, 48, 1001):
            assert frames_in_samples(samples_for_frames(n, fps), fps) == n


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)])
@pytest.mark.parametrize("num_frames", [30, 61])
def test_feature_frame_count_matches_the_video_frame_count(encoder, fps, num_frames):
    wave = _noise(samples_for_frames(num_frames, fps), seed=num_frames)
    feats = encoder.frame_features(wave, fps)
    assert feats.shape == (num_frames, LAYERS + 1, HIDDEN)
    assert (feats.abs().sum(dim=(1, 2)) > 0).all()  # every frame, the last included, has real audio
    # each frame takes the 30 Hz feature nearest its start time
    f30 = encoder.features_30hz(wave)
    for k in (0, num_frames // 2, num_frames - 1):
        idx = min(round(Fraction(30 * k) / fps), f30.shape[1] - 1)
        torch.testing.assert_close(feats[k], f30[:, idx])
    # asking for more frames than the audio covers pads with zeros
    longer = encoder.frame_features(wave, fps, num_frames=num_frames + 5)
    torch.testing.assert_close(longer[:num_frames], feats)
    assert (longer[num_frames:] == 0).all()


def test_bucket_alignment_on_synthetic_features():
    t30 = 29
    features = torch.arange(t30, dtype=torch.float32).view(1, t30, 1)  # value == 30 Hz index
    fps = Fraction(30000, 1001)
    out = bucket_per_frame(features, fps, 30, covered_frames=30)
    values = out[:, 0, 0]
    for k in range(29):
        assert abs(values[k].item() / 30 - k / fps) <= Fraction(1, 60)
    assert values[29] == 28  # inside the audio: clamped to the last feature, not zeroed
    official_style = bucket_per_frame(features, fps, 30)
    assert official_style[29].abs().sum() == 0  # the official rule would have lost it
    beyond = bucket_per_frame(features, 25, 40, covered_frames=25)
    assert (beyond[25:] == 0).all()
    expected = [min(round(Fraction(6 * k, 5)), t30 - 1) for k in range(25)]  # 30/25 = 1.2, clamped to T30-1
    assert beyond[:25, 0, 0].tolist() == expected


def test_official_buckets_replica_for_16fps_clips():
    t30 = 200
    features = torch.arange(1, t30 + 1, dtype=torch.float32).view(1, t30, 1).repeat(2, 1, 3)
    buckets, clips = official_audio_buckets(features, fps=16, frames_per_clip=80)
    assert clips == int(200 / (80 * 30 / 16)) + 1 == 2
    assert buckets.shape == (160, 2, 3)
    values = buckets[:, 0, 0]
    for k in range(160):
        idx = int(np.round(k / 16 * 30))
        assert values[k] == (idx + 1 if idx < t30 else 0)
    torch.testing.assert_close(bucket_per_frame(features, 16, 160), buckets)


def test_default_tiny_folder_matches_the_tiny_transformer_audio_input(tmp_path):
    enc = load_audio_encoder(write_tiny_wav2vec2(tmp_path))
    feats = enc.frame_features(_noise(samples_for_frames(16, 16)), 16)
    assert feats.shape == (16, 5, 24)  # tiny S2V transformer: 5 audio layers of width 24
    model_input = to_transformer_layout(feats)
    assert model_input.shape == (1, 5, 24, 16)
    torch.testing.assert_close(model_input[0, :, :, 9], feats[9])
