"""umT5-XXL text encoder (encoder only) as Wan2.2-S2V uses it, loading
``models_t5_umt5-xxl-enc-bf16.pth`` unchanged, plus the tokenizer from the checkpoint's ``google/umt5-xxl``.

Facts: /work/shared/spec/umt5_encoder.md.

Why our own ~150-line encoder instead of ``transformers.UMT5EncoderModel`` with a key mapping:

* **weights**: the official file's key names are the module's own names, so the 11 GB bf16 file is
  memory-mapped and assigned tensor by tensor onto a meta-built module (no renaming pass, no second copy,
  no tied ``shared``/``embed_tokens`` pair to reconcile);
* **numerics**: every weight stays in the file's bf16 as in the official run (HF keeps ``wo`` in fp32 when
  loading bf16, which drifts from the reference); attention is PyTorch SDPA with the position bias and
  padding mask as one additive mask and ``scale=1`` (T5 has no 1/sqrt(d)), whose fused kernels keep the
  logits in fp32 where the official code rounds them to bf16 first (a small, favourable difference);
* **upkeep**: the encoder is a fixed, frozen architecture; HF's T5 family internals move between major
  versions (v4 -> v5 changed loading, output capturing and dtype rules), whereas this file depends only on
  torch. ``transformers`` is still used for the tokenizer, whose files we must read exactly as the
  official code does (``AutoTokenizer``).
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .weights import WeightsError, assign_state_dict, read_state_dict

T5_FILENAME = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER_DIRNAME = os.path.join("google", "umt5-xxl")
TEXT_LEN = 512


@dataclass(frozen=True)
class UMT5Config:
    vocab_size: int = 256384
    dim: int = 4096
    dim_attn: int = 4096
    dim_ffn: int = 10240
    num_heads: int = 64
    num_layers: int = 24
    num_buckets: int = 32
    max_distance: int = 128
    eps: float = 1e-6
    text_len: int = TEXT_LEN

    @classmethod
    def full(cls) -> "UMT5Config":
        return cls()

    @classmethod
    def tiny(cls) -> "UMT5Config":
        return cls(vocab_size=64, dim=32, dim_attn=32, dim_ffn=48, num_heads=4, num_layers=2, text_len=16)

    @property
    def head_dim(self) -> int:
        return self.dim_attn // self.num_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UMT5Config":
        return cls(**d)


def relative_position_bucket(rel: torch.Tensor, num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """Bidirectional T5 bucket of ``rel = key_pos - query_pos``: exact for |rel| < n/4, log-spaced up to
    ``max_distance``, with the upper half of the buckets for keys to the right (rel > 0)."""
    half = num_buckets // 2
    buckets = (rel > 0).long() * half
    dist = rel.abs()
    max_exact = half // 2
    # clamp(min=1) only keeps log() finite for the small distances that take the exact branch anyway
    large = max_exact + (
        torch.log(dist.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)
    ).long()
    large = large.clamp(max=half - 1)
    return buckets + torch.where(dist < max_exact, dist, large)


class T5LayerNorm(nn.Module):
    """RMS norm without mean or bias; statistics in fp32, result in the weight's half dtype."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.type_as(self.weight)
        return self.weight * x


class T5Attention(nn.Module):
    def __init__(self, config: UMT5Config):
        super().__init__()
        self.num_heads = config.num_heads
        self.q = nn.Linear(config.dim, config.dim_attn, bias=False)
        self.k = nn.Linear(config.dim, config.dim_attn, bias=False)
        self.v = nn.Linear(config.dim, config.dim_attn, bias=False)
        self.o = nn.Linear(config.dim_attn, config.dim, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (proj(x).view(b, n, self.num_heads, -1).transpose(1, 2) for proj in (self.q, self.k, self.v))
        # T5 attention has no 1/sqrt(d) scaling; bias carries relative positions and the padding mask.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        return self.o(y.transpose(1, 2).reshape(b, n, -1))


class T5FeedForward(nn.Module):
    def __init__(self, config: UMT5Config):
        super().__init__()
        # `gate` is Sequential(Linear, GELU) in the official module, hence the key `gate.0.weight`.
        self.gate = nn.Sequential(nn.Linear(config.dim, config.dim_ffn, bias=False), nn.GELU(approximate="tanh"))
        self.fc1 = nn.Linear(config.dim, config.dim_ffn, bias=False)
        self.fc2 = nn.Linear(config.dim_ffn, config.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x) * self.gate(x))


