"""The API over real HTTP on 127.0.0.1: plan, render, jobs, log, conform, review, cancel, conflicts."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.media import probe


def _submit(api, demo_copy, **extra):
    body = {"timeline": str(demo_copy / "scene.otio"), "cast": str(demo_copy / "cast.yaml"), **extra}
    status, project = api.post("/v1/projects", body)
    assert status == 202, project
    return project


def test_plan_render_conform_round_trip(api, demo_copy, tmp_path):
    project = _submit(api, demo_copy, name="demo", options={"skip": ["SH030"]})
    assert project["name"] == "demo" and project["id"].startswith("p")
    assert Path(project["folder"]).parent == (tmp_path / "workspace").resolve()
    project = api.wait_step(project["id"], "plan")
    assert project["tasks"]["plan"]["state"] == "done", project
    pid = project["id"]

    status, jobs = api.get(f"/v1/projects/{pid}/jobs")
    assert status == 200
    by_label = {j["label"]: j for j in jobs["jobs"]}
    # the demo's first video track: SH010 at 0 (143 frames), SH020 at 143, SH030 at 254
    assert (by_label["SH010"]["record_in"], by_label["SH010"]["record_out"]) == (0, 143)
    assert (by_label["SH020"]["record_in"], by_label["SH020"]["record_out"]) == (143, 254)
    assert by_label["SH030"]["state"] == "skipped" and by_label["SH010"]["state"] == "pending"
    assert jobs["timeline"]["start_frame"] == 86400  # 01:00:00:00 at 23.976

    status, project = api.post(f"/v1/projects/{pid}/render", {"options": {}})
    assert status == 202 and project["busy"] == "render"
    project = api.wait_step(pid, "render")
    assert project["tasks"]["render"]["state"] == "done", project
    assert project["tasks"]["render"]["progress"]["done"] == project["tasks"]["render"]["progress"]["total"] == 2

    status, jobs = api.get(f"/v1/projects/{pid}/jobs")
    done = [j for j in jobs["jobs"] if j["state"] == "done"]
    assert [j["label"] for j in done] == ["SH010", "SH020"]
    for j in done:
        out = Path(j["output"])
        assert out.is_relative_to(Path(project["folder"]))
        assert probe(out).video.frame_count == j["record_out"] - j["record_in"] == j["output_frames"]

    status, log = api.get(f"/v1/projects/{pid}/log")
    assert status == 200 and "rendered SH010" in log["text"] and log["next_offset"] == log["size"]
    status, tail = api.get(f"/v1/projects/{pid}/log?offset={log['next_offset']}")
    assert tail["text"] == "" and tail["next_offset"] == log["next_offset"]

    status, project = api.post(f"/v1/projects/{pid}/conform")
    assert status == 202
    project = api.wait_step(pid, "conform")
    assert project["tasks"]["conform"]["state"] == "done", project
    outputs = project["conform"]["outputs"]
    conformed = otio.adapters.read_from_file(outputs["otio_json"])
    s2v_tracks = [t for t in conformed.video_tracks() if t.name.startswith("S2V v")]
    assert len(s2v_tracks) == 1
    clips = [c for c in s2v_tracks[0].find_clips()]
    assert len(clips) == 2
    assert Path(outputs["otio_json"]).is_relative_to(Path(project["folder"]))
    # the editor's timeline is untouched
    assert (demo_copy / "scene.otio").read_bytes() == (Path(__file__).parents[2] / "s2v_toolkit" / "demo_project"
                                                        / "scene.otio").read_bytes()


def test_review_spawns_the_panel_command(api, demo_copy):
    project = api.wait_step(_submit(api, demo_copy)["id"], "plan")
    status, body = api.post(f"/v1/projects/{project['id']}/review")
    assert status == 202 and body["pid"] > 0
    marker = Path(project["plan"]).with_name("review_opened.txt")
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "opened"


def test_render_goes_on_after_the_client_disconnects(api, demo_copy, server):
    pid = api.wait_step(_submit(api, demo_copy)["id"], "plan")["id"]
    # Send the request by hand and hang up without reading the answer.
    body = json.dumps({"options": {"seconds_per_job": 0.3}}).encode()
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
        s.sendall((f"POST /v1/projects/{pid}/render HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n"
                   f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
        s.shutdown(socket.SHUT_WR)
    # A new client later sees the render running, then finished with all jobs done.
    project = api.wait_step(pid, "render", timeout=30)
    assert project["tasks"]["render"]["state"] == "done", project
    status, jobs = api.get(f"/v1/projects/{pid}/jobs")
    assert sorted(j["state"] for j in jobs["jobs"]) == ["done", "done", "done"]


def test_cancel_stops_between_jobs_and_render_resumes(api, demo_copy):
    pid = api.wait_step(_submit(api, demo_copy)["id"], "plan")["id"]
    status, _ = api.post(f"/v1/projects/{pid}/render", {"options": {"seconds_per_job": 5}})
    assert status == 202
    # a second step while one runs is a conflict
    status, err = api.post(f"/v1/projects/{pid}/conform")
    assert status == 409 and err["error"]["code"] == "conflict"
    status, res = api.post(f"/v1/projects/{pid}/cancel")
    assert status == 200 and res["cancelled"] == "render"
    project = api.wait_step(pid, "render", timeout=10)
    assert project["tasks"]["render"]["state"] == "cancelled"
    status, jobs = api.get(f"/v1/projects/{pid}/jobs")
    assert not any(j["state"] == "done" for j in jobs["jobs"])
    status, _ = api.post(f"/v1/projects/{pid}/render", {"options": {"seconds_per_job": 0}})
    project = api.wait_step(pid, "render", timeout=30)
    assert project["tasks"]["render"]["state"] == "done"


def test_errors_name_the_problem(api, demo_copy):
    status, err = api.post("/v1/projects", {"timeline": str(demo_copy / "nope.otio")})
    assert status == 400 and err["error"]["code"] == "bad_path" and "nope.otio" in err["error"]["message"]
    status, err = api.post("/v1/projects", {"timeline": "scene.otio"})
    assert status == 400 and "absolute" in err["error"]["message"]
    status, err = api.post("/v1/projects", {"timeline": str(demo_copy / "scene.otio"), "colour": 1})
    assert status == 400 and "colour" in err["error"]["message"]
    status, err = api.get("/v1/projects/p000000000000")
    assert status == 404
    status, err = api.get("/v1/nothing")
    assert status == 404
    status, err = api.call("DELETE", "/v1/projects")
    assert status == 405 and "GET" in err["error"]["message"]
    status, err = api.call("POST", "/v1/projects", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert status == 400 and err["error"]["code"] == "bad_json"
    status, err = api.call("POST", "/v1/projects", raw=b"timeline=x", headers={"Content-Type": "text/plain"})
    assert status == 415
    status, err = api.call("POST", "/v1/projects", raw=b"x" * 10,
                           headers={"Content-Type": "application/json", "Content-Length": str(2 << 20)})
    assert status == 413
    pid = _submit(api, demo_copy)["id"]
    api.wait_step(pid, "plan")
    status, err = api.post(f"/v1/projects/{pid}/render", {"options": {"colour": 1}})
    assert status == 400 and "colour" in err["error"]["message"]


def test_projects_survive_a_server_restart(tmp_path, demo_copy, api, server):
    from s2v_toolkit.serve import start_server

    pid = api.wait_step(_submit(api, demo_copy)["id"], "plan")["id"]
    server.stop()
    again = start_server(type(server.manager.service)(), tmp_path / "workspace", [demo_copy]).serve_in_thread()
    try:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", again.httpd.port, timeout=5)
        conn.request("GET", f"/v1/projects/{pid}", headers={"Authorization": f"Bearer {again.token}",
                                                             "Host": f"127.0.0.1:{again.httpd.port}"})
        resp = conn.getresponse()
        project = json.loads(resp.read())
        assert resp.status == 200 and project["tasks"]["plan"]["state"] == "done" and project["plan"]
    finally:
        again.stop()
