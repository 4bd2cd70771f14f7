"""ReviewStore over a RenderPlan and its SQLite job store (``PLAN.jobs.sqlite``, s2v_toolkit.jobs).

- jobs: the plan's ShotJobs joined with their job-store rows (state, output, version, sidecar);
- decisions: the table ``review_decisions`` in the same SQLite file (one row per job and render
  version, so a re-render starts undecided and the verdict on an earlier version is kept);
- re-render with another seed: the plan's job gets the new seed, the plan is saved and the store
  synced, which queues the job again (its earlier render stays on disk as an older version);
- conform approved: the jobs stage's render results, only those approved on their current version,
  with the decision in each clip's ``s2v`` metadata (``review``).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from s2v_toolkit.errors import S2VError
from s2v_toolkit.ui.model import APPROVED, Decision, FrameNote, ReviewError, ReviewJob

_DECISIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS review_decisions (
    job_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    note TEXT,
    frame_notes TEXT,
    reviewer TEXT,
    decided_at TEXT,
    PRIMARY KEY (job_id, version)
)
"""


def _jobs_api():
    try:
        from s2v_toolkit.jobs import JobStore, load_plan, render_results, store_path_for
    except ImportError:  # the package's exports landed after this adapter: use its modules
        from s2v_toolkit.jobs.conform import render_results
        from s2v_toolkit.jobs.plan import load_plan
        from s2v_toolkit.jobs.store import JobStore, store_path_for
    return JobStore, load_plan, render_results, store_path_for


def open_plan_store(path: str | os.PathLike) -> "PlanReviewStore":
    try:
        _jobs_api()
    except ImportError as exc:
        raise ReviewError(f"{path}: not a review manifest, and the jobs stage is not available to read a plan "
                          f"({exc})") from None
    return PlanReviewStore(path)


class PlanReviewStore:
    """:class:`~s2v_toolkit.ui.model.ReviewStore` for ``s2vt review PLAN.json``."""

    def __init__(self, plan_path: str | os.PathLike, reviewer: str | None = None):
        JobStore, load_plan, _, store_path_for = _jobs_api()
        self.plan_path = Path(plan_path).absolute()
        self.plan = load_plan(self.plan_path)
        self.store_path = store_path_for(self.plan_path)
        if not self.store_path.exists():
            raise ReviewError(f"{self.plan_path}: no job store ({self.store_path.name}); run `s2vt render` first")
        self.store = JobStore(self.store_path)
        self.reviewer = reviewer or os.environ.get("USER") or None
        with self.store.transaction() as db:
            db.execute(_DECISIONS_SCHEMA)

    @property
    def title(self) -> str:
        return self.plan_path.name

    # -- reading ----------------------------------------------------------------------------------
    def _decision(self, job_id: str, version: int) -> Decision | None:
        row = self.store.db.execute("SELECT * FROM review_decisions WHERE job_id=? AND version=?",
                                    (job_id, version)).fetchone()
        if row is None:
            return None
        notes = json.loads(row["frame_notes"] or "[]")
        return Decision(row["status"], row["note"] or "", [FrameNote.from_dict(n) for n in notes],
                        row["reviewer"], row["decided_at"])

    def list_jobs(self) -> list[ReviewJob]:
        self.plan = _jobs_api()[1](self.plan_path)  # the plan may have been edited since
        records = {r.id: r for r in self.store.records()}
        out = []
        for job in self.plan.jobs:
            rec = records.get(job.id)
            version = (rec.version if rec and rec.version else 0)
            rin, rout = self.plan.timecodes(job)
            sidecar: dict = {}
            if rec and rec.sidecar_path:
                try:
                    sidecar = json.loads(Path(rec.sidecar_path).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    sidecar = {}   # the media check reports an unreadable sidecar
            error = rec.error if rec else None
            if job.action == "skip":
                error = error or job.reason
            out.append(ReviewJob(
                job_id=job.id, shot=job.clip_name or job.label, action=job.action,
                state=rec.state if rec else "queued", version=version, character=job.character,
                line_text=sidecar.get("line_text") or job.label, fps=self.plan.fps, record_in=rin, record_out=rout,
                frame_count=job.frame_count, source_path=job.media_path, source_start=job.source_in or 0,
                render_path=rec.output_path if rec and rec.state == "done" else None, render_start=0,
                audio_path=sidecar.get("audio_path"), mask_path=sidecar.get("mask_path"),
                sidecar_path=rec.sidecar_path if rec else None, sidecar=sidecar, seed=job.seed, error=error,
                decision=self._decision(job.id, version),
            ))
        return out

    # -- writing ----------------------------------------------------------------------------------
    def _record(self, job_id: str):
        rec = self.store.get(job_id)
        if rec is None:
            raise ReviewError(f"{self.store_path}: no job '{job_id}'")
        return rec

    def set_decision(self, job_id: str, decision: Decision) -> None:
        rec = self._record(job_id)
        if rec.state != "done":
            raise ReviewError(f"{self.store_path}: job {job_id} has no finished render to decide on ({rec.state})")
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO review_decisions VALUES (?,?,?,?,?,?,?)",
                       (job_id, rec.version or 0, decision.status, decision.note,
                        json.dumps([n.to_dict() for n in decision.frame_notes]),
                        decision.reviewer or self.reviewer, decision.decided_at))

    def queue_rerender(self, job_id: str, seed: int | None = None) -> str:
        self.plan = _jobs_api()[1](self.plan_path)   # keep edits made to the plan since it was read
        try:
            job = self.plan.job(job_id)
        except KeyError:
            raise ReviewError(f"{self.plan_path}: no job '{job_id}'") from None
        if not job.renders:
            raise ReviewError(f"{self.plan_path}: job {job_id} is a skip; change its action in the plan first")
        new_seed = seed if seed is not None else random.randrange(2**31)
        if new_seed == job.seed:
            new_seed = (new_seed + 1) % 2**31
        job.seed = new_seed
        job.notes.append(f"review: re-render with seed {new_seed}")
        self.plan.save(self.plan_path)
        self.store.sync(self.plan)   # the changed spec queues the job; the old render stays a version
        return job_id

    def conform_approved(self, out_dir: str | Path) -> dict:
        from s2v_toolkit.timeline import conform

        _, _, render_results, _ = _jobs_api()
        approved = {j.job_id: j.decision for j in self.list_jobs() if j.decision_status == APPROVED and j.render_path}
        if not approved:
            raise ReviewError(f"{self.plan_path}: no approved renders to conform")
        renders = [r for r in render_results(self.plan, self.store) if r.job_id in approved]
        for r in renders:
            r.extra["review"] = approved[r.job_id].to_dict()
        try:
            return conform(self.plan.read_timeline(), renders, out_dir).to_dict()
        except S2VError:
            raise
        except OSError as exc:
            raise ReviewError(f"{out_dir}: cannot write the conformed timeline ({exc})") from None

    def close(self) -> None:
        self.store.close()
