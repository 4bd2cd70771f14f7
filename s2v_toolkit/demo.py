"""``s2vt demo``: the main job on the demo project shipped with the package.

The demo project (``s2v_toolkit/demo_project``, built by its ``build_demo.py``) is a 20-second,
23.976 fps scene with two characters, four dialogue lines, an .otio and an FCP 7 XML timeline and a
cast file. The demo runs every stage that has landed, in order, and writes what it produced under
the output folder. It never writes into the project folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from s2v_toolkit.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent / "demo_project"


@dataclass
class MediaSummary:
    path: str
    kind: str  # "video" or "audio"
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DemoSummary:
    project_dir: str
    out_dir: str
    timeline: str
    timeline_rate: str
    timeline_start: str
    clips: int
    characters: list[str]
    lines: list[dict]
    media: list[MediaSummary] = field(default_factory=list)
    missing_media: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)  # what ran, in order, one line each
    plan_path: str | None = None
    jobs: list[dict] = field(default_factory=list)   # one per shot job: label, action, state, reason, output
    conformed: dict = field(default_factory=dict)    # adapter -> conformed timeline file
    model: str = "tiny"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["media"] = [m.to_dict() for m in self.media]
        return d

    def report(self) -> str:
        out = [
            f"s2v-toolkit demo: {self.timeline} ({self.timeline_rate} fps, start {self.timeline_start}, "
            f"{self.clips} clips)",
            f"  cast: {', '.join(self.characters)}",
            "  dialogue lines (ground truth from project.json):",
        ]
        for line in self.lines:
            out.append(f"    {line['record']}  {line['character']:<8} \"{line['text']}\"")
        out.append("  media:")
        for m in self.media:
            out.append(f"    {m.kind:<5} {Path(m.path).name:<24} {m.detail}")
        if self.missing_media:
            out.append(f"  MISSING media: {', '.join(self.missing_media)}")
        out.append("  stages:")
        out.extend(f"    - {s}" for s in self.stages)
        if self.jobs:
            out.append("  shot jobs:")
            for j in self.jobs:
                tail = j["output"] or j["reason"]
                out.append(f"    {j['label']:<22} {j['action']:<8} {j['state']:<8} {tail}")
        for adapter, path in self.conformed.items():
            out.append(f"  conformed timeline ({adapter}): {path}")
        if self.model == "tiny":
            out.append("  NOTE: renders come from tiny random-weight models: they test the plumbing and are not "
                       "real generations. Use --checkpoint DIR with the Wan2.2-S2V-14B weights for real renders.")
        out.append(f"  outputs in {self.out_dir}")
        if self.plan_path:
            out.append("  next:")
            if self.conformed:
                out.append(f"    - open {next(iter(self.conformed.values()))} in your editor (or OTIO's otioview)")
            out.append(f"    - review the renders: s2vt review {self.plan_path}")
            if self.model == "tiny":
                out.append("    - real renders: s2vt demo --checkpoint /path/to/Wan2.2-S2V-14B (see README)")
        return "\n".join(out)


def load_project(project_dir: str | os.PathLike | None = None) -> tuple[Path, dict]:
    folder = Path(project_dir) if project_dir else PROJECT_DIR
    manifest = folder / "project.json"
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: demo project manifest not found")
    try:
        return folder, json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{manifest}: not valid JSON ({exc})") from None


def run_demo(project_dir: str | os.PathLike | None = None, out_dir: str | os.PathLike = "demo_out", *,
             checkpoint: str | os.PathLike | None = None, render: bool = True, device: str | None = None,
             progress: bool = False) -> DemoSummary:
    """The main job on the demo project: read the cut, plan, render, conform.

    ``checkpoint`` is a Wan2.2-S2V-14B folder; without it the tiny random-weight models render
    (plumbing only). ``render=False`` stops after the plan. Re-running resumes: finished jobs are
    not rendered again.
    """
    import yaml

    from s2v_toolkit.media import ensure_output_dir, frames_to_timecode, probe
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    folder, project = load_project(project_dir)
    out = ensure_output_dir(out_dir)
    if out.resolve() == folder.resolve():
        raise ConfigError(f"{out}: choose an output folder other than the demo project itself")
    fps = Fraction(project["fps"])
    stages: list[str] = []

    loaded = read_timeline(folder / project["timeline"])
    desc = describe_timeline(loaded, search_dirs=[folder])
    stages.append(f"timeline: read {Path(project['timeline']).name} with the {desc.adapter} adapter, "
                  f"{len(desc.tracks)} tracks, {len(desc.clips)} clips")
    fcp = describe_timeline(read_timeline(folder / project["timeline_fcp7"]), search_dirs=[folder])
    stages.append(f"timeline: read {Path(project['timeline_fcp7']).name} with the {fcp.adapter} adapter, "
                  f"{len(fcp.clips)} clips (same cut: {len(fcp.clips) == len(desc.clips)})")

    cast = yaml.safe_load((folder / project["cast"]).read_text())
    characters = [c["name"] for c in cast["characters"]]

    media, missing = [], []
    paths = sorted({s["media"] for s in project["shots"] if s["media"]} | {ln["media"] for ln in project["lines"]})
    for rel in paths:
        p = folder / rel
        if not p.exists():
            missing.append(rel)
            continue
        info = probe(p)
        if info.video:
            v = info.video
            detail = (f"{v.codec} {v.width}x{v.height} {v.fps.numerator}/{v.fps.denominator} fps, "
                      f"{v.frame_count} frames, TC {v.start_timecode}")
            media.append(MediaSummary(str(p), "video", detail))
        else:
            a = info.audio[0]
            media.append(MediaSummary(str(p), "audio", f"{a.codec} {a.sample_rate} Hz {a.channels} ch, {a.duration:.2f} s"))
    stages.append(f"media: probed {len(media)} files ({len(missing)} missing)")

    from s2v_toolkit.media import timecode_to_frames

    tc0 = timecode_to_frames(project["record_start_timecode"], fps)  # record frames count from here
    lines = []
    for ln in project["lines"]:
        rec = tc0 + int(ln["record_frame"])
        lines.append({
            "character": next(c["name"] for c in cast["characters"] if c["id"] == ln["character"]),
            "text": ln["text"],
            "record": f"{frames_to_timecode(rec, fps)}-{frames_to_timecode(rec + int(ln['frames']), fps)}",
        })
    summary = DemoSummary(
        project_dir=str(folder), out_dir=str(out), timeline=desc.name, timeline_rate=project["fps"],
        timeline_start=project["record_start_timecode"], clips=len(desc.clips), characters=characters,
        lines=lines, media=media, missing_media=missing, stages=stages,
        model="checkpoint" if checkpoint else "tiny",
    )
    _plan_render_conform(summary, folder / project["timeline"], folder / project["cast"], out,
                         checkpoint=checkpoint, render=render, device=device, progress=progress)
    (out / "demo_summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _plan_render_conform(summary: DemoSummary, timeline: Path, cast: Path, out: Path, *, checkpoint, render: bool,
                         device: str | None, progress: bool) -> None:
    """Plan (diarize, assign, faces), render every job, conform: the stages of the jobs package."""
    from s2v_toolkit.jobs import (
        GeneratorSpec, JobStore, build_plan, conform_plan, load_plan, render_plan, store_path_for,
    )

    plan_path = out / "plan.json"
    if plan_path.exists():
        plan = load_plan(plan_path)  # resume: keep the plan (and any hand edits) from the last run
        summary.stages.append(f"plan: reused {plan_path} ({len(plan.jobs)} jobs)")
    else:
        plan = build_plan(timeline, cast, progress=progress)
        plan.save(plan_path)
        counts = {a: sum(j.action == a for j in plan.jobs) for a in ("redub", "new_shot", "skip")}
        summary.stages.append(
            f"plan: {len(plan.lines)} lines diarized and assigned, {len(plan.jobs)} shot jobs "
            f"({counts['redub']} redub, {counts['new_shot']} new_shot, {counts['skip']} skip) -> {plan_path}")
    summary.plan_path = str(plan_path)
    if render:
        spec = GeneratorSpec(checkpoint=str(checkpoint), device=device) if checkpoint else \
            GeneratorSpec(model="tiny", device=device)
        result = render_plan(plan, spec=spec, progress=progress)
        summary.stages.append(f"render: {', '.join(f'{n} {k}' for k, n in sorted(result.counts.items()) if n)} "
                              f"in {result.seconds:.1f} s ({'tiny random weights' if not checkpoint else checkpoint})")
        conformed = conform_plan(plan, out)
        summary.conformed = dict(conformed.outputs)
        summary.stages.append(f"conform: {len(conformed.placed)} render(s) on track "
                              f"{', '.join(conformed.track_names) or '(none)'}")
    records = {}
    if store_path_for(plan_path).exists():
        store = JobStore(store_path_for(plan_path))
        try:
            records = {r.id: r for r in store.records()}
        finally:
            store.close()
    for job in plan.jobs:
        rec = records.get(job.id)
        summary.jobs.append({
            "id": job.id, "label": job.label, "action": job.action,
            "state": rec.state if rec else "planned", "reason": job.reason,
            "error": rec.error if rec and rec.error else "",
            "output": rec.output_path if rec and rec.output_path else "",
        })
