"""Timeline formats, one module each (reader + whole-timeline writer + surgical writer side by side).

Public API::

    FORMATS: dict[str, TimelineFormat]   # by adapter name: otio_json, otioz, otiod, fcp_xml, fcpx_xml, AAF, cmx_3600
    get_format(name) -> TimelineFormat
    TimelineFormat(name, suffix, read, write, write_additions)

``read(path, rate=None) -> LoadedTimeline`` reads a file the way the editor sees it (OTIO's adapter where
it is right, corrections or our own reading where it is not; docs/timeline.md lists them).
``write_additions(original, additions, tmp_path) -> notes`` writes a copy of the original document with
only the conform's additions inserted; formats without one fall back to ``write`` (re-serialising).
"""

from __future__ import annotations

from s2v_toolkit.timeline.formats import aaf, edl, fcp7, fcpxml, otio_native
from s2v_toolkit.timeline.formats.base import TimelineFormat

FORMATS: dict[str, TimelineFormat] = {
    f.name: f for f in (otio_native.OTIO_JSON, otio_native.OTIOZ, otio_native.OTIOD,
                        fcp7.FORMAT, fcpxml.FORMAT, aaf.FORMAT, edl.FORMAT)
}


def get_format(name: str) -> TimelineFormat:
    return FORMATS[name]


__all__ = ["FORMATS", "TimelineFormat", "get_format"]
