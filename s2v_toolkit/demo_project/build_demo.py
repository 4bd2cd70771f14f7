"""Build the demo project shipped with s2v-toolkit (run once; the outputs are committed beside this file).

A 23.976 fps scene, record start 01:00:00:00, two characters and four dialogue lines:

    SH010  COLLINS close-up (push-in)       line 1 COLLINS   -> re-dub candidate (face on screen)
    SH020  HOPPER close-up (drift)          line 2 HOPPER    -> re-dub candidate
    SH030  cutaway: the rocket, no face     line 3 COLLINS   -> skip: cutaway (voice over a shot without a face)
    (gap)  nothing cut in yet               line 4 HOPPER    -> new shot from HOPPER's reference image

Sources (all public domain, shipped inside packages on PyPI, so the build needs no download):
  * scikit-image ``data/astronaut.png``: Eileen Collins, NASA portrait (public domain, US government work)
  * matplotlib ``mpl-data/sample_data/grace_hopper.jpg``: Grace Hopper, US Navy photo (public domain)
  * scikit-image ``data/rocket.jpg``: a SpaceX Falcon 9 launch photo released to the public domain (CC0)
Voices are synthesized with espeak-ng (GPL program; its speech output carries no licence restriction).

Usage (needs ``pip install scikit-image matplotlib`` and ``apt-get install espeak-ng``):
    python -m s2v_toolkit.demo_project.build_demo            # rewrites the files in this folder
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

HERE = Path(__file__).resolve().parent
FPS = Fraction(24000, 1001)
RECORD_START_TC = "01:00:00:00"
AUDIO_RATE = 48000
WIDTH, HEIGHT = 640, 360
HANDLE_FRAMES = 12  # media on either side of the cut, as real camera files have
LEAD_IN_S, TAIL_S = 0.5, 0.6  # picture before/after each line

CHARACTERS = {
    "collins": {
        "name": "COLLINS",
        "voice": ["-v", "en-us+f3", "-p", "62", "-s", "150"],
        "photo": "astronaut",
        "prompt": "A woman in a white shirt in front of a flag speaks calmly to camera, studio portrait lighting.",
        "samples": [
            "This is a voice sample for the enrollment of the character.",
            "We train for months so that nothing on the day feels new.",
        ],
    },
    "hopper": {
        "name": "HOPPER",
        "voice": ["-v", "en-gb-x-rp+f4", "-p", "28", "-s", "135"],
        "photo": "grace_hopper",
        "prompt": "An older woman in a dark naval uniform speaks with authority, formal portrait lighting.",
        "samples": [
            "I would rather be told the bad numbers early than the good ones late.",
            "A ship in port is safe, but that is not what ships are built for.",
        ],
    },
}

LINES = [
    ("collins", "Houston, the cabin lights are flickering again. I need a second opinion."),
    ("hopper", "Then read me the numbers slowly, one at a time."),
    ("collins", "Four, seven, two. It keeps jumping around."),
    ("hopper", "That is not the lights. That is the software."),
]
# What each line plays over: a shot of a character's face, the cutaway, or nothing yet (a gap).
SHOTS = [("SH010", "collins"), ("SH020", "hopper"), ("SH030", "cutaway"), ("SH040", None)]
SOURCE_TC = {"SH010": "14:02:10:00", "SH020": "14:07:41:12", "SH030": "09:15:00:00"}


# ----------------------------------------------------------------------------------------- inputs
def load_photo(name: str) -> np.ndarray:
    """A public-domain photo as RGB uint8."""
    import skimage.data
    from matplotlib import cbook
    from skimage.io import imread

    if name == "astronaut":
        img = skimage.data.astronaut()
    elif name == "rocket":
        img = skimage.data.rocket()
    elif name == "grace_hopper":
        img = imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    else:
        raise ValueError(name)
    return np.ascontiguousarray(img[..., :3])


def speak(text: str, voice: list[str]) -> np.ndarray:
    """espeak-ng speech at AUDIO_RATE, leading/trailing silence trimmed, peak at -3 dBFS."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        subprocess.run(["espeak-ng", *voice, "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float32")
    audio = soxr.resample(audio, rate, AUDIO_RATE, quality="HQ").astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    audio = audio[max(loud[0] - 240, 0) : loud[-1] + 2400]
    return (audio / np.abs(audio).max() * 10 ** (-3 / 20)).astype(np.float32)


