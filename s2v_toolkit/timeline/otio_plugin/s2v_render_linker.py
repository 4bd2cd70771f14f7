"""OTIO media linker 's2v_render_linker': relink the toolkit's render clips (``metadata["s2v_toolkit"]``
with ``media_path``) whose file is not where the timeline says, by name in the folders given
(``media_linker_argument_map={"search_dirs": [...]}``), newest version first."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio


def link_media_reference(in_clip, media_linker_argument_map=None):
    args = media_linker_argument_map or {}
    md = in_clip.metadata.get("s2v_toolkit") or {}
    ref = in_clip.media_reference
    wanted = md.get("media_path") if hasattr(md, "get") else None
    if not wanted:
        return ref
    from s2v_toolkit.timeline.media_link import url_to_path

    url = getattr(ref, "target_url", "") or ""
    if url and Path(url_to_path(url)).is_file():
        return ref
    name = Path(str(wanted)).name
    hits = []
    for d in args.get("search_dirs", []):
        hits.extend(p for p in Path(d).rglob(name) if p.is_file())
    if not hits:
        return ref
    best = max(hits, key=lambda p: p.stat().st_mtime)
    return otio.schema.ExternalReference(target_url=best.resolve().as_uri(),
                                         available_range=getattr(ref, "available_range", None))
