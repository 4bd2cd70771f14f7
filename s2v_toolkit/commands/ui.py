"""``s2vt review PLAN``: the review panel (PySide6) on a render plan or a review manifest."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("review", help="open the review panel: compare renders with originals, approve or reject")
    p.add_argument("plan", help="render plan JSON (with its job store next to it) or a review manifest JSON")
    p.add_argument("--screenshot", metavar="PNG", default=None,
                   help="save a screenshot of the panel (first shot loaded) and exit instead of opening it")
    p.set_defaults(func=_cmd_review, _edits=("plan",))  # the panel records decisions in the plan itself


def _cmd_review(args) -> int:
    from s2v_toolkit.errors import ConfigError

    try:
        import PySide6  # noqa: F401
    except ImportError:
        raise ConfigError("the review panel needs PySide6: pip install 's2v-toolkit[ui]'") from None
    if args.screenshot:
        from s2v_toolkit.ui.app import save_screenshot

        path = save_screenshot(args.plan, args.screenshot)
        print(f"wrote {path}")
        return 0
    from s2v_toolkit.ui import run_review

    return run_review(args.plan)
