"""Projects of the local server: one folder per submitted timeline, with its plan, log and renders.

A project's record (``project.json`` in its folder) says which timeline and cast it came from and
how each step went. Steps (``plan``, ``render``, ``conform``) run on worker threads that belong to
the server, not to an HTTP request: a client may submit, close its connection and come back later.
At most one step runs per project at a time. A server that restarts finds the projects again; a
step that was running when the server stopped is marked ``interrupted`` (rendering resumes: finished
jobs are kept by the job store).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import traceback
from pathlib import Path

from s2v_toolkit.errors import S2VError
from s2v_toolkit.serve.paths import PathPolicy
from s2v_toolkit.serve.service import Service, TaskCancelled, TaskContext
from s2v_toolkit.serve.state import ensure_private_dir

STEPS = ("plan", "render", "conform")
TASK_STATES = ("idle", "queued", "running", "done", "failed", "cancelled", "interrupted")
LOG_NAME = "server.log"
RECORD_NAME = "project.json"


class Conflict(S2VError):
    """The request does not fit the project's state (HTTP 409)."""


class NotFound(S2VError):
    """No such project (HTTP 404)."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _idle_task() -> dict:
    return {"state": "idle", "started": None, "finished": None, "error": None,
            "progress": {"done": 0, "total": 0, "message": ""}, "result": None}


class Project:
    def __init__(self, folder: Path, record: dict):
        self.folder = folder
        self.record = record
        self.lock = threading.RLock()
        self.ctx: TaskContext | None = None
        self.thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_NAME

    @property
    def plan_path(self) -> Path | None:
        p = self.record.get("plan")
        return Path(p) if p else None

    def busy(self) -> str | None:
        for step in STEPS:
            if self.record["tasks"][step]["state"] in ("queued", "running"):
                return step
        return None

    def save(self) -> None:
        tmp = self.folder / f".{RECORD_NAME}.tmp"
        tmp.write_text(json.dumps(self.record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / RECORD_NAME)

    def to_dict(self) -> dict:
        with self.lock:
            d = json.loads(json.dumps(self.record))
        d["busy"] = self.busy()
        d["log"] = str(self.log_path)
        return d


class ProjectManager:
    def __init__(self, service: Service, policy: PathPolicy):
        self.service = service
        self.policy = policy
        self.projects: dict[str, Project] = {}
        self._lock = threading.Lock()
        self.review_processes: list[subprocess.Popen] = []
        self._reviews: dict[str, subprocess.Popen] = {}   # project id -> its review window's process
        self._review_lock = threading.Lock()
        ensure_private_dir(policy.workspace)  # renders and plans are the user's: private by default
        self._load_existing()

    # ------------------------------------------------------------------ records
    def _load_existing(self) -> None:
        for folder in sorted(self.policy.workspace.iterdir()):
            rec_path = folder / RECORD_NAME
            if not rec_path.is_file():
                continue
            try:
                record = json.loads(rec_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if record.get("id") != folder.name:
                continue
            project = Project(folder, record)
            for step in STEPS:
                task = record["tasks"].setdefault(step, _idle_task())
                if task["state"] in ("queued", "running"):
                    task["state"] = "interrupted"
                    task["error"] = "the server stopped while this step was running"
            project.save()
            self.projects[project.id] = project

    def get(self, project_id: str) -> Project:
        self.policy.project_dir(project_id)  # validates the id's form
        with self._lock:
            project = self.projects.get(project_id)
        if project is None:
            raise NotFound(f"project {project_id}: not found")
        return project

    def list(self) -> list[Project]:
        with self._lock:
            return sorted(self.projects.values(), key=lambda p: p.record["created"])

    # ------------------------------------------------------------------ steps
    def create(self, timeline: Path, cast: Path | None, name: str, options: dict) -> Project:
        while True:
            project_id = "p" + secrets.token_hex(6)
            folder = self.policy.project_dir(project_id)
            try:
                folder.mkdir(parents=True)
                break
            except FileExistsError:
                continue
        record = {"id": project_id, "name": name or timeline.stem, "created": _now(), "folder": str(folder),
                  "timeline": str(timeline), "cast": str(cast) if cast else None, "plan": None,
                  "plan_options": options, "render_options": None, "conform": None,
                  "tasks": {step: _idle_task() for step in STEPS}, "review_pid": None}
        project = Project(folder, record)
        project.save()
        with self._lock:
            self.projects[project_id] = project
        self.start(project, "plan", options)
        return project

    def start(self, project: Project, step: str, options: dict) -> None:
        with project.lock:
            running = project.busy()
            if running:
                raise Conflict(f"project {project.id}: '{running}' is still running; wait for it or cancel it")
            if step in ("render", "conform") and project.record["tasks"]["plan"]["state"] != "done":
                raise Conflict(f"project {project.id}: no plan yet (plan step is "
                               f"{project.record['tasks']['plan']['state']})")
            if step == "render":
                options = self.service.render_options(options)
                project.record["render_options"] = options
            task = _idle_task()
            task["state"] = "queued"
            project.record["tasks"][step] = task
            project.save()

            def on_progress(done, total, message):
                with project.lock:
                    project.record["tasks"][step]["progress"] = {"done": done, "total": total, "message": message}

            ctx = TaskContext(project.log_path, on_progress)
            project.ctx = ctx
            project.thread = threading.Thread(target=self._run, args=(project, step, options, ctx),
                                              name=f"s2vt-{project.id}-{step}", daemon=True)
            project.thread.start()

    def _run(self, project: Project, step: str, options: dict, ctx: TaskContext) -> None:
        with project.lock:
            task = project.record["tasks"][step]
            task["state"], task["started"] = "running", _now()
            project.save()
        ctx.log(f"{step}: started")
        state, error, result = "done", None, None
        try:
            if step == "plan":
                plan = self.service.plan(project.folder, Path(project.record["timeline"]),
                                         Path(project.record["cast"]) if project.record["cast"] else None,
                                         options, ctx)
                with project.lock:
                    project.record["plan"] = str(plan)
                result = {"plan": str(plan)}
            elif step == "render":
                result = self.service.render(project.plan_path, options, ctx)
            elif step == "conform":
                out_dir = project.folder / "conform"
                out_dir.mkdir(exist_ok=True)
                result = self.service.conform(project.plan_path, out_dir, options, ctx)
                with project.lock:
                    project.record["conform"] = result
            if ctx.cancelled:
                state = "cancelled"
        except TaskCancelled:
            state = "cancelled"
        except S2VError as exc:
            state, error = "failed", str(exc)
        except Exception as exc:  # a bug in a service: keep the server up, keep the traceback in the log
            state, error = "failed", f"{type(exc).__name__}: {exc}"
            ctx.log(traceback.format_exc())
        ctx.log(f"{step}: {state}" + (f": {error}" if error else ""))
        with project.lock:
            task = project.record["tasks"][step]
            task.update(state=state, finished=_now(), error=error, result=result)
            project.save()

    def cancel(self, project: Project) -> str | None:
        with project.lock:
            step = project.busy()
            if step and project.ctx:
                project.ctx.cancel()
            return step

    def jobs(self, project: Project) -> dict:
        if not project.plan_path:
            raise Conflict(f"project {project.id}: no plan yet")
        return self.service.jobs(project.plan_path)

    def open_review(self, project: Project) -> int:
        if not project.plan_path:
            raise Conflict(f"project {project.id}: no plan yet")
        with self._review_lock:
            # one review window per project: a second request (a double click, a retry) gets the open one
            open_proc = self._reviews.get(project.id)
            if open_proc is not None and open_proc.poll() is None:
                return open_proc.pid
            return self._start_review(project)

    def _start_review(self, project: Project) -> int:
        cmd = self.service.review_command(project.plan_path)
        log = open(project.folder / "review.log", "ab")
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=project.folder, start_new_session=True)
        finally:
            log.close()
        self.review_processes.append(proc)
        self._reviews[project.id] = proc
        with project.lock:
            project.record["review_pid"] = proc.pid
            project.save()
        return proc.pid

    def shutdown(self, wait: float = 5.0) -> None:
        """Ask running steps to stop and wait a little for them (renders resume on the next start)."""
        threads = []
        for project in self.list():
            if project.busy() and project.ctx:
                project.ctx.cancel()
                threads.append(project.thread)
        deadline = time.monotonic() + wait
        for t in threads:
            if t is not None:
                t.join(max(0.0, deadline - time.monotonic()))
