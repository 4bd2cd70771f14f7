"""A small service for testing the HTTP layer without models: real files, no diarization or generator.

plan:    reads the timeline with s2v_toolkit.timeline and makes one job per clip of the first video
         track (clips named in options["skip"] become skip jobs); writes plan.json (its own format).
render:  writes a real tiny H.264 file per job with s2v_toolkit.media (the job's frame count), after
         ``options["seconds_per_job"]`` of (cancellable) waiting; job states go to states.json.
conform: s2v_toolkit.timeline.conform with the done renders over their record ranges.
review:  a Python one-liner that writes review_opened.txt beside the plan.
"""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.serve.service import Service, TaskContext


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class FileService(Service):
    name = "file-test-service"

    def __init__(self, skip=(), fail=()):
        self.skip = list(skip)
        self.fail = list(fail)  # clips whose render fails (as a generator error would)

    def plan(self, project_dir, timeline, cast, options, ctx: TaskContext):
        from s2v_toolkit.timeline import describe_timeline, read_timeline, timecode

        desc = describe_timeline(read_timeline(timeline))
        rate = desc.rate
        skip = set(options.get("skip", [])) | set(self.skip)
        video = [c for c in desc.clips if c.kind == "video"]
        first_track = video[0].track if video else None
        jobs = []
        for i, clip in enumerate(c for c in video if c.track == first_track):
            rin = int(round(clip.record.start.to_otio().rescaled_to(rate).value))
            n = int(round(clip.record.duration.to_otio().rescaled_to(rate).value))
            jobs.append({"id": f"j{i:02d}", "label": clip.name, "action": "skip" if clip.name in skip else "redub",
                         "reason": "asked to skip" if clip.name in skip else "test render", "character": "x",
                         "line": i + 1, "record_in": rin, "record_out": rin + n, "clip_id": clip.id})
        start = int(round(desc.global_start.to_otio().rescaled_to(rate).value))
        duration = int(round(desc.duration.to_otio().rescaled_to(rate).value))
        plan = {"timeline": str(timeline), "cast": str(cast) if cast else None, "rate": rate,
                "start_frame": start, "drop_frame": desc.drop_frame, "duration_frames": duration, "jobs": jobs,
                "start_timecode": timecode(desc.global_start.to_otio(), rate, desc.drop_frame)}
        path = Path(project_dir) / "plan.json"
        _write_json(path, plan)
        ctx.log(f"planned {len(jobs)} job(s)")
        return path

    def _states(self, plan_path: Path) -> dict:
        p = plan_path.with_name("states.json")
        return json.loads(p.read_text()) if p.exists() else {}

    def jobs(self, plan_path):
        plan = json.loads(Path(plan_path).read_text())
        states = self._states(Path(plan_path))
        out = []
        for j in plan["jobs"]:
            st = states.get(j["id"], {})
            state = st.get("state") or ("skipped" if j["action"] == "skip" else "pending")
            out.append({"id": j["id"], "label": j["label"], "action": j["action"], "state": state,
                        "reason": j["reason"], "character": j["character"], "line": j["line"],
                        "record_in": j["record_in"], "record_out": j["record_out"],
                        "output": st.get("output"), "output_frames": st.get("frames"), "error": st.get("error")})
        facts = {k: plan[k] for k in ("rate", "start_frame", "drop_frame", "duration_frames", "start_timecode")}
        return {"timeline": facts, "jobs": out}

    def render_options(self, options):
        extra = set(options) - {"seconds_per_job", "model"}
        if extra:
            raise ConfigError(f"render option(s) {', '.join(sorted(extra))} not known")
        return dict(options)

    def render(self, plan_path, options, ctx: TaskContext):
        from s2v_toolkit.media import write_video

        plan_path = Path(plan_path)
        plan = json.loads(plan_path.read_text())
        states = self._states(plan_path)
        todo = [j for j in plan["jobs"] if j["action"] != "skip"]
        out_dir = plan_path.with_name("renders")
        out_dir.mkdir(exist_ok=True)
        fps = Fraction(plan["rate"]).limit_denominator(1001)
        for k, job in enumerate(todo):
            ctx.progress(k, len(todo), job["label"])
            if states.get(job["id"], {}).get("state") == "done":
                continue  # resume: finished jobs are not redone
            states[job["id"]] = {"state": "running"}
            _write_json(plan_path.with_name("states.json"), states)
            if ctx.wait(float(options.get("seconds_per_job", 0))):
                states[job["id"]] = {"state": "pending"}
                _write_json(plan_path.with_name("states.json"), states)
                ctx.check_cancelled()
            if job["label"] in self.fail:
                states[job["id"]] = {"state": "failed", "error": f"RuntimeError: test failure of {job['label']}"}
                _write_json(plan_path.with_name("states.json"), states)
                ctx.log(f"failed {job['label']}")
                continue
            n = job["record_out"] - job["record_in"]
            frames = np.zeros((n, 16, 16, 3), np.uint8)
            frames[:, :, :, 1] = (np.arange(n) % 256)[:, None, None]
            out = write_video(out_dir / f"{job['label']}_{job['id']}.mp4", frames, fps, preset="h264", overwrite=True)
            states[job["id"]] = {"state": "done", "output": str(out), "frames": n}
            _write_json(plan_path.with_name("states.json"), states)
            ctx.log(f"rendered {job['label']} -> {out.name}")
        ctx.progress(len(todo), len(todo), "all rendered")
        return {"rendered": sum(1 for s in states.values() if s.get("state") == "done")}

    def conform(self, plan_path, out_dir, options, ctx):
        from s2v_toolkit.timeline import RenderResult, Span, Time, conform

        plan = json.loads(Path(plan_path).read_text())
        rate = plan["rate"]
        renders = []
        for j in self.jobs(plan_path)["jobs"]:
            if j["state"] == "done":
                n = j["record_out"] - j["record_in"]
                renders.append(RenderResult(media_path=j["output"], job_id=j["id"],
                                            record=Span(Time(float(j["record_in"]), rate), Time(float(n), rate)),
                                            media_duration=Time(float(n), rate)))
        return conform(plan["timeline"], renders, out_dir).to_dict()

    def review_command(self, plan_path):
        marker = Path(plan_path).with_name("review_opened.txt")
        return [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('opened')"]


def make_service() -> FileService:
    """For ``s2vt serve --service fake_service:make_service``; $S2VT_TEST_SKIP / $S2VT_TEST_FAIL list clips
    to skip / to fail."""
    def names(var):
        return [c for c in os.environ.get(var, "").split(",") if c]

    return FileService(skip=names("S2VT_TEST_SKIP"), fail=names("S2VT_TEST_FAIL"))
