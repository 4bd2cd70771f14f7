"""The work behind the HTTP API, as a small interface: plan, render, job states, conform, review.

The server only moves JSON and runs each long step (plan, render, conform) on a worker thread with a
:class:`TaskContext`; a :class:`Service` does the work. The default service drives
:mod:`s2v_toolkit.jobs` (see :mod:`s2v_toolkit.serve.jobs_service`); another one can be named with
``s2vt serve --service module:factory`` (a farm front end, or the file-only service of the tests).

Shapes a service returns (all JSON-ready):

``plan`` -> path of the plan file written inside ``project_dir``.

``jobs(plan)`` -> ``{"timeline": {"rate", "rate_exact", "start_frame", "start_timecode", "drop_frame",
"duration_frames"}, "jobs": [JobState...]}`` where a JobState is ``{"id", "label", "action"
(redub|new_shot|skip), "state" (pending|running|done|failed|skipped), "reason", "character", "line",
"record_in", "record_out", "record_tc", "output" (rendered file or null), "output_frames",
"error"}``. Record frames count from the timeline's first frame, ``[record_in, record_out)``.

``render`` / ``conform`` -> a summary dict (``conform`` has ``"outputs": {format: path}``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

JOB_STATES = ("pending", "running", "done", "failed", "skipped")


class TaskCancelled(Exception):
    """Raised inside a service method when the client asked to cancel the task."""


class TaskContext:
    """What a running task may report: log lines (appended to the project's log file), progress,
    and whether it was asked to stop."""

    def __init__(self, log_path: Path, on_progress=None):
        self.log_path = Path(log_path)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._on_progress = on_progress
        self.done = 0
        self.total = 0
        self.message = ""

    def log(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock, open(self.log_path, "a", encoding="utf-8") as f:
            for line in str(text).rstrip("\n").splitlines() or [""]:
                f.write(f"{stamp} {line}\n")

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.done, self.total, self.message = int(done), int(total), str(message)
        if self._on_progress:
            self._on_progress(self.done, self.total, self.message)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise TaskCancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when cancelled meanwhile."""
        return self._cancel.wait(seconds)


class Service(ABC):
    """One backend for the server. Methods run on worker threads, one task per project at a time."""

    name = "service"

    def describe(self) -> dict:
        """What this backend is (shown by ``GET /v1/server``)."""
        return {"name": self.name}

    def render_options(self, options: dict) -> dict:
        """Check and complete a render request's options (raise S2VError for a bad one)."""
        return dict(options)

    @abstractmethod
    def plan(self, project_dir: Path, timeline: Path, cast: Path | None, options: dict, ctx: TaskContext) -> Path:
        """Write a render plan for ``timeline`` + ``cast`` inside ``project_dir``; return its path."""

    @abstractmethod
    def jobs(self, plan_path: Path) -> dict:
        """The plan's timeline facts and every job's current state (see the module doc)."""

    @abstractmethod
    def render(self, plan_path: Path, options: dict, ctx: TaskContext) -> dict:
        """Render the plan's jobs (resuming: finished jobs are not redone)."""

    @abstractmethod
    def conform(self, plan_path: Path, out_dir: Path, options: dict, ctx: TaskContext) -> dict:
        """Write the finished renders back onto new copies of the timeline in ``out_dir``."""

    @abstractmethod
    def review_command(self, plan_path: Path) -> list[str]:
        """The command line that opens the review panel on the plan."""
