"""How many frames the mouth-occlusion rule flags on real clips: per clip and track, flagged frames and
their ranges, the largest score, whether the whole lip ring or the corners led, and the runs left unjudged
because the face was turned past ``OcclusionParams.max_turn_deg`` (``turned_ranges``).

    python bench/bench_occlusion_survey.py DIR [DIR ...] [--out bench/results/occlusion_survey.json]

Every video file directly in each DIR is analysed (``analyze_video``); nothing else is known about the
clips here, so which flags are right is for a look at the frames (docs/faces.md, Mouth occlusion).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VIDEO = {".mp4", ".mov", ".mkv", ".avi", ".mxf", ".webm"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "occlusion_survey.json"))
    args = ap.parse_args()
    from s2v_toolkit.faces import analyze_video

    rows = []
    for folder in args.folders:
        for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO):
            try:
                analysis = analyze_video(path)
            except Exception as exc:  # a survey: one bad file is a row, not the end
                rows.append({"folder": folder, "clip": path.name, "error": str(exc)})
                continue
            tracks = []
            for t in analysis.tracks:
                occ = analysis.occlusion[t.track_id]
                led = occ.region_scores[occ.occluded] if occ.region_scores is not None else np.zeros((0, 2))
                tracks.append({"track": t.track_id, "frames": len(t.frames), "flagged": int(occ.occluded.sum()),
                               "ranges": [list(r) for r in occ.ranges],
                               "turned_ranges": [list(r) for r in occ.turned_ranges],
                               "corner_led": int((led[:, 1] > led[:, 0]).sum()),
                               "max_score": round(float(np.nanmax(occ.scores)), 2) if len(occ.scores) else None})
            rows.append({"folder": folder, "clip": path.name, "tracks": tracks,
                         "frames": sum(t["frames"] for t in tracks), "flagged": sum(t["flagged"] for t in tracks)})
            r = rows[-1]
            turned = [tuple(x) for t in tracks for x in t["turned_ranges"]]
            print(f"{path.name}: {len(tracks)} track(s), {r['flagged']} of {r['frames']} found frames flagged "
                  f"{[tuple(x) for t in tracks for x in t['ranges']][:6]}"
                  + (f"; not judged, face turned: {turned[:6]}" if turned else ""), flush=True)
    ok = [r for r in rows if "error" not in r]
    print(f"\n{sum(1 for r in ok if r['flagged'])} of {len(ok)} clips with flagged frames; "
          f"{sum(r['flagged'] for r in ok)} of {sum(r['frames'] for r in ok)} frames")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python bench/bench_occlusion_survey.py " + " ".join(sys.argv[1:]),
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
