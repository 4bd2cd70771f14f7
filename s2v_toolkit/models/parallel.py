"""Running one S2V denoising step on several GPUs: CFG-parallel and Ulysses sequence parallel.

Both work over ``torch.distributed`` (NCCL on GPUs; gloo on CPU, which is how the tests check them)
and compute the same function as the single-process code; only the floating-point summation order
inside a few products differs.

**CFG-parallel** (:func:`cfg_parallel_prediction`, 2 ranks): rank 0 runs the conditional forward,
rank 1 the unconditional one, the two outputs are exchanged with ``all_gather`` and both ranks
combine them with :func:`~s2v_toolkit.pipelines.guidance.combine_guidance`, so both hold the same
guided prediction afterwards (same arguments and result as ``guided_prediction``).

**Ulysses sequence parallel** (degree P, ``num_heads % P == 0``; the 14B model's 40 heads allow
P = 2, 4, 5, 8): every rank holds a contiguous shard of ``ceil(S / P)`` tokens of the
``[noisy | reference | motion]`` sequence. All work in a block except self-attention is per token,
given three per-token facts that are sharded alongside the tokens:

* the modulation segment (noisy or conditioning): the sequence is ordered noisy first, so a shard's
  noisy tokens are its first ``clamp(n_noisy - start, 0, len)`` rows and the blocks take that
  local count as their ``n_noisy``;
* the RoPE angles: the cos/sin rows of the shard's tokens;
* the latent frame of a noisy token (the audio injector attends from each noisy token to its own
  frame's audio tokens): :func:`_inject_audio_sharded` splits the shard's noisy rows at frame
  boundaries (whole frames batched, at most two partial frames at the shard's ends).

Text cross-attention, the FFN, norms, gates and the output head are per token. Self-attention
needs every token: :func:`ulysses_attention` turns the sequence-sharded q/k/v ``[B, S/P, H, d]``
into head-sharded ``[B, S, H/P, d]`` with one all-to-all, runs the ordinary
:func:`~s2v_toolkit.models.attention.attention` (whatever backend is selected) on its H/P heads,
and turns the result back with a second all-to-all. When S is not a multiple of P the sequence is
zero-padded at its end; padded keys are cut off before attention (so no mask is needed) and the
padded rows are dropped at the end. The head runs on each shard and the outputs are all-gathered.

Everything before the blocks (patch/pose/motion embeddings, audio encoder, time and text
embeddings) is small and computed in full on every rank. The single-GPU code path is untouched:
:func:`sequence_parallel_forward` reuses the model's own modules and only replaces, for the
duration of the call, each block's ``self_attn.forward`` on the instance (and, when the fused blocks
of :mod:`s2v_toolkit.models.fused` are enabled, that module's self-attention helper).

Limits: no autograd through the collectives (inference only). All ranks must be given the same
inputs. Replacing a function of the fused module is process-wide while the call runs: do not run a
one-GPU fused forward of another model in another thread of the same process meanwhile.
"""

from __future__ import annotations

import math
import types
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from s2v_toolkit.models.attention import attention
from s2v_toolkit.models.rope import apply_rope
from s2v_toolkit.models.s2v_transformer import WanS2VTransformer, _linear

__all__ = ["cfg_parallel_prediction", "seq_to_heads", "heads_to_seq", "ulysses_attention",
           "shard_bounds", "sequence_parallel_forward", "SequenceParallelTransformer",
           "cfg_and_sequence_groups"]


# ----------------------------------------------------------------------------------------------
# CFG-parallel
# ----------------------------------------------------------------------------------------------
def _gather_pair(out: torch.Tensor, group: dist.ProcessGroup | None) -> tuple[torch.Tensor, torch.Tensor]:
    out = out.contiguous()
    parts = [torch.empty_like(out) for _ in range(2)]
    dist.all_gather(parts, out, group=group)
    return parts[0], parts[1]


def cfg_parallel_prediction(model: Callable[..., Any], shared: Mapping[str, Any], cond: Mapping[str, Any],
                            uncond: Mapping[str, Any], scale: float,
                            group: dist.ProcessGroup | None = None,
                            static: Mapping[str, Any] | None = None) -> Any:
    """``guided_prediction`` with the two branches on the two ranks of ``group`` (default: world).

    Rank 0 evaluates ``model(**shared, **cond, **static)``, rank 1 the same with ``uncond``; every
    rank returns ``uncond + scale * (cond - uncond)``. With ``scale <= 1`` both ranks run the
    conditional branch only (no communication), as ``guided_prediction`` does. The model output may
    be a tensor or a list of tensors (Wan style).
    """
    # The guidance formula lives with the pipelines; imported here so that models never import
    # pipelines at import time (pipelines build on models).
    from s2v_toolkit.pipelines.guidance import check_guidance_inputs, combine_guidance, guidance_active

    if dist.get_world_size(group) != 2:
        raise ValueError(f"CFG-parallel needs a group of 2 ranks, got {dist.get_world_size(group)}")
    static = check_guidance_inputs(shared, cond, uncond, static)
    if not guidance_active(scale):
        return model(**shared, **cond, **static)
    branch = cond if dist.get_rank(group) == 0 else uncond
    out = model(**shared, **branch, **static)
    if isinstance(out, torch.Tensor):
        out_cond, out_uncond = _gather_pair(out, group)
        return combine_guidance(out_cond, out_uncond, scale)
    if isinstance(out, (list, tuple)):
        pairs = [_gather_pair(o, group) for o in out]
        return [combine_guidance(c, u, scale) for c, u in pairs]
    raise TypeError(f"model output must be a tensor or a list of tensors, got {type(out).__name__}")


