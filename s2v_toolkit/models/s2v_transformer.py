"""Wan2.2-S2V diffusion transformer (DiT), written from the facts in ``shared/spec/wan_s2v_dit.md``.

The module's ``state_dict()`` uses the official key names and shapes (1260 tensors,
16,295,755,609 parameters at full size), so the official
``diffusion_pytorch_model-*.safetensors`` load with ``strict=True`` and no renaming
(see :mod:`s2v_toolkit.models.checkpoint`).

Sequence layout (one row per token, width ``dim``)::

    [ noisy video tokens | reference-image tokens | FramePack motion tokens (optional) ]
      F*h*w                h*w                      post h*w + 2x h*w/4 + 4x 4*h*w/16

Noisy tokens use the modulation of the diffusion timestep ``t``; reference and motion tokens use
the modulation of ``t = 0`` ("zero timestep"). Only noisy tokens get audio (per latent frame) and
only they go through the output head.

Precision follows the official autocast regions: the time embedding, all modulation/gating maths,
the causal audio encoder and the head run in float32; the residual stream is float32 from the
first residual add on; every other matrix product runs in the parameters' dtype (bf16 on GPU).
RoPE is applied in float32 (the official code uses float64; the difference is far below bf16).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models.attention import attention
from s2v_toolkit.models.rope import apply_rope, rope_cos_sin, s2v_token_positions

__all__ = ["S2VTransformerConfig", "WanS2VTransformer", "ForwardFlops", "forward_flops",
           "init_random_weights", "random_s2v_transformer"]

OFFICIAL_CLASS_NAME = "WanModel_S2V"
#: Spatial downsampling of the Wan2.1 VAE and its temporal stride (pixel frames per latent frame).
VAE_SPATIAL_STRIDE = 8
VAE_TEMPORAL_STRIDE = 4


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S2VTransformerConfig:
    """Hyper-parameters of :class:`WanS2VTransformer`. ``full()`` is the official S2V-14B."""

    dim: int = 5120
    ffn_dim: int = 13824
    num_heads: int = 40
    num_layers: int = 40
    in_dim: int = 16
    out_dim: int = 16
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_dim: int = 4096
    text_len: int = 512
    freq_dim: int = 256
    eps: float = 1e-6
    cond_dim: int = 16  # channels of the pose latents (cond_encoder input)
    audio_dim: int = 1024  # wav2vec2 hidden size
    num_audio_layers: int = 25  # wav2vec2 hidden states (embedding output + 24 layers)
    num_audio_token: int = 4  # local audio tokens per latent frame (plus 1 learned padding token)
    audio_inject_layers: tuple[int, ...] = (0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39)
    zero_timestep: bool = True
    # The audio is prefixed with ``motion_frames`` copies of its first frame (the motion history's
    # pixel frames); after the two stride-2 causal convs the first ``motion_latent_frames`` audio
    # frames are dropped, leaving one per noisy latent frame.
    motion_frames: int = 73
    motion_latent_frames: int = 19
    frame_buckets: tuple[int, int, int] = (1, 2, 16)  # FramePack groups, newest first
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        problems = []
        if self.dim % self.num_heads:
            problems.append(f"dim {self.dim} not divisible by num_heads {self.num_heads}")
        elif (self.dim // self.num_heads) % 2:
            problems.append("head_dim must be even for RoPE")
        if self.dim % 4:
            problems.append("dim must be divisible by 4 (audio encoder widths dim/4, dim/2)")
        if any(not 0 <= i < self.num_layers for i in self.audio_inject_layers):
            problems.append(f"audio_inject_layers {self.audio_inject_layers} outside 0..{self.num_layers - 1}")
        if len(set(self.audio_inject_layers)) != len(self.audio_inject_layers):
            problems.append("audio_inject_layers has duplicates")
        if sum(self.frame_buckets) != self.motion_latent_frames:
            problems.append(f"frame_buckets {self.frame_buckets} must sum to motion_latent_frames")
        if tuple(self.patch_size) != (1, 2, 2):
            problems.append("only patch_size (1, 2, 2) is supported (FramePack kernels assume it)")
        if problems:
            raise ConfigError("invalid S2V transformer config: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @classmethod
    def full(cls) -> "S2VTransformerConfig":
        """The official Wan2.2-S2V-14B transformer."""
        return cls()

    @classmethod
    def tiny(cls) -> "S2VTransformerConfig":
        """A few-hundred-kB model with every component of the full one, for CPU tests."""
        return cls(dim=64, ffn_dim=128, num_heads=4, num_layers=4, text_dim=32, text_len=16,
                   freq_dim=32, audio_dim=24, num_audio_layers=5, audio_inject_layers=(0, 2, 3))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "S2VTransformerConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"unknown S2V transformer config keys: {unknown}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    def to_official_dict(self) -> dict[str, Any]:
        """The ``config.json`` content of an official-layout checkpoint with this config."""
        return {
            "_class_name": OFFICIAL_CLASS_NAME, "model_type": "s2v",
            "dim": self.dim, "ffn_dim": self.ffn_dim, "num_heads": self.num_heads,
            "num_layers": self.num_layers, "in_dim": self.in_dim, "out_dim": self.out_dim,
            "text_len": self.text_len, "freq_dim": self.freq_dim, "eps": self.eps,
            "cond_dim": self.cond_dim, "audio_dim": self.audio_dim,
            "num_audio_token": self.num_audio_token,
            "audio_inject_layers": list(self.audio_inject_layers),
            "zero_timestep": self.zero_timestep, "enable_adain": True, "adain_mode": "attn_norm",
            "enable_motioner": False, "enable_framepack": True, "framepack_drop_mode": "padd",
            "add_last_motion": True, "zero_init": True,
            # Not in the official file (fixed there): our additions, read back by from_official_dict.
            "text_dim": self.text_dim, "num_audio_layers": self.num_audio_layers,
        }

    @classmethod
    def from_official_dict(cls, d: dict[str, Any], source: str = "config.json") -> "S2VTransformerConfig":
        """Config from an official ``config.json``; fields it lacks keep the S2V-14B values."""
        name = d.get("_class_name")
        if name is not None and name != OFFICIAL_CLASS_NAME:
            raise ConfigError(f"{source}: _class_name is {name!r}, not {OFFICIAL_CLASS_NAME!r}: "
                              "this is not a Wan S2V transformer checkpoint")
        wrong = []
        for key, expected in (("enable_framepack", True), ("enable_motioner", False),
                              ("enable_adain", True), ("adain_mode", "attn_norm")):
            if key in d and d[key] != expected:
                wrong.append(f"{key}={d[key]!r} (only {expected!r} is supported)")
        if wrong:
            raise ConfigError(f"{source}: unsupported S2V variant: " + ", ".join(wrong))
        ours = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in ours}
        try:
            return cls(**kw)
        except TypeError as exc:  # wrong value types in the file
            raise ConfigError(f"{source}: {exc}") from None


# ----------------------------------------------------------------------------------------------
# Small helpers: every matmul casts its input to the weight's dtype (what autocast does upstream).
# ----------------------------------------------------------------------------------------------
def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x.to(layer.weight.dtype), layer.weight, layer.bias)


def _linear_f32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    bias = None if layer.bias is None else layer.bias.float()
    return F.linear(x.float(), layer.weight.float(), bias)


def _conv(conv: nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    return conv(x.to(conv.weight.dtype))


def _layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Non-affine LayerNorm computed in float32, returned in x's dtype (official WanLayerNorm)."""
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def _modulate_segments(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                       n_noisy: int) -> torch.Tensor:
    """``h * (1 + scale) + shift`` per segment on the fresh float32 tensor ``h``.

    ``shift``/``scale`` are ``[B, 2, D]``: row 0 for the noisy tokens ``h[:, :n_noisy]``, row 1 for
    the reference/motion tokens after them. For inference it works in place (no concatenated copy
    of the whole sequence); under autograd it is out of place, as saved tensors must stay intact.
    """
    if h.requires_grad:
        return torch.cat([h[:, :n_noisy] * (1 + scale[:, 0:1]) + shift[:, 0:1],
                          h[:, n_noisy:] * (1 + scale[:, 1:2]) + shift[:, 1:2]], dim=1)
    for seg, part in enumerate((h[:, :n_noisy], h[:, n_noisy:])):
        part.mul_(1 + scale[:, seg, None]).add_(shift[:, seg, None])
    return h


