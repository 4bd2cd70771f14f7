"""SIGTERM as an exception, and a flag that long loops check.

The CLI's SIGTERM handler raises :class:`Terminated` in the main thread, so ``finally`` blocks and context
managers run (temporary files are removed). Where the main thread is running Python code that a C library
called back (a decoder's log callback, say), the exception can be lost there; the handler therefore also
sets :data:`requested`, and loops that write output call :func:`check` once per frame, so a write stops at
the next frame either way. (Seen in CI: a `s2vt convert` sent SIGTERM wrote all 240 frames and exited 0,
in about half of the full-suite runs and none of the runs of its test alone.)
"""

from __future__ import annotations

requested = False


class Terminated(BaseException):
    """SIGTERM as an exception (a BaseException: ``except Exception`` does not swallow it)."""


def request() -> None:
    global requested
    requested = True


def check() -> None:
    """Raise :class:`Terminated` if a SIGTERM arrived (whatever became of the handler's own exception)."""
    if requested:
        raise Terminated()


def reset() -> None:
    global requested
    requested = False
