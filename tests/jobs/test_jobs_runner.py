"""Runner: renders through a generator, resumes, isolates failures, adopts completed renders, conforms."""

from __future__ import annotations

import json
import os

import pytest

from jobs_helpers import fast_plan
from jobs_testgen import FlatColourGenerator
from s2v_toolkit.jobs import (
    GeneratorSpec, JobStore, RenderContext, conform_plan, load_plan, render_plan, renders_dir, store_path_for,
)


def _media_files(plan):
    folder = renders_dir(plan)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_render_resume_failure_isolation_and_retry(tmp_path, monkeypatch):
    plan = fast_plan(tmp_path)
    gen = FlatColourGenerator()
    monkeypatch.setenv("S2VT_TESTGEN_FAIL", "SH020")        # this job's render raises
    summary = render_plan(plan, gen)
    states = {r.label.split()[0]: r.state for r in summary.records}
    assert states == {"SH010": "done", "SH020": "failed", "SH030": "done", "GAP": "done"}
    failed = next(r for r in summary.records if r.state == "failed")
    assert "RuntimeError: test generator refuses SH020" in failed.error and failed.attempts == 1
    assert len(gen.rendered) == 3
    # every done job has its media (right length, timeline rate) and a sidecar naming job and spec
    from s2v_toolkit.media import probe

    for r in summary.records:
        if r.state != "done":
            continue
        job = plan.job(r.id)
        info = probe(r.output_path)
        assert info.video.frame_count == job.frame_count
        assert abs(float(info.video.fps) - float(plan.fps)) < 1e-6
        side = json.loads(open(r.sidecar_path).read())
        assert side["job_id"] == job.id and side["spec_hash"] == job.spec_hash() and side["version"] == 1
        assert r.output_path.endswith("_v001.mp4")
    files = _media_files(plan)
    assert not [f for f in files if f.startswith(".")]      # no temporary files left
    # re-run: nothing is redone, the failed job stays failed
    monkeypatch.delenv("S2VT_TESTGEN_FAIL")
    again = render_plan(load_plan(plan.path), gen)
    assert len(gen.rendered) == 3 and again.counts["failed"] == 1
    assert _media_files(plan) == files
    # retry on request: only the failed job is rendered
    retry = render_plan(load_plan(plan.path), gen, retry_failed=True)
    assert len(gen.rendered) == 4 and retry.counts == {"queued": 0, "running": 0, "done": 4, "failed": 0, "skipped": 0}
    assert next(r for r in retry.records if r.label.startswith("SH020")).attempts == 2


def test_no_generator_fails_jobs_with_the_reason_and_writes_nothing(tmp_path):
    plan = fast_plan(tmp_path)
    summary = render_plan(plan, spec=GeneratorSpec())
    assert summary.counts["done"] == 0 and summary.counts["failed"] == 4
    assert all("no generator chosen" in r.error for r in summary.records)
    assert not [f for f in _media_files(plan) if not f.endswith(".json")]


def test_bad_plan_entries_fail_alone(tmp_path):
    plan = fast_plan(tmp_path)
    raw = json.loads(plan.path.read_text())
    raw["jobs"][0]["character"] = "nobody"
    raw["jobs"][1]["record_out"] = 99_999
    raw["jobs"][2]["media_path"] = "demo/media/missing.mp4"
    plan.path.write_text(json.dumps(raw))
    summary = render_plan(load_plan(plan.path), FlatColourGenerator())
    by = {r.label.split()[0]: r for r in summary.records}
    assert by["GAP"].state == "done"
    assert "unknown character 'nobody'" in by["SH010"].error
    assert "outside the timeline" in by["SH020"].error
    assert "media not found" in by["SH030"].error
    # plan problems are not retried blindly; fixing the plan makes the job renderable again
    raw["jobs"][0]["character"] = "collins"
    plan.path.write_text(json.dumps(raw))
    fixed = render_plan(load_plan(plan.path), FlatColourGenerator())
    assert {r.label.split()[0]: r.state for r in fixed.records}["SH010"] == "done"


