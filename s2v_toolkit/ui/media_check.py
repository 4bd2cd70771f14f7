"""Check a job's media before it is shown: missing files, unreadable renders, ranges outside a file.

Problems become text in the shot list (never an exception in the panel).
"""

from __future__ import annotations

import json
from pathlib import Path

from s2v_toolkit.errors import MediaError
from s2v_toolkit.media import MediaInfo, probe
from s2v_toolkit.ui.model import ReviewJob


def _probe_video(path: str, what: str, problems: list[str]) -> MediaInfo | None:
    if not Path(path).exists():
        problems.append(f"{what} missing: {path}")
        return None
    try:
        info = probe(path)
    except MediaError as exc:
        problems.append(f"{what} unreadable: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding, not a crash
        problems.append(f"{what} unreadable: {path}: {exc}")
        return None
    if info.video is None or info.video.frame_count <= 0:
        problems.append(f"{what} has no video frames: {path}")
        return None
    return info


def check_job(job: ReviewJob) -> dict[str, MediaInfo]:
    """Fill ``job.problems``; return the probed media by role ("source", "render", "mask")."""
    problems: list[str] = []
    infos: dict[str, MediaInfo] = {}
    wanted = [("source", job.source_path, job.source_start, "original media")]
    if job.render_path or job.state == "done":
        wanted.append(("render", job.render_path, job.render_start, "render"))
    if job.mask_path:
        wanted.append(("mask", job.mask_path, job.render_start, "mask"))
    for role, path, start, what in wanted:
        if not path:
            problems.append(f"{what}: no file recorded")
            continue
        info = _probe_video(path, what, problems)
        if info is None:
            continue
        n = info.video.frame_count
        if job.frame_count and start + job.frame_count > n:
            problems.append(f"{what} {path}: frames {start}-{start + job.frame_count - 1} asked for, file has 0-{n - 1}")
        infos[role] = info
    if job.sidecar_path and not job.sidecar:
        try:
            job.sidecar = json.loads(Path(job.sidecar_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"sidecar unreadable: {job.sidecar_path} ({exc})")
    job.problems = problems
    return infos
