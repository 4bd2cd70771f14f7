"""CPU benchmark of the face stage: our tracking + smoothing + mouth masks against mediapipe's
FaceLandmarker alone, in one run, on the same H.264 clips.

    python bench/bench_faces.py [--frames 100] [--repeat 3] [--out bench/results/cpu_faces.json]

Clips (made here in a temp folder with s2v_toolkit.media.write_video, preset h264, 25 fps): scikit-image's
astronaut photo (public domain) on a plain grey background, moving and zooming a little every frame:

* 1280x720 with a large face (~330 px wide), 1920x1080 with a large face (~500 px): both big enough
  for mediapipe's short-range face detector (which needs a face >= ~1/5 of the frame's longer side);
* 1920x1080 with a small face (~170 px): below that limit, where only our tiled search finds it.

Per clip, timed in the same run:

* decode: ``s2v_toolkit.media.VideoReader`` reading the whole clip (``frames``: one array a frame, decoded 16
  at a time, as analyze_video reads; until session 10 stacked 16-frame blocks, ~4 ms a frame slower at 1080p);
* peer: a mediapipe Tasks ``FaceLandmarker`` in VIDEO mode (the project's bundle, the options of
  ``s2v_toolkit.faces.detector``), one ``detect_for_video`` per frame on the decoded frames kept from the
  decode pass, landmarker creation included;
* ours, detector only: ``FaceLandmarkDetector`` (video mode) on the same decoded frames, for where the
  time goes (whole-frame landmarker + tiled search for small faces every 10 frames + zoomed followers);
* ours: ``s2v_toolkit.faces.analyze_video`` (decode + detection + tracking + One-Euro smoothing + identity
  descriptors, detector creation included) plus the mouth mask of every tracked face and frame
  (``mouth_mask_window``: the window the re-dub composites with; until session 10 a frame-sized
  ``mouth_mask``, ~1.5 ms more per frame at 1080p with 4 faces);
* ours as before: with the landmark calls one after the other and the tracking inline (before session 8),
  and with the landmarks read through mediapipe's public API (before session 9: one Python object per
  point) instead of from its C result struct.

"peer end-to-end" = decode time + peer time (the same work ours does: decode, then landmarks); the
ratio ours/peer is frames per second of ours over that. One warm-up of each measurement on the first
clip, then the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FPS = 25
BACKGROUND = (70, 70, 70)
# astronaut.png: the face is ~152 px wide (landmark face width) around (223, 130) in the 512x512 photo
PHOTO_FACE_PX = 152.0
PHOTO_FACE_CENTER = (223.0, 130.0)

CLIPS = [  # name, width, height, face width px at the first frame, faces
    ("720p_large_face", 1280, 720, 330.0, 1),
    ("1080p_large_face", 1920, 1080, 500.0, 1),
    ("1080p_small_face", 1920, 1080, 170.0, 1),
    ("1080p_4_faces", 1920, 1080, 260.0, 4),
]
# where the faces of a several-face clip start (fractions of width, height) and how far they drift
FOUR_FACES = ((0.22, 0.28), (0.70, 0.26), (0.28, 0.74), (0.76, 0.72))


def make_frames(width: int, height: int, face_px: float, n: int, faces: int = 1):
    """Frames of the astronaut photo translated across the frame and zoomed by up to 15 %; with
    ``faces=4``, four copies (faces ~``face_px`` wide, in the four quarters of the frame, each cut to
    its quarter) drifting by 4 % of the frame in different directions."""
    import cv2
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut())
    base = face_px / PHOTO_FACE_PX
    for k in range(n):
        t = k / max(n - 1, 1)
        scale = base * (1.0 + 0.15 * t)
        if faces == 1:
            # face centre moves from 40 % to 60 % of the width and 45 % to 52 % of the height
            centres = [(width * (0.40 + 0.20 * t), height * (0.45 + 0.07 * t))]
        else:
            centres = [(width * (fx + 0.04 * t * (-1) ** i), height * (fy + 0.03 * t * (-1) ** (i // 2)))
                       for i, (fx, fy) in enumerate(FOUR_FACES[:faces])]
        out = np.empty((height, width, 3), np.uint8)
        out[:] = BACKGROUND
        for i, (cx, cy) in enumerate(centres):
            m = np.array([[scale, 0, cx - scale * PHOTO_FACE_CENTER[0]],
                          [0, scale, cy - scale * PHOTO_FACE_CENTER[1]]], np.float64)
            layer = cv2.warpAffine(photo, m, (width, height), flags=cv2.INTER_LINEAR, borderValue=BACKGROUND)
            if faces == 1:
                out = layer
                continue
            # each copy stays in its quarter of the frame (no copy covers another's face)
            x0, y0 = (i % 2) * (width // 2), (i // 2) * (height // 2)
            out[y0:y0 + height // 2, x0:x0 + width // 2] = layer[y0:y0 + height // 2, x0:x0 + width // 2]
        yield out


def write_clip(folder: Path, name: str, width: int, height: int, face_px: float, n: int, faces: int = 1) -> Path:
    from s2v_toolkit.media import write_video

    return write_video(folder / f"{name}.mp4", make_frames(width, height, face_px, n, faces), Fraction(FPS),
                       preset="h264", frame_count=n)


def decode(path: Path) -> tuple[float, list[np.ndarray]]:
    from s2v_toolkit.media import VideoReader

    t0 = time.perf_counter()
    frames = []
    with VideoReader(path) as reader:
        frames.extend(reader.frames(0, reader.info.video.frame_count))
    return time.perf_counter() - t0, frames


def peer(frames: list[np.ndarray]) -> tuple[float, int, int]:
    """mediapipe FaceLandmarker, VIDEO mode, alone: seconds, frames with at least one face, faces found
    (summed over frames)."""
    import mediapipe as mp
    from mediapipe.tasks import python as mp_tasks
    from mediapipe.tasks.python import vision

    from s2v_toolkit.faces import ensure_landmarker_bundle

    t0 = time.perf_counter()
    options = vision.FaceLandmarkerOptions(
        base_options=mp_tasks.BaseOptions(model_asset_path=os.fspath(ensure_landmarker_bundle())),
        running_mode=vision.RunningMode.VIDEO, num_faces=4, min_face_detection_confidence=0.5,
        min_face_presence_confidence=0.5, min_tracking_confidence=0.5,
        output_face_blendshapes=False, output_facial_transformation_matrixes=False)
    found = faces = 0
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        for i, frame in enumerate(frames):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
            result = landmarker.detect_for_video(image, int(round(i * 1000 / FPS)))
            found += bool(result.face_landmarks)
            faces += len(result.face_landmarks)
    return time.perf_counter() - t0, found, faces


def ours_detector(frames: list[np.ndarray], workers: int | None = None) -> float:
    """Our FaceLandmarkDetector alone (whole-frame landmarker + tiled search + zoomed followers) on the
    decoded frames: where ours spends its time beyond the peer's landmarker. ``workers=1``: its landmark
    calls one after the other (as before they ran on threads), for the side-by-side ratio."""
    from s2v_toolkit.faces import FaceLandmarkDetector

    t0 = time.perf_counter()
    with FaceLandmarkDetector(video=True, fps=FPS, workers=workers) as det:
        for i, frame in enumerate(frames):
            det.detect(frame, i)
    return time.perf_counter() - t0


def first_frames(path: Path, tries: int = 5, later: int = 12) -> dict:
    """A shot's start, ``tries`` times with a fresh detector each: the detector's creation, its first
    frame (the whole-frame landmarker, the tiled and widened searches, a follower made and confirmed for
    each face found) and the median of the next ``later`` frames, in ms (medians over the tries)."""
    from s2v_toolkit.faces import FaceLandmarkDetector
    from s2v_toolkit.media import VideoReader

    with VideoReader(path) as reader:
        frames = list(reader.frames(0, later + 1))
    made, first, rest, faces = [], [], [], set()
    for _ in range(tries):
        t0 = time.perf_counter()
        det = FaceLandmarkDetector(video=True, fps=FPS)
        t1 = time.perf_counter()
        try:
            faces.add(len(det.detect(frames[0], 0)))
            t2 = time.perf_counter()
            each = []
            for i, frame in enumerate(frames[1:], 1):
                t = time.perf_counter()
                det.detect(frame, i)
                each.append(time.perf_counter() - t)
        finally:
            det.close()
        made.append(t1 - t0)
        first.append(t2 - t1)
        rest.append(statistics.median(each))
    return {"create_ms": 1000 * statistics.median(made), "first_frame_ms": 1000 * statistics.median(first),
            "later_frame_ms": 1000 * statistics.median(rest), "faces_first_frame": sorted(faces)}


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (mediapipe's, the decode thread): independent of other jobs'
    load, unlike the wall time."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def public_landmark_api():
    """The landmarks read through mediapipe's public API (one Python object per point, as before session 9)
    instead of from its C result struct (``faces.detector._landmark_arrays``)."""
    from s2v_toolkit.faces import detector

    saved = detector._landmark_arrays
    detector._landmark_arrays = lambda *args: None
    try:
        yield
    finally:
        detector._landmark_arrays = saved


def ours(path: Path, threads: bool = True, c_result: bool = True) -> tuple[float, dict]:
    """analyze_video + a mouth mask for every tracked frame: seconds and what was found (``threads=False``:
    the landmark calls one after the other and the tracking inline, as before session 8;
    ``c_result=False``: the landmarks through mediapipe's public API, as before session 9)."""
    from s2v_toolkit.faces import AnalysisParams, analyze_video, face_size, mouth_mask_window

    c0 = _cpu_seconds()
    t0 = time.perf_counter()
    params = AnalysisParams() if threads else AnalysisParams(landmark_workers=1, tracking_thread=False)
    with contextlib.nullcontext() if c_result else public_landmark_api():
        analysis = analyze_video(path, params=params)
    shape = (analysis.height, analysis.width)
    masks = 0
    for track in analysis.tracks:
        for f in track.frames:
            # the window the re-dub composites with (pipelines/redub.py), not a frame-sized array
            mask, (x0, y0) = mouth_mask_window(shape, track.landmarks_at(int(f)))
            assert mask.size and x0 + mask.shape[1] <= shape[1] and y0 + mask.shape[0] <= shape[0]
            masks += 1
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - c0
    tracked = np.zeros(analysis.end - analysis.start + 1, bool)
    widths = []
    for track in analysis.tracks:
        tracked[track.frames - analysis.start] = True
        widths += [float(face_size(lm)) for lm in track.best_landmarks()]
    return seconds, {"tracks": len(analysis.tracks), "frames": len(tracked), "frames_with_face": int(tracked.sum()),
                     "masks": masks,
                     "cpu_seconds": round(cpu, 4),
                     "face_px": round(float(np.median(widths)), 1) if widths else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all): "
                    + ", ".join(c[0] for c in CLIPS))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cpu_faces.json"))
    args = ap.parse_args()

    import cv2
    import mediapipe

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_faces_") as tmp:
        wanted = {c for c in args.clips.split(",") if c}
        unknown = wanted - {c[0] for c in CLIPS}
        if unknown:
            ap.error(f"unknown clip(s): {', '.join(sorted(unknown))}")
        clips = [(name, w, h, face, write_clip(Path(tmp), name, w, h, face, args.frames, nf))
                 for name, w, h, face, nf in CLIPS if not wanted or name in wanted]
        # warm-up: imports, model file, TFLite/XNNPACK initialisation, page cache of the clip
        _, frames = decode(clips[0][4])
        peer(frames[:20])
        ours_detector(frames[:20])
        ours(clips[0][4])
        for name, w, h, face, path in clips:
            nf = next(c[4] for c in CLIPS if c[0] == name)
            runs = {"decode": [], "peer": [], "ours_detector": [], "ours_detector_sequential": [], "ours": [],
                    "ours_no_threads": [], "ours_public_api": [], "ours_cpu": [], "ours_public_api_cpu": []}
            for _ in range(args.repeat):
                seconds, frames = decode(path)
                runs["decode"].append(seconds)
                seconds, peer_found, peer_faces = peer(frames)
                runs["peer"].append(seconds)
                runs["ours_detector"].append(ours_detector(frames))
                runs["ours_detector_sequential"].append(ours_detector(frames, workers=1))
                del frames
                seconds, found = ours(path)
                runs["ours"].append(seconds)
                runs["ours_no_threads"].append(ours(path, threads=False)[0])
                seconds, public = ours(path, c_result=False)
                runs["ours_public_api"].append(seconds)
                runs["ours_public_api_cpu"].append(public["cpu_seconds"])
                runs["ours_cpu"].append(found["cpu_seconds"])
            n = args.frames
            med = {k: statistics.median(v) for k, v in runs.items()}
            row = {
                "clip": name, "width": w, "height": h, "frames": n, "face_px_requested": face,
                "seconds": {k: [round(s, 4) for s in v] for k, v in runs.items()},
                "fps_decode": n / med["decode"],
                "fps_peer_detect_only": n / med["peer"],
                "fps_peer_end_to_end": n / (med["decode"] + med["peer"]),
                "fps_ours_detector_only": n / med["ours_detector"],
                "fps_ours_detector_sequential": n / med["ours_detector_sequential"],
                "fps_ours": n / med["ours"],
                "fps_ours_no_threads": n / med["ours_no_threads"],
                "fps_ours_public_api": n / med["ours_public_api"],
                "cpu_ms_per_frame_ours": 1000 * med["ours_cpu"] / n,
                "cpu_ms_per_frame_ours_public_api": 1000 * med["ours_public_api_cpu"] / n,
                "faces_in_clip": nf,
                "peer_frames_with_face": peer_found,
                "peer_faces_per_frame": peer_faces / n,
                "ours_faces_per_frame": found["masks"] / n,
                "ours": found,
            }
            row["ratio_ours_over_peer_end_to_end"] = row["fps_ours"] / row["fps_peer_end_to_end"]
            row["ratio_ours_over_peer_detect_only"] = row["fps_ours"] / row["fps_peer_detect_only"]
            row["real_time_24fps"] = row["fps_ours"] >= 24.0
            rows.append(row)
            print(f"{name}: decode {row['fps_decode']:.1f} fps, peer {row['fps_peer_detect_only']:.1f} fps "
                  f"(+decode {row['fps_peer_end_to_end']:.1f}), ours {row['fps_ours']:.1f} fps", flush=True)
    load_after = os.getloadavg()

    print()
    header = ("clip", "face px", "decode fps", "peer fps", "peer+decode fps", "our detector fps",
              "our detector, calls one after the other, fps", "ours fps",
              "ours, no threads (landmark calls in turn, tracking inline), fps",
              "ours, landmarks through mediapipe's public API, fps",
              "ours CPU ms/frame (public API)",
              "ours/peer+decode",
              "frames with a face peer / ours", "faces per frame (of) peer / ours", ">= 24 fps")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join([
            f"{r['width']}x{r['height']}", str(r["ours"]["face_px"]), f"{r['fps_decode']:.1f}",
            f"{r['fps_peer_detect_only']:.1f}", f"{r['fps_peer_end_to_end']:.1f}",
            f"{r['fps_ours_detector_only']:.1f}", f"{r['fps_ours_detector_sequential']:.1f}", f"{r['fps_ours']:.1f}",
            f"{r['fps_ours_no_threads']:.1f}", f"{r['fps_ours_public_api']:.1f}",
            f"{r['cpu_ms_per_frame_ours']:.1f} ({r['cpu_ms_per_frame_ours_public_api']:.1f})",
            f"{r['ratio_ours_over_peer_end_to_end']:.2f}x",
            f"{r['peer_frames_with_face']}/{r['frames']} / {r['ours']['frames_with_face']}/{r['frames']}",
            f"({r['faces_in_clip']}) {r['peer_faces_per_frame']:.2f} / {r['ours_faces_per_frame']:.2f}",
            "yes" if r["real_time_24fps"] else "no"]))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")

    record = {
        "command": "python bench/bench_faces.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "mediapipe": mediapipe.__version__,
                    "opencv": cv2.__version__,
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after]},
        "frames": args.frames, "repeat": args.repeat, "fps": FPS,
        "results": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
