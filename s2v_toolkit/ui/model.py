"""What the review panel reads and writes: one :class:`ReviewJob` per render, one :class:`Decision` per job.

The panel talks to storage only through :class:`ReviewStore` (a Protocol), so it works the same on the
SQLite job store (``jobs_adapter``) and on a plain review manifest (``file_store``, used by tests and for
hand-made reviews). Everything here is Qt-free.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

from s2v_toolkit.errors import S2VError

APPROVED = "approved"
REJECTED = "rejected"
NEEDS_CHANGES = "needs_changes"
DECISIONS = (APPROVED, REJECTED, NEEDS_CHANGES)
DECISION_LABELS = {APPROVED: "approved", REJECTED: "rejected", NEEDS_CHANGES: "needs changes", None: ""}

# job states, as the job store names them; "problem" is the panel's own: media missing or unreadable
JOB_STATES = ("queued", "running", "done", "failed", "skipped")
PROBLEM = "problem"


class ReviewError(S2VError):
    """A review plan/manifest cannot be opened or a decision cannot be stored."""


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class FrameNote:
    """A note pinned to one frame of the shot (0 = the shot's first frame)."""

    frame: int
    note: str

    def to_dict(self) -> dict:
        return {"frame": self.frame, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "FrameNote":
        return cls(int(d["frame"]), str(d.get("note", "")))


@dataclass
class Decision:
    """The reviewer's verdict on one render."""

    status: str                                   # one of DECISIONS
    note: str = ""
    frame_notes: list[FrameNote] = field(default_factory=list)
    reviewer: str | None = None
    decided_at: str = field(default_factory=_now_iso)

    def __post_init__(self):
        if self.status not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {self.status!r}")

    def to_dict(self) -> dict:
        return {"status": self.status, "note": self.note, "frame_notes": [n.to_dict() for n in self.frame_notes],
                "reviewer": self.reviewer, "decided_at": self.decided_at}

    @classmethod
    def from_dict(cls, d: dict) -> "Decision":
        return cls(status=d["status"], note=d.get("note") or "",
                   frame_notes=[FrameNote.from_dict(n) for n in d.get("frame_notes") or []],
                   reviewer=d.get("reviewer"), decided_at=d.get("decided_at") or _now_iso())


@dataclass
class ReviewJob:
    """One render to review, with everything the viewer needs to show it against its original.

    Frame ranges are file frame indices (0 = the file's first frame). ``frame_count`` frames are
    compared: original frames ``source_start + k`` against render frames ``render_start + k``.
    ``record_in``/``record_out`` are record timecodes (out exclusive) at ``fps``.
    """

    job_id: str
    shot: str
    action: str                                   # "redub" | "new_shot" | "skip"
    state: str                                    # job store state (see JOB_STATES)
    version: int = 1
    character: str | None = None
    line_text: str | None = None
    fps: Fraction = Fraction(24)
    record_in: str | None = None
    record_out: str | None = None
    frame_count: int = 0
    source_path: str | None = None
    source_start: int = 0
    render_path: str | None = None
    render_start: int = 0
    audio_path: str | None = None                 # the new line (default: the render's own audio)
    mask_path: str | None = None                  # mouth-mask video, white = regenerated region
    sidecar_path: str | None = None
    sidecar: dict = field(default_factory=dict)
    seed: int | None = None
    error: str | None = None                      # the store's error text (failed/skipped)
    decision: Decision | None = None
    problems: list[str] = field(default_factory=list)   # filled by the panel's media check

    @property
    def random_weights(self) -> bool:
        """The render came from random-weight models (a plumbing test), per its sidecar."""
        gen = self.sidecar.get("generator") if isinstance(self.sidecar.get("generator"), dict) else {}
        return bool(self.sidecar.get("random_weights") or gen.get("random_weights") or gen.get("plumbing_only"))

    @property
    def decision_status(self) -> str | None:
        return self.decision.status if self.decision else None

    @property
    def playback_audio(self) -> str | None:
        return self.audio_path or self.render_path

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        d["decision"] = self.decision.to_dict() if self.decision else None
        d.pop("problems")
        return d

    @classmethod
    def from_dict(cls, d: dict, base: Path | None = None) -> "ReviewJob":
        """From JSON; relative media paths are resolved against ``base`` (the manifest's folder)."""
        d = dict(d)
        known = set(cls.__dataclass_fields__) - {"problems"}
        d = {k: v for k, v in d.items() if k in known}
        d["fps"] = Fraction(str(d.get("fps", "24")))
        if d.get("decision"):
            d["decision"] = Decision.from_dict(d["decision"])
        for key in ("source_path", "render_path", "audio_path", "mask_path", "sidecar_path"):
            if d.get(key) and base is not None and not Path(d[key]).is_absolute():
                d[key] = os.path.normpath(os.path.join(base, d[key]))
        for key in ("version", "frame_count", "source_start", "render_start"):
            if d.get(key) is not None:
                d[key] = int(d[key])
        return cls(**d)


@runtime_checkable
class ReviewStore(Protocol):
    """The narrow interface between the review panel and wherever jobs and decisions live."""

    @property
    def title(self) -> str:
        """What the window title names (plan file, project)."""

    def list_jobs(self) -> list[ReviewJob]:
        """Every job of the plan, with its latest decision."""

    def set_decision(self, job_id: str, decision: Decision) -> None:
        """Store (replace) the decision for a job; persisted before returning."""

    def queue_rerender(self, job_id: str, seed: int | None = None) -> str:
        """Queue a new version of a job with another seed (None: the store picks one); returns its job id."""

    def conform_approved(self, out_dir: str | Path) -> dict:
        """Write the timeline with only approved renders (their decisions in the clip metadata);
        returns the timeline layer's ConformResult as a dict (``outputs``: adapter -> file)."""
