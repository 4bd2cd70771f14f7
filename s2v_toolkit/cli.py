"""The ``s2vt`` command line: thin argument parsing over the library.

Subcommands are grouped in :mod:`s2v_toolkit.commands`. Errors the user can cause are
:class:`~s2v_toolkit.errors.S2VError`: they print one line (``s2vt: error: ...``) and exit 2;
``--debug`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from s2v_toolkit import __version__, interrupts
from s2v_toolkit.errors import S2VError

# Subcommands live in ``s2v_toolkit/commands/<group>.py``, each with ``register(subparsers)``.
# They sit outside the stage packages and import heavy libraries (torch, Qt, mediapipe) only inside
# the command function, so that ``s2vt --help`` stays fast. Groups are listed in help order.
COMMAND_GROUPS = ("media", "timeline", "diarization", "faces", "models", "pipelines", "redub", "jobs", "ui",
                  "serve", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2vt",
        description="s2v-toolkit: audio-driven re-dub and shot generation for editors' timelines.",
    )
    parser.add_argument("--version", action="version", version=f"s2v-toolkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        module = f"s2v_toolkit.commands.{group}"
        if importlib.util.find_spec(module) is not None:  # groups land as their stages do
            importlib.import_module(module).register(sub)
    return parser


def _exit_cleanly_on_sigterm():
    """Install the SIGTERM handler (main thread, default handler only); returns what undoes it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None

    def _raise(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        interrupts.request()  # writing loops check it, should this exception be lost in a library callback
        raise interrupts.Terminated()

    def _restore():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        interrupts.reset()

    interrupts.reset()
    signal.signal(signal.SIGTERM, _raise)
    return _restore


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _show_media_warnings()
    restore = _exit_cleanly_on_sigterm()
    try:
        from s2v_toolkit import safety

        # One rule for every command: no output may be a file the command reads (see s2v_toolkit.safety).
        inputs = safety.inputs_from_args(args)
        for out in safety.outputs_from_args(args):
            safety.check_output(out, inputs)
        with safety.reading(inputs):
            return int(args.func(args) or 0)
    except S2VError as exc:
        if args.debug:
            raise
        print(f"s2vt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("s2vt: interrupted", file=sys.stderr)
        return 130
    except interrupts.Terminated:
        print("s2vt: terminated", file=sys.stderr)
        return 143
    except RecursionError:
        if args.debug:
            raise
        print("s2vt: error: input nested too deeply to read", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and the reader went away: not an error worth reporting.
        sys.stderr.close()
        return 0
    except OSError as exc:
        # Disk full, permission denied, etc. outside our own checks: still one line with the path.
        if args.debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"s2vt: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        restore()


def _show_media_warnings() -> None:
    """Media warnings (a damaged packet, a variable-rate source) as one plain line each, once."""
    import warnings

    from s2v_toolkit.errors import MediaWarning

    plain = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, MediaWarning):
            print(f"s2vt: warning: {message}", file=file or sys.stderr)
        else:
            plain(message, category, filename, lineno, file, line)

    warnings.showwarning = show


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
