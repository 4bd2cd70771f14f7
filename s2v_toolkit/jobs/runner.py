"""In-process runner: claim jobs from the store, render them with one generator loaded once, record results.

Files: renders go to ``<plan stem>.renders/<label>_<job id>_vNNN<ext>`` beside the plan, each with a JSON
sidecar (``...vNNN<ext>.json``). The sidecar is written first and the media renamed into place last, so
a final media name always means a complete render; a render that completed but whose job was not yet
marked done (the worker was killed in between) is adopted on the next run instead of rendered again.
A job that fails (bad plan entry, generator error) is marked failed with its reason; the others go on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from s2v_toolkit.jobs.generator import (
    GeneratorSpec, JobInputs, generator_name, load_generator,
)
from s2v_toolkit.jobs.plan import RenderPlan, ShotJob, job_problem, load_plan, validate_plan
from s2v_toolkit.jobs.store import DEFAULT_LEASE_SECONDS, JobStore, new_worker_id, store_path_for

DEFAULT_SUFFIX = ".mov"
SIDECAR_SCHEMA = "s2v.render"


# ---------------------------------------------------------------------- inputs
DELIVERY_RATE = 48000  # audio rate of the render files (the post-production standard)


class RenderContext:
    """Per-process cache of what jobs of one plan share: the timeline's description and the cast. Each
    job's dialogue is rendered for its own record range only (a feature's dialogue tracks at 48 kHz are
    gigabytes, and every worker process held them whole)."""

    def __init__(self, plan: RenderPlan):
        self.plan = plan
        self._desc = None  # the timeline, read once per process
        self._cast = None

    def cast(self):
        if self._cast is None and self.plan.cast:
            from s2v_toolkit.jobs.cast import load_cast

            self._cast = load_cast(self.plan.cast)
        return self._cast

    def description(self):
        if self._desc is None:
            self._desc = self.plan.describe_timeline()
        return self._desc

    def _segment(self, job: ShotJob, sample_rate: int) -> np.ndarray:
        """The job's record range of its dialogue track, mixed as the editor set it: 16 kHz for the models,
        or ``DELIVERY_RATE`` for render files."""
        from s2v_toolkit.timeline import extract_dialogue

        desc = self.description()
        fps = self.plan.fps
        a = int(round(Fraction(job.record_in) / fps * sample_rate))
        b = int(round(Fraction(job.record_out) / fps * sample_rate))
        total = int(round(desc.duration.seconds * sample_rate))
        lo, hi = min(max(a, 0), total), min(max(b, 0), total)
        names = {t.id for t in desc.tracks if t.kind == "audio"}
        if job.track not in names:
            raise ValueError(f"dialogue track {job.track!r} is not on the timeline (audio tracks: "
                             f"{', '.join(sorted(names)) or 'none'})")
        (track,) = extract_dialogue(desc, [job.track], sample_rate=sample_rate, window=(lo, hi),
                                    allow_missing_media=getattr(self.plan, "allow_missing_media", False))
        audio = np.zeros(b - a, np.float32)
        audio[lo - a:lo - a + len(track.signal)] = track.signal
        return audio

    def inputs_for(self, job: ShotJob, progress=None) -> JobInputs:
        fps = self.plan.fps
        audio = self._segment(job, 16000)
        cast = self.cast()
        char = cast.get(job.character) if cast is not None and job.character in cast else None
        return JobInputs(job=job, fps=fps, frame_count=job.frame_count, audio=audio, audio_rate=16000,
                         record_tc=self.plan.timecodes(job),
                         reference_images=list(char.reference_images) if char else [],
                         prompt=job.prompt or (char.prompt if char else ""), seed=job.seed,
                         source_media=job.media_path if job.action == "redub" else None,
                         source_in=job.source_in if job.action == "redub" else None, progress=progress,
                         delivery_audio=self._segment(job, DELIVERY_RATE), delivery_rate=DELIVERY_RATE,
                         loras=list(getattr(char, "loras", []) or []) if char else [])


# ---------------------------------------------------------------------- files
def renders_dir(plan: RenderPlan) -> Path:
    return plan.path.parent / f"{plan.path.stem}.renders"


def _safe(text: str) -> str:
    from s2v_toolkit.safety import safe_component

    return safe_component(text, "job", max_len=60)


def render_base(plan: RenderPlan, job: ShotJob) -> str:
    return f"{_safe(job.label)}_{_safe(job.id)}"


def parts_dir(plan: RenderPlan, job: ShotJob) -> Path:
    """Where a job's finished clips are kept while it renders (hidden; removed when the job is done)."""
    from s2v_toolkit.safety import confined

    return confined(renders_dir(plan), f".{_safe(job.id)}.s2vt-parts")


