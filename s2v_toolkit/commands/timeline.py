"""``s2vt inspect``, ``s2vt shots``, ``s2vt extract-dialogue``, ``s2vt conform-timeline``: editors' timelines."""

from __future__ import annotations

import argparse

from s2v_toolkit.commands import print_json


def _rate(text: str) -> float:
    from s2v_toolkit.timeline.timecode import parse_rate

    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p) -> None:
    p.add_argument("timeline", help="timeline file: .otio, .otioz, .xml (FCP 7 / Premiere / Resolve), "
                                    ".fcpxml, .aaf, .edl")
    media_options(p)


def media_options(p) -> None:
    """``--search DIR`` and ``--rate R``: how a timeline's media is found and an EDL's rate (shared by
    every command that reads a timeline)."""
    p.add_argument("--search", action="append", default=[], metavar="DIR",
                   help="folder to look for media in (repeatable; searched by path tail, then by file name)")
    p.add_argument("--rate", type=_rate, default=None,
                   help="frame rate of an EDL (EDLs do not carry it), e.g. 23.976, 25, 29.97")


def register(sub) -> None:
    p = sub.add_parser("inspect", help="list a timeline's tracks, clips (record/source timecode), media and markers")
    _common(p)
    p.add_argument("--json", action="store_true", help="print the documented JSON (docs/timeline.md)")
    p.add_argument("--no-probe", action="store_true", help="do not open media files to check their length")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("shots", help="which video clip is on top at each record time, with its source frames")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_shots)

    p = sub.add_parser("extract-dialogue",
                       help="render dialogue tracks to 16 kHz mono WAV at record time, with a sample->clip map")
    _common(p)
    p.add_argument("-o", "--out", required=True, help="output folder (created if missing)")
    p.add_argument("--track", action="append", default=None, metavar="SEL",
                   help="audio track id (A2) or name pattern (DX*); repeatable. Default: tracks with a "
                        "dialogue role (FCPXML) or a dialogue name (Dialog, DX, VO, Voice, Sync, Interview, "
                        "Kommentar, O-Ton, Dialogo, Parole, 台词...), else the tracks with the most measured speech")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--allow-missing-media", action="store_true",
                   help="accept silence where a clip's media is not found (default: exit 2 naming each clip)")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("conform-timeline", help="put rendered clips on a new 'S2V vNNN' track, written as new files")
    _common(p)
    p.add_argument("renders", help="JSON list of renders: {media_path, clip_id | record, character, job_id, ...}")
    p.add_argument("-o", "--out", default=None, help="output folder (default: beside the timeline)")
    p.add_argument("--version", type=int, default=None, help="version number (default: next free one)")
    p.add_argument("--otio-only", action="store_true", help="write only the .otio, not the input's own format")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--diff", action="store_true",
                   help="print the structural difference between the input and each written file "
                        "(tracks, clips, markers added or changed)")
    p.set_defaults(func=_cmd_conform)


def quiet_read(path, rate=None):
    """read_timeline with anything a format library print()s sent to stderr: stdout carries only
    what the command prints (``--json``: only the JSON)."""
    import contextlib
    import sys

    from s2v_toolkit.timeline import read_timeline

    with contextlib.redirect_stdout(sys.stderr):
        return read_timeline(path, rate=rate)


def conform_diffs(timeline, outputs: dict, rate=None) -> dict:
    """Structural difference (timeline.diff) between the input and each written file, by format."""
    import contextlib
    import sys

    from s2v_toolkit.timeline.diff import diff_files

    with contextlib.redirect_stdout(sys.stderr):
        return {a: diff_files(timeline, p, rate=rate) for a, p in outputs.items()}


def _load(args, check_media: bool = True):
    import contextlib
    import sys

    from s2v_toolkit.timeline import describe_timeline

    loaded = quiet_read(args.timeline, rate=args.rate)
    with contextlib.redirect_stdout(sys.stderr):
        desc = describe_timeline(loaded, search_dirs=args.search, check_media=check_media)
    return loaded, desc


def _cmd_inspect(args) -> int:
    _, desc = _load(args, check_media=not args.no_probe)
    if args.json:
        print_json(desc.to_dict())
        return 0
    print(format_description(desc))
    return 0


