"""The output-safety rule, in one place: what a command writes is never what it reads, and never
outside its output folder.

* **Inputs are never outputs.** A command registers the files it reads (the CLI registers every file
  named on its command line; loaders add the files they open while a command runs: the timeline, the
  cast and its reference images, media, audio). :func:`s2v_toolkit.media.atomic_output` — the one way
  outputs are written — refuses any destination that is one of them, by resolved path or by
  ``samefile`` (hard links, symlinks), with or without ``--overwrite``.
* **Names from data are confined.** Job ids, labels, character ids and names read from timelines go
  through :func:`safe_component` before they become part of a file name, and :func:`confined` checks
  that the joined path still lies under its output folder.

The registry is process-wide (worker threads of the server share it) and only records while a
:func:`reading` scope is open, so a long-running process does not grow it without bound.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from s2v_toolkit.errors import OutputError

_lock = threading.Lock()
_inputs: dict[str, int] = {}      # resolved path -> how many open scopes registered it
_scopes = 0

# argparse destinations that name what a command writes (everything else naming a file is an input)
OUTPUT_DESTS = frozenset({"out", "output", "dst", "preview", "rttm", "screenshot", "state_file", "workspace",
                          "json"})


def _key(path: str | os.PathLike) -> str:
    try:
        return os.path.realpath(os.fspath(path))
    except (OSError, ValueError):
        return os.path.abspath(os.fspath(path))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are one file: the same resolved path, or the same inode (hard link)."""
    if _key(a) == _key(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


@contextmanager
def reading(paths: Iterable[str | os.PathLike] = ()) -> Iterator[None]:
    """A scope in which ``paths`` (and every file :func:`note_input` reports) may not be written."""
    global _scopes
    keys = [_key(p) for p in paths if p]
    with _lock:
        _scopes += 1
        for k in keys:
            _inputs[k] = _inputs.get(k, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _scopes -= 1
            for k in keys:
                _drop(k)
            if _scopes == 0:
                _inputs.clear()


def _drop(k: str) -> None:
    n = _inputs.get(k, 0) - 1
    if n > 0:
        _inputs[k] = n
    else:
        _inputs.pop(k, None)


def note_input(path: str | os.PathLike | None) -> None:
    """Called by loaders: ``path`` is read by the running command (ignored outside a :func:`reading` scope;
    kept until the outermost scope closes)."""
    if not path or _scopes == 0:
        return
    k = _key(path)
    with _lock:
        if _scopes:
            _inputs.setdefault(k, 1)


def registered_inputs() -> list[str]:
    with _lock:
        return sorted(_inputs)


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Raise :class:`OutputError` when ``path`` is an input: one of ``inputs`` or a registered input."""
    final = Path(path)
    with _lock:
        registered = list(_inputs)
    for src in list(inputs) + registered:
        if src and same_file(final, src):
            raise OutputError(final, "is an input of this command; outputs never replace inputs "
                                     "(choose another output name)")


def inputs_from_args(args) -> list[str]:
    """Every existing file a parsed command line names outside its output options."""
    found: list[str] = []
    edited = set(getattr(args, "_edits", ()) or ())  # files a command updates in place by design
    for dest, value in vars(args).items():
        if dest in OUTPUT_DESTS or dest in edited or dest.startswith("_"):
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and v and len(os.fspath(v)) < 4096:
                try:
                    if os.path.isfile(v):
                        found.append(os.fspath(v))
                except (OSError, ValueError):
                    pass
    return found


def outputs_from_args(args) -> list[str]:
    out = []
    for dest in OUTPUT_DESTS:
        v = getattr(args, dest, None)
        if isinstance(v, (str, os.PathLike)) and v:
            out.append(os.fspath(v))
    return out


# ---------------------------------------------------------------------- names from data
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_component(text: object, fallback: str = "item", max_len: int = 80) -> str:
    """``text`` as one harmless file-name component: letters, digits, ``_ . -`` only, no leading dot,
    never ``.``/``..``, a Windows device name or empty."""
    s = _UNSAFE.sub("_", str(text if text is not None else "")).strip("._-")
    s = s[:max_len].strip("._-")
    if not s or s.lower().split(".")[0] in _RESERVED:
        s = f"{fallback}_{s}" if s else fallback
    return s


def confined(folder: str | os.PathLike, *parts: str) -> Path:
    """``folder / parts`` after checking that it stays under ``folder`` (symlinks resolved)."""
    base = Path(folder)
    target = base.joinpath(*parts)
    root = os.path.realpath(base)
    real = os.path.realpath(target)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise OutputError(target, f"lies outside its output folder {base}; refusing to write there")
    return target


def is_under(path: str | os.PathLike, roots: Iterable[str | os.PathLike]) -> bool:
    """Whether ``path`` (resolved) lies under one of ``roots`` (resolved)."""
    real = os.path.realpath(os.fspath(path))
    for r in roots:
        root = os.path.realpath(os.fspath(r))
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False
