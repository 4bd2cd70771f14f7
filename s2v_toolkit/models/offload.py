"""Block-wise weight offload for the S2V transformer: run it with a fraction of its weights on the GPU.

The 40 transformer blocks hold 86% of the S2V-14B's weights (28 of 32.6 GB in bf16). With
:func:`enable_block_offload` the blocks' parameters and buffers live in (pinned) host memory and
only ``prefetch + 1`` blocks are on the device at a time, in fixed GPU slots:

* before block ``i`` runs, blocks ``i+1 .. i+prefetch`` are copied host -> device on a side CUDA
  stream into their slots (a slot is reused only after the block that held it has finished, which
  the copy stream waits for with an event), so the copies overlap block ``i``'s compute;
* the compute stream waits for block ``i``'s copy event, block ``i``'s tensors are pointed at its
  slot (``param.data``), the block runs, and its tensors are pointed back at the host copies;
* the last blocks prefetch the first ones again for the next forward (when the block count is a
  multiple of ``prefetch + 1``, as 40 is for prefetch 1, 3, 4, 7, ...).

Everything outside the blocks (embeddings, audio encoder and injectors, head) is moved to the
device and stays there. Device memory for weights: the non-block part (about 4.6 GB in bf16) plus
``prefetch + 1`` block slots (0.7 GB each in bf16).

The blocks compute exactly what they compute when resident (the same kernels on the same values),
so outputs are bitwise equal. It composes with the fused blocks (it works through forward hooks,
around whatever ``forward`` a block has) and with :mod:`s2v_toolkit.models.fp8` (the fp8 buffers
are offloaded like any other tensor; convert to fp8 first, then offload).

Without CUDA (``device`` is the CPU) the same bookkeeping runs with synchronous copies: that is
what the CPU tests check. :func:`disable_block_offload` moves the blocks back onto the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

__all__ = ["BlockOffloader", "enable_block_offload", "disable_block_offload", "block_offload_of"]


@dataclass
class _BlockTensors:
    """One block's tensors: where they live in host memory and how to re-point them."""

    entries: list[tuple[nn.Module, str, bool]]  # (owning module, attribute name, is_parameter)
    host: list[torch.Tensor] = field(default_factory=list)