def existing_versions(plan: RenderPlan, job: ShotJob) -> dict[int, Path]:
    """{version: media path} of the job's complete renders on disk (any label: ids are what count)."""
    out: dict[int, Path] = {}
    folder = renders_dir(plan)
    if not folder.is_dir():
        return out
    pat = re.compile(rf"^(?!\.).*_{re.escape(_safe(job.id))}_v(\d{{3,}})(\.[A-Za-z0-9]+)$")
    for p in folder.iterdir():
        m = pat.match(p.name)
        if m and m.group(2) != ".json":
            out[int(m.group(1))] = p
    return out


def sidecar_for(media: Path) -> Path:
    return media.with_name(media.name + ".json")


def _read_sidecar(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------- one job
@dataclass
class JobOutcome:
    job_id: str
    label: str
    state: str                     # done | failed | lost (lease taken over)
    output_path: str | None = None
    error: str | None = None
    seconds: float = 0.0
    adopted: bool = False


class _Heartbeat:
    """Renews a job's lease from a thread (its own connection) while the render runs."""

    def __init__(self, store_path: Path, job_id: str, worker: str, lease: float):
        self.args = (store_path, job_id, worker, lease)
        self.stop = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        store_path, job_id, worker, lease = self.args
        store = JobStore(store_path, lease)
        try:
            while not self.stop.wait(max(lease / 3.0, 0.05)):
                if not store.renew(job_id, worker):
                    self.lost = True
                    return
        finally:
            store.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def produce_render(plan: RenderPlan, job: ShotJob, generator, context: RenderContext, worker: str = "",
                   suffix: str | None = None, job_bar=None) -> dict:
    """Render ``job`` to its next version (or adopt a complete render left by a killed worker); returns
    {"output_path", "sidecar_path", "version", "model", "adopted"}. Raises on any failure (no final file
    is left behind then). Touches no job store: the caller records the result."""
    from s2v_toolkit.media import atomic_output, ensure_output_dir, probe

    t0 = time.time()
    spec_hash = job.spec_hash()
    versions = existing_versions(plan, job)
    if versions:
        latest = versions[max(versions)]
        side = _read_sidecar(sidecar_for(latest))
        if side and side.get("job_id") == job.id and side.get("spec_hash") == spec_hash:
            # completed by a worker that died before recording it: adopt, do not render twice
            shutil.rmtree(parts_dir(plan, job), ignore_errors=True)
            return {"output_path": str(latest), "sidecar_path": str(sidecar_for(latest)),
                    "version": max(versions), "model": side.get("model"), "adopted": True}
    version = max(versions, default=0) + 1
    ext = suffix or getattr(generator, "suffix", None) or DEFAULT_SUFFIX
    from s2v_toolkit.safety import confined, safe_component

    ext = "." + safe_component(str(ext).lstrip("."), "mov", max_len=8)
    ensure_output_dir(renders_dir(plan))
    final = confined(renders_dir(plan), f"{render_base(plan, job)}_v{version:03d}{ext}")
    side_path = sidecar_for(final)

    def report(fraction: float) -> None:
        if job_bar is not None:
            job_bar.n = int(round(100 * min(max(fraction, 0.0), 1.0)))
            job_bar.refresh()

    inputs = context.inputs_for(job, progress=report)
    # finished clips of a killed render of this job wait here (keyed by every input: a changed job starts over)
    inputs.resume_dir = parts_dir(plan, job)
    try:
        with atomic_output(final) as tmp:
            info = generator.render(inputs, Path(tmp)) or {}
            if not Path(tmp).exists():
                raise RuntimeError(f"generator {generator_name(generator)} wrote no file")
            got = probe(tmp)
            frames = got.video.frame_count if got.video else 0
            if frames != job.frame_count:
                raise RuntimeError(f"generator {generator_name(generator)} wrote {frames} frame(s); "
                                   f"the job needs {job.frame_count}")
            model = str(info.get("model", generator_name(generator)))
            sidecar = {
                "schema": SIDECAR_SCHEMA, "job_id": job.id, "label": job.label, "spec_hash": spec_hash,
                "version": version, "action": job.action, "character": job.character,
                "record_in": job.record_in, "record_out": job.record_out,
                "record_tc": list(plan.timecodes(job)), "clip_id": job.clip_id,
                "source_media": job.media_path, "source_in": job.source_in, "seed": job.seed,
                "prompt": inputs.prompt, "model": model, "generator": info, "plan": str(plan.path),
                "worker": worker, "seconds": round(time.time() - t0, 3), "media": final.name,
            }
            # sidecar first, media renamed last: a final media name always means a complete render
            with atomic_output(side_path, overwrite=True) as stmp:
                Path(stmp).write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    except BaseException:
        try:
            if side_path.exists() and not final.exists():
                side_path.unlink()
        except OSError:
            pass
        raise
    if inputs.resume_dir is not None:
        shutil.rmtree(inputs.resume_dir, ignore_errors=True)
    return {"output_path": str(final), "sidecar_path": str(side_path), "version": version, "model": model,
            "adopted": False}


def error_text(exc: BaseException) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = f"{type(exc).__name__}: {msg}"
    if os.environ.get("S2VT_DEBUG"):
        text += "\n" + traceback.format_exc()
    return text


def execute_job(plan: RenderPlan, job: ShotJob, store: JobStore, worker: str, generator, context: RenderContext,
                cast_ids: list[str] | None = None, suffix: str | None = None, job_bar=None) -> JobOutcome:
    """Render one claimed job and record the result (the job must be claimed by ``worker``)."""
    t0 = time.time()
    problem = job_problem(plan, job, cast_ids)
    if problem:
        store.fail(job.id, worker, f"plan: {problem}")
        return JobOutcome(job.id, job.label, "failed", error=problem)
    try:
        with _Heartbeat(store.path, job.id, worker, store.lease_seconds) as beat:
            out = produce_render(plan, job, generator, context, worker, suffix, job_bar)
    except Exception as exc:  # noqa: BLE001 - any failure of one job is recorded and the rest go on
        text = error_text(exc)
        store.fail(job.id, worker, text)
        return JobOutcome(job.id, job.label, "failed", error=text, seconds=time.time() - t0)
    ok = store.finish(job.id, worker, output_path=out["output_path"], sidecar_path=out["sidecar_path"],
                      version=out["version"], model=out["model"], spec_hash=job.spec_hash())
    state = "done" if ok and not beat.lost else "lost"
    return JobOutcome(job.id, job.label, state, out["output_path"], seconds=time.time() - t0, adopted=out["adopted"])


# ---------------------------------------------------------------------- loops
@dataclass
class RenderSummary:
    plan: str
    store: str
    counts: dict[str, int]
    outcomes: list[JobOutcome] = field(default_factory=list)
    records: list = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"plan": self.plan, "store": self.store, "counts": self.counts, "seconds": round(self.seconds, 3),
                "jobs": [r.to_dict() for r in self.records]}


