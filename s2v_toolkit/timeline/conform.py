"""Conform: put rendered clips back on a copy of the editor's timeline, on a new video track.

The editor's file is never written: outputs are new files beside it (or in a chosen folder),
written to a temporary name and renamed. Each render becomes a clip on the track "S2V vNNN",
frame-exactly over the record range it replaces, with ``metadata["s2v_toolkit"]`` naming its source clip,
character, line, job, model, seed and version; the original clip gets a marker pointing to it.
After writing, each output is read back and anything the format dropped is reported.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlparse

import opentimelineio as otio

from s2v_toolkit.media import atomic_output
from s2v_toolkit.timeline.additions import (
    MarkerAddition, RenderClipAddition, RenderTrackAddition, TimelineAdditions,
)
from s2v_toolkit.timeline.describe import TimelineDescription, describe_timeline
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats import get_format
from s2v_toolkit.timeline.io import detect_adapter_for_output, read_timeline, write_timeline
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.media_link import url_to_path
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE
from s2v_toolkit.timeline.shots import shot_map
from s2v_toolkit.timeline.timecode import RationalTime, Span, Time, TimeRange

TRACK_PREFIX = "S2V v"
NATIVE_SUFFIX = {"fcp_xml": ".xml", "fcpx_xml": ".fcpxml", "AAF": ".aaf", "cmx_3600": ".edl",
                 "otio_json": ".otio", "otioz": ".otioz"}
MARKER_COLOR = otio.schema.MarkerColor.CYAN
NATIVE_WRITERS = ("fcp_xml", "fcpx_xml", "AAF", "cmx_3600")  # editors' formats written back besides .otio


@dataclass
class RenderResult:
    """One rendered file to place on the timeline.

    ``clip_id`` (from ``describe``/``inspect``) places it over that clip's record range; ``record``
    places it over an explicit record range (from the timeline's first frame). ``media_start`` is the
    first frame of the render to use, in the render's own time (default 0 at the timeline rate).
    """

    media_path: str
    clip_id: str | None = None
    record: Span | None = None
    record_tc: list[str] | None = None   # [in, out) as record timecodes, e.g. ["01:00:10:00", "01:00:12:05"]
    media_start: Time | None = None
    media_duration: Time | None = None   # the render's full length, if known (available range)
    character: str | None = None
    line_text: str | None = None
    job_id: str | None = None
    model: str | None = None
    seed: int | None = None
    action: str | None = None            # "redub" | "new_shot"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["record"] = self.record.to_dict() if self.record else None
        d["media_start"] = self.media_start.to_dict() if self.media_start else None
        d["media_duration"] = self.media_duration.to_dict() if self.media_duration else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RenderResult":
        d = dict(d)
        d["record"] = Span.from_dict(d["record"]) if d.get("record") else None
        d["media_start"] = Time.from_dict(d["media_start"]) if d.get("media_start") else None
        d["media_duration"] = Time.from_dict(d["media_duration"]) if d.get("media_duration") else None
        known = set(cls.__dataclass_fields__)
        extra = {k: v for k, v in d.items() if k not in known}
        d = {k: v for k, v in d.items() if k in known}
        d.setdefault("extra", {}).update(extra)
        return cls(**d)


@dataclass
class PlacedRender:
    render_index: int
    clip_name: str
    track_name: str
    record: Span
    source_clip_ids: list[str]

    def to_dict(self) -> dict:
        return {"render_index": self.render_index, "clip_name": self.clip_name, "track_name": self.track_name,
                "record": self.record.to_dict(), "source_clip_ids": list(self.source_clip_ids)}


@dataclass
class ConformResult:
    version: int
    track_names: list[str]
    outputs: dict[str, str]                       # adapter name -> written file
    placed: list[PlacedRender] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)   # what an output format dropped
    problems: list[str] = field(default_factory=list)      # renders that could not be placed
    # what was added, for the formats' surgical writers (not part of the JSON result)
    additions: TimelineAdditions | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"version": self.version, "track_names": list(self.track_names), "outputs": dict(self.outputs),
                "placed": [p.to_dict() for p in self.placed], "not_carried": list(self.not_carried),
                "problems": list(self.problems)}


def next_version(timeline: otio.schema.Timeline) -> int:
    used = [int(m.group(1)) for t in timeline.tracks
            if (m := re.match(rf"^{re.escape(TRACK_PREFIX)}(\d+)", t.name or ""))]
    return max(used, default=0) + 1


def _media_url(path: str) -> str:
    p = Path(path)
    return p.resolve().as_uri() if p.is_absolute() or p.exists() else path


def _target_range(desc: TimelineDescription, r: RenderResult, i: int) -> TimeRange:
    if r.clip_id is not None:
        try:
            clip = desc.clip(r.clip_id)
        except KeyError:
            raise TimelineError(desc.path, f"render {i} ({r.media_path}): no clip '{r.clip_id}' on the timeline") from None
        crec = clip.record.to_otio()
        if r.record is None:
            return crec
        rec = r.record.to_otio()
        if rec.start_time < crec.start_time or rec.end_time_exclusive() > crec.end_time_exclusive():
            raise TimelineError(desc.path, f"render {i} ({r.media_path}): record range lies outside clip {r.clip_id}")
        return rec
    if r.record is None and r.record_tc:
        return _range_from_timecodes(desc, r, i)
    if r.record is None:
        raise TimelineError(desc.path, f"render {i} ({r.media_path}): needs a clip_id or a record range")
    return r.record.to_otio()


def _range_from_timecodes(desc: TimelineDescription, r: RenderResult, i: int) -> TimeRange:
    try:
        tc_in, tc_out = r.record_tc
        start = otio.opentime.from_timecode(tc_in, desc.rate)
        end = otio.opentime.from_timecode(tc_out, desc.rate)
    except (ValueError, TypeError) as exc:
        raise TimelineError(desc.path, f"render {i} ({r.media_path}): bad record_tc {r.record_tc!r} ({exc})") from None
    if end <= start:
        raise TimelineError(desc.path, f"render {i} ({r.media_path}): record_tc out is not after in")
    offset = desc.global_start.to_otio().rescaled_to(desc.rate)
    return TimeRange(start - offset, end - start)


def _replaced_parts(desc: TimelineDescription, r: RenderResult, rec: TimeRange) -> list[tuple[str, TimeRange]]:
    """(clip id, record range) of the original clip(s) a render replaces: the clip it names, else
    each clip seen on top over its record range (one entry per clip, spanning its segments)."""
    if r.clip_id is not None:
        return [(r.clip_id, rec)]
    parts: dict[str, TimeRange] = {}
    for seg in shot_map(desc, rec):
        tr = seg.record.to_otio()
        parts[seg.clip_id] = parts[seg.clip_id].extended_by(tr) if seg.clip_id in parts else tr
    return list(parts.items())


def _s2v_metadata(r: RenderResult, version: int, source_ids: list[str], desc: TimelineDescription,
                  rec: TimeRange) -> dict:
    md = {"version": version, "source_clip": source_ids[0] if source_ids else None,
          "source_clips": source_ids, "character": r.character, "line_text": r.line_text,
          "job_id": r.job_id, "model": r.model, "seed": r.seed, "action": r.action,
          "media_path": r.media_path,
          "record_in": desc.record_timecode(rec.start_time),
          "record_out": desc.record_timecode(rec.end_time_exclusive())}
    md.update(r.extra)
    return {k: v for k, v in md.items() if v is not None}


def add_render_tracks(loaded: LoadedTimeline, renders: list[RenderResult], version: int | None = None
                      ) -> tuple[otio.schema.Timeline, ConformResult]:
    """A copy of the timeline with the renders on new track(s); the loaded timeline is not changed."""
    timeline = loaded.timeline.deepcopy()
    desc = describe_timeline(LoadedTimeline(timeline, loaded.path, loaded.adapter), check_media=False)
    version = version or next_version(timeline)
    base_name = f"{TRACK_PREFIX}{version:03d}"
    rate = desc.rate
    result = ConformResult(version, [], {})
    result.additions = TimelineAdditions(version, rate, timeline.global_start_time)
    placements: list[tuple[TimeRange, int, RenderResult]] = []
    for i, r in enumerate(renders):
        try:
            rec = _target_range(desc, r, i)
        except TimelineError as exc:
            result.problems.append(exc.problem)
            continue
        rec = TimeRange(rec.start_time.rescaled_to(rate), rec.duration.rescaled_to(rate))
        if rec.duration.value <= 0:
            result.problems.append(f"render {i} ({r.media_path}): empty record range")
            continue
        placements.append((rec, i, r))
    placements.sort(key=lambda p: (p[0].start_time.value, p[1]))

    # Renders that overlap go to further tracks ("S2V v001 (2)") so that none hides another.
    lanes: list[list[tuple[TimeRange, int, RenderResult]]] = []
    for p in placements:
        for lane in lanes:
            if lane[-1][0].end_time_exclusive() <= p[0].start_time:
                lane.append(p)
                break
        else:
            lanes.append([p])
    for n, lane in enumerate(lanes):
        name = base_name if n == 0 else f"{base_name} ({n + 1})"
        track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Video)
        track.metadata[METADATA_NAMESPACE] = {"version": version, "kind": "renders"}
        track_add = RenderTrackAddition(name, "video")
        result.additions.tracks.append(track_add)
        cursor = RationalTime(0, rate)
        for rec, i, r in lane:
            if rec.start_time > cursor:
                track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rate), rec.start_time - cursor)))
            segments = _replaced_parts(desc, r, rec)
            source_ids = [cid for cid, _ in segments]
            first_name = desc.clip(source_ids[0]).name if source_ids else "shot"
            clip_name = f"{first_name} {name}"
            media_start = r.media_start.to_otio() if r.media_start else RationalTime(0, rate)
            avail = TimeRange(media_start, r.media_duration.to_otio() if r.media_duration else rec.duration)
            clip = otio.schema.Clip(
                name=clip_name,
                media_reference=otio.schema.ExternalReference(target_url=_media_url(r.media_path),
                                                              available_range=avail),
                source_range=TimeRange(media_start, rec.duration.rescaled_to(media_start.rate)),
            )
            clip.metadata[METADATA_NAMESPACE] = _s2v_metadata(r, version, source_ids, desc, rec)
            track.append(clip)
            track_add.clips.append(RenderClipAddition(
                clip_name, r.media_path, clip.media_reference.target_url, rec, media_start,
                r.media_duration.to_otio() if r.media_duration else None, source_ids,
                dict(clip.metadata[METADATA_NAMESPACE])))
            cursor = rec.end_time_exclusive()
            for cid, part in segments:
                original = desc.otio_items[cid]
                # the marker lives in the original clip's source time, over the replaced part
                src = desc.clip(cid).source.to_otio()
                offset = part.start_time - desc.clip(cid).record.start.to_otio()
                marker = otio.schema.Marker(
                    name=name,
                    marked_range=TimeRange(src.start_time + offset.rescaled_to(src.start_time.rate),
                                           part.duration.rescaled_to(src.start_time.rate)),
                    color=MARKER_COLOR,
                    comment=f"s2v render {clip_name}" + (f" job {r.job_id}" if r.job_id else ""),
                    metadata={METADATA_NAMESPACE: {"render_clip": clip_name, "track": name, "version": version,
                                                   "job_id": r.job_id, "media_path": r.media_path}},
                )
                original.markers.append(marker)
                locator = original.metadata.get(METADATA_NAMESPACE, {}).get("locator", {})
                result.additions.markers.append(MarkerAddition(
                    cid, _plain_dict(locator), name, marker.marked_range, part, "CYAN", marker.comment,
                    {"render_clip": clip_name, "track": name, "version": version, "job_id": r.job_id,
                     "media_path": r.media_path}))
            result.placed.append(PlacedRender(i, clip_name, name, Span.from_otio(rec), source_ids))
        timeline.tracks.append(track)
        result.track_names.append(name)
    return timeline, result


def conform(
    source: str | os.PathLike | LoadedTimeline,
    renders: list[RenderResult],
    out_dir: str | os.PathLike | None = None,
    *,
    version: int | None = None,
    native: bool = True,
    overwrite: bool = False,
    rate: float | None = None,
) -> ConformResult:
    """Write ``<stem>.s2v_vNNN.otio`` (always) and the same in the input's own format (when its
    adapter can write) with the renders on new track(s). Returns what was written and dropped."""
    loaded = source if isinstance(source, LoadedTimeline) else read_timeline(source, rate=rate)
    out = Path(out_dir) if out_dir is not None else loaded.path.parent
    if version is None and not overwrite:
        # the next version whose files do not exist yet: earlier conforms are never replaced
        version = next_version(loaded.timeline)
        while list(out.glob(f"{glob_escape(loaded.path.stem)}.s2v_v{version:03d}.*")):
            version += 1
    timeline, result = add_render_tracks(loaded, renders, version)
    _rebase_relative_media(timeline, loaded.path.parent, out)
    stem = f"{loaded.path.stem}.s2v_v{result.version:03d}"
    targets = [("otio_json", out / f"{stem}.otio")]
    if native and loaded.adapter in NATIVE_WRITERS:
        targets.append((loaded.adapter, out / f"{stem}{NATIVE_SUFFIX[loaded.adapter]}"))
    elif native and loaded.adapter in ("otioz", "otiod"):
        pass  # OTIO bundles copy all media into the bundle; the .otio is the same timeline without that
    elif native and loaded.adapter != "otio_json":
        result.not_carried.append(f"{loaded.adapter}: OTIO cannot write this format; only the .otio was written")
    for adapter, path in targets:
        to_write = timeline
        if adapter == "cmx_3600" and result.track_names:
            # An EDL holds one video track: the renders go to their own EDL, to import as a new track.
            to_write = _single_track_timeline(timeline, result.track_names[0])
            result.not_carried.append(
                "cmx_3600: an EDL holds one video track, so this EDL holds only the track "
                f"'{result.track_names[0]}' (import it over the cut); markers on the original clips, "
                "the s2v metadata and any further render tracks are only in the .otio")
            if len(result.track_names) > 1:
                result.not_carried.append("cmx_3600: overlapping renders on further tracks are not in the EDL")
        try:
            surgical = get_format(adapter).write_additions if adapter != "otio_json" else None
            if surgical is not None and result.additions is not None:
                _write_surgical(loaded, result, adapter, path, overwrite)
            else:
                write_timeline(to_write, path, adapter=adapter, overwrite=overwrite, protect=(loaded.path,))
        except TimelineError as exc:
            if adapter == "otio_json":
                raise
            result.not_carried.append(f"{adapter}: not written ({exc.problem}); use the .otio")
            continue
        result.outputs[adapter] = str(path)
        if adapter not in ("otio_json", "cmx_3600") and result.placed:
            result.not_carried.extend(_check_carried(path, adapter, result, rate, loaded.timeline))
    return result


def write_conform_to(loaded: LoadedTimeline, timeline: otio.schema.Timeline, result: ConformResult,
                     path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a conform (from :func:`add_render_tracks`) to one named file. In the input's own format
    (where it has a surgical writer) that is the original document with only the additions inserted,
    as :func:`conform` writes it, and read back to list what it lost; in another format, the whole
    timeline through that format's writer."""
    path = Path(path)
    adapter = detect_adapter_for_output(path)
    if adapter == loaded.adapter and adapter != "otio_json" and result.additions is not None \
            and get_format(adapter).write_additions is not None:
        _write_surgical(loaded, result, adapter, path, overwrite)
        if result.placed:
            result.not_carried.extend(_check_carried(path, adapter, result, None, loaded.timeline))
    else:
        _rebase_relative_media(timeline, loaded.path.parent, path.parent)
        write_timeline(timeline, path, overwrite=overwrite, protect=(loaded.path,))
    result.outputs = {"file": str(path)}
    return path


