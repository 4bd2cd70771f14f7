"""Atomic output files: write to a temporary name in the destination folder, rename when complete.

A crash, an exception or a full disk never leaves a half-written file under the final name, and
never a stray temporary file either. Existing files are only replaced when asked.
"""

from __future__ import annotations

import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

from s2v_toolkit.errors import OutputError

TEMP_MARK = ".s2vt-tmp-"


def ensure_output_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check that it is writable (clear error otherwise)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise OutputError(folder, "cannot create output folder (permission denied)") from None
    except OSError as exc:
        raise OutputError(folder, f"cannot create output folder ({exc.strerror})") from None
    if not folder.is_dir():
        raise OutputError(folder, "output path exists and is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(folder, "output folder is read-only (permission denied)")
    return folder


def temp_path_for(final: Path) -> Path:
    """A unique temporary sibling of ``final`` that keeps its extension (muxers pick formats by it)."""
    return final.with_name(f".{final.stem}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it."""
    final = Path(path)
    if final.exists() and not overwrite:
        raise OutputError(final, "already exists (choose another name or allow overwriting)")
    if final.is_dir():
        raise OutputError(final, "is a folder")
    ensure_output_dir(final.parent if str(final.parent) else ".")
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(final, "nothing was written")
        os.replace(tmp, final)
    except OSError as exc:
        _remove_quietly(tmp)
        if exc.errno == errno.ENOSPC:
            raise OutputError(final, "disk full while writing; nothing was written under this name") from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputError(final, f"cannot write ({exc.strerror})") from None
        raise
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(p: Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass
