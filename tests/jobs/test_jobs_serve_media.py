"""The HTTP API plans an EDL as `s2vt plan --search --rate` does: the request's search folders and rate reach
the plan (and the plan keeps them for render and conform), and they obey the server's folder rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api_testkit import Api
from jobs_helpers import copy_demo, demo_turns, edl_of


@pytest.fixture
def setup(tmp_path):
    from s2v_toolkit.serve import start_server
    from s2v_toolkit.serve.jobs_service import JobsService
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    allowed = tmp_path / "allowed"
    root = copy_demo(allowed)
    desc = describe_timeline(read_timeline(root / "scene.otio"))
    edl = allowed / "edit" / "scene.edl"
    edl.parent.mkdir()
    edl.write_text(edl_of(desc, {c.id: Path(c.media.path).stem for c in desc.clips}))
    turns = allowed / "turns.json"
    turns.write_text(json.dumps(demo_turns().to_dict()))
    running = start_server(JobsService(), tmp_path / "workspace", [allowed], state_file=tmp_path / "serve.json")
    running.serve_in_thread()
    yield Api(running.url, running.token, timeout=20), root, edl, turns, tmp_path
    running.stop(wait=5)


def test_api_plan_of_an_edl_uses_the_search_folders_and_rate(setup):
    client, root, edl, turns, _ = setup
    base = {"turns": str(turns), "face_check": False, "rate": "23.976"}
    body = {"timeline": str(edl), "cast": str(root / "cast.yaml"), "options": base}
    status, project = client.call("POST", "/v1/projects", body)
    assert status == 202, project
    project = client.wait_step(project["id"], "plan", timeout=120)
    assert project["tasks"]["plan"]["state"] == "failed"  # the media is not beside the list: said, not guessed
    status, log = client.call("GET", f"/v1/projects/{project['id']}/log")
    assert "media not found" in json.dumps(log) and "search" in json.dumps(log)

    options = dict(base, search_dirs=[str(root / "media"), str(root / "audio")])
    status, project = client.call("POST", "/v1/projects", dict(body, options=options))
    assert status == 202, project
    project = client.wait_step(project["id"], "plan", timeout=120)
    assert project["tasks"]["plan"]["state"] == "done", project["tasks"]["plan"]
    assert project["plan_options"]["rate"] == pytest.approx(24000 / 1001)
    plan = json.loads(Path(project["plan"]).read_text())
    assert [Path(project["plan"]).parent.joinpath(d).resolve() for d in plan["search_dirs"]] == [
        (root / "media").resolve(), (root / "audio").resolve()]
    actions = sorted(j["action"] for j in plan["jobs"])
    assert actions == ["new_shot", "redub", "redub", "redub"], actions


def test_api_search_folders_and_rate_are_checked(setup):
    client, root, edl, turns, tmp_path = setup
    outside = tmp_path / "outside_media"
    outside.mkdir()
    body = {"timeline": str(edl), "cast": str(root / "cast.yaml"), "options": {"turns": str(turns)}}
    cases = [({"search_dirs": [str(outside)]}, 403, "options.search_dirs[0]"),
             ({"search_dirs": [str(root / "nope")]}, 400, "folder not found"),
             ({"search_dirs": [str(root / "cast.yaml")]}, 400, "folder not found"),
             ({"search_dirs": "media"}, 400, "must be a list"),
             ({"search_dirs": ["media"]}, 400, "absolute path"),
             ({"rate": "fast"}, 400, "not a frame rate")]
    for extra, code, text in cases:
        status, err = client.call("POST", "/v1/projects", dict(body, options=dict(body["options"], **extra)))
        assert status == code and text in err["error"]["message"], (extra, status, err)
    # media found in an allowed search folder but lying outside (a link) obeys the folder rule too
    linked = root.parent / "linked"
    linked.mkdir()
    for i, f in enumerate(sorted((root / "media").iterdir())):
        target = f
        if i == 0:
            target = outside / f.name
            target.write_bytes(f.read_bytes())
        (linked / f.name).symlink_to(target)
    status, err = client.call("POST", "/v1/projects",
                              dict(body, options=dict(body["options"], rate="23.976", search_dirs=[str(linked)])))
    assert status == 403 and "outside the folders" in err["error"]["message"], (status, err)
    assert str(outside) in err["error"]["message"]
    assert client.call("GET", "/v1/projects")[1]["projects"] == []
