"""Cast file: the characters of a project, with the reference images and voice samples that identify them.

Schema (YAML or JSON, documented in docs/plan.md)::

    version: 1
    characters:
      - id: collins                 # [a-z0-9_-], unique; what plans and jobs refer to
        name: COLLINS               # display name (defaults to the id)
        reference_images: [cast/collins.png]   # one or more; paths relative to the cast file
        voice_samples: [cast/collins_01.flac]  # zero or more; clean recordings of this voice alone
        prompt: "A woman in a white shirt..."  # optional text for shot generation
        lora: cast/collins.safetensors:0.8      # optional: LoRA file(s) PATH[:STRENGTH] (a path or a list)
                                                # applied at run time while this character's jobs render

Every error names the cast file, the character and the field.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.safety import note_input

CAST_SCHEMA_VERSION = 1
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED_IDS = ("unknown",)  # the diarization stage's name for a voice that matches nobody
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
KNOWN_KEYS = {"id", "name", "reference_images", "reference_image", "voice_samples", "voice_sample", "prompt",
              "notes", "lora", "loras"}


class CastError(ConfigError):
    """A cast file is missing, unreadable or breaks the schema."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class Character:
    id: str
    name: str
    reference_images: list[Path] = field(default_factory=list)   # absolute (resolved against the cast file)
    voice_samples: list[Path] = field(default_factory=list)
    prompt: str = ""
    loras: list[str] = field(default_factory=list)  # "ABSOLUTE_PATH:STRENGTH" (the LoRA's own spec)

    def to_dict(self, relative_to: Path | None = None) -> dict:
        def rel(p: Path) -> str:
            if relative_to is None:
                return str(p)
            try:
                return os.path.relpath(p, relative_to)
            except ValueError:  # another drive (Windows)
                return str(p)

        d = {"id": self.id, "name": self.name, "reference_images": [rel(p) for p in self.reference_images],
             "voice_samples": [rel(p) for p in self.voice_samples], "prompt": self.prompt}
        if self.loras:
            d["lora"] = [f"{rel(Path(s.rpartition(':')[0]))}:{s.rpartition(':')[2]}" for s in self.loras]
        return d


@dataclass
class Cast:
    path: Path | None
    characters: list[Character]

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.characters]

    def get(self, character_id: str) -> Character:
        for c in self.characters:
            if c.id == character_id:
                return c
        raise KeyError(character_id)

    def __contains__(self, character_id: str) -> bool:
        return any(c.id == character_id for c in self.characters)

    def to_dict(self) -> dict:
        base = self.path.parent if self.path else None
        return {"version": CAST_SCHEMA_VERSION, "characters": [c.to_dict(base) for c in self.characters]}


