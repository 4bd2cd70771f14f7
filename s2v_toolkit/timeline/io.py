"""Reading and writing timeline files through OTIO adapters, chosen by extension and content."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.errors import S2VError
from s2v_toolkit.media import atomic_output
from s2v_toolkit.timeline import fcp7_flags, fcpx_ntsc
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE
from s2v_toolkit.timeline.timecode import RationalTime, TimeRange, rate_fraction

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
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # AAF files are Microsoft structured storage


@dataclass
class LoadedTimeline:
    """A timeline read from a file, with what was needed to read it and what looked wrong."""

    timeline: otio.schema.Timeline
    path: Path
    adapter: str
    notes: list[str] = field(default_factory=list)
    # audio channel (0-based) each clip plays, by the adapter's clip id, where the format says it
    source_channels: dict[str, int] = field(default_factory=dict)


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
    from s2v_toolkit.safety import note_input

    note_input(p)
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
    fcpx_text, ntsc = None, None
    if adapter == "fcpx_xml":
        fcpx_text = target.read_text(errors="replace")
        ntsc = fcpx_ntsc.ntsc_scale(p, fcpx_text)
        if ntsc:
            fcpx_text = fcpx_ntsc.scale_times(fcpx_text, ntsc)
    try:
        if fcpx_text is not None:
            result = otio.adapters.read_from_string(fcpx_text, adapter_name=adapter)
        else:
            result = otio.adapters.read_from_file(str(target), adapter_name=adapter, **kwargs)
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise anything from ValueError to XML ParseError
        raise TimelineError(p, f"cannot read as {adapter}: {_first_line(exc)}") from exc
    timeline = _pick_timeline(p, result, notes)
    if adapter == "fcpx_xml":
        _fix_fcpxml_start(fcpx_text, timeline, notes)
        if ntsc:
            fcpx_ntsc.relabel_rates(timeline, to_ntsc=True)
    channels: dict[str, int] = {}
    if adapter == "fcp_xml":
        channels = fcp7_flags.apply_on_read(target.read_text(errors="replace"), timeline)
    if adapter == "cmx_3600":
        _normalize_edl_start(timeline)
    if adapter == "otioz":
        notes.append("media of an .otioz is inside the bundle: unzip it and pass that folder as a search folder")
    if not len(timeline.tracks) and adapter == "AAF":
        raise TimelineError(p, "AAF has no composition (no tracks to read)")
    if adapter == "AAF":
        drop = aaf_drop_frame(p)
        if drop is not None:
            # the AAF reader does not keep the timecode's drop flag: keep it where describe looks
            timeline.metadata.setdefault(METADATA_NAMESPACE, {})
            timeline.metadata[METADATA_NAMESPACE]["drop_frame"] = drop
    return LoadedTimeline(timeline=timeline, path=p, adapter=adapter, notes=notes, source_channels=channels)


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


_EDL_EVENT = re.compile(
    r"^(\s*\d+\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+\S+\s+\S+\s+)(\d\d:\d\d:\d\d[:;]\d\d)(\s+)"
    r"(\d\d:\d\d:\d\d[:;]\d\d)(.*)$")


def _normalize_edl_start(timeline: otio.schema.Timeline) -> None:
    """The EDL reader keeps event 1's record timecode as a negative track trim; make it the
    timeline's start timecode (what OTIO means by it), so record times count from the cut's start."""
    offsets = {}
    for t in timeline.tracks:
        sr = t.source_range
        if sr is not None and sr.start_time.value < 0:
            offsets[id(t)] = -sr.start_time
    if not offsets or len({o.value for o in offsets.values()}) != 1 or timeline.global_start_time is not None:
        return
    for t in timeline.tracks:
        if id(t) in offsets:
            t.source_range = None
    timeline.global_start_time = next(iter(offsets.values()))


def shift_edl_record(text: str, offset: RationalTime, rate: float) -> str:
    """Add ``offset`` to the record in/out timecodes of every event (the EDL writer starts at 0)."""
    out = []
    for line in text.splitlines():
        m = _EDL_EVENT.match(line)
        if m:
            drop = ";" in m.group(2)
            rec_in = otio.opentime.from_timecode(m.group(2), rate) + offset.rescaled_to(rate)
            rec_out = otio.opentime.from_timecode(m.group(4), rate) + offset.rescaled_to(rate)
            line = (m.group(1) + otio.opentime.to_timecode(rec_in, rate, drop) + m.group(3)
                    + otio.opentime.to_timecode(rec_out, rate, drop) + m.group(5))
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _fcpx_seconds(text: str) -> Fraction:
    text = text.strip().rstrip("s")
    return Fraction(text) if text else Fraction(0)


def _is_ntsc(timeline: otio.schema.Timeline) -> bool:
    if timeline.global_start_time is not None:
        return rate_fraction(timeline.global_start_time.rate).denominator == 1001
    for clip in timeline.find_clips():
        if clip.source_range is not None:
            return rate_fraction(clip.source_range.duration.rate).denominator == 1001
    return False


def _fix_fcpxml_start(text: str, timeline: otio.schema.Timeline, notes: list[str]) -> None:
    """The FCPXML adapter ignores the sequence's tcStart and turns it into a leading gap."""
    m = re.search(r'<sequence\b[^>]*\btcStart="([^"]+)"', text)
    if not m or timeline.global_start_time is not None:
        return
    start_s = _fcpx_seconds(m.group(1))
    if not start_s:
        return
    tracks = [t for t in timeline.tracks if len(t)]
    rate = next((t[0].duration().rate for t in tracks), 24.0)
    start = RationalTime(float(start_s * rate_fraction(rate)), rate)
    if tracks and all(isinstance(t[0], otio.schema.Gap) and t[0].duration() >= start for t in tracks):
        for t in tracks:
            gap = t[0]
            if gap.duration() == start:
                t.remove(gap)
            else:
                gap.source_range = TimeRange(gap.source_range.start_time, gap.duration() - start)
        timeline.global_start_time = start
    else:
        notes.append(f"sequence starts at {m.group(1)}, but its clips do not; record times count from 0")


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
            if adapter == "cmx_3600":
                _write_edl(timeline, tmp, **adapter_kwargs)
            elif adapter == "fcpx_xml" and _is_ntsc(timeline):
                # the FCPXML writer cannot write NTSC rates: write at the nominal rate, rescale times
                nominal = timeline.deepcopy()
                fcpx_ntsc.relabel_rates(nominal, to_ntsc=False)
                text = otio.adapters.write_to_string(nominal, adapter_name="fcpx_xml", **adapter_kwargs)
                Path(tmp).write_text(fcpx_ntsc.scale_times(text, fcpx_ntsc.NTSC_FACTOR, divide=False))
            elif adapter == "fcp_xml":
                text = otio.adapters.write_to_string(timeline, adapter_name="fcp_xml", **adapter_kwargs)
                Path(tmp).write_text(fcp7_flags.apply_on_write(text, timeline))
            else:
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


def _write_edl(timeline: otio.schema.Timeline, path: Path, **kwargs) -> None:
    # The EDL writer counts record timecode from 0: put the cut back at its real record start.
    text = otio.adapters.write_to_string(timeline, adapter_name="cmx_3600", **kwargs)
    start = timeline.global_start_time
    if start is not None and start.value:
        rate = kwargs.get("rate") or timeline.tracks[0].duration().rate
        text = shift_edl_record(text, start, rate)
    Path(path).write_text(text)


def aaf_drop_frame(path: Path) -> bool | None:
    """Drop-frame flag of the top-level composition's timecode track in an AAF (``None`` if none)."""
    try:
        import aaf2

        with aaf2.open(str(path), "r") as f:
            for mob in f.content.toplevel():
                for slot in mob.slots:
                    seg = slot.segment
                    parts = [seg] + list(getattr(seg, "components", []) or [])
                    for part in parts:
                        if type(part).__name__ == "Timecode":
                            return bool(part["Drop"].value)
    except Exception:  # an unreadable flag only changes how timecode is shown
        return None
    return None
