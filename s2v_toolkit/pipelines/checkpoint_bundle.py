"""Where the parts of an S2V model live on disk: the official Wan2.2-S2V-14B folder, or a tiny random one.

The official folder (as released)::

    Wan2.2-S2V-14B/
      config.json                                         DiT config (_class_name "WanModel_S2V")
      diffusion_pytorch_model.safetensors.index.json      shard index
      diffusion_pytorch_model-0000{1..4}-of-00004.safetensors
      Wan2.1_VAE.pth                                      video VAE
      models_t5_umt5-xxl-enc-bf16.pth                     umT5-XXL encoder
      google/umt5-xxl/                                    its tokenizer (tokenizer.json or spiece.model ...)
      wav2vec2-large-xlsr-53-english/                     audio encoder (HF folder: config.json,
                                                          preprocessor_config.json, weights)

The DiT may also be one unsharded ``diffusion_pytorch_model.safetensors``. A folder with
``high_noise_model/`` and ``low_noise_model/`` sub-folders (each a DiT folder) is a two-expert (MoE)
checkpoint; a second expert can also be given separately (``expert2``).

:func:`locate_checkpoint` checks every required file *before* anything is loaded and raises a
one-line :class:`CheckpointError` naming the first missing one.

A ``s2vt_bundle.json`` marker (written by :func:`build_tiny_bundle`) records that the weights are
random and the small component configs (the loaders need them: tiny shapes differ from the full ones).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s2v_toolkit.models.checkpoint import CONFIG_NAME, INDEX_NAME, SINGLE_NAME, CheckpointError

__all__ = [
    "BUNDLE_MARKER",
    "CheckpointBundle",
    "build_tiny_bundle",
    "default_tiny_bundle_dir",
    "locate_checkpoint",
    "locate_transformer",
    "tiny_bundle",
]

BUNDLE_MARKER = "s2vt_bundle.json"
VAE_FILE = "Wan2.1_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER_DIR = os.path.join("google", "umt5-xxl")
WAV2VEC2_DIR = "wav2vec2-large-xlsr-53-english"
MOE_DIRS = ("high_noise_model", "low_noise_model")
#: bump when what build_tiny_bundle writes changes (a cached bundle of another version is rebuilt)
TINY_BUNDLE_VERSION = 1
TOKENIZER_FILES = ("tokenizer.json", "spiece.model")


@dataclass(frozen=True)
class CheckpointBundle:
    """Paths of every component, plus what kind of weights they are.

    ``transformers`` lists the DiT folders/files from high noise to low noise (one for S2V-14B).
    ``component_configs`` holds non-default configs (``vae``, ``umt5``) as dicts, for tiny bundles.
    """

    root: Path
    transformers: tuple[Path, ...]
    vae: Path
    t5: Path
    tokenizer: Path
    wav2vec2: Path
    kind: str = "official"  # "official" or "tiny"
    random_weights: bool = False
    component_configs: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"root": str(self.root), "transformers": [str(p) for p in self.transformers],
                "vae": str(self.vae), "t5": str(self.t5), "tokenizer": str(self.tokenizer),
                "wav2vec2": str(self.wav2vec2), "kind": self.kind, "random_weights": self.random_weights,
                "component_configs": self.component_configs}

    @classmethod
    def from_dict(cls, data: dict) -> "CheckpointBundle":
        return cls(root=Path(data["root"]), transformers=tuple(Path(p) for p in data["transformers"]),
                   vae=Path(data["vae"]), t5=Path(data["t5"]), tokenizer=Path(data["tokenizer"]),
                   wav2vec2=Path(data["wav2vec2"]), kind=data.get("kind", "official"),
                   random_weights=bool(data.get("random_weights", False)),
                   component_configs=dict(data.get("component_configs", {})))


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CheckpointError(path, f"missing {what}")
    return path


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise CheckpointError(path, f"missing {what} folder")
    return path


def locate_transformer(path: str | os.PathLike) -> Path:
    """Check a DiT location: a folder with config + index + every listed shard (or one unsharded
    file), or a single weight file (a repack). Returns the path to give ``load_s2v_transformer``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(path, "transformer checkpoint folder or file not found")
    index = path / INDEX_NAME
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(index, f"unreadable shard index ({type(exc).__name__})") from None
        for name in names:
            _require_file(path / name, f"transformer shard (listed in {INDEX_NAME})")
    elif not (path / SINGLE_NAME).is_file():
        raise CheckpointError(path / INDEX_NAME, f"missing transformer weights (no {INDEX_NAME} "
                                                 f"and no {SINGLE_NAME})")
    _require_file(path / CONFIG_NAME, "transformer config")
    return path


def _read_marker(root: Path) -> dict:
    marker = root / BUNDLE_MARKER
    if not marker.is_file():
        return {}
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(marker, f"unreadable bundle marker ({exc})") from None
    return data if isinstance(data, dict) else {}