def _gate_segments(y: torch.Tensor, gate: torch.Tensor, n_noisy: int) -> torch.Tensor:
    """``y * gate`` per segment in float32 (``y`` is a fresh output; see _modulate_segments)."""
    y = y.float()
    if y.requires_grad:
        return torch.cat([y[:, :n_noisy] * gate[:, 0:1], y[:, n_noisy:] * gate[:, 1:2]], dim=1)
    for seg, part in enumerate((y[:, :n_noisy], y[:, n_noisy:])):
        part.mul_(gate[:, seg, None])
    return y


def sinusoidal_embedding(dim: int, timestep: torch.Tensor) -> torch.Tensor:
    """``[N, dim]`` float64: cos half then sin half, frequencies ``10000^(-i/(dim/2))``."""
    half = dim // 2
    t = timestep.to(torch.float64)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = torch.outer(t, freqs)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


# ----------------------------------------------------------------------------------------------
# Building blocks (attribute names = official state-dict key names)
# ----------------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    """RMS norm over the last dim in float32, cast back to the input dtype, times ``weight``."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


class MultiHeadAttention(nn.Module):
    """q/k/v/o projections with RMS qk-norm over the full width (before the head split).

    Self-attention when ``context`` is None (then ``rope`` = (cos, sin) tables rotate q and k),
    cross-attention to ``context`` otherwise (text or audio tokens, no RoPE).
    """

    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        source = x if context is None else context
        heads = (self.num_heads, -1)
        q = self.norm_q(_linear(self.q, x)).unflatten(-1, heads)
        k = self.norm_k(_linear(self.k, source)).unflatten(-1, heads)
        v = _linear(self.v, source).unflatten(-1, heads)
        if rope is not None:
            q = apply_rope(q, *rope).to(v.dtype)
            k = apply_rope(k, *rope).to(v.dtype)
        return _linear(self.o, attention(q, k, v).flatten(2))