def _as_list(value, path: Path, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    if isinstance(value, list) and all(isinstance(v, (str, os.PathLike)) for v in value):
        return [os.fspath(v) for v in value]
    raise CastError(path, f"{where}: '{key}' must be a path or a list of paths, got {type(value).__name__}")


def _files(values: list[str], base: Path, path: Path, where: str, key: str) -> list[Path]:
    out = []
    for i, v in enumerate(values):
        if not v.strip():
            raise CastError(path, f"{where}: {key}[{i}] is empty")
        f = Path(v).expanduser()
        f = f if f.is_absolute() else base / f
        if not f.is_file():
            raise CastError(path, f"{where}: {key}[{i}] not found: {f}")
        out.append(f.resolve())
    return out


def _loras(values: list[str], base: Path, path: Path, where: str, key: str) -> list[str]:
    """``PATH[:STRENGTH]`` entries -> ``"ABSOLUTE_PATH:STRENGTH"`` (files checked, relative to the cast file)."""
    out = []
    for i, v in enumerate(values):
        head, sep, tail = v.rpartition(":")
        file, strength = v, 1.0
        if sep and head:
            try:
                strength, file = float(tail), head
            except ValueError:
                pass
        f = Path(file).expanduser()
        f = f if f.is_absolute() else base / f
        if not f.is_file():
            raise CastError(path, f"{where}: {key}[{i}] not found: {f}")
        out.append(f"{f.resolve()}:{strength:g}")
    return out


def parse_cast(data, path: str | os.PathLike = "<cast>", base_dir: str | os.PathLike | None = None,
               require_reference: bool = True) -> Cast:
    """Validate a cast document (already parsed) whose relative paths resolve against ``base_dir``
    (default: the cast file's folder)."""
    path = Path(path)
    base = Path(base_dir) if base_dir is not None else path.parent
    if not isinstance(data, dict):
        raise CastError(path, "a cast file is a mapping with a 'characters' list")
    version = data.get("version", CAST_SCHEMA_VERSION)
    if version != CAST_SCHEMA_VERSION:
        raise CastError(path, f"version {version!r} is not supported (this toolkit reads version {CAST_SCHEMA_VERSION})")
    entries = data.get("characters")
    if not isinstance(entries, list) or not entries:
        raise CastError(path, "needs a non-empty 'characters' list")
    characters: list[Character] = []
    for i, entry in enumerate(entries):
        where = f"characters[{i}]"
        if not isinstance(entry, dict):
            raise CastError(path, f"{where}: must be a mapping with 'id', 'reference_images', ...")
        raw_id = entry.get("id", entry.get("name"))
        if raw_id is None or not str(raw_id).strip():
            raise CastError(path, f"{where}: needs an 'id'")
        cid = str(raw_id).strip()
        where = f"character '{cid}'"
        if not ID_PATTERN.match(cid):
            raise CastError(path, f"{where}: 'id' may hold only letters, digits, '_', '-' and '.' (no spaces)")
        if cid.lower() in RESERVED_IDS:
            raise CastError(path, f"{where}: the id '{cid}' is reserved for voices that match nobody; rename it")
        if cid in (c.id for c in characters):
            raise CastError(path, f"{where}: 'id' is listed twice")
        unknown = sorted(set(entry) - KNOWN_KEYS)
        if unknown:
            raise CastError(path, f"{where}: unknown field(s) {', '.join(unknown)} "
                                  f"(known: id, name, reference_images, voice_samples, prompt, lora, notes)")
        name = entry.get("name", cid)
        if not isinstance(name, str) or not name.strip():
            raise CastError(path, f"{where}: 'name' must be non-empty text")
        prompt = entry.get("prompt", "") or ""
        if not isinstance(prompt, str):
            raise CastError(path, f"{where}: 'prompt' must be text")
        img_key = "reference_images" if "reference_images" in entry else "reference_image"
        images = _files(_as_list(entry.get(img_key), path, where, img_key), base, path, where, img_key)
        for j, img in enumerate(images):
            if img.suffix.lower() not in IMAGE_SUFFIXES:
                raise CastError(path, f"{where}: {img_key}[{j}] is not an image file ({img.name}); "
                                      f"use {', '.join(IMAGE_SUFFIXES)}")
        if require_reference and not images:
            raise CastError(path, f"{where}: 'reference_images' needs at least one image of the character's face")
        voice_key = "voice_samples" if "voice_samples" in entry else "voice_sample"
        voices = _files(_as_list(entry.get(voice_key), path, where, voice_key), base, path, where, voice_key)
        lora_key = "lora" if "lora" in entry else "loras"
        loras = _loras(_as_list(entry.get(lora_key), path, where, lora_key), base, path, where, lora_key)
        for f in (*images, *voices, *(Path(lo.rpartition(':')[0]) for lo in loras)):
            note_input(f)
        characters.append(Character(cid, name.strip(), images, voices, prompt.strip(), loras))
    return Cast(path, characters)


def load_cast(path: str | os.PathLike, require_reference: bool = True) -> Cast:
    """Read and validate a cast file (``.yaml``/``.yml`` or ``.json``)."""
    import yaml

    path = Path(path)
    note_input(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CastError(path, "cast file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CastError(path, f"cannot read the cast file ({exc})") from None
    is_json = path.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CastError(path, f"not valid {'JSON' if is_json else 'YAML'}: {first}") from None
    return parse_cast(data, path, require_reference=require_reference)
