"""The result of diarization: who speaks when, as a JSON-friendly dataclass that converts to and from
``pyannote.core.Annotation`` (the diarization ecosystem's data model) and RTTM.

Times are seconds from the start of the analysed signal (for a timeline's dialogue track: record time
minus the track's start). Turns may overlap where two voices speak at once (the neural and pyannote backends
detect it); they never do once :meth:`exclusive` has run, or when ``diarize(..., overlap=False)`` asked for
one voice per moment, as the planner does (each moment of a dialogue track goes to one line).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

UNKNOWN = "unknown"  # character name for a speaker that matches no enrolled voice


def elementary_segments(*groups: Iterable, extra_bounds: Iterable[float] = ()) -> Iterator[tuple]:
    """Sweep over time: yields ``(a, b, active_0, active_1, ...)`` for every interval between consecutive
    boundaries of the given turn groups, where ``active_i`` is the list of group i's turns covering [a, b].
    O(n log n) in the number of turns (plus the size of the active sets), so hour-long files stay fast."""
    events: list[tuple[float, int, int, int]] = []  # (time, +1 start / -1 end, group, index)
    items = [list(g) for g in groups]
    for g, turns in enumerate(items):
        for i, t in enumerate(turns):
            if t.end > t.start:
                events.append((t.start, 1, g, i))
                events.append((t.end, -1, g, i))
    times = sorted({e[0] for e in events} | set(extra_bounds))
    events.sort(key=lambda e: e[0])
    active: list[dict[int, object]] = [{} for _ in items]
    k = 0
    for a, b in zip(times[:-1], times[1:]):
        while k < len(events) and events[k][0] <= a:
            time, kind, g, i = events[k]
            if kind == 1:
                active[g][i] = items[g][i]
            else:
                active[g].pop(i, None)
            k += 1
        yield (a, b, *[list(act.values()) for act in active])


@dataclass(frozen=True)
class SpeakerTurn:
    """One stretch of one speaker. ``confidence`` in [0, 1]: how sure the backend is that this stretch
    belongs to ``speaker`` (see docs/diarization.md for each backend's definition). ``character`` is set by
    assignment (a cast name or ``"unknown"``), ``None`` before."""

    start: float
    end: float
    speaker: str
    confidence: float = 1.0
    character: str | None = None
    character_score: float | None = None  # voice similarity to the assigned character (None: not compared)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "speaker": self.speaker,
                "confidence": round(float(self.confidence), 4), "character": self.character,
                "character_score": self.character_score}

    @classmethod
    def from_dict(cls, d: dict) -> SpeakerTurn:
        score = d.get("character_score")
        return cls(float(d["start"]), float(d["end"]), str(d["speaker"]), float(d.get("confidence", 1.0)),
                   d.get("character"), None if score is None else float(score))


@dataclass
class SpeakerTurns:
    """Speaker turns of one recording, sorted by start time.

    ``uri`` names the recording (RTTM's file id). ``duration`` is the analysed signal's length in seconds.
    ``backend`` and ``info`` say how the result was made (model names, thresholds, notes such as
    "assigned by order of first appearance")."""

    turns: list[SpeakerTurn] = field(default_factory=list)
    uri: str = "audio"
    duration: float | None = None
    backend: str = ""
    info: dict = field(default_factory=dict)
    # one unit vector per speaker from the backend's own embedding model, when it has one (not in JSON/RTTM);
    # assignment reuses them instead of embedding the audio again
    speaker_embeddings: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.turns = sorted(self.turns, key=lambda t: (t.start, t.end, t.speaker))

    def __iter__(self) -> Iterator[SpeakerTurn]:
        return iter(self.turns)

    def __len__(self) -> int:
        return len(self.turns)

    @property
    def speakers(self) -> list[str]:
        """Speaker labels in order of first appearance."""
        seen: dict[str, None] = {}
        for t in self.turns:
            seen.setdefault(t.speaker, None)
        return list(seen)

    def talk_time(self, by: str = "speaker") -> dict[str, float]:
        """Seconds of speech per speaker (``by="speaker"``) or per character (``by="character"``)."""
        totals: dict[str, float] = {}
        for t in self.turns:
            key = t.speaker if by == "speaker" else (t.character or UNKNOWN)
            totals[key] = totals.get(key, 0.0) + t.duration
        return totals

    def shifted(self, seconds: float) -> SpeakerTurns:
        """These turns ``seconds`` later (a signal that starts ``seconds`` into a timeline: its turns in the
        timeline's time); the recording's duration grows by as much."""
        if not seconds:
            return self
        from dataclasses import replace

        out = self.with_turns([replace(t, start=t.start + seconds, end=t.end + seconds) for t in self])
        if out.duration is not None:
            out.duration = out.duration + seconds
        return out

    def with_turns(self, turns: Iterable[SpeakerTurn], **info) -> SpeakerTurns:
        return SpeakerTurns(list(turns), self.uri, self.duration, self.backend, {**self.info, **info},
                            dict(self.speaker_embeddings))

    def overlapped_seconds(self) -> float:
        """Seconds where two or more turns run at once (0 for exclusive turns)."""
        return float(sum(b - a for a, b, active in elementary_segments(self.turns) if len(active) > 1))

    def _pieces(self, pick) -> list[SpeakerTurn]:
        """Sweep over the turns: on each stretch between boundaries, ``pick(active turns)`` names the turn
        that keeps it (or None); consecutive stretches kept by one original turn join again (pieces of one
        turn that another cut in two stay two turns: they are separate in time)."""
        pieces: list[SpeakerTurn] = []
        for a, b, active in elementary_segments(self.turns):
            kept = pick(active) if active else None
            if kept is None:
                continue
            if pieces and pieces[-1].end == a and replace(pieces[-1], start=kept.start, end=kept.end) == kept:
                pieces[-1] = replace(pieces[-1], end=b)
            else:
                pieces.append(replace(kept, start=a, end=b))
        return pieces

    def solo(self) -> SpeakerTurns:
        """The turns' stretches where one voice speaks alone: overlapped stretches left out (a voice print
        of mixed speech resembles neither voice)."""
        return self.with_turns(self._pieces(lambda active: active[0] if len(active) == 1 else None))

    def exclusive(self) -> SpeakerTurns:
        """Non-overlapping turns: where turns overlap, the overlap goes to the turn with the higher confidence
        (the longer one on ties); pieces left shorter than 10 ms are dropped."""
        pieces = self._pieces(lambda active: max(active, key=lambda t: (t.confidence, t.duration, t.speaker)))
        return self.with_turns([p for p in pieces if p.duration >= 0.01 - 1e-9])

    # --- JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"uri": self.uri, "duration": None if self.duration is None else round(self.duration, 3),
                "backend": self.backend, "speakers": self.speakers, "info": self.info,
                "talk_time": {k: round(v, 3) for k, v in self.talk_time().items()},
                "turns": [t.to_dict() for t in self.turns]}

    @classmethod
    def from_dict(cls, d: dict) -> SpeakerTurns:
        return cls([SpeakerTurn.from_dict(t) for t in d.get("turns", [])], d.get("uri", "audio"),
                   d.get("duration"), d.get("backend", ""), dict(d.get("info", {})))

    # --- pyannote.core -----------------------------------------------------------------------------
    def to_annotation(self):
        """A ``pyannote.core.Annotation`` (needs ``pyannote.core``), one track per turn, labelled by speaker."""
        from pyannote.core import Annotation, Segment

        ann = Annotation(uri=self.uri)
        for i, t in enumerate(self.turns):
            ann[Segment(t.start, t.end), i] = t.speaker
        return ann

    @classmethod
    def from_annotation(cls, annotation, duration: float | None = None, backend: str = "") -> SpeakerTurns:
        turns = [SpeakerTurn(float(seg.start), float(seg.end), str(label))
                 for seg, _, label in annotation.itertracks(yield_label=True)]
        return cls(turns, annotation.uri or "audio", duration, backend)
