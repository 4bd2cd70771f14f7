"""The demo project as shipped, and ``s2vt demo`` on it."""

import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
import soundfile as sf

from s2v_toolkit.cli import main
from s2v_toolkit.demo import PROJECT_DIR, run_demo
from s2v_toolkit.media import probe, read_audio


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_demo_project_is_small_and_complete():
    project = json.loads((PROJECT_DIR / "project.json").read_text())
    files = [p for p in PROJECT_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    fps = Fraction(project["fps"])
    assert fps == Fraction(24000, 1001)
    for shot in project["shots"]:
        if shot["media"]:
            v = probe(PROJECT_DIR / shot["media"]).video
            assert v.fps == fps and v.start_timecode == shot["source_tc"]
            assert v.frame_count == shot["frames"] + 24  # 12-frame handles on both sides
    # Each line's audio is speech where the manifest says, in the character's own file.
    for line in project["lines"]:
        audio = read_audio(PROJECT_DIR / line["media"], sample_rate=16000)
        native = sf.info(str(PROJECT_DIR / line["media"]))
        assert native.samplerate == 48000 and native.frames == round(Fraction(line["frames"]) / fps * 48000)
        assert len(audio) == math.ceil(native.frames / 3)  # 48 kHz -> 16 kHz, partial last sample kept
        speech = int(line["speech_seconds"] * 16000)
        assert abs(audio[:speech]).max() > 0.5 and abs(audio[speech + 400 :]).max(initial=0) < 0.02
    assert {c for _, c in [(s["name"], s["kind"]) for s in project["shots"]]} == {"collins", "hopper", "cutaway", "gap"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The main job, once, on the shipped project with the tiny models (the slow part of this file)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    before = _tree_digest(PROJECT_DIR)
    summary = run_demo(out_dir=out)
    return summary, out, before


def test_run_demo_plans_renders_and_conforms(demo_run):
    summary, out, before = demo_run
    assert _tree_digest(PROJECT_DIR) == before  # the project is never written to
    assert summary.characters == ["COLLINS", "HOPPER"]
    assert [ln["character"] for ln in summary.lines] == ["COLLINS", "HOPPER", "COLLINS", "HOPPER"]
    assert summary.lines[0]["record"].startswith("01:00:00:12")
    assert len(summary.media) == 7 and not summary.missing_media
    assert any("fcp_xml" in s and "same cut: True" in s for s in summary.stages)
    # The plan finds what the scene was built to contain.
    project = json.loads((PROJECT_DIR / "project.json").read_text())
    by_shot = {j["label"].split()[0]: j for j in summary.jobs}
    assert {"SH010": "redub", "SH020": "redub", "SH030": "skip", "GAP": "new_shot"} == {
        k: v["action"] for k, v in by_shot.items()}
    assert project["expected_actions"]["SH040"] == "new_shot"  # the gap under line 4
    # Every job that should render did, as real media of the right length, labelled as plumbing.
    for shot in ("SH010", "SH020", "GAP"):
        job = by_shot[shot]
        assert job["state"] == "done", job
        info = probe(job["output"])
        assert info.video.fps == Fraction(24000, 1001) and info.audio
        sidecar = json.loads(Path(job["output"] + ".json").read_text())
        assert "plumbing" in json.dumps(sidecar).lower()
    assert by_shot["SH030"]["state"] == "skipped" and "face" in by_shot["SH030"]["reason"]
    # Renders are post-ready: 48 kHz audio; a re-dub carries its source's timecode at its first frame
    # (the shot's source TC + 12 handle frames + how far into the shot the job starts), a new shot
    # the record timecode it was made for.
    from s2v_toolkit.jobs import load_plan
    from s2v_toolkit.media import frames_to_timecode, timecode_to_frames

    plan = load_plan(out / "plan.json")
    jobs = {j.id: j for j in plan.jobs}
    fps = Fraction(project["fps"])
    shot = project["shots"][0]
    sh010_job = jobs[by_shot["SH010"]["id"]]
    first = timecode_to_frames(shot["source_tc"], fps) + 12 + (sh010_job.record_in - shot["record_frame"])
    sh010 = probe(by_shot["SH010"]["output"])
    assert sh010.audio[0].sample_rate == 48000
    assert sh010.video.start_timecode == frames_to_timecode(first, fps)
    gap_job = jobs[by_shot["GAP"]["id"]]
    assert probe(by_shot["GAP"]["output"]).video.start_timecode == plan.timecodes(gap_job)[0]
    # The conformed timeline is a new file that re-reads with every clip linked, renders on a new track.
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    conformed = Path(summary.conformed["otio_json"])
    assert conformed.parent == out and conformed.name == "scene.s2v_v001.otio"
    back = describe_timeline(read_timeline(conformed))
    assert not [c.name for c in back.clips if not c.media.exists]
    assert [t.name for t in back.tracks if t.name.startswith("S2V")] == ["S2V v001"]
    saved = json.loads((out / "demo_summary.json").read_text())
    assert saved["timeline"] == "DEMO_SCENE" and saved["clips"] == summary.clips
    assert "random-weight" in summary.report()


def test_run_demo_again_resumes_without_rendering_twice(demo_run):
    summary, out, _ = demo_run
    outputs = {j["output"]: Path(j["output"]).stat().st_mtime_ns for j in summary.jobs if j["output"]}
    again = run_demo(out_dir=out)
    assert any(s.startswith("plan: reused") for s in again.stages)
    assert {j["output"]: Path(j["output"]).stat().st_mtime_ns for j in again.jobs if j["output"]} == outputs
    assert Path(again.conformed["otio_json"]).name == "scene.s2v_v002.otio"  # a new version, never a rewrite


def test_demo_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["demo", "--project", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("s2vt: error:") and "project.json" in err and len(err.splitlines()) == 1


def test_demo_cli_plan_only_prints_a_summary(tmp_path, capsys):
    assert main(["demo", "--plan-only", "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "DEMO_SCENE" in out and "COLLINS" in out and "HOPPER" in out and "2 redub" in out
    assert not (tmp_path / "o" / "plan.renders").exists()


def test_review_panel_screenshot_of_the_demo_labels_random_weights(demo_run, tmp_path):
    """The review panel opens the demo's plan; tiny-model renders are labelled where the editor sees them."""
    pytest.importorskip("PySide6")
    from s2v_toolkit.ui import open_store

    summary, out, _ = demo_run
    jobs = open_store(out / "plan.json").list_jobs()
    done = [j for j in jobs if j.state == "done"]
    assert len(done) == 3 and all(j.random_weights for j in done)
    shot = tmp_path / "review.png"
    assert main(["review", str(out / "plan.json"), "--screenshot", str(shot)]) == 0
    import av

    with av.open(str(shot)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert img.shape[0] >= 600 and img.shape[1] >= 1000 and img.std() > 20  # a real, drawn window
