"""fp8 (e4m3) linears (s2v_toolkit.models.fp8): quantization maths, the layer swap, and (with a GPU
that has fp8 matrix products) torch._scaled_mm against the float32 emulation.

Tolerances: e4m3 rounds each element to within 2^-4 of its magnitude (3 mantissa bits), so a product
with both operands quantized lands a few percent from the float product (rel L2 3.7e-2 measured for
32,760 x 5120 random products on an H100; bound 5e-2 here); the GPU product of the same fp8 operands differs from the float32
emulation only by accumulation order and the bf16 output rounding (bound 1e-2).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from s2v_toolkit.models.fp8 import (
    DEFAULT_FP8_LAYERS,
    FP8_DTYPE,
    FP8_MAX,
    Fp8Linear,
    dequantize,
    enable_fp8_linears,
    fp8_gemm_support,
    fp8_linear,
    fp8_linear_reference,
    fp8_linears_enabled,
    quantize_rowwise,
    quantize_tensorwise,
)
from s2v_toolkit.models.fused import enable_fused_blocks
from s2v_toolkit.models.s2v_transformer import S2VTransformerConfig, random_s2v_transformer


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def _inputs(cfg, dtype, device="cpu", seed=3, frames=2, h=8, w=8):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    return dict(latents=rnd(1, cfg.in_dim, frames, h, w), timestep=torch.tensor([600.0], device=device),
                text_embeddings=rnd(1, 7, cfg.text_dim),
                audio_features=rnd(1, cfg.num_audio_layers, cfg.audio_dim, 4 * frames),
                ref_latents=rnd(1, cfg.in_dim, 1, h, w), motion_latents=rnd(1, cfg.in_dim, 19, h, w))


def test_rowwise_quantization_error_is_within_e4m3_rounding():
    g = torch.Generator().manual_seed(0)
    # rows of very different magnitudes: per-row scales must keep each row's relative precision
    x = torch.randn(64, 96, generator=g) * torch.logspace(-3, 3, 64)[:, None]
    q, s = quantize_rowwise(x)
    assert q.dtype == FP8_DTYPE and s.shape == (64, 1)
    back = dequantize(q, s)
    # each row's largest magnitude maps onto 448 (representable exactly)
    assert torch.allclose(q.float().abs().amax(dim=1), torch.full((64,), FP8_MAX))
    # normal range of e4m3 (>= 2^-6 of the scale): relative error at most half an ulp = 2^-4
    normal = x.abs() >= s * 2.0**-6
    assert normal.float().mean() > 0.9
    rel = ((back - x).abs() / x.abs())[normal]
    assert rel.max().item() <= 2.0**-4 + 1e-6
    # below it (subnormals): absolute error at most half the subnormal step 2^-9 of the scale
    assert ((back - x).abs() <= s * 2.0**-10 + 1e-12)[~normal].all()


def test_zero_rows_and_tensorwise_scales():
    x = torch.zeros(3, 16)
    x[1] = torch.linspace(-2, 2, 16)
    q, s = quantize_rowwise(x)
    assert torch.isfinite(s).all() and (dequantize(q, s)[[0, 2]] == 0).all()
    qt, st = quantize_tensorwise(x * 1000)
    assert st.ndim == 0 and torch.isfinite(dequantize(qt, st)).all()
    assert dequantize(qt, st).abs().max().item() == pytest.approx(2000.0, rel=1e-6)


def test_emulated_fp8_linear_equals_matmul_of_dequantized_operands_and_approximates_float():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 37, 128, generator=g)
    lin = nn.Linear(128, 80)
    with torch.no_grad():
        lin.weight.normal_(0, 128**-0.5, generator=g)
        lin.bias.normal_(0, 0.1, generator=g)
    layer = Fp8Linear.from_linear(lin, backend="emulate")
    y = layer(x)
    # reference in float64 on the dequantized operands (per-token activations, per-channel weights)
    xq, xs = quantize_rowwise(x.reshape(-1, 128))
    w64 = layer.weight_fp8.double() * layer.weight_scale.double()[:, None]
    ref = ((xq.double() * xs.double()) @ w64.t() + lin.bias.double()).reshape(2, 37, 80)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)
    # against the float layer: fp8 error, but not zero (the quantization really happened)
    err = _rel(y, lin(x))
    assert 1e-3 < err < 5e-2, err
    # per-tensor activation scales: same maths with one scale
    y_t = fp8_linear_reference(x, layer.weight_fp8, layer.weight_scale, lin.bias, torch.float32, "tensorwise")
    assert _rel(y_t, lin(x)) < 5e-2


def test_scale_conventions_match_torch_scaled_mm_where_this_build_has_it():
    """The GPU path hands (x_q, per-row x scale, W_q^T, per-column W scale) to torch._scaled_mm;
    where the CPU build implements _scaled_mm, check it computes what the emulation computes."""
    if not fp8_gemm_support("cpu")["rowwise"]:
        pytest.skip("this PyTorch build has no row-wise _scaled_mm on the CPU")
    g = torch.Generator().manual_seed(2)
    x = torch.randn(50, 64, generator=g).to(torch.bfloat16)
    w = torch.randn(48, 64, generator=g) * 0.2
    wq, ws = quantize_rowwise(w)
    bias = torch.randn(48, generator=g).to(torch.bfloat16)
    for scaling in ("rowwise", "tensorwise"):
        got = fp8_linear(x, wq, ws[:, 0], bias, torch.bfloat16, backend="scaled_mm", activation_scaling=scaling)
        ref = fp8_linear_reference(x, wq, ws[:, 0], bias, torch.bfloat16, scaling)
        assert got.dtype == torch.bfloat16
        assert _rel(got, ref) < 1e-2, scaling


def test_enable_fp8_linears_swaps_block_layers_after_loading_and_both_block_paths_use_them():
    cfg = S2VTransformerConfig.tiny()
    source = random_s2v_transformer(cfg, seed=7)
    model = random_s2v_transformer(cfg, seed=8)
    model.load_state_dict(source.state_dict(), strict=True)  # loading happens on the plain model
    inputs = _inputs(cfg, torch.float32)
    with torch.no_grad():
        ref = source(**inputs)
        names = enable_fp8_linears(model, backend="emulate")
        assert len(names) == len(DEFAULT_FP8_LAYERS) * cfg.num_layers == fp8_linears_enabled(model)
        assert "blocks.0.ffn.0" in names and "blocks.3.self_attn.o" in names
        assert not any("cross_attn.k" in n or "cross_attn.v" in n for n in names)
        assert type(model.blocks[0].cross_attn.k) is nn.Linear and type(model.head.head) is nn.Linear
        layer = model.blocks[1].ffn[2]
        assert layer.weight.dtype == torch.float32  # what the model code casts activations to
        # the model code's F.linear(x, layer.weight, layer.bias) is routed to the fp8 product
        x = torch.randn(5, cfg.ffn_dim)
        torch.testing.assert_close(F.linear(x, layer.weight, layer.bias), layer(x), rtol=0, atol=0)
        plain = model(**inputs)
        enable_fused_blocks(model, compile=False)
        fused = model(**inputs)
    err = _rel(plain, ref)
    assert 1e-4 < err < 1e-1, err  # fp8 error through 4 blocks, and not the float model's output
    assert _rel(fused, plain) < 1e-5  # the fused block code takes the same fp8 layers
    # other torch functions see the dequantized weight
    w = model.blocks[0].self_attn.q.weight
    torch.testing.assert_close(torch.mul(w, 1.0), dequantize(w.layer.weight_fp8, w.layer.weight_scale[:, None]))


def test_fp8_linear_rejects_unknown_backend():
    wq, ws = quantize_rowwise(torch.randn(8, 16))
    with pytest.raises(ValueError, match="backend"):
        fp8_linear(torch.randn(2, 16), wq, ws[:, 0], None, torch.float32, backend="int8")


gpu_fp8 = pytest.mark.skipif(not torch.cuda.is_available() or not fp8_gemm_support()["fp8"],
                             reason="needs a CUDA GPU with fp8 matrix products (compute capability >= 8.9)")


@gpu_fp8
def test_gpu_scaled_mm_matches_emulation_and_tiny_model_stays_close_to_bf16():
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(333, 256, generator=g, device="cuda").to(torch.bfloat16)
    lin = nn.Linear(256, 512).cuda().to(torch.bfloat16)
    for scaling in ("rowwise", "tensorwise"):
        for fast in (False, True):
            layer = Fp8Linear.from_linear(lin, backend="scaled_mm", use_fast_accum=fast, activation_scaling=scaling)
            emu = fp8_linear_reference(x, layer.weight_fp8, layer.weight_scale, lin.bias, torch.bfloat16, scaling)
            got = layer(x)
            assert got.dtype == torch.bfloat16 and torch.isfinite(got).all()
            assert _rel(got, emu) < 1e-2, (scaling, fast)
            assert _rel(got, lin(x)) < 5e-2
    cfg = S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, device="cuda", dtype=torch.bfloat16, seed=4)
    inputs = _inputs(cfg, torch.bfloat16, device="cuda")
    with torch.no_grad():
        ref = model(**inputs)
        enable_fp8_linears(model)
        out = model(**inputs)
    assert torch.isfinite(out).all() and _rel(out, ref) < 1e-1
