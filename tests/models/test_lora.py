"""LoRA files on the tiny S2V DiT: every key convention, merged = run-time = a hand-computed W + s*B*A."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file

from s2v_toolkit.models import S2VTransformerConfig, random_s2v_transformer
from s2v_toolkit.models.lora import LoraError, LoraLinear, apply_loras, parse_lora_spec, remove_loras

RANK = 3


def _inputs(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    lf, h, w = 2, 8, 8
    return dict(latents=torch.randn(1, cfg.in_dim, lf, h, w, generator=g),
                timestep=torch.tensor([700.0]),
                text_embeddings=torch.randn(1, cfg.text_len, cfg.text_dim, generator=g),
                audio_features=torch.randn(1, cfg.num_audio_layers, cfg.audio_dim, 4 * lf, generator=g),
                ref_latents=torch.randn(1, cfg.in_dim, 1, h, w, generator=g),
                motion_latents=torch.randn(1, cfg.in_dim, cfg.motion_latent_frames, h, w, generator=g))


@pytest.fixture(scope="module")
def base():
    return random_s2v_transformer(S2VTransformerConfig.tiny(), device="cpu", dtype=torch.float32, seed=3).eval()


def _pair(out_f, in_f, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(RANK, in_f, generator=g) * 0.3, torch.randn(out_f, RANK, generator=g) * 0.3


# module (our name), the file's name for it per convention
TARGETS = ["blocks.0.self_attn.q", "blocks.1.cross_attn.o", "blocks.2.ffn.0", "head.head"]
DIFFUSERS_NAMES = {"blocks.0.self_attn.q": "blocks.0.attn1.to_q", "blocks.1.cross_attn.o": "blocks.1.attn2.to_out.0",
                   "blocks.2.ffn.0": "blocks.2.ffn.net.0.proj", "head.head": "proj_out"}


def _lora_state(model, convention: str, alpha: float | None):
    """(state dict in the convention, {module: (down, up, scale)}) for TARGETS."""
    state, truth = {}, {}
    for k, name in enumerate(TARGETS):
        w = dict(model.named_modules())[name].weight
        down, up = _pair(w.shape[0], w.shape[1], 10 + k)
        scale = (alpha / RANK) if alpha is not None else 1.0
        truth[name] = (down, up, scale)
        if convention == "peft":
            state[f"transformer.{name}.lora_A.weight"] = down
            state[f"transformer.{name}.lora_B.weight"] = up
        elif convention == "kohya":  # the published Wan LoRAs: diffusion_model. prefix, alpha per module
            state[f"diffusion_model.{name}.lora_down.weight"] = down
            state[f"diffusion_model.{name}.lora_up.weight"] = up
            state[f"diffusion_model.{name}.alpha"] = torch.tensor(alpha)
        elif convention == "kohya-flat":  # musubi-tuner / kohya: lora_unet_ with underscores
            flat = "lora_unet_" + name.replace(".", "_")
            state[f"{flat}.lora_down.weight"] = down
            state[f"{flat}.lora_up.weight"] = up
            state[f"{flat}.alpha"] = torch.tensor(alpha)
        elif convention == "diffusers":
            state[f"transformer.{DIFFUSERS_NAMES[name]}.lora_A.weight"] = down
            state[f"transformer.{DIFFUSERS_NAMES[name]}.lora_B.weight"] = up
    return state, truth


def _hand_merged(model, truth, strength):
    ref = copy.deepcopy(model)
    mods = dict(ref.named_modules())
    with torch.no_grad():
        for name, (down, up, scale) in truth.items():
            mods[name].weight += strength * scale * (up @ down)
    return ref


@pytest.mark.parametrize("convention, alpha", [("peft", None), ("kohya", 1.5), ("kohya-flat", 6.0),
                                               ("diffusers", None)])
def test_merged_equals_runtime_equals_hand_computed(base, tmp_path, convention, alpha):
    state, truth = _lora_state(base, convention, alpha)
    path = tmp_path / f"{convention}.safetensors"
    save_file(state, str(path))
    strength = 0.7
    expected = _hand_merged(base, truth, strength)
    inputs = _inputs(base.config)
    with torch.no_grad():
        want = expected(**inputs)
        plain = base(**inputs)

    merged = copy.deepcopy(base)
    (report,) = apply_loras(merged, [f"{path}:{strength}"], mode="merge")
    assert report["targets"] == len(TARGETS) and report["unmatched"] == []
    mods, ref_mods = dict(merged.named_modules()), dict(expected.named_modules())
    for name in TARGETS:
        torch.testing.assert_close(mods[name].weight, ref_mods[name].weight, rtol=0, atol=1e-6)

    runtime = copy.deepcopy(base)
    apply_loras(runtime, [parse_lora_spec(f"{path}:{strength}")], mode="runtime")
    assert sum(isinstance(m, LoraLinear) for m in runtime.modules()) == len(TARGETS)
    with torch.no_grad():
        got_merged, got_runtime = merged(**inputs), runtime(**inputs)
    assert not torch.allclose(want, plain, atol=1e-3)  # the LoRA changes the output
    torch.testing.assert_close(got_merged, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_runtime, want, rtol=1e-5, atol=1e-5)

    assert remove_loras(runtime) == len(TARGETS)
    with torch.no_grad():
        torch.testing.assert_close(runtime(**inputs), plain, rtol=0, atol=0)


def test_full_deltas_and_two_loras_with_strengths(base, tmp_path):
    """diff (norm weight, modulation), diff_b (bias) and a second low-rank file, each with its strength."""
    g = torch.Generator().manual_seed(5)
    d = base.config.dim
    diffs = {"diffusion_model.blocks.0.norm3.diff": torch.randn(d, generator=g) * 0.1,
             "diffusion_model.blocks.0.self_attn.q.diff_b": torch.randn(d, generator=g) * 0.1,
             "diffusion_model.blocks.1.modulation.diff": torch.randn(1, 6, d, generator=g) * 0.1,
             "diffusion_model.blocks.3.cross_attn.norm_k.diff": torch.randn(d, generator=g) * 0.1}
    save_file(diffs, str(tmp_path / "diff.safetensors"))
    state, truth = _lora_state(base, "kohya", 3.0)
    save_file(state, str(tmp_path / "lowrank.safetensors"))

    expected = _hand_merged(base, truth, 0.5)
    p = dict(expected.named_parameters())
    with torch.no_grad():
        p["blocks.0.norm3.weight"] += 2.0 * diffs["diffusion_model.blocks.0.norm3.diff"]
        p["blocks.0.self_attn.q.bias"] += 2.0 * diffs["diffusion_model.blocks.0.self_attn.q.diff_b"]
        p["blocks.1.modulation"] += 2.0 * diffs["diffusion_model.blocks.1.modulation.diff"]
        p["blocks.3.cross_attn.norm_k.weight"] += 2.0 * diffs["diffusion_model.blocks.3.cross_attn.norm_k.diff"]
    inputs = _inputs(base.config, seed=1)
    specs = [f"{tmp_path / 'diff.safetensors'}:2", f"{tmp_path / 'lowrank.safetensors'}:0.5"]
    with torch.no_grad():
        want, plain = expected(**inputs), base(**inputs)
    for mode in ("merge", "runtime"):
        m = copy.deepcopy(base)
        apply_loras(m, specs, mode=mode)
        with torch.no_grad():
            torch.testing.assert_close(m(**inputs), want, rtol=1e-5, atol=1e-5)
        if mode == "runtime":  # the full deltas were merged with a backup: removal restores them too
            remove_loras(m)
            with torch.no_grad():
                torch.testing.assert_close(m(**inputs), plain, rtol=0, atol=0)


def test_unmatched_keys_are_named(base, tmp_path):
    state, _ = _lora_state(base, "kohya", 3.0)
    state["diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight"] = torch.zeros(RANK, 64)  # an I2V layer
    state["diffusion_model.blocks.0.cross_attn.k_img.lora_up.weight"] = torch.zeros(64, RANK)
    state["diffusion_model.blocks.0.self_attn.k.lora_down.weight"] = torch.zeros(RANK, 7)  # wrong shape
    state["diffusion_model.blocks.0.self_attn.k.lora_up.weight"] = torch.zeros(64, RANK)
    path = tmp_path / "mixed.safetensors"
    save_file(state, str(path))
    with pytest.raises(LoraError, match="k_img.lora_down.weight") as err:
        apply_loras(copy.deepcopy(base), [path])
    assert "self_attn.k.lora_down.weight" in str(err.value) and "4 key(s)" in str(err.value)
    warned = []
    m = copy.deepcopy(base)
    (report,) = apply_loras(m, [path], ignore_unmatched=True, warn=warned.append)
    assert report["targets"] == len(TARGETS) and len(report["unmatched"]) == 4
    assert len(warned) == 1 and "k_img" in warned[0]


def test_missing_file_and_strength_parsing(tmp_path):
    f = tmp_path / "a.safetensors"
    save_file({"x.lora_A.weight": torch.zeros(1, 1)}, str(f))
    assert parse_lora_spec(f"{f}:0.25").strength == 0.25 and parse_lora_spec(str(f)).strength == 1.0
    with pytest.raises(LoraError, match="not found"):
        parse_lora_spec(str(tmp_path / "missing.safetensors"))


def test_lora_on_fp8_weights(base, tmp_path):
    """Merged into e4m3 weights: re-quantized W_deq + delta; run time on fp8: fp8 product + low-rank term."""
    from s2v_toolkit.models.fp8 import dequantize, enable_fp8_linears, quantize_rowwise

    state, truth = _lora_state(base, "peft", None)
    path = tmp_path / "peft.safetensors"
    save_file(state, str(path))
    fp8 = copy.deepcopy(base)
    enable_fp8_linears(fp8, layers=("blocks.*",))
    name = "blocks.0.self_attn.q"
    layer = dict(fp8.named_modules())[name]
    w_deq = dequantize(layer.weight_fp8, layer.weight_scale[:, None])
    down, up, scale = truth[name]
    target = w_deq + scale * (up @ down)

    merged = copy.deepcopy(fp8)
    apply_loras(merged, [path], mode="merge")
    m = dict(merged.named_modules())[name]
    got = dequantize(m.weight_fp8, m.weight_scale[:, None])
    # exactly the per-row e4m3 quantization of W_deq + delta, within half the top spacing (16/448 of a row's max)
    q, s = quantize_rowwise(target)
    torch.testing.assert_close(got, dequantize(q, s), rtol=0, atol=0)
    assert ((got - target).abs() <= target.abs().amax(dim=1, keepdim=True) * 16 / 448 + 1e-7).all()
    assert (got - w_deq).abs().max() > 1e-2  # the delta went in

    runtime = copy.deepcopy(fp8)
    apply_loras(runtime, [path], mode="runtime")
    x = torch.randn(2, 5, base.config.dim)
    wrapped = dict(runtime.named_modules())[name]
    with torch.no_grad():
        want = layer(x) + scale * (x @ down.T @ up.T)
        torch.testing.assert_close(wrapped(x), want, rtol=1e-5, atol=1e-5)