def format_description(desc) -> str:
    from s2v_toolkit.timeline.timecode import rate_string

    d = desc.to_dict()
    lines = [f"Timeline '{desc.name}'  ({desc.adapter}, {rate_string(desc.rate)} fps"
             f"{' DF' if desc.drop_frame else ''}, start {d['global_start']['timecode']}, "
             f"duration {d['duration']['timecode']})"]
    clips = {c["id"]: c for c in d["clips"]}
    for t in d["tracks"]:
        state = "enabled" if t["enabled"] else "DISABLED"
        dia = f"  dialogue ({t['dialogue_reason']})" if t["dialogue"] else ""
        lines.append(f"{t['id']:<4} {t['kind']:<6} '{t['name']}'  {state}  {len(t['clip_ids'])} clip(s){dia}")
        for cid in t["clip_ids"]:
            c = clips[cid]
            m = c["media"]
            where = m["path"] or m["url"] or "-"
            flags = "" if c["active"] else "  [disabled]"
            if c["speed"] != 1.0:
                flags += f"  [speed {c['speed']:g}x]"
            # a retimed clip shows the source it really uses (speed applied)
            src = c["media_range"] if c["speed"] not in (1.0, 0.0) and "tc_in" in c["media_range"] else c["source"]
            lines.append(f"  {cid:<8} {c['name'][:28]:<28} rec {c['record']['tc_in']}-{c['record']['tc_out']}"
                         f"  src {src['tc_in']}-{src['tc_out']}  {m['status']:<8} {where}{flags}")
            for mk in c["markers"]:
                lines.append(f"           marker '{mk['name']}' at {mk['record']['tc_in']}")
    for mk in d["markers"]:
        lines.append(f"marker ({mk['owner']}) '{mk['name']}' at {mk['record']['tc_in']}")
    for note in d["notes"]:
        lines.append(f"note: {note}")
    if d["problems"]:
        lines.append(f"{len(d['problems'])} problem(s):")
        lines.extend(f"  {p}" for p in d["problems"])
    return "\n".join(lines)


def _cmd_shots(args) -> int:
    from s2v_toolkit.timeline import shot_map

    _, desc = _load(args, check_media=False)
    segments = shot_map(desc)
    if args.json:
        print_json([s.to_dict() for s in segments])
        return 0
    for s in segments:
        rec = s.record.to_otio()
        print(f"{desc.record_timecode(rec.start_time)}-{desc.record_timecode(rec.end_time_exclusive())}  "
              f"{s.clip_id:<8} {s.clip_name[:30]:<30} source frames {s.source.frames()[0]:g}+"
              f"{s.source.frames()[1]:g}  {s.media_path or '(media not found)'}"
              + (f"  [unknown picture: {s.reason}]" if s.kind == "unknown" else ""))
    return 0


def _cmd_extract(args) -> int:
    import json
    from pathlib import Path

    import soundfile

    from s2v_toolkit.media import atomic_output, ensure_output_dir
    from s2v_toolkit.timeline import extract_dialogue

    _, desc = _load(args, check_media=False)
    out = ensure_output_dir(args.out)
    tracks = extract_dialogue(desc, args.track, allow_missing_media=args.allow_missing_media)
    doc = {"timeline": desc.path, "rate": desc.rate, "tracks": []}
    for t in tracks:
        from s2v_toolkit.safety import confined, safe_component

        safe = safe_component(t.track_name, "", max_len=60) if t.track_name else ""
        # track names come from the editor's file: sanitised and kept inside the output folder
        wav = confined(out, f"{safe_component(t.track_id, 'track')}{'_' + safe if safe else ''}.wav")
        with atomic_output(wav, overwrite=args.overwrite) as tmp:
            soundfile.write(str(tmp), t.signal, t.sample_rate, subtype="FLOAT", format="WAV")
        doc["tracks"].append({**t.to_dict(), "wav": wav.name})
        print(f"{t.track_id} '{t.track_name}': {len(t.segments)} clip(s), {t.signal.shape[0] / t.sample_rate:.2f}s"
              f" -> {wav}" + (f"  [dialogue: {t.reason}]" if t.reason else ""))
        for p in t.problems:
            print(f"  {p}")
    index = Path(out) / "dialogue.json"
    with atomic_output(index, overwrite=args.overwrite) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2))
    return 0


def _cmd_conform(args) -> int:
    import json
    from pathlib import Path

    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.timeline import RenderResult, conform

    try:
        data = json.loads(Path(args.renders).read_text())
        if isinstance(data, dict):
            data = data.get("renders", [])
        renders = [RenderResult.from_dict(r) for r in data]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{args.renders}: not a renders list ({exc})") from None
    import contextlib
    import sys

    from s2v_toolkit.media import atomic_group

    loaded = quiet_read(args.timeline, rate=args.rate)
    with contextlib.redirect_stdout(sys.stderr), \
            atomic_group(args.out if args.out is not None else loaded.path.parent):  # all formats or none
        result = conform(loaded, renders, args.out, version=args.version, native=not args.otio_only)
    diffs = conform_diffs(args.timeline, result.outputs, rate=args.rate) if args.diff else {}
    if args.json:
        doc = result.to_dict()
        if args.diff:
            doc["diff"] = diffs
        print_json(doc)
        return 0
    for adapter, lines in diffs.items():
        print(f"diff {args.timeline} -> {result.outputs[adapter]} ({adapter}): {len(lines)} change(s)")
        for line in lines:
            print(f"  {line}")
    for adapter, path in result.outputs.items():
        print(f"wrote {path} ({adapter})")
    print(f"{len(result.placed)} render(s) on track(s) {', '.join(result.track_names) or '(none)'}")
    for line in result.not_carried:
        print(f"not carried: {line}")
    for line in result.problems:
        print(f"skipped: {line}")
    return 0 if not result.problems else 1
