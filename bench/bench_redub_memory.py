"""Peak RAM of a tiny-model re-dub of a 30 s and a 120 s 1080p shot, side by side in one run (issue 16).

    python bench/bench_redub_memory.py [--seconds 30 120] [--crop 512] [--line-seconds 4]
                                       [--baseline-seconds 10] [--out bench/results/cpu_redub_memory.json]

The re-dub streams the shot through a window (decode -> crop -> generate -> composite -> encode): its
peak resident memory must not grow with the shot. Each re-dub runs in its own subprocess, which reports
its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``: Python, torch, the tiny model and the re-dub).

Media (made here, in ``--workdir``, cheaply): 1920x1080 at 25 fps, H.264 ultrafast 4:2:0, written
straight from Y'CbCr planes: a grey-blue gradient with scikit-image's astronaut (public domain) face,
2.5x, drifting a few pixels per frame. Its landmarks are known (the synthetic face fitted to the
astronaut, as in tests/pipelines/test_redub_shot.py), so the face analysis uses a scripted detector
instead of mediapipe (what is measured is the re-dub, not the landmarker). The line: ``--line-seconds``
of a speech-like tone, starting in the middle of the shot. Output: FFV1 .mkv (lossless, the source's
pix_fmt). Settings: the default crop (512), clip (80 frames) and motion context (73 frames), 2 steps.

``--baseline-seconds``: also run the old in-memory path (the whole shot decoded into one array, then
``redub_frames`` and ``write_video``) on shots of those lengths, for comparison: its peak grows with the
shot (about 6 MB per 1080p frame, twice: the frames and their copy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

FPS = Fraction(25)
W, H = 1920, 1080
SCALE = 2.5
ASTRONAUT_POSE = dict(center=(223.6, 129.4), width=93.5, angle_deg=3.3)


def _face_layers():
    """Background and face patch (RGB and yuv420p planes), the face's landmarks at offset (0, 0)."""
    import cv2
    import numpy as np
    from skimage import data

    from s2v_toolkit.faces.synthetic import posed_face
    from s2v_toolkit.media import ColourInfo, from_rgb

    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    bg = np.stack([60 + 40 * x / W, 80 + 30 * y / H, 120 + 20 * (x + y) / (W + H)], -1).astype(np.uint8)
    astro = cv2.resize(np.ascontiguousarray(data.astronaut()), None, fx=SCALE, fy=SCALE,
                       interpolation=cv2.INTER_CUBIC)[:1000, 120:1160]
    lm = posed_face(**ASTRONAUT_POSE, mouth_open=0.15)
    lm[:, :2] = lm[:, :2] * SCALE - [120, 0]
    lm[:, 2] *= SCALE
    tags = ColourInfo("bt709", "bt709", "bt709", "tv")
    return bg, astro, lm, from_rgb(bg, "yuv420p", tags), from_rgb(astro, "yuv420p", tags)


def _offset(k: int) -> tuple[int, int]:
    """The face's top-left corner at frame k (even, so 4:2:0 chroma pastes exactly)."""
    import math

    return 2 * int(220 + 60 * math.sin(k / 40.0)), 2 * int(20 + 10 * math.cos(k / 55.0))