class S2VBlock(nn.Module):
    """One DiT block: modulated self-attention, text cross-attention, modulated FFN."""

    def __init__(self, cfg: S2VTransformerConfig):
        super().__init__()
        d = cfg.dim
        self.eps = cfg.eps
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d**0.5)
        self.self_attn = MultiHeadAttention(d, cfg.num_heads, cfg.eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=True)
        self.cross_attn = MultiHeadAttention(d, cfg.num_heads, cfg.eps)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(cfg.ffn_dim, d))

    def forward(self, x: torch.Tensor, e0: torch.Tensor, n_noisy: int,
                rope: tuple[torch.Tensor, torch.Tensor], context: torch.Tensor) -> torch.Tensor:
        """x: [B, S, D] (param dtype on entry to block 0, float32 after); e0: [B, 6, 2, D] float32."""
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = (
            self.modulation.float().unsqueeze(2) + e0).unbind(1)

        h = _modulate_segments(_layer_norm(x, self.eps).float(), shift_sa, scale_sa, n_noisy)
        x = x + _gate_segments(self.self_attn(h, rope=rope), gate_sa, n_noisy)

        normed = F.layer_norm(x.float(), (x.shape[-1],), self.norm3.weight.float(),
                              self.norm3.bias.float(), self.eps).to(x.dtype)
        x = x + self.cross_attn(normed, context=context)

        h = _modulate_segments(_layer_norm(x, self.eps).float(), shift_ff, scale_ff, n_noisy)
        y = _linear(self.ffn[2], self.ffn[1](_linear(self.ffn[0], h)))
        return x + _gate_segments(y, gate_ff, n_noisy)


class S2VHead(nn.Module):
    """Output head on noisy tokens: modulated LayerNorm, Linear D -> out_dim * prod(patch)."""

    def __init__(self, cfg: S2VTransformerConfig):
        super().__init__()
        self.eps = cfg.eps
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)
        self.head = nn.Linear(cfg.dim, cfg.out_dim * math.prod(cfg.patch_size))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation.float() + e.float().unsqueeze(1)).chunk(2, dim=1)
        x = F.layer_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return _linear_f32(self.head, x * (1 + scale) + shift)


