"""Make this folder's kit and the job tests' helpers (fast_plan, FlatColourGenerator) importable."""

import sys
from pathlib import Path

HERE = Path(__file__).parent
for folder in (HERE, HERE.parent / "jobs"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
