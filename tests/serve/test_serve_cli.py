"""`s2vt serve` argument errors are one-line messages (the running server is tested in tests/plugins)."""

from __future__ import annotations

from s2v_toolkit.cli import main


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["serve", "--allow", str(tmp_path / "missing"), "--state-file", str(tmp_path / "s.json")]) == 2
    assert "missing: folder not found" in capsys.readouterr().err
    assert main(["serve", "--port", "70000", "--state-file", str(tmp_path / "s.json")]) == 2
    assert "--port 70000" in capsys.readouterr().err
    assert main(["serve", "--service", "no_such_module_xyz:make", "--state-file", str(tmp_path / "s.json")]) == 2
    assert "cannot import no_such_module_xyz" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_print_openapi(capsys):
    import json

    from s2v_toolkit.serve import OPENAPI

    assert main(["serve", "--print-openapi"]) == 0
    assert json.loads(capsys.readouterr().out) == OPENAPI


def test_keep_alive_connection_survives_a_refused_post(api):
    """An error answer closes the connection, so an unread body is never taken for the next request."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        conn.request("POST", "/v1/projects", body=json.dumps({"timeline": "GET /v1/server HTTP/1.1"}),
                     headers={"Host": f"127.0.0.1:{api.port}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 401 and resp.getheader("Connection", "").lower() == "close"
        resp.read()
    finally:
        conn.close()
    status, _ = api.get("/v1/server")
    assert status == 200
