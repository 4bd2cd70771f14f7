"""Which files a request may name: only those inside the folders the server was allowed to use.

A request names input files (the exported timeline, the cast file) by absolute path. Each is
resolved (``..`` and symbolic links followed) before the check, so neither ``/allowed/../etc/passwd``
nor a link inside an allowed folder that points outside it gets through. Everything the server
writes goes into a project folder it created itself under its workspace, named by an id it made.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from s2v_toolkit.errors import S2VError

PROJECT_ID = re.compile(r"^p[0-9a-f]{12}$")


class ForbiddenPath(S2VError):
    """A request named a file outside the allowed folders (HTTP 403)."""

    def __init__(self, what: str, path: str, problem: str):
        self.what = what
        self.path = path
        self.problem = problem
        super().__init__(f"{what} {path!r}: {problem}")


class BadPath(S2VError):
    """A request named a file that does not exist or is not a file (HTTP 400)."""

    def __init__(self, what: str, path: str, problem: str):
        self.what = what
        self.path = path
        super().__init__(f"{what} {path!r}: {problem}")


def referenced_files(timeline: Path, cast: Path | None, search_dirs: tuple = (),
                     rate: float | None = None) -> list[tuple[str, str]]:
    """(what, path) of every file the timeline's clips and the cast file point at (found files only), the
    media found as the plan will find it (``search_dirs``, an EDL's ``rate``)."""
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    found: list[tuple[str, str]] = []
    desc = describe_timeline(read_timeline(timeline, rate=rate), search_dirs=search_dirs, check_media=False)
    for clip in desc.clips:
        if clip.media.path:
            found.append((f"media of clip '{clip.name}' in {timeline.name}", clip.media.path))
    if cast is not None:
        from s2v_toolkit.jobs.cast import load_cast

        for ch in load_cast(cast, require_reference=False).characters:
            for f in (*ch.reference_images, *ch.voice_samples):
                found.append((f"file of character '{ch.id}' in {cast.name}", str(f)))
    return found


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


@dataclass
class PathPolicy:
    """The folders requests may read from (``roots``) and the one the server writes to (``workspace``)."""

    roots: list[Path]
    workspace: Path
    _real_roots: list[Path] = field(init=False, repr=False)

    def __post_init__(self):
        self.workspace = _real(Path(self.workspace).expanduser())
        self.roots = [Path(r).expanduser().absolute() for r in self.roots]
        self._real_roots = [_real(r) for r in self.roots] + [self.workspace]

    def allows(self, path: Path) -> bool:
        real = _real(path)
        return any(real == root or real.is_relative_to(root) for root in self._real_roots)

    def input_file(self, value, what: str) -> Path:
        """The file a request names, checked: a string, absolute, inside a root, an existing file."""
        real = self._allowed(value, what)
        if not real.is_file():
            raise BadPath(what, value, "file not found")
        return real

    def input_folder(self, value, what: str) -> Path:
        """A folder a request names (media search folders), checked like a file: inside a root, existing."""
        real = self._allowed(value, what)
        if not real.is_dir():
            raise BadPath(what, value, "folder not found")
        return real

    def _allowed(self, value, what: str) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise BadPath(what, str(value), "must be a non-empty absolute path")
        if "\x00" in value:
            raise BadPath(what, value.replace("\x00", "\\0"), "contains a NUL character")
        path = Path(value)
        if not path.is_absolute():
            raise BadPath(what, value, "must be an absolute path (the server does not know the client's folder)")
        if not self.allows(path):
            raise ForbiddenPath(what, value, "is outside the folders this server may read "
                                              f"({', '.join(str(r) for r in self.roots) or 'none'}); "
                                              "restart `s2vt serve` with --allow FOLDER")
        return _real(path)

    def check_referenced(self, timeline: Path, cast: Path | None, search_dirs: tuple = (),
                         rate: float | None = None) -> None:
        """Files a timeline or cast file points at obey the same folder rule as the files a request names:
        a timeline inside an allowed folder must not lead the server to media anywhere else."""
        for what, path in referenced_files(timeline, cast, search_dirs, rate):
            if not self.allows(Path(path)):
                real = _real(Path(path))
                link = f"(a link to {real}) " if real != Path(path).absolute() else ""
                raise ForbiddenPath(what, str(path), f"{link}is outside the folders this server may read "
                                                     f"({', '.join(str(r) for r in self.roots) or 'none'}); "
                                                     "move it, or restart `s2vt serve` with --allow FOLDER")

    def project_dir(self, project_id: str) -> Path:
        """The folder of a project; ``project_id`` comes from a URL, so it must look like one we made."""
        if not PROJECT_ID.match(project_id or ""):
            raise BadPath("project id", project_id, "not a project id")
        return self.workspace / project_id