# ----------------------------------------------------------------------------------------- pictures
def camera_move(photo: np.ndarray, frames: int, center: tuple[float, float], crop_h: float,
                zoom: float, sway: float, seed: int) -> list[np.ndarray]:
    """A slow push-in with a little hand-held sway over a still photo, rendered at WIDTH x HEIGHT."""
    from skimage.transform import AffineTransform, warp

    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * math.pi, 2)
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        h = crop_h / (1 + (zoom - 1) * t)  # source pixels shown vertically
        scale = h / HEIGHT
        cy = center[0] + sway * math.sin(2 * math.pi * 0.21 * i / 24 + phase[0])
        cx = center[1] + sway * math.sin(2 * math.pi * 0.17 * i / 24 + phase[1])
        # Output pixel (x, y) samples the photo at (cx + (x - W/2) * scale, cy + (y - H/2) * scale).
        tf = AffineTransform(scale=(scale, scale), translation=(cx - WIDTH / 2 * scale, cy - HEIGHT / 2 * scale))
        frame = warp(photo, tf, output_shape=(HEIGHT, WIDTH), order=3, mode="edge", preserve_range=True)
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def shot_frames(kind: str, frames: int, seed: int) -> list[np.ndarray]:
    if kind == "collins":
        return camera_move(load_photo("astronaut"), frames, center=(150, 252), crop_h=272, zoom=1.08, sway=2.0, seed=seed)
    if kind == "hopper":
        return camera_move(load_photo("grace_hopper"), frames, center=(240, 256), crop_h=282, zoom=1.05, sway=2.5, seed=seed)
    if kind == "cutaway":
        return camera_move(load_photo("rocket"), frames, center=(190, 300), crop_h=300, zoom=1.12, sway=1.0, seed=seed)
    raise ValueError(kind)


def reference_image(kind: str) -> np.ndarray:
    """A square head-and-shoulders crop for the cast file."""
    from skimage.transform import resize

    photo = load_photo(CHARACTERS[kind]["photo"])
    cy, cx, half = {"collins": (170, 250, 170), "hopper": (250, 255, 220)}[kind]
    crop = photo[max(cy - half, 0) : cy + half, max(cx - half, 0) : cx + half]
    return (resize(crop, (512, 512), order=3, anti_aliasing=True, preserve_range=True)).astype(np.uint8)


# ----------------------------------------------------------------------------------------- timeline
def build_timeline(shots: list[dict], lines: list[dict]):
    import opentimelineio as otio

    def rt(frames: int) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(frames, float(FPS))

    start = otio.opentime.from_timecode(RECORD_START_TC, float(FPS))
    tl = otio.schema.Timeline(name="DEMO_SCENE", global_start_time=start)
    tl.metadata["s2v_toolkit"] = {"demo": True, "fps": f"{FPS.numerator}/{FPS.denominator}"}
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for shot in shots:
        if shot["media"] is None:
            v1.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(shot["frames"]))))
            continue
        src_start = otio.opentime.from_timecode(shot["source_tc"], float(FPS))
        ref = otio.schema.ExternalReference(
            target_url=shot["media"],
            available_range=otio.opentime.TimeRange(src_start, rt(shot["frames"] + 2 * HANDLE_FRAMES)),
        )
        clip = otio.schema.Clip(
            name=shot["name"], media_reference=ref,
            source_range=otio.opentime.TimeRange(src_start + rt(HANDLE_FRAMES), rt(shot["frames"])),
        )
        v1.append(clip)
    dia = otio.schema.Track(name="DIA 1", kind=otio.schema.TrackKind.Audio)
    cursor = 0
    for line in lines:
        if line["record_frame"] > cursor:
            dia.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(line["record_frame"] - cursor))))
        ref = otio.schema.ExternalReference(
            target_url=line["media"],
            available_range=otio.opentime.TimeRange(rt(0), rt(line["frames"])),
        )
        dia.append(otio.schema.Clip(name=line["name"], media_reference=ref,
                                    source_range=otio.opentime.TimeRange(rt(0), rt(line["frames"]))))
        cursor = line["record_frame"] + line["frames"]
    tl.tracks.append(v1)
    tl.tracks.append(dia)
    return tl


