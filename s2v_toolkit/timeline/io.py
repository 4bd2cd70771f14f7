"""Reading and writing timeline files through OTIO adapters, chosen by extension and content."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.errors import S2VError
from s2v_toolkit.media import atomic_output
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.timecode import RationalTime, rate_fraction

# extension -> OTIO adapter name. ".xml" is decided by its root element (FCP 7 xmeml or FCPXML).
ADAPTER_BY_SUFFIX = {
    ".otio": "otio_json",
    ".otioz": "otioz",
    ".otiod": "otiod",
    ".xml": None,
    ".fcpxml": "fcpx_xml",
    ".aaf": "AAF",
    ".edl": "cmx_3600",
}
WRITABLE_ADAPTERS = ("otio_json", "otioz", "fcp_xml", "fcpx_xml", "AAF", "cmx_3600")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # AAF files are Microsoft structured storage


@dataclass
class LoadedTimeline:
    """A timeline read from a file, with what was needed to read it and what looked wrong."""

    timeline: otio.schema.Timeline
    path: Path
    adapter: str
    notes: list[str] = field(default_factory=list)


def detect_adapter(path: str | os.PathLike) -> str:
    """OTIO adapter name for ``path`` (extension first, then the file's first bytes)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if p.is_dir():
        if suffix == ".otiod":
            return "otiod"
        if suffix == ".fcpxmld" and (p / "Info.fcpxml").is_file():
            return "fcpx_xml"
        raise TimelineError(p, "is a folder, not a timeline file")
    if not p.exists():
        raise TimelineError(p, "timeline file not found")
    head = _head(p)
    if suffix == ".xml" or (suffix not in ADAPTER_BY_SUFFIX and head.lstrip().startswith(b"<")):
        text = head.decode("utf-8", "replace")
        if re.search(r"<xmeml[\s>]", text):
            return "fcp_xml"
        if re.search(r"<fcpxml[\s>]", text):
            return "fcpx_xml"
        raise TimelineError(p, "XML is neither FCP 7 XML (<xmeml>) nor FCPXML (<fcpxml>)")
    if suffix in ADAPTER_BY_SUFFIX:
        return ADAPTER_BY_SUFFIX[suffix]
    if head.startswith(_OLE_MAGIC):
        return "AAF"
    if head.lstrip().startswith(b"{") and b"OTIO_SCHEMA" in head:
        return "otio_json"
    if re.search(rb"^\s*TITLE:", head, re.M) or re.search(rb"^\s*\d{3,}\s+\S+\s+[AVB]", head, re.M):
        return "cmx_3600"
    known = ", ".join(sorted(ADAPTER_BY_SUFFIX))
    raise TimelineError(p, f"unknown timeline format (extension '{suffix or 'none'}'; known: {known})")


def _head(p: Path, n: int = 4096) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise TimelineError(p, f"cannot open: {exc.strerror or exc}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def read_timeline(path: str | os.PathLike, *, rate: float | None = None) -> LoadedTimeline:
    """Read any timeline file OTIO has an adapter for.

    ``rate`` is needed for EDLs only (an EDL does not say its rate; 23.976 vs 24 and 29.97 vs 30
    cannot be told apart). Without it, the rate is guessed from the timecodes and noted.
    """
    p = Path(path)
    adapter = detect_adapter(p)
    notes: list[str] = []
    kwargs: dict = {}
    target = p
    if adapter == "fcpx_xml" and p.is_dir():
        target = p / "Info.fcpxml"
    if adapter == "cmx_3600":
        if rate is None:
            rate, note = guess_edl_rate(p)
            notes.append(note)
        kwargs["rate"] = float(rate)
    try:
        result = otio.adapters.read_from_file(str(target), adapter_name=adapter, **kwargs)
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise anything from ValueError to XML ParseError
        raise TimelineError(p, f"cannot read as {adapter}: {_first_line(exc)}") from exc
    timeline = _pick_timeline(p, result, notes)
    if not len(timeline.tracks) and adapter == "AAF":
        raise TimelineError(p, "AAF has no composition (no tracks to read)")
    return LoadedTimeline(timeline=timeline, path=p, adapter=adapter, notes=notes)


def _pick_timeline(p: Path, result, notes: list[str]) -> otio.schema.Timeline:
    if isinstance(result, otio.schema.Timeline):
        return result
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline, shallow_search=False))
        if not timelines:
            raise TimelineError(p, "file holds no timeline (sequence/composition)")
        if len(timelines) > 1:
            notes.append(f"file holds {len(timelines)} timelines; using the first, '{timelines[0].name}'")
        return timelines[0]
    raise TimelineError(p, f"file holds a {type(result).__name__}, not a timeline")


def guess_edl_rate(p: Path) -> tuple[float, str]:
    """Best guess of an EDL's frame rate from its FCM line and the largest frame number used."""
    text = p.read_text(errors="replace")
    drop = bool(re.search(r"^\s*FCM:\s*DROP", text, re.M | re.I))
    frames = [int(m) for m in re.findall(r"\d\d[:;]\d\d[:;]\d\d[:;.](\d\d)", text)]
    top = max(frames, default=0)
    if drop or top >= 25:
        rate = 30000 / 1001
    elif top == 24:
        rate = 25.0
    else:
        rate = 24.0
    return rate, f"EDL rate not given; assumed {float(rate_fraction(rate)):.3f} fps (pass the rate to be exact)"


# ---------------------------------------------------------------- writing


def write_timeline(
    timeline: otio.schema.Timeline,
    path: str | os.PathLike,
    *,
    adapter: str | None = None,
    overwrite: bool = False,
    protect: tuple[str | os.PathLike, ...] = (),
    **adapter_kwargs,
) -> Path:
    """Write ``timeline`` to a new file (temp + rename). Never writes over a ``protect`` path."""
    dest = Path(path)
    adapter = adapter or detect_adapter_for_output(dest)
    for src in protect:
        if Path(src).exists() and dest.exists() and os.path.samefile(src, dest) or \
                Path(src).resolve() == dest.resolve():
            raise TimelineError(dest, "refusing to write over the editor's timeline; choose a new file")
    if adapter == "AAF":
        # clips that did not come from an AAF (e.g. renders) have no mob id; let the writer make one
        adapter_kwargs.setdefault("use_empty_mob_ids", True)
    if dest.exists() and not overwrite:
        raise TimelineError(dest, "already exists (pass overwrite to replace it)")
    try:
        with atomic_output(dest, overwrite=overwrite) as tmp:
            otio.adapters.write_to_file(timeline, str(tmp), adapter_name=adapter, **adapter_kwargs)
    except S2VError:
        raise
    except OSError as exc:
        raise TimelineError(dest, f"cannot write: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise TimelineError(dest, f"{adapter} cannot write this timeline: {_first_line(exc)}") from exc
    return dest


def detect_adapter_for_output(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return "fcp_xml"
    name = ADAPTER_BY_SUFFIX.get(suffix)
    if not name:
        raise TimelineError(path, f"cannot tell which format to write from extension '{suffix}'")
    return name


def zero(rate: float) -> RationalTime:
    return RationalTime(0, rate)
