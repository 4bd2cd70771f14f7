"""The panel on a real RenderPlan + SQLite job store (s2v_toolkit.jobs), through the adapter."""

from __future__ import annotations

import shutil
import sqlite3

import opentimelineio as otio
import pytest
from PySide6.QtCore import Qt

pytest.importorskip("s2v_toolkit.jobs.store")

from s2v_toolkit.jobs.plan import RenderPlan, ShotJob, load_plan  # noqa: E402
from s2v_toolkit.jobs.store import JobStore, store_path_for  # noqa: E402
from s2v_toolkit.ui import APPROVED, open_store  # noqa: E402
from s2v_toolkit.ui.jobs_adapter import PlanReviewStore  # noqa: E402


@pytest.fixture
def plan_path(review_media, tools, tmp_path):
    m = review_media
    tl = tmp_path / "scene.otio"
    shutil.copy(m["dir"] / "scene.otio", tl)
    plan = RenderPlan(timeline=str(tl), cast=None, rate=float(tools.FPS), start_frame=86400, drop_frame=False,
                      duration_frames=60)
    plan.jobs = [
        ShotJob("jSH010", "SH010 L01 collins", "redub", "face found", 1, "collins", 0, 24, clip_name="SH010",
                media_path=str(m["orig_a"]), source_in=tools.SH010_SOURCE_START, seed=42),
        ShotJob("jSH020", "SH020 L02 hopper", "redub", "face found", 2, "hopper", 24, 44, clip_name="SH020",
                media_path=str(m["orig_b"]), source_in=0, seed=7),
        ShotJob("jSH030", "SH030 L03 collins", "skip", "no face in the shot", 3, "collins", 44, 60,
                clip_name="SH030", media_path=str(m["orig_a"]), source_in=0, seed=9),
    ]
    path = plan.save(tmp_path / "scene.plan.json")
    with JobStore(store_path_for(path)) as store:
        store.sync(plan)
        for job_id, render in (("jSH010", m["render_a"]), ("jSH020", m["render_b"])):
            rec = store.claim("test-worker", job_id)
            assert store.finish(rec.id, "test-worker", output_path=str(render), sidecar_path=None, version=1,
                                model="tiny", spec_hash=plan.job(job_id).spec_hash())
    return path


@pytest.fixture
def plan_window(qtbot, plan_path, tools):
    from s2v_toolkit.ui.window import ReviewWindow

    store = open_store(plan_path)
    w = ReviewWindow(store)
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    qtbot.waitUntil(lambda: w.media_checked, timeout=10000)
    tools.wait_shown(qtbot, w)
    yield w
    w.close()
    store.close()


def test_plan_jobs_are_listed_with_store_state(plan_window, tools):
    jobs = {j.job_id: j for j in plan_window.jobs}
    assert isinstance(plan_window.store, PlanReviewStore)
    assert [j.state for j in jobs.values()] == ["done", "done", "skipped"]
    assert jobs["jSH010"].record_in == "01:00:00:00" and jobs["jSH010"].record_out == "01:00:01:00"
    assert jobs["jSH030"].error == "no face in the shot" and jobs["jSH030"].render_path is None
    assert not any(j.problems for j in jobs.values())


def test_plan_viewer_shows_source_range_against_render(qtbot, plan_window, tools):
    v = plan_window.viewer
    qtbot.keyClick(v.view, Qt.Key.Key_Right)
    tools.wait_shown(qtbot, plan_window)
    assert v.view.shown_index == {"A": tools.SH010_SOURCE_START + 1, "B": 1}


def test_plan_decision_in_store_and_conform_of_approved(qtbot, plan_window, plan_path, tmp_path):
    qtbot.keyClicks(plan_window.decisions.note, "ship it")
    plan_window.viewer.view.setFocus()
    qtbot.keyClick(plan_window.viewer.view, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    with sqlite3.connect(store_path_for(plan_path)) as db:
        rows = db.execute("SELECT job_id, version, status, note FROM review_decisions").fetchall()
    assert rows == [("jSH010", 1, APPROVED, "ship it")]

    out = tmp_path / "out"
    result = plan_window.conform_approved(out)
    assert result is not None, plan_window.statusBar().currentMessage()
    tl = otio.adapters.read_from_file(result["outputs"]["otio_json"])
    clips = [c for t in tl.video_tracks() if t.name.startswith("S2V v") for c in t.find_clips()]
    assert [c.metadata["s2v_toolkit"]["job_id"] for c in clips] == ["jSH010"]     # jSH020 is done but not approved
    assert clips[0].metadata["s2v_toolkit"]["review"]["note"] == "ship it"


def test_plan_rerender_requeues_with_the_new_seed(qtbot, plan_window, plan_path):
    plan_window.decisions.seed.setValue(555)
    qtbot.mouseClick(plan_window.decisions.rerender_button, Qt.MouseButton.LeftButton)
    assert load_plan(plan_path).job("jSH010").seed == 555
    with JobStore(store_path_for(plan_path)) as store:
        rec = store.get("jSH010")
    assert rec.state == "queued" and rec.version == 1          # the v1 render stays known until v2 lands
    assert plan_window.current_job().job_id == "jSH010" and plan_window.current_job().state == "queued"
