"""Helpers shared by the generation tests: ``s2vt`` with chosen command groups, and a test line of audio."""

from __future__ import annotations

import numpy as np

from s2v_toolkit import cli

SR = 16000


def run_cli(groups: tuple[str, ...], argv: list[str]) -> int:
    """``s2vt`` with only ``groups`` registered: a stage's tests exercise its commands and the CLI's
    error handling independently of other groups (tests/test_cli.py covers the whole parser)."""
    saved = cli.COMMAND_GROUPS
    cli.COMMAND_GROUPS = groups
    try:
        return cli.main(argv)
    finally:
        cli.COMMAND_GROUPS = saved


def tone(seconds: float, freq: float = 220.0, sr: int = SR) -> np.ndarray:
    """A ``freq`` Hz tone with a 3 Hz amplitude wobble (a voice-like envelope), float32 at ``sr``."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


class ClipSaves:
    """Watches ``ClipStore.save`` (patched through ``monkeypatch``): ``indices`` lists every clip saved;
    with ``kill_next`` set, the next save raises KeyboardInterrupt right after the clip is safe on disk
    (a job killed there), once."""

    def __init__(self, monkeypatch, kill_next: bool = False):
        from s2v_toolkit.pipelines import clip_store

        self.indices: list[int] = []
        self.kill_next = kill_next
        real_save = clip_store.ClipStore.save

        def save(store, index, *args, **kwargs):
            real_save(store, index, *args, **kwargs)
            self.indices.append(index)
            if self.kill_next:
                self.kill_next = False
                raise KeyboardInterrupt

        monkeypatch.setattr(clip_store.ClipStore, "save", save)


#: Synthetic landmarks fitted to scikit-image's astronaut (as in tests/faces/test_faces_compositing.py).
ASTRONAUT_POSE = dict(center=(223.6, 129.4), width=93.5, angle_deg=3.3)


def moving_astronaut(n: int, width: int = 320, height: int = 192) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` frames of the astronaut's face drifting and turning slightly in a ``width`` x ``height`` shot,
    with the face's landmarks in each frame (mouth a little open)."""
    import cv2
    from skimage import data

    from s2v_toolkit.faces.synthetic import posed_face

    astro = np.ascontiguousarray(data.astronaut())
    base = posed_face(**ASTRONAUT_POSE, mouth_open=0.15)
    cx, cy = ASTRONAUT_POSE["center"]
    frames, marks = [], []
    for k in range(n):
        m = cv2.getRotationMatrix2D((cx, cy), -2 + 0.2 * k, 1.0)
        m[:, 2] += (width / 2 - cx + 1.5 * k, height / 2 - cy + 0.5 * k)
        frames.append(cv2.warpAffine(astro, m, (width, height), flags=cv2.INTER_LINEAR, borderValue=(60, 60, 60)))
        lm = base.copy()
        lm[:, :2] = base[:, :2] @ m[:, :2].T + m[:, 2]
        marks.append(lm)
    return frames, marks


class ScriptedDetector:
    """A face detector that returns the landmarks a test scripted for each frame index."""

    def __init__(self, script: dict):
        self.script = script

    def detect(self, frame, index):
        from s2v_toolkit.faces import FaceObservation

        return [FaceObservation(lm) for lm in self.script.get(index, [])]
