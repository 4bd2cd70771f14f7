"""RenderPlan / ShotJob: what to render, shot by shot, as an editable JSON document.

A plan lists the dialogue lines (who speaks over which record frames) and, for every line, one
:class:`ShotJob` per shot under it with its action: ``redub`` (re-animate the mouth of the speaking
character's face in that shot), ``new_shot`` (generate the shot: gap, placeholder clip, or a clip marked
for generation) or ``skip`` (with the reason). Record ranges are whole frames at the timeline rate,
counted from the timeline's first frame, ``[record_in, record_out)``; the timecodes written beside them
are for reading only. Paths in the JSON are relative to the plan file. See docs/plan.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from s2v_toolkit.errors import ConfigError

PLAN_SCHEMA = "s2v.plan"
PLAN_SCHEMA_VERSION = 1
ACTIONS = ("redub", "new_shot", "skip")
RENDER_ACTIONS = ("redub", "new_shot")
UNKNOWN_CHARACTER = "unknown"


class PlanError(ConfigError):
    """A plan file is missing, unreadable or inconsistent (names the file and the job/field)."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = os.fspath(path) if path is not None else "<plan>"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def stable_job_id(clip_key: str, record_in: int, record_out: int) -> str:
    """Id of a job: the timeline clip (or ``gap@frame``) and the record range it covers. The same
    timeline and lines give the same ids, so a re-planned project keeps its job history."""
    digest = hashlib.sha1(f"{clip_key}|{record_in}|{record_out}".encode()).hexdigest()
    return f"j{digest[:11]}"


