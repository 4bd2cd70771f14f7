"""scripts/build_hopper_attention.sh reports a failed build (it once exited 0 and copied the unbuilt package)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_hopper_attention.sh"


def _checkout(root: Path, setup_py: str) -> Path:
    (root / "hopper" / "flash_attn_3").mkdir(parents=True)
    (root / "hopper" / "flash_attn_interface.py").write_text("")
    (root / "hopper" / "setup.py").write_text(setup_py)
    return root


def _run(checkout: Path, prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), str(checkout), "-", str(prefix)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=60)


def test_a_failed_build_exits_nonzero_and_copies_nothing(tmp_path):
    fa = _checkout(tmp_path / "fa", "import sys\nsys.exit('compile error')\n")
    got = _run(fa, tmp_path / "prefix")
    assert got.returncode == 1 and "FlashAttention 3 build failed" in got.stdout
    assert not (tmp_path / "prefix" / "flash_attn_3").exists()
    assert "compile error" in (tmp_path / "prefix" / "build_fa3.log").read_text()


def test_a_build_that_succeeds_installs_and_a_missing_readme_is_made(tmp_path):
    # hopper/setup.py reads ../README.md; source archives without it must still build
    fa = _checkout(tmp_path / "fa", "open('../README.md').read()\n")
    got = _run(fa, tmp_path / "prefix")
    assert got.returncode == 0, got.stdout + got.stderr
    assert (tmp_path / "prefix" / "flash_attn_3").is_dir() and (tmp_path / "prefix" / "flash_attn_interface.py").exists()
