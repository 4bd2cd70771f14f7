"""Helpers shared by the generation tests: ``s2vt`` with chosen command groups, and a test line of audio."""

from __future__ import annotations

import numpy as np

from s2v_toolkit import cli

SR = 16000


def run_cli(groups: tuple[str, ...], argv: list[str]) -> int:
    """``s2vt`` with only ``groups`` registered: a stage's tests exercise its commands and the CLI's
    error handling independently of other groups (tests/test_cli.py covers the whole parser)."""
    saved = cli.COMMAND_GROUPS
    cli.COMMAND_GROUPS = groups
    try:
        return cli.main(argv)
    finally:
        cli.COMMAND_GROUPS = saved


def tone(seconds: float, freq: float = 220.0, sr: int = SR) -> np.ndarray:
    """A ``freq`` Hz tone with a 3 Hz amplitude wobble (a voice-like envelope), float32 at ``sr``."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
