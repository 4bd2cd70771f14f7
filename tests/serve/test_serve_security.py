"""API security: token on every route (constant-time compare), loopback only, Host check, file confinement."""

from __future__ import annotations

import os

import pytest

from s2v_toolkit.serve import ROUTES
from s2v_toolkit.serve import server as server_mod


def _concrete(pattern: str) -> str:
    return pattern.replace("{project_id}", "p0123456789ab")


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.pattern}")
def test_every_route_refuses_missing_and_wrong_tokens(api, route):
    status, err = api.call(route.method, _concrete(route.pattern), token=None,
                           body={} if route.method == "POST" else None)
    assert status == 401 and err["error"]["code"] == "no_token"
    status, err = api.call(route.method, _concrete(route.pattern), token=api.token[:-1] + "x",
                           body={} if route.method == "POST" else None)
    assert status == 401 and err["error"]["code"] == "bad_token"
    status, err = api.call(route.method, _concrete(route.pattern), token=None,
                           headers={"Authorization": f"Basic {api.token}"})
    assert status == 401


def test_token_in_the_query_string_is_not_accepted(api):
    status, _ = api.get(f"/v1/server?token={api.token}", token=None)
    assert status == 401


def test_token_is_compared_in_constant_time(api, monkeypatch):
    seen = []
    real = server_mod.hmac.compare_digest

    def recording(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(server_mod.hmac, "compare_digest", recording)
    status, _ = api.get("/v1/server")
    assert status == 200
    assert seen and seen[-1] == (api.token.encode(), api.token.encode())


def test_listens_on_loopback_only_and_refuses_other_peers(server):
    assert server.httpd.server_address[0] == "127.0.0.1"
    assert server.httpd.verify_request(None, ("127.0.0.1", 50000))
    assert server.httpd.verify_request(None, ("::ffff:127.0.0.1", 50000))
    for foreign in ("192.0.2.10", "10.0.0.2", "::ffff:192.0.2.10", "2001:db8::1", "not-an-ip"):
        assert not server.httpd.verify_request(None, (foreign, 50000)), foreign


def test_foreign_host_header_is_refused(api):
    """A web page that rebinds its name to 127.0.0.1 still sends its own Host (DNS rebinding)."""
    status, err = api.get("/v1/server", headers={"Host": f"evil.example:{api.port}"})
    assert status == 403 and err["error"]["code"] == "bad_host"
    status, _ = api.get("/v1/server", headers={"Host": f"localhost:{api.port}"})
    assert status == 200


def test_files_outside_the_allowed_folders_are_refused(api, demo_copy, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "scene.otio").write_bytes((demo_copy / "scene.otio").read_bytes())
    cases = [str(outside / "scene.otio"),
             str(demo_copy / ".." / "outside" / "scene.otio"),   # climbs out with ..
             "/etc/passwd"]
    link = demo_copy / "link.otio"
    os.symlink(outside / "scene.otio", link)                     # a link inside pointing outside
    cases.append(str(link))
    for path in cases:
        status, err = api.post("/v1/projects", {"timeline": path})
        assert status == 403 and err["error"]["code"] == "forbidden_path", (path, err)
        status, err = api.post("/v1/projects", {"timeline": str(demo_copy / "scene.otio"), "cast": path})
        assert status == 403, (path, err)
        status, err = api.post("/v1/projects", {"timeline": str(demo_copy / "scene.otio"),
                                                "options": {"turns": path}})
        assert status == 403 and "options.turns" in err["error"]["message"], (path, err)
    status, listing = api.get("/v1/projects")
    assert listing["projects"] == []                             # nothing was created


def test_project_ids_in_urls_cannot_reach_other_folders(api, tmp_path):
    (tmp_path / "workspace" / "secret").mkdir(parents=True, exist_ok=True)
    for pid in ("..", "..%2F..%2Fetc", "secret", "p0123456789ab%2F..", "%2e%2e"):
        status, err = api.get(f"/v1/projects/{pid}")
        assert status in (400, 404), (pid, status)
        status, err = api.get(f"/v1/projects/{pid}/log")
        assert status in (400, 404), (pid, status)
    status, _ = api.get("/v1/projects/../../etc/passwd")
    assert status == 404
