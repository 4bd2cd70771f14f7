"""Shared pytest fixtures: generated media only (tests never download anything)."""

from __future__ import annotations

import os
import shutil

import pytest

# Qt widgets run offscreen in tests. torch stays on few threads so that CI's 2 cores are not
# oversubscribed: at most 2, and under pytest-xdist (the README runs `-n auto --dist loadfile`: whole
# files per worker, so a module's fixtures are built once) the cores are shared out between the workers
# (2 workers on 2 cores: one thread each), child processes included.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = max(1, min(2, (os.cpu_count() or 1) // _WORKERS))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
# Diarization without a named backend is "auto": the neural backend where its model files are installed
# (a developer's machine after `s2vt diarize --setup`), the embedded one elsewhere (CI). Tests pin the
# embedded one so that they test the same thing everywhere; tests of the choice itself unset this, and the
# neural backend's tests name it.
os.environ.setdefault("S2VT_DIARIZATION_BACKEND", "embedded")


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(_THREADS)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most 8 (each worker holds its own models: ~1-3 GB)."""
    return max(1, min(8, os.cpu_count() or 1))


@pytest.fixture
def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def require_tool(name: str) -> str:
    """Path of an external tool, or skip the test naming what to install."""
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed (apt-get install {name})")
    return path


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can write to, root included (chmod, plus the immutable flag when run as root)."""
    import subprocess

    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK):  # root ignores modes: make the folder immutable instead
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if not immutable or os.access(folder, os.W_OK):
            folder.chmod(0o755)
            pytest.skip("cannot make a read-only folder here (root without chattr)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    folder.chmod(0o755)