@pytest.mark.slow
def test_tiny_model_renders_a_redub_and_a_new_shot(tmp_path):
    """The Wan S2V pipelines behind the job interface (random weights: plumbing, not quality)."""
    from s2v_toolkit.media import probe

    plan = fast_plan(tmp_path)
    raw = json.loads(plan.path.read_text())
    raw["jobs"][0]["action"] = raw["jobs"][2]["action"] = "skip"      # keep the test short: SH020 + the gap
    raw["jobs"][1]["face"] = {"track_id": 0}                           # what the face stage picks
    plan.path.write_text(json.dumps(raw))
    summary = render_plan(load_plan(plan.path), spec=GeneratorSpec(model="tiny"))
    by = {r.label.split()[0]: r for r in summary.records}
    assert by["SH020"].state == "done" and by["GAP"].state == "done", [r.error for r in summary.records]
    for name, pipeline in (("SH020", "redub"), ("GAP", "generate")):
        rec = by[name]
        job = plan.job(rec.id)
        assert probe(rec.output_path).video.frame_count == job.frame_count
        side = json.loads(open(rec.sidecar_path).read())
        assert side["generator"]["pipeline"] == pipeline and side["generator"]["plumbing_only"] is True
        assert side["model"].startswith("wan-s2v tiny")
        if pipeline == "redub":  # the source frames' placement by time is on record (a CFR source: one to one)
            fm = side["generator"]["source_frame_map"]
            assert fm["count"] == job.frame_count and not fm["duplicated"] and not fm["substituted"]
    # the re-dub keeps the shot's size; the new shot is the model's size
    assert probe(by["SH020"].output_path).video.width == probe(plan.job(by["SH020"].id).media_path).video.width


def test_completed_render_of_a_killed_worker_is_adopted_not_redone(tmp_path):
    from s2v_toolkit.jobs.runner import produce_render

    plan = fast_plan(tmp_path)
    job = plan.jobs[0]
    gen = FlatColourGenerator()
    out = produce_render(plan, job, gen, RenderContext(plan))   # rendered, then "killed" before the store knew
    # a second worker killed mid-write left its temporary file (pid 2**22 + 1 cannot exist on Linux)
    stale = renders_dir(plan) / f".{job.label}_v001.s2vt-tmp-{2**22 + 1}-0badf00d.mp4"
    stale.write_bytes(b"partial")
    mine = renders_dir(plan) / f".other.s2vt-tmp-{os.getpid()}-0badf00d.mp4"   # a live writer's: kept
    mine.write_bytes(b"in progress")
    summary = render_plan(plan, gen)
    assert not stale.exists() and mine.exists()
    mine.unlink()
    rec = next(r for r in summary.records if r.id == job.id)
    assert rec.state == "done" and rec.output_path == out["output_path"] and rec.version == 1
    assert gen.rendered.count(job.id) == 1
    # an edit of the job renders a new version beside the old one
    raw = json.loads(plan.path.read_text())
    raw["jobs"][0]["record_out"] -= 3
    plan.path.write_text(json.dumps(raw))
    edited = render_plan(load_plan(plan.path), gen)
    rec = next(r for r in edited.records if r.id == job.id)
    assert rec.version == 2 and rec.output_path.endswith("_v002.mp4") and os.path.exists(out["output_path"])


def test_conform_puts_done_renders_on_a_new_versioned_track(tmp_path):
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    plan = fast_plan(tmp_path)
    render_plan(plan, FlatColourGenerator())
    result = conform_plan(plan.path, tmp_path / "out")
    assert result.version == 1 and len(result.placed) == 4 and not result.problems
    otio_path = result.outputs["otio_json"]
    desc = describe_timeline(read_timeline(otio_path))
    track = next(t for t in desc.tracks if t.name == "S2V v001")
    clips = [desc.clip(c) for c in track.clip_ids]
    assert sorted((int(c.record.start.value), int(c.record.duration.value)) for c in clips) == \
        sorted((j.record_in, j.frame_count) for j in plan.jobs)
    assert all(c.media.exists for c in clips)
    assert {c.s2v["job_id"] for c in clips} == {j.id for j in plan.jobs}
    second = conform_plan(plan.path, tmp_path / "out")
    assert second.version == 2 and os.path.exists(otio_path)          # the first conform is kept
    exact = conform_plan(plan.path, tmp_path / "mine.xml")
    assert exact.outputs == {"file": str(tmp_path / "mine.xml")}
    assert (tmp_path / "mine.xml").is_file()


def test_workers_processes_share_the_store(tmp_path, monkeypatch):
    plan = fast_plan(tmp_path)
    log = tmp_path / "renders.log"
    here = os.path.dirname(__file__)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("S2VT_TESTGEN_LOG", str(log))
    summary = render_plan(plan, spec=GeneratorSpec(factory="jobs_testgen:make"), workers=2)
    assert summary.counts["done"] == 4
    rendered = log.read_text().split()
    assert sorted(rendered) == sorted(j.id for j in plan.jobs)            # each job rendered exactly once
    with JobStore(store_path_for(plan.path)) as store:
        assert len({r.worker for r in store.records()}) >= 1


