"""Kills: a render killed mid-job resumes at its last finished clip; a conform killed between its renames
leaves the whole version or none; SIGTERM and SIGKILL leave no temporary file behind for long."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs_helpers import one_new_shot_plan
from reliability_kit import REPO, s2vt, temp_files, write_clip
from render_child import read_events

HERE = Path(__file__).parent


def _events(log: Path) -> list[str]:
    return [text for text, _ in read_events(log)]


@pytest.mark.slow
def test_killed_render_resumes_at_its_last_finished_clip(tmp_path):
    """SIGKILL once a clip is saved: the next run takes the saved clips and computes only the rest."""
    plan_path = one_new_shot_plan(tmp_path, 16)
    log = tmp_path / "clips.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    child = subprocess.Popen([sys.executable, str(HERE / "render_child.py"), str(plan_path), str(log), "8"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 150
    while time.time() < deadline and "saved 0" not in _events(log) and child.poll() is None:
        time.sleep(0.05)
    assert "saved 0" in _events(log), _events(log)
    child.kill()
    child.wait()
    first = _events(log)
    assert not any(e.startswith("done") for e in first), "render finished before the kill; make the job longer"
    saved_before = {e for e in first if e.startswith("saved")}
    proc = subprocess.run([sys.executable, str(HERE / "render_child.py"), str(plan_path), str(log), "8"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    second = _events(log)[len(first):]
    assert second[-1].startswith("done") and "done" in second[-1].split()[1].split(","), second
    resumed = [int(e.split()[1]) for e in second if e.startswith("resumed")]
    assert resumed and resumed[0] == len(saved_before), (first, second)
    recomputed = saved_before & {e for e in second if e.startswith("saved")}
    assert recomputed == set(), f"clips computed twice: {sorted(recomputed)}"
    renders = plan_path.parent / f"{plan_path.stem}.renders"
    assert not any(p.name.endswith(".s2vt-parts") for p in renders.iterdir()), "parts kept after the job finished"
    assert temp_files(plan_path.parent) == []


def _conform_child(plan_path: Path, out: Path, kill_at: int) -> int:
    """Conform in a child that SIGKILLs itself at its ``kill_at``-th rename (0: no kill)."""
    code = f"""
import os, signal, sys
sys.path[:0] = [{str(REPO)!r}]
n = [0]
real = os.replace
def replace(a, b):
    n[0] += 1
    if n[0] == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(a, b)
os.replace = replace
from s2v_toolkit.jobs import conform_plan
conform_plan({str(plan_path)!r}, {str(out)!r})
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode


def test_conform_killed_at_each_rename_leaves_a_whole_version_or_none(tmp_path):
    from jobs_helpers import fast_plan
    from jobs_testgen import FlatColourGenerator

    from s2v_toolkit.jobs import render_plan

    plan = fast_plan(tmp_path)
    raw = json.loads(plan.path.read_text())
    raw["timeline"] = raw["timeline"].replace("scene.otio", "scene.xml")  # FCP7 XML: two formats per version
    plan.path.write_text(json.dumps(raw))
    render_plan(plan, FlatColourGenerator())
    out = tmp_path / "conform"
    assert _conform_child(plan.path, out, 0) == 0
    whole = sorted(p.name.replace("v001", "vNNN") for p in out.iterdir() if not p.name.startswith("."))
    assert len(whole) >= 2, whole  # the .otio and the timeline's own format
    for kill_at in (1, 2, 3):
        rc = _conform_child(plan.path, out, kill_at)
        assert rc in (0, -signal.SIGKILL), rc
        # the next conform in the folder first rolls back what the killed one left half done
        assert _conform_child(plan.path, out, 0) == 0
        versions: dict[str, list[str]] = {}
        for p in out.iterdir():
            if p.name.startswith("."):
                continue
            v = p.name.split(".s2v_")[1].split(".")[0]
            versions.setdefault(v, []).append(p.name.replace(v, "vNNN"))
        for v, names in versions.items():
            assert sorted(names) == whole, (kill_at, v, sorted(names))
        assert temp_files(out) == [], temp_files(out)


