"""umT5 encoder: official key layout, relative-position buckets, reference forward, padding, tokenizer, loading."""

from __future__ import annotations

import math

import pytest
import torch

from s2v_toolkit.errors import S2VError
from s2v_toolkit.models.umt5 import (
    T5_FILENAME,
    TOKENIZER_DIRNAME,
    UMT5Config,
    UMT5Encoder,
    UMT5TextEncoder,
    build_umt5_encoder,
    clean_prompt,
    load_umt5_encoder,
    load_umt5_text_encoder,
    load_umt5_tokenizer,
    relative_position_bucket,
    write_tiny_tokenizer,
    write_tiny_umt5,
)

@pytest.fixture(scope="module")
def tiny_encoder() -> UMT5Encoder:
    torch.manual_seed(0)
    model = build_umt5_encoder(UMT5Config.tiny())
    with torch.no_grad():  # larger position tables than the default N(0,1)/ones init would not matter; make
        for block in model.blocks:  # the bias visibly different per head and bucket
            block.pos_embedding.embedding.weight.normal_(0, 2.0)
    return model


def test_full_size_keys_and_shapes_match_the_official_table():
    with torch.device("meta"):
        model = UMT5Encoder(UMT5Config.full())
    state = model.state_dict()
    assert len(state) == 242
    assert sum(t.numel() for t in state.values()) == 5_680_910_336
    assert not list(model.buffers())
    assert tuple(state["token_embedding.weight"].shape) == (256384, 4096)
    assert tuple(state["norm.weight"].shape) == (4096,)
    for i in (0, 23):
        assert tuple(state[f"blocks.{i}.attn.q.weight"].shape) == (4096, 4096)
        assert tuple(state[f"blocks.{i}.attn.o.weight"].shape) == (4096, 4096)
        assert tuple(state[f"blocks.{i}.ffn.gate.0.weight"].shape) == (10240, 4096)
        assert tuple(state[f"blocks.{i}.ffn.fc1.weight"].shape) == (10240, 4096)
        assert tuple(state[f"blocks.{i}.ffn.fc2.weight"].shape) == (4096, 10240)
        assert tuple(state[f"blocks.{i}.pos_embedding.embedding.weight"].shape) == (32, 64)
        assert tuple(state[f"blocks.{i}.norm1.weight"].shape) == (4096,)
    assert "pos_embedding.embedding.weight" not in state  # shared_pos is False
    assert not any(k.endswith(".bias") for k in state)


# (rel = key - query, bucket), from the boundaries listed in the spec
KNOWN_BUCKETS = [
    (0, 0), (-1, 1), (1, 17), (-7, 7), (7, 23), (-8, 8), (8, 24), (-11, 8), (-12, 9), (-15, 9), (-16, 10),
    (-22, 10), (-23, 11), (-31, 11), (-32, 12), (-45, 12), (-46, 13), (-63, 13), (-64, 14), (-90, 14),
    (-91, 15), (-500, 15), (45, 28), (46, 29), (90, 30), (91, 31), (511, 31),
]


def test_relative_position_buckets_match_hand_computed_values():
    rel = torch.tensor([r for r, _ in KNOWN_BUCKETS])
    assert relative_position_bucket(rel).tolist() == [b for _, b in KNOWN_BUCKETS]
    grid = torch.arange(512)[None, :] - torch.arange(512)[:, None]
    buckets = relative_position_bucket(grid)
    assert int(buckets.min()) == 0 and int(buckets.max()) == 31


def _bucket(rel: int) -> int:
    """The spec's formula, scalar and written out independently of the module."""
    base = 16 if rel > 0 else 0
    a = abs(rel)
    if a < 8:
        return base + a
    return base + min(15, 8 + math.floor(math.log(a / 8) / math.log(128 / 8) * 8))


