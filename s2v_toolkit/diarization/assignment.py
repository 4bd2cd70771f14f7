"""Enrollment of the cast's voices and speaker -> character assignment.

Each character may come with voice samples (audio files or arrays of that character alone). Enrollment
embeds them with the same voice encoder the embedded backend uses, into one unit vector per character.
Assignment compares every diarized speaker's embedding with every enrolled character's (cosine
similarity), solves the one-to-one matching that maximises the total similarity (Hungarian algorithm), and
keeps a match only when its similarity reaches ``threshold``; a speaker the matching leaves over whose voice
reaches ``threshold`` for a character is that character too (one voice diarization split in two); anything
else is :data:`UNKNOWN`. Turns long enough to embed on their own (``min_turn_check`` seconds) are checked
too: a turn of a known speaker whose
voice is closer to another enrolled character (at least ``turn_threshold``) goes to that character (alike
voices that diarization heard as one speaker are told apart by the cast's samples); a turn that resembles
no enrolled character that much stays unknown, so a stray voice that diarization lumped into a known
speaker does not get that character's name. Turns of unknown speakers stay unknown.

Without voice samples, speakers get the cast's characters in order of first appearance (the first voice
heard is the first character listed), and ``info["assignment"]["method"]`` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from s2v_toolkit.diarization.audio import AudioSource, open_audio
from s2v_toolkit.diarization.embedding import SAMPLE_RATE, VoiceEncoder
from s2v_toolkit.diarization.turns import UNKNOWN, SpeakerTurns
from s2v_toolkit.errors import ConfigError

DEFAULT_THRESHOLD = 0.75  # cosine similarity, speaker level; see docs/diarization.md for how it was chosen
TURN_THRESHOLD = 0.7  # one turn's own embedding is noisier than a speaker's average: a looser bar
# turns this long are checked on their own voice (shorter ones take their speaker's character). 1.0 s before
# session 19; 0.75 s: 72 real-voice cast scenes, mean DER by character 0.081 -> 0.062 (embedded) and
# 0.111 -> 0.097 (neural) as recorded, better through microphones and with a stranger too, whose 1.1 s line
# the neural backend had given a cast voice's name (docs/diarization.md, "Real voices with a cast")
MIN_TURN_CHECK = 0.75
# ... and under this length a turn's own print is noisier still: it loses its speaker's character only below
# turn_threshold - SHORT_TURN_SLACK (a cast voice's 0.8 s turn of libri4 scored 0.64 to its own samples, a
# stranger's 1 s turn 0.45 to every cast voice)
SHORT_TURN = 1.0
SHORT_TURN_SLACK = 0.1


@dataclass
class CastVoices:
    """Characters in cast order, each with its voice samples (paths or (array, sample_rate) pairs)."""

    characters: list[str]
    samples: dict[str, list] = field(default_factory=dict)

    def enrolled(self) -> list[str]:
        return [c for c in self.characters if self.samples.get(c)]


def load_cast_voices(path: str | os.PathLike) -> CastVoices:
    """Read the characters and their voice samples from a cast file (YAML or JSON).

    Only what assignment needs is read: ``characters`` is a list of mappings with ``id`` (or, without one,
    ``name``: the character's key in results) and optional ``voice_samples`` (a path or a list of paths,
    relative to the cast file). The full cast schema (``s2v_toolkit.jobs.cast``: reference images, prompts,
    id rules) is validated by the end-to-end layer; other keys are ignored here.
    """
    import json

    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: cast file not found") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None
    entries = data.get("characters") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: needs a non-empty 'characters' list")
    characters, samples = [], {}
    for i, entry in enumerate(entries):
        key = entry.get("id", entry.get("name")) if isinstance(entry, dict) else None
        if key is None or not str(key).strip():
            raise ConfigError(f"{path}: characters[{i}] needs an 'id' or a 'name'")
        name = str(key).strip()
        if name in characters:
            raise ConfigError(f"{path}: character {name!r} is listed twice")
        if name.lower() == UNKNOWN:
            raise ConfigError(f"{path}: {UNKNOWN!r} is reserved for unmatched voices; rename that character")
        raw = entry.get("voice_samples", entry.get("voice_sample", [])) or []
        raw = [raw] if isinstance(raw, (str, os.PathLike)) else list(raw)
        files = []
        for item in raw:
            f = Path(item) if Path(item).is_absolute() else path.parent / item
            if not f.is_file():
                raise ConfigError(f"{path}: voice sample of {name!r} not found: {f}")
            files.append(f)
        characters.append(name)
        samples[name] = files
    return CastVoices(characters, samples)


def embed_voice(sample, encoder: VoiceEncoder, sample_rate: int | None = None, max_seconds: float = 120.0) -> np.ndarray:
    """One unit vector for a recording of one voice (a path, an array with ``sample_rate``, or a source).
    Silence is cut out first (Silero VAD), so pauses in the sample do not dilute it."""
    from s2v_toolkit.diarization.embedded import detect_speech

    source = open_audio(sample, sample_rate)
    regions = detect_speech(source)
    if not regions:
        raise ConfigError(f"{getattr(source, 'name', 'voice sample')}: voice sample has no detectable speech")
    speech, total = [], 0.0
    for a, b in regions:
        take = min(b - a, max_seconds - total)
        if take <= 0:
            break
        speech.append(source.read(a, take))
        total += take
    return encoder.embed_speaker(np.concatenate(speech))


def enroll(voices: CastVoices | dict, encoder: VoiceEncoder | None = None) -> dict[str, np.ndarray]:
    """{character: unit embedding} for every character that has voice samples (several samples are
    averaged). ``voices`` may be a :class:`CastVoices` or a plain {name: [samples]} mapping, where a sample
    is a path or an ``(array, sample_rate)`` pair."""
    encoder = encoder or VoiceEncoder()
    samples = voices.samples if isinstance(voices, CastVoices) else voices
    out = {}
    for name, items in samples.items():
        items = [items] if isinstance(items, (str, os.PathLike, tuple)) else list(items or [])
        if not items:
            continue
        vectors = [embed_voice(item[0], encoder, sample_rate=item[1]) if isinstance(item, tuple)
                   else embed_voice(item, encoder) for item in items]
        mean = np.mean(vectors, axis=0)
        out[name] = (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)
    return out


def _speech_of(source: AudioSource, turns, max_seconds: float) -> np.ndarray:
    pieces, total = [], 0.0
    for t in sorted(turns, key=lambda t: -t.duration):  # longest turns first: the cleanest evidence
        take = min(t.duration, max_seconds - total)
        if take <= 0:
            break
        pieces.append(source.read(t.start, take))
        total += take
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def speaker_embeddings(turns: SpeakerTurns, audio, encoder: VoiceEncoder, sample_rate: int | None = None,
                       max_seconds: float = 60.0) -> dict[str, np.ndarray]:
    """{speaker: unit embedding} from up to ``max_seconds`` of each speaker's longest turns, where turns
    overlap only the stretches where the speaker is heard alone (all of its turns if that leaves none)."""
    source = open_audio(audio, sample_rate)
    solo = turns.solo()  # exclusive turns come back as they are
    out = {}
    for speaker in turns.speakers:
        own = [t for t in solo if t.speaker == speaker] or [t for t in turns if t.speaker == speaker]
        speech = _speech_of(source, own, max_seconds)
        if len(speech):
            out[speaker] = encoder.embed_speaker(speech)
    return out


def assign_characters(turns: SpeakerTurns, audio=None, voices: dict[str, np.ndarray] | None = None,
                      characters: list[str] | None = None, threshold: float = DEFAULT_THRESHOLD,
                      encoder: VoiceEncoder | None = None, sample_rate: int | None = None,
                      min_turn_check: float = MIN_TURN_CHECK, turn_threshold: float = TURN_THRESHOLD,
                      same_voice: bool = True, move_turns: bool = True) -> SpeakerTurns:
    """A copy of ``turns`` with ``character`` and ``character_score`` set on every turn; the mapping and
    its scores are in ``info["assignment"]``.

    ``voices``: enrolled {character: embedding} (see :func:`enroll`). ``characters``: the cast's names in
    order, used when nobody is enrolled (order of first appearance) and for characters without samples.
    ``audio`` is needed to embed the speakers, unless the backend left ``turns.speaker_embeddings``
    (the embedded backend does) and no turn check is wanted (``min_turn_check=inf``). ``same_voice=False``
    keeps the matching one-to-one (a left-over speaker is unknown); ``move_turns=False`` keeps every turn
    with its speaker's character (the rules before session 17, for comparison).
    """
    voices = dict(voices or {})
    characters = list(characters or [])
    speakers = turns.speakers
    report: dict = {"threshold": threshold, "turn_threshold": turn_threshold, "speakers": {}}

    if not voices:
        report["method"] = "order of first appearance (no voice samples enrolled)"
        mapping = {s: (characters[i] if i < len(characters) else UNKNOWN) for i, s in enumerate(speakers)}
        for s in speakers:
            report["speakers"][s] = {"character": mapping[s], "similarity": None}
        new = [replace(t, character=mapping[t.speaker], character_score=None) for t in turns]
        return turns.with_turns(new, assignment=report)

    encoder = encoder or VoiceEncoder()
    source = open_audio(audio, sample_rate) if audio is not None else None
    embs = dict(turns.speaker_embeddings) if turns.speaker_embeddings else {}
    if source is not None:
        embs = speaker_embeddings(turns, source, encoder)  # same statistic as enrollment: whole-speech mean
    missing = [s for s in speakers if s not in embs]
    if missing:
        raise ConfigError(f"cannot assign characters: no audio to embed speaker(s) {', '.join(missing)}")

    from scipy.optimize import linear_sum_assignment

    names = list(voices)
    sim = np.array([[float(embs[s] @ voices[c]) for c in names] for s in speakers]) if speakers else np.zeros((0, 0))
    rows, cols = linear_sum_assignment(sim, maximize=True) if sim.size else ([], [])
    mapping = {s: UNKNOWN for s in speakers}
    for r, c in zip(rows, cols):
        if sim[r, c] >= threshold:
            mapping[speakers[r]] = names[c]
    # a speaker left over by the one-to-one matching whose voice still matches a character: diarization heard
    # one voice as two (a reader changing microphone, a long silence between two parts); it is that
    # character too. (LibriSpeech conversations of 2-4 readers counted one voice too many: DER by character
    # 0.17 -> 0.08; strangers stay below the threshold.)
    for i, s in enumerate(speakers):
        if same_voice and mapping[s] == UNKNOWN and len(names) and sim[i].max() >= threshold:
            mapping[s] = names[int(np.argmax(sim[i]))]
            report.setdefault("same_voice", []).append(s)
    # characters without samples go, in cast order, to speakers still unmatched (first heard first)
    spare = [c for c in characters if c not in voices]
    for s in speakers:
        if mapping[s] == UNKNOWN and spare and not any(sim[speakers.index(s)] >= threshold):
            mapping[s] = spare.pop(0)
            report.setdefault("by_order", []).append(s)
    for i, s in enumerate(speakers):
        best = np.argsort(-sim[i])
        report["speakers"][s] = {
            "character": mapping[s],
            "similarity": round(float(sim[i, names.index(mapping[s])]), 4) if mapping[s] in names else None,
            "best": names[best[0]], "best_similarity": round(float(sim[i, best[0]]), 4),
            "margin": round(float(sim[i, best[0]] - sim[i, best[1]]), 4) if len(names) > 1 else None}
    report["method"] = "voice similarity (Hungarian assignment)"

    new, moved = [], set()
    prints = np.stack([voices[c] for c in names])
    for t in turns:
        character = mapping[t.speaker]
        score = report["speakers"][t.speaker]["similarity"]
        if character in voices and source is not None and t.duration >= min_turn_check:
            sims = prints @ encoder.embed_speaker(source.read(t.start, t.duration))
            score = float(sims[names.index(character)])
            best = int(np.argmax(sims))
            if move_turns and names[best] != character and sims[best] >= turn_threshold:
                # the turn's own voice is closer to another enrolled character than to its speaker's: two
                # alike voices that diarization heard as one speaker (one synthesiser's voices, one family's)
                # are told apart by the cast's samples, one turn at a time
                character, score = names[best], float(sims[best])
                moved.add((t.start, t.end, t.speaker))
            elif score < (turn_threshold if t.duration >= SHORT_TURN else turn_threshold - SHORT_TURN_SLACK):
                character = UNKNOWN
        new.append(replace(t, character=character, character_score=None if score is None else round(score, 4)))
    report["turns_moved"] = len(moved)
    if move_turns and moved and source is not None:
        # a speaker some of whose turns went to other characters holds alike voices: its long turns may hold
        # several of them too (lines that overlap or follow without a pause), so they are split where the
        # voice changes, window by window
        mixed = {m[2] for m in moved}
        new, report["turns_split"] = _split_mixed(new, mixed, source, encoder, names, prints, turn_threshold)
    return turns.with_turns(new, assignment=report)


def voice_sample_notes(assignment: dict) -> list[str]:
    """What the cast's voice samples changed beyond naming each speaker, one phrase each, from an
    ``info["assignment"]`` report (for `s2vt diarize --cast`'s summary and the plan's notes)."""
    notes = []
    if assignment.get("same_voice"):
        notes.append(f"{', '.join(assignment['same_voice'])}: a second speaker of a matching voice "
                     "(diarization split one voice)")
    if assignment.get("turns_moved"):
        split = f", {assignment['turns_split']} cut where the voice changes" if assignment.get("turns_split") else ""
        notes.append(f"{assignment['turns_moved']} turn(s) went to the enrolled voice they are closest to{split} "
                     "(alike voices heard as one speaker)")
    return notes


SPLIT_MIN_TURN = 2.4  # a turn this long holds at least four 1.6 s windows 0.4 s apart


def _split_mixed(turns: list, mixed: set, source: AudioSource, encoder: VoiceEncoder, names: list[str],
                 prints: np.ndarray, threshold: float) -> tuple[list, int]:
    """Turns of the ``mixed`` speakers of at least :data:`SPLIT_MIN_TURN` s, cut where the enrolled voice
    their 1.6 s windows (every 0.4 s) are closest to changes (a majority over three windows; a window that
    reaches ``threshold`` for no voice keeps its neighbours' label); the pieces get those characters. Returns
    (turns, how many were split). On the espeak-ng similar-voice scenes with a cast: 11 -> 13 of 18 within
    DER 0.25; on 72 conversations of real voices nothing changed (no speaker was mixed)."""
    from s2v_toolkit.diarization.embedding import HOP, WINDOW_FRAMES

    win, hop, rate = WINDOW_FRAMES * HOP, 0.4, SAMPLE_RATE
    out, split = [], 0
    for t in turns:
        if t.speaker not in mixed or t.duration < SPLIT_MIN_TURN or t.character not in names:
            out.append(t)
            continue
        x = source.read(t.start, t.duration)
        starts = list(range(0, max(1, len(x) - win + 1), int(hop * rate)))
        sims = encoder.embed([x[s:s + win] for s in starts]) @ prints.T
        labels = sims.argmax(axis=1)
        labels[sims.max(axis=1) < threshold] = -1
        voted = []
        for i in range(len(labels)):
            near = [v for v in labels[max(0, i - 1):i + 2] if v >= 0]
            # the label most of the three windows have; on a tie the window's own
            voted.append(max(sorted(set(near)), key=lambda v: (near.count(v), v == labels[i])) if near else -1)
        for i in range(len(voted)):  # windows like no voice take the label before them (or after)
            if voted[i] < 0:
                voted[i] = next((v for v in voted[i::-1] if v >= 0), next((v for v in voted[i:] if v >= 0), -1))
        if len(set(voted)) <= 1 or -1 in voted:
            out.append(t)
            continue
        centres = [t.start + (s + win / 2) / rate for s in starts]
        cuts = [(centres[i] + centres[i + 1]) / 2 for i in range(len(voted) - 1) if voted[i] != voted[i + 1]]
        labels_of = [voted[0]] + [voted[i + 1] for i in range(len(voted) - 1) if voted[i] != voted[i + 1]]
        edges = [t.start, *cuts, t.end]
        for (a, b), label in zip(zip(edges, edges[1:]), labels_of):
            inside = [k for k, c in enumerate(centres) if a <= c < b] or [0]   # the piece's windows
            out.append(replace(t, start=a, end=b, character=names[label],
                               character_score=round(float(sims[inside, label].mean()), 4)))
        split += 1
    return out, split
