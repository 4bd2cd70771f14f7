"""``s2vt plan``, ``s2vt render``, ``s2vt status``, ``s2vt conform``: the render plan and its jobs.

(``s2vt conform-timeline TIMELINE RENDERS.json`` is the timeline stage's lower-level command; ``conform`` takes
a plan and places every done job's render.)
"""

from __future__ import annotations

from s2v_toolkit.commands import print_json


def register(sub) -> None:
    p = sub.add_parser("plan", help="plan the renders of a timeline: lines, shots and an action per shot")
    p.add_argument("timeline", help="timeline file (.otio, .xml, .fcpxml, .aaf, .edl)")
    p.add_argument("--cast", required=True, help="cast file (YAML or JSON; see docs/plan.md)")
    p.add_argument("-o", "--out", required=True, help="plan file to write (JSON)")
    p.add_argument("--tracks", nargs="+", metavar="TRACK", help="dialogue track ids or name patterns (default: by name)")
    p.add_argument("--turns", metavar="FILE",
                   help="use these speaker turns (SpeakerTurns JSON from `s2vt diarize --json`, or RTTM) instead "
                        "of diarizing the first dialogue track")
    p.add_argument("--backend", choices=("auto", "embedded", "neural", "pyannote"), default=None,
                   help="diarization backend (default auto: neural where `s2vt diarize --setup` installed its "
                        "models, else embedded; $S2VT_DIARIZATION_BACKEND changes the default)")
    p.add_argument("--num-speakers", type=int, default=None, help="number of voices, if known")
    p.add_argument("--no-face-check", action="store_true",
                   help="do not look for the speaking face: every shot under a known character is a redub")
    p.add_argument("--overwrite", action="store_true", help="replace the plan file if it exists")
    p.add_argument("--allow-missing-media", action="store_true",
                   help="accept silence where a dialogue clip's media is not found (default: exit 2 naming each)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    from s2v_toolkit.commands.timeline import media_options

    media_options(p)  # --search DIR (kept in the plan for render and conform), --rate of an EDL
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("render", help="render a plan's queued jobs (resumable; done jobs are skipped)")
    p.add_argument("plan", help="plan file from `s2vt plan`")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--checkpoint", metavar="DIR", help="Wan2.2-S2V checkpoint folder")
    g.add_argument("--model", choices=("tiny",), help="'tiny': random-weight model, for testing the pipeline")
    g.add_argument("--generator", metavar="MODULE:FACTORY", help="a generator of your own (see docs/plan.md)")
    p.add_argument("--device", default=None, help="torch device for the model (default: cuda if present)")
    p.add_argument("--max-vram", type=float, default=None, metavar="GB",
                   help="fit each render in GB (10^9 bytes) of GPU memory (see `s2vt generate --max-vram`)")
    p.add_argument("--fp8", default="off", choices=("off", "linears", "all-linears", "attention"),
                   help="approximate fp8 fast path on Hopper GPUs (see `s2vt generate --fp8`; default off)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps per clip (default: the preset's, 40)")
    from s2v_toolkit.commands.generation_options import add_fast_path_options, add_parallel_option

    add_fast_path_options(p, clips=False)
    add_parallel_option(p)
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--ray", metavar="ADDRESS", help="run each job as a Ray task (ADDRESS: auto, ray://..., local)")
    p.add_argument("--ray-gpus", type=float, default=1.0, help="GPUs per Ray task (default 1)")
    p.add_argument("--retry-failed", action="store_true", help="render failed jobs again")
    p.add_argument("--lease", type=float, default=120.0, help="seconds a worker's claim lasts without renewal")
    p.add_argument("--json", action="store_true", help="print the final job table as JSON")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("status", help="job states of a plan (queued, running, done, failed, skipped)")
    p.add_argument("plan", help="plan file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("conform", help="put a plan's done renders on a new track of a copy of the timeline")
    p.add_argument("plan", help="plan file")
    p.add_argument("-o", "--out", default=None,
                   help="output folder (versioned <timeline>.s2v_vNNN files) or a timeline file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--diff", action="store_true",
                   help="print the structural difference between the timeline and each written file")
    p.set_defaults(func=_cmd_conform)


def _load_turns(path: str):
    import json
    from pathlib import Path

    from s2v_toolkit.diarization import SpeakerTurns, read_rttm
    from s2v_toolkit.errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: speaker turns file not found")
    if p.suffix.lower() == ".rttm":
        turns = read_rttm(p)
        return next(iter(turns.values())) if isinstance(turns, dict) else turns
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{p}: not valid JSON ({exc})") from None
    if isinstance(data, list):
        if len(data) != 1:
            raise ConfigError(f"{p}: holds {len(data)} recordings' turns; give the turns of the dialogue track only")
        data = data[0]
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise ConfigError(f"{p}: not a speaker turns document (expected a 'turns' list, as `s2vt diarize --json` writes)")
    try:
        return SpeakerTurns.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: a turn is missing start/end/speaker ({exc})") from None


def _cmd_plan(args) -> int:
    from pathlib import Path

    from s2v_toolkit.errors import OutputError
    from s2v_toolkit.jobs import build_plan

    from s2v_toolkit.values import parse_count

    if args.num_speakers is not None:
        parse_count(args.num_speakers, "--num-speakers", 1, 100)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputError(out, "already exists (pass --overwrite to replace the plan; its job store is kept)")
    turns = _load_turns(args.turns) if args.turns else None
    plan = build_plan(args.timeline, args.cast, dialogue_tracks=args.tracks, turns=turns,
                      face_check=not args.no_face_check, backend=args.backend, num_speakers=args.num_speakers,
                      progress=True, allow_missing_media=args.allow_missing_media,
                      search_dirs=tuple(args.search), rate=args.rate)
    plan.save(out, overwrite=True)
    if args.json:
        print_json(plan.to_dict(out.absolute().parent))
        return 0
    c = plan.counts()
    print(f"plan: {out}  ({len(plan.lines)} line(s); {c['redub']} redub, {c['new_shot']} new_shot, {c['skip']} skip)")
    for j in plan.jobs:
        tc_in, tc_out = plan.timecodes(j)
        print(f"  {j.id}  {j.label:<24} {tc_in}-{tc_out}  {j.action:<8} {j.reason}")
    for n in plan.notes:
        print(f"  note: {n}")
    return 0


def _generation_options(args) -> tuple:
    """--steps/--preset/--official/--cache/--last-clip/--lora* as generator options (WanJobOptions fields)."""
    from s2v_toolkit.commands.generation_options import preset_name

    opts: tuple = ()
    if args.steps is not None:
        opts += (("steps", args.steps),)
    preset = preset_name(args)
    if preset is not None:
        opts += (("preset", preset),)
    if args.cache is not None:
        opts += (("cache", None if args.cache.lower() in ("none", "off") else args.cache),)
    if getattr(args, "last_clip", None) is not None:
        opts += (("last_clip", args.last_clip),)
    if args.lora:
        from s2v_toolkit.models.lora import parse_lora_spec

        specs = [parse_lora_spec(v) for v in args.lora]  # files checked before any model loads
        opts += (("loras", tuple(f"{s.path}:{s.strength:g}" for s in specs)),
                 ("lora_mode", args.lora_mode), ("lora_ignore_unmatched", bool(args.lora_ignore_unmatched)))
    return opts


def _cmd_render(args) -> int:
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.jobs import GeneratorSpec, format_table, load_plan, render_plan, render_plan_ray

    from s2v_toolkit.values import parse_count, parse_seconds

    parse_count(args.workers, "--workers", 1, 256)
    parse_seconds(args.lease, "--lease")
    if args.max_vram is not None and not args.max_vram > 0:
        raise ConfigError(f"--max-vram {args.max_vram}: must be a positive number of GB")
    options = (("max_vram_gb", args.max_vram),) if args.max_vram is not None else ()
    if args.fp8 != "off":
        options += (("fp8", args.fp8),)
    options += _generation_options(args)
    from s2v_toolkit.pipelines.distributed import finish_distributed, resolve_parallel

    parallel = resolve_parallel(args.parallel)  # WORLD_SIZE/RANK from torchrun; one process: "none"
    if parallel.enabled:
        if args.workers != 1 or args.ray or args.generator:
            raise ConfigError("--parallel (a torchrun launch) renders with one worker per launch: drop "
                              "--workers/--ray/--generator")
        options += (("parallel", args.parallel),)
    spec = GeneratorSpec(model=args.model, checkpoint=args.checkpoint, factory=args.generator, device=args.device,
                         options=options)
    plan = load_plan(args.plan)
    if parallel.enabled:
        from s2v_toolkit.jobs.parallel_render import render_plan_parallel

        finished = False
        try:
            summary = render_plan_parallel(plan, spec, parallel, retry_failed=args.retry_failed,
                                           lease_seconds=args.lease, progress=not args.json)
            finished = True
        finally:
            finish_distributed(parallel, wait=finished)
        if summary is None:  # ranks > 0: rank 0 reports
            return 0
    elif args.ray:
        summary = render_plan_ray(plan, spec, address=args.ray, num_gpus=args.ray_gpus,
                                  retry_failed=args.retry_failed, lease_seconds=args.lease, progress=not args.json)
    else:
        summary = render_plan(plan, spec=spec, workers=args.workers, retry_failed=args.retry_failed,
                              lease_seconds=args.lease, progress=not args.json)
    if args.json:
        print_json(summary.to_dict())
    else:
        print(format_table(summary.records, plan))
        c = summary.counts
        print(f"\n{c['done']} done, {c['failed']} failed, {c['skipped']} skipped, {c['queued']} queued, "
              f"{c['running']} running  ({summary.seconds:.1f} s; store {summary.store})")
        if c["failed"]:
            print("failed jobs keep their reason above; fix the plan or the generator, then "
                  "`s2vt render PLAN --retry-failed`")
    return 1 if summary.counts["failed"] else 0


def _cmd_status(args) -> int:
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.jobs import JobStore, format_table, load_plan, store_path_for

    plan = load_plan(args.plan)
    path = store_path_for(plan.path)
    if not path.exists():
        raise ConfigError(f"{path}: no job store yet (run `s2vt render {args.plan}` first)")
    with JobStore(path) as store:
        records, counts = store.records(), store.counts()
    if args.json:
        print_json({"plan": str(plan.path), "store": str(path), "counts": counts,
                    "jobs": [r.to_dict() for r in records]})
        return 0
    print(format_table(records, plan))
    print("\n" + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0


def _cmd_conform(args) -> int:
    from s2v_toolkit.jobs import conform_plan

    result = conform_plan(args.plan, args.out, overwrite=args.overwrite)
    diffs = {}
    if getattr(args, "diff", False):
        from s2v_toolkit.commands.timeline import conform_diffs
        from s2v_toolkit.jobs.plan import load_plan

        diffs = conform_diffs(load_plan(args.plan).timeline, result.outputs)
    if args.json:
        print_json({**result.to_dict(), **({"diff": diffs} if diffs else {})})
        return 0
    for adapter, lines in diffs.items():
        print(f"diff -> {result.outputs[adapter]} ({adapter}): {len(lines)} change(s)")
        print("\n".join(f"  {line}" for line in lines))
    print(f"conform v{result.version:03d}: {len(result.placed)} render(s) on track(s) "
          f"{', '.join(result.track_names) or '(none)'}")
    for adapter, path in result.outputs.items():
        print(f"  wrote {path} ({adapter})")
    for p in result.problems:
        print(f"  problem: {p}")
    for n in result.not_carried:
        print(f"  note: {n}")
    return 0
