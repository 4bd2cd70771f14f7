"""Loading the official Wan2.2-S2V transformer weights (and writing tiny ones for tests).

Layouts read by :func:`load_s2v_transformer`:

- the official folder: ``config.json`` + ``diffusion_pytorch_model.safetensors.index.json`` +
  ``diffusion_pytorch_model-0000{1..4}-of-00004.safetensors`` (or one unsharded
  ``diffusion_pytorch_model.safetensors``);
- a single-file repack (``.safetensors``; bf16, fp16, fp32 or fp8, possibly with a common key prefix
  such as ``model.diffusion_model.``; "scaled fp8" files with ``<name>.scale_weight`` tensors are
  dequantised);
- a ``.pth``/``.pt``/``.bin`` state dict, read with ``torch.load(weights_only=True)`` only.

Memory: the model is built on the ``meta`` device (no storage), every file's header is checked
first (keys and shapes, before any tensor data is read), then tensors are read one shard at a time
straight to the target device and dtype and adopted with ``load_state_dict(assign=True)``. Peak
host memory is therefore one tensor, not a float32 copy of the 16B-parameter model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from s2v_toolkit.errors import S2VError
from s2v_toolkit.models.s2v_transformer import (
    S2VTransformerConfig,
    WanS2VTransformer,
    init_random_weights,
)

__all__ = ["CheckpointError", "load_s2v_transformer", "write_tiny_checkpoint", "read_transformer_config",
           "expected_tensor_shapes", "shard_name"]

INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
SINGLE_NAME = "diffusion_pytorch_model.safetensors"
CONFIG_NAME = "config.json"
#: Key prefixes community repacks put in front of the official names (stripped when found).
KNOWN_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.", "transformer.", "module.")
_FP8_SCALE_SUFFIX = ".scale_weight"
_FP8_MARKERS = ("scaled_fp8",)


class CheckpointError(S2VError):
    """A checkpoint file/folder is missing, unreadable, or does not fit the model."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def shard_name(index: int, count: int) -> str:
    """Official shard file name, 1-based: ``diffusion_pytorch_model-00001-of-00004.safetensors``."""
    return f"diffusion_pytorch_model-{index:05d}-of-{count:05d}.safetensors"


def expected_tensor_shapes(config: S2VTransformerConfig) -> dict[str, tuple[int, ...]]:
    """Official state-dict key -> shape for ``config`` (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = WanS2VTransformer(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def read_transformer_config(folder: str | os.PathLike) -> S2VTransformerConfig:
    """Config from ``folder/config.json``; the S2V-14B config when the folder has none."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        return S2VTransformerConfig.full()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(path, f"cannot read config: {exc}") from None
    return S2VTransformerConfig.from_official_dict(data, source=str(path))


# ----------------------------------------------------------------------------------------------
# Sources: one object per weight file, giving keys/shapes cheaply and tensors lazily.
# ----------------------------------------------------------------------------------------------
@dataclass
class _Source:
    path: Path
    prefix: str = ""

    def raw_keys(self) -> list[str]:
        raise NotImplementedError

    def raw_shape(self, key: str) -> tuple[int, ...]:
        raise NotImplementedError

    def raw_tensor(self, key: str) -> torch.Tensor:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SafetensorsSource(_Source):
    def __init__(self, path: Path, device: str):
        super().__init__(path)
        from safetensors import safe_open

        try:
            self._file = safe_open(str(path), framework="pt", device=device)
            self._keys = list(self._file.keys())
        except Exception as exc:  # header unreadable: truncated, not safetensors, ...
            raise CheckpointError(path, f"cannot read safetensors file ({exc})") from None

    def raw_keys(self) -> list[str]:
        return self._keys

    def raw_shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._file.get_slice(key).get_shape())

    def raw_tensor(self, key: str) -> torch.Tensor:
        try:
            return self._file.get_tensor(key)
        except Exception as exc:
            raise CheckpointError(self.path, f"cannot read tensor {key!r} ({exc})") from None

    def close(self) -> None:
        self._file = None


