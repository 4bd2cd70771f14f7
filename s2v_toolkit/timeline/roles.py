"""Which audio tracks carry dialogue: explicit choice, ``s2v_toolkit`` metadata, or the track's name."""

from __future__ import annotations

import re

import opentimelineio as otio

METADATA_NAMESPACE = "s2v_toolkit"

# Names editors give dialogue tracks: "DIA 1", "Dialog", "Dialogue A", "DX", "DX_Boom", "PDX".
DIALOGUE_NAME = re.compile(r"(?<![a-z])(dia|dial|dialog|dialogue|dialogues|dx|pdx|dlg)(?![a-z])", re.I)


def dialogue_reason(track: otio.schema.Track) -> str | None:
    """Why ``track`` looks like dialogue (``None`` if it does not)."""
    if track.kind != otio.schema.TrackKind.Audio:
        return None
    meta = track.metadata.get(METADATA_NAMESPACE, {}) if hasattr(track.metadata, "get") else {}
    role = str(meta.get("role", "")).lower() if hasattr(meta, "get") else ""
    if role:
        return "metadata s2v.role=dialogue" if role == "dialogue" else None
    if track.name and DIALOGUE_NAME.search(track.name):
        return f"track name '{track.name}'"
    return None
