"""A client of the local API for tests (tests/serve, the jobs service over HTTP, the reliability tests)."""

from __future__ import annotations

import http.client
import json
import time


class Api:
    """Tiny HTTP client over loopback: one connection per call, bounded timeouts."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0):
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body=None, headers: dict | None = None, token: str | None = "default",
             raw: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
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
