"""Where ``s2vt serve`` tells local clients how to reach it: a per-user state file.

The file holds the server's URL and its per-session token, so it is created with mode 0600 in a
folder of mode 0700 (other users on the machine must not read the token), written to a temporary
name and renamed (a client never reads half a file), and removed when the server stops.

Location: ``$S2VT_HOME/serve.json`` when ``S2VT_HOME`` is set, else
``$XDG_STATE_HOME/s2v-toolkit/serve.json`` (``~/.local/state`` when unset) on Linux,
``~/Library/Application Support/s2v-toolkit/serve.json`` on macOS and
``%LOCALAPPDATA%\\s2v-toolkit\\serve.json`` on Windows.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
from pathlib import Path

from s2v_toolkit.errors import ConfigError

STATE_FILE_NAME = "serve.json"


class StateFileError(ConfigError):
    """The state file is missing, unreadable or readable by other users."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def state_dir() -> Path:
    """The per-user folder for the server's state file (and its default workspace)."""
    if os.environ.get("S2VT_HOME"):
        return Path(os.environ["S2VT_HOME"]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "s2v-toolkit"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "s2v-toolkit"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "s2v-toolkit"


def default_state_file() -> Path:
    return state_dir() / STATE_FILE_NAME


def new_token() -> str:
    """A per-session secret: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def ensure_private_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and missing parents) with mode 0700; an existing folder is left as it is."""
    folder = Path(folder).expanduser().absolute()
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        if os.name == "posix":
            d.chmod(0o700)  # mkdir's mode is filtered by the umask
    return folder


def write_state_file(path: str | os.PathLike, info: dict) -> Path:
    """Write ``info`` as JSON to ``path`` with mode 0600 (its folder created with mode 0700)."""
    path = Path(path).expanduser().absolute()
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL + mode 0600 at creation: the token is never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        if os.name == "posix":
            os.chmod(tmp, 0o600)  # in case a umask or ACL widened it
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_state_file(path: str | os.PathLike | None = None) -> dict:
    """Read a running server's state file; refuses one that other users can read or write."""
    path = Path(path).expanduser() if path is not None else default_state_file()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise StateFileError(path, "no running `s2vt serve` (state file not found); start it with `s2vt serve`") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StateFileError(path, f"mode {stat.S_IMODE(st.st_mode):04o} lets other users read the token; "
                                   "expected 0600 (delete the file and restart `s2vt serve`)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateFileError(path, f"cannot read the state file ({exc})") from None
    if not isinstance(data, dict) or not {"url", "token"} <= set(data):
        raise StateFileError(path, "not an `s2vt serve` state file (needs 'url' and 'token')")
    return data


def remove_state_file(path: str | os.PathLike, token: str) -> bool:
    """Remove the state file if it still belongs to this server (same token); a newer server's
    file is left alone."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or not secrets.compare_digest(str(data.get("token", "")), token):
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True
