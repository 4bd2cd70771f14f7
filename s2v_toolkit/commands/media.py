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
    p.set_defaults(func=_cmd_frames)

    p = sub.add_parser("convert", help="re-encode a video (e.g. to ProRes 422 HQ) keeping rate, timecode and audio")
    p.add_argument("src", help="input video")
    p.add_argument("dst", help="output file (.mov, .mp4, .mxf); never the input itself")
    p.add_argument("--codec", choices=PRESET_NAMES, default=None,
                   help="codec preset (default from the extension: .mov prores_hq, .mp4 h264, .mxf dnxhr_hqx, "
                        ".mkv ffv1, .dpx dpx, .exr exr)")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it already exists")
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

    paths = export_frames_png(args.media, args.start, args.count, args.out)
    print(f"wrote {len(paths)} frame(s) to {args.out}")
    return 0


def _cmd_convert(args) -> int:
    from s2v_toolkit.media import convert

    info = convert(args.src, args.dst, preset=args.codec, overwrite=args.overwrite, progress=True)
    print(info.summary())
    return 0
