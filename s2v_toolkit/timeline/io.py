"""Reading and writing timeline files: the format is chosen by extension and content, and each
format module under ``timeline/formats`` does the work."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING


from s2v_toolkit.errors import S2VError
from s2v_toolkit.media import atomic_output
from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.formats import get_format
from s2v_toolkit.timeline.formats.base import first_line
from s2v_toolkit.timeline.loaded import LoadedTimeline
from s2v_toolkit.timeline.timecode import parse_rate

if TYPE_CHECKING:  # annotations only
    import opentimelineio as otio

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
    text = _xml_text(head)
    if suffix == ".xml" or (suffix not in ADAPTER_BY_SUFFIX and text.lstrip().startswith("<")):
        root = xml_root_tag(text)
        if root is None and len(head) >= 4096:
            # a long prolog (comments, DOCTYPE with an internal subset) fills the head: read on
            root = xml_root_tag(_xml_text(_head(p, 4 * 1024 * 1024)))
        if root == "xmeml":
            return "fcp_xml"
        if root == "fcpxml":
            return "fcpx_xml"
        found = f"its root element is <{root}>" if root else "no root element found"
        raise TimelineError(p, f"XML is neither FCP 7 XML (<xmeml>) nor FCPXML (<fcpxml>): {found}")
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


def _xml_text(head: bytes) -> str:
    """The first bytes as text: UTF-16 where a BOM (or a NUL-interleaved '<') says so, else UTF-8."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", "replace")
    if head.startswith(b"<\x00"):
        return head.decode("utf-16-le", "replace")
    if head.startswith(b"\x00<"):
        return head.decode("utf-16-be", "replace")
    return head.decode("utf-8", "replace").lstrip("\ufeff")


_PROLOG = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^>\[]|\[[^\]]*\])*>", re.S)
_START_TAG = re.compile(r"<([A-Za-z_][\w.:-]*)")


def xml_root_tag(text: str) -> str | None:
    """Name of the document's root element: the first start tag after the declaration, comments,
    processing instructions and DOCTYPE (None where ``text`` ends before one)."""
    pos = 0
    while True:
        m = _PROLOG.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
    m = _START_TAG.match(text, pos)
    return m.group(1).split(":")[-1] if m else None


def _head(p: Path, n: int = 4096) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise TimelineError(p, f"cannot open: {exc.strerror or exc}") from exc


def read_timeline(path: str | os.PathLike, *, rate: float | str | None = None) -> LoadedTimeline:
    """Read any timeline file: the format is found by extension and content, then read by its module
    in ``timeline/formats`` (OTIO's adapter where it is right, the toolkit's corrections where not).

    ``rate`` is needed for EDLs only (an EDL does not say its rate; 23.976 vs 24 and 29.97 vs 30
    cannot be told apart): a number or a string such as ``"23.976"`` or ``"24000/1001"``. Without it,
    the rate is guessed from the timecodes and noted.
    """
    p = Path(path)
    from s2v_toolkit.safety import note_input

    note_input(p)
    adapter = detect_adapter(p)
    if rate is not None:
        try:  # 23.976 (float or text) means 24000/1001, as on the command line
            rate = parse_rate(rate)
        except ValueError as exc:
            raise TimelineError(p, str(exc)) from None
    return get_format(adapter).read(p, rate=rate)


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
    if dest.exists() and not overwrite:
        raise TimelineError(dest, "already exists (pass overwrite to replace it)")
    try:
        with atomic_output(dest, overwrite=overwrite) as tmp:
            get_format(adapter).write(timeline, Path(tmp), **adapter_kwargs)
    except S2VError:
        raise
    except OSError as exc:
        raise TimelineError(dest, f"cannot write: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise TimelineError(dest, f"{adapter} cannot write this timeline: {first_line(exc)}") from exc
    return dest


def detect_adapter_for_output(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return "fcp_xml"
    name = ADAPTER_BY_SUFFIX.get(suffix)
    if not name:
        raise TimelineError(path, f"cannot tell which format to write from extension '{suffix}'")
    return name
