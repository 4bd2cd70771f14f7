"""Atomic output files: write to a temporary name in the destination folder, rename when complete.

A crash, an exception or a full disk never leaves a half-written file under the final name, and
never a stray temporary file either. Existing files are only replaced when asked, and never when the
destination is one of the running command's inputs (:mod:`s2v_toolkit.safety`).

Temporary names are ``.<stem>.s2vt-tmp-<pid>-<random>-<host><ext>``: a process killed with SIGKILL
cannot clean up, so the first write into a folder removes the temporaries of dead processes of this
machine (and, after an hour of silence, of other machines sharing the folder).

Several files that belong together (a conform's ``.otio`` and the timeline's own format) are written
inside :func:`atomic_group`: before each rename the final name is added to a journal in the folder,
and the journal is removed once every file is in place. A journal left by a killed process means an
incomplete set: the next group in that folder removes the files it lists, so a version is either
whole or absent.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import socket
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

from s2v_toolkit.errors import OutputError

TEMP_MARK = ".s2vt-tmp-"
GROUP_MARK = ".s2vt-group-"
OTHER_HOST_QUIET_SECONDS = 3600.0
_swept: set[str] = set()
_local = threading.local()


def host_tag() -> str:
    return f"h{zlib.crc32(socket.gethostname().encode()) & 0xFFFFFF:06x}"


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
    return final.with_name(f".{final.stem}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{host_tag()}{final.suffix}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host still runs (a zombie counts as dead)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed child not yet reaped) is dead for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


_TEMP_RE = re.compile(r"^\..*" + re.escape(TEMP_MARK) + r"(\d+)-[0-9a-f]+(?:-(h[0-9a-f]{6}))?")
_GROUP_RE = re.compile(r"^" + re.escape(GROUP_MARK) + r"(\d+)-[0-9a-f]+-(h[0-9a-f]{6})\.json$")


def _owner_dead(pid: int, host: str | None, path: Path, quiet_seconds: float, others_writing: bool) -> bool:
    local = host == host_tag() or (host is None and not others_writing)
    if local:
        return not pid_alive(pid)
    if host is None and pid_alive(pid):  # an untagged name of a live process here: this machine's, in use
        return False
    try:  # another machine on shared storage: its pid means nothing here; wait for long silence
        return time.time() - path.stat().st_mtime > quiet_seconds
    except OSError:
        return False


def clean_stale(folder: str | os.PathLike, force: bool = False, *, quiet_seconds: float = OTHER_HOST_QUIET_SECONDS,
                others_writing: bool = False) -> list[Path]:
    """Finish what killed writers left in ``folder``: roll back incomplete groups (their journals), then
    remove temporaries (files or folders) of dead processes. Once per folder per process unless ``force``.

    A name's pid is checked on this machine when the name carries this machine's tag; one of another
    machine (shared storage) is removed only once unchanged for ``quiet_seconds``. Names without a tag
    (older writers) count as this machine's, unless ``others_writing`` says that other machines are
    writing into the folder now (a render's remote workers): then they wait for the silence too.
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _swept and not force:
        return []
    _swept.add(key)
    removed: list[Path] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return removed

    def dead(m: re.Match, name: str) -> bool:
        return _owner_dead(int(m.group(1)), m.group(2), folder / name, quiet_seconds, others_writing)

    for name in names:
        m = _GROUP_RE.match(name)
        if m and dead(m, name):
            removed += _roll_back(folder / name)
    for name in names:
        m = _TEMP_RE.match(name)
        if m and dead(m, name):
            p = folder / name
            try:
                if p.is_dir():
                    import shutil

                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _roll_back(journal: Path) -> list[Path]:
    removed = []
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
    except OSError:
        return removed
    for line in lines:
        try:
            name = json.loads(line)["final"]
        except (ValueError, KeyError, TypeError):
            continue
        p = journal.parent / Path(name).name  # journals name files in their own folder only
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    try:
        journal.unlink()
    except OSError:
        pass
    return removed


class _Group:
    def __init__(self, folder: Path):
        self.folder = folder
        self.journal = folder / f"{GROUP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{host_tag()}.json"
        self.finals: list[Path] = []

    def record(self, final: Path) -> None:
        """Journal ``final`` (durably) before it is renamed into place."""
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"final": final.name}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.finals.append(final)


@contextmanager
def atomic_group(folder: str | os.PathLike):
    """Files written by :func:`atomic_output` in ``folder`` inside this block appear together or not at all:
    on an exception the ones already renamed are removed; after a kill, the next group in the folder
    removes them (see the module docs)."""
    folder = ensure_output_dir(folder)
    clean_stale(folder, force=True)
    group = _Group(folder)
    stack = getattr(_local, "groups", None)
    if stack is None:
        stack = _local.groups = []
    stack.append(group)
    try:
        yield group
    except BaseException:
        for p in group.finals:
            try:
                p.unlink()
            except OSError:
                pass
        raise
    finally:
        stack.pop()
        try:
            group.journal.unlink()
        except FileNotFoundError:
            pass


def _group_for(final: Path) -> _Group | None:
    for g in reversed(getattr(_local, "groups", None) or []):
        if os.path.realpath(g.folder) == os.path.realpath(final.parent):
            return g
    return None


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it."""
    from s2v_toolkit.safety import check_output

    final = Path(path)
    check_output(final)
    if final.exists() and not overwrite:
        raise OutputError(final, "already exists (choose another name or allow overwriting)")
    if final.is_dir():
        raise OutputError(final, "is a folder")
    folder = ensure_output_dir(final.parent if str(final.parent) else ".")
    clean_stale(folder)
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(final, "nothing was written")
        check_output(final)  # inputs the command opened while writing count too
        group = _group_for(final)
        if group is not None:
            group.record(final)
        os.replace(tmp, final)
    except OSError as exc:
        _remove_quietly(tmp)
        raise output_error(final, exc) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def output_error(final: Path, exc: OSError) -> Exception:
    """The one-line error for an OS failure while writing ``final`` (the exception itself if unknown)."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return OutputError(final, "disk full while writing; the partial file was removed, nothing was written "
                                  "under this name")
    if exc.errno == errno.EFBIG:
        return OutputError(final, "file size limit reached while writing; the partial file was removed")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(final, f"cannot write ({exc.strerror})")
    return exc


def _remove_quietly(p: Path) -> None:
    try:
        if p.is_dir():
            import shutil

            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass
