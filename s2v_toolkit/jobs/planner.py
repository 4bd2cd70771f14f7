"""build_plan: timeline + cast -> RenderPlan.

dialogue extraction -> diarization -> speaker-to-character assignment -> lines (a character's
consecutive turns) -> for every line, the shots under it -> an action for each shot:

- ``new_shot``: no video under the line (a gap), a placeholder clip (generator / offline media), or a
  clip marked ``metadata["s2v_toolkit"]["generate"] = true`` / ``"action": "new_shot"``;
- ``redub``: the character's face is found speaking in the shot (faces stage: tracking, audio/mouth
  sync and the cast's reference image);
- ``skip`` with the reason: unknown voice, no face (cutaway), face not identified, retimed clip,
  missing media, only a few frames of the line on that shot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from s2v_toolkit.jobs.cast import Cast, Character, load_cast
from s2v_toolkit.jobs.plan import (
    UNKNOWN_CHARACTER, DialogueLine, RenderPlan, ShotJob, new_plan_timestamp, seed_for, stable_job_id,
)

DEFAULT_MAX_GAP = 0.6          # seconds of pause inside one line of one character
DEFAULT_MIN_LINE = 0.25        # seconds: shorter speech is not a line
DEFAULT_MIN_JOB_FRAMES = 6     # fewer frames of a line on a shot are not worth a render


@dataclass
class ShotContext:
    """What a face check sees for one line on one shot."""

    job: ShotJob
    character: Character | None
    media_path: str
    first_frame: int             # file frame index (0 = the file's first frame)
    last_frame: int              # inclusive
    audio: np.ndarray            # the line's 16 kHz mono samples over these frames
    sample_rate: int = 16000


@dataclass
class FaceVerdict:
    action: str                  # "redub" | "skip"
    reason: str
    face: dict | None = None
    notes: list[str] = field(default_factory=list)


FaceCheck = Callable[[ShotContext], FaceVerdict]


class FaceChecker:
    """Default face check (faces stage): track the faces of the shot's frames, then pick the one whose
    mouth follows the line's audio and that looks like the character's reference image."""

    #: lines of one character on one shot are pooled only while they lie within this span of the file
    #: (the pooled check tracks the faces over the whole span once more)
    max_pool_seconds: float = 120.0

    def __init__(self, bundle: str | os.PathLike | None = None, analyze: Callable | None = None):
        self.bundle = bundle
        self._references: dict[str, object] = {}
        self.notes: list[str] = []
        # (path, first, last) -> FaceAnalysis; tests inject synthetic analyses
        self._analyze = analyze or self._analyze_video
        # per (character, clip, media): the lines checked on that shot, for pool()
        self._checked: dict[tuple, list[tuple[ShotContext, object, object]]] = {}

    def _analyze_video(self, path, first, last):
        from s2v_toolkit.faces import analyze_video

        return analyze_video(path, first, last, bundle=self.bundle)

    def reference(self, character: Character | None):
        from s2v_toolkit.errors import S2VError
        from s2v_toolkit.faces import reference_descriptor
        from s2v_toolkit.media import read_frames

        if character is None or not character.reference_images:
            return None
        if character.id not in self._references:
            img = character.reference_images[0]
            try:
                self._references[character.id] = reference_descriptor(read_frames(img, 0, 1)[0], self.bundle)
            except S2VError as exc:
                self.notes.append(f"character '{character.id}': reference image {img} not usable ({exc}); "
                                  "speaker chosen from audio only")
                self._references[character.id] = None
        return self._references[character.id]

    def __call__(self, ctx: ShotContext) -> FaceVerdict:
        from s2v_toolkit.errors import MediaError
        from s2v_toolkit.faces import speaker_for_line

        try:
            analysis = self._analyze(ctx.media_path, ctx.first_frame, ctx.last_frame)
        except MediaError as exc:
            return FaceVerdict("skip", f"shot frames cannot be read ({exc.problem})")
        if not np.count_nonzero(analysis.faces_per_frame):
            return FaceVerdict("skip", "no face in the shot (cutaway, or faces too small to track)")
        choice = speaker_for_line(analysis, ctx.first_frame, ctx.last_frame, audio=ctx.audio,
                                  sample_rate=ctx.sample_rate, reference=self.reference(ctx.character))
        key = (ctx.character.id if ctx.character else None, ctx.job.clip_id, ctx.media_path)
        self._checked.setdefault(key, []).append((ctx, analysis, choice))
        if choice.track_id is None:
            return FaceVerdict("skip", f"the speaking face was not found ({choice.reason})")
        face = {"track_id": int(choice.track_id), "confidence": round(float(choice.confidence), 4),
                "reason": choice.reason}
        return occlusion_verdict(analysis, int(choice.track_id), ctx, face,
                                 f"face track {choice.track_id} speaks the line ({choice.reason})")

    def pool(self) -> None:
        """Pool the audio evidence of a character's lines on one shot (same clip, same media), for the
        lines the audio left undecided alone.

        Each line keeps its own circular-shift null; the faces are tracked once over the span of the
        lines and each face's z is combined over them (Stouffer, ``s2v_toolkit.faces.speakers_pooled``):
        under the null the pooled z is standard normal, so the one-line cut (``audio_confidence``)
        applies. A pooled pick turns an undecided line into a redub of that face (mapped to the line's
        own tracks, which the renderer sees); the job's ``face`` records the line's own confidence, the
        pooled confidence and the pooled z per line. Lines decided alone keep their choice and get the
        pooled record; where it favours another face, a note says so. Undecided lines that the pool
        does not decide either say so in their reason."""
        from s2v_toolkit.errors import MediaError
        from s2v_toolkit.faces import matching_track, speakers_pooled

        for (_, _, media), records in self._checked.items():
            if len(records) < 2 or all(choice.track_id is not None for _, _, choice in records):
                continue
            first = min(ctx.first_frame for ctx, _, _ in records)
            last = max(ctx.last_frame for ctx, _, _ in records)
            fps = records[0][1].fps
            if (last - first + 1) / fps > self.max_pool_seconds:
                self.notes.append(f"{media}: lines of '{records[0][0].job.character}' on frames {first}-{last} "
                                  f"span more than {self.max_pool_seconds:g} s: not pooled")
                continue
            try:
                span = self._analyze(media, first, last)
            except MediaError as exc:
                self.notes.append(f"{media}: frames {first}-{last} cannot be read for pooling ({exc.problem})")
                continue
            lines = [(ctx.first_frame, ctx.last_frame, ctx.audio) for ctx, _, _ in records]
            pooled = speakers_pooled(span, lines, sample_rate=records[0][0].sample_rate)
            lead = pooled.track_id if pooled.track_id is not None else pooled.best_candidate
            info = {"lines": [ctx.job.line for ctx, _, _ in records], "confidence": round(pooled.confidence, 4),
                    "z": round(pooled.z[lead], 3) if lead in pooled.z else None,
                    "line_z": [round(d[lead], 3) if lead in d else None for d in pooled.line_z],
                    "reason": pooled.reason}
            lead_track = span.track(lead) if lead is not None else None
            for ctx, analysis, choice in records:
                job = ctx.job
                mine = (matching_track(lead_track, analysis.tracks, ctx.first_frame, ctx.last_frame)
                        if lead_track is not None else None)
                if choice.track_id is not None:  # decided alone: keep it, record the pool
                    if job.face is not None:
                        job.face["pooled"] = info
                    if pooled.track_id is not None and mine != choice.track_id:
                        job.notes.append(f"the character's lines on this shot pooled favour another face "
                                         f"({pooled.reason}); this line alone chose track {choice.track_id}")
                    continue
                if pooled.track_id is None or mine is None:
                    why = pooled.reason if mine is not None or pooled.track_id is None else \
                        f"{pooled.reason}, but that face is not found on this line's frames"
                    job.reason += f"; pooled with the character's other lines on this shot: {why}"
                    continue
                face = {"track_id": int(mine), "confidence": round(float(pooled.confidence), 4),
                        "line_confidence": round(float(choice.confidence), 4),
                        "reason": f"{pooled.reason} (this line alone: {choice.reason})", "pooled": info}
                verdict = occlusion_verdict(analysis, int(mine), ctx, face,
                                            f"face track {mine} speaks the line (pooled with the character's "
                                            f"other lines on this shot: {pooled.reason}; this line alone: "
                                            f"{choice.reason})")
                job.action, job.reason, job.face = verdict.action, verdict.reason, verdict.face
                job.notes.extend(verdict.notes)
        self._checked.clear()


def occlusion_verdict(analysis, track_id: int, ctx: ShotContext, face: dict, reason: str) -> FaceVerdict:
    """Redub, noting the frames whose mouth is covered (they pass through); skip when most of them are."""
    from s2v_toolkit.faces import OcclusionParams
    from s2v_toolkit.faces.analyze import runs

    t = analysis.track(track_id)
    found = [int(f) for f in t.frames if ctx.first_frame <= f <= ctx.last_frame]
    covered = analysis.occluded_frames(track_id, ctx.first_frame, ctx.last_frame)
    turned = analysis.turned_ranges(track_id, ctx.first_frame, ctx.last_frame) \
        if hasattr(analysis, "turned_ranges") else []
    check = []
    if turned:
        face["turned_ranges"] = [list(r) for r in turned]
        check = [f"face turned well away in file frames {', '.join(f'{a}-{b}' for a, b in turned)}: the mouth "
                 "cues changed there but are not trusted on a turned face, so those frames are re-dubbed; check "
                 "them for a hand or an object over the mouth"]
    if not covered:
        return FaceVerdict("redub", reason, face, check)
    share = len(covered) / max(len(found), 1)
    flags = np.zeros(ctx.last_frame - ctx.first_frame + 1, bool)
    flags[np.asarray(covered) - ctx.first_frame] = True
    spans = runs(flags, ctx.first_frame)
    why = analysis.occlusion_reasons(track_id, ctx.first_frame, ctx.last_frame)
    face["occluded_ranges"] = [{"frames": list(r), "reason": why.get(r[0], "mouth occluded")} for r in spans]
    if share > OcclusionParams.max_line_fraction:
        return FaceVerdict("skip", f"mouth occluded in {share:.0%} of the line", face, check)
    text = ", ".join(f"{a}-{b}" for a, b in spans)
    return FaceVerdict("redub", reason, face,
                       [f"mouth occluded in file frames {text} ({share:.0%} of the line): those frames pass "
                        "through unchanged", *check])


def no_face_check(ctx: ShotContext) -> FaceVerdict:
    return FaceVerdict("redub", "face not checked (face check turned off)", None,
                       ["face not checked: the renderer picks the face"])


def _diarize_track(signal: np.ndarray, cast: Cast, backend: str | None, num_speakers: int | None, voices_cache: dict):
    from s2v_toolkit.diarization import assign_characters, diarize, enroll

    # exclusive turns: one voice per moment of a dialogue track, so two lines of one track never claim the
    # same frames of a shot (overlapped speech goes to the voice most active there)
    turns = diarize(signal, 16000, backend=backend, num_speakers=num_speakers,
                    max_speakers=None if num_speakers else max(2, len(cast.characters) + 1), overlap=False)
    if "voices" not in voices_cache:
        samples = {c.id: list(c.voice_samples) for c in cast.characters if c.voice_samples}
        voices_cache["voices"] = enroll(samples) if samples else {}
    return assign_characters(turns, signal, voices_cache["voices"], characters=cast.ids, sample_rate=16000)


def lines_from_turns(turns, fps: Fraction, duration_frames: int, track: str, *, max_gap: float = DEFAULT_MAX_GAP,
                     min_line: float = DEFAULT_MIN_LINE) -> list[DialogueLine]:
    """A character's consecutive turns (pauses up to ``max_gap`` s) make one line; record frames cover
    the speech (first frame that holds speech to the frame after the last)."""
    merged: list[list] = []
    for t in sorted(turns, key=lambda t: t.start):
        char = t.character or UNKNOWN_CHARACTER
        if merged and merged[-1][2] == char and t.start - merged[-1][1] <= max_gap:
            m = merged[-1]
            m[1] = max(m[1], t.end)
            m[4].append(t)
        else:
            merged.append([t.start, t.end, char, t.speaker, [t]])
    lines = []
    for start, end, char, speaker, parts in merged:
        if end - start < min_line:
            continue
        rin = max(0, math.floor(Fraction(start).limit_denominator(1_000_000) * fps))
        rout = min(duration_frames, math.ceil(Fraction(end).limit_denominator(1_000_000) * fps))
        if rout <= rin:
            continue
        conf = min(p.confidence for p in parts)
        scores = [p.character_score for p in parts if p.character_score is not None]
        lines.append(DialogueLine(0, char, rin, rout, track, speaker, round(float(conf), 4),
                                  round(float(min(scores)), 4) if scores else None))
    return lines


def _pieces(desc, rin: int, rout: int):
    """(record_in, record_out, ShotSegment | None) covering [rin, rout): the shots, and gaps as None."""
    from s2v_toolkit.timeline import Span, Time, shot_map

    rate = desc.rate
    segs = shot_map(desc, Span(Time(float(rin), rate), Time(float(rout - rin), rate)))
    out, cursor = [], rin
    for seg in segs:
        s, n = seg.record.frames(rate)
        s, e = int(round(s)), int(round(s + n))
        if s > cursor:
            out.append((cursor, s, None))
        out.append((s, e, seg))
        cursor = max(cursor, e)
    if cursor < rout:
        out.append((cursor, rout, None))
    return out


def _file_frame(desc, clip, seg) -> tuple[int | None, str | None]:
    """File frame index (0 = first frame of the media) shown at the segment's first record frame."""
    from s2v_toolkit.media import probe

    src = seg.source.start.to_otio()
    src_rate = src.rate
    try:
        info = probe(clip.media.path)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a skip reason, not a crash
        return None, f"media cannot be read ({str(exc).splitlines()[0]})"
    if info.video is None:
        return None, "the clip's media has no video stream"
    if clip.media.available_range is not None:
        origin = clip.media.available_range.start.to_otio().rescaled_to(src_rate).value
    else:
        origin = info.video.start_frame
    media_fps = Fraction(info.video.fps)
    if abs(float(media_fps) - float(desc.rate_fraction)) > 1e-3:
        return None, (f"media rate {float(media_fps):.3f} fps differs from the timeline's "
                      f"{float(desc.rate_fraction):.3f} fps (conform the rate first)")
    index = int(round(src.value - origin))
    if index < 0 or index >= info.video.frame_count:
        return None, f"source frame {index} lies outside the media (0-{info.video.frame_count - 1})"
    return index, None


