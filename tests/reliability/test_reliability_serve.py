"""The local server under load and hostile input: a burst of 200 requests all answered, nested bodies 400,
one review window per project, start-up errors naming their cause, and files a timeline or cast points at
confined to the allowed folders. Loopback only (127.0.0.1), every client bounded in time."""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest

from api_testkit import Api
from reliability_kit import REPO

SERVE_TESTS = REPO / "tests" / "serve"


def _fake_module():
    spec = importlib.util.spec_from_file_location("s2vt_reliability_fake_service", SERVE_TESTS / "fake_service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake = _fake_module()


class LingeringReview(fake.FileService):
    """A review window that stays open (a process that sleeps) until the test ends it."""

    def review_command(self, plan_path):
        return [sys.executable, "-c", "import time; time.sleep(60)"]


def _call(port: int, token: str, method: str, path: str, raw: bytes | None = None, timeout: float = 20.0):
    headers = {"Content-Type": "application/json"} if raw is not None else None
    return Api(f"http://127.0.0.1:{port}", token, timeout=timeout).call(method, path, raw=raw, headers=headers)


@pytest.fixture
def demo(tmp_path) -> Path:
    dst = tmp_path / "allowed" / "demo"
    shutil.copytree(REPO / "s2v_toolkit" / "demo_project", dst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return dst


@pytest.fixture
def running(tmp_path, demo):
    from s2v_toolkit.serve import start_server

    srv = start_server(LingeringReview(), tmp_path / "workspace", [tmp_path / "allowed"],
                       state_file=tmp_path / "state" / "serve.json")
    srv.serve_in_thread()
    yield srv
    for proc in srv.manager.review_processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    srv.stop(wait=5)


def test_a_burst_of_200_requests_is_all_answered(running):
    port, token = running.httpd.port, running.token
    n = 200
    start = threading.Barrier(n)
    results: list = [None] * n

    def client(i):
        try:
            start.wait(timeout=30)
            results[i] = _call(port, token, "GET", "/v1/server")[0]
        except Exception as exc:  # noqa: BLE001 - a reset or a timeout is the finding
            results[i] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    failures = [r for r in results if r != 200]
    assert failures == [], f"{len(failures)} of {n} not answered: {failures[:5]}"


def test_deeply_nested_bodies_are_400_not_500(running):
    port, token = running.httpd.port, running.token
    for depth in (40, 5000, 200_000):
        raw = (b"[" * depth + b"]" * depth)[: 1 << 20]
        body = b'{"timeline": ' + raw + b"}" if depth < 200_000 else raw
        status, doc = _call(port, token, "POST", "/v1/projects", body)
        assert status in (400, 413), (depth, status, doc)
    # the server is still serving
    assert _call(port, token, "GET", "/v1/server")[0] == 200


def test_review_reuses_the_open_window(running, demo):
    port, token = running.httpd.port, running.token
    status, project = _call(port, token, "POST", "/v1/projects", json.dumps(
        {"timeline": str(demo / "scene.otio"), "cast": str(demo / "cast.yaml")}).encode())
    assert status == 202, project
    pid = project["id"]
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = _call(port, token, "GET", f"/v1/projects/{pid}")[1]["tasks"]["plan"]["state"]
        if state in ("done", "failed"):
            break
        time.sleep(0.05)
    assert state == "done"
    pids = {_call(port, token, "POST", f"/v1/projects/{pid}/review", b"{}")[1]["pid"] for _ in range(5)}
    assert len(pids) == 1, pids
    assert len(running.manager.review_processes) == 1


def test_files_a_timeline_or_cast_points_at_must_be_allowed_too(running, demo, tmp_path):
    import opentimelineio as otio

    port, token = running.httpd.port, running.token
    outside = tmp_path / "outside"
    shutil.copytree(demo / "media", outside)
    tl = otio.adapters.read_from_file(str(demo / "scene.otio"))
    for clip in tl.find_clips():
        ref = clip.media_reference
        if getattr(ref, "target_url", None):
            ref.target_url = str(outside / Path(ref.target_url).name)
    otio.adapters.write_to_file(tl, str(demo / "pointing_out.otio"))
    status, doc = _call(port, token, "POST", "/v1/projects", json.dumps(
        {"timeline": str(demo / "pointing_out.otio"), "cast": str(demo / "cast.yaml")}).encode())
    assert status == 403 and "outside the folders" in doc["error"]["message"], (status, doc)
    assert str(outside) in doc["error"]["message"]
    # a cast inside the allowed folder whose reference image is elsewhere
    shutil.copytree(demo / "cast", tmp_path / "outside_cast")
    text = (demo / "cast.yaml").read_text()
    cast_out = demo / "cast_out.yaml"
    cast_out.write_text(text.replace("cast/", str(tmp_path / "outside_cast") + "/"))
    status, doc = _call(port, token, "POST", "/v1/projects", json.dumps(
        {"timeline": str(demo / "scene.otio"), "cast": str(cast_out)}).encode())
    assert status == 403 and "outside_cast" in doc["error"]["message"], (status, doc)
    assert _call(port, token, "GET", "/v1/projects")[1]["projects"] == []


def test_start_up_errors_name_their_cause(tmp_path, demo):
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.serve import start_server

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="state file"):
        start_server(fake.FileService(), tmp_path / "ws", [demo], state_file=blocker / "serve.json")
    with pytest.raises(ConfigError, match="workspace"):
        start_server(fake.FileService(), blocker / "ws", [demo], state_file=tmp_path / "s" / "serve.json")
    first = start_server(fake.FileService(), tmp_path / "ws1", [demo])
    try:
        with pytest.raises(ConfigError, match="cannot listen"):
            start_server(fake.FileService(), tmp_path / "ws2", [demo], port=first.httpd.port)
    finally:
        first.stop()
