"""Tests of the S2V transformer checkpoint loader on tiny checkpoints written in the official layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from s2v_toolkit.errors import ConfigError, S2VError
from s2v_toolkit.models.checkpoint import (
    INDEX_NAME,
    CheckpointError,
    expected_tensor_shapes,
    load_s2v_transformer,
    shard_name,
    write_tiny_checkpoint,
)
from s2v_toolkit.models.s2v_transformer import S2VTransformerConfig

TINY = S2VTransformerConfig.tiny()


def tiny_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return dict(latents=r(1, 16, 2, 8, 16), timestep=torch.tensor([600.0]),
                text_embeddings=r(1, 7, TINY.text_dim),
                audio_features=r(1, TINY.num_audio_layers, TINY.audio_dim, 8),
                ref_latents=r(1, 16, 1, 8, 16), motion_latents=r(1, 16, 19, 8, 16))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s2v") / "Wan2.2-S2V-tiny"
    model = write_tiny_checkpoint(folder, TINY, seed=4, num_shards=3)
    return folder, model


def test_official_layout_files(written):
    folder, model = written
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["config.json", INDEX_NAME] + [shard_name(i, 3) for i in (1, 2, 3)])
    assert shard_name(1, 4) == "diffusion_pytorch_model-00001-of-00004.safetensors"
    index = json.loads((folder / INDEX_NAME).read_text())
    assert set(index["weight_map"]) == set(model.state_dict())
    assert len(set(index["weight_map"].values())) == 3
    assert json.loads((folder / "config.json").read_text())["_class_name"] == "WanModel_S2V"


def test_round_trip_strict_gives_identical_weights_and_outputs(written):
    folder, model = written
    loaded = load_s2v_transformer(folder, dtype=torch.float32, strict=True)
    assert loaded.config == TINY  # read from config.json
    assert not loaded.training
    ref_state, new_state = model.state_dict(), loaded.state_dict()
    assert list(ref_state) == list(new_state)
    assert all(torch.equal(ref_state[k], new_state[k]) for k in ref_state)
    inp = tiny_inputs()
    with torch.no_grad():
        assert torch.equal(model(**inp), loaded(**inp))


def test_dtype_control(written):
    folder, model = written
    loaded = load_s2v_transformer(folder, dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    inp = tiny_inputs()
    with torch.no_grad():
        out16, out32 = loaded(**inp), model(**inp)
    assert out16.dtype == torch.float32
    assert (out16 - out32).abs().max() < 0.1 * out32.abs().max()  # bf16 weights: close, not equal


def _rewrite_shard(folder, shard, edit):
    path = folder / shard
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def _copy(src, dst):
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _key_in_shard(folder, shard):
    weight_map = json.loads((folder / INDEX_NAME).read_text())["weight_map"]
    return sorted(k for k, v in weight_map.items() if v == shard)[0]


def test_missing_shard_names_the_file(written, tmp_path):
    folder = _copy(written[0], tmp_path / "ckpt")
    (folder / shard_name(2, 3)).unlink()
    with pytest.raises(CheckpointError, match=r"00002-of-00003\.safetensors.*missing"):
        load_s2v_transformer(folder)


def test_missing_key_names_the_key(written, tmp_path):
    folder = _copy(written[0], tmp_path / "ckpt")
    shard = shard_name(2, 3)
    key = _key_in_shard(folder, shard)
    _rewrite_shard(folder, shard, lambda t: t.pop(key))
    with pytest.raises(CheckpointError) as err:
        load_s2v_transformer(folder)
    assert key in str(err.value) and shard in str(err.value)
    # without the index entry it is a plain missing tensor, named too
    index = json.loads((folder / INDEX_NAME).read_text())
    del index["weight_map"][key]
    (folder / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="1 tensors missing") as err:
        load_s2v_transformer(folder)
    assert key in str(err.value)


def test_shape_mismatch_and_unexpected_key_name_file_and_key(written, tmp_path):
    folder = _copy(written[0], tmp_path / "ckpt")
    shard = shard_name(1, 3)
    key = _key_in_shard(folder, shard)
    _rewrite_shard(folder, shard, lambda t: t.__setitem__(key, torch.zeros(3, 3)))
    with pytest.raises(CheckpointError) as err:
        load_s2v_transformer(folder)
    message = str(err.value)
    assert shard in message and key in message and "(3, 3)" in message

    folder = _copy(written[0], tmp_path / "ckpt2")
    _rewrite_shard(folder, shard, lambda t: t.__setitem__("blocks.0.extra_gate", torch.zeros(2)))
    with pytest.raises(CheckpointError, match=r"00001-of-00003.*unexpected tensor 'blocks\.0\.extra_gate'"):
        load_s2v_transformer(folder)
    loaded = load_s2v_transformer(folder, dtype=torch.float32, strict=False)  # extra keys ignored
    assert torch.equal(loaded.state_dict()[key], written[1].state_dict()[key])


def test_corrupted_shard_is_a_clear_error(written, tmp_path):
    folder = _copy(written[0], tmp_path / "ckpt")
    shard = folder / shard_name(3, 3)
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(S2VError, match=r"00003-of-00003\.safetensors: cannot read"):
        load_s2v_transformer(folder)


def test_wrong_model_is_rejected(written, tmp_path):
    folder = _copy(written[0], tmp_path / "t2v")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "_class_name": "WanModel"}))
    with pytest.raises(ConfigError, match="config.json.*not a Wan S2V"):
        load_s2v_transformer(folder)
    # a single-file T2V-like state dict: transformer keys but no audio modules
    state = {k: v for k, v in written[1].state_dict().items()
             if not k.startswith(("casual_audio_encoder.", "audio_injector.", "frame_packer."))}
    single = tmp_path / "t2v.safetensors"
    save_file(state, str(single))
    with pytest.raises(CheckpointError, match="T2V/I2V"):
        load_s2v_transformer(single, config=TINY)


def test_missing_folder_and_bad_file_type(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_s2v_transformer(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no diffusion_pytorch_model"):
        load_s2v_transformer(tmp_path)
    bad = tmp_path / "w.gguf"
    bad.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported weight file type"):
        load_s2v_transformer(bad, config=TINY)


def test_single_file_repack_with_prefix_in_bf16(written, tmp_path):
    _, model = written
    state = {f"model.diffusion_model.{k}": v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    path = tmp_path / "wan2.2_s2v_14B_bf16.safetensors"
    save_file(state, str(path))
    loaded = load_s2v_transformer(path, config=TINY, dtype=torch.bfloat16)
    ref = model.state_dict()
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, ref[k].to(torch.bfloat16)), k


def test_single_file_scaled_fp8(written, tmp_path):
    _, model = written
    ref = model.state_dict()
    state = {}
    for k, v in ref.items():
        if k.endswith(".weight") and v.ndim == 2:  # linear weights stored as fp8 * per-tensor scale
            scale = v.abs().max() / 448.0
            state[k] = (v / scale).to(torch.float8_e4m3fn)
            state[k[: -len(".weight")] + ".scale_weight"] = scale.reshape(1)
        else:
            state[k] = v
    state["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    path = tmp_path / "s2v_fp8_scaled.safetensors"
    save_file(state, str(path))
    loaded = load_s2v_transformer(path, config=TINY, dtype=torch.float32)
    w = "blocks.1.ffn.0.weight"
    assert loaded.state_dict()[w].dtype == torch.float32
    rel = (loaded.state_dict()[w] - ref[w]).abs().max() / ref[w].abs().max()
    assert 0 < rel < 0.07  # fp8 e4m3 rounding, correctly rescaled


def test_pth_state_dict_loads_with_weights_only(written, tmp_path):
    _, model = written
    path = tmp_path / "s2v.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    loaded = load_s2v_transformer(path, config=TINY, dtype=torch.float32)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": model.state_dict(), "obj": object.__new__(_Pickled)}, evil)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_s2v_transformer(evil, config=TINY)


class _Pickled:  # an arbitrary class: refused by torch.load(weights_only=True)
    pass


def test_expected_shapes_of_full_config_without_memory():
    shapes = expected_tensor_shapes(S2VTransformerConfig.full())
    assert len(shapes) == 1260
    assert shapes["patch_embedding.weight"] == (5120, 16, 1, 2, 2)
    assert shapes["head.head.weight"] == (64, 5120)
