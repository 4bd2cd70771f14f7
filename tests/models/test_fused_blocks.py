"""The fused block forward (s2v_toolkit.models.fused) computes the same function as the plain blocks.

CPU, tiny config, eager fused code (the GPU benchmark checks the compiled kernels at full size and
reports the error: bench/bench_transformer.py, docs/performance.md).
"""

from __future__ import annotations

import pytest
import torch

from s2v_toolkit.models.fused import (
    disable_fused_blocks,
    enable_fused_blocks,
    fused_blocks_enabled,
    gated_residual,
    modulated_norm,
)
from s2v_toolkit.models.s2v_transformer import S2VTransformerConfig, random_s2v_transformer


def _inputs(cfg, dtype, seed=3, batch=2, frames=3, h=8, w=12):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g).to(dtype)  # noqa: E731
    return dict(latents=rnd(batch, cfg.in_dim, frames, h, w), timestep=torch.tensor([250.0, 800.0]),
                text_embeddings=rnd(batch, 7, cfg.text_dim),
                audio_features=rnd(batch, cfg.num_audio_layers, cfg.audio_dim, 4 * frames),
                ref_latents=rnd(batch, cfg.in_dim, 1, h, w), motion_latents=rnd(batch, cfg.in_dim, 19, h, w))


def test_fused_blocks_match_plain_forward_float32_and_bfloat16(monkeypatch):
    from s2v_toolkit.models import fused as fused_module

    calls = []
    original = fused_module.gated_residual
    monkeypatch.setattr(fused_module, "gated_residual", lambda *a: calls.append(1) or original(*a))
    cfg = S2VTransformerConfig.tiny()
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        model = random_s2v_transformer(cfg, dtype=dtype, seed=5)
        inputs = _inputs(cfg, dtype)
        with torch.no_grad():
            plain = model(**inputs)
            enable_fused_blocks(model, compile=False)
            assert fused_blocks_enabled(model)
            calls.clear()
            fused = model(**inputs)
            assert len(calls) == 2 * cfg.num_layers  # the fused code ran in every block
            disable_fused_blocks(model)
            assert not fused_blocks_enabled(model)
            again = model(**inputs)
        torch.testing.assert_close(again, plain, rtol=0, atol=0)  # disabling restores the plain path
        rel = ((fused - plain).norm() / plain.norm()).item()
        assert rel < tol, (dtype, rel)


def test_segment_helpers_treat_noisy_and_conditioning_rows_apart():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 16, generator=g)
    shift, scale, gate = (torch.randn(2, 2, 16, generator=g) for _ in range(3))
    n = 6
    ln = torch.nn.functional.layer_norm(x, (16,), eps=1e-6)
    expected = torch.cat([ln[:, :n] * (1 + scale[:, :1]) + shift[:, :1],
                          ln[:, n:] * (1 + scale[:, 1:]) + shift[:, 1:]], dim=1)
    torch.testing.assert_close(modulated_norm(x, shift, scale, n, 1e-6, torch.float32), expected)
    y = torch.randn(2, 10, 16, generator=g)
    expected = torch.cat([x[:, :n] + y[:, :n] * gate[:, :1], x[:, n:] + y[:, n:] * gate[:, 1:]], dim=1)
    torch.testing.assert_close(gated_residual(x, y, gate, n), expected)


def test_fused_path_defers_to_plain_blocks_under_autograd():
    cfg = S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, seed=1).requires_grad_(True)
    enable_fused_blocks(model, compile=False)
    inputs = _inputs(cfg, torch.float32)
    out = model(**inputs)
    out.square().mean().backward()
    assert model.blocks[0].self_attn.q.weight.grad is not None


def test_cudnn_backend_setting_keeps_the_function_on_cpu():
    from s2v_toolkit.models import attention as attn

    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 70, 2, 8, generator=g) for _ in range(3))
    plain = attn.attention(q, k, v)
    try:
        attn.set_attention_backend("cudnn")
        assert attn.attention_backend_for(q) == "cudnn"
        torch.testing.assert_close(attn.attention(q, k, v), plain)  # CPU: plain SDPA underneath
        attn.set_attention_backend("auto")
        assert attn.attention_backend_for(q) == "sdpa"  # auto never picks cuDNN off a GPU
    finally:
        attn.set_attention_backend("auto")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_fused_blocks_and_cudnn_attention_match_plain_path_on_gpu():
    """GPU: compiled fused blocks + attention "auto" vs plain blocks + "sdpa", tiny config.
    Tolerances: float32 1e-4 relative (reduction order only), bf16 2e-2 (full size measured 2.8e-3)."""
    from s2v_toolkit.models.attention import set_attention_backend

    cfg = S2VTransformerConfig.tiny()
    try:
        for dtype, tol in ((torch.float32, 1e-4), (torch.bfloat16, 2e-2)):
            model = random_s2v_transformer(cfg, device="cuda", dtype=dtype, seed=5)
            inputs = {k: v.cuda() for k, v in _inputs(cfg, dtype, h=16, w=16).items()}
            with torch.no_grad():
                set_attention_backend("sdpa")
                plain = model(**inputs)
                set_attention_backend("auto")
                enable_fused_blocks(model, compile=True)
                fused = model(**inputs)
            rel = ((fused - plain).norm() / plain.norm()).item()
            assert torch.isfinite(fused).all() and rel < tol, (dtype, rel)
    finally:
        set_attention_backend("auto")
