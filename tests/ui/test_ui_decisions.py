"""Decisions, re-render requests, conform of approved renders, filters and problem shots, through the widgets."""

from __future__ import annotations

import json

import opentimelineio as otio
from PySide6.QtCore import Qt

from s2v_toolkit.ui import APPROVED, NEEDS_CHANGES, REJECTED, ReviewFileStore


def stored(manifest) -> dict:
    return {j.job_id: j for j in ReviewFileStore(manifest).list_jobs()}


def test_approve_with_note_and_frame_note_is_persisted(qtbot, window, manifest):
    v = window.viewer
    qtbot.keyClicks(window.decisions.note, "good sync, keep")
    for _ in range(6):
        qtbot.keyClick(v.view, Qt.Key.Key_Right)
    qtbot.keyClicks(window.decisions.frame_note, "teeth blur here")
    qtbot.keyClick(window.decisions.frame_note, Qt.Key.Key_Return)
    window.decisions.note.setFocus()                   # Alt+A decides even while the note has the focus
    qtbot.keyClick(window.decisions.note, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    assert window.decisions.note.toPlainText() == "good sync, keep"

    job = stored(manifest)["j-sh010"]
    assert job.decision.status == APPROVED
    assert job.decision.note == "good sync, keep"
    assert [(n.frame, n.note) for n in job.decision.frame_notes] == [(6, "teeth blur here")]
    assert stored(manifest)["j-sh020"].decision is None
    assert "approved" in window.shots.model.data(window.shots.model.index(0, 6))
    assert v.scrub.note_frames == [6]

    # a later verdict replaces the earlier one and keeps the frame notes
    window.decide(NEEDS_CHANGES)
    job = stored(manifest)["j-sh010"]
    assert job.decision.status == NEEDS_CHANGES and len(job.decision.frame_notes) == 1

    # clicking the frame note jumps there
    qtbot.keyClick(v.view, Qt.Key.Key_Home)
    item = window.decisions.frame_note_list.item(0)
    window.decisions.frame_note_list.itemClicked.emit(item)
    assert v.frame == 6


def test_conform_approved_writes_only_approved_renders_with_their_decision(qtbot, window, manifest, tmp_path):
    window.decide(APPROVED)                             # SH010
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_PageDown)
    assert window.current_job().job_id == "j-sh020"
    window.decide(REJECTED)
    out = tmp_path / "conformed"
    out.mkdir()
    result = window.conform_approved(out)
    assert result is not None and len(result["placed"]) == 1, result
    tl = otio.adapters.read_from_file(result["outputs"]["otio_json"])
    render_tracks = [t for t in tl.video_tracks() if t.name.startswith("S2V v")]
    clips = [c for t in render_tracks for c in t.find_clips()]
    assert len(clips) == 1
    md = clips[0].metadata["s2v_toolkit"]
    assert md["job_id"] == "j-sh010"
    assert md["review"]["status"] == APPROVED
    assert md["record_in"] == "01:00:00:00" and md["record_out"] == "01:00:01:00"
    assert clips[0].media_reference.target_url.endswith("SH010_v001.mp4")


def test_conform_with_nothing_approved_reports_instead_of_crashing(qtbot, window, tmp_path):
    assert window.conform_approved(tmp_path) is None
    assert "no approved renders" in window.statusBar().currentMessage()


def test_rerender_queues_a_new_version_with_the_seed(qtbot, window, manifest):
    window.decisions.seed.setValue(1234)
    qtbot.mouseClick(window.decisions.rerender_button, Qt.MouseButton.LeftButton)
    jobs = ReviewFileStore(manifest).list_jobs()
    new = [j for j in jobs if j.shot == "SH010" and j.version == 2]
    assert len(new) == 1
    assert new[0].seed == 1234 and new[0].state == "queued" and new[0].render_path is None
    assert new[0].sidecar["previous_job"] == "j-sh010"
    assert len(jobs) == 6
    assert window.shots.model.rowCount() == 6
    # the list shows the queued version; it has nothing to approve yet
    assert window.shots.select_job(new[0].job_id)
    assert not window.decisions.buttons[APPROVED].isEnabled()
    assert "not rendered yet" in window.viewer.view.messages["B"]