def locate_checkpoint(root: str | os.PathLike, expert2: str | os.PathLike | None = None,
                      transformer: str | os.PathLike | None = None) -> CheckpointBundle:
    """Check an official-layout checkpoint folder and return its :class:`CheckpointBundle`.

    ``expert2``: a second S2V-compatible DiT (folder or file), used as the low-noise expert.
    ``transformer``: the DiT from elsewhere (a single-file repack, e.g. fp8 ``.safetensors``, or
    another folder) instead of the folder's own shards; the other components still come from ``root``.
    Raises :class:`CheckpointError` naming the first missing file; nothing is loaded.
    """
    root = Path(root)
    if root.is_file():
        raise CheckpointError(root, "is a file: a single-file DiT repack goes to --transformer, with --checkpoint "
                                    "naming the folder that holds the VAE, umT5 and wav2vec2")
    if not root.is_dir():
        raise CheckpointError(root, "checkpoint folder not found")
    marker = _read_marker(root)
    if transformer is not None:
        transformers = [locate_transformer(transformer)]
    elif all((root / d).is_dir() for d in MOE_DIRS):
        transformers = [locate_transformer(root / d) for d in MOE_DIRS]
    else:
        transformers = [locate_transformer(root)]
    if expert2 is not None:
        if len(transformers) > 1:
            raise CheckpointError(Path(expert2), "the checkpoint already has two experts "
                                                 f"({' and '.join(MOE_DIRS)}); a third is not supported")
        transformers.append(locate_transformer(expert2))
    vae = _require_file(root / VAE_FILE, "Wan2.1 VAE weights")
    t5 = _require_file(root / T5_FILE, "umT5 text encoder weights")
    tokenizer = _require_dir(root / TOKENIZER_DIR, "umT5 tokenizer")
    if not any((tokenizer / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(tokenizer / TOKENIZER_FILES[0], "missing umT5 tokenizer file "
                                                              f"({' or '.join(TOKENIZER_FILES)})")
    wav2vec2 = _require_dir(root / WAV2VEC2_DIR, "wav2vec2 audio encoder")
    for name in ("config.json", "preprocessor_config.json"):
        _require_file(wav2vec2 / name, "wav2vec2 file")
    if not any(p.suffix in (".safetensors", ".bin") for p in wav2vec2.iterdir()):
        raise CheckpointError(wav2vec2 / "model.safetensors", "missing wav2vec2 weights")
    return CheckpointBundle(root=root, transformers=tuple(transformers), vae=vae, t5=t5, tokenizer=tokenizer,
                            wav2vec2=wav2vec2, kind=str(marker.get("kind", "official")),
                            random_weights=bool(marker.get("random_weights", False)),
                            component_configs=dict(marker.get("component_configs", {})))


# ---------------------------------------------------------------------------------------------
# tiny random bundle (tests, demo, plumbing checks)
# ---------------------------------------------------------------------------------------------
def default_tiny_bundle_dir() -> Path:
    """``$S2VT_CACHE/tiny-bundle-v<N>`` (default cache: ``~/.cache/s2v-toolkit``)."""
    cache = os.environ.get("S2VT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "s2v-toolkit")
    return Path(cache) / f"tiny-bundle-v{TINY_BUNDLE_VERSION}"


def build_tiny_bundle(folder: str | os.PathLike, seed: int = 0) -> CheckpointBundle:
    """Write a complete random-weight bundle in the official layout into ``folder`` (created).

    Every component has the official key names at tiny sizes that fit each other (text dim 32,
    audio dim 24 with 5 hidden states, 16 latent channels). Random weights: plumbing only.
    """
    from s2v_toolkit.models import (
        UMT5Config,
        WanVAEConfig,
        write_tiny_checkpoint,
        write_tiny_umt5,
        write_tiny_vae,
        write_tiny_wav2vec2,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vae_config, umt5_config = WanVAEConfig.tiny(), UMT5Config.tiny()
    write_tiny_checkpoint(folder, seed=seed)
    write_tiny_vae(folder, seed=seed, config=vae_config)
    write_tiny_umt5(folder, seed=seed, config=umt5_config)
    write_tiny_wav2vec2(folder, seed=seed)
    marker = {"kind": "tiny", "random_weights": True, "version": TINY_BUNDLE_VERSION, "seed": seed,
              "component_configs": {"vae": vae_config.to_dict(), "umt5": umt5_config.to_dict()}}
    (folder / BUNDLE_MARKER).write_text(json.dumps(marker, indent=2))
    return locate_checkpoint(folder)


def tiny_bundle(folder: str | os.PathLike | None = None) -> CheckpointBundle:
    """The cached tiny bundle, built on first use (atomically: concurrent callers never see half of it)."""
    folder = Path(folder) if folder is not None else default_tiny_bundle_dir()
    if (folder / BUNDLE_MARKER).is_file():
        try:
            return locate_checkpoint(folder)
        except CheckpointError:
            pass  # damaged cache: rebuild below
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build_tiny_bundle(staging)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(staging, folder)
        except OSError:  # another process won the race: use its bundle
            if not (folder / BUNDLE_MARKER).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return locate_checkpoint(folder)
