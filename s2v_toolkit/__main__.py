"""``python -m s2v_toolkit`` is the same as the ``s2vt`` command."""

import sys

from s2v_toolkit.cli import main

sys.exit(main())
