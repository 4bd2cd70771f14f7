"""Job store: claims are exclusive across processes, leases expire, done stays done, failed on request."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from s2v_toolkit.jobs import JobStore, RenderPlan, ShotJob


def _plan(n: int, tmp_path) -> RenderPlan:
    plan = RenderPlan(timeline=str(tmp_path / "t.otio"), cast=None, rate=25.0, start_frame=0, drop_frame=False,
                      duration_frames=10_000)
    plan.jobs = [ShotJob(f"j{i:03d}", f"job {i}", "redub" if i % 5 else "skip", "", 1, "a", i * 10, i * 10 + 5)
                 for i in range(n)]
    return plan


WORKER = textwrap.dedent("""
    import sys, time
    from s2v_toolkit.jobs import JobStore
    store = JobStore(sys.argv[1], lease_seconds=30)
    name = sys.argv[2]
    while time.time() < float(sys.argv[3]):
        time.sleep(0.01)  # both workers start claiming at the same moment
    got = []
    while True:
        rec = store.claim(name)
        if rec is None:
            break
        got.append(rec.id)
        assert store.finish(rec.id, name, output_path="x", sidecar_path=None, version=1, model="m")
    print(" ".join(got))
""")


def test_two_processes_never_take_the_same_job(tmp_path):
    db = tmp_path / "p.jobs.sqlite"
    plan = _plan(60, tmp_path)
    with JobStore(db) as store:
        store.sync(plan)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, str(script), str(db), f"w{i}", start], stdout=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    a, b = map(set, outs)
    renderable = {j.id for j in plan.jobs if j.action == "redub"}
    assert not (a & b)
    assert a | b == renderable and len(outs[0]) + len(outs[1]) == len(renderable)
    with JobStore(db) as store:
        assert store.counts()["done"] == len(renderable)
        assert store.counts()["skipped"] == len(plan.jobs) - len(renderable)
        assert all(r.attempts == 1 for r in store.records() if r.state == "done")


def test_expired_lease_is_taken_again_and_the_old_worker_cannot_finish(tmp_path):
    plan = _plan(2, tmp_path)
    with JobStore(tmp_path / "s.sqlite") as store:
        store.sync(plan)
        first = store.claim("dead", lease_seconds=0.2)
        assert first.id == "j001"
        assert store.claim("other", job_id="j001") is None        # lease still held
        time.sleep(0.3)
        again = store.claim("other")
        assert again.id == "j001" and again.attempts == 2 and again.worker == "other"
        assert not store.finish("j001", "dead", output_path="x", sidecar_path=None, version=1, model=None)
        assert not store.renew("j001", "dead")
        assert store.renew("j001", "other")
        assert store.finish("j001", "other", output_path="y", sidecar_path=None, version=1, model=None)
        assert store.get("j001").state == "done" and store.get("j001").output_path == "y"


def test_done_is_not_redone_failed_only_on_request_and_edits_requeue(tmp_path):
    plan = _plan(4, tmp_path)          # j000 skip, j001..j003 redub
    with JobStore(tmp_path / "s.sqlite") as store:
        store.sync(plan)
        r1 = store.claim("w")
        store.finish(r1.id, "w", output_path="o1", sidecar_path=None, version=1, model=None)
        r2 = store.claim("w")
        store.fail(r2.id, "w", "RuntimeError: boom")
        r3 = store.claim("w")
        store.finish(r3.id, "w", output_path="o3", sidecar_path=None, version=1, model=None)
        assert store.claim("w") is None
        store.sync(plan)                                   # a re-run with the same plan
        assert store.claim("w") is None                    # done stays done, failed stays failed
        assert store.get(r2.id).error == "RuntimeError: boom"
        assert store.requeue_failed() == 1
        assert store.claim("w").id == r2.id
        # an edit of a done job's render inputs queues it again; a label edit does not
        plan.jobs[3].label = "renamed"
        plan.jobs[1].record_out += 2
        changes = store.sync(plan)
        assert changes["changed"] == 1
        assert store.get(plan.jobs[1].id).state == "queued"
        assert store.get(plan.jobs[3].id).state == "done" and store.get(plan.jobs[3].id).label == "renamed"
        # a job that leaves the plan is no longer counted
        plan.jobs.pop(3)
        store.sync(plan)
        assert "j003" not in {r.id for r in store.records()}