def test_stale_temporaries_on_shared_storage_wait_for_silence(tmp_path):
    """The renders folder's sweep (media's clean_stale): a dead writer of this machine is removed at once;
    a file of another machine (its tag), or an untagged one while another machine's worker holds a job,
    only after ``quiet_seconds`` without a change; a live writer's never."""
    from s2v_toolkit.jobs.runner import remove_stale_temporaries
    from s2v_toolkit.media.atomic import host_tag

    plan = fast_plan(tmp_path)
    folder = renders_dir(plan)
    folder.mkdir(parents=True, exist_ok=True)
    dead = 2**22 + 1  # cannot exist on Linux
    other = "h" + format((int(host_tag()[1:], 16) + 1) % 2**24, "06x")
    names = {"mine_dead": f".a.s2vt-tmp-{dead}-0badf00d-{host_tag()}.mp4",
             "other_host": f".b.s2vt-tmp-{dead}-0badf00d-{other}.mp4",
             "untagged_dead": f".c.s2vt-tmp-{dead}-0badf00d.mp4",
             "mine_alive": f".d.s2vt-tmp-{os.getpid()}-0badf00d-{host_tag()}.mp4",
             "untagged_alive": f".e.s2vt-tmp-{os.getpid()}-0badf00d.mp4"}

    def make(*keys, age=0.0):
        for k in keys:
            p = folder / names[k]
            p.write_bytes(b"partial")
            os.utime(p, (p.stat().st_atime - age, p.stat().st_mtime - age))

    def left():
        return {k for k, n in names.items() if (folder / n).exists()}

    store = JobStore(store_path_for(plan.path))
    store.sync(plan)
    store.claim("worker:another-machine:123:abcdef")  # a job held by a worker of another machine
    make(*names)
    assert {p.name for p in remove_stale_temporaries(plan, store)} == {names["mine_dead"]}
    assert left() == set(names) - {"mine_dead"}
    make("other_host", "untagged_dead", "untagged_alive", age=601)  # silent for longer than quiet_seconds
    remove_stale_temporaries(plan, store)
    assert left() == {"mine_alive", "untagged_alive"}
    # with no other machine at work, an untagged name is this machine's: its pid decides
    make("untagged_dead")
    remove_stale_temporaries(plan, None)
    assert left() == {"mine_alive", "untagged_alive"}
    store.close()


@pytest.mark.slow
def test_tiny_model_redub_of_rotated_phone_footage(tmp_path):
    """A shot whose media is phone footage stored sideways (a display matrix): the render job works on upright
    frames, as the faces stage saw them, and writes the render as stored with the source's display matrix.
    Before, it pasted the mouth at the upright face's coordinates into the sideways frames, and the render
    played sideways."""
    import av
    import numpy as np

    from s2v_toolkit.faces import find_landmarker_bundle
    from s2v_toolkit.media import display_transform, probe, read_frames, rotate_frame

    if find_landmarker_bundle() is None:
        pytest.skip("face_landmarker.task not built: run `s2vt faces setup` first")
    plan = fast_plan(tmp_path)
    raw = json.loads(plan.path.read_text())
    job = raw["jobs"][1]  # SH020: Grace Hopper's face
    for j in raw["jobs"]:
        j["action"] = "skip" if j is not job else "redub"
    src = probe(plan.job(job["id"]).media_path).video
    upright = read_frames(plan.job(job["id"]).media_path, 0, src.frame_count)
    phone = tmp_path / "phone.mov"
    with av.open(str(phone), "w") as c:  # the same shot, stored turned clockwise, shown upright by its matrix
        s = c.add_stream("prores_ks", rate=src.fps, options={"profile": "3"})
        s.width, s.height, s.pix_fmt = src.height, src.width, "yuv422p10le"
        s.set_display_rotation(90)
        c.metadata["timecode"] = src.start_timecode
        for k, f in enumerate(upright):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(f, -1)), format="rgb24")
            frame.pts = k
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    job["media_path"] = str(phone)
    job.pop("face", None)
    plan.path.write_text(json.dumps(raw))
    summary = render_plan(load_plan(plan.path), spec=GeneratorSpec(model="tiny"))
    (rec,) = [r for r in summary.records if r.id == job["id"]]
    assert rec.state == "done", rec.error
    assert display_transform(rec.output_path) == display_transform(phone) != (0, None)
    out = probe(rec.output_path).video
    assert (out.width, out.height) == (src.height, src.width)  # stored sideways, as the source
    side = json.loads(open(rec.sidecar_path).read())["generator"]
    assert side["faces_turned"] == 90 and side["pipeline"] == "redub"
    # the mouth changed where the face is once the frames are turned upright: near the face's lower middle
    first = int(job["source_in"])
    shown = [rotate_frame(f, 90) for f in read_frames(rec.output_path, 0, 8)]
    diff = np.mean([np.abs(a.astype(int) - b.astype(int)).sum(axis=2) for a, b in zip(shown, upright[first:first + 8])],
                   axis=0)
    ys, xs = np.nonzero(diff > 60)
    assert len(ys) > 50, "nothing generated"
    h, w = diff.shape
    assert w * 0.25 < xs.mean() < w * 0.75 and h * 0.3 < ys.mean() < h * 0.9, (xs.mean(), ys.mean(), w, h)
