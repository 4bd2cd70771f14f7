"""``s2vt probe``, ``s2vt frames``, ``s2vt convert``: media inspection and conversion."""

from __future__ import annotations

from s2v_toolkit.commands import print_json

PRESET_NAMES = ("h264", "prores_hq", "dnxhr_hq", "ffv1", "prores_4444", "dnxhr_hqx", "dnxhr_444", "dpx", "exr")


def register(sub) -> None:
    p = sub.add_parser("probe", help="show a media file's streams, rate, frame count and timecode")
    p.add_argument("media", nargs="+", help="video or audio file(s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_probe)

    p = sub.add_parser("frames", help="export a frame range of a video as PNG images")
    p.add_argument("media", help="video file")
    p.add_argument("--start", type=int, default=0, help="first frame index (0 = first frame of the file)")
    p.add_argument("--count", type=int, default=1, help="number of frames (default 1)")
    p.add_argument("-o", "--out", required=True, help="output folder (created if missing)")
    p.add_argument("--as-stored", action="store_true",
                   help="frames as stored, not turned upright by the file's display matrix (phone video)")
    p.set_defaults(func=_cmd_frames)

    p = sub.add_parser("convert", help="re-encode a video (e.g. to ProRes 422 HQ) keeping rate, timecode and audio")
    p.add_argument("src", help="input video")
    p.add_argument("dst", help="output file (.mov, .mp4, .mxf); never the input itself")
    p.add_argument("--codec", choices=PRESET_NAMES, default=None,
                   help="codec preset (default from the extension: .mov prores_hq, .mp4 h264, .mxf dnxhr_hqx, "
                        ".mkv ffv1, .dpx dpx, .exr exr)")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it already exists")
    p.add_argument("--cfr", action="store_true",
                   help="make a variable-rate source constant: frames placed by time on the probed rate's grid, "
                        "duplicated or dropped where needed (counts are reported)")
    p.add_argument("--rate", default=None, help="with --cfr: the output rate (e.g. 25, 30000/1001; default probed)")
    p.set_defaults(func=_cmd_convert)


def _cmd_probe(args) -> int:
    from s2v_toolkit.media import probe

    infos = [probe(m) for m in args.media]
    if args.json:
        print_json([i.to_dict() for i in infos] if len(infos) > 1 else infos[0].to_dict())
    else:
        print("\n\n".join(i.summary() for i in infos))
    return 0


def _cmd_frames(args) -> int:
    from s2v_toolkit.media import export_frames_png
    from s2v_toolkit.values import parse_count

    parse_count(args.start, "--start", minimum=0)
    parse_count(args.count, "--count", minimum=1)
    paths, fmap = export_frames_png(args.media, args.start, args.count, args.out, with_map=True,
                                    upright=not args.as_stored)
    print(f"wrote {len(paths)} frame(s) to {args.out}")
    dup, sub = fmap.indexes("duplicated"), fmap.indexes("substituted")
    if dup or fmap.dropped:
        print(f"variable-rate source: frame(s) {_ranges(dup) or 'none'} repeat the previous source frame; "
              f"{len(fmap.dropped)} source frame(s) in this range fall between grid frames and are not shown")
    if sub:
        print(f"damaged: frame(s) {_ranges(sub)} show the nearest good frame (see warnings)")
    return 0


def _ranges(frames: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _cmd_convert(args) -> int:
    from s2v_toolkit.media import convert_report

    report = convert_report(args.src, args.dst, preset=args.codec, overwrite=args.overwrite, progress=True,
                            cfr=args.cfr, rate=args.rate)
    print(report.info.summary())
    if args.cfr or args.rate:
        print(f"constant rate: {report.summary()}")
    for w in report.warnings:
        print(f"warning: {w}")
    return 0