def test_sigkilled_writer_temps_are_removed_by_the_next_write(tmp_path):
    """A writer killed with SIGKILL cannot clean up; the next write into that folder removes its temporaries."""
    code = f"""
import os, signal, sys
sys.path[:0] = [{str(REPO)!r}]
from s2v_toolkit.media import atomic_output
with atomic_output({str(tmp_path / 'a.json')!r}) as tmp:
    open(tmp, 'w').write('half')
    os.kill(os.getpid(), signal.SIGKILL)
"""
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert len(temp_files(tmp_path)) == 1 and not (tmp_path / "a.json").exists()
    from s2v_toolkit.media import atomic_output, clean_stale

    clean_stale(tmp_path, force=True)
    with atomic_output(tmp_path / "b.json") as tmp:
        Path(tmp).write_text("{}")
    assert temp_files(tmp_path) == [] and not (tmp_path / "a.json").exists()


def test_sigterm_removes_the_temporary_file(tmp_path):
    """SIGTERM while a command writes: exit 143, no partial file under any name."""
    src = write_clip(tmp_path / "src.mp4", frames=240, size=(360, 640))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # A child inherits its parent's blocked signals and ignored ones across exec; an earlier test's library
    # in this pytest worker can leave SIGTERM so (the convert then ran to its end with exit 0 in CI runs
    # where this file shared a worker with others). Started the way a shell starts a command: SIGTERM at
    # its default and unblocked; what was inherited is printed for the failure message.
    launcher = ("import runpy, signal, sys; "
                "print('inherited SIGTERM:', signal.getsignal(signal.SIGTERM), "
                "signal.pthread_sigmask(signal.SIG_BLOCK, []), file=sys.stderr); "
                "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
                "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM}); "
                "sys.argv = ['s2vt', *sys.argv[1:]]; runpy.run_module('s2v_toolkit', run_name='__main__')")
    child = subprocess.Popen([sys.executable, "-c", launcher, "convert", str(src), str(tmp_path / "out.mov")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not temp_files(tmp_path) and child.poll() is None:
        time.sleep(0.01)
    if child.poll() is not None:
        pytest.skip("convert finished before it could be interrupted")
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert "Traceback" not in err
    assert temp_files(tmp_path) == [] and not (tmp_path / "out.mov").exists()


def _limit_file_size():
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_full_disk_names_the_file_and_removes_the_partial(tmp_path):
    """A write that runs out of room (RLIMIT_FSIZE here; a small tmpfs where mounting is allowed) fails with
    one line naming the file, and leaves neither the partial file nor a temporary."""
    src = write_clip(tmp_path / "src.mp4", frames=96, size=(360, 640))
    targets = [tmp_path / "out"]
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                             capture_output=True).returncode == 0
    if mounted:
        targets.append(mnt)
    try:
        for folder in targets:
            folder.mkdir(exist_ok=True)
            dst = folder / "big.mov"
            proc = s2vt("convert", src, dst, "--codec", "prores_hq",
                        preexec=None if folder is mnt else _limit_file_size)
            assert proc.returncode == 2, (folder, proc.stderr[-1500:])
            err = proc.stderr.strip()
            assert "Traceback" not in err and str(dst) in err, err
            assert "disk full" in err or "size limit" in err, err
            assert not dst.exists() and temp_files(folder) == [], os.listdir(folder)
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_sigterm_whose_exception_was_lost_still_stops_the_write(tmp_path):
    """The SIGTERM handler also sets a flag that the writer checks every frame: where its exception is lost
    in a library callback (a convert once wrote all its frames and exited 0 after a SIGTERM), the write
    still stops at the next frame, leaving no partial file."""
    import numpy as np

    from s2v_toolkit import interrupts
    from s2v_toolkit.media import write_video

    def frames():
        for k in range(30):
            if k == 3:
                interrupts.request()  # the handler ran; its exception did not reach this loop
            yield np.zeros((48, 64, 3), np.uint8)

    try:
        with pytest.raises(interrupts.Terminated):
            write_video(tmp_path / "out.mov", frames(), 25)
    finally:
        interrupts.reset()
    assert temp_files(tmp_path) == [] and not (tmp_path / "out.mov").exists()