def seed_for(job_id: str) -> int:
    return int(hashlib.sha1(job_id.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


@dataclass
class DialogueLine:
    index: int                   # 1-based, in record order
    character: str               # cast id, or "unknown"
    record_in: int               # frames from the timeline's first frame (timeline rate)
    record_out: int              # exclusive
    track: str                   # dialogue track id ("A1")
    speaker: str = ""            # diarization label
    confidence: float | None = None
    character_score: float | None = None

    def to_dict(self) -> dict:
        return {"index": self.index, "character": self.character, "record_in": self.record_in,
                "record_out": self.record_out, "track": self.track, "speaker": self.speaker,
                "confidence": self.confidence, "character_score": self.character_score}

    @classmethod
    def from_dict(cls, d: dict) -> "DialogueLine":
        return cls(int(d["index"]), str(d["character"]), int(d["record_in"]), int(d["record_out"]),
                   str(d.get("track", "")), str(d.get("speaker", "")), d.get("confidence"), d.get("character_score"))


@dataclass
class ShotJob:
    """One render (or a skip): a character's line over one shot."""

    id: str
    label: str                    # human name: "SH010 L01 collins"
    action: str                   # redub | new_shot | skip
    reason: str                   # why this action (for skips: why nothing is rendered)
    line: int                     # DialogueLine.index
    character: str                # cast id
    record_in: int
    record_out: int
    track: str = ""               # dialogue track the line's audio comes from
    clip_id: str | None = None    # timeline clip under the line (None for a gap)
    clip_name: str | None = None
    media_path: str | None = None  # that clip's media (absolute in memory, relative to the plan in JSON)
    source_in: int | None = None   # the media's frame index (0 = first frame of the file) at record_in
    face: dict | None = None       # speaking face: {"track_id", "confidence", "reason"}
    prompt: str = ""
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return self.record_out - self.record_in

    @property
    def renders(self) -> bool:
        return self.action in RENDER_ACTIONS

    def spec(self) -> dict:
        """What the render depends on: a change here (an edit) makes a new render."""
        return {"action": self.action, "character": self.character, "record_in": self.record_in,
                "record_out": self.record_out, "track": self.track, "clip_id": self.clip_id,
                "media_path": self.media_path, "source_in": self.source_in,
                "face_track": (self.face or {}).get("track_id"), "prompt": self.prompt, "seed": self.seed}

    def spec_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.spec(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self, base: Path | None = None, timecodes: tuple[str, str] | None = None) -> dict:
        d = {"id": self.id, "label": self.label, "action": self.action, "reason": self.reason, "line": self.line,
             "character": self.character, "record_in": self.record_in, "record_out": self.record_out}
        if timecodes:
            d["record_tc"] = list(timecodes)  # for reading; record_in/out are what counts
        d.update({"track": self.track, "clip_id": self.clip_id, "clip_name": self.clip_name,
                  "media_path": _rel(self.media_path, base), "source_in": self.source_in, "face": self.face,
                  "prompt": self.prompt, "seed": self.seed, "notes": list(self.notes)})
        return d

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None) -> "ShotJob":
        return cls(
            id=str(d["id"]), label=str(d.get("label", d["id"])), action=str(d["action"]),
            reason=str(d.get("reason", "")), line=int(d.get("line", 0)), character=str(d.get("character", "")),
            record_in=int(d["record_in"]), record_out=int(d["record_out"]), track=str(d.get("track", "")),
            clip_id=d.get("clip_id"), clip_name=d.get("clip_name"), media_path=_abs(d.get("media_path"), base),
            source_in=None if d.get("source_in") is None else int(d["source_in"]), face=d.get("face"),
            prompt=str(d.get("prompt", "") or ""), seed=int(d.get("seed", 0)), notes=list(d.get("notes", [])),
        )


def _rel(path: str | None, base: Path | None) -> str | None:
    if path is None or base is None:
        return path
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return path


def _abs(path: str | None, base: Path | None) -> str | None:
    if path is None or base is None or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


@dataclass
class RenderPlan:
    timeline: str                 # the editor's timeline file (absolute in memory)
    cast: str | None              # the cast file
    rate: float                   # timeline rate as OTIO holds it (e.g. 23.976023976023978)
    start_frame: int              # record timecode of the first frame, as a frame count at ``rate``
    drop_frame: bool
    duration_frames: int
    lines: list[DialogueLine] = field(default_factory=list)
    jobs: list[ShotJob] = field(default_factory=list)
    dialogue_tracks: list[str] = field(default_factory=list)
    created: str = ""
    allow_missing_media: bool = False    # silence accepted where dialogue media is missing (plan --allow-missing-media)
    notes: list[str] = field(default_factory=list)
    path: Path | None = None      # where it was loaded from / saved to
    search_dirs: list[str] = field(default_factory=list)  # media folders (plan --search), absolute in memory

    def read_timeline(self):
        """The editor's timeline, read as when planned (an EDL at the plan's rate)."""
        from s2v_toolkit.timeline import read_timeline

        return read_timeline(self.timeline, rate=self.rate)

    def describe_timeline(self, **kwargs):
        """The timeline's description with its media found as when planned (the plan's search folders)."""
        from s2v_toolkit.timeline import describe_timeline

        return describe_timeline(self.read_timeline(), search_dirs=tuple(self.search_dirs), **kwargs)

    @property
    def fps(self) -> Fraction:
        from s2v_toolkit.timeline import rate_fraction

        return rate_fraction(self.rate)

    def job(self, job_id: str) -> ShotJob:
        for j in self.jobs:
            if j.id == job_id:
                return j
        raise KeyError(job_id)

    def record_timecode(self, frame: int) -> str:
        from s2v_toolkit.timeline import timecode
        from s2v_toolkit.timeline.timecode import RationalTime

        return timecode(RationalTime(self.start_frame + frame, self.rate), self.rate, self.drop_frame)

    def timecodes(self, job: ShotJob | DialogueLine) -> tuple[str, str]:
        return self.record_timecode(job.record_in), self.record_timecode(job.record_out)

    def counts(self) -> dict[str, int]:
        out = {a: 0 for a in ACTIONS}
        for j in self.jobs:
            out[j.action] = out.get(j.action, 0) + 1
        return out

    # ------------------------------------------------------------------ JSON
    def to_dict(self, base: Path | None = None) -> dict:
        from s2v_toolkit import __version__
        f = self.fps
        rate_exact = str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"
        return {
            "schema": PLAN_SCHEMA, "schema_version": PLAN_SCHEMA_VERSION, "toolkit_version": __version__,
            "created": self.created, "timeline": _rel(self.timeline, base), "cast": _rel(self.cast, base),
            "rate": self.rate, "rate_exact": rate_exact, "start_frame": self.start_frame,
            "start_timecode": self.record_timecode(0), "drop_frame": self.drop_frame,
            "duration_frames": self.duration_frames, "dialogue_tracks": list(self.dialogue_tracks),
            "allow_missing_media": self.allow_missing_media,
            "search_dirs": [_rel(d, base) for d in self.search_dirs],
            "counts": self.counts(), "notes": list(self.notes),
            "lines": [dict(ln.to_dict(), record_tc=list(self.timecodes(ln))) for ln in self.lines],
            "jobs": [j.to_dict(base, self.timecodes(j)) for j in self.jobs],
        }

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None, path: Path | None = None) -> "RenderPlan":
        where = path or "<plan>"
        if not isinstance(d, dict) or d.get("schema") != PLAN_SCHEMA:
            raise PlanError(where, f"not a render plan (expected \"schema\": \"{PLAN_SCHEMA}\")")
        version = d.get("schema_version")
        if version != PLAN_SCHEMA_VERSION:
            raise PlanError(where, f"plan schema_version {version!r} is not supported (this toolkit reads "
                                   f"{PLAN_SCHEMA_VERSION}); re-run `s2vt plan`")
        try:
            plan = cls(
                timeline=_abs(str(d["timeline"]), base), cast=_abs(d.get("cast"), base), rate=float(d["rate"]),
                start_frame=int(d.get("start_frame", 0)), drop_frame=bool(d.get("drop_frame", False)),
                duration_frames=int(d["duration_frames"]),
                lines=[DialogueLine.from_dict(x) for x in d.get("lines", [])],
                dialogue_tracks=list(d.get("dialogue_tracks", [])), created=str(d.get("created", "")),
                allow_missing_media=bool(d.get("allow_missing_media", False)),
                notes=list(d.get("notes", [])), path=path,
                search_dirs=[_abs(str(x), base) for x in d.get("search_dirs", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(where, f"plan header is incomplete or has a bad value ({exc})") from None
        for i, jd in enumerate(d.get("jobs", [])):
            try:
                plan.jobs.append(ShotJob.from_dict(jd, base))
            except (KeyError, TypeError, ValueError) as exc:
                ident = jd.get("id", f"#{i}") if isinstance(jd, dict) else f"#{i}"
                raise PlanError(where, f"job {ident}: missing or bad field ({exc})") from None
        return plan

    def save(self, path: str | os.PathLike | None = None, overwrite: bool = True) -> Path:
        from s2v_toolkit.media import atomic_output

        dest = Path(path) if path is not None else self.path
        if dest is None:
            raise PlanError(None, "no file name to save the plan to")
        dest = dest.absolute()
        text = json.dumps(self.to_dict(dest.parent), indent=2) + "\n"
        with atomic_output(dest, overwrite=overwrite) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        self.path = dest
        return dest


def load_plan(path: str | os.PathLike) -> RenderPlan:
    """Read a plan file (edits by hand are fine: see :func:`validate_plan` for what is checked)."""
    path = Path(path).absolute()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(path, "plan file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(path, f"cannot read the plan ({exc})") from None
    except ValueError as exc:
        raise PlanError(path, f"not valid JSON: {exc}") from None
    return RenderPlan.from_dict(data, path.parent, path)


def validate_plan(plan: RenderPlan, cast_ids: list[str] | None = None) -> list[tuple[str, str]]:
    """Problems of a (hand-edited) plan, one per job: [(job id, problem)]. A plan-wide problem (two
    jobs with one id) raises :class:`PlanError` instead, since the job store could not tell them apart.

    A job with a problem is failed by the runner with that text; the other jobs go on.
    """
    seen: set[str] = set()
    for j in plan.jobs:
        if j.id in seen:
            raise PlanError(plan.path, f"job id {j.id} is used twice; every job needs its own id")
        seen.add(j.id)
    problems: list[tuple[str, str]] = []
    for j in plan.jobs:
        msg = job_problem(plan, j, cast_ids)
        if msg:
            problems.append((j.id, msg))
    return problems


def job_problem(plan: RenderPlan, j: ShotJob, cast_ids: list[str] | None = None) -> str | None:
    """Why ``j`` cannot be rendered as written (None when it can)."""
    where = f"job {j.id!r} ({j.label})"
    from s2v_toolkit.safety import safe_component

    if not isinstance(j.id, str) or safe_component(j.id, "") != j.id:
        # ids become file names: a hand-edited 'jx/../../x' must never lead a render out of its folder
        return f"{where}: job id may hold only letters, digits, '_', '-' and '.' (not at the start)"
    if j.action not in ACTIONS:
        return f"{where}: unknown action {j.action!r} (use one of {', '.join(ACTIONS)})"
    if j.action == "skip":
        return None
    if j.record_out <= j.record_in:
        return f"{where}: empty record range {j.record_in}-{j.record_out}"
    if j.record_in < 0 or j.record_out > plan.duration_frames:
        return (f"{where}: record range {j.record_in}-{j.record_out} lies outside the timeline "
                f"(frames 0-{plan.duration_frames})")
    if cast_ids is not None and j.character not in cast_ids:
        return f"{where}: unknown character {j.character!r} (cast: {', '.join(cast_ids) or 'none'})"
    if j.action == "redub":
        if not j.media_path:
            return f"{where}: redub needs the shot's media_path"
        if not Path(j.media_path).is_file():
            return f"{where}: media not found: {j.media_path}"
        if j.source_in is None or j.source_in < 0:
            return f"{where}: redub needs source_in (the media frame at record_in)"
    return None


def new_plan_timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
