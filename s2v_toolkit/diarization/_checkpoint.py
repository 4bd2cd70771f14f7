"""Reading the neural backend's checkpoints: tensors only, checked against the model's layout."""

from __future__ import annotations

import os
import pickle

import torch
from torch import nn


class _Anything:
    """Stand-in for the non-tensor objects a Lightning checkpoint pickles (task specifications, enums)."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):  # a pickled call of a stand-in (getattr(...)(...)) is another one
        return _Anything()


class _CheckpointUnpickler(pickle.Unpickler):
    """Loads tensors and plain containers; every other class becomes an inert :class:`_Anything`."""

    _ALLOWED = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                ("torch._utils", "_rebuild_parameter"), ("torch", "FloatStorage"), ("torch", "LongStorage"),
                ("torch", "IntStorage"), ("torch", "HalfStorage"), ("torch", "BFloat16Storage")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        return _Anything


class _PickleModule:
    Unpickler = _CheckpointUnpickler
    load = staticmethod(pickle.load)


def read_state(path: str | os.PathLike, lightning: bool = False) -> dict:
    """The state dict of a checkpoint file (a plain state dict, or the ``state_dict`` entry of a training
    checkpoint). ``lightning``: a PyTorch Lightning checkpoint whose other entries pickle objects of the
    training library; they become inert placeholders, and no code from the file runs either way."""
    if lightning:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=False, pickle_module=_PickleModule)
    else:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


def load_into(model: nn.Module, state: dict, path: str | os.PathLike, what: str) -> nn.Module:
    """``model`` with every parameter from ``state`` (no more, no less), in eval mode; ValueError naming the
    file otherwise."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not a {what} checkpoint of this layout "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval()
