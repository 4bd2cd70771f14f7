"""The generator interface the runners call, and how a generator is chosen.

A generator renders one :class:`~s2v_toolkit.jobs.plan.ShotJob` from its :class:`JobInputs` into one
media file. The runner loads it once and reuses it for every job it renders; it owns file naming,
versioning, the sidecar and the job state, so a generator only writes ``out_path`` (a temporary name in
the final folder; the runner renames it when the job is complete) and returns what it wants in the
sidecar (model name, steps, timings...). Frame 0 of the file is the job's ``record_in``; write it without
a start timecode. Raise an exception to fail the job: its message becomes the job's error text.

Generators are chosen with a picklable :class:`GeneratorSpec` (worker processes and Ray tasks load their
own copy): ``model="tiny"`` or ``checkpoint=DIR`` use the Wan S2V pipelines (``s2v_toolkit.pipelines``:
generation for ``new_shot``, masked re-dub for ``redub``; see :mod:`.wan_generator`);
``factory="package.module:callable"`` plugs in any other generator.
When none can be loaded, the jobs fail with the reason; nothing is ever marked done without a render.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from s2v_toolkit.dotted import import_dotted
from s2v_toolkit.errors import ConfigError, S2VError


class GeneratorUnavailable(S2VError):
    """No generator can render this job here (no model, no checkpoint, action not supported)."""


@dataclass
class JobInputs:
    """Everything a generator needs for one job (prepared by the runner)."""

    job: object                              # ShotJob
    fps: Fraction                            # timeline rate: the output's rate
    frame_count: int                         # frames to write (record_out - record_in)
    audio: np.ndarray                        # the line's dialogue, 16 kHz mono float32, frame 0 = sample 0
    audio_rate: int
    record_tc: tuple[str, str]               # record timecodes [in, out) for labels
    reference_images: list[Path] = field(default_factory=list)
    prompt: str = ""
    seed: int = 0
    source_media: str | None = None          # redub: the shot's media ...
    source_in: int | None = None             # ... and its frame at record_in
    progress: Callable[[float], None] | None = None   # report 0..1 for the per-job progress bar
    # The same dialogue at the delivery rate, for the render file's own audio track (editors expect
    # 48 kHz; the 16 kHz ``audio`` is what the models analyse). None: write ``audio`` as it is.
    delivery_audio: np.ndarray | None = None
    delivery_rate: int = 48000
    # A folder the generator may keep finished clips in, so that a killed render continues after its
    # last finished clip (the runner removes it once the job's file is in place). None: no resume.
    resume_dir: Path | None = None
    loras: list[str] = field(default_factory=list)  # the character's LoRAs ("PATH:STRENGTH", cast file)

    def source_frames(self) -> np.ndarray:
        """The shot's original frames under the job (redub), (frame_count, H, W, 3) uint8 RGB."""
        return self.source_frames_mapped()[0]

    def source_frames_mapped(self):
        """(frames, FrameMap): the source frames by time, with the variable-rate/damage record for the sidecar."""
        from s2v_toolkit.media import VideoReader

        if self.source_media is None or self.source_in is None:
            raise GeneratorUnavailable(f"job {getattr(self.job, 'id', '?')}: no source media (not a redub job)")
        with VideoReader(self.source_media) as reader:
            return reader.read_mapped(self.source_in, self.frame_count)


@runtime_checkable
class Generator(Protocol):
    name: str

    def render(self, inputs: JobInputs, out_path: Path) -> dict:
        """Write the job's media to ``out_path``; return sidecar information (JSON-friendly)."""
        ...


@dataclass(frozen=True)
class GeneratorSpec:
    model: str | None = None                 # "tiny": random-weight model for plumbing and the demo
    checkpoint: str | None = None            # official Wan2.2-S2V checkpoint folder
    factory: str | None = None               # "package.module:callable" taking the spec
    device: str | None = None
    options: tuple = ()                      # (key, value) pairs passed on to the pipeline

    def describe(self) -> str:
        if self.factory:
            return f"factory {self.factory}"
        if self.checkpoint:
            return f"checkpoint {self.checkpoint}"
        if self.model:
            return f"model {self.model}"
        return "no generator"


class UnavailableGenerator:
    """Fails every job it is given with the reason no generator could be loaded."""

    def __init__(self, reason: str):
        self.name = "unavailable"
        self.reason = reason

    def render(self, inputs: JobInputs, out_path: Path) -> dict:
        raise GeneratorUnavailable(self.reason)


def _from_factory(spec: GeneratorSpec) -> Generator:
    return import_dotted(spec.factory, "generator factory")(spec)


def load_generator(spec: GeneratorSpec | None) -> Generator:
    """The generator for ``spec``, loaded once per process by the caller (model weights stay in memory).

    Problems the user can fix (bad factory name, checkpoint folder missing) raise; a pipeline that is
    not part of this installation gives an :class:`UnavailableGenerator`, so the jobs fail with why."""
    spec = spec or GeneratorSpec()
    if spec.factory:
        return _from_factory(spec)
    if spec.checkpoint and not Path(spec.checkpoint).is_dir():
        raise ConfigError(f"{spec.checkpoint}: checkpoint folder not found")
    if not spec.model and not spec.checkpoint:
        return UnavailableGenerator("no generator chosen: pass --model tiny (random weights, for testing the "
                                    "pipeline) or --checkpoint DIR (Wan2.2-S2V weights)")
    try:
        from s2v_toolkit.jobs.wan_generator import make_wan_generator

        importlib.import_module("s2v_toolkit.pipelines.s2v_generator")
        importlib.import_module("s2v_toolkit.pipelines.redub")
    except ImportError as exc:
        return UnavailableGenerator(f"{spec.describe()}: the generation pipeline cannot be imported here ({exc})")
    return make_wan_generator(spec)


def generator_name(gen) -> str:
    return str(getattr(gen, "name", type(gen).__name__))


def ensure_dir(path: str | os.PathLike) -> Path:
    from s2v_toolkit.media import ensure_output_dir

    return ensure_output_dir(path)