class T5RelativeEmbedding(nn.Module):
    def __init__(self, config: UMT5Config):
        super().__init__()
        self.num_buckets = config.num_buckets
        self.max_distance = config.max_distance
        self.embedding = nn.Embedding(config.num_buckets, config.num_heads)

    def forward(self, buckets: torch.Tensor) -> torch.Tensor:
        """Buckets ``[Lq, Lk]`` -> bias ``[1, heads, Lq, Lk]``."""
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)


class T5Block(nn.Module):
    def __init__(self, config: UMT5Config):
        super().__init__()
        self.norm1 = T5LayerNorm(config.dim, config.eps)
        self.attn = T5Attention(config)
        self.norm2 = T5LayerNorm(config.dim, config.eps)
        self.ffn = T5FeedForward(config)
        self.pos_embedding = T5RelativeEmbedding(config)  # umT5: one table per layer

    def forward(self, x: torch.Tensor, buckets: torch.Tensor, key_is_pad: torch.Tensor | None) -> torch.Tensor:
        bias = self.pos_embedding(buckets).to(x.dtype)
        if key_is_pad is not None:
            # Padded keys get the most negative finite value (as the official code), so their weight is 0.
            bias = bias.masked_fill(key_is_pad[:, None, None, :], torch.finfo(x.dtype).min)
        x = x + self.attn(self.norm1(x), bias)
        return x + self.ffn(self.norm2(x))