def test_filters_by_state_character_decision_and_text(qtbot, window):
    shots = window.shots
    window.decide(APPROVED)

    def visible():
        return [j.shot for j in shots.visible_jobs()]

    assert visible() == ["SH010", "SH020", "SH030", "SH040", "SH050"]
    shots.state_filter.setCurrentText("problem")
    assert visible() == ["SH040", "SH050"]
    shots.state_filter.setCurrentText("(all)")
    shots.character_filter.setCurrentText("hopper")
    assert visible() == ["SH020", "SH040"]
    shots.character_filter.setCurrentText("(all)")
    shots.decision_filter.setCurrentText("approved")
    assert visible() == ["SH010"]
    shots.decision_filter.setCurrentText("undecided")
    assert visible() == ["SH020", "SH030", "SH040", "SH050"]
    shots.decision_filter.setCurrentText("(all)")
    shots.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)    # by character, like a header click
    assert [j.character for j in shots.visible_jobs()] == ["hopper", "hopper", "collins", "collins", "collins"]
    qtbot.keyClicks(shots.search, "numbers")
    assert visible() == ["SH020"]


def test_missing_and_corrupt_media_show_in_the_list_not_a_crash(qtbot, window, tools):
    model = window.shots.model
    rows = {j.shot: r for r, j in enumerate(model.jobs)}
    tip_missing = model.data(model.index(rows["SH040"], 4), Qt.ItemDataRole.ToolTipRole)
    tip_corrupt = model.data(model.index(rows["SH050"], 4), Qt.ItemDataRole.ToolTipRole)
    assert "render missing" in tip_missing and "SH040_v001.mp4" in tip_missing
    assert "render unreadable" in tip_corrupt and "SH050_v001.mp4" in tip_corrupt
    assert "2 with problems" in window.summary.text()

    window.shots.select_job("j-sh040")
    tools.wait_shown(qtbot, window)
    assert "render missing" in window.viewer.view.messages["B"]
    assert window.viewer.sources["B"] is None and window.viewer.sources["A"] is not None
    assert "render missing" in window.shots.details.toPlainText()
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_Right)   # the original still steps
    tools.wait_shown(qtbot, window)
    assert window.viewer.view.shown_index["A"] == 1


def test_sidecar_settings_shown_in_details(window):
    text = window.shots.details.toPlainText()
    assert '"seed": 42' in text and '"model": "tiny"' in text


def test_manifest_round_trip_and_bad_manifest(manifest, tmp_path):
    import pytest

    from s2v_toolkit.ui import ReviewError, open_store

    store = open_store(manifest)
    assert isinstance(store, ReviewFileStore) and store.title == "fixture plan"
    before = store.list_jobs()
    from s2v_toolkit.ui import Decision

    store.set_decision("j-sh020", Decision(REJECTED, "mouth drifts"))
    doc = json.loads(manifest.read_text())
    assert not doc["jobs"][0]["render_path"].startswith("/")  # saved relative to the manifest
    after = ReviewFileStore(manifest).list_jobs()
    assert [j.render_path for j in after] == [j.render_path for j in before]   # and resolved back
    assert after[1].decision.to_dict() == store.list_jobs()[1].decision.to_dict()
    bad = tmp_path / "bad.json"
    bad.write_text('{"s2v_review": 1, "jobs": [{"shot": "x"}]}')
    with pytest.raises(ReviewError, match="bad job entry"):
        ReviewFileStore(bad)
    with pytest.raises(ReviewError, match="not found"):
        open_store(tmp_path / "nope.json")


def test_new_shot_over_a_gap_has_no_original_and_no_problem(qtbot, review_media, tools, tmp_path):
    from s2v_toolkit.ui import ReviewJob, write_manifest
    from s2v_toolkit.ui.window import ReviewWindow

    report = {"frames": [{"frame": i, "status": "generated"} for i in range(200)], "prompt": "x" * 500}
    gap = ReviewJob("j-gap", "GAP L04", "new_shot", "done", 1, "hopper", None, tools.FPS, "01:00:16:07",
                    "01:00:16:19", 12, None, 0, str(review_media["render_b"]), 0, sidecar=report)
    w = ReviewWindow(ReviewFileStore(write_manifest(tmp_path / "gap.json", [gap])))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.media_checked, timeout=10000)
    tools.wait_shown(qtbot, w)
    job = w.jobs[0]
    assert job.problems == []
    assert w.viewer.sources["A"] is None and "no original" in w.viewer.view.messages["A"]
    assert w.viewer.view.shown_index["B"] == 0
    assert not w.viewer.mask_button.isEnabled()                   # no mask video for this job
    details = w.shots.details.toPlainText()
    assert "198 more" in details and "x" * 500 not in details    # long sidecar reports are digested
    w.close()