def _reference_forward(model: UMT5Encoder, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Straightforward float64 T5 encoder from the spec: per-head loops, no SDPA."""
    cfg = model.config
    sd = {k: v.double() for k, v in model.state_dict().items()}
    b, n = ids.shape
    table = torch.tensor([[_bucket(j - i) for j in range(n)] for i in range(n)])

    def rms(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.eps) * w

    def gelu_tanh(u):
        return 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))

    x = sd["token_embedding.weight"][ids]
    for i in range(cfg.num_layers):
        p = f"blocks.{i}."
        h = rms(x, sd[p + "norm1.weight"])
        q, k, v = (h @ sd[p + f"attn.{name}.weight"].T for name in "qkv")
        heads = []
        for hd in range(cfg.num_heads):
            sl = slice(hd * cfg.head_dim, (hd + 1) * cfg.head_dim)
            logits = q[..., sl] @ k[..., sl].transpose(1, 2)  # no 1/sqrt(d)
            logits = logits + sd[p + "pos_embedding.embedding.weight"][table, hd]
            logits = logits.masked_fill(mask[:, None, :] == 0, float("-inf"))
            heads.append(torch.softmax(logits, -1) @ v[..., sl])
        x = x + torch.cat(heads, -1) @ sd[p + "attn.o.weight"].T
        h = rms(x, sd[p + "norm2.weight"])
        gated = gelu_tanh(h @ sd[p + "ffn.gate.0.weight"].T) * (h @ sd[p + "ffn.fc1.weight"].T)
        x = x + gated @ sd[p + "ffn.fc2.weight"].T
    return rms(x, sd["norm.weight"])


def test_forward_equals_a_straightforward_reference(tiny_encoder):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 64, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    out = tiny_encoder(ids, mask)
    ref = _reference_forward(tiny_encoder, ids, mask).float()
    assert out.shape == (2, 12, 32)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_padding_does_not_change_real_token_outputs(tiny_encoder):
    ids = torch.tensor([[5, 9, 17, 33, 1]])
    alone = tiny_encoder(ids, torch.ones_like(ids))
    padded = torch.cat([ids, torch.tensor([[0, 0, 0, 0, 0, 0, 0]])], dim=1)
    mask = (torch.arange(12) < 5).long()[None]
    out = tiny_encoder(padded, mask)
    torch.testing.assert_close(out[:, :5], alone)
    garbage = padded.clone()
    garbage[:, 5:] = torch.tensor([40, 41, 42, 43, 44, 45, 46])  # pad ids must not matter either
    torch.testing.assert_close(tiny_encoder(garbage, mask)[:, :5], alone)
    # without the mask the pads do take part (the test above is not vacuous)
    assert (tiny_encoder(padded)[:, :5] - alone).abs().max() > 1e-3


def test_bf16_forward_stays_close_to_fp32(tiny_encoder):
    ids = torch.tensor([[5, 9, 17, 33, 1, 0, 0]])
    mask = (ids != 0).long()
    mask[0, 4] = 1
    ref = tiny_encoder(ids, mask)
    half = build_umt5_encoder(UMT5Config.tiny(), dtype=torch.bfloat16)
    half.load_state_dict(tiny_encoder.state_dict())
    out = half(ids, mask)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() / ref.abs().max() < 0.05


def test_clean_prompt_matches_the_official_whitespace_mode():
    assert clean_prompt("  a &amp;amp; b\n\t c  ") == "a & b c"
    assert clean_prompt("caf\u00c3\u00a9") == "café"  # ftfy repairs mojibake


def test_text_encoder_tokenizes_pads_and_trims_like_the_official_wrapper(tmp_path, tiny_encoder):
    write_tiny_tokenizer(tmp_path / TOKENIZER_DIRNAME)
    tokenizer = load_umt5_tokenizer(tmp_path)  # checkpoint folder -> google/umt5-xxl inside
    text = UMT5TextEncoder(tiny_encoder, tokenizer)
    ids, mask = text.tokenize(["a man talks", "the woman smiles and talks to the camera close up slowly"])
    assert ids.shape == mask.shape == (2, 16)  # always padded to text_len
    n0 = int(mask[0].sum())
    assert ids[0, n0 - 1] == 1 and (ids[0, n0:] == 0).all() and (mask[0, n0:] == 0).all()
    assert int(mask[1].sum()) == 16 and ids[1, -1] == 1  # truncated, </s> kept last
    embeddings = text.encode(["a man talks", "  the   woman smiles "])
    assert [e.shape[0] for e in embeddings] == [n0, int(text.tokenize("the woman smiles")[1].sum())]
    alone = tiny_encoder(ids[:1, :n0])
    torch.testing.assert_close(embeddings[0], alone[0])


def test_loads_an_official_layout_file_and_tokenizer_from_a_checkpoint_folder(tmp_path, tiny_encoder):
    state = {k: v.to(torch.bfloat16) for k, v in tiny_encoder.state_dict().items()}
    torch.save(state, tmp_path / T5_FILENAME)
    write_tiny_tokenizer(tmp_path / TOKENIZER_DIRNAME)
    text = load_umt5_text_encoder(tmp_path, config=UMT5Config.tiny(), dtype=torch.float32)
    assert text.model.token_embedding.weight.dtype == torch.float32
    ids = torch.tensor([[5, 9, 17, 1]])
    ref = build_umt5_encoder(UMT5Config.tiny())
    ref.load_state_dict({k: v.float() for k, v in state.items()})
    torch.testing.assert_close(text.model(ids), ref(ids))
    assert load_umt5_encoder(tmp_path / T5_FILENAME, config=UMT5Config.tiny()).norm.weight.dtype == torch.bfloat16


def test_wrong_file_gives_a_clear_error(tmp_path, tiny_encoder):
    state = dict(tiny_encoder.state_dict())
    state["blocks.1.ffn.wi_0.weight"] = state.pop("blocks.1.ffn.gate.0.weight")  # an HF-named key
    torch.save(state, tmp_path / "hf_named.pth")
    with pytest.raises(S2VError, match=r"hf_named\.pth: missing umT5 encoder key 'blocks\.1\.ffn\.gate\.0\.weight'"):
        load_umt5_encoder(tmp_path / "hf_named.pth", config=UMT5Config.tiny())
    state = dict(tiny_encoder.state_dict())
    state["blocks.0.pos_embedding.embedding.weight"] = torch.zeros(32, 8)
    torch.save(state, tmp_path / "heads.pth")
    with pytest.raises(S2VError, match=r"heads\.pth: key 'blocks\.0\.pos_embedding\.embedding\.weight' has shape \[32, 8\]"):
        load_umt5_encoder(tmp_path / "heads.pth", config=UMT5Config.tiny())
    with pytest.raises(S2VError, match="not found"):
        load_umt5_encoder(tmp_path)  # folder without the .pth
    with pytest.raises(S2VError, match="tokenizer folder not found"):
        load_umt5_tokenizer(tmp_path / "missing")


def test_config_round_trips_through_dict():
    cfg = UMT5Config.tiny()
    assert UMT5Config.from_dict(cfg.to_dict()) == cfg
    assert UMT5Config.full().head_dim == 64


def test_tiny_checkpoint_writer_produces_a_loadable_official_layout(tmp_path):
    path = write_tiny_umt5(tmp_path, seed=3)
    assert path.name == T5_FILENAME and (tmp_path / TOKENIZER_DIRNAME / "tokenizer.json").is_file()
    text = load_umt5_text_encoder(tmp_path, config=UMT5Config.tiny())
    assert text.model.norm.weight.dtype == torch.bfloat16
    (embedding,) = text.encode("a woman talks")
    assert embedding.shape[1] == 32 and embedding.shape[0] >= 2 and torch.isfinite(embedding.float()).all()
