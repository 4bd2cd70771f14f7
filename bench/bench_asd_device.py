"""The active-speaker networks (Light-ASD, LR-ASD) on the CPU against a GPU, side by side in one run.

    python bench/bench_asd_device.py [--seconds 8] [--repeat 5] [--networks light-asd,lr-asd] \
        [--out bench/results/asd_device.json]

One line of ``--seconds`` at 25 fps (crops and audio are random: the cost does not depend on the content),
scored as ``asd_evidence`` scores a line for one face (the line's audio and its >= 1 s circular shifts, at
most 40). CPU with one torch thread (as the benches of the 2-core development machine run it) and, where
torch sees one, the first GPU; warm-up calls first, then the median of ``--repeat`` calls each. Also the
largest difference between the two devices' evidence. The rule runs every network of
``asd_model.NETWORKS`` on each face and line, so its cost is their sum.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--networks", default="light-asd,lr-asd")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "asd_device.json"))
    args = ap.parse_args()
    import torch

    from s2v_toolkit.faces.asd import asd_evidence
    from s2v_toolkit.faces.asd_model import load_network

    rng = np.random.default_rng(0)
    t = int(args.seconds * 25)
    faces = rng.integers(0, 255, (t, 112, 112), dtype=np.uint8)
    audio = rng.normal(0, 0.1, int(args.seconds * 16000) + 400).astype(np.float32)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    doc = {"line_seconds": args.seconds, "frames": t, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    for network in [n.strip() for n in args.networks.split(",") if n.strip()]:
        results = {}
        doc[network] = {}
        for device in devices:
            model = load_network(network, device)
            threads = torch.get_num_threads()
            if device == "cpu":
                torch.set_num_threads(1)
            try:
                for _ in range(2):
                    asd_evidence(faces, audio, model=model, network=network)
                times = []
                for _ in range(args.repeat):
                    if device != "cpu":
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    results[device] = asd_evidence(faces, audio, model=model, network=network)
                    if device != "cpu":
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
            finally:
                torch.set_num_threads(threads)
            doc[network][device] = {"seconds": [round(x, 4) for x in times], "median_s": round(float(np.median(times)), 4),
                                    "evidence": results[device].to_dict()}
        if "cuda" in results:
            a, b = results["cpu"], results["cuda"]
            doc[network]["speedup"] = round(doc[network]["cpu"]["median_s"] / doc[network]["cuda"]["median_s"], 1)
            doc[network]["max_difference"] = {"score": abs(a.score - b.score), "null_mean": abs(a.null_mean - b.null_mean),
                                              "z": abs(a.z - b.z)}
    print(json.dumps(doc, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
