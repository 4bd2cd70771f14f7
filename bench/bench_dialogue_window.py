"""Memory of one render job's dialogue: the whole track (what each worker process built before session 16)
against the job's own record range (``extract_dialogue(window=)``), side by side in one run.

    python bench/bench_dialogue_window.py [--minutes 90] [--out bench/results/dialogue_window.json]

A synthetic feature-length dialogue track (``--minutes`` of cut, a 6 s line every 10 s, all from one real
16-bit 48 kHz WAV written here) in an OTIO timeline; one 5 s job in the middle. Peak Python heap
(tracemalloc, numpy arrays included) and seconds, at the models' 16 kHz and the render files' 48 kHz.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def build(folder: Path, minutes: float):
    import opentimelineio as otio
    import soundfile

    from s2v_toolkit.timeline import describe_timeline, read_timeline

    rng = np.random.default_rng(0)
    wav = folder / "line.wav"
    soundfile.write(str(wav), (rng.standard_normal(48000 * 6) * 3000).astype(np.int16), 48000, subtype="PCM_16")
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    track = otio.schema.Track("DX", kind=otio.schema.TrackKind.Audio)
    for k in range(int(minutes * 6)):
        track.append(otio.schema.Gap(source_range=tr(rt(0, 25), rt(100, 25))))
        ref = otio.schema.ExternalReference(str(wav), available_range=tr(rt(0, 25), rt(150, 25)))
        track.append(otio.schema.Clip(f"line {k}", media_reference=ref, source_range=tr(rt(0, 25), rt(150, 25))))
    tl = otio.schema.Timeline("feature")
    tl.tracks.append(track)
    path = folder / "feature.otio"
    otio.adapters.write_to_file(tl, str(path))
    return describe_timeline(read_timeline(path))


def measure(fn) -> tuple[float, float]:
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=90.0)
    ap.add_argument("--out", default="bench/results/dialogue_window.json")
    args = ap.parse_args()
    from s2v_toolkit.timeline import extract_dialogue

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        desc = build(Path(tmp), args.minutes)
        track = desc.tracks[0].id
        for rate in (16000, 48000):
            middle = int(desc.duration.seconds * rate) // 2
            window = (middle, middle + 5 * rate)
            whole_mb, whole_s = measure(lambda: extract_dialogue(desc, [track], sample_rate=rate))
            job_mb, job_s = measure(lambda: extract_dialogue(desc, [track], sample_rate=rate, window=window))
            (whole,) = extract_dialogue(desc, [track], sample_rate=rate)
            (part,) = extract_dialogue(desc, [track], sample_rate=rate, window=window)
            same = float(np.abs(part.signal - whole.signal[window[0]:window[1]]).max())
            rows.append({"rate": rate, "whole_track_peak_mib": round(whole_mb, 1), "whole_track_seconds": round(whole_s, 3),
                         "job_window_peak_mib": round(job_mb, 2), "job_window_seconds": round(job_s, 4),
                         "memory_ratio": round(whole_mb / job_mb, 1), "time_ratio": round(whole_s / job_s, 1),
                         "max_abs_difference": same})
            print(rows[-1])
    doc = {"command": f"python bench/bench_dialogue_window.py --minutes {args.minutes:g}",
           "minutes": args.minutes, "job_seconds": 5, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
