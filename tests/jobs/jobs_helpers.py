"""Shared helpers for the job tests: the demo project's lines as speaker turns, and a fast plan."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import s2v_toolkit

DEMO = Path(s2v_toolkit.__file__).parent / "demo_project"
TESTS_DIR = Path(__file__).parent


def demo_project() -> dict:
    return json.loads((DEMO / "project.json").read_text())


def demo_turns():
    """The demo's dialogue lines as speaker turns with characters (what diarization + assignment give)."""
    from s2v_toolkit.diarization import SpeakerTurn, SpeakerTurns

    proj = demo_project()
    fps = Fraction(proj["fps"])
    speakers = {}
    turns = []
    for line in proj["lines"]:
        start = float(line["record_frame"] / fps) + 0.3
        end = start + line["speech_seconds"] - 0.3
        spk = speakers.setdefault(line["character"], f"SPEAKER_{len(speakers):02d}")
        turns.append(SpeakerTurn(start, end, spk, 0.95, line["character"], 0.9))
    return SpeakerTurns(turns, "demo", backend="test")


def copy_demo(tmp_path: Path) -> Path:
    """A copy of the demo project (plans and renders are written beside it)."""
    dst = tmp_path / "demo"
    shutil.copytree(DEMO, dst, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return dst


def fast_plan(tmp_path: Path, name: str = "plan.json"):
    """The demo's plan from the lines above, without the face stage (SH030 becomes a redub too)."""
    from s2v_toolkit.jobs import build_plan

    root = copy_demo(tmp_path)
    plan = build_plan(root / "scene.otio", root / "cast.yaml", turns=demo_turns(), face_check=False)
    plan.save(tmp_path / name)
    return plan


def one_new_shot_plan(tmp_path: Path, frames: int) -> Path:
    """``fast_plan`` with only its new-shot job (``frames`` long) left to render; returns the plan's path.
    The kill tests and bench/bench_render_kill.py render it in a child process."""
    plan = fast_plan(tmp_path)
    raw = json.loads(plan.path.read_text())
    for j in raw["jobs"]:
        if j["action"] == "new_shot":
            j["record_out"] = j["record_in"] + frames
        else:
            j["action"] = "skip"
    plan.path.write_text(json.dumps(raw))
    return plan.path


def edl_of(desc, media_names: dict[str, str]) -> str:
    """A CMX 3600 list of the described timeline's clips, as Avid writes one: reel, channel, source and
    record timecodes, the clip name and the file's name without its extension (no paths)."""
    lines = ["TITLE: DEMO", "FCM: NON-DROP FRAME", ""]
    clips = sorted(desc.to_dict()["clips"], key=lambda c: (c["kind"] != "video", c["record"]["tc_in"]))
    for n, c in enumerate(clips, 1):
        channel = "V" if c["kind"] == "video" else "A"
        reel = c['name'].replace(' ', '')[:8]  # a reel has no spaces
        lines.append(f"{n:03d}  {reel:<8} {channel:<5} C        {c['source']['tc_in']} "
                     f"{c['source']['tc_out']} {c['record']['tc_in']} {c['record']['tc_out']}")
        lines.append(f"* FROM CLIP NAME:  {c['name']}")
        lines.append(f"* SOURCE FILE: {media_names[c['id']]}")
    return "\n".join(lines) + "\n"
