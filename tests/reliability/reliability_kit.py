"""Helpers of the reliability suite: run the CLI in a child process, snapshot a folder tree, small media."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMP_MARKS = (".s2vt-tmp-", ".s2vt-group-")


def _child_env(extra: dict | None = None) -> dict:
    """This process's environment with this checkout first on the path."""
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    e.update(extra or {})
    return e


def s2vt(*args, timeout: float = 120, env: dict | None = None, preexec=None) -> subprocess.CompletedProcess:
    """``s2vt ARGS`` in a child process (this checkout first on the path)."""
    return subprocess.run([sys.executable, "-m", "s2v_toolkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_child_env(env), preexec_fn=preexec)


# Runs the command given after the file name and writes the peak resident memory (KiB) of that one command
# (and its own children) to the file: the pytest process's RUSAGE_CHILDREN would instead report the
# largest child any earlier test ever started.
_PEAK_LAUNCHER = ("import resource, subprocess, sys\n"
                  "code = subprocess.run(sys.argv[2:]).returncode\n"
                  "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
                  "sys.exit(code)\n")


def s2vt_peak_kb(*args, peak_file: Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, int]:
    """``s2vt ARGS`` in a child process, with the peak resident memory of that command alone (KiB)."""
    proc = subprocess.run([sys.executable, "-c", _PEAK_LAUNCHER, str(peak_file), sys.executable, "-m",
                           "s2v_toolkit", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=_child_env())
    return proc, int(Path(peak_file).read_text())


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root`` (symlinks by target name)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = str(p.relative_to(root))
            out[rel] = "link:" + os.readlink(p) if p.is_symlink() else digest(p)
    return out


def temp_files(root: Path) -> list[str]:
    return [str(p) for p in Path(root).rglob("*") if any(m in p.name for m in TEMP_MARKS)]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error of a refused command: exit 2, one line on stderr, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], err[-2000:])
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("s2vt: error:")]
    assert len(lines) == 1, err
    return lines[0]


def write_clip(path: Path, frames: int = 12, size=(48, 64), fps: int = 24, audio: bool = True) -> Path:
    import numpy as np

    from s2v_toolkit.media import write_video

    pics = np.zeros((frames, *size, 3), np.uint8)
    pics[:, :, :, 0] = (np.arange(frames) * 20 % 255)[:, None, None]
    sound = (0.3 * np.sin(np.arange(frames * 16000 // fps) * 0.05)).astype(np.float32) if audio else None
    write_video(path, pics, fps, preset="h264", audio=sound, audio_rate=16000 if audio else None)
    return path


def write_wav(path: Path, seconds: float = 1.0, amplitude: float = 0.3) -> Path:
    import numpy as np
    import soundfile

    t = np.arange(int(16000 * seconds)) / 16000
    soundfile.write(str(path), (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return path


def write_png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny file whose PNG header claims ``width`` x ``height`` (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * 3)
    idat = zlib.compress(row * 4)  # a few rows only: a decoder that trusts the header allocates it all
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