def build_plan(
    timeline,
    cast,
    *,
    dialogue_tracks: list[str] | None = None,
    turns=None,
    face_check: bool | FaceCheck = True,
    backend: str | None = None,
    num_speakers: int | None = None,
    max_gap: float = DEFAULT_MAX_GAP,
    min_line: float = DEFAULT_MIN_LINE,
    min_job_frames: int = DEFAULT_MIN_JOB_FRAMES,
    search_dirs: tuple = (),
    face_bundle: str | os.PathLike | None = None,
    progress: bool = False,
    allow_missing_media: bool = False,
    rate: float | str | None = None,
) -> RenderPlan:
    """Plan the renders of ``timeline`` (a path or a LoadedTimeline) for ``cast`` (a path or a Cast).

    ``turns``: precomputed diarization ({track id: SpeakerTurns}, or one SpeakerTurns for the first
    dialogue track); turns without characters are assigned from the cast's voices. ``face_check``:
    True (faces stage), False (every shot with a known character is a redub; the renderer picks the
    face) or a callable ``(ShotContext) -> FaceVerdict``.
    """
    from s2v_toolkit.timeline import (
        LoadedTimeline, describe_timeline, diarization_window, extract_dialogue, read_timeline,
    )

    loaded = timeline if isinstance(timeline, LoadedTimeline) else read_timeline(timeline, rate=rate)
    cast_obj = cast if isinstance(cast, Cast) else load_cast(cast)
    desc = describe_timeline(loaded, search_dirs=search_dirs)
    rate = desc.rate
    fps = desc.rate_fraction
    duration = int(round(desc.duration.to_otio().rescaled_to(rate).value))
    start_frame = int(round(desc.global_start.to_otio().rescaled_to(rate).value))
    # the stretch of the cut that holds sound (not an AAF's hour of silence before a session's first clip)
    tracks = extract_dialogue(desc, dialogue_tracks, allow_missing_media=allow_missing_media,
                              window=diarization_window(desc))
    plan = RenderPlan(timeline=str(Path(loaded.path).absolute()) if loaded.path else "",
                      cast=str(cast_obj.path.absolute()) if cast_obj.path else None, rate=rate,
                      start_frame=start_frame, drop_frame=desc.drop_frame, duration_frames=duration,
                      dialogue_tracks=[t.track_id for t in tracks], created=new_plan_timestamp(),
                      allow_missing_media=allow_missing_media,
                      search_dirs=[str(Path(d).absolute()) for d in search_dirs])
    for t in tracks:
        if t.reason:
            plan.notes.append(f"dialogue {t.track_id} '{t.track_name}': {t.reason}")
        plan.notes.extend(f"dialogue {t.track_id}: {p}" for p in t.problems)

    if isinstance(face_check, bool):
        checker: FaceCheck = FaceChecker(face_bundle) if face_check else no_face_check
    else:
        checker = face_check

    voices_cache: dict = {}
    lines: list[DialogueLine] = []
    signals = {t.track_id: (t.signal, t.first_sample) for t in tracks}
    for k, track in enumerate(tracks):
        offset = track.first_sample / 16000  # record seconds of the signal's first sample
        if turns is None:
            tt = _diarize_track(track.signal, cast_obj, backend, num_speakers, voices_cache).shifted(offset)
            # which diarizer found the lines (and how many voices it counted) stays with the plan
            plan.notes.append(f"dialogue {track.track_id}: diarization {tt.backend} backend "
                              f"({tt.info.get('backend_choice', 'asked for')}), "
                              f"{len(tt.speakers)} voice(s), count {tt.info.get('count', 'n/a')}")
            from s2v_toolkit.diarization import voice_sample_notes

            plan.notes.extend(f"dialogue {track.track_id}: cast voice samples: {note}"
                              for note in voice_sample_notes(tt.info.get("assignment") or {}))
        else:
            tt = turns.get(track.track_id) if isinstance(turns, dict) else (turns if k == 0 else None)
            if tt is None:
                plan.notes.append(f"dialogue {track.track_id}: no speaker turns given; track left out")
                continue
            if any(x.character is None for x in tt):
                from s2v_toolkit.diarization import assign_characters, enroll

                samples = {c.id: list(c.voice_samples) for c in cast_obj.characters if c.voice_samples}
                tt = assign_characters(tt.shifted(-offset), track.signal, enroll(samples) if samples else {},
                                       characters=cast_obj.ids, sample_rate=16000).shifted(offset)
            overlapped = tt.overlapped_seconds()
            if overlapped > 0:
                # one voice per moment of a dialogue track, as when the planner diarizes (turns of
                # `s2vt diarize`, or a reference RTTM, hold both voices of an overlap)
                tt = tt.exclusive()
                plan.notes.append(f"dialogue {track.track_id}: the given turns overlap for {overlapped:.1f} s; "
                                  "each overlapped moment went to its more confident turn (one line per moment)")
        lines.extend(lines_from_turns(tt, fps, duration, track.track_id, max_gap=max_gap, min_line=min_line))
    lines.sort(key=lambda ln: (ln.record_in, ln.track))
    for i, ln in enumerate(lines, 1):
        ln.index = i
    plan.lines = lines

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(lines), desc="plan", unit="line")
    for ln in lines:
        for rin, rout, seg in _pieces(desc, ln.record_in, ln.record_out):
            plan.jobs.append(_job_for(plan, desc, cast_obj, ln, rin, rout, seg, signals, fps, checker,
                                      min_job_frames))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    if isinstance(checker, FaceChecker):
        checker.pool()  # a character's lines on one shot decide together where each alone did not
        plan.notes.extend(checker.notes)
    return plan