class _TorchSource(_Source):
    def __init__(self, path: Path):
        super().__init__(path)
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:
            raise CheckpointError(path, f"cannot read with torch.load(weights_only=True) ({exc})") from None
        for wrapper in ("state_dict", "model", "module"):
            if isinstance(state, dict) and set(state) == {wrapper} and isinstance(state[wrapper], dict):
                state = state[wrapper]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(path, "not a state dict of tensors")
        self._state = state

    def raw_keys(self) -> list[str]:
        return list(self._state)

    def raw_shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._state[key].shape)

    def raw_tensor(self, key: str) -> torch.Tensor:
        return self._state[key]

    def close(self) -> None:
        self._state = {}


def _open(path: Path, device: str) -> _Source:
    if not path.is_file():
        raise CheckpointError(path, "weight file not found")
    if path.suffix == ".safetensors":
        return _SafetensorsSource(path, device)
    if path.suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return _TorchSource(path)
    raise CheckpointError(path, "unsupported weight file type (use .safetensors, .pth, .pt or .bin)")


def _weight_files(path: Path) -> tuple[list[Path], dict[str, str] | None, Path]:
    """(files, index weight_map or None, the path to name in errors)."""
    if path.is_file():
        return [path], None, path
    if not path.is_dir():
        raise CheckpointError(path, "checkpoint file or folder not found")
    index_path = path / INDEX_NAME
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text())["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(index_path, f"unreadable shard index ({exc!r})") from None
        names = sorted(set(weight_map.values()))
        for name in names:
            if not (path / name).is_file():
                raise CheckpointError(path / name, f"shard listed in {INDEX_NAME} is missing")
        return [path / n for n in names], weight_map, index_path
    if (path / SINGLE_NAME).is_file():
        return [path / SINGLE_NAME], None, path / SINGLE_NAME
    raise CheckpointError(path, f"no {INDEX_NAME} or {SINGLE_NAME} in this folder")


def _detect_prefix(keys: list[str], expected: dict[str, tuple[int, ...]]) -> str:
    if any(k in expected for k in keys):
        return ""
    for prefix in KNOWN_PREFIXES:
        if any(k.startswith(prefix) and k[len(prefix):] in expected for k in keys):
            return prefix
    return ""


def _device_string(device: torch.device) -> str:
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def _is_fp8(t: torch.Tensor) -> bool:
    return t.dtype in {getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n)}


