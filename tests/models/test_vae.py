"""Wan2.1 VAE: official key layout, causal frame rule, chunked == whole-sequence, normalisation, loading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from s2v_toolkit.errors import S2VError
from s2v_toolkit.models.wan_vae import (
    CausalConv3d,
    FeatureCache,
    LATENT_MEAN,
    LATENT_STD,
    VAE_FILENAME,
    Resample,
    WanVAE,
    WanVAEConfig,
    build_wan_vae,
    load_wan_vae,
    write_tiny_vae,
)


@pytest.fixture(scope="module")
def tiny_vae() -> WanVAE:
    torch.manual_seed(0)
    return build_wan_vae(WanVAEConfig.tiny())


def _video(frames: int, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, size, size, generator=g) * 2 - 1


def test_full_size_keys_and_shapes_match_the_official_table():
    with torch.device("meta"):
        model = WanVAE(WanVAEConfig.full())
    state = model.state_dict()
    assert len(state) == 194
    assert sum(t.numel() for t in state.values()) == 126_892_531
    assert not list(model.buffers())
    expected = {
        "encoder.conv1.weight": (96, 3, 3, 3, 3),
        "encoder.downsamples.2.resample.1.weight": (96, 96, 3, 3),
        "encoder.downsamples.3.shortcut.weight": (192, 96, 1, 1, 1),
        "encoder.downsamples.5.time_conv.weight": (192, 192, 3, 1, 1),
        "encoder.downsamples.8.time_conv.weight": (384, 384, 3, 1, 1),
        "encoder.middle.1.norm.gamma": (384, 1, 1),
        "encoder.middle.1.to_qkv.weight": (1152, 384, 1, 1),
        "encoder.head.0.gamma": (384, 1, 1, 1),
        "encoder.head.2.weight": (32, 384, 3, 3, 3),
        "conv1.weight": (32, 32, 1, 1, 1),
        "conv2.weight": (16, 16, 1, 1, 1),
        "decoder.conv1.weight": (384, 16, 3, 3, 3),
        "decoder.upsamples.3.resample.1.weight": (192, 384, 3, 3),
        "decoder.upsamples.3.time_conv.weight": (768, 384, 3, 1, 1),
        "decoder.upsamples.4.residual.2.weight": (384, 192, 3, 3, 3),
        "decoder.upsamples.4.shortcut.weight": (384, 192, 1, 1, 1),
        "decoder.upsamples.7.time_conv.bias": (768,),
        "decoder.upsamples.8.residual.0.gamma": (192, 1, 1, 1),
        "decoder.upsamples.11.resample.1.weight": (96, 192, 3, 3),
        "decoder.upsamples.14.residual.6.weight": (96, 96, 3, 3, 3),
        "decoder.head.2.weight": (3, 96, 3, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert "decoder.upsamples.11.time_conv.weight" not in state  # upsample2d has no time conv
    assert "encoder.downsamples.2.time_conv.weight" not in state
    assert not any(k.startswith("decoder.upsamples.15") for k in state)
    with torch.device("meta"):
        tiny = WanVAE(WanVAEConfig.tiny())
    assert list(tiny.state_dict()) == list(state)  # the tiny file uses exactly the official key names


@pytest.mark.parametrize("frames,latents", [(1, 1), (5, 2), (6, 2), (9, 3), (13, 4)])
def test_encode_decode_shapes_follow_the_causal_1_plus_4k_rule(tiny_vae, frames, latents):
    z = tiny_vae.encode(_video(frames))
    assert z.shape == (1, 16, latents, 2, 2)
    out = tiny_vae.decode(z)
    assert out.shape == (1, 3, 1 + 4 * (latents - 1), 16, 16)
    assert out.dtype == torch.float32
    assert out.abs().max() <= 1.0


def test_chunked_encode_equals_whole_sequence_encode(tiny_vae):
    video = _video(13, size=32)
    chunked = tiny_vae.encode(video, chunked=True)
    whole = tiny_vae.encode(video, chunked=False)
    assert chunked.shape == whole.shape == (1, 16, 4, 4, 4)
    assert chunked.abs().mean() > 0.05  # not a degenerate all-zero comparison
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-5)


def test_chunked_decode_equals_whole_sequence_decode(tiny_vae):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, 16, 4, 3, 4, generator=g)
    chunked = tiny_vae.decode(z, chunked=True)
    whole = tiny_vae.decode(z, chunked=False)
    assert chunked.shape == (1, 3, 13, 24, 32)
    assert chunked.std() > 0.01
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-5)
    pieces = [p.shape[2] for p in tiny_vae.iter_decode(z)]
    assert pieces == [1, 4, 4, 4]


def test_encoder_is_causal(tiny_vae):
    video = _video(13)
    base = tiny_vae.encode(video)
    changed = video.clone()
    changed[:, :, 5:] = -changed[:, :, 5:]  # alter pixel frames 5..12
    z = tiny_vae.encode(changed)
    torch.testing.assert_close(z[:, :, :2], base[:, :, :2])  # latents 0,1 see frames <= 4 only
    assert (z[:, :, 2] - base[:, :, 2]).abs().max() > 1e-4


def test_decoder_is_causal(tiny_vae):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(1, 16, 4, 2, 2, generator=g)
    base = tiny_vae.decode(z)
    changed = z.clone()
    changed[:, :, 2:] += 1.0  # alter latents 2, 3
    out = tiny_vae.decode(changed)
    # frame f depends on latents <= ceil(f/4): frames 0..4 depend on latents 0, 1 only
    torch.testing.assert_close(out[:, :, :5], base[:, :, :5])
    assert (out[:, :, 5:] - base[:, :, 5:]).abs().max() > 1e-4


def test_temporal_resample_rules_match_the_spec_formulas():
    torch.manual_seed(5)
    c = 4
    x = torch.randn(1, c, 7, 4, 4)
    down = Resample(c, "downsample3d").eval()
    y = down(x, None)
    # reference: spatial conv per frame, then [frame 0] ++ valid stride-2 kernel-3 time conv
    s = F.conv2d(F.pad(x.transpose(1, 2).reshape(7, c, 4, 4), (0, 1, 0, 1)), down.resample[1].weight,
                 down.resample[1].bias, stride=2).reshape(1, 7, c, 2, 2).transpose(1, 2)
    ref = torch.cat([s[:, :, :1], F.conv3d(s, down.time_conv.weight, down.time_conv.bias, stride=(2, 1, 1))], 2)
    torch.testing.assert_close(y, ref)
    assert y.shape[2] == 4

    up = Resample(c, "upsample3d").eval()
    x = torch.randn(1, c, 3, 2, 2)
    y = up(x, None)
    # reference: x0 unchanged; x1.. through a conv with 2 zero frames in front, channel halves interleaved
    conv = F.conv3d(F.pad(x[:, :, 1:], (0, 0, 0, 0, 2, 0)), up.time_conv.weight, up.time_conv.bias)
    frames = [x[:, :, 0]]
    for t in range(conv.shape[2]):
        frames += [conv[:, :c, t], conv[:, c:, t]]
    t_ref = torch.stack(frames, dim=2)  # 1 + 2*2 = 5 frames
    sp = F.interpolate(t_ref.transpose(1, 2).reshape(5, c, 2, 2), scale_factor=2.0, mode="nearest-exact")
    ref = F.conv2d(sp, up.resample[1].weight, up.resample[1].bias, padding=1)
    ref = ref.reshape(1, 5, c // 2, 4, 4).transpose(1, 2)
    torch.testing.assert_close(y, ref)


def test_latent_normalisation_round_trips_and_uses_the_official_constants(tiny_vae):
    assert len(LATENT_MEAN) == len(LATENT_STD) == 16
    assert LATENT_MEAN[7] == pytest.approx(1.5508) and LATENT_STD[8] == pytest.approx(3.2687)
    mu = torch.randn(2, 16, 3, 2, 2)
    z = tiny_vae.normalize_latents(mu)
    torch.testing.assert_close(z[:, 7], (mu[:, 7] - 1.5508) / 2.0743)
    torch.testing.assert_close(tiny_vae.denormalize_latents(z), mu)
    video = _video(5)
    torch.testing.assert_close(tiny_vae.encode(video), tiny_vae.normalize_latents(tiny_vae.encode_mu(video)))


def test_inputs_of_other_dtypes_run_in_float32(tiny_vae):
    video = _video(5)
    ref = tiny_vae.encode(video)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = tiny_vae.encode(video.to(torch.bfloat16))
    assert z.dtype == torch.float32
    torch.testing.assert_close(z, tiny_vae.encode(video.to(torch.bfloat16).float()))
    assert (z - ref).abs().max() < 0.05


def test_config_round_trips_through_dict():
    cfg = WanVAEConfig.tiny()
    assert WanVAEConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.temporal_stride == 4 and cfg.spatial_stride == 8


def test_loads_an_official_layout_file_strictly(tmp_path, tiny_vae):
    torch.save(tiny_vae.state_dict(), tmp_path / VAE_FILENAME)
    loaded = load_wan_vae(tmp_path, config=WanVAEConfig.tiny())  # folder -> Wan2.1_VAE.pth
    assert loaded.conv1.weight.device.type == "cpu" and loaded.dtype == torch.float32
    video = _video(5)
    torch.testing.assert_close(loaded.encode(video), tiny_vae.encode(video))
    bf16 = {k: v.to(torch.bfloat16) for k, v in tiny_vae.state_dict().items()}
    torch.save(bf16, tmp_path / "bf16.pth")
    assert load_wan_vae(tmp_path / "bf16.pth", config=WanVAEConfig.tiny()).dtype == torch.float32


def test_wrong_keys_or_shapes_give_a_clear_error(tmp_path, tiny_vae):
    state = dict(tiny_vae.state_dict())
    bad = tmp_path / "renamed.pth"
    renamed = dict(state)
    renamed["decoder.head.2.weightX"] = renamed.pop("decoder.head.2.weight")
    torch.save(renamed, bad)
    with pytest.raises(S2VError, match=r"renamed\.pth.*decoder\.head\.2\.weight"):
        load_wan_vae(bad, config=WanVAEConfig.tiny())

    wrong_shape = dict(state)
    wrong_shape["conv2.weight"] = torch.zeros(8, 8, 1, 1, 1)
    torch.save(wrong_shape, tmp_path / "shape.pth")
    with pytest.raises(S2VError, match=r"shape\.pth: key 'conv2\.weight' has shape \[8, 8, 1, 1, 1\]"):
        load_wan_vae(tmp_path / "shape.pth", config=WanVAEConfig.tiny())

    with pytest.raises(S2VError, match="not found"):
        load_wan_vae(tmp_path / "nowhere" / VAE_FILENAME)

    torch.save(state, tmp_path / "tiny.pth")  # tiny weights into the full model: shape error, not a crash
    with pytest.raises(S2VError, match="tiny.pth: key 'encoder.conv1.weight'"):
        load_wan_vae(tmp_path / "tiny.pth")


def test_pickled_objects_are_refused(tmp_path):
    from fractions import Fraction  # any class outside torch's weights_only allow-list

    torch.save({"conv1.weight": Fraction(1, 3)}, tmp_path / "evil.pth")
    with pytest.raises(S2VError, match="evil.pth"):
        load_wan_vae(tmp_path / "evil.pth", config=WanVAEConfig.tiny())


def test_tiny_checkpoint_writer_is_seeded_and_loadable(tmp_path):
    path = write_tiny_vae(tmp_path / "a", seed=7)
    write_tiny_vae(tmp_path / "b", seed=7)
    assert path.name == VAE_FILENAME
    one = load_wan_vae(path, config=WanVAEConfig.tiny())
    two = load_wan_vae(tmp_path / "b", config=WanVAEConfig.tiny())
    video = _video(5)
    torch.testing.assert_close(one.encode(video), two.encode(video))


def test_cached_frames_do_not_pin_whole_chunks_in_memory():
    conv = CausalConv3d(2, 2, 3, padding=1)
    down = Resample(2, "downsample3d")
    cache = FeatureCache()
    x = torch.randn(1, 2, 4, 8, 8)
    conv(x, cache)
    down(torch.randn(1, 2, 1, 8, 8), cache)
    down(x, cache)
    for layer, frames in ((conv, 2), (down, 1)):
        kept = cache.get(layer)
        assert kept.shape[2] == frames
        assert kept.untyped_storage().nbytes() == kept.numel() * kept.element_size()  # a copy, not a view
