"""SQLite job store next to the plan (``PLAN.jobs.sqlite``): one row per plan job.

States: ``queued`` -> ``running`` -> ``done`` | ``failed``; ``skipped`` for the plan's skip actions.
A worker *claims* a job in one write transaction (``BEGIN IMMEDIATE``: SQLite's writer lock, so two
workers never take the same job) and holds a lease that it renews while rendering. A job whose lease
expired (its worker was killed) is claimable again. Finishing checks the lease is still the worker's own,
so a worker that lost its lease cannot overwrite the result of the one that took over. WAL mode lets
``s2vt status`` read while workers write.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.media import pid_alive

STATES = ("queued", "running", "done", "failed", "skipped")
DEFAULT_LEASE_SECONDS = 120.0
STORE_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    label TEXT,
    action TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output_path TEXT,
    sidecar_path TEXT,
    version INTEGER,
    model TEXT,
    worker TEXT,
    lease_expires REAL,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    in_plan INTEGER NOT NULL DEFAULT 1,
    plan_order INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
"""


class StoreError(ConfigError):
    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def store_path_for(plan_path: str | os.PathLike) -> Path:
    p = Path(plan_path)
    return p.with_name(p.stem + ".jobs.sqlite")


def new_worker_id(prefix: str = "worker") -> str:
    return f"{prefix}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class JobRecord:
    id: str
    label: str
    action: str
    spec_hash: str
    state: str
    reason: str | None
    attempts: int
    error: str | None
    output_path: str | None
    sidecar_path: str | None
    version: int | None
    model: str | None
    worker: str | None
    lease_expires: float | None
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    seconds: float | None
    in_plan: int
    plan_order: int | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class JobStore:
    """The job table of one plan. Open one per process (connections are not shared across processes)."""

    def __init__(self, path: str | os.PathLike, lease_seconds: float = DEFAULT_LEASE_SECONDS):
        self.path = Path(path)
        self.lease_seconds = float(lease_seconds)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(self.path, f"cannot open the job store ({exc})") from None
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=60000")
            with self.transaction():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.path, f"not a usable job store ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "JobStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self):
        """A write transaction that holds SQLite's writer lock from its first statement."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # ------------------------------------------------------------------ plan -> rows
    def sync(self, plan, problems: dict[str, str] | None = None) -> dict[str, int]:
        """Bring the rows in line with the plan: new jobs are added (``queued``, or ``skipped`` for skip
        actions); a job whose spec changed (the plan was edited) goes back to ``queued`` (its earlier
        output stays on disk; the next render is a new version); jobs that left the plan are marked
        ``in_plan = 0``. ``problems`` ({job id: text}) fail those jobs at once with that text."""
        problems = problems or {}
        now = time.time()
        counts = {"added": 0, "changed": 0, "removed": 0}
        with self.transaction() as db:
            rows = {r["id"]: r for r in db.execute("SELECT id, spec_hash, state, action, in_plan FROM jobs")}
            ids = set()
            for order, job in enumerate(plan.jobs):
                ids.add(job.id)
                h = job.spec_hash()
                state = "skipped" if job.action == "skip" else "queued"
                reason = job.reason
                error = None
                if job.id in problems:
                    state, error = "failed", problems[job.id]
                old = rows.get(job.id)
                if old is None:
                    db.execute("INSERT INTO jobs (id, label, action, spec_hash, state, reason, error, queued_at, "
                               "in_plan, plan_order) VALUES (?,?,?,?,?,?,?,?,1,?)",
                               (job.id, job.label, job.action, h, state, reason, error, now, order))
                    counts["added"] += 1
                elif old["spec_hash"] != h:
                    # an edit: render again unless someone is rendering it right now (then the finish
                    # sees the changed hash and leaves the job queued)
                    if old["state"] == "running":
                        db.execute("UPDATE jobs SET label=?, action=?, spec_hash=?, reason=?, in_plan=1, "
                                   "plan_order=? WHERE id=?", (job.label, job.action, h, reason, order, job.id))
                    else:
                        db.execute("UPDATE jobs SET label=?, action=?, spec_hash=?, state=?, reason=?, error=?, "
                                   "attempts=0, worker=NULL, lease_expires=NULL, queued_at=?, started_at=NULL, "
                                   "finished_at=NULL, seconds=NULL, in_plan=1, plan_order=? WHERE id=?",
                                   (job.label, job.action, h, state, reason, error, now, order, job.id))
                    counts["changed"] += 1
                else:
                    db.execute("UPDATE jobs SET label=?, reason=?, in_plan=1, plan_order=? WHERE id=?",
                               (job.label, reason, order, job.id))
                    if error and old["state"] in ("queued", "failed"):
                        db.execute("UPDATE jobs SET state='failed', error=? WHERE id=?", (error, job.id))
                    elif not error and old["state"] == "failed" and old["action"] == job.action and \
                            (self.get(job.id).error or "").startswith("plan:"):
                        # the plan problem that failed it is fixed
                        db.execute("UPDATE jobs SET state='queued', error=NULL, attempts=0 WHERE id=?", (job.id,))
            for jid in set(rows) - ids:
                if rows[jid]["in_plan"]:
                    db.execute("UPDATE jobs SET in_plan=0 WHERE id=?", (jid,))
                    counts["removed"] += 1
        return counts

    def requeue_failed(self) -> int:
        """``--retry-failed``: failed jobs of the plan go back to the queue (attempts are kept)."""
        with self.transaction() as db:
            cur = db.execute("UPDATE jobs SET state='queued', error=NULL, worker=NULL, lease_expires=NULL "
                             "WHERE state='failed' AND in_plan=1 AND (error IS NULL OR error NOT LIKE 'plan:%')")
            return cur.rowcount

    # ------------------------------------------------------------------ workers
    def claim(self, worker: str, job_id: str | None = None, lease_seconds: float | None = None) -> JobRecord | None:
        """Take the next claimable job (queued, or running with an expired lease), or ``job_id`` if it is
        claimable; None when there is nothing to take."""
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        now = time.time()
        with self.transaction() as db:
            where = ("in_plan=1 AND action IN ('redub','new_shot') AND "
                     "(state='queued' OR (state='running' AND lease_expires < ?))")
            args: list = [now]
            if job_id is not None:
                where += " AND id=?"
                args.append(job_id)
            row = db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY plan_order LIMIT 1", args).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state='running', worker=?, lease_expires=?, attempts=attempts+1, "
                       "started_at=?, finished_at=NULL, seconds=NULL, error=NULL WHERE id=?",
                       (worker, now + lease, now, row["id"]))
        return self.get(row["id"])

    def renew(self, job_id: str, worker: str, lease_seconds: float | None = None) -> bool:
        """Extend the lease; False when the job is no longer this worker's (lease lost)."""
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        with self.transaction() as db:
            cur = db.execute("UPDATE jobs SET lease_expires=? WHERE id=? AND worker=? AND state='running'",
                             (time.time() + lease, job_id, worker))
            return cur.rowcount == 1

    def finish(self, job_id: str, worker: str, *, output_path: str, sidecar_path: str | None, version: int,
               model: str | None, spec_hash: str | None = None) -> bool:
        """Mark done; False (nothing written) when the worker no longer holds the job."""
        return self._end(job_id, worker, "done", None, output_path, sidecar_path, version, model, spec_hash)

    def fail(self, job_id: str, worker: str, error: str) -> bool:
        return self._end(job_id, worker, "failed", error, None, None, None, None, None)

    def _end(self, job_id, worker, state, error, output_path, sidecar_path, version, model, spec_hash) -> bool:
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT worker, state, started_at, spec_hash FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None or row["state"] != "running" or row["worker"] != worker:
                return False
            started = row["started_at"] or now
            if spec_hash is not None and row["spec_hash"] != spec_hash:
                # the plan was edited while this rendered: keep the file as a version, render the edit
                db.execute("UPDATE jobs SET state='queued', worker=NULL, lease_expires=NULL, output_path=?, "
                           "sidecar_path=?, version=?, model=? WHERE id=?",
                           (output_path, sidecar_path, version, model, job_id))
                return True
            db.execute("UPDATE jobs SET state=?, error=?, output_path=COALESCE(?, output_path), "
                       "sidecar_path=COALESCE(?, sidecar_path), version=COALESCE(?, version), "
                       "model=COALESCE(?, model), lease_expires=NULL, finished_at=?, seconds=? WHERE id=?",
                       (state, error, output_path, sidecar_path, version, model, now, now - started, job_id))
            return True

    def expire_dead_local_workers(self) -> int:
        """End the leases of running jobs whose worker was a process on this machine that no longer
        exists (killed): they are claimable at once instead of after the lease time."""
        host = socket.gethostname()
        n = 0
        for r in self.db.execute("SELECT id, worker FROM jobs WHERE state='running'").fetchall():
            parts = (r["worker"] or "").split(":")
            if len(parts) >= 4 and parts[-3] == host and parts[-2].isdigit() and not pid_alive(int(parts[-2])):
                with self.transaction() as db:
                    n += db.execute("UPDATE jobs SET lease_expires=0 WHERE id=? AND worker=? AND state='running'",
                                    (r["id"], r["worker"])).rowcount
        return n

    # ------------------------------------------------------------------ reading
    def get(self, job_id: str) -> JobRecord | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return JobRecord(**dict(row)) if row else None

    def records(self, in_plan_only: bool = True) -> list[JobRecord]:
        q = "SELECT * FROM jobs" + (" WHERE in_plan=1" if in_plan_only else "") + " ORDER BY plan_order, id"
        return [JobRecord(**dict(r)) for r in self.db.execute(q)]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        for r in self.db.execute("SELECT state, COUNT(*) AS n FROM jobs WHERE in_plan=1 GROUP BY state"):
            out[r["state"]] = r["n"]
        return out

    def pending(self) -> int:
        """Jobs still to render (queued or running)."""
        c = self.counts()
        return c["queued"] + c["running"]