def cfg_and_sequence_groups(sequence_degree: int) -> tuple[dist.ProcessGroup, dist.ProcessGroup]:
    """(cfg_group, sequence_group) of this rank for CFG x Ulysses on ``2 * sequence_degree`` ranks.

    Ranks ``0 .. P-1`` run the conditional branch, ranks ``P .. 2P-1`` the unconditional one; the
    sequence groups are those two halves, the CFG groups the pairs ``(r, r + P)``. Must be called
    by every rank (``new_group`` is collective). Use as
    ``cfg_parallel_prediction(SequenceParallelTransformer(model, seq_group), ..., group=cfg_group)``.
    """
    world, rank = dist.get_world_size(), dist.get_rank()
    if world != 2 * sequence_degree:
        raise ValueError(f"CFG x sequence parallel of degree {sequence_degree} needs "
                         f"{2 * sequence_degree} ranks, the world has {world}")
    p = sequence_degree
    seq_groups = [dist.new_group(list(range(h * p, (h + 1) * p))) for h in range(2)]
    cfg_groups = [dist.new_group([r, r + p]) for r in range(p)]
    return cfg_groups[rank % p], seq_groups[rank // p]


# ----------------------------------------------------------------------------------------------
# Ulysses all-to-all and attention
# ----------------------------------------------------------------------------------------------
def _degree(group: dist.ProcessGroup | None) -> int:
    return dist.get_world_size(group)


def seq_to_heads(x: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """Sequence-sharded ``[B, L/P, H, d]`` -> head-sharded ``[B, L, H/P, d]`` (one all-to-all).

    Rank r receives heads ``r*H/P .. (r+1)*H/P - 1`` of every rank's shard, in rank (= sequence) order.
    """
    p = _degree(group)
    b, ls, h, d = x.shape
    if h % p:
        raise ValueError(f"{h} heads are not divisible by the sequence-parallel degree {p}")
    send = x.reshape(b, ls, p, h // p, d).permute(2, 0, 1, 3, 4).contiguous()  # [P, B, Ls, H/P, d]
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)  # recv[j] = rank j's shard of my heads
    return recv.permute(1, 0, 2, 3, 4).reshape(b, p * ls, h // p, d)


def heads_to_seq(x: torch.Tensor, group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """Head-sharded ``[B, L, H/P, d]`` -> sequence-sharded ``[B, L/P, H, d]`` (inverse of seq_to_heads)."""
    p = _degree(group)
    b, length, hp, d = x.shape
    if length % p:
        raise ValueError(f"sequence length {length} is not divisible by the degree {p}")
    send = x.reshape(b, p, length // p, hp, d).transpose(0, 1).contiguous()  # [P, B, Ls, H/P, d]
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)  # recv[j] = my tokens, head group j
    return recv.permute(1, 2, 0, 3, 4).reshape(b, length // p, p * hp, d)


def ulysses_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      group: dist.ProcessGroup | None = None, valid_len: int | None = None) -> torch.Tensor:
    """Full self-attention of a sequence sharded over the ranks of ``group``.

    ``q``, ``k``, ``v``: this rank's contiguous shard ``[B, L/P, H, d]`` (rank r holds tokens
    ``r*L/P ..``). ``valid_len``: tokens at global positions ``>= valid_len`` are padding: they are
    not attended to and their output rows are zero. Returns this rank's shard of the output.
    """
    b = q.shape[0]
    qkv = seq_to_heads(torch.cat([q, k, v], dim=0), group)  # one all-to-all for all three
    qh, kh, vh = qkv.split(b, dim=0)
    length = qh.shape[1]
    n = length if valid_len is None else valid_len
    if not 0 < n <= length:
        raise ValueError(f"valid_len {valid_len} outside 1..{length}")
    out = attention(qh[:, :n], kh[:, :n], vh[:, :n])
    if n < length:
        out = F.pad(out, (0, 0, 0, 0, 0, length - n))
    return heads_to_seq(out, group)


# ----------------------------------------------------------------------------------------------
# Sequence-parallel transformer forward
# ----------------------------------------------------------------------------------------------
def shard_bounds(seq_len: int, degree: int, rank: int) -> tuple[int, int, int]:
    """(start, stop, shard_len) of ``rank``'s contiguous shard of a sequence padded to a multiple
    of ``degree``; ``stop - start == shard_len`` (positions ``>= seq_len`` are padding)."""
    shard = math.ceil(seq_len / degree)
    return rank * shard, (rank + 1) * shard, shard


def _ulysses_self_attn_forward(attn: nn.Module, group: dist.ProcessGroup | None, valid_len: int,
                               x: torch.Tensor, context: torch.Tensor | None = None,
                               rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """MultiHeadAttention.forward (self-attention) on a token shard, attention via Ulysses."""
    if context is not None:
        raise RuntimeError("the Ulysses forward replaces self-attention only")
    heads = (attn.num_heads, -1)
    q = attn.norm_q(_linear(attn.q, x)).unflatten(-1, heads)
    k = attn.norm_k(_linear(attn.k, x)).unflatten(-1, heads)
    v = _linear(attn.v, x).unflatten(-1, heads)
    if rope is not None:
        q = apply_rope(q, *rope).to(v.dtype)
        k = apply_rope(k, *rope).to(v.dtype)
    return _linear(attn.o, ulysses_attention(q, k, v, group, valid_len).flatten(2))


@contextmanager
def _ulysses_self_attention(model: WanS2VTransformer, group: dist.ProcessGroup | None,
                            valid_len: int) -> Iterator[None]:
    """Swap every block's self-attention for the Ulysses one while the context is open.

    Plain blocks call ``block.self_attn``: its ``forward`` is replaced on the instance. Fused blocks
    (:mod:`s2v_toolkit.models.fused`) call the module function ``_attention_fused``: it is replaced
    in that module, for self-attention only (``context is None``), for the duration of the call.
    """
    from s2v_toolkit.models import fused as fused_module

    for block in model.blocks:
        own = block.__dict__.get("forward")
        if own is not None and getattr(own, "__func__", None) is not fused_module._fused_block_forward:
            raise RuntimeError("a block's forward is replaced by something the sequence-parallel "
                               "forward does not know; only the plain and the fused blocks are supported")
    attns = [block.self_attn for block in model.blocks]
    if any("forward" in a.__dict__ for a in attns):
        raise RuntimeError("a block's self_attn.forward is already replaced (nested sequence-parallel call?)")
    fused = any("forward" in block.__dict__ for block in model.blocks)
    original_fused = fused_module._attention_fused
    if fused and getattr(original_fused, "_ulysses", False):
        raise RuntimeError("the fused attention is already replaced (nested sequence-parallel call?)")

    def fused_self_attention(attn, kernels, x, context, rope):
        if context is not None:  # text cross-attention: per token, unchanged
            return original_fused(attn, kernels, x, context, rope)
        cos, sin = rope if rope is not None else (None, None)
        lin = fused_module._linear
        q = kernels.qk_norm_rope(lin(attn.q, x), attn.norm_q.weight, attn.norm_q.eps, attn.num_heads, cos, sin)
        k = kernels.qk_norm_rope(lin(attn.k, x), attn.norm_k.weight, attn.norm_k.eps, attn.num_heads, cos, sin)
        v = lin(attn.v, x).unflatten(-1, (attn.num_heads, -1))
        return lin(attn.o, ulysses_attention(q, k, v, group, valid_len).flatten(2))

    fused_self_attention._ulysses = True
    try:
        for a in attns:
            a.forward = types.MethodType(
                lambda self, x, context=None, rope=None: _ulysses_self_attn_forward(
                    self, group, valid_len, x, context, rope), a)
        if fused:
            fused_module._attention_fused = fused_self_attention
        yield
    finally:
        for a in attns:
            a.__dict__.pop("forward", None)
        if fused:
            fused_module._attention_fused = original_fused


def _inject_audio_sharded(model: WanS2VTransformer, index: int, x: torch.Tensor, start: int,
                          n_noisy_local: int, tokens_per_frame: int, audio_local: torch.Tensor,
                          audio_global: torch.Tensor) -> torch.Tensor:
    """AudioInjector.forward for the shard ``x`` whose first row is global token ``start``.

    The shard's noisy rows ``[start, start + n_noisy_local)`` are cut at latent-frame boundaries;
    a run of whole frames goes through the injector as one batch of frames (as in the full model),
    a partial frame at either end as a batch of one frame with that frame's audio.
    """
    if n_noisy_local <= 0:
        return x
    inj = model.audio_injector
    t = tokens_per_frame
    stop = start + n_noisy_local
    first_full, last_full = -(-start // t) * t, (stop // t) * t
    if first_full < last_full:
        cuts = sorted({start, first_full, last_full, stop})
    else:  # no whole frame: one partial frame, or the end of one and the start of the next
        cuts = sorted({start, first_full, stop}) if start < first_full < stop else [start, stop]
    b, _, n_tok, d = audio_local.shape
    for s, e in zip(cuts[:-1], cuts[1:]):
        f0 = s // t
        nf = (e - s) // t if (s % t == 0 and e % t == 0) else 1
        rows = x[:, s - start:e - start].reshape(b * nf, (e - s) // nf, d)
        h = inj.injector_adain_layers[index](rows, audio_global[:, f0:f0 + nf].reshape(b * nf, d))
        out = inj.injector[index](h, context=audio_local[:, f0:f0 + nf].reshape(b * nf, n_tok, d))
        x[:, s - start:e - start] += out.reshape(b, e - s, d)
    return x


def sequence_parallel_forward(model: WanS2VTransformer, latents: torch.Tensor, timestep: torch.Tensor,
                              text_embeddings: torch.Tensor, audio_features: torch.Tensor,
                              ref_latents: torch.Tensor, motion_latents: torch.Tensor | None = None,
                              pose_latents: torch.Tensor | None = None, drop_motion_frames: bool = False,
                              group: dist.ProcessGroup | None = None) -> torch.Tensor:
    """:meth:`WanS2VTransformer.forward` with the token sequence sharded over ``group`` (Ulysses).

    Same arguments and result as the model's forward (every rank returns the full prediction);
    every rank must pass the same inputs. Inference only (runs under ``torch.no_grad``).
    """
    cfg = model.config
    p, rank = dist.get_world_size(group), dist.get_rank(group)
    if cfg.num_heads % p:
        raise ValueError(f"{cfg.num_heads} heads are not divisible by the sequence-parallel degree {p}")
    with torch.no_grad():
        # The same token sequence and conditioning as the one-GPU forward (cheap next to the blocks).
        t = model.embed_inputs(latents, timestep, text_embeddings, audio_features, ref_latents,
                               motion_latents, pose_latents, drop_motion_frames)
        x, n_noisy, e, e0, context = t.x, t.n_noisy, t.e, t.e0, t.context
        audio_local, audio_global = t.audio_local, t.audio_global
        frames, height, width = t.frames, t.height, t.width
        cos, sin = t.rope
        seq_len = x.shape[1]

        # This rank's shard of tokens and of the per-token metadata (padding: zeros, angle 0).
        start, stop, shard = shard_bounds(seq_len, p, rank)
        pad = shard * p - seq_len
        x = F.pad(x, (0, 0, 0, pad))[:, start:stop].contiguous()
        cos = F.pad(cos, (0, 0, 0, pad), value=1.0)[start:stop]
        sin = F.pad(sin, (0, 0, 0, pad))[start:stop]
        n_local = min(max(n_noisy - start, 0), shard)

        with _ulysses_self_attention(model, group, seq_len):
            for i, block in enumerate(model.blocks):
                x = block(x, e0, n_local, (cos, sin), context)
                j = model._injector_after_block.get(i)
                if j is not None:
                    x = _inject_audio_sharded(model, j, x, start, n_local, n_noisy // frames,
                                              audio_local, audio_global)

        out = model.head(x, e).contiguous()  # per token; non-noisy and padding rows dropped below
        gathered = [torch.empty_like(out) for _ in range(p)]
        dist.all_gather(gathered, out, group=group)
        out = torch.cat(gathered, dim=1)[:, :n_noisy]
    return model.unpatchify(out, frames, height, width)


class SequenceParallelTransformer(nn.Module):
    """A :class:`WanS2VTransformer` whose ``forward`` is :func:`sequence_parallel_forward`.

    Drop-in for the model in ``guided_prediction`` / ``denoise_clip`` on every rank of ``group``
    (same inputs on every rank; each rank gets the full prediction).
    """

    def __init__(self, model: WanS2VTransformer, group: dist.ProcessGroup | None = None):
        super().__init__()
        self.model = model
        self.group = group
        self.config = model.config

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor, text_embeddings: torch.Tensor,
                audio_features: torch.Tensor, ref_latents: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return sequence_parallel_forward(self.model, latents, timestep, text_embeddings, audio_features,
                                         ref_latents, group=self.group, **kwargs)
