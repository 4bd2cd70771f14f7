"""Strict, safe loading of plain state-dict files (the VAE and umT5 ``.pth`` files, or safetensors repacks).

Used by :mod:`wan_vae` and :mod:`umt5`. The DiT's sharded checkpoint has its own loader
(``checkpoint.py``); this module only covers single-file state dicts.

Rules (see DESIGN.md "Untrusted files"): ``.pth`` files are opened with ``torch.load(weights_only=True)``
(memory-mapped when the file allows it, so an 11 GB text encoder is not read into anonymous RAM),
``.safetensors`` through the safetensors library. Keys and shapes are checked against the module before
anything is assigned, and the first problem is reported with the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from s2v_toolkit.errors import S2VError


class WeightsError(S2VError):
    """A weights file is missing, unreadable, or does not fit the model it is loaded into."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _shape(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def read_state_dict(path: str | os.PathLike, *, what: str) -> dict[str, torch.Tensor]:
    """Read a plain ``{name: tensor}`` file (``.pth``/``.pt``/``.bin`` or ``.safetensors``) onto the CPU.

    ``what`` names the model for error messages ("Wan2.1 VAE", "umT5 encoder").
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, f"{what} weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(os.fspath(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise WeightsError(path, f"cannot read {what} safetensors file ({_first_line(exc)})") from exc
    else:
        state = _torch_load(path, what)
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        # Some training tools wrap the weights; the official files are plain, but accept the wrapper.
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise WeightsError(path, f"expected a state dict (name -> tensor) for the {what}, got {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(path, f"entry {key!r} is a {type(value).__name__}, not a tensor")
    return dict(state)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _torch_load(path: Path, what: str):
    import pickle

    try:
        # mmap keeps large files page-cache backed; it needs the zip format torch.save writes since 1.6.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc) and "zip" not in str(exc):
            raise WeightsError(path, f"cannot read {what} weights ({_first_line(exc)})") from exc
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            path, f"{what} file holds Python objects other than tensors; refused (weights load with weights_only=True)"
        ) from exc
    except Exception as exc:  # EOFError for truncated files, ...
        raise WeightsError(path, f"cannot read {what} weights safely ({_first_line(exc)})") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(path, f"cannot read {what} weights safely ({_first_line(exc)})") from exc


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    path: str | os.PathLike,
    *,
    what: str,
) -> None:
    """Raise :class:`WeightsError` unless ``state`` has exactly the ``expected`` keys and shapes.

    The message names the first bad key (in the model's own order) and how many more are wrong, so a
    wrong model (e.g. the Wan2.2 VAE given for the Wan2.1 one) is recognisable at a glance.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        extra = f"; {len(unexpected)} unexpected keys, e.g. {unexpected[0]!r}" if unexpected else ""
        raise WeightsError(path, f"missing {what} key {missing[0]!r}{more}{extra}")
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise WeightsError(path, f"unexpected key {unexpected[0]!r}{more} for the {what}")
    bad = [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if bad:
        k = bad[0]
        more = f" (and {len(bad) - 1} more mismatched)" if len(bad) > 1 else ""
        raise WeightsError(
            path,
            f"key {k!r} has shape {_shape(state[k].shape)} but the {what} expects {_shape(expected[k])}{more}",
        )


def assign_state_dict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    *,
    what: str,
    device: torch.device | str,
    dtype: torch.dtype,
) -> nn.Module:
    """Strictly check ``state`` against ``module`` (may live on ``meta``) and assign it, converted
    tensor by tensor to ``device``/``dtype`` so at most one converted tensor exists beside the source."""
    expected = {k: v.shape for k, v in module.state_dict().items()}
    check_state_dict(state, expected, path, what=what)
    converted = {}
    for key in expected:
        tensor = state[key]
        if tensor.is_floating_point():
            tensor = tensor.to(device=device, dtype=dtype)
        else:
            tensor = tensor.to(device=device)
        converted[key] = tensor
    module.load_state_dict(converted, strict=True, assign=True)
    module.requires_grad_(False)
    return module.eval()