def _plain_dict(value) -> dict:
    """OTIO's AnyDictionary (nested) as plain Python containers."""
    if hasattr(value, "items"):
        return {str(k): _plain_dict(v) for k, v in value.items()}
    if type(value).__name__ == "AnyVector" or isinstance(value, (list, tuple)):
        return [_plain_dict(v) for v in value]
    return value


def _write_surgical(loaded: LoadedTimeline, result: ConformResult, adapter: str, path: Path,
                    overwrite: bool) -> None:
    """The original document with only the additions inserted (the format module does the insert)."""
    if path.exists() and (path.resolve() == loaded.path.resolve() or os.path.samefile(path, loaded.path)):
        raise TimelineError(path, "refusing to write over the editor's timeline; choose a new file")
    if path.exists() and not overwrite:
        raise TimelineError(path, "already exists (pass overwrite to replace it)")
    try:
        with atomic_output(path, overwrite=overwrite) as tmp:
            notes = get_format(adapter).write_additions(loaded, result.additions, Path(tmp))
    except TimelineError:
        raise
    except OSError as exc:
        raise TimelineError(path, f"cannot write: {exc.strerror or exc}") from exc
    result.not_carried.extend(f"{adapter}: {n}" for n in notes or [])


def _rebase_relative_media(timeline: otio.schema.Timeline, from_dir: Path, to_dir: Path) -> None:
    """Keep relative media paths pointing at the same files when the conform is written elsewhere.

    A relative ``target_url`` is relative to the timeline file's folder; written into another
    folder unchanged it would point at nothing. Rewritten relative to the new folder, the cut
    stays as portable as the editor made it (absolute paths and other URLs are left alone).
    """
    if from_dir.resolve() == to_dir.resolve():
        return
    for clip in timeline.find_clips():
        refs = clip.media_references().values() if hasattr(clip, "media_references") else [clip.media_reference]
        for ref in refs:
            url = getattr(ref, "target_url", None)
            if not url or urlparse(url).scheme or Path(url_to_path(url)).is_absolute():
                continue
            target = (from_dir / url_to_path(url)).resolve()
            ref.target_url = Path(os.path.relpath(target, to_dir.resolve())).as_posix()


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _single_track_timeline(timeline: otio.schema.Timeline, track_name: str) -> otio.schema.Timeline:
    single = otio.schema.Timeline(name=f"{timeline.name} {track_name}",
                                  global_start_time=timeline.global_start_time)
    if METADATA_NAMESPACE in timeline.metadata:   # the list's frame code mode and start timecode
        single.metadata[METADATA_NAMESPACE] = dict(timeline.metadata[METADATA_NAMESPACE])
    for t in timeline.tracks:
        if t.name == track_name:
            single.tracks.append(t.deepcopy())
    return single


