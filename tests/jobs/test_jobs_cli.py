"""s2vt plan / render / status / conform, and resume after SIGKILL of `s2vt render`."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs_helpers import TESTS_DIR, copy_demo, demo_turns, edl_of
from s2v_toolkit.cli import main


def _env(tmp_path, **extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _plan_argv(tmp_path) -> tuple[list[str], Path]:
    """`s2vt plan` of a copy of the demo from its lines as speaker turns, without the face check."""
    root = copy_demo(tmp_path)
    turns = tmp_path / "turns.json"
    turns.write_text(json.dumps(demo_turns().to_dict()))
    plan = tmp_path / "plan.json"
    return ["plan", str(root / "scene.otio"), "--cast", str(root / "cast.yaml"), "-o", str(plan),
            "--turns", str(turns), "--no-face-check"], plan


def _plan_cli(tmp_path) -> Path:
    argv, plan = _plan_argv(tmp_path)
    assert main(argv) == 0
    return plan


def test_plan_from_turns_starts_without_torch(tmp_path):
    """Building the parser and planning from given speaker turns without the face check import no torch
    (2 s of start-up each on two cores): `pipelines` loads its names on first use, and the `--preset`
    choices need none of them."""
    argv, plan = _plan_argv(tmp_path)
    code = ("import sys\n"
            "from s2v_toolkit.cli import main\n"
            f"code = main({argv!r})\n"
            "print(code, sorted(m for m in ('torch', 'mediapipe', 'cv2') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[-2] == "0 []", r.stdout + r.stderr
    assert plan.exists()
    import s2v_toolkit.pipelines as pipelines  # the lazy names still resolve, and dir() lists them

    assert pipelines.GenerationSettings.__name__ == "GenerationSettings"
    assert "S2VGenerator" in dir(pipelines) and set(pipelines.__all__) <= set(dir(pipelines))
    with pytest.raises(AttributeError):
        pipelines.NoSuchName


def test_cli_plan_render_status_conform(tmp_path, capsys, monkeypatch):
    plan = _plan_cli(tmp_path)
    out = capsys.readouterr().out
    assert "3 redub, 1 new_shot, 0 skip" in out
    assert main(["plan", str(tmp_path / "demo" / "scene.otio"), "--cast", str(tmp_path / "demo" / "cast.yaml"),
                 "-o", str(plan), "--no-face-check"]) == 2          # never replaces a plan unasked
    assert "already exists" in capsys.readouterr().err
    # without a generator every job fails with why, and the exit status says so
    assert main(["render", str(plan), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["failed"] == 4 and "no generator chosen" in doc["jobs"][0]["error"]
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    assert main(["render", str(plan), "--generator", "jobs_testgen:make", "--retry-failed"]) == 0
    out = capsys.readouterr().out
    assert "4 done, 0 failed" in out and "SH010" in out
    assert main(["status", str(plan), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["done"] == 4 and all(j["attempts"] == 2 for j in doc["jobs"])
    assert main(["conform", str(plan), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "conform v001: 4 render(s)" in out and (tmp_path / "out" / "scene.s2v_v001.otio").is_file()
    assert main(["status", str(tmp_path / "nope.json")]) == 2
    assert "plan file not found" in capsys.readouterr().err


def test_sigkilled_render_resumes_without_duplicates(tmp_path):
    """Kill `s2vt render` at random moments, re-run it: every job ends done, rendered into exactly one
    version, and no temporary or partial file is left under a final name."""
    plan = _plan_cli(tmp_path)
    log = tmp_path / "renders.log"
    env = _env(tmp_path, S2VT_TESTGEN_SLEEP=0.8, S2VT_TESTGEN_LOG=log)
    cmd = [sys.executable, "-m", "s2v_toolkit", "render", str(plan), "--generator", "jobs_testgen:make",
           "--lease", "30", "--json"]
    rng = random.Random(7)
    for _ in range(10):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert doc["counts"]["done"] == 4
    renders = tmp_path / "plan.renders"
    media = sorted(p.name for p in renders.iterdir() if not p.name.endswith(".json"))
    assert not [m for m in media if m.startswith(".")], media                  # no temporaries
    assert len(media) == 4 and all(m.endswith("_v001.mp4") for m in media)   # one version per job
    for job in doc["jobs"]:
        assert Path(job["output_path"]).name in media
        side = json.loads(Path(job["sidecar_path"]).read_text())
        assert side["job_id"] == job["id"]


def test_cli_plan_of_an_edl_finds_media_by_name_and_keeps_the_search_folders(tmp_path, capsys, monkeypatch):
    """An EDL names its media (no paths): `s2vt plan --search` finds it, and render and conform, which read
    the list again, find it the same way (the plan keeps the folders and the list's rate)."""
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    root = copy_demo(tmp_path)
    desc = describe_timeline(read_timeline(root / "scene.otio"))
    edl_dir = tmp_path / "edit"
    edl_dir.mkdir()
    edl = edl_dir / "scene.edl"
    edl.write_text(edl_of(desc, {c.id: Path(c.media.path).stem for c in desc.clips}))
    turns = tmp_path / "turns.json"
    turns.write_text(json.dumps(demo_turns().to_dict()))
    plan = tmp_path / "plan.json"
    argv = ["plan", str(edl), "--cast", str(root / "cast.yaml"), "-o", str(plan), "--turns", str(turns),
            "--no-face-check", "--rate", "23.976"]
    assert main(argv) == 2  # the media is not beside the list: said, with what to do
    err = capsys.readouterr().err
    assert "media not found, so speech could not be measured (A1: 4 clip(s)" in err and "--search DIR" in err
    assert main(argv + ["--search", str(root / "media"), "--search", str(root / "audio")]) == 0
    assert "3 redub, 1 new_shot, 0 skip" in capsys.readouterr().out
    saved = json.loads(plan.read_text())
    assert [Path(plan.parent, d).resolve() for d in saved["search_dirs"]] == [(root / "media").resolve(),
                                                                          (root / "audio").resolve()]
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    assert main(["render", str(plan), "--generator", "jobs_testgen:make"]) == 0
    assert "4 done, 0 failed" in capsys.readouterr().out
    assert main(["conform", str(plan), "-o", str(tmp_path / "out")]) == 0
    assert "conform v001: 4 render(s)" in capsys.readouterr().out
