"""Tests of the Wan S2V transformer against the spec (shared/spec/wan_s2v_dit.md).

The strongest test here compares the model with a plain float64 re-implementation written in this
file straight from the spec (explicit per-token modulation tensors, complex RoPE tables with
conjugates for negative positions, per-latent-frame audio loops, explicit softmax). The two share no
code, so a wrong segment, position, ordering or modulation shows up as a mismatch.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models.rope import apply_rope, rope_cos_sin, s2v_token_positions
from s2v_toolkit.models.s2v_transformer import (
    S2VTransformerConfig,
    WanS2VTransformer,
    forward_flops,
    init_random_weights,
    random_s2v_transformer,
)

TINY = S2VTransformerConfig.tiny()
B, FRAMES, H, W = 2, 3, 16, 16  # latent geometry used by most tests


# ----------------------------------------------------------------------------------------------
# Key/shape table of the official checkpoint, written out from the spec
# ----------------------------------------------------------------------------------------------
def spec_key_table() -> dict[str, tuple[int, ...]]:
    D, FF, A, T = 5120, 13824, 1024, 64
    t: dict[str, tuple[int, ...]] = {}

    def lin(name, out_f, in_f):
        t[f"{name}.weight"] = (out_f, in_f)
        t[f"{name}.bias"] = (out_f,)

    def attn(name):
        for p in "qkvo":
            lin(f"{name}.{p}", D, D)
        t[f"{name}.norm_q.weight"] = (D,)
        t[f"{name}.norm_k.weight"] = (D,)

    for conv, kernel in (("patch_embedding", (1, 2, 2)), ("cond_encoder", (1, 2, 2)),
                         ("frame_packer.proj", (1, 2, 2)), ("frame_packer.proj_2x", (2, 4, 4)),
                         ("frame_packer.proj_4x", (4, 8, 8))):
        t[f"{conv}.weight"] = (D, 16, *kernel)
        t[f"{conv}.bias"] = (D,)
    lin("text_embedding.0", D, 4096)
    lin("text_embedding.2", D, D)
    lin("time_embedding.0", D, 256)
    lin("time_embedding.2", D, D)
    lin("time_projection.1", 6 * D, D)
    for i in range(40):
        b = f"blocks.{i}"
        t[f"{b}.modulation"] = (1, 6, D)
        attn(f"{b}.self_attn")
        t[f"{b}.norm3.weight"] = (D,)
        t[f"{b}.norm3.bias"] = (D,)
        attn(f"{b}.cross_attn")
        lin(f"{b}.ffn.0", FF, D)
        lin(f"{b}.ffn.2", D, FF)
    t["head.modulation"] = (1, 2, D)
    lin("head.head", T, D)
    e = "casual_audio_encoder"
    t[f"{e}.weights"] = (1, 25, 1, 1)
    t[f"{e}.encoder.padding_tokens"] = (1, 1, 1, D)
    for name, out_c, in_c in (("conv1_local", D, A), ("conv1_global", D // 4, A),
                              ("conv2", D // 2, D // 4), ("conv3", D, D // 2)):
        t[f"{e}.encoder.{name}.conv.weight"] = (out_c, in_c, 3)
        t[f"{e}.encoder.{name}.conv.bias"] = (out_c,)
    lin(f"{e}.encoder.final_linear", D, D)
    for j in range(12):
        attn(f"audio_injector.injector.{j}")
        lin(f"audio_injector.injector_adain_layers.{j}.linear", 2 * D, D)
    t["trainable_cond_mask.weight"] = (3, D)
    return t


def test_full_config_state_dict_equals_official_key_table():
    with torch.device("meta"):
        model = WanS2VTransformer(S2VTransformerConfig.full())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    spec = spec_key_table()
    assert len(spec) == 1260
    assert sorted(set(ours) - set(spec)) == [] and sorted(set(spec) - set(ours)) == []
    assert ours == spec
    assert sum(p.numel() for p in model.parameters()) == 16_295_755_609
    assert list(model.buffers()) == []  # RoPE tables are computed, not stored
    # spot checks straight from the spec text
    assert ours["blocks.39.ffn.2.weight"] == (5120, 13824)
    assert ours["frame_packer.proj_4x.weight"] == (5120, 16, 4, 8, 8)
    assert ours["casual_audio_encoder.encoder.conv1_local.conv.weight"] == (5120, 1024, 3)
    assert ours["audio_injector.injector_adain_layers.11.linear.weight"] == (10240, 5120)


def test_config_round_trips_and_rejects_other_models():
    cfg = S2VTransformerConfig.tiny()
    assert S2VTransformerConfig.from_dict(cfg.to_dict()) == cfg
    assert S2VTransformerConfig.from_official_dict(cfg.to_official_dict()) == cfg
    assert S2VTransformerConfig.from_official_dict({"_class_name": "WanModel_S2V"}) == \
        S2VTransformerConfig.full()
    with pytest.raises(ConfigError, match="not a Wan S2V"):
        S2VTransformerConfig.from_official_dict({"_class_name": "WanModel", "dim": 5120})
    with pytest.raises(ConfigError, match="enable_motioner"):
        S2VTransformerConfig.from_official_dict({"enable_motioner": True, "enable_framepack": True})
    with pytest.raises(ConfigError):
        S2VTransformerConfig(dim=60, num_heads=4)


# ----------------------------------------------------------------------------------------------
# Inputs and a float64 reference implementation from the spec
# ----------------------------------------------------------------------------------------------
def make_inputs(cfg=TINY, batch=B, frames=FRAMES, height=H, width=W, seed=1, motion_frames=19,
                text_rows=10):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    text = rnd(batch, text_rows, cfg.text_dim)
    return dict(
        latents=rnd(batch, cfg.in_dim, frames, height, width),
        timestep=torch.linspace(300.0, 900.0, batch),
        text_embeddings=text,
        audio_features=rnd(batch, cfg.num_audio_layers, cfg.audio_dim, 4 * frames),
        ref_latents=rnd(batch, cfg.in_dim, 1, height, width),
        motion_latents=rnd(batch, cfg.in_dim, motion_frames, height, width),
        pose_latents=rnd(batch, cfg.cond_dim, frames, height, width),
    )


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return init_random_weights(WanS2VTransformer(TINY), seed=0).eval()


def spec_positions(frames, height, width, with_motion):
    """(t, h, w) per token, listed exactly as the spec's RoPE section says."""
    gh, gw = height // 2, width // 2
    pos = [(f, i, j) for f in range(frames) for i in range(gh) for j in range(gw)]
    pos += [(30, i, j) for i in range(gh) for j in range(gw)]
    if with_motion:
        pos += [(-1, i, j) for i in range(gh) for j in range(gw)]
        hs = np.linspace(0, height / 2 - 1, height // 4).astype(int)
        ws = np.linspace(0, width / 2 - 1, width // 4).astype(int)
        pos += [(-3, int(i), int(j)) for i in hs for j in ws]
        hs = np.linspace(0, height / 2 - 1, height // 8).astype(int)
        ws = np.linspace(0, width / 2 - 1, width // 8).astype(int)
        pos += [(t, int(i), int(j)) for t in (-19, -14, -9, -4) for i in hs for j in ws]
    return pos


def spec_rope_table(positions, head_dim):
    """Complex [S, head_dim/2] from per-axis polar tables of length 1024 (conjugate if negative)."""
    c = head_dim // 2
    split = (c - 2 * (c // 3), c // 3, c // 3)
    tables = []
    for n in split:
        inv = 1.0 / torch.pow(10000.0, torch.arange(0, 2 * n, 2, dtype=torch.float64) / (2 * n))
        angles = torch.outer(torch.arange(1024, dtype=torch.float64), inv)
        tables.append(torch.polar(torch.ones_like(angles), angles))
    rows = []
    for p in positions:
        parts = [tables[a][abs(v)].conj() if v < 0 else tables[a][v] for a, v in enumerate(p)]
        rows.append(torch.cat(parts))
    return torch.stack(rows)


def reference_forward(model, inp, with_motion=True, pose=True, zero_timestep=None):
    cfg = model.config
    zero_timestep = cfg.zero_timestep if zero_timestep is None else zero_timestep
    P = {k: v.detach().double() for k, v in model.state_dict().items()}
    D, nh = cfg.dim, cfg.num_heads
    hd = D // nh
    x_lat = inp["latents"].double()
    b, _, frames, height, width = x_lat.shape
    gh, gw = height // 2, width // 2

    def lin(x, name):
        return x @ P[name + ".weight"].T + P[name + ".bias"]

    def ln(x, eps=1e-6):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps)

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w

    def softmax_attn(q, k, v):  # [b, s, h, d]
        s = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        return torch.einsum("bhqk,bkhd->bqhd", s.softmax(-1), v)

    def mha(x, ctx, name, freqs=None):
        q = rms(lin(x, name + ".q"), P[name + ".norm_q.weight"]).reshape(*x.shape[:2], nh, hd)
        k = rms(lin(ctx, name + ".k"), P[name + ".norm_k.weight"]).reshape(*ctx.shape[:2], nh, hd)
        v = lin(ctx, name + ".v").reshape(*ctx.shape[:2], nh, hd)
        if freqs is not None:
            rot = lambda t: torch.view_as_real(  # noqa: E731
                torch.view_as_complex(t.reshape(*t.shape[:3], -1, 2).contiguous()) * freqs[None, :, None]
            ).flatten(3)
            q, k = rot(q), rot(k)
        return lin(softmax_attn(q, k, v).reshape(*x.shape[:2], D), name + ".o")

    def conv3(x, name, k):
        return F.conv3d(x, P[name + ".weight"], P[name + ".bias"], stride=k)

    # --- audio: layer mix, 73-frame prefix, causal convs, drop 19 ---
    w = F.silu(P["casual_audio_encoder.weights"])
    feat = (inp["audio_features"].double() * w).sum(1) / w.sum(1)
    feat = torch.cat([feat[..., :1].repeat(1, 1, 73), feat], -1)

    def cconv(x, name, stride):
        x = F.pad(x, (2, 0), mode="replicate")
        e = "casual_audio_encoder.encoder." + name + ".conv"
        return F.conv1d(x, P[e + ".weight"], P[e + ".bias"], stride=stride)

    def ln_silu(x):  # [N, C, T], norm over C
        return F.silu(ln(x.transpose(1, 2))).transpose(1, 2)

    def down(x):
        x = ln_silu(cconv(ln_silu(x), "conv2", 2))
        return ln_silu(cconv(x, "conv3", 2)).transpose(1, 2)  # [B, T', D]

    loc = cconv(feat, "conv1_local", 1)
    c4 = D // 4
    local = [down(loc[:, j * c4:(j + 1) * c4]) for j in range(cfg.num_audio_token)]
    pad = P["casual_audio_encoder.encoder.padding_tokens"][0, 0, 0]
    local.append(pad.expand_as(local[0]))
    audio_local = torch.stack(local, dim=2)[:, 19:]  # [B, F, 5, D]
    audio_global = lin(down(cconv(feat, "conv1_global", 1)), "casual_audio_encoder.encoder.final_linear")[:, 19:]
    assert audio_local.shape[1] == frames

    # --- tokens ---
    noisy = conv3(x_lat, "patch_embedding", (1, 2, 2))
    pose_lat = inp["pose_latents"].double() if pose else torch.zeros_like(x_lat)
    noisy = noisy + conv3(pose_lat, "cond_encoder", (1, 2, 2))
    seq = [noisy.flatten(2).transpose(1, 2) + P["trainable_cond_mask.weight"][0]]
    seq.append(conv3(inp["ref_latents"].double(), "patch_embedding", (1, 2, 2)).flatten(2).transpose(1, 2)
               + P["trainable_cond_mask.weight"][1])
    if with_motion:
        m = inp["motion_latents"].double()[:, :, -19:]
        m = torch.cat([torch.zeros(b, 16, 19 - m.shape[2], height, width, dtype=m.dtype), m], 2)
        for name, frames_sel, k in (("proj", slice(18, 19), (1, 2, 2)), ("proj_2x", slice(16, 18), (2, 4, 4)),
                                    ("proj_4x", slice(0, 16), (4, 8, 8))):
            tok = conv3(m[:, :, frames_sel], "frame_packer." + name, k).flatten(2).transpose(1, 2)
            seq.append(tok + P["trainable_cond_mask.weight"][2])
    x = torch.cat(seq, 1)
    n = frames * gh * gw
    s = x.shape[1]
    freqs = spec_rope_table(spec_positions(frames, height, width, with_motion), hd)
    assert freqs.shape[0] == s

    # --- time ---
    def temb(t):
        half = cfg.freq_dim // 2
        ang = torch.outer(t.double(), torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half))
        e = torch.cat([ang.cos(), ang.sin()], 1)
        e = lin(F.silu(lin(e, "time_embedding.0")), "time_embedding.2")
        return e, lin(F.silu(e), "time_projection.1").reshape(-1, 6, D)

    e, e0 = temb(inp["timestep"])
    _, e0_zero = temb(torch.zeros(1))
    e0_other = e0_zero.expand(b, 6, D) if zero_timestep else e0

    ctx = F.pad(inp["text_embeddings"].double(), (0, 0, 0, cfg.text_len - inp["text_embeddings"].shape[1]))
    ctx = lin(F.gelu(lin(ctx, "text_embedding.0"), approximate="tanh"), "text_embedding.2")

    inject = {layer: j for j, layer in enumerate(cfg.audio_inject_layers)}
    for i in range(cfg.num_layers):
        bl = f"blocks.{i}"
        mod = P[bl + ".modulation"][0]
        tok = torch.cat([(mod + e0)[:, None].expand(b, n, 6, D),
                         (mod + e0_other)[:, None].expand(b, s - n, 6, D)], 1)  # [B, S, 6, D]
        h = ln(x) * (1 + tok[:, :, 1]) + tok[:, :, 0]
        x = x + tok[:, :, 2] * mha(h, h, bl + ".self_attn", freqs)
        x = x + mha(ln(x) * P[bl + ".norm3.weight"] + P[bl + ".norm3.bias"], ctx, bl + ".cross_attn")
        h = ln(x) * (1 + tok[:, :, 4]) + tok[:, :, 3]
        x = x + tok[:, :, 5] * lin(F.gelu(lin(h, bl + ".ffn.0"), approximate="tanh"), bl + ".ffn.2")
        if i in inject:
            j = inject[i]
            hw = gh * gw
            x = x.clone()
            for f in range(frames):
                xf = x[:, f * hw:(f + 1) * hw]
                ss = lin(F.silu(audio_global[:, f]), f"audio_injector.injector_adain_layers.{j}.linear")
                hf = ln(xf, 1e-5) * (1 + ss[:, None, D:]) + ss[:, None, :D]
                x[:, f * hw:(f + 1) * hw] = xf + mha(hf, audio_local[:, f], f"audio_injector.injector.{j}")

    mod = P["head.modulation"][0] + e[:, None]  # [B, 2, D]
    out = lin(ln(x[:, :n]) * (1 + mod[:, 1:2]) + mod[:, 0:1], "head.head")
    vids = []
    for u in out:
        u = u.view(frames, gh, gw, 1, 2, 2, 16)
        vids.append(torch.einsum("fhwpqrc->cfphqwr", u).reshape(16, frames, height, width))
    return torch.stack(vids)


def run(model, inp, **kw):
    with torch.no_grad():
        return model(**inp, **kw)


# ----------------------------------------------------------------------------------------------
# Forward behaviour
# ----------------------------------------------------------------------------------------------
def test_tiny_forward_shape_dtype_and_determinism(tiny_model):
    inp = make_inputs()
    out = run(tiny_model, inp)
    assert out.shape == (B, 16, FRAMES, H, W) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.std() > 0.1
    again = init_random_weights(WanS2VTransformer(TINY), seed=0).eval()
    assert torch.equal(run(again, inp), out)  # same seed, same weights, same output
    assert torch.equal(run(tiny_model, inp), out)


@pytest.mark.parametrize("with_motion,pose", [(True, True), (False, False)])
def test_matches_float64_reference_written_from_spec(tiny_model, with_motion, pose):
    inp = make_inputs()
    if not pose:
        inp["pose_latents"] = None
    if not with_motion:
        inp["motion_latents"] = None
    out = run(tiny_model, inp).double()
    ref = reference_forward(tiny_model, inp, with_motion=with_motion, pose=pose)
    err = (out - ref).abs().max().item()
    assert err < 2e-4 * ref.abs().max().item(), err


def test_short_motion_history_is_zero_padded_in_front(tiny_model):
    inp = make_inputs(motion_frames=5)
    padded = dict(inp)
    m = inp["motion_latents"]
    padded["motion_latents"] = torch.cat([torch.zeros(B, 16, 14, H, W), m], dim=2)
    torch.testing.assert_close(run(tiny_model, inp), run(tiny_model, padded), rtol=0, atol=0)
    long = dict(inp)  # only the last 19 frames count
    long["motion_latents"] = torch.cat([torch.randn(B, 16, 6, H, W), padded["motion_latents"]], dim=2)
    torch.testing.assert_close(run(tiny_model, long), run(tiny_model, padded), rtol=0, atol=0)
    # the reference also agrees (FramePack on a short history)
    ref = reference_forward(tiny_model, inp)
    assert (run(tiny_model, inp).double() - ref).abs().max() < 2e-4 * ref.abs().max()


def test_drop_motion_frames_equals_no_motion_and_motion_matters(tiny_model):
    inp = make_inputs()
    dropped = run(tiny_model, inp, drop_motion_frames=True)
    none = run(tiny_model, {**inp, "motion_latents": None})
    assert torch.equal(dropped, none)
    assert not torch.allclose(run(tiny_model, inp), none, atol=1e-3)


def test_pose_none_equals_zero_pose_and_pose_matters(tiny_model):
    inp = make_inputs()
    zero = run(tiny_model, {**inp, "pose_latents": torch.zeros_like(inp["pose_latents"])})
    none = run(tiny_model, {**inp, "pose_latents": None})
    torch.testing.assert_close(none, zero, rtol=0, atol=1e-6)
    assert not torch.allclose(run(tiny_model, inp), none, atol=1e-3)


def test_batch_of_two_equals_two_batches_of_one(tiny_model):
    inp = make_inputs()
    both = run(tiny_model, inp)
    for i in range(B):
        one = {k: v[i:i + 1] for k, v in inp.items()}
        torch.testing.assert_close(run(tiny_model, one), both[i:i + 1], rtol=1e-5, atol=1e-5)


def test_zero_timestep_modulation_for_reference_and_motion_tokens(tiny_model):
    """Reference/motion tokens use the t=0 modulation: at t=0 a model without zero_timestep is
    identical; at t>0 it differs, and the t=0 embedding does not depend on the noisy t."""
    no_zero = WanS2VTransformer(dataclasses.replace(TINY, zero_timestep=False)).eval()
    no_zero.load_state_dict(tiny_model.state_dict())
    inp = make_inputs()
    at_zero = {**inp, "timestep": torch.zeros(B)}
    # equal up to float32 round-off (the t=0 path runs its matmuls on another batch shape, so the
    # last bits may differ with the thread count); at t>0 the difference is orders of magnitude larger
    torch.testing.assert_close(run(no_zero, at_zero), run(tiny_model, at_zero), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(run(no_zero, inp), run(tiny_model, inp), atol=1e-3)
    # the model's own split: column 1 is t-independent and equals t=0's column 0
    _, e0 = tiny_model.time_embeddings(torch.tensor([250.0, 999.0]))
    _, e0_zero = tiny_model.time_embeddings(torch.tensor([0.0]))
    torch.testing.assert_close(e0[:, :, 1], e0_zero[:, :, 0].expand(2, -1, -1))
    assert not torch.allclose(e0[:, :, 0], e0[:, :, 1])
    # and the no-zero-timestep variant matches its own float64 reference
    ref = reference_forward(no_zero, inp, zero_timestep=False)
    assert (run(no_zero, inp).double() - ref).abs().max() < 2e-4 * ref.abs().max()


def test_audio_encoder_is_causal(tiny_model):
    """Audio tokens of latent frame f depend on video frames <= 4f+3 only (causal convs)."""
    inp = make_inputs(batch=1, frames=5)
    enc = tiny_model.casual_audio_encoder
    local0, glob0 = enc(inp["audio_features"], 73, 19)
    assert local0.shape == (1, 5, TINY.num_audio_token + 1, TINY.dim) and glob0.shape == (1, 5, TINY.dim)
    for k in (2, 9, 17):
        changed = inp["audio_features"].clone()
        changed[..., k] += 3.0
        local1, glob1 = enc(changed, 73, 19)
        for f in range(5):
            same = torch.equal(local1[:, f], local0[:, f]) and torch.equal(glob1[:, f], glob0[:, f])
            if 4 * f + 3 < k:  # causal: earlier latent frames never see video frame k
                assert same, (k, f)
            if f == k // 4:  # the latent frame whose 4 video frames include k does
                assert not same, (k, f)


def test_audio_injection_reaches_only_its_latent_frame():
    """With one injector after the last block, audio changes at video frame k move only the
    output of latent frames whose audio window includes k (not earlier frames)."""
    cfg = dataclasses.replace(TINY, audio_inject_layers=(TINY.num_layers - 1,))
    model = init_random_weights(WanS2VTransformer(cfg), seed=3).eval()
    inp = make_inputs(cfg, batch=1, frames=5)
    base = run(model, inp)
    changed = inp["audio_features"].clone()
    changed[..., 9] += 3.0  # video frame 9 lies in latent frame 2 (video frames 8..11)
    out = run(model, {**inp, "audio_features": changed})
    diff = (out - base).abs().amax(dim=(0, 1, 3, 4))
    assert torch.all(diff[:2] == 0)  # earlier latent frames: exactly unchanged
    assert diff[2] > 1e-4
    # with injection after block 0, self-attention of later blocks spreads it everywhere
    spread = run(init_random_weights(WanS2VTransformer(TINY), seed=3).eval(),
                 {**inp, "audio_features": changed}) - run(
        init_random_weights(WanS2VTransformer(TINY), seed=3).eval(), inp)
    assert spread.abs().amax(dim=(0, 1, 3, 4))[0] > 1e-5


def test_autograd_path_equals_inference_path_and_reaches_every_parameter(tiny_model):
    """Inference works in place; under autograd the same maths runs out of place."""
    inp = make_inputs(batch=1)
    out = tiny_model(**inp)
    torch.testing.assert_close(out.detach(), run(tiny_model, inp), rtol=1e-6, atol=1e-6)
    out.square().mean().backward()
    no_grad = [n for n, p in tiny_model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    tiny_model.zero_grad(set_to_none=True)
    assert no_grad == []


def test_bf16_weights_give_the_float32_result_within_bf16_precision():
    """Mixed precision path: bf16 matmuls, float32 modulation/residual/head."""
    m16 = random_s2v_transformer(TINY, dtype=torch.bfloat16, seed=5)
    assert {p.dtype for p in m16.parameters()} == {torch.bfloat16}
    m32 = WanS2VTransformer(TINY).eval()
    m32.load_state_dict({k: v.float() for k, v in m16.state_dict().items()})
    inp = make_inputs(batch=1)
    out16, out32 = run(m16, inp), run(m32, inp)
    assert out16.dtype == torch.float32
    rel = ((out16 - out32).norm() / out32.norm()).item()
    assert rel < 0.05, rel


def test_input_validation(tiny_model):
    inp = make_inputs()
    with pytest.raises(ValueError, match="audio_features"):
        run(tiny_model, {**inp, "audio_features": inp["audio_features"][..., :-1]})
    with pytest.raises(ValueError, match="ref_latents"):
        run(tiny_model, {**inp, "ref_latents": inp["ref_latents"][:, :, :, :8]})
    with pytest.raises(ValueError, match="text_len"):
        run(tiny_model, {**inp, "text_embeddings": torch.zeros(B, TINY.text_len + 1, TINY.text_dim)})


# ----------------------------------------------------------------------------------------------
# RoPE
# ----------------------------------------------------------------------------------------------
def test_rope_positions_per_segment_follow_spec():
    for (h, w, counts) in ((56, 104, (29120, 1456, 1456, 364, 364)), (88, 160, (70400, 3520, 3520, 880, 880))):
        seg = s2v_token_positions(20, h, w, with_motion=True)
        assert tuple(len(v) for v in seg.values()) == counts
        flat = np.concatenate(list(seg.values()))
        assert [tuple(p) for p in flat] == spec_positions(20, h, w, True)
    seg = s2v_token_positions(20, 56, 104, with_motion=True)
    assert set(seg["reference"][:, 0]) == {30}
    assert set(seg["motion_post"][:, 0]) == {-1}
    assert set(seg["motion_2x"][:, 0]) == {-3}
    assert sorted(set(seg["motion_4x"][:, 0])) == [-19, -14, -9, -4]
    assert list(seg) == ["noisy", "reference", "motion_post", "motion_2x", "motion_4x"]
    assert list(s2v_token_positions(3, 16, 16, with_motion=False)) == ["noisy", "reference"]


def test_apply_rope_equals_complex_table_reference():
    positions = spec_positions(2, 16, 16, with_motion=True)
    head_dim = 128
    cos, sin = rope_cos_sin(np.array(positions), head_dim)
    x = torch.randn(2, len(positions), 3, head_dim, dtype=torch.float64)
    ours = apply_rope(x, cos, sin).double()
    table = spec_rope_table(positions, head_dim)
    ref = torch.view_as_real(torch.view_as_complex(x.reshape(2, len(positions), 3, -1, 2))
                             * table[None, :, None]).flatten(3)
    torch.testing.assert_close(ours, ref, rtol=0, atol=2e-6)


def test_rope_tables_are_cached_per_geometry(tiny_model):
    a = tiny_model.rope_tables(3, 16, 16, True, torch.device("cpu"))
    assert tiny_model.rope_tables(3, 16, 16, True, torch.device("cpu"))[0] is a[0]
    b = tiny_model.rope_tables(3, 16, 16, False, torch.device("cpu"))
    assert b[0].shape[0] == 3 * 64 + 64 and a[0].shape[0] == 3 * 64 + 64 + 64 + 16 + 16


# ----------------------------------------------------------------------------------------------
# FLOP count
# ----------------------------------------------------------------------------------------------
def test_flop_count_matches_spec_figures():
    full = S2VTransformerConfig.full()
    small = forward_flops(full, 448, 832, frames=80)
    large = forward_flops(full, 704, 1280, frames=80)
    assert small.tokens == 32760 and large.tokens == 79200
    assert small.total == pytest.approx(1.72e15, rel=0.02)
    assert large.total == pytest.approx(7.16e15, rel=0.02)
    assert small.attention == pytest.approx(0.88e15, rel=0.02)
    assert large.attention == pytest.approx(5.14e15, rel=0.02)
    assert small.details["linear_blocks"] == pytest.approx(0.78e15, rel=0.02)
    assert large.details["linear_blocks"] == pytest.approx(1.89e15, rel=0.02)
    assert forward_flops(full, 448, 832, with_motion=False).tokens == 29120 + 1456


def test_flop_count_matches_counted_matmuls_of_a_real_forward(tiny_model):
    """torch's FlopCounterMode counts every linear/conv of a real forward (not CPU attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    inp = make_inputs(batch=1, frames=4, height=16, width=32)
    with FlopCounterMode(display=False) as counter:
        run(tiny_model, inp)
    counted = counter.get_total_flops()
    predicted = forward_flops(TINY, height=16 * 8, width=32 * 8, frames=16, batch=1)
    assert counted == pytest.approx(predicted.linear, rel=0.01)


# ----------------------------------------------------------------------------------------------
# Attention backend
# ----------------------------------------------------------------------------------------------
def test_attention_backend_equals_explicit_softmax_and_validates_names():
    from s2v_toolkit.models import attention as attn

    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 7, 3, 16, generator=g, dtype=torch.float64)
    k = torch.randn(2, 5, 3, 16, generator=g, dtype=torch.float64)
    v = torch.randn(2, 5, 3, 16, generator=g, dtype=torch.float64)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / 4.0
    expected = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v)
    torch.testing.assert_close(attn.attention(q, k, v), expected)
    assert attn.attention_backend_for(q) == "sdpa"  # CPU tensors never go to flash-attn
    with pytest.raises(ValueError, match="unknown attention backend"):
        attn.set_attention_backend("magic")
    attn.set_attention_backend("sdpa")
    attn.set_attention_backend("auto")
