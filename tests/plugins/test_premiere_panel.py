"""The Premiere panel: its manifest, and its JavaScript logic run by Node against a real `s2vt serve`."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PANEL = ROOT / "plugins" / "premiere"


def _harness():
    name = "s2vt_resolve_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("resolve_harness.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_manifest_is_a_v5_premiere_panel_with_localhost_network():
    m = json.loads((PANEL / "manifest.json").read_text())
    assert m["manifestVersion"] == 5
    assert [h["app"] for h in m["host"]] == ["premierepro"]
    assert (PANEL / m["main"]).is_file()
    assert any(e["type"] == "panel" for e in m["entrypoints"])
    assert set(m["requiredPermissions"]["network"]["domains"]) <= {"http://127.0.0.1", "http://localhost"}
    html = (PANEL / m["main"]).read_text()
    assert '<script src="index.js">' in html
    assert 'require("./api_client.js")' in (PANEL / "index.js").read_text()


def test_panel_logic_with_node_against_a_real_server(tmp_path):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed (apt-get install nodejs)")
    from s2v_toolkit import demo_project

    shutil.copytree(Path(demo_project.__file__).parent, tmp_path / "demo",
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    h = _harness()
    proc, state = h.start_serve(tmp_path, env_extra={"S2VT_TEST_SKIP": "SH030"})
    try:
        env = dict(os.environ, S2VT_STATE_FILE=str(state), S2VT_DEMO_DIR=str(tmp_path / "demo"))
        run = subprocess.run([node, "--test", str(PANEL / "test")], env=env, capture_output=True, text=True,
                             timeout=120, cwd=PANEL)
    finally:
        code, server_out = h.stop_serve(proc)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "# fail 0" in out and "# skipped 0" in out and "# pass 6" in out, out
    assert code == 0, server_out
