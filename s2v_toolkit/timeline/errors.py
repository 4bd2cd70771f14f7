"""Errors of the timeline layer (all one line, naming the file, clip or time range)."""

from __future__ import annotations

import os

from s2v_toolkit.errors import S2VError


class TimelineError(S2VError):
    """A timeline file cannot be read or written, or a request does not fit the timeline."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = os.fspath(path) if path is not None else None
        self.problem = " ".join(str(problem).split())  # keep it one line: adapters raise multi-line text
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)
