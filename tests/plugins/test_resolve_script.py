"""The Resolve script against a fake `resolve` (documented calls only) and a real `s2vt serve` process.

The server runs as a real process on 127.0.0.1 with the file-only test service (tests/serve/fake_service.py:
real timeline reading, real H.264 renders, no models), so these tests check the script's whole round
trip: export -> submit -> plan/render progress -> import into a bin -> placement at the plan's record
frames (or takes) -> markers for skipped shots. tests/plugins/test_resolve_e2e_jobs.py runs the same
with the jobs stage and the tiny model.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest


def _load_harness():
    name = "s2vt_resolve_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("resolve_harness.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


h = _load_harness()
PLUGIN_SOURCE = h.PLUGIN
plugin, fake, DEMO_START, DEMO_CLIPS, DOCUMENTED = h.plugin, h.fake, h.DEMO_START, h.DEMO_CLIPS, h.DOCUMENTED
start_serve, stop_serve, make_resolve, run_plugin, server_jobs, _calls = (
    h.start_serve, h.stop_serve, h.make_resolve, h.run_plugin, h.server_jobs, h._calls)

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from s2v_toolkit import demo_project

    tmp = tmp_path_factory.mktemp("resolve")
    shutil.copytree(Path(demo_project.__file__).parent, tmp / "demo",
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return tmp


@pytest.fixture(scope="module")
def serve(demo):
    proc, state = start_serve(demo, env_extra={"S2VT_TEST_SKIP": "SH030"})
    yield state
    code, out = stop_serve(proc)
    assert code == 0, out
    assert not state.exists(), "the server removes its state file when it stops"


@pytest.fixture(autouse=True)
def _private_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("S2VT_HOME", str(tmp_path / "s2vt_home"))  # the plugin's remembered choices


def test_track_mode_places_renders_at_the_plans_record_frames(demo, serve):
    resolve = make_resolve(demo, (19, 1, 3))
    code, said = run_plugin(resolve, demo, serve)
    assert code == 0, said
    assert resolve.called() <= DOCUMENTED

    (path, export_type, subtype), = _calls(resolve, "Timeline.Export")
    assert export_type == resolve.EXPORT_OTIO and subtype == resolve.EXPORT_NONE and path.endswith(".otio")
    assert Path(path).parent == demo / "exports"
    project_id = json.loads((Path(os.environ["S2VT_HOME"]) / "resolve_plugin.json").read_text())["last_project"]
    jobs = {j["label"]: j for j in server_jobs(serve, project_id)["jobs"]}
    assert jobs["SH030"]["state"] == "skipped"

    # imported into "S2V renders/DEMO_SCENE S2V v001", matched by file path (the fake returns them reversed)
    bin_ = resolve.media_pool.root.subfolders[0]
    assert bin_.name == "S2V renders" and bin_.subfolders[0].name == "DEMO_SCENE S2V v001"
    assert sorted(i.path for i in bin_.subfolders[0].clips) == sorted(jobs[k]["output"] for k in ("SH010", "SH020"))
    assert _calls(resolve, "Timeline.AddTrack") == [("video", None)]
    assert ("video", 2, "S2V v001") in _calls(resolve, "Timeline.SetTrackName")

    infos = [info for (batch,) in _calls(resolve, "MediaPool.AppendToTimeline") for info in batch]
    assert len(infos) == 2
    for info in infos:
        job = next(j for j in jobs.values() if j["output"] == info["mediaPoolItem"].path)
        n = job["record_out"] - job["record_in"]
        assert info["recordFrame"] == DEMO_START + job["record_in"]    # absolute frame
        assert (info["startFrame"], info["endFrame"]) == (0, n)       # exclusive end on Resolve 19+
        assert info["trackIndex"] == 2 and info["mediaType"] == 1
    placed = {(i.start, i.end) for i in resolve.timeline.video[1]}
    assert placed == {(DEMO_START + 0, DEMO_START + 143), (DEMO_START + 143, DEMO_START + 254)}
    # the original track is untouched
    assert [(i.name, i.start, i.end) for i in resolve.timeline.video[0]] == \
        [(n, DEMO_START + a, DEMO_START + b) for n, a, b in DEMO_CLIPS]
    # skipped shot: a yellow marker at its first frame (relative to the timeline start) over its length
    assert resolve.timeline.markers == {254: {"color": "Yellow", "duration": 118, "note": "asked to skip",
                                              "name": "S2V skipped: SH030", "customData": "s2vt:j02"}}
    assert any("render" in line for line in said)  # progress went to the console


def test_old_resolve_exports_fcp7_xml_and_uses_an_inclusive_end(demo, serve):
    resolve = make_resolve(demo, (18, 1, 4))
    code, said = run_plugin(resolve, demo, serve)
    assert code == 0, said
    assert resolve.called() <= DOCUMENTED
    (path, export_type, _), = _calls(resolve, "Timeline.Export")
    assert export_type == resolve.EXPORT_FCP_7_XML and path.endswith(".xml")
    infos = [info for (batch,) in _calls(resolve, "MediaPool.AppendToTimeline") for info in batch]
    assert {(i["recordFrame"], i["endFrame"]) for i in infos} == {(DEMO_START, 142), (DEMO_START + 143, 110)}
    placed = {(i.start, i.end) for i in resolve.timeline.video[1]}
    assert placed == {(DEMO_START, DEMO_START + 143), (DEMO_START + 143, DEMO_START + 254)}


def test_takes_mode_adds_the_renders_to_the_original_clips(demo, serve):
    resolve = make_resolve(demo, (19, 1, 3))
    code, said = run_plugin(resolve, demo, serve, "--mode", "takes")
    assert code == 0, said
    assert resolve.called() <= DOCUMENTED
    assert not _calls(resolve, "Timeline.AddTrack") and not _calls(resolve, "MediaPool.AppendToTimeline")
    v1 = {i.name: i for i in resolve.timeline.video[0]}
    for name, frames in (("SH010", 143), ("SH020", 111)):
        (take,) = v1[name].takes[1:]
        assert take["mediaPoolItem"].path.endswith(".mp4") and name in Path(take["mediaPoolItem"].path).name
        assert (take["startFrame"], take["endFrame"]) == (0, frames)
    assert v1["SH030"].takes == []
    assert list(resolve.timeline.markers) == [254]


def test_resume_imports_an_earlier_submission_without_exporting_again(demo, serve):
    first = make_resolve(demo, (19, 1, 3))
    assert run_plugin(first, demo, serve)[0] == 0
    project_id = json.loads((Path(os.environ["S2VT_HOME"]) / "resolve_plugin.json").read_text())["last_project"]
    again = make_resolve(demo, (19, 1, 3))
    code, said = run_plugin(again, demo, serve, "--resume", project_id)
    assert code == 0, said
    assert not _calls(again, "Timeline.Export")
    assert len(again.timeline.video[1]) == 2


def test_failed_shots_get_red_markers_and_the_rest_is_placed(tmp_path, demo):
    proc, state = start_serve(tmp_path, extra_args=["--allow", str(demo)],
                              env_extra={"S2VT_TEST_SKIP": "SH030", "S2VT_TEST_FAIL": "SH020"})
    try:
        resolve = make_resolve(demo, (19, 1, 3))
        code, said = run_plugin(resolve, demo, state)
    finally:
        stop_serve(proc)
    assert code == 0, said
    assert [(i.start, i.end) for i in resolve.timeline.video[1]] == [(DEMO_START, DEMO_START + 143)]
    markers = resolve.timeline.markers
    assert markers[143]["color"] == "Red" and "test failure of SH020" in markers[143]["note"]
    assert markers[143]["duration"] == 111 and markers[254]["color"] == "Yellow"


def test_clear_errors_without_a_server_or_with_a_foreign_url(demo, tmp_path):
    resolve = make_resolve(demo, (19, 1, 3))
    code, said = run_plugin(resolve, demo, tmp_path / "missing.json")
    assert code == 2 and "s2vt serve" in said[-1] and "error" in said[-1]
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"url": "http://192.0.2.1:8000", "token": "x"}))
    code, said = run_plugin(resolve, demo, foreign)
    assert code == 2 and "127.0.0.1" in said[-1]
    assert not _calls(resolve, "Timeline.Export")  # nothing done before the server is known


def test_state_file_location_matches_the_server(monkeypatch, tmp_path):
    from s2v_toolkit.serve import default_state_file

    monkeypatch.setenv("S2VT_HOME", str(tmp_path / "h"))
    assert Path(plugin.default_state_file()) == default_state_file()
    monkeypatch.delenv("S2VT_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert Path(plugin.default_state_file()) == default_state_file()


def test_fake_refuses_undocumented_calls(demo):
    resolve = make_resolve(demo, (18, 1, 4))
    assert getattr(resolve, "EXPORT_OTIO", None) is None  # not before 18.5
    with pytest.raises(AttributeError):
        resolve.timeline.InsertClipsAtPlayhead()
    with pytest.raises(AssertionError):
        resolve.media_pool.AppendToTimeline([{"mediaPoolItem": None, "startFrame": 0, "endFrame": 1}])


def test_script_is_python_36_syntax_and_standard_library_only():
    """Resolve's README asks only for Python 3.6+; the script must not need the toolkit's packages."""
    import ast

    tree = ast.parse(PLUGIN_SOURCE.read_text(), feature_version=(3, 6))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"DaVinciResolveScript"}, imported


def test_get_resolve_inside_resolve_and_through_the_scripting_environment(tmp_path, monkeypatch):
    marker = object()

    class Bmd:
        def scriptapp(self, name):
            return marker if name == "Resolve" else None

    assert plugin.get_resolve({"resolve": marker}) is marker          # Workspace > Scripts
    assert plugin.get_resolve({"bmd": Bmd()}) is marker               # the Console's bmd
    # external: RESOLVE_SCRIPT_API/Modules holds DaVinciResolveScript, as Resolve's README describes
    modules = tmp_path / "Scripting" / "Modules"
    modules.mkdir(parents=True)
    (modules / "DaVinciResolveScript.py").write_text(
        "class _R:\n    pass\n\nR = _R()\n\ndef scriptapp(name):\n    return R if name == 'Resolve' else None\n")
    monkeypatch.setenv("RESOLVE_SCRIPT_API", str(tmp_path / "Scripting"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "DaVinciResolveScript", raising=False)
    got = plugin.get_resolve({})
    assert type(got).__name__ == "_R" and str(modules) in sys.path
    sys.modules.pop("DaVinciResolveScript", None)
    # Resolve not running: scriptapp gives None -> a one-line error naming the preference to set
    (modules / "DaVinciResolveScript.py").write_text("def scriptapp(name):\n    return None\n")
    with pytest.raises(plugin.S2VTError, match="External scripting"):
        plugin.get_resolve({})
    sys.modules.pop("DaVinciResolveScript", None)