class CausalConv1d(nn.Module):
    """Conv1d over time with replicate padding on the left only (output t sees inputs <= t)."""

    def __init__(self, chan_in: int, chan_out: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(chan_in, chan_out, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T] float32 -> [B, C_out, ceil(T / stride)] float32."""
        x = F.pad(x, (self.conv.kernel_size[0] - 1, 0), mode="replicate")
        bias = None if self.conv.bias is None else self.conv.bias.float()
        return F.conv1d(x, self.conv.weight.float(), bias, stride=self.conv.stride)


class AudioMotionEncoder(nn.Module):
    """Causal conv encoder: per-frame audio features -> per-latent-frame audio tokens.

    Local branch: ``num_token`` streams of width dim/4 -> (LN+SiLU, stride-2 conv to dim/2, LN+SiLU,
    stride-2 conv to dim, LN+SiLU) plus a learned padding token. Global branch: one stream through
    the same conv2/conv3, then ``final_linear``; it drives the injectors' AdaLN.
    """

    def __init__(self, in_dim: int, dim: int, num_token: int):
        super().__init__()
        self.num_token = num_token
        self.conv1_local = CausalConv1d(in_dim, dim // 4 * num_token, 3)
        self.conv1_global = CausalConv1d(in_dim, dim // 4, 3)
        self.conv2 = CausalConv1d(dim // 4, dim // 2, 3, stride=2)
        self.conv3 = CausalConv1d(dim // 2, dim, 3, stride=2)
        self.final_linear = nn.Linear(dim, dim)
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, 1, dim))

    @staticmethod
    def _norm_act(x: torch.Tensor) -> torch.Tensor:  # [N, C, T] -> [N, C, T]
        x = F.layer_norm(x.transpose(1, 2), (x.shape[1],), eps=1e-6)
        return F.silu(x).transpose(1, 2)

    def _downsample(self, x: torch.Tensor) -> torch.Tensor:  # [N, dim/4, T] -> [N, T', dim]
        x = self._norm_act(self.conv2(self._norm_act(x)))
        return self._norm_act(self.conv3(x)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [B, in_dim, T] float32 -> (local [B, T', num_token+1, dim], global [B, T', dim])."""
        b = x.shape[0]
        local = self.conv1_local(x)  # [B, num_token * dim/4, T], token-major channels
        local = local.unflatten(1, (self.num_token, -1)).flatten(0, 1)  # [(B n), dim/4, T]
        local = self._downsample(local).unflatten(0, (b, self.num_token)).transpose(1, 2)
        pad = self.padding_tokens.float().expand(b, local.shape[1], 1, -1)
        local = torch.cat([local, pad], dim=2)
        glob = _linear_f32(self.final_linear, self._downsample(self.conv1_global(x)))
        return local, glob


class CausalAudioEncoder(nn.Module):
    """Learned softmax-like (SiLU-normalised) mix of the wav2vec2 layers, then the motion encoder."""

    def __init__(self, cfg: S2VTransformerConfig):
        super().__init__()
        self.weights = nn.Parameter(torch.full((1, cfg.num_audio_layers, 1, 1), 0.01))
        self.encoder = AudioMotionEncoder(cfg.audio_dim, cfg.dim, cfg.num_audio_token)

    def forward(self, features: torch.Tensor, prefix_frames: int,
                drop_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """features: [B, layers, audio_dim, T] (one column per video frame).

        The first frame is repeated ``prefix_frames`` times in front (stands for the motion history),
        the encoder runs in float32, and the first ``drop_frames`` output frames are dropped.
        Returns (local tokens [B, T_lat, num_token+1, dim], global token [B, T_lat, dim]).
        """
        w = F.silu(self.weights.float())
        mixed = (features.float() * w / w.sum(dim=1, keepdim=True)).sum(dim=1)  # [B, A, T]
        mixed = torch.cat([mixed[..., :1].expand(-1, -1, prefix_frames), mixed], dim=-1)
        local, glob = self.encoder(mixed)
        return local[:, drop_frames:], glob[:, drop_frames:]


class AdaLayerNorm(nn.Module):
    """LayerNorm (eps 1e-5, no affine) modulated by ``linear(SiLU(cond))`` -> (shift, scale)."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = _linear(self.linear, F.silu(cond)).float().unsqueeze(1).chunk(2, dim=-1)
        return F.layer_norm(x.float(), (x.shape[-1],), eps=1e-5) * (1 + scale) + shift


class AudioInjector(nn.Module):
    """Per-latent-frame cross-attention from noisy tokens to that frame's audio tokens."""

    def __init__(self, cfg: S2VTransformerConfig):
        super().__init__()
        n = len(cfg.audio_inject_layers)
        self.injector = nn.ModuleList(MultiHeadAttention(cfg.dim, cfg.num_heads, cfg.eps)
                                      for _ in range(n))
        self.injector_adain_layers = nn.ModuleList(AdaLayerNorm(cfg.dim) for _ in range(n))

    def forward(self, index: int, x: torch.Tensor, n_noisy: int, audio_local: torch.Tensor,
                audio_global: torch.Tensor) -> torch.Tensor:
        """Adds injector ``index``'s output to the noisy tokens of ``x`` (float32; in place
        unless autograd records)."""
        b, frames, n_tok, d = audio_local.shape
        per_frame = x[:, :n_noisy].reshape(b * frames, n_noisy // frames, d)
        h = self.injector_adain_layers[index](per_frame, audio_global.reshape(b * frames, d))
        out = self.injector[index](h, context=audio_local.reshape(b * frames, n_tok, d))
        out = out.reshape(b, n_noisy, d)
        if x.requires_grad:
            return torch.cat([x[:, :n_noisy] + out, x[:, n_noisy:]], dim=1)
        x[:, :n_noisy] += out
        return x


class FramePacker(nn.Module):
    """FramePack motion tokens: the last 19 motion latents at three temporal/spatial scales."""

    def __init__(self, cfg: S2VTransformerConfig):
        super().__init__()
        self.buckets = tuple(cfg.frame_buckets)  # newest first: post, 2x, 4x
        c, d = cfg.in_dim, cfg.dim
        self.proj = nn.Conv3d(c, d, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.proj_2x = nn.Conv3d(c, d, kernel_size=(2, 4, 4), stride=(2, 4, 4))
        self.proj_4x = nn.Conv3d(c, d, kernel_size=(4, 8, 8), stride=(4, 8, 8))

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """motion: [B, C, T_m, H, W] -> tokens [B, M, D] in order post, 2x, 4x."""
        total = sum(self.buckets)
        keep = min(total, motion.shape[2])
        packed = motion[:, :, motion.shape[2] - keep:].to(self.proj.weight.dtype)
        if keep < total:  # too little history: zero frames in front (oldest side)
            packed = F.pad(packed, (0, 0, 0, 0, total - keep, 0))
        oldest, middle, newest = packed.split(self.buckets[::-1], dim=2)
        tokens = [self.proj(newest), self.proj_2x(middle), self.proj_4x(oldest)]
        return torch.cat([t.flatten(2).transpose(1, 2) for t in tokens], dim=1)


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------
@dataclass
class EmbeddedInputs:
    """The token sequence [noisy | reference | motion] and the conditioning the blocks use."""

    x: torch.Tensor                 # [B, L, dim] tokens
    n_noisy: int                    # the first n_noisy tokens are the noisy video (predicted)
    e: torch.Tensor                 # time embedding (head modulation)
    e0: torch.Tensor                # per-block modulation (noisy tokens at t, the rest at t = 0)
    rope: tuple[torch.Tensor, torch.Tensor]  # cos, sin per token
    context: torch.Tensor           # projected text embeddings
    audio_local: torch.Tensor
    audio_global: torch.Tensor
    frames: int
    height: int
    width: int


class WanS2VTransformer(nn.Module):
    """The Wan2.2-S2V-14B DiT (or a smaller config of it); see the module docstring."""

    def __init__(self, config: S2VTransformerConfig | None = None):
        super().__init__()
        cfg = config or S2VTransformerConfig.full()
        self.config = cfg
        d, patch = cfg.dim, tuple(cfg.patch_size)
        self.patch_embedding = nn.Conv3d(cfg.in_dim, d, kernel_size=patch, stride=patch)
        self.cond_encoder = nn.Conv3d(cfg.cond_dim, d, kernel_size=patch, stride=patch)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"),
                                            nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(S2VBlock(cfg) for _ in range(cfg.num_layers))
        self.head = S2VHead(cfg)
        self.casual_audio_encoder = CausalAudioEncoder(cfg)  # "casual" (sic): official key name
        self.audio_injector = AudioInjector(cfg)
        self.trainable_cond_mask = nn.Embedding(3, d)  # rows: 0 noisy, 1 reference, 2 motion
        self.frame_packer = FramePacker(cfg)
        self._injector_after_block = {layer: j for j, layer in enumerate(cfg.audio_inject_layers)}
        # RoPE tables per (frames, height, width, with_motion, device); plain dict, not buffers,
        # so they are neither saved nor cast by .to(dtype).
        self._rope_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- helpers ------------------------------------------------------------------------------
    def rope_tables(self, frames: int, height: int, width: int, with_motion: bool,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached float32 (cos, sin) ``[S, head_dim/2]`` for a latent geometry (F, H, W)."""
        key = (frames, height, width, with_motion, str(device))
        if key not in self._rope_cache:
            cfg = self.config
            segments = s2v_token_positions(frames, height, width, with_motion,
                                           tuple(cfg.patch_size), tuple(cfg.frame_buckets))
            positions = torch.cat([torch.from_numpy(p) for p in segments.values()])
            self._rope_cache[key] = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, device)
        return self._rope_cache[key]

    def time_embeddings(self, timestep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(e [B, D] for the head, e0 [B, 6, 2, D] block modulation: [..., 0, :] for noisy tokens,
        [..., 1, :] for reference/motion tokens (t = 0 when ``zero_timestep``)), all float32."""
        cfg = self.config
        b = timestep.shape[0]
        t = torch.cat([timestep, timestep.new_zeros(1)]) if cfg.zero_timestep else timestep
        e = sinusoidal_embedding(cfg.freq_dim, t).float()
        e = _linear_f32(self.time_embedding[2], F.silu(_linear_f32(self.time_embedding[0], e)))
        e0 = _linear_f32(self.time_projection[1], F.silu(e)).unflatten(1, (6, cfg.dim))
        if cfg.zero_timestep:
            e0 = torch.stack([e0[:b], e0[b:].expand(b, -1, -1)], dim=2)
        else:
            e0 = torch.stack([e0, e0], dim=2)
        return e[:b], e0

    def embed_text(self, text: torch.Tensor) -> torch.Tensor:
        """[B, L <= text_len, text_dim] (rows past the prompt zero) -> [B, text_len, D]."""
        pad = self.config.text_len - text.shape[1]
        if pad < 0:
            raise ValueError(f"text embeddings have {text.shape[1]} rows, more than text_len "
                             f"{self.config.text_len}")
        text = F.pad(text, (0, 0, 0, pad))
        return _linear(self.text_embedding[2], self.text_embedding[1](_linear(self.text_embedding[0], text)))

    def unpatchify(self, x: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
        """[B, F*h*w, out*pt*ph*pw] -> [B, out, F, H, W]."""
        pt, ph, pw = self.config.patch_size
        f, h, w = frames // pt, height // ph, width // pw
        x = x.reshape(x.shape[0], f, h, w, pt, ph, pw, self.config.out_dim)
        return torch.einsum("bfhwpqrc->bcfphqwr", x).reshape(
            x.shape[0], self.config.out_dim, f * pt, h * ph, w * pw)

    # -- forward ------------------------------------------------------------------------------
    def embed_inputs(self, latents: torch.Tensor, timestep: torch.Tensor, text_embeddings: torch.Tensor,
                     audio_features: torch.Tensor, ref_latents: torch.Tensor,
                     motion_latents: torch.Tensor | None = None, pose_latents: torch.Tensor | None = None,
                     drop_motion_frames: bool = False) -> "EmbeddedInputs":
        """Everything the blocks consume, from the forward's inputs (validated here).

        Shared by :meth:`forward` and the sequence-parallel forward (``models.parallel``), so both
        build exactly the same token sequence, RoPE tables and conditioning.
        """
        cfg = self.config
        b, _, frames, height, width = latents.shape
        if ref_latents.shape != (b, latents.shape[1], 1, height, width):
            raise ValueError(f"ref_latents shape {tuple(ref_latents.shape)} does not match latents "
                             f"{tuple(latents.shape)} (expected one frame)")
        if height % 2 or width % 2:
            raise ValueError(f"latent height/width must be even, got {height}x{width}")
        expected_audio = VAE_TEMPORAL_STRIDE * frames
        if audio_features.shape[0] != b or audio_features.shape[-1] != expected_audio:
            raise ValueError(f"audio_features shape {tuple(audio_features.shape)}: expected batch {b} "
                             f"and {expected_audio} video frames for {frames} latent frames")
        timestep = torch.as_tensor(timestep, device=latents.device).reshape(-1).expand(b)

        audio_local, audio_global = self.casual_audio_encoder(
            audio_features, cfg.motion_frames, cfg.motion_latent_frames)

        # Token sequence [noisy | reference | motion], each with its trainable_cond_mask row.
        noisy = _conv(self.patch_embedding, latents)
        if pose_latents is None:  # cond_encoder(zeros) is exactly its bias
            noisy = noisy + self.cond_encoder.bias.to(noisy.dtype).view(1, -1, 1, 1, 1)
        else:
            noisy = noisy + _conv(self.cond_encoder, pose_latents)
        noisy = noisy.flatten(2).transpose(1, 2)
        ref = _conv(self.patch_embedding, ref_latents).flatten(2).transpose(1, 2)
        mask = self.trainable_cond_mask.weight.to(noisy.dtype)
        parts = [noisy + mask[0], ref + mask[1]]
        with_motion = motion_latents is not None and not drop_motion_frames
        if with_motion:
            parts.append(self.frame_packer(motion_latents) + mask[2])
        x = torch.cat(parts, dim=1)
        n_noisy = noisy.shape[1]

        rope = self.rope_tables(frames, height, width, with_motion, x.device)
        e, e0 = self.time_embeddings(timestep)
        context = self.embed_text(text_embeddings)

        return EmbeddedInputs(x, n_noisy, e, e0, rope, context, audio_local, audio_global,
                              frames, height, width)

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor, text_embeddings: torch.Tensor,
                audio_features: torch.Tensor, ref_latents: torch.Tensor,
                motion_latents: torch.Tensor | None = None,
                pose_latents: torch.Tensor | None = None,
                drop_motion_frames: bool = False) -> torch.Tensor:
        """Predict the flow-matching velocity for one S2V clip.

        Args:
            latents: noisy video latents ``[B, in_dim, F, H, W]`` (F latent frames; H, W = pixels/8,
                H and W even).
            timestep: ``[B]`` diffusion times in 0..1000 (a scalar is broadcast).
            text_embeddings: umT5 output ``[B, L, text_dim]``, ``L <= text_len``; rows past each
                prompt's true length must be zero (they are padded with zeros to ``text_len``).
            audio_features: wav2vec2 hidden states per video frame
                ``[B, num_audio_layers, audio_dim, 4*F]`` (the official ``audio_input`` layout).
            ref_latents: reference-image latent ``[B, in_dim, 1, H, W]``.
            motion_latents: motion history ``[B, in_dim, T_m, H, W]`` (the last 19 frames are
                used, zero-padded in front if fewer); None = no motion tokens.
            pose_latents: pose-video latents ``[B, cond_dim, F, H, W]``; None = no pose (zeros).
            drop_motion_frames: drop the motion tokens (the first clip of a video).

        Returns the prediction ``[B, out_dim, F, H, W]`` in float32.
        """
        t = self.embed_inputs(latents, timestep, text_embeddings, audio_features, ref_latents,
                              motion_latents, pose_latents, drop_motion_frames)
        return self.output(self.run_blocks(t), t)

    def run_blocks(self, t: "EmbeddedInputs") -> torch.Tensor:
        """The blocks (with the audio injections after their layers) on ``t.x``; returns the sequence."""
        x = t.x
        for i, block in enumerate(self.blocks):
            x = block(x, t.e0, t.n_noisy, t.rope, t.context)
            j = self._injector_after_block.get(i)
            if j is not None:
                x = self.audio_injector(j, x, t.n_noisy, t.audio_local, t.audio_global)
        return x

    def output(self, x: torch.Tensor, t: "EmbeddedInputs") -> torch.Tensor:
        """The head on the noisy tokens of the block output ``x``, unpatchified."""
        return self.unpatchify(self.head(x[:, :t.n_noisy], t.e), t.frames, t.height, t.width)


def init_random_weights(model: WanS2VTransformer, seed: int = 0) -> WanS2VTransformer:
    """Fill every parameter in place with seeded random values of a sensible scale.

    Unlike the official init (which zero-initialises the head, injector outputs, pose encoder and
    segment embeddings), every path then contributes to the output, so tests can see each of them.
    Runs on the parameters' own device and dtype (no host copy of a full-size model).
    """
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    d = model.config.dim
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 2)
            if name.endswith("modulation"):
                p.normal_(0.0, d**-0.5, generator=g)
            elif name == "casual_audio_encoder.weights":  # keep SiLU(w) > 0: their sum divides
                p.normal_(0.0, 0.3, generator=g).abs_().add_(1.0)
            elif "norm" in leaf[-2] and leaf[-1] == "weight":
                p.normal_(1.0, 0.1, generator=g)
            elif p.ndim >= 2:
                p.normal_(0.0, p[0].numel() ** -0.5, generator=g)
            else:
                p.normal_(0.0, 0.1, generator=g)
    return model


def random_s2v_transformer(config: S2VTransformerConfig | None = None,
                           device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                           seed: int = 0) -> WanS2VTransformer:
    """A model with random weights allocated directly on ``device`` in ``dtype`` (e.g. the full
    config in bf16 on a GPU for benchmarks: 32.6 GB, never a float32 copy)."""
    with torch.device("meta"):
        model = WanS2VTransformer(config).to(dtype)
    return init_random_weights(model.to_empty(device=device), seed).eval()


# ----------------------------------------------------------------------------------------------
# Cost model
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForwardFlops:
    """Floating-point operations of one forward (2 per multiply-add)."""

    linear: float  # every dense layer and convolution
    attention: float  # q k^T and p v products of all attentions
    tokens: int  # sequence length (noisy + reference + motion)
    details: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> float:
        return self.linear + self.attention


def forward_flops(config: S2VTransformerConfig, height: int, width: int, frames: int = 80,
                  with_motion: bool = True, batch: int = 1) -> ForwardFlops:
    """FLOPs of one :meth:`WanS2VTransformer.forward` for a ``height x width`` clip of ``frames``
    pixel frames (``frames/4`` latent frames), counted from the layer shapes.

    The S2V-14B at 448x832 / 704x1280, 80 frames, with motion tokens: ~1.72 / ~7.16 PFLOP.
    """
    c = config
    d, lat_f = c.dim, frames // VAE_TEMPORAL_STRIDE
    lat_h, lat_w = height // VAE_SPATIAL_STRIDE, width // VAE_SPATIAL_STRIDE
    seg = {k: len(v) for k, v in s2v_token_positions(lat_f, lat_h, lat_w, with_motion,
                                                     tuple(c.patch_size), tuple(c.frame_buckets)).items()}
    n, s, tl = seg["noisy"], sum(seg.values()), c.text_len
    patch_in = c.in_dim * math.prod(c.patch_size)
    mm = lambda rows, k, m: 2.0 * rows * k * m  # noqa: E731  (a [rows,k] @ [k,m] product)

    lin: dict[str, float] = {}
    lin["embeddings"] = (mm(n, patch_in, d) + mm(n, c.cond_dim * math.prod(c.patch_size), d)
                         + mm(seg["reference"], patch_in, d)
                         + mm(tl, c.text_dim, d) + mm(tl, d, d)
                         + mm(2 if c.zero_timestep else 1, c.freq_dim, d)
                         + mm(2 if c.zero_timestep else 1, d, d) + mm(2 if c.zero_timestep else 1, d, 6 * d))
    if with_motion:
        lin["embeddings"] += (mm(seg["motion_post"], patch_in, d) + mm(seg["motion_2x"], patch_in * 8, d)
                              + mm(seg["motion_4x"], patch_in * 64, d))
    lin["blocks"] = c.num_layers * (mm(s, d, 4 * d) + mm(s, d, 2 * d) + mm(tl, d, 2 * d)
                                    + mm(s, d, 2 * c.ffn_dim))
    audio_tokens = c.num_audio_token + 1
    lin["audio_injectors"] = len(c.audio_inject_layers) * (
        mm(lat_f, d, 2 * d) + mm(n, d, 2 * d) + mm(lat_f * audio_tokens, d, 2 * d))
    t0 = frames + c.motion_frames
    t1 = (t0 + 1) // 2
    t2 = (t1 + 1) // 2
    lin["audio_encoder"] = (mm(t0, 3 * c.audio_dim, d // 4 * c.num_audio_token) + mm(t0, 3 * c.audio_dim, d // 4)
                            + (c.num_audio_token + 1) * (mm(t1, 3 * d // 4, d // 2) + mm(t2, 3 * d // 2, d))
                            + mm(t2, d, d))
    lin["head"] = mm(n, d, c.out_dim * math.prod(c.patch_size))
    att = {
        "self": c.num_layers * 2 * mm(s, d, s),
        "text": c.num_layers * 2 * mm(s, d, tl),
        "audio": len(c.audio_inject_layers) * 2 * mm(n, d, audio_tokens),
    }
    return ForwardFlops(linear=batch * sum(lin.values()), attention=batch * sum(att.values()),
                        tokens=s, details={**{f"linear_{k}": batch * v for k, v in lin.items()},
                                           **{f"attention_{k}": batch * v for k, v in att.items()}})
