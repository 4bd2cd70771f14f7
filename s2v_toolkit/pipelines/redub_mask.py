"""Masked generation in latent space for the re-dub: the latent mask and the per-step blend.

The generator works on VAE latents (8x8 pixels and 4 frames per latent cell, causal in time: latent 0
is the first frame alone, then 4 frames per latent). The crop-space mouth mask is brought onto that
grid by a max over each cell (a cell with any mouth pixel is generated), then grown by
``dilation`` cells so the model has room to move the lips and blend the seam.

Blending (as in blended latent diffusion / RePaint without resampling): the denoising loop starts
from noise inside the mask and from the original crop's latent noised to the first step's level
outside it; after every solver step, the cells outside the mask are replaced by the original latent
re-noised (with the same noise draw) to the noise level the step reached. The model therefore sees
the real footage around the mouth at every step, at the noise level it expects, and only invents the
mouth. After ``blend_until`` of the steps the replacement stops and the whole latent evolves freely
for the remaining (low-noise) steps, which lets the model smooth the seam; the pixel composite puts
the footage back outside the mask anyway. With ``blend_until = 1`` (default) the last replacement is
at sigma 0: outside the mask the final latent equals the original latent exactly.

``strength`` < 1 starts later in the schedule from the re-noised original everywhere (img2img): the
original mouth's shape survives partly; 1 = the mouth is generated from pure noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LatentBlendParams:
    dilation: int = 1           # latent cells (8 px each) the down-sampled mask is grown by
    blend_until: float = 1.0    # fraction of the (run) steps after which the known region is replaced
    strength: float = 1.0       # 1: mouth from pure noise; < 1: start from the re-noised original

    def __post_init__(self) -> None:
        if self.dilation < 0:
            raise ValueError(f"latent mask dilation must be >= 0, got {self.dilation}")
        if not 0.0 <= self.blend_until <= 1.0:
            raise ValueError(f"blend_until must be in [0, 1], got {self.blend_until}")
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {self.strength}")

    def to_dict(self) -> dict:
        return asdict(self)


def latent_mask(pixel_masks: np.ndarray, *, spatial_stride: int = 8, temporal_stride: int = 4,
                dilation: int = 1, causal_first: bool = False) -> torch.Tensor:
    """Down-sample crop-space masks ``(T, H, W)`` (values in [0, 1]; an array, or a
    :class:`.redub_crop.MaskWindows`) to a binary latent mask ``(1, 1, t, h, w)``.

    Time: with ``causal_first`` the first frame is a latent of its own (a clip encoded on its own);
    otherwise every ``temporal_stride`` consecutive frames form one latent (a clip encoded after a
    1 + 4k frame motion prefix, as the re-dub does). Space: one cell per ``spatial_stride`` pixels.
    A cell is 1 if any of its pixels is > 0, then the mask is dilated by ``dilation`` cells.
    """
    # binary throughout, so "any pixel > 0" per cell is computed on booleans with numpy (exact, and
    # much cheaper than float max-pools over whole crops)
    if hasattr(pixel_masks, "any_positive"):  # masks kept as windows (:class:`.redub_crop.MaskWindows`)
        m = pixel_masks
    else:
        m = np.asarray(pixel_masks)
    if isinstance(m, np.ndarray) and m.dtype != np.float32:
        m = m.astype(np.float32)  # as the masks were always read: a value that rounds to 0 is not "> 0"
    if len(m.shape) != 3:
        raise ValueError(f"pixel masks must be (T, H, W), got {tuple(m.shape)}")
    t, h, w = m.shape
    if h % spatial_stride or w % spatial_stride:
        raise ValueError(f"mask size {h}x{w} is not a multiple of {spatial_stride}")
    if causal_first:
        if (t - 1) % temporal_stride:
            raise ValueError(f"{t} frames: expected 1 + {temporal_stride}k for a causal clip")
        starts = [0] + list(range(1, t, temporal_stride))
    else:
        if t % temporal_stride:
            raise ValueError(f"{t} frames: expected a multiple of {temporal_stride}")
        starts = list(range(0, t, temporal_stride))
    s = spatial_stride
    cells_np = np.zeros((len(starts), 1, h // s, w // s), np.float32)  # (t', 1, h, w)
    for i, a in enumerate(starts):
        b = 1 if causal_first and i == 0 else a + temporal_stride
        if isinstance(m, np.ndarray):
            any_frame = m[a] > 0
            for fr in m[a + 1:b]:
                any_frame |= fr > 0
        else:
            any_frame = m.any_positive(a, b)
        cells_np[i, 0] = any_frame.reshape(h // s, s, w // s, s).any(axis=(1, 3))
    cells = torch.from_numpy(cells_np)
    if dilation > 0:
        cells = F.max_pool2d(cells, 2 * dilation + 1, stride=1, padding=dilation)
    return cells.permute(1, 0, 2, 3)[None]                                    # (1, 1, t', h, w)


class LatentBlend:
    """Known-region replacement for one clip's denoising loop (see the module docstring).

    ``original``: clean latent ``(B, C, F, h, w)`` of the source crop; ``mask``: ``(1, 1, F, h, w)``
    with 1 where the model generates; ``noise``: the clip's noise draw (same shape as ``original``);
    ``scheduler``: a flow-matching scheduler on which ``set_timesteps`` was called.

    ``observer(step_index, latents, known)`` (a test hook) is called after every replacement with
    the latents and the re-noised original they were blended with.
    """

    def __init__(self, original: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, scheduler,
                 params: LatentBlendParams = LatentBlendParams(),
                 observer: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None):
        if original.shape != noise.shape:
            raise ValueError(f"noise {tuple(noise.shape)} does not match the latent {tuple(original.shape)}")
        if mask.shape[2:] != original.shape[2:]:
            raise ValueError(f"latent mask {tuple(mask.shape)} does not match the latent {tuple(original.shape)}")
        self.original, self.noise, self.scheduler, self.params = original, noise, scheduler, params
        self.mask = mask.to(original.dtype)
        self.observer = observer
        n = scheduler.num_steps
        # strength s: skip the first (1 - s) of the schedule, like img2img
        self.start_index = min(int(round((1.0 - params.strength) * n)), n - 1)
        run = n - self.start_index
        self.stop_index = self.start_index + int(math.ceil(params.blend_until * run))

    def known(self, index: int) -> torch.Tensor:
        """The original latent at the noise level of schedule index ``index`` (0..N)."""
        return self.scheduler.add_noise(self.original, self.noise, index)

    def initial(self) -> torch.Tensor:
        """The latent the loop starts from (at ``start_index``)."""
        start = self.known(self.start_index)
        if self.start_index == 0:  # strength 1: pure noise inside the mask
            start = self.mask * self.noise.to(start.dtype) + (1.0 - self.mask) * start
        return start

    def after_step(self, step_index: int, latents: torch.Tensor) -> torch.Tensor:
        """Called with the latent after solver step ``step_index`` (now at level ``step_index + 1``)."""
        if step_index >= self.stop_index:
            return latents
        known = self.known(step_index + 1)
        out = self.mask * latents + (1.0 - self.mask) * known.to(latents.dtype)
        if self.observer is not None:
            self.observer(step_index, out, known)
        return out
