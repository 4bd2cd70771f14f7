"""The Wan S2V generator behind the job interface: ``new_shot`` through the generation pipeline,
``redub`` through the masked mouth re-dub, one set of loaded models for both.

The models load once (``S2VGenerator``) and serve every job this process renders. ``--model tiny``
uses the pipeline's cached random-weight bundle: the renders exercise the whole path (timing, crops,
compositing, files) but their pixels are noise-like, and every sidecar says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.jobs.generator import GeneratorSpec, GeneratorUnavailable, JobInputs

AUDIO_RATE = 16000


@dataclass(frozen=True)
class WanJobOptions:
    steps: int | None = None          # None: the pipeline's default (tiny: 2, enough for plumbing)
    size: str | None = None           # new shots: maximum area ("448x832"); tiny: "64x64"
    crop_size: int | None = None      # re-dub: face crop side (multiple of 64); tiny: 64
    motion_frames: int | None = None  # re-dub: motion context frames (1 + 4k); tiny: 5
    infer_frames: int | None = None   # frames per generated clip (multiple of 4); default 80
    max_vram_gb: float | None = None  # GPU memory budget (S2VGenerator.load(max_vram_gb=...)); None: all resident
    fp8: str | None = None            # fp8 mode (S2VGenerator.load(fp8=...): linears, all-linears, attention); None: off
    preset: str | None = None         # generation preset (exact, official, fast, few-step; pipelines.presets)
    cache: str | None = None          # step caching, e.g. "teacache:0.2"
    last_clip: str | None = None      # new shots: "fit" or "full" last clip (None: the preset's; full)
    loras: tuple[str, ...] = ()       # LoRA files "PATH[:STRENGTH]" for every job (merged at load)
    lora_mode: str = "merge"          # how ``loras`` are applied (merge or runtime)
    lora_ignore_unmatched: bool = False
    parallel: str | None = None       # several GPUs: the --parallel mode of a torchrun launch (None: one process)

    @classmethod
    def from_spec(cls, spec: GeneratorSpec) -> "WanJobOptions":
        known = set(cls.__dataclass_fields__)
        opts = dict(spec.options)
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ConfigError(f"generator options: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**opts)


TINY_DEFAULTS = WanJobOptions(steps=2, size="64x64", crop_size=64, motion_frames=5, infer_frames=None)


class WanS2VJobGenerator:
    """A :class:`~s2v_toolkit.jobs.generator.Generator` on the Wan S2V pipelines."""

    suffix = ".mov"

    def __init__(self, spec: GeneratorSpec):
        from s2v_toolkit.pipelines.redub_sampler import load_generator as load_models

        tiny = spec.model == "tiny"
        if spec.model not in (None, "tiny"):
            raise ConfigError(f"--model {spec.model!r}: only 'tiny' is built in; use --checkpoint DIR for weights")
        opts = WanJobOptions.from_spec(spec)
        if tiny:
            opts = WanJobOptions(**{k: (getattr(opts, k) if getattr(opts, k) is not None else getattr(TINY_DEFAULTS, k))
                                    for k in WanJobOptions.__dataclass_fields__})
        self.options = opts
        parallel = None
        if opts.parallel is not None:
            from s2v_toolkit.pipelines.distributed import resolve_parallel

            parallel = resolve_parallel(opts.parallel)
        self.models = load_models(spec.checkpoint, tiny=tiny, device=spec.device, max_vram_gb=opts.max_vram_gb,
                                  fp8=opts.fp8 or "off", loras=list(opts.loras), lora_mode=opts.lora_mode,
                                  lora_ignore_unmatched=opts.lora_ignore_unmatched, parallel=parallel)
        self._character_loras: tuple[str, ...] = ()
        self.random_weights = bool(self.models.bundle.random_weights)
        self.name = "wan-s2v tiny (random weights)" if tiny else f"wan-s2v {Path(spec.checkpoint).name}"

    # -------------------------------------------------------------------- settings
    def _generation_settings(self, inputs: JobInputs, prompt: str | None = None):
        from s2v_toolkit.pipelines.generation_inputs import GenerationSettings

        s = GenerationSettings(prompt=prompt if prompt is not None else (inputs.prompt or ""),
                               seed=int(inputs.seed), fps=inputs.fps)
        o = self.options
        if o.preset is not None:
            from s2v_toolkit.pipelines.presets import apply_preset

            s = apply_preset(s, o.preset)
        if o.last_clip not in (None, "fit", "full"):
            raise ConfigError(f"generator option last_clip {o.last_clip!r}: choose fit or full")
        changes = {k: v for k, v in (("steps", o.steps), ("size", o.size), ("infer_frames", o.infer_frames),
                                     ("cache", o.cache)) if v is not None}
        if o.last_clip is not None:
            changes["fit_last_clip"] = o.last_clip == "fit"
        if "steps" in changes and s.sampler_timesteps is not None and len(s.sampler_timesteps) != o.steps:
            changes["sampler_timesteps"] = None  # an explicit step count replaces the preset's list
        return replace(s, **changes) if changes else s

    def _use_character_loras(self, inputs: JobInputs) -> None:
        """The character's LoRAs (cast file ``lora:``) at run time while its jobs render."""
        wanted = tuple(getattr(inputs, "loras", ()) or ())
        if wanted != self._character_loras:
            self.models.use_loras(list(wanted), ignore_unmatched=self.options.lora_ignore_unmatched)
            self._character_loras = wanted

    def _drive_audio(self, inputs: JobInputs) -> np.ndarray:
        # exactly frame_count frames' worth of samples: the pipeline's frame count rounds duration * fps
        n = int(round(Fraction(inputs.frame_count) / Fraction(inputs.fps) * AUDIO_RATE))
        audio = np.zeros(n, np.float32)
        audio[: min(n, len(inputs.audio))] = inputs.audio[:n]
        return audio

    @staticmethod
    def _fit(frames: np.ndarray, count: int) -> np.ndarray:
        if len(frames) >= count:
            return frames[:count]
        return np.concatenate([frames, np.repeat(frames[-1:], count - len(frames), axis=0)])

    # -------------------------------------------------------------------- render
    def render(self, inputs: JobInputs, out_path: Path) -> dict:
        job = inputs.job
        self._use_character_loras(inputs)
        if job.action == "new_shot":
            return self._new_shot(inputs, out_path)
        if job.action == "redub":
            return self._redub(inputs, out_path)
        raise GeneratorUnavailable(f"job {job.id}: action {job.action!r} has nothing to render")

    def _write(self, inputs: JobInputs, frames: np.ndarray, out_path: Path, **source_looks) -> None:
        """``source_looks``: a re-dub's ``display_rotation`` and ``field_order``, carried from its source."""
        from s2v_toolkit.media import write_video

        if inputs.delivery_audio is not None:
            audio, rate = inputs.delivery_audio, inputs.delivery_rate
        else:
            audio, rate = self._drive_audio(inputs), AUDIO_RATE
        write_video(out_path, self._fit(frames, inputs.frame_count), inputs.fps, audio=audio, audio_rate=rate,
                    start_timecode=self._start_timecode(inputs), **source_looks)

    @staticmethod
    def _start_timecode(inputs: JobInputs) -> str | None:
        """A re-dub carries its source's timecode at the first replaced frame (it is that footage, altered);
        a new shot carries the record timecode it was made for."""
        from s2v_toolkit.media import frames_to_timecode, probe

        if inputs.source_media is not None and inputs.source_in is not None:
            v = probe(inputs.source_media).video
            if v is None or not v.start_timecode:
                return None
            return frames_to_timecode(v.start_frame + int(inputs.source_in), v.fps, drop_frame=v.drop_frame)
        return inputs.record_tc[0] if inputs.record_tc and inputs.record_tc[0] else None

    def _new_shot(self, inputs: JobInputs, out_path: Path) -> dict:
        from s2v_toolkit.pipelines.generation_inputs import DriveAudio, load_reference_image

        if not inputs.reference_images:
            raise GeneratorUnavailable(f"job {inputs.job.id}: a new shot needs the character's reference image "
                                       "(cast file: reference_images)")
        image = load_reference_image(inputs.reference_images[0])
        audio = DriveAudio(path=Path(f"job-{inputs.job.id}-line.wav"), waveform=self._drive_audio(inputs))
        if not np.any(audio.waveform):
            raise GeneratorUnavailable(f"job {inputs.job.id}: the line's audio is silent over the job's range")
        settings = self._generation_settings(inputs)
        result = self.models.generate(image, audio, settings, resume_dir=inputs.resume_dir)
        if inputs.progress:
            inputs.progress(1.0)
        self._write(inputs, result.frames, out_path)
        return {"model": self.name, "random_weights": self.random_weights, "pipeline": "generate",
                "settings": settings.to_dict(), "frames_generated": int(result.num_frames),
                "loras": self.models.loras, "step_cache": result.sidecar_data.get("step_cache"),
                "plumbing_only": self.random_weights}

    def _redub(self, inputs: JobInputs, out_path: Path) -> dict:
        from s2v_toolkit.faces import analyze_video
        from s2v_toolkit.pipelines.redub import (
            DEFAULT_REDUB_PROMPT,
            LineTiming,
            RedubSettings,
            SourceLook,
            redub_frames,
        )
        from s2v_toolkit.pipelines.redub_crop import plan_face_crops

        job = inputs.job
        first = int(inputs.source_in)
        last = first + inputs.frame_count - 1
        timing = LineTiming(first, last, first, last, Fraction(inputs.fps))
        analysis = analyze_video(inputs.source_media, first, last)
        face = job.face or {}
        track_id = face.get("track_id")
        if track_id is None:
            from s2v_toolkit.pipelines.redub import choose_track

            track_id, _ = choose_track(analysis, timing, inputs.source_media, self._drive_audio(inputs))
        track = analysis.track(int(track_id))
        o = self.options
        base = RedubSettings()
        settings = RedubSettings(
            crop_size=o.crop_size or base.crop_size, motion_frames=o.motion_frames or base.motion_frames,
            generation=self._generation_settings(inputs, prompt=DEFAULT_REDUB_PROMPT))
        plan = plan_face_crops(track, first, last, settings.crop_size, settings.face_fraction)
        frames, frame_map = inputs.source_frames_mapped()
        # phone footage stored sideways: the face work on upright frames, as the analysis saw them; the
        # render written as stored, with the source's display matrix (and an interlaced source's fields)
        look = SourceLook.of(inputs.source_media, out_path, analysis)
        if look.turn:
            frames = np.stack([look.upright(f) for f in frames])

        def progress(done, total):
            if inputs.progress and total:
                inputs.progress(done / total)

        out, report = redub_frames(frames, timing, self._drive_audio(inputs), plan, self.models, settings,
                                   track_id=int(track_id), progress=progress, resume_dir=inputs.resume_dir)
        if look.turn:
            out = np.stack([look.stored(f) for f in out])
        report.warnings += look.warnings(out_path, None)
        self._write(inputs, out, out_path, **look.write_options())
        cache = self.models.step_cache
        return {"model": self.name, "random_weights": self.random_weights, "pipeline": "redub",
                "face_track": int(track_id), **look.to_dict(),
                "settings": settings.to_dict(), "report": report.to_dict(),
                "source_frame_map": frame_map.to_dict(),
                "loras": self.models.loras, "step_cache": cache.to_dict() if cache is not None else None,
                "plumbing_only": self.random_weights}


def make_wan_generator(spec: GeneratorSpec) -> WanS2VJobGenerator:
    return WanS2VJobGenerator(spec)
