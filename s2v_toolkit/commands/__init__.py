"""Subcommand groups of ``s2vt``. Each module has ``register(subparsers)``.

Rules for a group module: parse arguments, call the library, print. Import the library (and
anything heavy) inside the command function, never at module level.
"""

from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    """Print a JSON document to stdout (the ``--json`` output of every command)."""
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