def _check_carried(path: Path, adapter: str, result: ConformResult, rate: float | None,
                   original: otio.schema.Timeline) -> list[str]:
    """Read a written file back and list what of the conform it lost."""
    try:
        back = describe_timeline(read_timeline(path, rate=rate), check_media=False)
    except Exception as exc:  # noqa: BLE001 - a file we cannot read back is itself the finding
        return [f"{adapter}: written file cannot be read back ({exc})"]
    lost: list[str] = []
    start = original.global_start_time
    if start is not None and start.value and back.global_start.to_otio() != start:
        lost.append(f"{adapter}: the timeline's start timecode is not kept (record times read back from "
                    f"{back.record_timecode(RationalTime(0, back.rate))})")
    names = {t.name for t in back.tracks}
    for tn in result.track_names:
        if tn not in names:
            lost.append(f"{adapter}: track name '{tn}' not kept")
    # several renders may share a name (two takes of one clip): match each by name AND record range
    back_clips: dict = {}
    for c in back.clips:
        back_clips.setdefault(c.name, []).append(c)

    half = Fraction(1, 2) / Fraction(back.rate).limit_denominator(10 ** 6)   # a picture track holds whole frames

    def _same(p):
        return next((c for c in back_clips.get(p.clip_name, [])
                     if abs(c.record.start_seconds - p.record.start_seconds) < half
                     and abs(c.record.duration_seconds - p.record.duration_seconds) < 2 * half), None)

    no_meta = [p.clip_name for p in result.placed if _same(p) is not None and not _same(p).s2v]
    missing = [p.clip_name for p in result.placed if p.clip_name not in back_clips]
    moved = [p.clip_name for p in result.placed if p.clip_name in back_clips and _same(p) is None]
    if missing:
        lost.append(f"{adapter}: {len(missing)} render clip(s) not found by name when read back")
    if no_meta:
        lost.append(f"{adapter}: s2v metadata (job, character, version...) not kept on {len(no_meta)} render clip(s); "
                    "it is in the .otio")
    if moved:
        lost.append(f"{adapter}: {len(moved)} render clip(s) read back at a different record range")
    n_markers = sum(len(p.source_clip_ids) for p in result.placed)
    back_markers = sum(1 for c in back.clips for m in c.markers if m.name.startswith(TRACK_PREFIX))
    if back_markers < n_markers:
        lost.append(f"{adapter}: {n_markers - back_markers} of {n_markers} marker(s) on original clips not kept")
    return lost