class BlockOffloader:
    """The offload state of one model (see the module docstring). Made by :func:`enable_block_offload`."""

    def __init__(self, model: nn.Module, device: torch.device | str, prefetch: int = 1, pin_memory: bool = True):
        self.model = model
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.blocks = list(model.blocks)
        n = len(self.blocks)
        if prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {prefetch}")
        self.prefetch = min(prefetch, n - 1)
        self.n_slots = self.prefetch + 1
        self.is_cuda = self.device.type == "cuda"
        pin = pin_memory and torch.cuda.is_available()

        # Everything except the blocks goes to the device and stays.
        block_ids = {id(t) for b in self.blocks for t in list(b.parameters()) + list(b.buffers())}
        with torch.no_grad():
            for module in model.modules():
                for store in (module._parameters, module._buffers):
                    for name, t in store.items():
                        if t is not None and id(t) not in block_ids and t.device != self.device:
                            if isinstance(t, nn.Parameter):
                                t.data = t.data.to(self.device)
                            else:
                                store[name] = t.to(self.device)

        # Host copies of each block (pinned, for asynchronous copies), block tensors pointed at them.
        self.tensors: list[_BlockTensors] = []
        for block in self.blocks:
            bt = _BlockTensors(entries=[])
            for module in block.modules():
                for is_param, store in ((True, module._parameters), (False, module._buffers)):
                    for name, t in store.items():
                        if t is None:
                            continue
                        host = torch.empty(t.shape, dtype=t.dtype, device="cpu", pin_memory=pin)
                        host.copy_(t.detach())
                        bt.entries.append((module, name, is_param))
                        bt.host.append(host)
            self.tensors.append(bt)
            self._point(block_index=len(self.tensors) - 1, tensors=bt.host)
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()

        # Device slots shaped like a block (all blocks of the model have the same layout).
        layout = [(h.shape, h.dtype) for h in self.tensors[0].host]
        for i, bt in enumerate(self.tensors):
            if [(h.shape, h.dtype) for h in bt.host] != layout:
                raise ValueError(f"block {i} differs in layout from block 0: cannot share device slots")
        self.slots = [[torch.empty(s, dtype=d, device=self.device) for s, d in layout] for _ in range(self.n_slots)]
        self.slot_block = [-1] * self.n_slots  # which block a slot holds (or is being filled with)
        self.copy_stream = torch.cuda.Stream(self.device) if self.is_cuda else None
        self.copied = [None] * self.n_slots  # event: the slot's copy is complete
        self.released = [None] * self.n_slots  # event: the slot's last block has finished computing
        self.copies = 0  # host -> device block copies issued (for tests and reports)
        self.handles = []
        for i, block in enumerate(self.blocks):
            self.handles.append(block.register_forward_pre_hook(self._make_pre_hook(i)))
            self.handles.append(block.register_forward_hook(self._make_post_hook(i)))

    # -- internals ----------------------------------------------------------------------------
    def _point(self, block_index: int, tensors: list[torch.Tensor]) -> None:
        for (module, name, is_param), t in zip(self.tensors[block_index].entries, tensors):
            if is_param:
                module._parameters[name].data = t
            else:
                module._buffers[name] = t

    def _issue(self, j: int) -> None:
        """Start copying block ``j`` into its slot (no-op when the slot already holds it)."""
        s = j % self.n_slots
        if self.slot_block[s] == j:
            return
        self.slot_block[s] = j
        self.copies += 1
        slot, host = self.slots[s], self.tensors[j].host
        if not self.is_cuda:
            for dst, src in zip(slot, host):
                dst.copy_(src)
            return
        with torch.cuda.stream(self.copy_stream):
            if self.released[s] is not None:  # the slot's previous block must be done with it
                self.copy_stream.wait_event(self.released[s])
            for dst, src in zip(slot, host):
                dst.copy_(src, non_blocking=True)
            event = torch.cuda.Event()
            event.record(self.copy_stream)
            self.copied[s] = event

    def _make_pre_hook(self, i: int):
        def pre_hook(module, args):
            n = len(self.blocks)
            for j in range(i, i + self.prefetch + 1):  # this block, then the next ones
                if j >= n and n % self.n_slots:
                    # Past the last block, the next forward's first blocks go into slots whose blocks
                    # may not have run yet unless slots line up with the block count: skip then.
                    break
                self._issue(j % n)
            s = i % self.n_slots
            if self.is_cuda and self.copied[s] is not None:
                torch.cuda.current_stream(self.device).wait_event(self.copied[s])
            self._point(i, self.slots[s])
            return None

        return pre_hook

    def _make_post_hook(self, i: int):
        def post_hook(module, args, output):
            s = i % self.n_slots
            if self.is_cuda:
                event = torch.cuda.Event()
                event.record(torch.cuda.current_stream(self.device))
                self.released[s] = event
            self._point(i, self.tensors[i].host)
            return None

        return post_hook

    # -- public -------------------------------------------------------------------------------
    def device_bytes(self) -> int:
        """Bytes of the device slots (the blocks' share of device memory)."""
        return sum(t.numel() * t.element_size() for slot in self.slots for t in slot)

    def host_bytes(self) -> int:
        return sum(h.numel() * h.element_size() for bt in self.tensors for h in bt.host)

    def remove(self) -> None:
        """Stop offloading: blocks back on the device (resident), hooks and slots gone."""
        for h in self.handles:
            h.remove()
        self.handles = []
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
        with torch.no_grad():
            for i, bt in enumerate(self.tensors):
                self._point(i, [h.to(self.device) for h in bt.host])
        self.slots = []
        self.tensors = []
        if getattr(self.model, "_block_offloader", None) is self:
            del self.model._block_offloader


def enable_block_offload(model: nn.Module, device: torch.device | str, prefetch: int = 1,
                         pin_memory: bool = True) -> BlockOffloader:
    """Keep ``model.blocks`` in host memory and stream each block to ``device`` just before it runs,
    ``prefetch`` blocks ahead on a side CUDA stream; everything else is moved to ``device``.

    ``model`` may start on the CPU (weights loaded there) or on the device (its blocks are copied
    out and their device memory freed). Returns the :class:`BlockOffloader` (also kept as
    ``model._block_offloader``); undo with :func:`disable_block_offload`.
    """
    if block_offload_of(model) is not None:
        raise ValueError("block offload is already enabled on this model")
    offloader = BlockOffloader(model, device, prefetch, pin_memory)
    model._block_offloader = offloader  # plain attribute (not a submodule: no state_dict entries)
    return offloader


def disable_block_offload(model: nn.Module) -> nn.Module:
    """Undo :func:`enable_block_offload`: all blocks resident on the offload device again."""
    offloader = block_offload_of(model)
    if offloader is not None:
        offloader.remove()
    return model


def block_offload_of(model: nn.Module) -> BlockOffloader | None:
    return model.__dict__.get("_block_offloader")
