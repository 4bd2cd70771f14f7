"""Where the tracked mouth sits against a fresh fit, with and without the plain companions of widened
followers (``FaceLandmarkDetector(plain_every=...)``), side by side in one run.

    python bench/bench_face_mesh_drift.py VIDEO [VIDEO ...] [--every 5] [--out bench/results/face_mesh_drift.json]

For each video the faces are analysed twice, as ``analyze_video`` does (``analyze_frames`` over
``VideoFrames``): with the companions off (``plain_every=0``, the tracker before session 13) and on (the
default, 5). Then every ``--every``-th frame of every track is checked: the track's face is cut out in the
window a plain follower would use (3 face sizes across, 320 px) and fitted afresh by the IMAGE-mode
landmarker (a detection and a mesh, no tracking history); the fit nearest the window's centre is the
reference. Reported per run: the checks, those where the fresh fit finds no face, and how far the tracked
mouth (the mid-point of the inner lips) is from the fresh one, in face sizes (``landmarks.face_size``):
median and the number of checks off by more than 0.15 and 0.25; and the tracks, face-frames and frames
flagged as mouth occluded.

A fresh fit is not ground truth (on a face in profile it can be the one that is off, and the nearest
face to the centre can be a neighbour's), so the counts are a measure of disagreement, compared between
the two runs on the same frames; docs/faces.md ("A widened face turning back") shows what the
disagreements were on a real TV scene.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MOUTH = (13, 14)  # inner-lip mid-points (landmarks.INNER_LIP_MIDS)


def analyse(path: Path, plain_every: int):
    from s2v_toolkit.faces.analyze import AnalysisParams, VideoFrames, analyze_frames
    from s2v_toolkit.faces.detector import FaceLandmarkDetector
    from s2v_toolkit.media import probe

    info = probe(path)
    fps, n = float(info.video.fps), info.video.frame_count
    params = AnalysisParams()
    with FaceLandmarkDetector(None, max_faces=params.max_faces, video=True, fps=fps, plain_every=plain_every) as det:
        return analyze_frames(VideoFrames(path, 0, n - 1), fps, det, start=0, end=n - 1, params=params,
                              source=str(path), rotation=None)


def mouth_offsets(path: Path, analysis, every: int) -> list[float]:
    """Tracked mouth against a fresh IMAGE-mode fit, in face sizes (NaN where the fit finds no face)."""
    import cv2

    from s2v_toolkit.faces import landmarks as L
    from s2v_toolkit.faces.analyze import VideoFrames
    from s2v_toolkit.faces.detector import FaceLandmarkDetector, _run, _to_frame, _window_matrix

    wanted: dict[int, list[np.ndarray]] = {}
    for t in analysis.tracks:
        for i in range(0, len(t.frames), every):
            wanted.setdefault(int(t.frames[i]), []).append(t.landmarks[i])
    out = []
    with FaceLandmarkDetector(None, video=False) as fresh:
        for index, frame in VideoFrames(path, 0, max(wanted) if wanted else 0, rotation=analysis.rotation):
            for lm in wanted.get(index, []):
                box = L.landmark_box(lm)
                size = float(L.face_size(lm))
                side = 3.0 * max(size, box[2] - box[0], box[3] - box[1], 8.0)
                m = _window_matrix(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), side, 320)
                window = cv2.warpAffine(frame, m, (320, 320), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                fits = _run(fresh._tiles, window, None)
                if not fits:
                    out.append(float("nan"))
                    continue
                best = _to_frame(min(fits, key=lambda f: float(np.hypot(*(f[:, :2].mean(0) - 160)))), m)
                d = np.linalg.norm(best[list(MOUTH), :2].mean(0) - lm[list(MOUTH), :2].mean(0))
                out.append(float(d) / max(size, 1.0))
    return out


def summary(analysis, offsets: list[float]) -> dict:
    a = np.asarray(offsets, float)
    ok = a[np.isfinite(a)]
    return {"tracks": len(analysis.tracks), "face_frames": int(sum(len(t.frames) for t in analysis.tracks)),
            "occluded_frames": int(sum(int(o.occluded.sum()) for o in analysis.occlusion.values())),
            "checks": len(a), "no_fresh_face": int(np.isnan(a).sum()),
            "median_offset": round(float(np.median(ok)), 4) if len(ok) else None,
            "off_0.15": int((ok > 0.15).sum()), "off_0.25": int((ok > 0.25).sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--every", type=int, default=5, help="check every this many frames of each track")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "face_mesh_drift.json"))
    args = ap.parse_args()
    rows = []
    for video in args.videos:
        path = Path(video)
        for plain_every in (0, 5):
            analysis = analyse(path, plain_every)
            s = summary(analysis, mouth_offsets(path, analysis, args.every))
            rows.append({"video": path.name, "plain_every": plain_every, **s})
            print(f"{path.name} plain_every={plain_every}: {s}", flush=True)
    print("\nvideo | plain companions | tracks / face-frames | checks (no fresh face) | mouth off > 0.15 / > 0.25 "
          "face sizes | median | occluded frames")
    for r in rows:
        print(f"{r['video']} | {'on' if r['plain_every'] else 'off'} | {r['tracks']} / {r['face_frames']} | "
              f"{r['checks']} ({r['no_fresh_face']}) | {r['off_0.15']} / {r['off_0.25']} | {r['median_offset']} | "
              f"{r['occluded_frames']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python bench/bench_face_mesh_drift.py " + " ".join(sys.argv[1:]),
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
