"""Finished clips of a long generation on disk, so that a killed render loses at most the clip in progress.

After each clip the generator saves, atomically, the clip's kept frames (uint8), the motion history
(float32 pixels: the exact tensor the next clip starts from, not a re-decoded video), the state of the
noise generator and the clip's trace. A re-run with the same inputs (same ``key``: a hash of the
settings, reference, audio features, pose and checkpoint; and the same seed, which a re-run without
an explicit seed takes from the store) continues after the last saved clip and produces the same
frames as an uninterrupted run. Files of other inputs are ignored and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ClipStore", "SavedClip", "hash_inputs"]

STATE_NAME = "state.json"


def hash_inputs(*parts: Any) -> str:
    """SHA-256 over JSON-able values, numpy arrays and tensors (by content)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().to("cpu", torch.float32).contiguous().numpy()
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


class SavedClip:
    """One finished clip as stored."""

    def __init__(self, frames: np.ndarray, motion: np.ndarray, generator_state: torch.Tensor,
                 trace: dict, steps: list[dict]):
        self.frames = frames
        self.motion = motion
        self.generator_state = generator_state
        self.trace = trace
        self.steps = steps


class ClipStore:
    """``folder`` holds ``state.json`` (the key) and one ``clip_NNNN.npz`` per finished clip."""

    def __init__(self, folder: str | os.PathLike, key: str):
        self.folder = Path(folder)
        self.key = key

    def _clip_path(self, index: int) -> Path:
        return self.folder / f"clip_{index:04d}.npz"

    def _state(self) -> dict:
        try:
            state = json.loads((self.folder / STATE_NAME).read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def stored_seed(self) -> int | None:
        """The seed of the interrupted run with this key (a re-run without --seed continues it)."""
        state = self._state()
        return int(state["seed"]) if state.get("key") == self.key and "seed" in state else None

    def load(self, seed: int) -> list[SavedClip]:
        """The saved clips 0, 1, ... of this key and seed (stops at the first gap or unreadable file)."""
        state = self._state()
        if state.get("key") != self.key or state.get("seed") != seed:
            return []
        clips = []
        while True:
            path = self._clip_path(len(clips))
            if not path.is_file():
                break
            try:
                with np.load(path, allow_pickle=False) as data:
                    meta = json.loads(str(data["meta"]))
                    clips.append(SavedClip(data["frames"].copy(), data["motion"].copy(),
                                           torch.from_numpy(data["generator_state"].copy()),
                                           meta["trace"], meta["steps"]))
            except (OSError, ValueError, KeyError):
                break
        return clips

    def start(self, seed: int) -> None:
        """Make the folder this key's and seed's: files of other inputs are removed."""
        state = self._state()
        if (state.get("key"), state.get("seed")) != (self.key, seed) and self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        from s2v_toolkit.media.atomic import clean_stale

        clean_stale(self.folder, force=True)  # partial clips of a killed run
        self._write_atomic(self.folder / STATE_NAME, json.dumps({"key": self.key, "seed": seed}).encode())

    def save(self, index: int, frames: np.ndarray, motion: torch.Tensor, generator_state: torch.Tensor,
             trace: dict, steps: list[dict]) -> None:
        from s2v_toolkit.media.atomic import output_error, temp_path_for

        final = self._clip_path(index)
        tmp = temp_path_for(final)  # a temporary name a later run recognises (and removes) if this one is killed
        try:
            np.savez(tmp, frames=frames, motion=motion.detach().to("cpu", torch.float32).numpy(),
                     generator_state=generator_state.numpy(),
                     meta=np.array(json.dumps({"trace": trace, "steps": steps})))
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise output_error(final, exc) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
