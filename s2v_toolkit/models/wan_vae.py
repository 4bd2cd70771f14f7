"""Wan2.1 causal 3D VAE (the video autoencoder of Wan2.2-S2V-14B), loading ``Wan2.1_VAE.pth`` unchanged.

Facts: /work/shared/spec/wan21_vae.md. The module tree reproduces the official key names
(``encoder.downsamples.5.time_conv.weight`` ...), so the official plain state dict loads with strict=True.

Time is causal everywhere: ``1 + 4k`` pixel frames <-> ``1 + k`` latent frames, and latent ``j`` depends
only on pixel frames ``<= 4j``. Two ways to run the same network:

* **chunked** (default, what the official code does): the encoder sees pixel frames in chunks
  ``[0], [1..4], [5..8], ...`` and the decoder one latent frame at a time; every causal convolution keeps
  the last frames of its input in a :class:`FeatureCache`, so memory is bounded by one chunk whatever the
  clip length;
* **whole sequence** (``chunked=False``): every layer sees all frames at once, with the zero padding a
  causal convolution implies. It is the reference the chunked path must equal (tests compare them), and is
  fine for short clips.

Numerics run in float32 by default (the official wrapper forces fp32 even inside a bf16 autocast region);
inputs of any dtype are cast to the weights' dtype and autocast is disabled inside.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .weights import WeightsError, assign_state_dict, read_state_dict

VAE_FILENAME = "Wan2.1_VAE.pth"

# Per-channel statistics of the official latents (spec "Latent normalisation"): z = (mu - mean) / std.
LATENT_MEAN = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
)
LATENT_STD = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
)


@dataclass(frozen=True)
class WanVAEConfig:
    """Architecture of the Wan2.1 VAE. ``full()`` is the released model, ``tiny()`` a small test model
    with the same key names (same block indices) and narrower channels."""

    dim: int = 96
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temporal_downsample: tuple[bool, ...] = (False, True, True)
    latent_mean: tuple[float, ...] = LATENT_MEAN
    latent_std: tuple[float, ...] = LATENT_STD
    dropout: float = 0.0

    def __post_init__(self):
        if len(self.temporal_downsample) != len(self.dim_mult) - 1:
            raise ValueError("temporal_downsample needs one entry per down stage (len(dim_mult) - 1)")
        if len(self.latent_mean) != self.z_dim or len(self.latent_std) != self.z_dim:
            raise ValueError("latent_mean/latent_std need z_dim entries")

    @classmethod
    def full(cls) -> "WanVAEConfig":
        return cls()

    @classmethod
    def tiny(cls) -> "WanVAEConfig":
        return cls(dim=8)

    @property
    def temporal_stride(self) -> int:
        return 2 ** sum(self.temporal_downsample)

    @property
    def spatial_stride(self) -> int:
        return 2 ** (len(self.dim_mult) - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "WanVAEConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class FeatureCache:
    """Per-layer memory of earlier frames for chunked causal processing (one encode or decode call)."""

    def __init__(self):
        self._frames: dict[int, torch.Tensor] = {}
        self._started: set[int] = set()

    def get(self, layer: nn.Module) -> torch.Tensor | None:
        return self._frames.get(id(layer))

    def put(self, layer: nn.Module, frames: torch.Tensor) -> None:
        self._frames[id(layer)] = frames

    def start(self, layer: nn.Module) -> bool:
        """True the first time a layer asks (it is seeing frame 0 of the sequence)."""
        first = id(layer) not in self._started
        self._started.add(id(layer))
        return first


class CausalConv3d(nn.Conv3d):
    """3-D convolution that pads time only in front (2*pt frames) and space symmetrically.

    With a cache, the cached last frames of the previous chunk replace the front zero padding, which makes
    chunked processing equal to one convolution over the whole sequence. Spatial zero padding is left to the
    convolution itself (same result as an explicit pad, one full-size copy less per call).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        pt, ph, pw = padding if isinstance(padding, tuple) else (padding,) * 3
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=(0, ph, pw))
        self.time_pad = 2 * pt

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        if self.time_pad:
            if cache is None:
                x = F.pad(x, (0, 0, 0, 0, self.time_pad, 0))
            else:
                previous = cache.get(self)
                if previous is None:
                    b, c, _, h, w = x.shape
                    previous = x.new_zeros(b, c, self.time_pad, h, w)
                x = torch.cat([previous, x], dim=2)
                # clone: a view would keep the whole chunk alive until the next call
                cache.put(self, x[:, :, -self.time_pad:].clone())
        return super().forward(x)