def remove_stale_temporaries(plan: RenderPlan, store: JobStore | None = None, quiet_seconds: float = 600.0) -> list[Path]:
    """Temporary files of renders whose process was killed mid-write (never under a final name), and
    conform groups such a process left half done: :func:`s2v_toolkit.media.clean_stale` on the renders
    folder.

    A temporary name holds its writer's pid and machine: another machine's file is only removed once it
    has not changed for ``quiet_seconds``, and so is an older name without a machine while workers of
    other machines hold jobs of the plan (shared storage)."""
    import socket

    from s2v_toolkit.media import clean_stale

    folder = renders_dir(plan)
    if not folder.is_dir():
        return []
    remote = False
    if store is not None:
        host = socket.gethostname()
        remote = any(r.state == "running" and r.worker and r.worker.count(":") >= 3
                     and r.worker.split(":")[-3] != host for r in store.records())
    return clean_stale(folder, force=True, quiet_seconds=quiet_seconds, others_writing=remote)


def _prepare(plan: RenderPlan, store: JobStore, retry_failed: bool) -> list[str] | None:
    remove_stale_temporaries(plan, store)
    cast_ids = None
    if plan.cast:
        from s2v_toolkit.jobs.cast import load_cast

        cast_ids = load_cast(plan.cast).ids
    problems = {jid: f"plan: {msg}" for jid, msg in validate_plan(plan, cast_ids)}
    store.sync(plan, problems)
    if retry_failed:
        store.requeue_failed()
    return cast_ids