def make_shot(path: Path, seconds: int) -> Path:
    import av

    from s2v_toolkit.media import to_av

    _, _, _, bgp, facep = _face_layers()
    n = int(seconds * FPS)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="matroska") as c:
        s = c.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "23"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for k in range(n):
            ox, oy = _offset(k)
            frame = bgp.copy()
            for p, fp, sub in zip(frame.planes, facep.planes, (1, 2, 2)):
                p[oy // sub:oy // sub + fp.shape[0], ox // sub:ox // sub + fp.shape[1]] = fp
            f = to_av(frame)
            f.pts = k
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    os.replace(tmp, path)
    return path


def make_line(path: Path, seconds: float) -> Path:
    import numpy as np
    import soundfile as sf

    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    sf.write(path, wave.astype(np.float32), rate)
    return path


class ScriptedDetector:
    def __init__(self, landmarks):
        self.landmarks = landmarks

    def detect(self, frame, index):
        from s2v_toolkit.faces import FaceObservation

        ox, oy = _offset(index)
        lm = self.landmarks.copy()
        lm[:, 0] += ox
        lm[:, 1] += oy
        return [FaceObservation(lm)]


def child(video: Path, line: Path, out: Path, crop: int, in_memory: bool) -> dict:
    """One re-dub in this process; returns its own peak RSS."""
    import numpy as np

    from s2v_toolkit.faces import analyze_frames
    from s2v_toolkit.media import probe, read_audio, write_video
    from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
    from s2v_toolkit.pipelines.redub import (
        DEFAULT_REDUB_PROMPT,
        AUDIO_RATE,
        RedubSettings,
        place_line,
        redub_frames,
        redub_video,
    )
    from s2v_toolkit.pipelines.redub_crop import plan_face_crops
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    t0 = time.perf_counter()
    n = probe(video).video.frame_count
    bg, astro, lm, _, _ = _face_layers()

    def rgb_frames():  # the same pictures as the file (before H.264), for the face descriptors
        for k in range(n):
            ox, oy = _offset(k)
            f = bg.copy()
            f[oy:oy + astro.shape[0], ox:ox + astro.shape[1]] = astro
            yield k, f

    analysis = analyze_frames(rgb_frames(), float(FPS), ScriptedDetector(lm), start=0, end=n - 1)
    generator = load_generator(tiny=True, device="cpu")
    settings = RedubSettings(crop_size=crop, generation=GenerationSettings(steps=2, seed=0,
                                                                           prompt=DEFAULT_REDUB_PROMPT))
    line_start = n // 2
    if in_memory:  # the old path: the whole shot in one array
        from s2v_toolkit.media import VideoReader

        with VideoReader(video) as reader:
            frames = reader.read(0, n)
        audio = read_audio(line, sample_rate=AUDIO_RATE)
        timing = place_line(0, n - 1, line_start, len(audio) / AUDIO_RATE, FPS)
        plan = plan_face_crops(analysis.tracks[0], 0, n - 1, crop, settings.face_fraction)
        result, report = redub_frames(frames, timing, audio, plan, generator, settings)
        write_video(out, result, FPS, overwrite=True)
        generated = report.status.count("generated")
    else:
        doc = redub_video(video, line, out, generator=generator, settings=settings, line_start=line_start,
                          analysis=analysis, overwrite=True)
        generated = sum(f["status"] == "generated" for f in doc["report"]["frames"])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"frames": n, "generated": generated, "peak_rss_mb": round(peak_kb / 1024, 1),
            "seconds": round(time.perf_counter() - t0, 1), "in_memory": in_memory,
            "output_frames": probe(out).video.frame_count, "output_pix_fmt": probe(out).video.pix_fmt}


def run_child(video: Path, line: Path, out: Path, crop: int, in_memory: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", str(video), str(line), str(out), "--crop", str(crop)]
    if in_memory:
        cmd.append("--in-memory")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"child failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, nargs="+", default=[30, 120])
    p.add_argument("--baseline-seconds", type=int, nargs="*", default=[])
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--line-seconds", type=float, default=4.0)
    p.add_argument("--workdir", type=Path, default=Path("bench_out/redub_memory"))
    p.add_argument("--out", type=Path, default=None, help="write the JSON results here")
    p.add_argument("--child", nargs=3, type=Path, metavar=("VIDEO", "LINE", "OUT"), help=argparse.SUPPRESS)
    p.add_argument("--in-memory", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.crop, args.in_memory)))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    line = make_line(args.workdir / "line.wav", args.line_seconds)
    runs = []
    for seconds, in_memory in [(s, False) for s in args.seconds] + [(s, True) for s in args.baseline_seconds]:
        video = args.workdir / f"shot_{seconds}s_1080p.mkv"
        if not video.exists():
            t = time.perf_counter()
            make_shot(video, seconds)
            print(f"made {video} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        out = args.workdir / f"redub_{seconds}s{'_in_memory' if in_memory else ''}.mkv"
        result = {"shot_seconds": seconds, **run_child(video, line, out, args.crop, in_memory)}
        runs.append(result)
        print(json.dumps(result), file=sys.stderr)
        out.unlink(missing_ok=True)
    streamed = [r for r in runs if not r["in_memory"]]
    report = {"benchmark": "bench_redub_memory", "crop": args.crop, "line_seconds": args.line_seconds,
              "frame": f"{W}x{H}", "fps": str(FPS), "machine": platform.platform(),
              "cpus": os.cpu_count(), "runs": runs}
    if len(streamed) >= 2:
        report["peak_ratio_longest_over_shortest"] = round(streamed[-1]["peak_rss_mb"] / streamed[0]["peak_rss_mb"], 3)
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
