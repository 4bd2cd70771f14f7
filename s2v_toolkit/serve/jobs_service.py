"""The default service of ``s2vt serve``: the jobs stage (build_plan, JobStore, render_plan, conform_plan).

Everything a project makes lives in its folder: ``plan.json``, the job store beside it
(``plan.jobs.sqlite``), the renders (``plan.renders/``) and the conformed timelines (``conform/``).
Rendering runs in the server process, one job at a time, so a cancel stops between two jobs and the
log and progress move job by job; the generator (model weights) is loaded once per render request.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.values import parse_bool, parse_count
from s2v_toolkit.serve.service import Service, TaskContext

PLAN_NAME = "plan.json"
PLAN_OPTIONS = {"dialogue_tracks", "face_check", "backend", "num_speakers", "turns", "allow_missing_media",
                "search_dirs", "rate"}
# Requests choose among what the server was started with: a request cannot point the server at weights
# in some folder of its choosing (checkpoint and device come from `s2vt serve --checkpoint/--device`).
RENDER_OPTIONS = {"model", "retry_failed"}
REQUEST_MODELS = ("tiny",)
STORE_TO_API = {"queued": "pending", "running": "running", "done": "done", "failed": "failed", "skipped": "skipped"}


def load_turns(path: Path):
    """Speaker turns given instead of diarizing: SpeakerTurns JSON (``s2vt diarize --json``) or RTTM."""
    import json

    from s2v_toolkit.diarization import SpeakerTurns, read_rttm

    if path.suffix.lower() == ".rttm":
        turns = read_rttm(path)
        return next(iter(turns.values())) if isinstance(turns, dict) else turns
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path}: speaker turns are not valid JSON ({exc})") from None
    if isinstance(data, dict) and "turns" not in data and "diarization" in data:
        data = data["diarization"]
    return SpeakerTurns.from_dict(data)


def _check_keys(options: dict, known: set[str], what: str) -> None:
    extra = sorted(set(options) - known)
    if extra:
        raise ConfigError(f"{what} option(s) {', '.join(extra)} not known (known: {', '.join(sorted(known))})")


class JobsService(Service):
    name = "jobs"

    def __init__(self, default_model: str | None = None, default_checkpoint: str | None = None,
                 device: str | None = None, default_generator: str | None = None):
        self.default_model = default_model
        self.default_checkpoint = default_checkpoint
        self.default_generator = default_generator  # "module:factory" (s2vt serve --generator)
        self.device = device

    def describe(self) -> dict:
        return {"name": self.name, "model": self.default_model, "checkpoint": self.default_checkpoint,
                "generator": self.default_generator, "device": self.device}

    # ------------------------------------------------------------------ plan
    def plan(self, project_dir: Path, timeline: Path, cast: Path | None, options: dict, ctx: TaskContext) -> Path:
        from s2v_toolkit.jobs import build_plan

        _check_keys(options, PLAN_OPTIONS, "plan")
        if cast is None:
            raise ConfigError(f"{timeline}: a cast file is needed to plan (who speaks, their faces and voices)")
        ctx.progress(0, 1, "reading the timeline, finding who speaks when")
        ctx.log(f"plan: timeline {timeline}, cast {cast}")
        turns = load_turns(Path(options["turns"])) if options.get("turns") else None
        speakers = options.get("num_speakers")
        plan = build_plan(timeline, cast, dialogue_tracks=options.get("dialogue_tracks"), turns=turns,
                          face_check=parse_bool(options.get("face_check", True), "plan option face_check"),
                          backend=options.get("backend"),
                          num_speakers=None if speakers is None else
                          parse_count(speakers, "plan option num_speakers", 1, 100),
                          allow_missing_media=parse_bool(options.get("allow_missing_media", False),
                                                         "plan option allow_missing_media"),
                          # where media is looked for and an EDL's rate (both checked by the server), kept
                          # in the plan so render, conform and review read the timeline the same way
                          search_dirs=tuple(options.get("search_dirs") or ()), rate=options.get("rate"))
        path = plan.save(Path(project_dir) / PLAN_NAME)
        counts = plan.counts()
        ctx.log(f"plan: {len(plan.lines)} line(s), jobs " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for note in plan.notes:
            ctx.log(f"plan note: {note}")
        ctx.progress(1, 1, "planned")
        return path

    # ------------------------------------------------------------------ state
    def jobs(self, plan_path: Path) -> dict:
        from s2v_toolkit.jobs import JobStore, load_plan, store_path_for

        plan = load_plan(plan_path)
        records = {}
        store_file = store_path_for(plan.path)
        if store_file.exists():
            store = JobStore(store_file)
            try:
                records = {r.id: r for r in store.records()}
            finally:
                store.close()
        jobs = []
        for j in plan.jobs:
            rec = records.get(j.id)
            if rec is not None:
                state = STORE_TO_API.get(rec.state, rec.state)
            else:
                state = "pending" if j.renders else "skipped"
            done = state == "done" and rec is not None and rec.output_path
            jobs.append({
                "id": j.id, "label": j.label, "action": j.action, "state": state, "reason": j.reason,
                "character": j.character, "line": j.line, "record_in": j.record_in, "record_out": j.record_out,
                "record_tc": list(plan.timecodes(j)), "output": rec.output_path if done else None,
                "output_frames": j.frame_count if done else None, "error": rec.error if rec is not None else None,
            })
        facts = {"rate": plan.rate, "rate_exact": plan.to_dict()["rate_exact"], "start_frame": plan.start_frame,
                 "start_timecode": plan.record_timecode(0), "drop_frame": plan.drop_frame,
                 "duration_frames": plan.duration_frames}
        return {"timeline": facts, "jobs": jobs}

    # ------------------------------------------------------------------ render
    def render_options(self, options: dict) -> dict:
        _check_keys(options, RENDER_OPTIONS, "render")
        out = dict(options)
        if out.get("model") is not None and out["model"] not in REQUEST_MODELS + (self.default_model,):
            raise ConfigError(f"render: model {out['model']!r} is not offered by this server "
                              f"(choose {', '.join(m for m in REQUEST_MODELS + (self.default_model,) if m)})")
        if out.get("model") is None:
            out["model"] = self.default_model
            out["checkpoint"] = self.default_checkpoint
            out["generator"] = self.default_generator
        else:
            out["checkpoint"] = out["generator"] = None
        out["device"] = self.device
        if not out["model"] and not out["checkpoint"] and not out["generator"]:
            raise ConfigError("render: no generator chosen; pass options {\"model\": \"tiny\"} or "
                              "{\"checkpoint\": DIR}, or start `s2vt serve --model/--checkpoint`")
        return out

    def render(self, plan_path: Path, options: dict, ctx: TaskContext) -> dict:
        from s2v_toolkit.jobs import (
            GeneratorSpec, JobStore, load_generator, new_worker_id, render_plan, store_path_for,
        )

        spec = GeneratorSpec(model=options.get("model"), checkpoint=options.get("checkpoint"),
                             factory=options.get("generator"), device=options.get("device"))
        ctx.log(f"render: loading generator ({spec.describe()})")
        generator = load_generator(spec)
        worker = new_worker_id("serve")
        t0 = time.time()
        retry = parse_bool(options.get("retry_failed", False), "render option retry_failed")
        first = True
        while True:
            ctx.check_cancelled()
            summary = render_plan(plan_path, generator, max_jobs=1, worker=worker, retry_failed=retry and first)
            first = False
            counts = summary.counts
            finished = counts.get("done", 0) + counts.get("failed", 0)
            total = finished + counts.get("queued", 0) + counts.get("running", 0)
            for o in summary.outcomes:
                ctx.log(f"render: {o.label}: {o.state}" + (f" ({o.error})" if o.error else "")
                        + (f" -> {o.output_path}" if o.output_path else ""))
            ctx.progress(finished, total, f"{finished}/{total} job(s) finished")
            if not summary.outcomes:
                break
        store = JobStore(store_path_for(plan_path))
        try:
            counts = store.counts()
        finally:
            store.close()
        return {"counts": counts, "seconds": round(time.time() - t0, 3)}

    # ------------------------------------------------------------------ conform / review
    def conform(self, plan_path: Path, out_dir: Path, options: dict, ctx: TaskContext) -> dict:
        from s2v_toolkit.jobs import conform_plan

        _check_keys(options, {"native"}, "conform")
        result = conform_plan(plan_path, out_dir, native=parse_bool(options.get("native", True), "conform option native"))
        d = result.to_dict()
        for fmt, path in d.get("outputs", {}).items():
            ctx.log(f"conform: {fmt}: {path}")
        for p in d.get("problems", []):
            ctx.log(f"conform problem: {p}")
        return d

    def review_command(self, plan_path: Path) -> list[str]:
        return [sys.executable, "-m", "s2v_toolkit", "review", str(plan_path)]
