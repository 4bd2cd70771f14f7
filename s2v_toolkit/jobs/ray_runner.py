"""Ray runner: one Ray task per job (``num_gpus=1`` by default), state through the same job store.

The driver (the ``s2vt render --ray`` process) owns the store: it claims each job under its own worker
id, submits the task, renews the leases of the jobs in flight and records each result. The tasks only
read the plan and write media (the plan folder must be on storage every Ray node sees), so the SQLite
file is never written from another machine. Each Ray worker process loads the generator once and keeps
it for every task it runs. If the driver dies, its leases expire and the next run takes the jobs again;
a render that completed in the meantime is adopted, not rendered twice.
"""

from __future__ import annotations

import time

from s2v_toolkit.errors import S2VError
from s2v_toolkit.jobs.generator import GeneratorSpec
from s2v_toolkit.jobs.store import DEFAULT_LEASE_SECONDS, JobStore, new_worker_id, store_path_for


class RayUnavailable(S2VError):
    """Ray is not installed or the cluster cannot be reached."""


_WORKER_CACHE: dict = {}   # inside a Ray worker process: plan/generator loaded once


def _task_render(plan_path: str, job_id: str, spec: GeneratorSpec) -> dict:
    """Body of the Ray task (runs in a Ray worker process)."""
    from s2v_toolkit.jobs.generator import load_generator
    from s2v_toolkit.jobs.plan import load_plan
    from s2v_toolkit.jobs.runner import RenderContext, error_text, produce_render

    try:
        key = ("plan", plan_path)
        import os

        mtime = os.stat(plan_path).st_mtime
        if _WORKER_CACHE.get(key, (None,))[0] != mtime:
            plan = load_plan(plan_path)
            _WORKER_CACHE[key] = (mtime, plan, RenderContext(plan))
        _, plan, context = _WORKER_CACHE[key]
        gkey = ("generator", spec)
        if gkey not in _WORKER_CACHE:
            _WORKER_CACHE[gkey] = load_generator(spec)
        out = produce_render(plan, plan.job(job_id), _WORKER_CACHE[gkey], context, worker=f"ray:{os.getpid()}")
        return {"ok": True, **out}
    except Exception as exc:  # noqa: BLE001 - reported back to the driver, which fails that job only
        return {"ok": False, "error": error_text(exc)}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the Ray runner needs Ray: pip install 's2v-toolkit[ray]' (or pip install ray)") from None
    return ray


def render_plan_ray(plan, spec: GeneratorSpec | None = None, *, address: str | None = None, num_gpus: float = 1.0,
                    num_cpus: float = 1.0, retry_failed: bool = False, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                    progress: bool = False, init_kwargs: dict | None = None):
    """Render the plan's queued jobs as Ray tasks. ``address``: a cluster (``ray://host:10001``, ``auto``)
    or ``local``/None to start a local instance. ``num_gpus`` per task (0 for CPU-only tests)."""
    from s2v_toolkit.jobs.plan import load_plan
    from s2v_toolkit.jobs.runner import JobOutcome, RenderPlan, RenderSummary, _prepare

    ray = _import_ray()
    t0 = time.time()
    plan = plan if isinstance(plan, RenderPlan) else load_plan(plan)
    store = JobStore(store_path_for(plan.path), lease_seconds)
    started_here = False
    try:
        cast_ids = _prepare(plan, store, retry_failed)
        if not ray.is_initialized():
            kwargs = dict(init_kwargs or {})
            kwargs.setdefault("include_dashboard", False)
            kwargs.setdefault("log_to_driver", False)
            try:
                ray.init(address=None if address in (None, "local") else address, **kwargs)
            except Exception as exc:  # noqa: BLE001 - connection problems are the user's to fix
                raise RayUnavailable(f"cannot start or reach Ray at {address or 'local'}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            started_here = True
        remote = ray.remote(num_gpus=num_gpus, num_cpus=num_cpus, max_retries=0)(_task_render)
        driver = new_worker_id("ray-driver")
        spec = spec or GeneratorSpec()
        inflight: dict = {}
        outcomes: list[JobOutcome] = []
        from s2v_toolkit.jobs.plan import job_problem

        while True:
            rec = store.claim(driver)
            if rec is None:
                break
            job = plan.job(rec.id)
            problem = job_problem(plan, job, cast_ids)
            if problem:
                store.fail(job.id, driver, f"plan: {problem}")
                outcomes.append(JobOutcome(job.id, job.label, "failed", error=problem))
                continue
            inflight[remote.remote(str(plan.path), job.id, spec)] = (job, time.time())
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(inflight), desc="render (ray)", unit="job")
        last_renew = time.time()
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=max(lease_seconds / 3.0, 0.1))
            if time.time() - last_renew > lease_seconds / 3.0:
                for job, _ in inflight.values():
                    store.renew(job.id, driver)
                last_renew = time.time()
            for ref in ready:
                job, started = inflight.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a crashed task fails its job only
                    res = {"ok": False, "error": f"Ray task failed: {str(exc).splitlines()[0] if str(exc) else exc}"}
                if res.get("ok"):
                    store.finish(job.id, driver, output_path=res["output_path"], sidecar_path=res["sidecar_path"],
                                 version=res["version"], model=res["model"], spec_hash=job.spec_hash())
                    outcomes.append(JobOutcome(job.id, job.label, "done", res["output_path"],
                                               seconds=time.time() - started, adopted=res.get("adopted", False)))
                else:
                    store.fail(job.id, driver, res["error"])
                    outcomes.append(JobOutcome(job.id, job.label, "failed", error=res["error"],
                                               seconds=time.time() - started))
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        return RenderSummary(str(plan.path), str(store.path), store.counts(), outcomes, store.records(),
                             time.time() - t0)
    finally:
        store.close()
        if started_here:
            ray.shutdown()