class RMSNorm(nn.Module):
    """L2-normalise over channels (dim 1), times sqrt(C) and a learned per-channel ``gamma``."""

    def __init__(self, dim: int, images: bool = True):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim, 1, 1) if images else torch.ones(dim, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        # Indices matter: they are the official key names residual.{0,2,3,6}.
        self.residual = nn.Sequential(
            RMSNorm(in_dim, images=False),
            nn.SiLU(),
            CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, images=False),
            nn.SiLU(),
            nn.Dropout(dropout),
            CausalConv3d(out_dim, out_dim, 3, padding=1),
        )
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = layer(x, cache) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions of each frame (no mixing across time)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = RMSNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)
        qkv = self.to_qkv(self.norm(y)).reshape(b * t, 3 * c, h * w).transpose(1, 2)
        q, k, v = qkv.unsqueeze(1).chunk(3, dim=-1)  # [bt, 1 head, hw, c] each
        y = F.scaled_dot_product_attention(q, k, v).squeeze(1).transpose(1, 2).reshape(b * t, c, h, w)
        y = self.proj(y).reshape(b, t, c, h, w).transpose(1, 2)
        return x + y


class NearestUpsample2x(nn.Module):
    """Nearest-exact x2 in H and W, computed in float32 (as the official module) and cast back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").type_as(x)


class Resample(nn.Module):
    """Spatial x2 up/down sampling per frame, plus a temporal x2 step for the ``*3d`` modes."""

    MODES = ("upsample2d", "upsample3d", "downsample2d", "downsample3d")

    def __init__(self, dim: int, mode: str):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown resample mode {mode!r}")
        self.mode = mode
        if mode.startswith("upsample"):
            self.resample = nn.Sequential(NearestUpsample2x(), nn.Conv2d(dim, dim // 2, 3, padding=1))
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
            if mode == "downsample3d":
                self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=0)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
        if self.mode == "upsample3d":
            x = self._double_time(x, cache)
        b, c, t, h, w = x.shape
        y = self.resample(x.transpose(1, 2).reshape(b * t, c, h, w))
        x = y.reshape(b, t, *y.shape[1:]).transpose(1, 2)
        if self.mode == "downsample3d":
            x = self._halve_time(x, cache)
        return x

    def _double_time(self, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
        # Frame 0 of the sequence passes unchanged (no doubling); every later frame becomes two frames
        # through a causal conv whose front padding is zeros (frame 0 is never seen by this conv).
        parts = []
        if cache is None or cache.start(self):
            parts.append(x[:, :, :1])
            x = x[:, :, 1:]
        if x.shape[2]:
            y = self.time_conv(x, cache)  # [b, 2c, t, h, w]; first half of channels = earlier frame
            b, c2, t, h, w = y.shape
            y = y.reshape(b, 2, c2 // 2, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)
            parts.append(y)
        return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]

    def _halve_time(self, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
        # Whole sequence: [frame 0] ++ valid kernel-3 stride-2 conv over all frames (windows 0-2, 2-4, ...).
        # Chunked: the first chunk emits its frame 0 unchanged; each later (even-length) chunk is convolved
        # with the previous chunk's last frame in front, which continues the same windows.
        if cache is None or cache.start(self):
            head = x[:, :, :1]
            if cache is not None:
                cache.put(self, x[:, :, -1:].clone())
            if x.shape[2] < 3:
                return head
            return torch.cat([head, self.time_conv(x)], dim=2)
        previous = cache.get(self)
        cache.put(self, x[:, :, -1:].clone())
        return self.time_conv(torch.cat([previous, x], dim=2))


def _run(layers: nn.Module, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
    for layer in layers:
        if isinstance(layer, (CausalConv3d, ResidualBlock, AttentionBlock, Resample)):
            x = layer(x, cache)
        else:
            x = layer(x)
    return x


class Encoder3d(nn.Module):
    def __init__(self, config: WanVAEConfig):
        super().__init__()
        dims = [config.dim * u for u in (1, *config.dim_mult)]
        scale = 1.0
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        downsamples: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(config.num_res_blocks):
                downsamples.append(ResidualBlock(in_dim, out_dim, config.dropout))
                if scale in config.attn_scales:
                    downsamples.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(config.dim_mult) - 1:
                mode = "downsample3d" if config.temporal_downsample[i] else "downsample2d"
                downsamples.append(Resample(out_dim, mode))
                scale /= 2.0
        self.downsamples = nn.Sequential(*downsamples)
        top = dims[-1]
        self.middle = nn.Sequential(
            ResidualBlock(top, top, config.dropout), AttentionBlock(top), ResidualBlock(top, top, config.dropout)
        )
        self.head = nn.Sequential(RMSNorm(top, images=False), nn.SiLU(), CausalConv3d(top, config.z_dim * 2, 3, padding=1))

    def forward(self, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
        x = self.conv1(x, cache)
        x = _run(self.downsamples, x, cache)
        x = _run(self.middle, x, cache)
        return _run(self.head, x, cache)


class Decoder3d(nn.Module):
    def __init__(self, config: WanVAEConfig):
        super().__init__()
        mult = config.dim_mult
        dims = [config.dim * u for u in (mult[-1], *reversed(mult))]
        temporal_upsample = tuple(reversed(config.temporal_downsample))
        scale = 1.0 / 2 ** (len(mult) - 2)
        self.conv1 = CausalConv3d(config.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(
            ResidualBlock(dims[0], dims[0], config.dropout),
            AttentionBlock(dims[0]),
            ResidualBlock(dims[0], dims[0], config.dropout),
        )
        upsamples: list[nn.Module] = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                in_dim = in_dim // 2  # the previous stage's Resample conv halved the channels
            for _ in range(config.num_res_blocks + 1):
                upsamples.append(ResidualBlock(in_dim, out_dim, config.dropout))
                if scale in config.attn_scales:
                    upsamples.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != len(mult) - 1:
                mode = "upsample3d" if temporal_upsample[i] else "upsample2d"
                upsamples.append(Resample(out_dim, mode))
                scale *= 2.0
        self.upsamples = nn.Sequential(*upsamples)
        self.head = nn.Sequential(RMSNorm(dims[-1], images=False), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
        x = self.conv1(x, cache)
        x = _run(self.middle, x, cache)
        x = _run(self.upsamples, x, cache)
        return _run(self.head, x, cache)


class WanVAE(nn.Module):
    """The Wan2.1 VAE. Pixels are ``[B, 3, T, H, W]`` in [-1, 1]; latents ``[B, z_dim, t, H/8, W/8]``,
    normalised with the official per-channel mean/std (what the DiT consumes)."""

    def __init__(self, config: WanVAEConfig | None = None):
        super().__init__()
        self.config = config = config or WanVAEConfig.full()
        self.encoder = Encoder3d(config)
        self.conv1 = CausalConv3d(config.z_dim * 2, config.z_dim * 2, 1)
        self.conv2 = CausalConv3d(config.z_dim, config.z_dim, 1)
        self.decoder = Decoder3d(config)

    # -- latent normalisation -------------------------------------------------------------------------
    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, -1) + (1,) * (like.dim() - 2)
        mean = torch.tensor(self.config.latent_mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.config.latent_std, dtype=like.dtype, device=like.device).view(shape)
        return mean, std

    def normalize_latents(self, mu: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(mu)
        # Official code multiplies by a stored 1/std; the difference is one float rounding.
        return (mu - mean) * (1.0 / std)

    def denormalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return z * std + mean

    # -- encode / decode --------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.conv1.weight.dtype

    def _prepare(self, x: torch.Tensor, what: str) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"{what} must be [B, C, T, H, W], got shape {list(x.shape)}")
        return x.to(device=self.conv1.weight.device, dtype=self.dtype)

    def encode(self, video: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        """Pixels ``[B, 3, T, H, W]`` -> normalised latents ``[B, z, 1 + (T-1)//4, H/8, W/8]``.

        Frames after the last full ``1 + 4k`` group are dropped, as in the official code.
        """
        return self.normalize_latents(self.encode_mu(video, chunked=chunked))

    def encode_mu(self, video: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        """Un-normalised posterior mean (the first z_dim channels of the bottleneck)."""
        x = self._prepare(video, "video")
        stride = self.config.temporal_stride
        s = self.config.spatial_stride
        if x.shape[1] != 3 or x.shape[3] % s or x.shape[4] % s:
            raise ValueError(f"video must be [B, 3, T, H, W] with H, W multiples of {s}, got {list(x.shape)}")
        if x.shape[2] < 1:
            raise ValueError("video has no frames")
        frames = 1 + stride * ((x.shape[2] - 1) // stride)
        x = x[:, :, :frames]
        with self._fp32_region(x):
            if chunked:
                cache = FeatureCache()
                bounds = [(0, 1)] + [(s0, s0 + stride) for s0 in range(1, frames, stride)]
                h = torch.cat([self.encoder(x[:, :, a:b], cache) for a, b in bounds], dim=2)
            else:
                h = self.encoder(x, None)
            return self.conv1(h)[:, : self.config.z_dim]

    def iter_decode(self, latents: torch.Tensor) -> Iterator[torch.Tensor]:
        """Decode chunk by chunk: yields 1 frame for latent 0, then 4 frames per latent (clamped).

        Peak memory is that of one latent frame's decoder pass whatever the number of latents.
        """
        z = self._prepare(latents, "latents")
        with self._fp32_region(z):
            x = self.conv2(self.denormalize_latents(z))
        cache = FeatureCache()
        for i in range(x.shape[2]):
            # The no-grad/autocast region must not span the yield (it would leak into the caller).
            with self._fp32_region(x):
                frames = self.decoder(x[:, :, i : i + 1], cache).clamp_(-1.0, 1.0)
            yield frames

    def decode(self, latents: torch.Tensor, chunked: bool = True) -> torch.Tensor:
        """Normalised latents ``[B, z, t, h, w]`` -> pixels ``[B, 3, 1 + 4(t-1), 8h, 8w]`` in [-1, 1]."""
        if chunked:
            return torch.cat(list(self.iter_decode(latents)), dim=2)
        z = self._prepare(latents, "latents")
        with self._fp32_region(z):
            x = self.conv2(self.denormalize_latents(z))
            return self.decoder(x, None).clamp_(-1.0, 1.0)

    @staticmethod
    def _fp32_region(x: torch.Tensor):
        """No autograd, and no outer autocast (a bf16 sampling loop must not lower the VAE's precision)."""
        import contextlib

        stack = contextlib.ExitStack()
        stack.enter_context(torch.no_grad())
        stack.enter_context(torch.autocast(x.device.type, enabled=False))
        return stack


def build_wan_vae(config: WanVAEConfig | None = None, device="cpu", dtype=torch.float32) -> WanVAE:
    """A randomly initialised VAE (tests, ``--model tiny``)."""
    return WanVAE(config).to(device=device, dtype=dtype).eval().requires_grad_(False)


def load_wan_vae(
    path: str | os.PathLike,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    config: WanVAEConfig | None = None,
) -> WanVAE:
    """Load the official ``Wan2.1_VAE.pth`` (or a same-keys ``.safetensors``), strictly.

    ``path`` may be the file or the checkpoint folder holding ``Wan2.1_VAE.pth``. The module is built on
    the meta device and the file's tensors are assigned, converted to ``device``/``dtype`` one by one.
    Raises :class:`WeightsError` naming the file and the first bad key.
    """
    path = Path(path)
    if path.is_dir():
        path = path / VAE_FILENAME
    state = read_state_dict(path, what="Wan2.1 VAE")
    with torch.device("meta"):
        model = WanVAE(config)
    assign_state_dict(model, state, path, what="Wan2.1 VAE", device=device, dtype=dtype)
    return model


def write_tiny_vae(folder: str | os.PathLike, seed: int = 0, config: WanVAEConfig | None = None) -> Path:
    """Write a random tiny VAE as ``folder/Wan2.1_VAE.pth`` in the official layout (tests, demo checkpoints)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = WanVAE(config or WanVAEConfig.tiny())
    finally:
        torch.random.set_rng_state(generator_state)
    path = folder / VAE_FILENAME
    torch.save(model.state_dict(), path)
    return path


__all__ = [
    "LATENT_MEAN",
    "LATENT_STD",
    "VAE_FILENAME",
    "FeatureCache",
    "WanVAE",
    "WanVAEConfig",
    "WeightsError",
    "build_wan_vae",
    "load_wan_vae",
    "write_tiny_vae",
]
