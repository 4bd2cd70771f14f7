"""RTTM (Rich Transcription Time Marked) read/write: the NIST format diarization tools exchange.

One line per turn: ``SPEAKER <file id> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``. We write the
turn's confidence in the tenth field (the format's "confidence score" column, ``<NA>`` when unknown) and
read it back; a character name, when assigned, replaces the speaker label only if asked (RTTM has no
column for both).
"""

from __future__ import annotations

import os
from pathlib import Path

from s2v_toolkit.diarization.turns import SpeakerTurn, SpeakerTurns
from s2v_toolkit.errors import ConfigError, OutputError


def format_rttm(turns: SpeakerTurns, label: str = "speaker") -> str:
    """RTTM text for ``turns``; ``label="character"`` writes character names (unassigned turns: speaker)."""
    uri = "_".join(turns.uri.split()) or "audio"  # RTTM fields are separated by spaces
    lines = []
    for t in turns:
        name = (t.character or t.speaker) if label == "character" else t.speaker
        name = "_".join(str(name).split())
        lines.append(f"SPEAKER {uri} 1 {t.start:.3f} {t.duration:.3f} <NA> <NA> {name} {t.confidence:.4f} <NA>")
    return "".join(line + "\n" for line in lines)


def write_rttm(turns: SpeakerTurns | list[SpeakerTurns], path: str | os.PathLike, label: str = "speaker") -> Path:
    """Write an RTTM file (one recording, or several: one file id each) atomically: temporary name, then
    rename. Returns the path."""
    from s2v_toolkit.safety import check_output

    path = Path(path)
    check_output(path)  # never over a file the running command reads
    recordings = [turns] if isinstance(turns, SpeakerTurns) else list(turns)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text("".join(format_rttm(r, label) for r in recordings), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(path, f"cannot write RTTM: {exc.strerror or exc}") from exc
    return path


def parse_rttm(text: str, source: str = "<rttm>") -> dict[str, SpeakerTurns]:
    """Parse RTTM text into one :class:`SpeakerTurns` per file id (in order of appearance). Lines other than
    ``SPEAKER`` (e.g. ``SPKR-INFO``), blank lines and ``#``/``;;`` comments are skipped."""
    found: dict[str, list[SpeakerTurn]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";;")) or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ConfigError(f"{source}:{number}: RTTM SPEAKER line needs at least 8 fields, got {len(fields)}")
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise ConfigError(f"{source}:{number}: start/duration are not numbers: {fields[3]!r} {fields[4]!r}") \
                from None
        if duration < 0 or start < 0:
            raise ConfigError(f"{source}:{number}: negative start or duration")
        confidence = 1.0
        if len(fields) > 8 and fields[8] != "<NA>":
            try:
                confidence = float(fields[8])
            except ValueError:
                pass  # other tools put free text there; the turn stays valid
        found.setdefault(fields[1], []).append(SpeakerTurn(start, start + duration, fields[7], confidence))
    return {uri: SpeakerTurns(turns, uri=uri) for uri, turns in found.items()}


def read_rttm(path: str | os.PathLike) -> dict[str, SpeakerTurns]:
    """Read an RTTM file; see :func:`parse_rttm`."""
    from s2v_toolkit.errors import MediaError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MediaError(path, "RTTM file not found") from None
    except UnicodeDecodeError:
        raise MediaError(path, "not a text (RTTM) file") from None
    return parse_rttm(text, os.fspath(path))
