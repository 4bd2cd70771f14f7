"""3-axis rotary position embedding (RoPE) of the Wan2.2-S2V transformer.

Each attention head of size ``head_dim`` is read as ``head_dim / 2`` complex numbers (channel pairs
``(2i, 2i+1)``). Those complex channels are split over three axes: time gets
``c - 2 * (c // 3)`` of them and height and width ``c // 3`` each (``c = head_dim / 2``; for
head_dim 128: 22 / 21 / 21). Each axis has its own frequency ladder
``theta ** (-2i / axis_dim)`` where ``axis_dim`` is twice that axis' number of complex channels
(44 / 42 / 42 real dims), exactly like three independent 1-D RoPEs laid side by side.

Every token has an integer position ``(t, h, w)``. The S2V sequence is
``[noisy | reference | motion]`` and the spec gives each segment its own positions
(see :func:`s2v_token_positions`). Negative time positions (motion history) are legal: the official
code uses complex conjugates of the table entries, which is the same as a negative angle.

The tables are computed once per video geometry (in float64, then stored as float32 cos/sin) and
reused by every block; nothing here syncs with the device during a forward pass.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["s2v_token_positions", "rope_cos_sin", "apply_rope", "axis_channels"]

#: Length of the official RoPE tables; positions must stay inside (-MAX_POSITION, MAX_POSITION).
MAX_POSITION = 1024

#: Time position of the reference-image tokens (far away from the clip's frames 0..F-1).
REFERENCE_TIME_POSITION = 30


def axis_channels(head_dim: int) -> tuple[int, int, int]:
    """Complex channels per axis (time, height, width) for one head."""
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    c = head_dim // 2
    return (c - 2 * (c // 3), c // 3, c // 3)


def axis_inverse_frequencies(head_dim: int, theta: float = 10000.0) -> list[torch.Tensor]:
    """One float64 vector of angular frequencies per axis (time, height, width)."""
    out = []
    for n in axis_channels(head_dim):
        axis_dim = 2 * n
        out.append(1.0 / torch.pow(torch.tensor(theta, dtype=torch.float64),
                                   torch.arange(0, axis_dim, 2, dtype=torch.float64) / axis_dim))
    return out


def grid_positions(t: list[int] | np.ndarray, h: list[int] | np.ndarray,
                   w: list[int] | np.ndarray) -> np.ndarray:
    """Positions ``[len(t)*len(h)*len(w), 3]`` of a token grid flattened time-major (t, h, w)."""
    tt, hh, ww = np.meshgrid(np.asarray(t, dtype=np.int64), np.asarray(h, dtype=np.int64),
                             np.asarray(w, dtype=np.int64), indexing="ij")
    return np.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)], axis=1)


def _spread(grid_len: int, count: int) -> np.ndarray:
    """``count`` integer positions spread over ``0..grid_len-1`` (``np.linspace`` then truncation,
    as the official code does for the coarse FramePack groups)."""
    return np.linspace(0, grid_len - 1, count).astype(np.int64)


def s2v_token_positions(latent_frames: int, latent_height: int, latent_width: int,
                        with_motion: bool, patch_size: tuple[int, int, int] = (1, 2, 2),
                        frame_buckets: tuple[int, int, int] = (1, 2, 16)) -> dict[str, np.ndarray]:
    """Integer RoPE positions of every segment of the S2V sequence, in sequence order.

    Args:
        latent_frames, latent_height, latent_width: size of the noisy latent (F, H, W).
        with_motion: whether FramePack motion tokens follow the reference tokens.
        patch_size: the transformer's patch size (t, h, w).
        frame_buckets: FramePack groups, newest first: (post, 2x, 4x) latent frame counts.

    Returns a dict (insertion-ordered) ``segment name -> int64 array [tokens, 3]`` with segments
    ``noisy``, ``reference`` and, with motion, ``motion_post``, ``motion_2x``, ``motion_4x``:

    - noisy: t = 0..F-1 and the patch-grid positions;
    - reference: t = 30, patch-grid positions;
    - post (newest motion frame, patch 1x2x2): t = -1, patch-grid positions;
    - 2x (2 frames, kernel 2x4x4): t = -3, positions spread ``linspace(0, h-1, H//4)``;
    - 4x (16 frames, kernel 4x8x8): t = -19, -14, -9, -4, positions spread ``linspace(0, h-1, H//8)``.
    """
    pt, ph, pw = patch_size
    f, h, w = latent_frames // pt, latent_height // ph, latent_width // pw
    out = {
        "noisy": grid_positions(range(f), range(h), range(w)),
        "reference": grid_positions([REFERENCE_TIME_POSITION], range(h), range(w)),
    }
    if with_motion:
        # Official layout: group g covers the time range that starts at -(frames of g and all newer
        # groups); its temporally compressed frames are spread over that range with linspace and
        # truncation. Spatially, the coarse groups spread their fewer tokens over the patch grid.
        newer = 0
        for name, frames, compression in zip(("motion_post", "motion_2x", "motion_4x"),
                                             frame_buckets, (1, 2, 4)):
            first = newer + frames  # distance of the group's oldest frame from the clip start
            t = -np.linspace(first, first - frames + 1, frames // compression).astype(np.int64)
            out[name] = grid_positions(t, _spread(h, latent_height // (ph * compression)),
                                       _spread(w, latent_width // (pw * compression)))
            newer = first
    return out


def rope_cos_sin(positions: np.ndarray | torch.Tensor, head_dim: int, theta: float = 10000.0,
                 device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables ``[tokens, head_dim // 2]`` (float32) for integer positions ``[tokens, 3]``.

    Angles are computed in float64 (as the official complex128 tables) and stored as float32.
    """
    pos = torch.as_tensor(np.asarray(positions), dtype=torch.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must be [tokens, 3], got {tuple(pos.shape)}")
    if pos.numel() and pos.abs().max().item() >= MAX_POSITION:
        raise ValueError(f"RoPE position out of the table range (|p| < {MAX_POSITION})")
    angles = torch.cat([pos[:, axis:axis + 1] * inv[None, :]
                        for axis, inv in enumerate(axis_inverse_frequencies(head_dim, theta))], dim=1)
    return (angles.cos().to(device=device, dtype=torch.float32),
            angles.sin().to(device=device, dtype=torch.float32))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, S, heads, head_dim]`` by per-token angles; returns float32.

    ``cos``/``sin`` are ``[S, head_dim // 2]``; channel pair (2i, 2i+1) is the complex number
    ``x[2i] + j*x[2i+1]`` multiplied by ``cos + j*sin``.
    """
    xf = x.float().unflatten(-1, (-1, 2))
    real, imag = xf[..., 0], xf[..., 1]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    return torch.stack([real * c - imag * s, real * s + imag * c], dim=-1).flatten(-2)
