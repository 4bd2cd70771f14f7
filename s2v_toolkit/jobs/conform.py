"""conform_plan: every done job's render back onto a copy of the editor's timeline (timeline stage)."""

from __future__ import annotations

import os
from pathlib import Path

from s2v_toolkit.jobs.plan import RenderPlan, load_plan
from s2v_toolkit.jobs.store import JobStore, store_path_for

TIMELINE_SUFFIXES = (".otio", ".xml", ".fcpxml", ".aaf", ".edl", ".otioz")


def render_results(plan: RenderPlan, store: JobStore) -> list:
    """RenderResult per done job of the plan (placed over the job's record range)."""
    from s2v_toolkit.media import probe
    from s2v_toolkit.timeline import RenderResult, Span, Time

    results = []
    for rec in store.records():
        if rec.state != "done" or not rec.output_path:
            continue
        try:
            job = plan.job(rec.id)
        except KeyError:
            continue
        rate = plan.rate
        # Renders carry a start timecode (a re-dub its source's, a new shot its record TC): the clip's
        # source range must be in that time, as an NLE reads it from the file.
        video = probe(rec.output_path).video
        media_start = Time(float(video.start_frame), float(video.fps)) if video and video.start_timecode else None
        results.append(RenderResult(
            media_path=rec.output_path,
            record=Span(Time(float(job.record_in), rate), Time(float(job.frame_count), rate)),
            media_start=media_start,
            media_duration=Time(float(job.frame_count), rate),
            character=job.character, job_id=job.id, model=rec.model, seed=job.seed, action=job.action,
            extra={"render_version": rec.version, "label": job.label,
                   **({"sidecar": rec.sidecar_path} if rec.sidecar_path else {})},
        ))
    return results


def conform_plan(plan, out: str | os.PathLike | None = None, *, overwrite: bool = False, native: bool = True):
    """Write the timeline with the plan's done renders on a new "S2V vNNN" track.

    ``out``: a folder (default: beside the plan) for ``<timeline>.s2v_vNNN.otio`` plus the timeline's own
    format, each conform a new version; or a file name (``.otio``, ``.xml``, ``.aaf``, ``.edl``...) to write
    exactly that file. Returns the timeline stage's ConformResult.
    """
    from s2v_toolkit.timeline import ConformResult, add_render_tracks, conform
    from s2v_toolkit.timeline.conform import write_conform_to

    plan = plan if isinstance(plan, RenderPlan) else load_plan(plan)
    store = JobStore(store_path_for(plan.path))
    try:
        renders = render_results(plan, store)
    finally:
        store.close()
    loaded = plan.read_timeline()
    target = Path(out) if out is not None else plan.path.parent
    if target.suffix.lower() in TIMELINE_SUFFIXES and not target.is_dir():
        # the input's own format: only the additions inserted (surgical); another format: the whole timeline
        timeline, result = add_render_tracks(loaded, renders)
        write_conform_to(loaded, timeline, result, target, overwrite=overwrite)
        return result
    from s2v_toolkit.media import atomic_group

    # the .otio and the timeline's own format appear together or not at all (a kill between the two
    # renames is rolled back by the next conform in this folder)
    with atomic_group(target):
        result: ConformResult = conform(loaded, renders, target, native=native, overwrite=overwrite)
    return result
