"""A review store kept in one JSON manifest: the jobs to review, their decisions, and the timeline.

Used by the tests (fixture plans built from real media files) and for reviews assembled by hand or by
a script. Manifest schema (``"s2v_review": 1``)::

    {"s2v_review": 1, "title": "...", "timeline": "scene.otio" | null,
     "jobs": [ReviewJob.to_dict(), ...]}

Relative media paths are relative to the manifest's folder. Decisions are written back into the
manifest (temp file + rename), so a crash never leaves it half-written.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from s2v_toolkit.ui.model import APPROVED, Decision, ReviewError, ReviewJob

SCHEMA_KEY = "s2v_review"
SCHEMA_VERSION = 1


def is_review_manifest(path: str | os.PathLike) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    return f'"{SCHEMA_KEY}"' in head


def write_manifest(path: str | os.PathLike, jobs: list[ReviewJob], *, title: str | None = None,
                   timeline: str | None = None) -> Path:
    """Write a review manifest (paths are written as given)."""
    path = Path(path)
    doc = {SCHEMA_KEY: SCHEMA_VERSION, "title": title or path.stem, "timeline": timeline,
           "jobs": [j.to_dict() for j in jobs]}
    _write_json_atomic(path, doc)
    return path


def _write_json_atomic(path: Path, doc: dict) -> None:
    from s2v_toolkit.media import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class ReviewFileStore:
    """:class:`~s2v_toolkit.ui.model.ReviewStore` over a JSON manifest."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReviewError(f"{self.path}: review manifest not found") from None
        except (OSError, ValueError) as exc:
            raise ReviewError(f"{self.path}: cannot read review manifest ({exc})") from None
        if not isinstance(self._doc, dict) or self._doc.get(SCHEMA_KEY) != SCHEMA_VERSION:
            raise ReviewError(f"{self.path}: not a review manifest (needs \"{SCHEMA_KEY}\": {SCHEMA_VERSION})")
        self._base = self.path.parent
        try:
            self._jobs = [ReviewJob.from_dict(d, self._base) for d in self._doc.get("jobs", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ReviewError(f"{self.path}: bad job entry ({exc})") from None

    # -- ReviewStore ------------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return str(self._doc.get("title") or self.path.stem)

    def list_jobs(self) -> list[ReviewJob]:
        return [ReviewJob.from_dict(j.to_dict()) for j in self._jobs]  # copies: the panel cannot alter the store

    def set_decision(self, job_id: str, decision: Decision) -> None:
        self._job(job_id).decision = Decision.from_dict(decision.to_dict())
        self._save()

    def queue_rerender(self, job_id: str, seed: int | None = None) -> str:
        old = self._job(job_id)
        family = [j for j in self._jobs if j.shot == old.shot and j.action == old.action]
        version = max(j.version for j in family) + 1
        new = ReviewJob.from_dict(old.to_dict())
        new.job_id = f"{old.job_id.split('@v')[0]}@v{version:03d}"
        new.version = version
        new.seed = seed if seed is not None else random.randrange(2**31)
        new.state = "queued"
        new.render_path = None
        new.sidecar_path = None
        new.sidecar = {"requested_by": "review", "previous_job": old.job_id, "seed": new.seed}
        new.decision = None
        new.error = None
        self._jobs.append(new)
        self._save()
        return new.job_id

    def conform_approved(self, out_dir: str | Path) -> dict:
        from s2v_toolkit.timeline import RenderResult, Time, conform

        timeline = self._doc.get("timeline")
        if not timeline:
            raise ReviewError(f"{self.path}: no timeline named in the manifest; cannot conform")
        tl_path = Path(timeline) if Path(timeline).is_absolute() else self._base / timeline
        approved = [j for j in self._jobs if j.decision_status == APPROVED and j.render_path]
        if not approved:
            raise ReviewError(f"{self.path}: no approved renders to conform")
        renders = [
            RenderResult(
                media_path=str(j.render_path), record_tc=[j.record_in, j.record_out],
                media_start=Time(j.render_start, float(j.fps)), character=j.character, line_text=j.line_text,
                job_id=j.job_id, seed=j.seed, action=j.action,
                extra={"review": j.decision.to_dict(), "render_version": j.version},
            )
            for j in approved
        ]
        return conform(tl_path, renders, out_dir).to_dict()

    # -- helpers ----------------------------------------------------------------------------------
    def _job(self, job_id: str) -> ReviewJob:
        for j in self._jobs:
            if j.job_id == job_id:
                return j
        raise ReviewError(f"{self.path}: no job '{job_id}'")

    def _save(self) -> None:
        jobs = []
        for j in self._jobs:
            d = j.to_dict()
            for key in ("source_path", "render_path", "audio_path", "mask_path", "sidecar_path"):
                if d.get(key):  # keep paths relative to the manifest where they were
                    try:
                        d[key] = os.path.relpath(d[key], self._base)
                    except ValueError:
                        pass
            jobs.append(d)
        self._doc["jobs"] = jobs
        _write_json_atomic(self.path, self._doc)
