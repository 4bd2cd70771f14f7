"""Fixtures for the local API tests: a copy of the demo project, a server on 127.0.0.1, an HTTP helper."""

from __future__ import annotations

import http.client
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _load_fake():
    spec = importlib.util.spec_from_file_location("s2vt_test_fake_service", HERE / "fake_service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake_service = _load_fake()


class Api:
    """Tiny HTTP client over loopback: one connection per call, bounded timeouts."""

    def __init__(self, url: str, token: str | None):
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.token = token

    def call(self, method: str, path: str, body=None, headers: dict | None = None, token: str | None = "default",
             raw: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Host": f"127.0.0.1:{self.port}"}
        tok = self.token if token == "default" else token
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, (json.loads(payload) if payload else None)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body=body if body is not None else {}, **kw)

    def wait_step(self, project_id: str, step: str, timeout: float = 30.0, states=("done", "failed", "cancelled")):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded polling loop
            status, project = self.get(f"/v1/projects/{project_id}")
            assert status == 200, project
            if project["tasks"][step]["state"] in states:
                return project
            time.sleep(0.05)
        raise AssertionError(f"{step} of {project_id} did not finish within {timeout}s: {project['tasks'][step]}")


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """The demo project (timeline, cast, media) copied into the test's folder."""
    from s2v_toolkit import demo_project

    src = Path(demo_project.__file__).parent
    dst = tmp_path / "demo"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return dst


@pytest.fixture
def server(tmp_path, demo_copy):
    """A server with the file-only test service; requests may name files under tmp_path/demo only."""
    from s2v_toolkit.serve import start_server

    running = start_server(fake_service.FileService(), tmp_path / "workspace", [demo_copy],
                           state_file=tmp_path / "state" / "serve.json")
    running.serve_in_thread()
    yield running
    running.stop(wait=5)


@pytest.fixture
def api(server) -> Api:
    return Api(server.url, server.token)