def _check_headers(sources: list[_Source], expected: dict[str, tuple[int, ...]],
                   weight_map: dict[str, str] | None, where: Path,
                   strict: bool) -> dict[str, tuple[_Source, str]]:
    """Validate keys and shapes of every file before reading tensor data.

    Returns model key -> (source, raw key). Raises CheckpointError naming the file and key.
    """
    found: dict[str, tuple[_Source, str]] = {}
    all_keys = [k for s in sources for k in s.raw_keys()]
    for source in sources:
        keys = source.raw_keys()
        source.prefix = _detect_prefix(keys, expected)
        for raw in keys:
            if raw in _FP8_MARKERS or raw.endswith(_FP8_SCALE_SUFFIX):
                continue  # scaled-fp8 bookkeeping, applied while loading
            key = raw[len(source.prefix):] if raw.startswith(source.prefix) else raw
            if key not in expected:
                if strict:
                    raise CheckpointError(source.path, f"unexpected tensor {raw!r} (no such parameter "
                                                       "in the Wan S2V transformer)")
                continue
            if key in found:
                raise CheckpointError(source.path, f"tensor {raw!r} also stored in {found[key][0].path.name}")
            if weight_map is not None and weight_map.get(raw) not in (None, source.path.name):
                raise CheckpointError(source.path, f"tensor {raw!r} is indexed in "
                                                   f"{weight_map[raw]} but stored here")
            shape = source.raw_shape(raw)
            if shape != expected[key]:
                raise CheckpointError(source.path, f"tensor {raw!r} has shape {shape}, expected "
                                                   f"{expected[key]} for this model config")
            found[key] = (source, raw)
    if weight_map is not None:
        keys_of = {s.path.name: set(s.raw_keys()) for s in sources}
        for raw, shard in weight_map.items():
            if raw not in keys_of.get(shard, ()):
                raise CheckpointError(where.parent / shard, f"tensor {raw!r} listed in {INDEX_NAME} "
                                                            "is not in this shard")
    missing = [k for k in expected if k not in found]
    if missing:
        if not any(k.startswith("casual_audio_encoder.") for k in all_keys) and any(
                k.endswith("patch_embedding.weight") for k in all_keys):
            raise CheckpointError(where, "this is a Wan transformer without the S2V audio modules "
                                         "(no casual_audio_encoder.* tensors): a T2V/I2V checkpoint?")
        shown = ", ".join(repr(k) for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointError(where, f"{len(missing)} tensors missing: {shown}{more}")
    return found


def _iter_file_groups(found: dict[str, tuple[_Source, str]]) -> Iterator[tuple[_Source, list[tuple[str, str]]]]:
    by_source: dict[int, tuple[_Source, list[tuple[str, str]]]] = {}
    for key, (source, raw) in found.items():
        by_source.setdefault(id(source), (source, []))[1].append((key, raw))
    yield from by_source.values()


def load_s2v_transformer(path: str | os.PathLike, config: S2VTransformerConfig | None = None,
                         device: str | torch.device = "cpu", dtype: torch.dtype = torch.bfloat16,
                         strict: bool = True) -> WanS2VTransformer:
    """Load a :class:`WanS2VTransformer` from an official folder or a single weight file.

    Args:
        path: the official checkpoint folder, or one ``.safetensors``/``.pth`` file.
        config: the model config; default: the folder's ``config.json``, else S2V-14B.
        device: where the weights go (read straight there from safetensors).
        dtype: dtype of all floating-point weights (default bf16; fp8 files are up-cast to it).
        strict: if True (default) a tensor the model does not have is an error; missing tensors and
            shape mismatches are always errors.

    Raises :class:`CheckpointError` (or ``ConfigError`` for a wrong ``config.json``) naming the file
    and the first offending tensor.
    """
    path = Path(path)
    device = torch.device(device)
    files, weight_map, where = _weight_files(path)
    if config is None:
        config = read_transformer_config(path) if path.is_dir() else S2VTransformerConfig.full()
    expected = expected_tensor_shapes(config)

    sources = [_open(f, _device_string(device)) for f in files]
    try:
        found = _check_headers(sources, expected, weight_map, where, strict)
        with torch.device("meta"):
            model = WanS2VTransformer(config)
        for source, pairs in _iter_file_groups(found):
            part = {}
            raw_keys = set(source.raw_keys())
            for key, raw in pairs:
                tensor = source.raw_tensor(raw)
                scale_raw = raw[: -len(".weight")] + _FP8_SCALE_SUFFIX
                if raw.endswith(".weight") and scale_raw in raw_keys:  # "scaled fp8": w * scale
                    scale = source.raw_tensor(scale_raw)
                    tensor = tensor.to(torch.float32) * scale.to(device=tensor.device, dtype=torch.float32)
                if tensor.is_floating_point() or _is_fp8(tensor):
                    tensor = tensor.to(device=device, dtype=dtype)
                else:
                    tensor = tensor.to(device=device)
                part[key] = tensor
            model.load_state_dict(part, strict=False, assign=True)
            del part
    finally:
        for s in sources:
            s.close()
    leftovers = [n for n, p in model.named_parameters() if p.is_meta]
    if leftovers:  # cannot happen after _check_headers; guards against a future model change
        raise CheckpointError(where, f"tensors not loaded: {leftovers[:5]}")
    return model.eval()


def write_tiny_checkpoint(folder: str | os.PathLike, config: S2VTransformerConfig | None = None,
                          seed: int = 0, num_shards: int = 2,
                          dtype: torch.dtype = torch.float32) -> WanS2VTransformer:
    """Write a random-weight checkpoint in the official layout and return the model written.

    ``folder`` receives ``config.json``, ``diffusion_pytorch_model.safetensors.index.json`` and
    ``num_shards`` safetensors shards named like the official ones. Default config: ``tiny()``.
    """
    from safetensors.torch import save_file

    config = config or S2VTransformerConfig.tiny()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = init_random_weights(WanS2VTransformer(config), seed).to(dtype).eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    keys = list(state)
    per_shard = -(-len(keys) // num_shards)
    weight_map, total = {}, 0
    for i in range(num_shards):
        name = shard_name(i + 1, num_shards)
        chunk = {k: state[k] for k in keys[i * per_shard:(i + 1) * per_shard]}
        save_file(chunk, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in chunk})
        total += sum(t.numel() * t.element_size() for t in chunk.values())
    (folder / INDEX_NAME).write_text(json.dumps({"metadata": {"total_size": total},
                                                 "weight_map": weight_map}, indent=2))
    (folder / CONFIG_NAME).write_text(json.dumps(config.to_official_dict(), indent=2))
    return model
