"""Block-wise weight offload (s2v_toolkit.models.offload): the offloaded model computes exactly what
the resident one does (same kernels on the same values: bitwise equal), with the blocks' weights in
host memory between calls and only ``prefetch + 1`` device slots. CPU tests run the same bookkeeping
with synchronous copies; the CUDA test (skipped without a GPU) runs the side-stream prefetch.
"""

from __future__ import annotations

import pytest
import torch

from s2v_toolkit.models.fp8 import enable_fp8_linears
from s2v_toolkit.models.fused import enable_fused_blocks
from s2v_toolkit.models.offload import block_offload_of, disable_block_offload, enable_block_offload
from s2v_toolkit.models.s2v_transformer import S2VTransformerConfig, random_s2v_transformer


def _inputs(cfg, device="cpu", dtype=torch.float32, seed=4, frames=2, h=8, w=8):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g).to(device=device, dtype=dtype)  # noqa: E731
    return dict(latents=rnd(1, cfg.in_dim, frames, h, w), timestep=torch.tensor([300.0], device=device),
                text_embeddings=rnd(1, 5, cfg.text_dim),
                audio_features=rnd(1, cfg.num_audio_layers, cfg.audio_dim, 4 * frames),
                ref_latents=rnd(1, cfg.in_dim, 1, h, w), motion_latents=rnd(1, cfg.in_dim, 19, h, w))


def _block_storage(model):
    return [[p.data_ptr() for p in b.parameters()] for b in model.blocks]


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_offloaded_forward_equals_resident_and_weights_return_to_host(prefetch):
    cfg = S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, seed=11)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    inputs, inputs2 = _inputs(cfg), _inputs(cfg, seed=5)
    with torch.no_grad():
        ref, ref2 = model(**inputs), model(**inputs2)
        off = enable_block_offload(model, "cpu", prefetch=prefetch)
        assert off.n_slots == prefetch + 1 and len(off.slots) == prefetch + 1
        host = _block_storage(model)
        seen = []  # where block 2's weights are while it runs
        handle = model.blocks[2].register_forward_pre_hook(
            lambda m, a: seen.append(m.ffn[0].weight.data_ptr()))
        out, out2 = model(**inputs), model(**inputs2)
        handle.remove()
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(out2, ref2, rtol=0, atol=0)
    slot_ptrs = {t.data_ptr() for slot in off.slots for t in slot}
    assert seen and all(p in slot_ptrs for p in seen)  # the block ran on its device slot...
    assert _block_storage(model) == host  # ...and points at its host copy again afterwards
    # 4 blocks, fewer slots: every block copied in each forward; the weights themselves unchanged
    assert off.copies >= 2 * cfg.num_layers - prefetch
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def test_offload_composes_with_fused_blocks_and_fp8_and_can_be_disabled():
    cfg = S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, seed=12)
    inputs = _inputs(cfg)
    with torch.no_grad():
        enable_fp8_linears(model, backend="emulate")
        enable_fused_blocks(model, compile=False)
        ref = model(**inputs)
        off = enable_block_offload(model, "cpu", prefetch=1)
        assert block_offload_of(model) is off
        with pytest.raises(ValueError, match="already"):
            enable_block_offload(model, "cpu")
        # the fp8 buffers are offloaded like parameters
        assert any(t.dtype == torch.float8_e4m3fn for t in off.slots[0])
        out = model(**inputs)
        disable_block_offload(model)
        assert block_offload_of(model) is None
        assert not any(b._forward_pre_hooks or b._forward_hooks for b in model.blocks)
        again = model(**inputs)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(again, ref, rtol=0, atol=0)


def test_prefetch_is_validated():
    model = random_s2v_transformer(S2VTransformerConfig.tiny(), seed=1)
    with pytest.raises(ValueError, match="prefetch"):
        enable_block_offload(model, "cpu", prefetch=-1)
    off = enable_block_offload(model, "cpu", prefetch=10)  # more than the blocks: capped
    assert off.n_slots == len(model.blocks)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_offload_with_side_stream_prefetch_is_exact_and_keeps_blocks_off_the_gpu():
    cfg = S2VTransformerConfig.tiny()
    model = random_s2v_transformer(cfg, device="cuda", dtype=torch.bfloat16, seed=13)
    inputs = _inputs(cfg, "cuda", torch.bfloat16)
    with torch.no_grad():
        ref = model(**inputs)
        off = enable_block_offload(model, "cuda", prefetch=1)
        assert all(p.device.type == "cpu" and p.is_pinned() for b in model.blocks for p in b.parameters())
        assert model.patch_embedding.weight.is_cuda and model.head.head.weight.is_cuda
        outs = [model(**inputs) for _ in range(3)]
        torch.cuda.synchronize()
    for out in outs:
        torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert off.device_bytes() == 2 * sum(p.numel() * p.element_size() for p in model.blocks[0].parameters())