class UMT5Encoder(nn.Module):
    """``ids [B, L]`` and ``mask [B, L]`` (1 token, 0 pad) -> hidden states ``[B, L, dim]``."""

    def __init__(self, config: UMT5Config | None = None):
        super().__init__()
        self.config = config = config or UMT5Config.full()
        self.token_embedding = nn.Embedding(config.vocab_size, config.dim)
        self.blocks = nn.ModuleList(T5Block(config) for _ in range(config.num_layers))
        self.norm = T5LayerNorm(config.dim, config.eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        device = self.token_embedding.weight.device
        ids = ids.to(device)
        x = self.token_embedding(ids)
        n = ids.shape[1]
        pos = torch.arange(n, device=device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.config.num_buckets, self.config.max_distance)
        key_is_pad = None if mask is None else mask.to(device) == 0
        for block in self.blocks:
            x = block(x, buckets, key_is_pad)
        return self.norm(x)


def clean_prompt(text: str) -> str:
    """The official 'whitespace' cleaning: ftfy fix, HTML-unescape twice, collapse whitespace."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:  # pragma: no cover - ftfy is a declared dependency; only mojibake repair is lost
        warnings.warn("ftfy is not installed; prompts are not mojibake-repaired", stacklevel=2)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def load_umt5_tokenizer(folder: str | os.PathLike):
    """The tokenizer from a local ``google/umt5-xxl`` folder (or the checkpoint folder holding it);
    never touches the network."""
    folder = Path(folder)
    if (folder / TOKENIZER_DIRNAME).is_dir():
        folder = folder / TOKENIZER_DIRNAME
    if not folder.is_dir():
        raise WeightsError(folder, "umT5 tokenizer folder not found")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(os.fspath(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise WeightsError(folder, f"cannot load the umT5 tokenizer ({str(exc).splitlines()[0]})") from exc


class UMT5TextEncoder:
    """Prompt -> list of ``[tokens_i, dim]`` embeddings (trimmed to the true length incl. ``</s>``),
    exactly the hand-off the S2V DiT expects (it zero-pads back to 512 rows itself)."""

    def __init__(self, model: UMT5Encoder, tokenizer, text_len: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.text_len = text_len or model.config.text_len

    def tokenize(self, texts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = self.tokenizer(
            [clean_prompt(t) for t in texts],
            padding="max_length",
            truncation=True,
            max_length=self.text_len,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return out["input_ids"], out["attention_mask"]

    @torch.no_grad()
    def encode(self, texts: str | list[str]) -> list[torch.Tensor]:
        ids, mask = self.tokenize(texts)
        if int(ids.max()) >= self.model.config.vocab_size:
            raise ValueError("tokenizer produced ids beyond the encoder's vocabulary: wrong tokenizer folder?")
        hidden = self.model(ids, mask)
        lengths = mask.gt(0).sum(dim=1).tolist()
        return [h[:n] for h, n in zip(hidden, lengths)]

    __call__ = encode


def build_umt5_encoder(config: UMT5Config | None = None, device="cpu", dtype=torch.float32) -> UMT5Encoder:
    """A randomly initialised encoder (tests, ``--model tiny``)."""
    return UMT5Encoder(config).to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_umt5_encoder(
    path: str | os.PathLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    config: UMT5Config | None = None,
) -> UMT5Encoder:
    """Load ``models_t5_umt5-xxl-enc-bf16.pth`` strictly (``path``: the file or the checkpoint folder).

    Built on meta; each tensor goes straight to ``device``/``dtype`` (official inference dtype: bf16).
    """
    path = Path(path)
    if path.is_dir():
        path = path / T5_FILENAME
    state = read_state_dict(path, what="umT5 encoder")
    with torch.device("meta"):
        model = UMT5Encoder(config)
    assign_state_dict(model, state, path, what="umT5 encoder", device=device, dtype=dtype)
    return model


def load_umt5_text_encoder(
    checkpoint_dir: str | os.PathLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
    config: UMT5Config | None = None,
) -> UMT5TextEncoder:
    """Encoder + tokenizer from an official checkpoint folder."""
    checkpoint_dir = Path(checkpoint_dir)
    tokenizer = load_umt5_tokenizer(checkpoint_dir / TOKENIZER_DIRNAME)
    model = load_umt5_encoder(checkpoint_dir / T5_FILENAME, device=device, dtype=dtype, config=config)
    return UMT5TextEncoder(model, tokenizer)


_TINY_CORPUS = (
    "a man speaks to the camera",
    "the woman smiles and talks quietly",
    "close up of a face, talking slowly",
    "two people argue in a kitchen at night",
    "一个男人在说话",
)


def write_tiny_tokenizer(folder: str | os.PathLike, vocab_size: int = 60) -> Path:
    """Write a small SentencePiece-style tokenizer (Unigram + Metaspace, trained here on a few sentences) as
    the Hugging Face files of ``google/umt5-xxl``: ``<pad>`` = 0, ``</s>`` = 1 appended, ``<unk>`` = 2.
    For tests and the ``--model tiny`` demo; ``vocab_size`` is an upper bound."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(_TINY_CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(os.fspath(folder / "tokenizer.json"))
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=1))
    config = {"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "model_max_length": 1000000, **special}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return folder


def write_tiny_umt5(folder: str | os.PathLike, seed: int = 0, config: UMT5Config | None = None) -> Path:
    """Write a random tiny encoder (bf16, official key layout) and a tiny tokenizer into a checkpoint folder:
    ``folder/models_t5_umt5-xxl-enc-bf16.pth`` and ``folder/google/umt5-xxl/``."""
    config = config or UMT5Config.tiny()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = UMT5Encoder(config)
    finally:
        torch.random.set_rng_state(rng_state)
    torch.save({k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}, folder / T5_FILENAME)
    write_tiny_tokenizer(folder / TOKENIZER_DIRNAME, vocab_size=min(60, config.vocab_size))
    return folder / T5_FILENAME


__all__ = [
    "T5_FILENAME",
    "TEXT_LEN",
    "TOKENIZER_DIRNAME",
    "UMT5Config",
    "UMT5Encoder",
    "UMT5TextEncoder",
    "build_umt5_encoder",
    "clean_prompt",
    "load_umt5_encoder",
    "load_umt5_text_encoder",
    "load_umt5_tokenizer",
    "relative_position_bucket",
    "write_tiny_tokenizer",
    "write_tiny_umt5",
]
