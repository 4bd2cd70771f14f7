"""Make this folder's helper modules (jobs_helpers, jobs_testgen) importable by the job tests."""

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
