"""Which audio tracks carry dialogue: explicit choice, ``s2v_toolkit`` metadata (FCPXML roles), the
track's name in the conventions editors use in several languages, or (``speech``) a measured rule."""

from __future__ import annotations

import re

import opentimelineio as otio

METADATA_NAMESPACE = "s2v_toolkit"

# Names editors give dialogue tracks: "DIA 1", "Dialog", "DX_Boom", "PDX", "VO", "Voice", "Speak",
# "Sync 2", "Synk 1-4", "Interview", "Kommentar", "O-Ton", "Dialogo", "Diálogo", "Parole", "Voix",
# "Stimme", "Sprache", "Sprecher", "Narration", "Boom", "Lav".
DIALOGUE_WORDS = (
    r"dia|dial|dialog|dialogs|dialogue|dialogues|dialoge|dialogo|diálogo|dialogos|diálogos|dialoog|dx|pdx|dlg|"
    r"vo|v\.o\.?|voice|voices|voiceover|voice-over|speak|speaker|speech|sync|synk|synch|interview|interviews|"
    r"kommentar|commentary|comment|narration|narrator|narrateur|o-ton|oton|ton|parole|voix|stimme|stimmen|"
    r"sprache|sprecher|sprecherin|dialogen|tale|replik|boom|lav|lavalier|adr"
)
DIALOGUE_NAME = re.compile(rf"(?<![^\W\d_])({DIALOGUE_WORDS})(?![^\W\d_])", re.I)
# scripts without spaces between words: a substring is the word
DIALOGUE_CJK = re.compile(r"(台词|台詞|セリフ|せりふ|対話|对白|對白|대사|声|聲)")
# names that say "not dialogue", even next to a dialogue word ("VO music bed", "Sync FX")
NOT_DIALOGUE = re.compile(
    r"(?<![^\W\d_])(music|musik|musique|musica|música|mx|score|fx|sfx|efx|effects|effekte|effets|"
    r"ambience|ambiance|ambi|amb|atmos|atmo|atmosphere|foley|bg|backgrounds?|noise|roomtone|room tone|"
    r"nat|natsound|nats|stems?|mix|print|m&e|me)(?![^\W\d_])|(音楽|音乐|効果音|效果|环境)", re.I)


def name_reason(name: str | None) -> str | None:
    """Why a track of this name is dialogue (``None``: the name does not say, or says it is not)."""
    if not name:
        return None
    if NOT_DIALOGUE.search(name):
        return None
    m = DIALOGUE_NAME.search(name) or DIALOGUE_CJK.search(name)
    return f"track name '{name}' ({m.group(1)})" if m else None


def dialogue_reason(track: otio.schema.Track) -> str | None:
    """Why ``track`` looks like dialogue (``None`` if it does not)."""
    if track.kind != otio.schema.TrackKind.Audio:
        return None
    meta = track.metadata.get(METADATA_NAMESPACE, {}) if hasattr(track.metadata, "get") else {}
    role = str(meta.get("role", "")).lower() if hasattr(meta, "get") else ""
    if role:
        # FCPXML roles: "dialogue", "dialogue.boom", "Dialogue-1"
        return f"role '{meta.get('role')}'" if role.split(".")[0].split("-")[0].strip() == "dialogue" else None
    return name_reason(track.name)