def worker_loop(plan: RenderPlan, store: JobStore, generator, *, worker: str | None = None,
                cast_ids: list[str] | None = None, max_jobs: int | None = None, overall_bar=None,
                show_job_bars: bool = False, wait_for_running: bool = True) -> list[JobOutcome]:
    """Claim and render jobs until none is left (or ``max_jobs``)."""
    worker = worker or new_worker_id()
    context = RenderContext(plan)
    outcomes: list[JobOutcome] = []
    while max_jobs is None or len(outcomes) < max_jobs:
        rec = store.claim(worker)
        if rec is None:
            # jobs still running elsewhere: wait for them (their worker may have been killed; then the
            # lease runs out, or at once when it was a process on this machine) and take them over
            if not wait_for_running or store.counts()["running"] == 0:
                break
            if store.expire_dead_local_workers() == 0:
                time.sleep(min(1.0, store.lease_seconds / 4.0))
            continue
        job = plan.job(rec.id)
        bar = None
        if show_job_bars:
            from tqdm import tqdm

            bar = tqdm(total=100, desc=f"  {job.label}"[:40], unit="%", leave=False, position=1)
        try:
            outcomes.append(execute_job(plan, job, store, worker, generator, context, cast_ids, job_bar=bar))
        finally:
            if bar is not None:
                bar.close()
        if overall_bar is not None:
            overall_bar.update(1)
            overall_bar.set_postfix_str(f"{job.label}: {outcomes[-1].state}")
    return outcomes


def _worker_process(plan_path: str, spec: GeneratorSpec, lease: float, prefix: str) -> None:
    worker = new_worker_id(prefix)   # made here: the id names this process (dead-worker detection)
    plan = load_plan(plan_path)
    store = JobStore(store_path_for(plan.path), lease)
    cast_ids = None
    if plan.cast:
        from s2v_toolkit.jobs.cast import load_cast

        cast_ids = load_cast(plan.cast).ids
    generator = load_generator(spec)
    worker_loop(plan, store, generator, worker=worker, cast_ids=cast_ids)
    store.close()


def render_plan(plan, generator=None, *, spec: GeneratorSpec | None = None, workers: int = 1,
                retry_failed: bool = False, lease_seconds: float = DEFAULT_LEASE_SECONDS, progress: bool = False,
                max_jobs: int | None = None, worker: str | None = None) -> RenderSummary:
    """Render every queued job of ``plan`` (a RenderPlan saved to a file, or the file's path).

    ``generator``: a loaded generator object (in-process only), else ``spec`` is loaded once (per worker
    process when ``workers > 1``). Done jobs are never redone; failed ones only with ``retry_failed``.
    """
    t0 = time.time()
    plan = plan if isinstance(plan, RenderPlan) else load_plan(plan)
    if plan.path is None:
        raise ValueError("render_plan needs a plan saved to a file (the job store lives beside it)")
    store = JobStore(store_path_for(plan.path), lease_seconds)
    try:
        cast_ids = _prepare(plan, store, retry_failed)
        todo = store.pending()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=todo, desc="render", unit="job", position=0)
        outcomes: list[JobOutcome] = []
        if workers <= 1:
            gen = generator if generator is not None else load_generator(spec)
            outcomes = worker_loop(plan, store, gen, worker=worker, cast_ids=cast_ids, max_jobs=max_jobs,
                                   overall_bar=bar, show_job_bars=progress)
        else:
            if generator is not None and spec is None:
                raise ValueError("workers > 1 need a GeneratorSpec (each worker process loads its own model)")
            import multiprocessing as mp

            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_worker_process, args=(str(plan.path), spec or GeneratorSpec(),
                                                                lease_seconds, f"w{i}"))
                     for i in range(workers)]
            for p in procs:
                p.start()
            seen = 0
            while any(p.is_alive() for p in procs):
                time.sleep(0.5)
                if bar is not None:
                    c = store.counts()
                    finished = max(0, todo - c["queued"] - c["running"])
                    bar.update(finished - seen)
                    seen = finished
            for p in procs:
                p.join()
        if bar is not None:
            bar.close()
        return RenderSummary(str(plan.path), str(store.path), store.counts(), outcomes, store.records(),
                             time.time() - t0)
    finally:
        store.close()


def format_table(records, plan: RenderPlan | None = None) -> str:
    """A plain-text table of job states (``s2vt status`` / the end of ``s2vt render``)."""
    rows = [("JOB", "LABEL", "ACTION", "STATE", "TRIES", "SECONDS", "OUTPUT / REASON")]
    for r in records:
        detail = r.output_path if r.state == "done" else (r.error or r.reason or "")
        if r.state == "done" and r.output_path and plan is not None and plan.path is not None:
            try:
                detail = os.path.relpath(r.output_path, plan.path.parent)
            except ValueError:
                pass
        detail = (detail or "").splitlines()[0] if detail else ""
        rows.append((r.id, r.label or "", r.action, r.state, str(r.attempts),
                     f"{r.seconds:.1f}" if r.seconds else "", detail[:100]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows)
