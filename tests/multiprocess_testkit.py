"""Starting several Python processes as the ranks of one torch.distributed group, for the CPU (gloo)
tests of the multi-GPU code: a free port, torchrun's environment, one deadline for all ranks, and the
failing ranks' logs in the test failure."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

ROOT = str(Path(__file__).resolve().parents[1])
TESTS = str(Path(__file__).resolve().parent)  # the test files run as the ranks' scripts import this kit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_ranks(world: int, argv_of_rank: Callable[[int], list[str]], tmp_dir: Path, timeout_s: float,
                 extra_env: dict | None = None) -> list[str]:
    """Run ``argv_of_rank(rank)`` for every rank with torchrun's variables (``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and one thread each; wait for all of them within
    ``timeout_s`` together. Returns each rank's log; fails the test naming the ranks that failed."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
               "PYTHONPATH": os.pathsep.join([ROOT, TESTS, os.environ.get("PYTHONPATH", "")]), **(extra_env or {})}
        log = open(tmp_dir / f"rank{rank}.log", "w")
        procs.append((subprocess.Popen(argv_of_rank(rank), stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=ROOT), log))
    failed = []
    deadline = time.monotonic() + timeout_s  # one deadline for all ranks together
    try:
        for rank, (proc, _) in enumerate(procs):
            try:
                if proc.wait(timeout=max(0.1, deadline - time.monotonic())) != 0:
                    failed.append(rank)
            except subprocess.TimeoutExpired:
                failed.append(rank)
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = [(tmp_dir / f"rank{r}.log").read_text() for r in range(world)]
    if failed:
        pytest.fail(f"world {world}: ranks {failed} failed or timed out\n" +
                    "\n".join(f"--- rank {r} ---\n{logs[r][-3000:]}" for r in failed))
    return logs
