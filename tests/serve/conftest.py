"""Fixtures for the local API tests: a copy of the demo project, a server on 127.0.0.1, an HTTP helper."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from api_testkit import Api  # noqa: F401 (the fixtures' client)

HERE = Path(__file__).parent


def _load_fake():
    spec = importlib.util.spec_from_file_location("s2vt_test_fake_service", HERE / "fake_service.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake_service = _load_fake()


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
