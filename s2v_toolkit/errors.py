"""User-facing errors.

Every error a user can cause (bad file, missing media, unsupported option) is raised as an
:class:`S2VError` subclass whose message is one line naming the file, clip or time range. The CLI
prints that line and exits non-zero; any other exception is a bug and shows a traceback.
"""

from __future__ import annotations

import os


class S2VError(Exception):
    """Base class for errors caused by the user's input or environment (not by a bug)."""

    exit_code = 2


class MediaError(S2VError):
    """A media file is missing, unreadable, corrupt or lacks what was asked of it."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class MediaWarning(UserWarning):
    """Damaged or irregular media that was read anyway (a corrupt packet, a variable-rate source).

    The message is one line naming the file and the time range concerned; the CLI prints it as
    ``s2vt: warning: ...``.
    """


class OutputError(S2VError):
    """An output cannot be written (read-only folder, disk full, would overwrite a source)."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(S2VError):
    """A configuration, cast or plan file is invalid."""
