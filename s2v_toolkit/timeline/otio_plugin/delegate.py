"""What every s2v OTIO adapter does: hand the file to the toolkit's format module."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path


def read(fmt: str, filepath: str, **kwargs):
    from s2v_toolkit.timeline.formats import get_format

    rate = kwargs.get("rate")
    with contextlib.redirect_stdout(sys.stderr):   # format libraries' print()s never reach stdout
        return get_format(fmt).read(Path(filepath), rate=rate).timeline


def write(fmt: str, timeline, filepath: str, **kwargs) -> None:
    from s2v_toolkit.timeline.formats import get_format

    writer = get_format(fmt).write
    if writer is None:
        raise ValueError(f"{fmt}: the toolkit does not write this format")
    with contextlib.redirect_stdout(sys.stderr):
        writer(timeline, Path(filepath), **kwargs)
