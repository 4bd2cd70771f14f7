"""Check a job's media before it is shown: missing files, unreadable renders, ranges outside a file.

Problems become text in the shot list (never an exception in the panel). :class:`MediaChecker`
runs the checks on a background thread, so a plan of hundreds of shots opens at once and fills in
its problems as they are found; files shared by many jobs (the originals) are probed once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from s2v_toolkit.errors import MediaError
from s2v_toolkit.media import MediaInfo, probe
from s2v_toolkit.ui.model import ReviewJob


@dataclass
class JobMedia:
    """What the check found for one job."""

    problems: list[str] = field(default_factory=list)
    infos: dict[str, MediaInfo] = field(default_factory=dict)   # "source" | "render" | "mask" -> probe
    sidecar: dict | None = None                                  # loaded from sidecar_path, if it was read

    def apply(self, job: ReviewJob) -> None:
        job.problems = list(self.problems)
        if self.sidecar is not None:
            job.sidecar = self.sidecar


class ProbeCache:
    """probe() once per path (thread-safe); a failure is remembered as its message."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done: dict[str, MediaInfo | str] = {}

    def get(self, path: str) -> MediaInfo | str:
        with self._lock:
            if path in self._done:
                return self._done[path]
        try:
            result: MediaInfo | str = probe(path)
        except MediaError as exc:
            result = str(exc)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding, not a crash
            result = f"{path}: {exc}"
        with self._lock:
            self._done[path] = result
        return result


def _probe_video(path: str, what: str, problems: list[str], cache: ProbeCache) -> MediaInfo | None:
    if not Path(path).exists():
        problems.append(f"{what} missing: {path}")
        return None
    info = cache.get(path)
    if isinstance(info, str):
        problems.append(f"{what} unreadable: {info}")
        return None
    if info.video is None or info.video.frame_count <= 0:
        problems.append(f"{what} has no video frames: {path}")
        return None
    return info


def inspect_job(job: ReviewJob, cache: ProbeCache | None = None) -> JobMedia:
    """Probe a job's original, render and mask, and read its sidecar; the job is not changed."""
    cache = cache or ProbeCache()
    found = JobMedia()
    # a new shot over a gap in the cut has no original: nothing to compare with, not a problem
    wanted = [] if job.action == "new_shot" and not job.source_path else [
        ("source", job.source_path, job.source_start, "original media")]
    if job.render_path or job.state == "done":
        wanted.append(("render", job.render_path, job.render_start, "render"))
    if job.mask_path:
        wanted.append(("mask", job.mask_path, job.render_start, "mask"))
    for role, path, start, what in wanted:
        if not path:
            found.problems.append(f"{what}: no file recorded")
            continue
        info = _probe_video(path, what, found.problems, cache)
        if info is None:
            continue
        n = info.video.frame_count
        if job.frame_count and start + job.frame_count > n:
            found.problems.append(
                f"{what} {path}: frames {start}-{start + job.frame_count - 1} asked for, file has 0-{n - 1}")
        found.infos[role] = info
    if job.sidecar_path and not job.sidecar:
        try:
            found.sidecar = json.loads(Path(job.sidecar_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            found.problems.append(f"sidecar unreadable: {job.sidecar_path} ({exc})")
    return found


def check_job(job: ReviewJob, cache: ProbeCache | None = None) -> dict[str, MediaInfo]:
    """Check now, fill ``job.problems`` (and its sidecar); return the probed media by role."""
    found = inspect_job(job, cache)
    found.apply(job)
    return found.infos


class MediaChecker:
    """Checks jobs in order on a worker thread; ``on_result(job_id, JobMedia)`` is called from it."""

    def __init__(self, jobs: list[ReviewJob], on_result: Callable[[str, JobMedia], None],
                 cache: ProbeCache | None = None):
        self.cache = cache or ProbeCache()
        self._jobs = [ReviewJob.from_dict(j.to_dict()) for j in jobs]   # copies: the UI owns the originals
        self._on_result = on_result
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="media check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for job in self._jobs:
            if self._stop.is_set():
                return
            self._on_result(job.job_id, inspect_job(job, self.cache))

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