# ----------------------------------------------------------------------------------------- main
def build(out: Path = HERE) -> dict:
    from s2v_toolkit.media import write_png, write_video

    for sub in ("media", "audio", "cast"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)

    speech = [speak(text, CHARACTERS[who]["voice"]) for who, text in LINES]
    shots, lines, record = [], [], 0
    for i, ((shot_name, kind), (who, text), audio) in enumerate(zip(SHOTS, LINES, speech)):
        line_frames = math.ceil(Fraction(len(audio), AUDIO_RATE) * FPS)
        lead = round(LEAD_IN_S * FPS)
        frames = lead + line_frames + round(TAIL_S * FPS)
        media = None
        if kind is not None:
            media = f"media/{shot_name}_{kind}.mp4"
            pictures = shot_frames(kind, frames + 2 * HANDLE_FRAMES, seed=i)
            write_video(out / media, pictures, FPS, preset="h264", start_timecode=SOURCE_TC[shot_name], overwrite=True)
        shots.append({"name": shot_name, "kind": kind or "gap", "media": media, "frames": frames,
                      "record_frame": record, "source_tc": SOURCE_TC.get(shot_name)})
        line_media = f"audio/line_{i + 1:02d}_{who}.flac"
        padded = np.zeros(round(Fraction(line_frames) / FPS * AUDIO_RATE), np.float32)
        padded[: len(audio)] = audio
        sf.write(out / line_media, padded, AUDIO_RATE, subtype="PCM_16")
        lines.append({"name": f"L{i + 1:02d} {CHARACTERS[who]['name']}", "character": who, "text": text,
                      "media": line_media, "record_frame": record + lead, "frames": line_frames,
                      "speech_seconds": round(len(audio) / AUDIO_RATE, 4)})
        record += frames

    cast = {"version": 1, "characters": []}
    for who, c in CHARACTERS.items():
        ref = f"cast/{who}_reference.png"
        write_png(out / ref, reference_image(who))
        samples = []
        for k, sentence in enumerate(c["samples"]):
            sample = f"cast/{who}_voice_{k + 1:02d}.flac"
            sf.write(out / sample, soxr.resample(speak(sentence, c["voice"]), AUDIO_RATE, 16000), 16000,
                     subtype="PCM_16")
            samples.append(sample)
        cast["characters"].append({"id": who, "name": c["name"], "reference_images": [ref],
                                   "voice_samples": samples, "prompt": c["prompt"]})

    import opentimelineio as otio
    import yaml

    tl = build_timeline(shots, lines)
    from s2v_toolkit.timeline import write_timeline

    # Through the timeline layer: its FCP 7 writer keeps track names and enable flags that the
    # plain adapter drops (Premiere and Resolve show "DIA 1" as the dialogue track).
    write_timeline(tl, out / "scene.otio", adapter="otio_json", overwrite=True)
    write_timeline(tl, out / "scene.xml", adapter="fcp_xml", overwrite=True)
    (out / "cast.yaml").write_text(
        "# s2v-toolkit cast file: one entry per character (schema in docs/cast.md).\n"
        + yaml.safe_dump(cast, sort_keys=False, width=110)
    )
    manifest = {
        "name": "DEMO_SCENE",
        "fps": f"{FPS.numerator}/{FPS.denominator}",
        "record_start_timecode": RECORD_START_TC,
        "timeline": "scene.otio",
        "timeline_fcp7": "scene.xml",
        "cast": "cast.yaml",
        "dialogue_track": "DIA 1",
        # Ground truth for tests and for judging the pipeline: who speaks when, over which shot.
        "shots": shots,
        "lines": lines,
        "expected_actions": {"SH010": "redub", "SH020": "redub", "SH030": "skip", "SH040": "new_shot"},
    }
    (out / "project.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


if __name__ == "__main__":
    m = build()
    total = sum(s["frames"] for s in m["shots"])
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file() and p.suffix != ".py")
    print(f"demo project: {len(m['shots'])} shots, {total} frames ({float(total / FPS):.1f} s), {size / 1e6:.2f} MB")
