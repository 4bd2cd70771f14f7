"""``s2vt demo``: run the main job on the demo project shipped with the package."""

from __future__ import annotations

from s2v_toolkit.commands import print_json


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on the bundled demo project")
    p.add_argument("--project", default=None, help="demo project folder (default: the one shipped with the package)")
    p.add_argument("-o", "--out", default="demo_out", help="output folder (default: ./demo_out)")
    p.add_argument("--checkpoint", default=None,
                   help="Wan2.2-S2V-14B folder for real renders (default: tiny random-weight models, plumbing only)")
    p.add_argument("--device", default=None, help="torch device for rendering (default: cuda if available, else cpu)")
    p.add_argument("--plan-only", action="store_true", help="stop after writing the plan")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from s2v_toolkit.demo import run_demo

    summary = run_demo(project_dir=args.project, out_dir=args.out, checkpoint=args.checkpoint,
                       render=not args.plan_only, device=args.device, progress=not args.json)
    if args.json:
        print_json(summary.to_dict())
    else:
        print(summary.report())
    return 0
