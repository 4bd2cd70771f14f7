"""Import the official Wan2.2 ``WanModel_S2V`` from a checkout, for side-by-side benchmarks.

The ``wan`` package's ``__init__`` imports every pipeline (VAE, T5, decord, librosa, ...), which a
benchmark of the transformer does not need, so the packages on the way (``wan``, ``wan.modules``,
``wan.modules.s2v``, ``wan.distributed``) are registered as bare packages pointing at their folders
and only the transformer's own modules are executed. They still need ``diffusers`` and ``einops``.

``attention``:
- ``"official"``: the checkout's own ``flash_attention`` (FlashAttention 3 through ``flash_attn_interface``
  when importable, else FlashAttention 2; it refuses to run without either);
- ``"sdpa"``: the same function computed by PyTorch's SDPA with cuDNN first (the kernel our ``cudnn``
  backend uses), so that a comparison measures the rest of the model with the same attention kernel.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F


def _bare_package(name: str, folder: Path) -> None:
    if name in sys.modules:
        return
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    module.__package__ = name
    sys.modules[name] = module


def sdpa_flash_attention(q, k, v, q_lens=None, k_lens=None, dropout_p=0.0, softmax_scale=None, q_scale=None,
                         causal=False, window_size=(-1, -1), deterministic=False, dtype=torch.bfloat16,
                         version=None):
    """The official ``flash_attention`` signature computed by SDPA (cuDNN first); lengths become masks."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    out_dtype = q.dtype
    half = (torch.float16, torch.bfloat16)
    q, k, v = (x if x.dtype in half else x.to(dtype) for x in (q, k, v))
    if q_scale is not None:
        q = q * q_scale
    lq, lk = q.shape[1], k.shape[1]
    mask = None
    if k_lens is not None and bool((k_lens < lk).any()):
        mask = (torch.arange(lk, device=q.device)[None, :] < k_lens.to(q.device)[:, None])[:, None, None, :]
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
             SDPBackend.MATH]
    with sdpa_kernel(order, set_priority=True):
        out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, is_causal=causal, scale=softmax_scale)
    out = out.transpose(1, 2)
    if q_lens is not None and bool((q_lens < lq).any()):
        keep = torch.arange(lq, device=q.device)[None, :] < q_lens.to(q.device)[:, None]
        out = out * keep[:, :, None, None]
    return out.to(out_dtype)


def import_official_s2v(repo: str | Path, attention: str = "sdpa"):
    """The ``WanModel_S2V`` class of the checkout at ``repo`` (see the module docstring)."""
    root = Path(repo).resolve() / "wan"
    if not (root / "modules" / "s2v" / "model_s2v.py").is_file():
        raise FileNotFoundError(f"{repo}: not a Wan2.2 checkout (wan/modules/s2v/model_s2v.py missing)")
    for name, folder in (("wan", root), ("wan.modules", root / "modules"), ("wan.modules.s2v", root / "modules" / "s2v"),
                         ("wan.distributed", root / "distributed")):
        _bare_package(name, folder)
    model_s2v = importlib.import_module("wan.modules.s2v.model_s2v")
    if attention == "sdpa":
        use_official_attention(sdpa_flash_attention)
    elif attention != "official":
        raise ValueError(f"attention must be 'official' or 'sdpa', not {attention!r}")
    return model_s2v.WanModel_S2V


# the imported official modules that call ``flash_attention`` by their own global name
ATTENTION_MODULES = ("wan.modules.model", "wan.modules.s2v.model_s2v", "wan.modules.s2v.motioner",
                     "wan.distributed.ulysses")


def use_official_attention(fn) -> None:
    """Make the imported official modules compute ``flash_attention`` with ``fn`` (same signature)."""
    for name in ATTENTION_MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "flash_attention"):
            module.flash_attention = fn


def call_official(official, cfg, inp: dict):
    """One forward of the official ``WanModel_S2V`` on the keyword inputs our forward takes
    (``transformer_inputs``): the layout the official pipeline passes, no pose (zero cond states)."""
    lat = inp["latents"][0]
    seq_len = lat[0].numel() // 4  # noisy tokens: patches of 1 x 2 x 2 latent cells
    return official([lat], t=inp["timestep"], context=[inp["text_embeddings"][0]], seq_len=seq_len,
                    cond_states=torch.zeros_like(inp["latents"]), motion_latents=inp["motion_latents"],
                    ref_latents=inp["ref_latents"], audio_input=inp["audio_features"],
                    motion_frames=[cfg.motion_frames, cfg.motion_latent_frames], drop_motion_frames=False)
