"""``s2vt faces setup`` (build the landmark model bundle offline), ``s2vt faces track`` (tracks of a shot)
and ``s2vt faces speaker`` (whose face speaks a line)."""

from __future__ import annotations

from s2v_toolkit.commands import print_json


def register(sub) -> None:
    p = sub.add_parser("faces", help="face tracking, mouth masks and the face model setup")
    fsub = p.add_subparsers(dest="faces_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    s = fsub.add_parser("setup", help="build face_landmarker.task from the mediapipe 0.10.21 wheel (once)",
                        description="Build the face landmarker bundle (Apache-2.0 models from the mediapipe "
                                    "0.10.21 wheel, which pip downloads unless --wheel is given) into the "
                                    "per-user data folder ($S2VT_HOME or ~/.cache/s2v-toolkit), or --output.")
    s.add_argument("--wheel", help="a local mediapipe-0.10.21-*.whl (no download)")
    s.add_argument("--output", help="where to write the .task (default: $S2VT_FACE_LANDMARKER, else the data folder)")
    s.add_argument("--force", action="store_true", help="rebuild even if the bundle exists")
    s.add_argument("--check", action="store_true", help="only report whether the bundle exists (exit 1 if not)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_setup)

    t = fsub.add_parser("track", help="track faces in a video: tracks, coverage, confidence, issues")
    t.add_argument("video", help="video file")
    t.add_argument("--range", dest="frame_range", metavar="IN-OUT",
                   help="inclusive frame range, e.g. 100-250, or source timecodes 01:00:04:00-01:00:09:12")
    t.add_argument("--json", action="store_true", help="print JSON instead of text")
    t.add_argument("--landmarks", action="store_true", help="include smoothed landmarks in the JSON")
    t.add_argument("--preview", metavar="OUT.mp4", help="also write a preview video with boxes, landmarks and masks")
    t.add_argument("--overwrite", action="store_true", help="replace an existing preview file")
    t.add_argument("--max-faces", type=int, default=4, help="most faces tracked at once (default 4)")
    t.add_argument("--jaw", action="store_true", help="preview the jaw-inclusive mask")
    t.set_defaults(func=_cmd_track)

    k = fsub.add_parser("speaker", help="which tracked face speaks a line (audio/mouth sync, reference image)")
    k.add_argument("video", help="video file")
    k.add_argument("--range", dest="frame_range", metavar="IN-OUT", required=True,
                   help="the line's frames (inclusive), e.g. 100-250, or source timecodes")
    k.add_argument("--audio", help="the line's audio (default: the video's own audio over the range)")
    k.add_argument("--no-audio", action="store_true", help="decide from the reference image only")
    k.add_argument("--reference", metavar="IMAGE", help="a reference image of the speaking character")
    k.add_argument("--landmarks-only", action="store_true",
                   help="judge by the mouth landmarks against the sound alone, without the audio-visual network")
    k.add_argument("--max-faces", type=int, default=4, help="most faces tracked at once (default 4)")
    k.add_argument("--json", action="store_true", help="print JSON instead of text")
    k.set_defaults(func=_cmd_speaker)


def _cmd_setup(args) -> int:
    from pathlib import Path

    from s2v_toolkit.faces import build_landmarker_bundle, configured_bundle_path
    from s2v_toolkit.faces.bundle import bundle_info

    target = Path(args.output).expanduser() if args.output else configured_bundle_path()
    if args.check:
        ok = target.is_file()
        report = bundle_info(target).to_dict() if ok else {"path": str(target), "missing": True}
        if args.json:
            print_json(report)
        else:
            print(f"{target}: {'present' if ok else 'missing (run `s2vt faces setup`)'}")
        return 0 if ok else 1
    if target.is_file() and not args.force:
        info = bundle_info(target)
    else:
        info = build_landmarker_bundle(target, wheel=args.wheel)
    _self_check(info.path)
    if args.json:
        print_json(info.to_dict())
    else:
        print(f"face landmarker bundle: {info.path} (sha256 {info.sha256[:16]}..., {info.size} bytes)")
        if info.notice:
            print(f"licence notice: {info.notice}")
    return 0


def _self_check(path) -> None:
    """Load the bundle once so a broken file fails here, not in the middle of a render."""
    from s2v_toolkit.errors import S2VError
    from s2v_toolkit.faces import FaceLandmarkDetector

    try:
        FaceLandmarkDetector(path, video=False).close()
    except (RuntimeError, ValueError) as exc:
        raise S2VError(f"{path}: the face landmarker bundle does not load ({exc}); rebuild with "
                       f"`s2vt faces setup --force`") from exc


def parse_range(text: str, video) -> tuple[int, int]:
    """'IN-OUT' as frame numbers or as source timecodes (relative to the file's start timecode)."""
    from s2v_toolkit.errors import ConfigError

    parts = text.split("-")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--range {text!r}: expected IN-OUT, e.g. 100-250 or 01:00:04:00-01:00:09:12")
    try:
        if any(c in text for c in ":;"):
            from s2v_toolkit.media import timecode_to_frames

            a, b = (timecode_to_frames(p, video.fps) - video.start_frame for p in parts)
        else:
            a, b = (int(p) for p in parts)
    except ValueError as exc:
        raise ConfigError(f"--range {text!r}: {exc}") from None
    if a > b:
        raise ConfigError(f"--range {text!r}: IN is after OUT")
    return a, b


def _cmd_track(args) -> int:
    from s2v_toolkit.errors import MediaError
    from s2v_toolkit.faces import AnalysisParams, MaskParams, analyze_video
    from s2v_toolkit.media import probe
    from s2v_toolkit.values import parse_count

    parse_count(args.max_faces, "--max-faces", 1, 32)

    start = end = None
    if args.frame_range:
        info = probe(args.video)
        if info.video is None:
            raise MediaError(args.video, "has no video stream: nothing to track")
        start, end = parse_range(args.frame_range, info.video)
    analysis = analyze_video(args.video, start, end, params=AnalysisParams(max_faces=args.max_faces))
    if args.preview:
        from s2v_toolkit.faces.preview import write_preview

        write_preview(args.preview, args.video, analysis, MaskParams(include_jaw=args.jaw), overwrite=args.overwrite)
    if args.json:
        doc = analysis.to_dict(with_landmarks=args.landmarks)
        if args.preview:
            doc["preview"] = args.preview
        print_json(doc)
    else:
        print(analysis.summary())
        if args.preview:
            print(f"preview: {args.preview}")
    return 0


def _read_image(path: str):
    import cv2

    from s2v_toolkit.errors import MediaError

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(path, "cannot read this image (missing, or not PNG/JPEG/TIFF)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _cmd_speaker(args) -> int:
    from s2v_toolkit.errors import MediaError
    from s2v_toolkit.faces import (
        AnalysisParams,
        SpeakerParams,
        analyze_video,
        reference_descriptor,
        speaker_for_line,
    )
    from s2v_toolkit.media import probe, read_audio
    from s2v_toolkit.values import parse_count

    parse_count(args.max_faces, "--max-faces", 1, 32)

    info = probe(args.video)
    if info.video is None:
        raise MediaError(args.video, "has no video stream: nothing to track")
    start, end = parse_range(args.frame_range, info.video)
    reference = reference_descriptor(_read_image(args.reference)) if args.reference else None
    audio = None
    if not args.no_audio:
        fps = float(info.video.fps)
        src = args.audio or args.video
        if args.audio is None and not info.audio:
            raise MediaError(args.video, "has no audio stream: pass --audio FILE or --no-audio")
        t0 = 0.0 if args.audio else start / fps
        audio = read_audio(src, start=t0, duration=(end - start + 1) / fps, sample_rate=16000)
    analysis = analyze_video(args.video, start, end, params=AnalysisParams(max_faces=args.max_faces))
    params = SpeakerParams(network=not args.landmarks_only)
    choice = speaker_for_line(analysis, start, end, audio=audio, sample_rate=16000, reference=reference,
                              params=params)
    if args.json:
        print_json({"range": [start, end], **choice.to_dict(), "issues": [i.to_dict() for i in analysis.issues]})
    else:
        who = f"track {choice.track_id}" if choice.track_id is not None else "undecided"
        print(f"frames {start}-{end}: {who} (confidence {choice.confidence:.2f}): {choice.reason}")
        for c in choice.candidates:
            net = "" if c.network_z is None else f", network {c.network_z:.1f} sd (combined {c.combined_z:.1f} sd)"
            r = "none" if c.audio_correlation is None else f"{c.audio_correlation:.2f}"
            ref = "none" if c.reference_similarity is None else f"{c.reference_similarity:.2f}"
            print(f"  track {c.track_id}: coverage {c.coverage:.0%}, audio r={r}{net}, "
                  f"reference similarity {ref}, score {c.score:.2f}")
    return 0
