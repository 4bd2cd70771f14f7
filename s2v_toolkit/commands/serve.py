"""``s2vt serve``: the local HTTP API for the Resolve script and the Premiere panel."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the local API (127.0.0.1 only) that the Resolve/Premiere plugins use",
                       description="Listen on 127.0.0.1 for host plugins. The URL and a per-session token go to a "
                                   "per-user state file (mode 0600) that the plugins read. Runs until Ctrl-C.")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0: a free port)")
    p.add_argument("--state-file", default=None,
                   help="where to write URL + token (default: $S2VT_HOME/serve.json or ~/.local/state/s2v-toolkit/serve.json)")
    p.add_argument("--workspace", default=None,
                   help="folder for project folders: plans, renders, conformed timelines "
                        "(default: <state folder>/projects)")
    p.add_argument("--allow", action="append", default=None, metavar="FOLDER",
                   help="a folder whose files requests may name (timelines, cast files); repeat for more "
                        "(default: your home folder)")
    p.add_argument("--model", default=None, help="default generator for renders, e.g. 'tiny' (random weights)")
    p.add_argument("--checkpoint", default=None, help="default Wan2.2-S2V checkpoint folder for renders")
    p.add_argument("--generator", default=None, metavar="MODULE:FACTORY",
                   help="default generator of your own for renders (see docs/plan.md)")
    p.add_argument("--device", default=None, help="torch device for renders (default: the generator's choice)")
    p.add_argument("--service", default=None, metavar="MODULE:FACTORY",
                   help="another backend behind the API (default: the jobs stage)")
    p.add_argument("--print-openapi", action="store_true", help="print the API's OpenAPI document and exit")
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args) -> int:
    import signal
    import threading
    from pathlib import Path

    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.serve import DEFAULT_SERVICE, default_state_file, load_service, start_server, state_dir

    if args.print_openapi:
        from s2v_toolkit.commands import print_json
        from s2v_toolkit.serve import openapi_document

        print_json(openapi_document())
        return 0
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: use 0 (any free port) or 1-65535")
    if args.service:
        service = load_service(args.service)
    else:
        service = load_service(DEFAULT_SERVICE, default_model=args.model, default_checkpoint=args.checkpoint,
                               device=args.device, default_generator=args.generator)
    state_file = Path(args.state_file).expanduser() if args.state_file else default_state_file()
    workspace = Path(args.workspace).expanduser() if args.workspace else state_dir() / "projects"
    allowed = [Path(a).expanduser() for a in (args.allow or [str(Path.home())])]
    for folder in allowed:
        if not folder.is_dir():
            raise ConfigError(f"--allow {folder}: folder not found")
    # start_server names the failing part itself: the workspace, the port or the state file
    running = start_server(service, workspace, allowed, port=args.port, state_file=state_file)
    stop = threading.Event()

    def _stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    running.serve_in_thread()
    print(f"s2vt serve: listening on {running.url}", flush=True)
    print(f"s2vt serve: state file {running.state_file} (URL + token, mode 0600); workspace {workspace}", flush=True)
    print(f"s2vt serve: requests may name files under: {', '.join(str(a) for a in allowed)}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        print("s2vt serve: stopping (running steps are cancelled; renders resume next time)", flush=True)
        running.stop()
    return 0