def _job_for(plan, desc, cast: Cast, ln: DialogueLine, rin, rout, seg, signals, fps, checker, min_job_frames) -> ShotJob:
    from s2v_toolkit.timeline.media_link import GENERATOR, MISSING, NO_REFERENCE, OFFLINE

    clip = desc.clip(seg.clip_id) if seg is not None else None
    clip_key = clip.id if clip else f"gap@{rin}"
    job_id = stable_job_id(clip_key, rin, rout)
    name = clip.name if clip else "GAP"
    char = cast.get(ln.character) if ln.character in cast else None
    job = ShotJob(id=job_id, label=f"{name} L{ln.index:02d} {ln.character}", action="skip", reason="",
                  line=ln.index, character=ln.character, record_in=rin, record_out=rout, track=ln.track,
                  clip_id=clip.id if clip else None, clip_name=clip.name if clip else None,
                  prompt=char.prompt if char else "", seed=seed_for(job_id))

    def skip(reason: str) -> ShotJob:
        job.action, job.reason = "skip", reason
        return job

    if rout - rin < min_job_frames:
        return skip(f"only {rout - rin} frame(s) of the line fall on this shot")
    if char is None:
        return skip("the voice matches no cast character (set 'character' to a cast id to render it)")
    if clip is None:
        from s2v_toolkit.timeline import degenerate_clips

        for cid, cname, length, lo, hi in degenerate_clips(desc):
            if rin < hi and rout > lo:
                # the editor put a (broken) shot here, not a gap to fill: do not invent one
                kind = "zero-length" if length == 0 else f"negative-length ({length:g} frames)"
                return skip(f"the cut has a {kind} clip {cid} '{cname}' here, which shows no frame; fix it in "
                            "the editor (not generated as a new shot)")
        job.action, job.reason = "new_shot", "no video under the line (a gap in the cut): generate the shot"
        return job
    marks = clip.s2v or {}
    if marks.get("unknown_picture") or (seg is not None and getattr(seg, "kind", "clip") == "unknown"):
        # picture is there but the reader could not tell what: never plan a new shot over it
        return skip(f"unknown picture: {marks.get('unknown_picture') or seg.reason}")
    if marks.get("generator"):
        return skip(f"title/generator ({marks['generator']}): not regenerated")
    if marks.get("action") == "skip" or marks.get("skip"):
        return skip("marked skip on the timeline (clip metadata s2v)")
    if marks.get("generate") or marks.get("action") == "new_shot":
        job.action, job.reason = "new_shot", "clip marked for generation on the timeline (metadata s2v)"
        return job
    status = clip.media.status
    if status in (GENERATOR, OFFLINE, NO_REFERENCE):
        job.action, job.reason = "new_shot", f"placeholder clip ({status} media): generate the shot"
        return job
    if status == MISSING or not clip.media.path:
        return skip(f"media not found: {clip.media.url or clip.media.path or '(none)'}")
    if clip.freeze_frame or clip.speed != 1.0:
        return skip(f"retimed clip (speed {clip.speed:g}{', freeze frame' if clip.freeze_frame else ''}): "
                    "re-dub works on clips at normal speed")
    job.media_path = str(Path(clip.media.path).absolute())
    first, problem = _file_frame(desc, clip, seg)
    if problem:
        return skip(problem)
    job.source_in = first
    signal, first_sample = signals.get(ln.track, (None, 0))
    a = max(0, int(round(Fraction(rin) / fps * 16000)) - first_sample)
    b = max(0, int(round(Fraction(rout) / fps * 16000)) - first_sample)
    audio = signal[a:b] if signal is not None else np.zeros(0, np.float32)
    verdict = checker(ShotContext(job, char, job.media_path, first, first + (rout - rin) - 1, audio))
    job.action, job.reason, job.face = verdict.action, verdict.reason, verdict.face
    job.notes.extend(verdict.notes)
    return job
