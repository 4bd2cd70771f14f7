"""What otio-fcp-adapter 1.0 drops when it writes a whole timeline as FCP 7 XML, put back: clip/track
enable and track names (``<enabled>FALSE</enabled>``, ``MZ.TrackName``). Only the whole-timeline
writer uses this (a conform inserts into the original document instead; reading is fcp7_reader.py).
Clip items and OTIO clips are matched by the ``fcp_xml`` ``@id`` the adapter keeps, else by order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import opentimelineio as otio

_ITEM_TAGS = ("clipitem", "generatoritem")


def _xml_tracks(root: ET.Element) -> list[tuple[str, ET.Element]]:
    seq = root.find(".//sequence")
    if seq is None:
        return []
    out = []
    for kind, tag in (("Video", "video"), ("Audio", "audio")):
        holder = seq.find(f"./media/{tag}")
        if holder is not None:
            # Premiere "explodes" a stereo track into one <track> per channel; the adapter keeps the
            # first of each group as the OTIO track (currentExplodedTrackIndex 0)
            out.extend((kind, t) for t in holder.findall("./track") if kind == "Video" or _is_primary(t))
    return out


def _is_primary(track: ET.Element) -> bool:
    return track.get("currentExplodedTrackIndex", "0") == "0" or track.get("totalExplodedTrackCount", "1") == "1"


def _pairs(root: ET.Element, timeline: otio.schema.Timeline):
    """(xml track, otio track, [(xml item, otio clip)]) for the first sequence."""
    xml_tracks = _xml_tracks(root)
    for kind in ("Video", "Audio"):
        xs = [t for k, t in xml_tracks if k == kind]
        os_ = [t for t in timeline.tracks if isinstance(t, otio.schema.Track) and t.kind == kind]
        if len(xs) != len(os_):
            continue
        for xt, ot in zip(xs, os_):
            items = [e for e in xt if e.tag in _ITEM_TAGS]
            clips = [c for c in ot if isinstance(c, otio.schema.Clip)]
            by_id = {}
            for c in clips:
                ns = c.metadata.get("fcp_xml")
                if ns is not None and ns.get("@id"):
                    by_id[str(ns["@id"])] = c
            if by_id:
                pairs = [(e, by_id[e.get("id")]) for e in items if e.get("id") in by_id]
            else:
                pairs = list(zip(items, clips)) if len(items) == len(clips) else []
            yield xt, ot, pairs


def apply_on_write(xml_text: str, timeline: otio.schema.Timeline) -> str:
    """Add ``<enabled>FALSE</enabled>`` and track names to FCP 7 XML the adapter wrote."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return xml_text
    changed = False
    for xt, ot, pairs in _pairs(root, timeline):
        if ot.name and not xt.get("MZ.TrackName"):
            xt.set("MZ.TrackName", ot.name)
            changed = True
        if not ot.enabled:
            _set_enabled(xt, False)
            changed = True
        for item, clip in pairs:
            if not clip.enabled:
                _set_enabled(item, False)
                changed = True
    if not changed:
        return xml_text
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _set_enabled(el: ET.Element, value: bool) -> None:
    node = el.find("./enabled")
    if node is None:
        node = ET.SubElement(el, "enabled")
    node.text = "TRUE" if value else "FALSE"
