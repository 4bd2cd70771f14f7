"""The state file: mode 0600 in a 0700 folder, URL + token of the running server, removed on stop."""

from __future__ import annotations

import json
import os
import stat

import pytest

from s2v_toolkit.serve import (
    Service, StateFileError, default_state_file, read_state_file, remove_state_file, start_server, write_state_file,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


class _NullService(Service):
    """Does nothing: these tests need only the server."""

    def plan(self, *a):
        raise NotImplementedError

    def jobs(self, *a):
        raise NotImplementedError

    def render(self, *a):
        raise NotImplementedError

    def conform(self, *a):
        raise NotImplementedError

    def review_command(self, *a):
        return []


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_file_is_private_and_names_the_server(tmp_path, demo_copy):
    old = os.umask(0)  # even with a permissive umask
    try:
        state = tmp_path / "fresh" / "serve.json"
        # the workspace is created first (as `s2vt serve` does with its default inside the state folder)
        running = start_server(_NullService(), tmp_path / "ws", [demo_copy], state_file=state).serve_in_thread()
    finally:
        os.umask(old)
    try:
        assert _mode(state) == 0o600
        assert _mode(state.parent) == 0o700
        assert _mode(tmp_path / "ws") == 0o700
        info = read_state_file(state)
        assert info["url"] == running.url and info["token"] == running.token and info["pid"] == os.getpid()
        assert info["url"].startswith("http://127.0.0.1:") and info["port"] == running.httpd.port > 0
        assert len(running.token) >= 40
        assert not list(state.parent.glob(".*tmp"))  # no temporary left behind
    finally:
        running.stop()
    assert not state.exists()


def test_two_servers_get_different_tokens_and_ports(tmp_path, demo_copy):
    a = start_server(_NullService(), tmp_path / "ws", [demo_copy], state_file=tmp_path / "a.json")
    b = start_server(_NullService(), tmp_path / "ws", [demo_copy], state_file=tmp_path / "b.json")
    try:
        assert a.token != b.token and a.httpd.port != b.httpd.port
    finally:
        a.stop()
        b.stop()


def test_read_refuses_a_file_others_can_read(tmp_path):
    path = write_state_file(tmp_path / "s.json", {"url": "http://127.0.0.1:1", "token": "t"})
    assert read_state_file(path)["token"] == "t"
    path.chmod(0o644)
    with pytest.raises(StateFileError, match="0644"):
        read_state_file(path)
    with pytest.raises(StateFileError, match="not found"):
        read_state_file(tmp_path / "missing.json")


def test_remove_leaves_a_newer_servers_file_alone(tmp_path):
    path = write_state_file(tmp_path / "s.json", {"url": "u", "token": "new"})
    assert not remove_state_file(path, "old")
    assert json.loads(path.read_text())["token"] == "new"
    assert remove_state_file(path, "new") and not path.exists()


def test_default_location_follows_s2vt_home(tmp_path, monkeypatch):
    monkeypatch.setenv("S2VT_HOME", str(tmp_path / "home"))
    assert default_state_file() == tmp_path / "home" / "serve.json"
    monkeypatch.delenv("S2VT_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    if os.sys.platform.startswith("linux"):
        assert default_state_file() == tmp_path / "xdg" / "s2v-toolkit" / "serve.json"


def test_default_workspace_inside_a_new_state_folder_keeps_it_private(tmp_path, demo_copy):
    home = tmp_path / "new_home"
    running = start_server(_NullService(), home / "projects", [demo_copy], state_file=home / "serve.json")
    try:
        assert _mode(home) == 0o700 and _mode(home / "projects") == 0o700 and _mode(home / "serve.json") == 0o600
    finally:
        running.stop()
