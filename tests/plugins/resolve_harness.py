"""Shared pieces of the Resolve plugin tests: the plugin and fake Resolve modules, a real `s2vt serve`
process, the "exported" demo timeline, and call-record helpers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "resolve" / "s2v_toolkit_resolve.py"
DEMO_START = 86400  # the demo timeline starts at 01:00:00:00 (23.976 fps)
DEMO_CLIPS = [("SH010", 0, 143), ("SH020", 143, 254), ("SH030", 254, 372)]

# Every Resolve call the plugin may make, as named in Resolve's scripting README.
DOCUMENTED = {
    "Resolve.GetProjectManager", "Resolve.GetVersion", "ProjectManager.GetCurrentProject",
    "Project.GetName", "Project.GetCurrentTimeline", "Project.GetMediaPool",
    "Timeline.GetName", "Timeline.GetStartFrame", "Timeline.Export", "Timeline.AddTrack", "Timeline.GetTrackCount",
    "Timeline.GetTrackName", "Timeline.SetTrackName", "Timeline.GetItemListInTrack", "Timeline.AddMarker",
    "MediaPool.GetRootFolder", "MediaPool.AddSubFolder", "MediaPool.SetCurrentFolder", "MediaPool.ImportMedia",
    "MediaPool.AppendToTimeline", "Folder.GetName", "Folder.GetSubFolderList",
    "MediaPoolItem.GetClipProperty", "MediaPoolItem.GetName",
    "TimelineItem.GetStart", "TimelineItem.GetEnd", "TimelineItem.AddTake",
}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


plugin = _load("s2v_toolkit_resolve", PLUGIN)
fake = _load("s2vt_fake_resolve", Path(__file__).with_name("fake_resolve.py"))


def start_serve(tmp: Path, extra_args=(), env_extra=None, service="fake_service:make_service"):
    """Start `s2vt serve` as a real process; return (process, state file)."""
    state = tmp / "state" / "serve.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "serve"), str(ROOT / "tests" / "plugins"), str(ROOT)]),
               **(env_extra or {}))
    cmd = [sys.executable, "-m", "s2v_toolkit", "serve", "--port", "0", "--state-file", str(state),
           "--workspace", str(tmp / "workspace"), "--allow", str(tmp)]
    if service:
        cmd += ["--service", service]
    proc = subprocess.Popen(cmd + list(extra_args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=tmp)
    deadline = time.monotonic() + 60
    while not state.exists():  # bounded wait for the server to come up
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("s2vt serve did not start:\n" + proc.stdout.read().decode(errors="replace"))
        time.sleep(0.05)
    return proc, state


def stop_serve(proc):
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out.decode(errors="replace")


def exporter(demo_dir: Path):
    """What Resolve would write for the demo timeline: the cut with absolute media paths."""
    import opentimelineio as otio

    def export(path: str, kind: str):
        timeline = otio.adapters.read_from_file(str(demo_dir / "scene.otio"))
        for clip in timeline.find_clips():
            ref = clip.media_reference
            if isinstance(ref, otio.schema.ExternalReference) and not ref.target_url.startswith("file:"):
                ref.target_url = (demo_dir / ref.target_url).resolve().as_uri()
        otio.adapters.write_to_file(timeline, path, adapter_name="otio_json" if kind == "otio" else "fcp_xml")

    return export


def frames_of(path: str) -> int:
    from s2v_toolkit.media import probe

    return probe(path).video.frame_count


def make_resolve(demo, version):
    return fake.FakeResolve(version, "DEMO_SCENE", DEMO_START, DEMO_CLIPS, exporter(demo / "demo"), frames_of)


def run_plugin(resolve, demo, state, *extra):
    said = []
    code = plugin.main(["--cast", str(demo / "demo" / "cast.yaml"), "--state-file", str(state),
                        "--export-dir", str(demo / "exports"), "--poll", "0.05", "--timeout", "60", "--no-dialog",
                        *extra], resolve=resolve, say=said.append)
    return code, said


def server_jobs(state: Path, project_id: str) -> dict:
    info = json.loads(state.read_text())
    req = urllib.request.Request(f"{info['url']}/v1/projects/{project_id}/jobs",
                                 headers={"Authorization": f"Bearer {info['token']}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _calls(resolve, name):
    return [args for n, args in resolve.calls if n == name]
