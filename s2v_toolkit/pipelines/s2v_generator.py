"""Audio-driven shot generation with Wan S2V: reference image + line audio (+ prompt) -> video file.

Flow (``shared/spec/wan_s2v_dit.md``, Sampling; frame arithmetic in :mod:`frame_math`):

1. inputs are checked first (settings, checkpoint files, image, audio), then models load;
2. reference -> fitted to the size rule -> VAE latent (1 frame); prompt and negative prompt ->
   umT5 embeddings, cached per prompt; audio -> wav2vec2 features, one row per frame of the
   generation grid (the output rate for ``retime="native"``, else the model's 16 fps);
3. the long-video plan (``plan_long_video``, aligned: output frame n is generated for audio frame n)
   splits the frames into clips of ``infer_frames``; each clip is denoised by :func:`denoise_clip`
   with FramePack motion latents from the previous clips' last 73 frames, kept as float tensors on
   the device (never re-read from a file), and decoded behind its leading latent block;
4. frames are retimed to the output rate if needed, written with ``media.write_video`` (ProRes by
   default, the line's audio muxed) and a JSON sidecar with every setting is written next to it.

Frame-rate method ``native`` (default): the model generates one frame per output frame, its audio
features sampled on the output grid (``bucket_per_frame`` at that rate), so every delivered frame has
its own audio-driven mouth. Cost: frames (and compute) scale with the rate: x1.5 at 24 fps against
16 fps. ``blend``/``nearest`` generate at 16 fps (cheapest) and retime by linear blending (ghosting on
fast motion) or by repeating the nearest frame (judder).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from s2v_toolkit import __version__
from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models import (
    ExpertOffloader,
    OffloadEvent,
    ExpertSchedule,
    S2VTransformerConfig,
    UMT5Config,
    WanVAEConfig,
    enable_block_offload,
    enable_fused_blocks,
    load_audio_encoder,
    load_s2v_transformer,
    load_umt5_encoder,
    load_umt5_tokenizer,
    load_wan_vae,
    make_scheduler,
    read_transformer_config,
    to_transformer_layout,
)
from s2v_toolkit.models.experts import Expert
from s2v_toolkit.models.umt5 import UMT5TextEncoder
from s2v_toolkit.pipelines.checkpoint_bundle import CheckpointBundle
from s2v_toolkit.pipelines.clip_store import ClipStore, hash_inputs
from s2v_toolkit.pipelines.distributed import (
    ParallelConfig,
    barrier,
    broadcast_from_main,
    init_distributed,
    parallel_models,
)
from s2v_toolkit.pipelines.frame_math import (
    MODEL_FPS,
    LongVideoPlan,
    drive_source_index,
    model_frames_for_output,
    output_frame_count,
    plan_long_video,
    retime_sources,
)
from s2v_toolkit.pipelines.generation_inputs import (
    DriveAudio,
    GenerationSettings,
    PoseVideo,
    ReferenceImage,
    fit_pixels,
    OFFICIAL_REFERENCE_MOTION_FRAMES,
    fit_size,
    load_drive_audio,
    load_pose_video,
    load_reference_image,
    parse_max_area,
)
from s2v_toolkit.pipelines.guidance import guided_prediction
from s2v_toolkit.pipelines.sampling import StepCallback, StepInfo, denoise_clip

__all__ = ["clip_noise", "ClipTrace", "GenerationResult", "GenerationTrace", "S2VGenerator", "RANDOM_WEIGHTS_WARNING",
           "sidecar_path"]

RANDOM_WEIGHTS_WARNING = "random weights: plumbing test only, not a real generation"


def sidecar_path(output: str | Path) -> Path:
    """``OUT.mov`` -> ``OUT.mov.json``."""
    output = Path(output)
    return output.with_name(output.name + ".json")


@dataclass
class ClipTrace:
    """What one clip was fed and what of it was kept (the test hook for audio/video alignment)."""

    index: int
    drive_sources: list[int | None]  # per generated clip frame: the audio frame fed (None = zeros)
    keep_start: int
    kept: int
    output_start: int
    with_motion: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GenerationTrace:
    clips: list[ClipTrace] = field(default_factory=list)
    steps: list[StepInfo] = field(default_factory=list)

    def drive_frame_of_output(self, output_index: int) -> int | None:
        """The audio frame (generation grid) whose features drove grid frame ``output_index``."""
        for clip in self.clips:
            if clip.output_start <= output_index < clip.output_start + clip.kept:
                return clip.drive_sources[clip.keep_start + output_index - clip.output_start]
        raise IndexError(f"frame {output_index} is in no clip")


@dataclass
class GenerationResult:
    frames: np.ndarray  # uint8 [N, H, W, 3] at the output rate
    fps: Fraction
    seed: int
    plan: LongVideoPlan
    grid_fps: Fraction
    trace: GenerationTrace
    output: Path | None = None
    sidecar: Path | None = None
    random_weights: bool = False
    sidecar_data: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


class TextEmbeddingCache:
    """umT5 embeddings per prompt string, zero-padded to the DiT's text length ([1, L, dim])."""

    def __init__(self, encoder: UMT5TextEncoder, text_len: int, device: torch.device, max_items: int = 32,
                 park_after_miss: bool = False):
        self.encoder = encoder
        self.park_after_miss = park_after_miss  # max_vram_gb: on the device only while encoding
        self.text_len = text_len
        self.device = device
        self.max_items = max_items
        self._cache: dict[str, torch.Tensor] = {}
        self.misses = 0

    def __call__(self, prompt: str) -> torch.Tensor:
        hit = self._cache.pop(prompt, None)
        if hit is None:
            self.misses += 1
            self.encoder.model.to(self.device)  # back from the CPU if parked
            (emb,) = self.encoder.encode([prompt])
            emb = emb[: self.text_len].float()
            padded = emb.new_zeros(self.text_len, emb.shape[1])
            padded[: emb.shape[0]] = emb
            hit = padded[None].to(self.device)
            if len(self._cache) >= self.max_items:
                self._cache.pop(next(iter(self._cache)))
            if self.park_after_miss:
                self.park()
        self._cache[prompt] = hit  # most recent last
        return hit

    def park(self) -> None:
        """Move the encoder to the CPU (umT5-XXL is 11 GB of GPU memory the sampler can use)."""
        if self.device.type == "cuda":
            self.encoder.model.to("cpu")
            torch.cuda.empty_cache()


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _move_resident_part(model: torch.nn.Module, device: torch.device) -> None:
    """Move what :func:`enable_block_offload` keeps resident (everything outside ``model.blocks``) to
    ``device``; the blocks' host copies and device slots are left alone (a plain ``model.to()`` would
    copy every block onto the device)."""
    in_blocks = {id(m) for block in model.blocks for m in block.modules()}
    with torch.no_grad():
        for module in model.modules():
            if id(module) in in_blocks:
                continue
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is not None and t.device != device:
                        if isinstance(t, torch.nn.Parameter):
                            t.data = t.data.to(device)
                        else:
                            store[name] = t.to(device)


class _BlockOffloadedExperts(ExpertOffloader):
    """Expert switching for block-offloaded experts (``max_vram_gb``): an expert's move is a move of
    its resident part only; its blocks stay in host memory and stream in as they run."""

    def _move(self, name: str, device: torch.device, placement: str, reason: str) -> None:
        _move_resident_part(self.experts[name], device)
        self._placement[name] = placement
        self.events.append(OffloadEvent(expert=name, device=str(device), reason=reason))
        _empty_cache(self.device)


class _OnDeviceWhileUsed:
    """A module kept on the CPU and moved to ``device`` only for the duration of a call (``max_vram_gb``).

    Wraps the methods named in ``calls`` (plain or generator methods); anything else is passed through
    to the module. The allocator cache is emptied after each move back.
    """

    def __init__(self, module: torch.nn.Module, device: torch.device, calls: tuple[str, ...]):
        self.module = module
        self.device = device
        self._calls = set(calls)

    def __getattr__(self, name: str):
        attr = getattr(self.module, name)
        if name not in self._calls:
            return attr
        import inspect

        if inspect.isgeneratorfunction(getattr(type(self.module), name)):
            def generate(*args, **kwargs):
                with self.on_device():
                    yield from attr(*args, **kwargs)
            return generate

        def call(*args, **kwargs):
            with self.on_device():
                return attr(*args, **kwargs)
        return call

    def on_device(self):
        import contextlib

        @contextlib.contextmanager
        def placed():
            self._place(self.device)
            try:
                yield self.module
            finally:
                self._place(torch.device("cpu"))
                _empty_cache(self.device)
        return placed()

    def _place(self, device: torch.device) -> None:
        if isinstance(self.module, torch.nn.Module):
            self.module.to(device)
        else:  # Wav2Vec2AudioEncoder: a plain object holding its model and the device it feeds
            self.module.model.to(device)
            self.module.device = device


def apply_vram_budget(device: torch.device, max_vram_gb: float) -> float:
    """Cap this process's CUDA allocator at ``max_vram_gb`` (10^9 bytes) of ``device`` so that going over
    the budget is an out-of-memory error, not a silent success. Returns the fraction set (1.0 when
    the budget is the whole card or more)."""
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = min(1.0, max_vram_gb * 1e9 / total)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    return fraction


class S2VGenerator:
    """Loaded S2V models and the generation loop. ``S2VGenerator.load(bundle)`` then ``generate(...)``."""

    #: Several GPUs (``load(..., parallel=...)``): this rank's config and the guidance callable that
    #: ``denoise_clip`` uses (CFG-parallel / Ulysses); one process: None and ``guided_prediction``.
    parallel: ParallelConfig | None = None
    guidance = staticmethod(guided_prediction)

    def __init__(self, bundle: CheckpointBundle, experts: dict[str, torch.nn.Module], vae, text_encoder,
                 audio_encoder, device: torch.device, dit_dtype: torch.dtype, max_vram_gb: float | None = None):
        self.bundle = bundle
        self.experts = experts  # high noise -> low noise
        self.device = device
        self.dit_dtype = dit_dtype
        # max_vram_gb set: experts block-offloaded (see load); the VAE and wav2vec2 live on the CPU and
        # visit the device per call; umT5 visits it per prompt encoded.
        self.max_vram_gb = max_vram_gb
        low = max_vram_gb is not None
        self.vae = _OnDeviceWhileUsed(vae, device, ("encode", "encode_mu", "decode", "iter_decode")) if low else vae
        self.text_encoder = text_encoder
        self.audio_encoder = (_OnDeviceWhileUsed(audio_encoder, device, ("frame_features",)) if low
                              else audio_encoder)
        self.config: S2VTransformerConfig = next(iter(experts.values())).config
        self.text_cache = TextEmbeddingCache(text_encoder, self.config.text_len, device, park_after_miss=low)
        self.offloader: ExpertOffloader | None = None
        #: what ``load(fp8=...)`` did (``apply_fp8_mode``'s summary), None for the bf16 model
        self.fp8: dict | None = None
        #: LoRAs applied to the experts (:mod:`s2v_toolkit.models.lora` reports), for the sidecar
        self.loras: list[dict] = []
        self.step_cache = None
        self._schedule_dict: dict | None = None
        self._pose_path: Path | None = None

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, bundle: CheckpointBundle, device: str | torch.device | None = None,
             dtype: torch.dtype | None = None, max_vram_gb: float | None = None,
             parallel: ParallelConfig | None = None, fp8: str = "off", loras: list | None = None,
             lora_mode: str = "merge", lora_ignore_unmatched: bool = False) -> "S2VGenerator":
        """Load every component of ``bundle``. GPU: DiT and umT5 in bf16, VAE and wav2vec2 in fp32;
        CPU: everything in fp32. With several experts the later ones are loaded on the CPU and
        moved in when their steps come (offloading).

        ``max_vram_gb`` (10^9 bytes): fit the run in that much device memory. The DiT experts' blocks
        stay in (pinned) host memory and stream in one block ahead (:func:`enable_block_offload`, same
        output bitwise); umT5, the VAE and wav2vec2 load on the CPU and are on the device only while
        they run; the CUDA allocator is capped at the budget, so exceeding it is an out-of-memory error.
        On the CPU the same code paths run (tests) and no cap applies.

        ``parallel``: this rank's share of a multi-GPU run (:mod:`.distributed`; one process per GPU,
        started by torchrun): the process group is joined if needed (nccl on CUDA, gloo on CPU), the
        device becomes ``cuda:LOCAL_RANK``, and the denoiser's forwards are split (CFG-parallel and/or
        Ulysses). Every rank loads the same models; only rank 0 writes files.

        ``fp8``: an approximate fast mode of :data:`s2v_toolkit.models.fp8.FP8_MODES` (``off``,
        ``linears``, ``all-linears``, ``attention``; docs/performance.md has speed and error):
        the experts' block linears become e4m3 layers after loading (half the weight memory), and
        ``attention`` also switches self-attention to fp8 (process-wide). On a CPU the same
        arithmetic is emulated in float32 (tests).

        ``loras``: LoRA files (``LoraSpec`` or ``PATH[:STRENGTH]``) applied to every expert after
        loading and before fp8 conversion (:func:`s2v_toolkit.models.lora.apply_loras`; ``lora_mode``
        merge or runtime; unmatched keys are an error unless ``lora_ignore_unmatched``)."""
        from s2v_toolkit.models.fp8 import FP8_MODES, apply_fp8_mode

        if fp8 not in FP8_MODES:
            raise ConfigError(f"--fp8 {fp8}: choose one of {', '.join(FP8_MODES)}")
        if parallel is not None and parallel.enabled:
            device = parallel.device_for(device)
            init_distributed(parallel, device)
        device = torch.device(device) if device is not None else _default_device()
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine")
        if max_vram_gb is not None and not max_vram_gb > 0:
            raise ConfigError(f"--max-vram {max_vram_gb}: must be a positive number of GB")
        low = max_vram_gb is not None
        if low and device.type == "cuda":
            apply_vram_budget(device, max_vram_gb)
            # Growable segments: the VAE's per-chunk tensors of varying sizes otherwise leave GBs reserved
            # but unusable under the cap (measured: 6.3 GB reserved-unallocated at an OOM in the motion
            # encode at 704x1280, bench/results/h100_low_vram_run1.json).
            try:
                torch.cuda.memory._set_allocator_settings("expandable_segments:True")
            except (AttributeError, RuntimeError):  # older builds: keep the default allocator
                pass
        # What rests on the device between uses (everything, unless a budget is given).
        home = torch.device("cpu") if low else device
        dit_dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        configs = bundle.component_configs
        vae_config = WanVAEConfig.from_dict(configs["vae"]) if "vae" in configs else None
        t5_config = UMT5Config.from_dict(configs["umt5"]) if "umt5" in configs else None

        experts: dict[str, torch.nn.Module] = {}
        for k, path in enumerate(bundle.transformers):
            where = device if k == 0 and not low else torch.device("cpu")
            # A single-file repack carries no config: use the checkpoint folder's (S2V-14B if none).
            config = read_transformer_config(bundle.root) if Path(path).is_file() else None
            experts[f"expert{k + 1}"] = load_s2v_transformer(path, config=config, device=where, dtype=dit_dtype)
        first = next(iter(experts.values())).config
        for name, module in experts.items():
            if module.config != first:
                raise ConfigError(f"{name} ({bundle.transformers[list(experts).index(name)]}): its config "
                                  "differs from the first expert's; experts must share one architecture")
        vae = load_wan_vae(bundle.vae, device=home, dtype=torch.float32, config=vae_config)
        t5_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        tokenizer = load_umt5_tokenizer(bundle.tokenizer)
        t5 = UMT5TextEncoder(load_umt5_encoder(bundle.t5, device=home, dtype=t5_dtype, config=t5_config),
                             tokenizer)
        audio = load_audio_encoder(bundle.wav2vec2, device=home, dtype=torch.float32)
        if t5.model.config.dim != first.text_dim:
            raise ConfigError(f"{bundle.t5}: text encoder width {t5.model.config.dim} != the DiT's "
                              f"text_dim {first.text_dim}")
        lora_reports: list[dict] = []
        if loras:
            from s2v_toolkit.models.lora import apply_loras

            for module in experts.values():
                lora_reports = apply_loras(module, loras, mode=lora_mode, ignore_unmatched=lora_ignore_unmatched)
        fp8_info = None
        if fp8 != "off":
            # After loading (checkpoints hold bf16 weights), before offload (the e4m3 buffers are what
            # streams in) and fusing (either order works).
            for module in experts.values():
                fp8_info = apply_fp8_mode(module, fp8, device)
        if device.type == "cuda" and os.environ.get("S2VT_FUSED", "1") != "0":
            # Fused elementwise kernels (docs/performance.md: 1.14-1.30x per forward on an H100,
            # same weights; S2VT_FUSED=0 turns them off). Experts parked on the CPU get them too.
            for module in experts.values():
                enable_fused_blocks(module)
        if low:
            # Blocks to pinned host memory, the rest of the first expert resident (the others' rest on
            # the CPU until their steps come: see _BlockOffloadedExperts).
            for k, module in enumerate(experts.values()):
                enable_block_offload(module, device, prefetch=1)
                if k > 0:
                    _move_resident_part(module, torch.device("cpu"))
            _empty_cache(device)
        generator = cls(bundle, experts, vae, t5, audio, device, dit_dtype, max_vram_gb=max_vram_gb)
        generator.fp8 = fp8_info
        generator.loras = lora_reports
        if parallel is not None:
            generator.enable_parallel(parallel)
        return generator

    def use_loras(self, loras: list | None, ignore_unmatched: bool = False) -> list[dict]:
        """Switch the run-time LoRAs (e.g. per character): the previous run-time LoRAs are removed,
        then ``loras`` applied in ``runtime`` mode; merged LoRAs of :meth:`load` stay. Returns the
        reports now in effect (also recorded in the sidecar)."""
        from s2v_toolkit.models.lora import apply_loras, remove_loras

        merged = [r for r in self.loras if r.get("mode") == "merge"]
        for module in self.experts.values():
            remove_loras(module)
        added: list[dict] = []
        if loras:
            for module in self.experts.values():
                added = apply_loras(module, loras, mode="runtime", ignore_unmatched=ignore_unmatched)
        self.loras = merged + added
        return self.loras

    def enable_parallel(self, parallel: ParallelConfig) -> None:
        """Split the denoiser's forwards over the ranks of ``parallel`` (collective: every rank calls
        it). The experts stay plain modules (the offloader moves them); the guidance callable swaps in
        their sequence-parallel wrappers."""
        if parallel.enabled:
            parallel.check_heads(self.config.num_heads)
        _, self.guidance = parallel_models(parallel, self.experts)
        self.parallel = parallel

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0, or the only process)."""
        return self.parallel is None or self.parallel.is_main

    def expert_offloader(self, schedule: ExpertSchedule, offload: bool = True) -> ExpertOffloader:
        """The expert switcher for ``schedule``: with ``max_vram_gb``, one that moves the experts'
        resident parts only (their blocks are streamed); else the plain one (parks inactive experts
        on the CPU when ``offload`` and on a GPU)."""
        if self.max_vram_gb is not None:
            return _BlockOffloadedExperts.for_schedule(schedule, self.experts, device=self.device, offload=True)
        return ExpertOffloader.for_schedule(schedule, self.experts, device=self.device,
                                            offload=offload and self.device.type == "cuda")

    # -- pieces ---------------------------------------------------------------------------------------
    def expert_schedule(self, settings: GenerationSettings) -> ExpertSchedule:
        names = list(self.experts)
        if len(names) == 1:
            if settings.boundary is not None:
                warnings.warn("--boundary is ignored: the checkpoint has a single expert", stacklevel=2)
            return ExpertSchedule.single(names[0], settings.guidance)
        if len(names) != 2:
            raise ConfigError(f"{len(names)} experts: only one or two are supported")
        if settings.boundary is None:
            raise ConfigError("two experts need --boundary (e.g. 0.9: the first expert for t >= 900)")
        low = settings.guidance if settings.guidance2 is None else settings.guidance2
        return ExpertSchedule.two_experts(Expert(names[0], settings.guidance), Expert(names[1], low),
                                          settings.boundary)

    def encode_reference(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[1, 3, 1, H, W]`` in [-1, 1] -> normalised latent ``[1, 16, 1, H/8, W/8]``."""
        return self.vae.encode(pixels.to(self.device), chunked=self._vae_chunked).float()

    @property
    def _vae_chunked(self) -> bool:
        # Chunked (the official path) bounds GPU memory; the whole-sequence path gives the same
        # numbers and is much faster on a CPU.
        return self.device.type == "cuda"

    def frame_features(self, waveform: np.ndarray, grid_fps: Fraction, num_frames: int) -> torch.Tensor:
        """``[num_frames, layers, dim]`` audio features on the generation grid (float32, on device)."""
        feats = self.audio_encoder.frame_features(waveform, grid_fps, num_frames=num_frames)
        return feats.to(self.device, torch.float32)

    def _batched_cfg(self, settings: GenerationSettings, tokens: int) -> bool:
        if settings.cfg_batch != "auto":
            return settings.cfg_batch == "on"
        if self.device.type != "cuda":
            return True
        # Activations of one forward were measured at ~60 bytes per token per model width (bf16,
        # S2V-14B on an H100); batching both branches doubles them.
        need = 2 * tokens * self.config.dim * 60 * 1.2
        free, _ = torch.cuda.mem_get_info(self.device)
        if self.max_vram_gb is not None:  # the budget, not the card, is the limit
            free = min(free, self.max_vram_gb * 1e9 - torch.cuda.memory_allocated(self.device))
        return free > need

    # -- generation -----------------------------------------------------------------------------------
    def generate(self, image: ReferenceImage | str | Path, audio: DriveAudio | str | Path,
                 settings: GenerationSettings, output: str | Path | None = None, *, preset: str | None = None,
                 overwrite: bool = False, progress: bool = False, step_callback: StepCallback | None = None,
                 frame_features: torch.Tensor | None = None,
                 initial_motion: torch.Tensor | None = None,
                 pose: PoseVideo | str | Path | None = None,
                 resume_dir: str | Path | None = None) -> GenerationResult:
        """Generate the shot; write ``output`` (+ sidecar) when given.

        ``frame_features``: precomputed ``[frames, layers, dim]`` features on the generation grid
        (skips wav2vec2; tests and callers that already have them). ``initial_motion``: pixel frames
        ``[1, 3, T, H, W]`` in [-1, 1] that precede the shot (continue from earlier footage); the first
        clip then keeps its motion tokens and nothing is trimmed. ``pose``: a pose video that drives
        the body (its frames follow the generation grid by time, like the audio). ``resume_dir``:
        save every finished clip there and continue after the last one saved by an earlier, killed
        run with the same inputs (see :mod:`clip_store`); removed once the output is written.

        Several GPUs (``load(..., parallel=...)``): every rank calls this with the same arguments; the
        seed is rank 0's (broadcast), only rank 0 writes ``output``, its sidecar and the resume
        parts; every rank returns the frames; the ranks meet at a barrier before returning.
        """
        started = time.time()
        progress = progress and self.is_main
        settings.validate()
        if output is not None:  # fail before minutes of sampling, not after
            from s2v_toolkit.errors import OutputError
            from s2v_toolkit.media.writer import preset_for

            preset_for(Path(output), preset)
            if Path(output).exists() and not overwrite:
                raise OutputError(output, "already exists (choose another name or allow overwriting)")
        if not isinstance(image, ReferenceImage):
            image = load_reference_image(image)
        if not isinstance(audio, DriveAudio):
            audio = load_drive_audio(audio, settings.max_audio_seconds)
        if pose is not None and not isinstance(pose, PoseVideo):
            pose = load_pose_video(pose)
        self._pose_path = pose.path if pose is not None else None
        out_h, out_w = fit_size(image.height, image.width, parse_max_area(settings.size))

        num_output = output_frame_count(audio.duration, settings.fps)
        if num_output < 1:
            raise ConfigError(f"{audio.path}: audio of {float(audio.duration):.3f} s gives no frame at "
                              f"{settings.fps} fps")
        if settings.retime == "native":
            grid_fps, num_grid = settings.fps, num_output
        else:
            grid_fps, num_grid = Fraction(MODEL_FPS), model_frames_for_output(num_output, settings.fps)
        from_motion = settings.start_from_reference or initial_motion is not None
        def plan_for(frames: int) -> LongVideoPlan:
            return plan_long_video(frames, infer_frames=settings.infer_frames, motion_frames=self.config.motion_frames,
                                   aligned=settings.aligned, start_from_reference=from_motion,
                                   fit_last_clip=settings.fit_last_clip)

        plan = plan_for(num_grid)
        if settings.num_clips is not None and settings.num_clips < plan.num_clips:
            # Preview (the official --num_clip): the first N clips only, the same frames as in the full run.
            num_grid = sum(c.kept for c in plan.clips[:settings.num_clips])
            plan = plan_for(num_grid)
            num_output = (num_grid if settings.retime == "native"
                          else _outputs_within(num_grid, settings.fps))

        if frame_features is None:
            frame_features = self.frame_features(audio.waveform, grid_fps, num_grid)
        frame_features = frame_features.to(self.device, torch.float32)
        ref_pixels = image.fitted(out_h, out_w, settings.reference_fit)
        self.last_reference_pixels = ref_pixels  # [1, 3, 1, H, W] in [-1, 1], as fed to the VAE (tests)
        store = None
        if resume_dir is not None and self.is_main:
            unseeded = {k: v for k, v in settings.to_dict().items() if k != "seed"}
            key = hash_inputs(unseeded, self.bundle.to_dict(), str(self.device), str(self.dit_dtype),
                              str(pose.path) if pose is not None else None, ref_pixels, frame_features,
                              initial_motion if initial_motion is not None else "no initial motion")
            store = ClipStore(resume_dir, key)
            if settings.seed is None:  # a re-run without --seed continues the interrupted run's seed
                settings.seed = store.stored_seed()
        seed = settings.resolved_seed()
        if self.parallel is not None and self.parallel.enabled:
            # Every rank must draw the same noise: rank 0's seed (given, stored or random) wins.
            seed = settings.seed = broadcast_from_main(self.parallel, seed)
        grid, trace = self._sample_plan(plan, ref_pixels, frame_features, settings, seed, progress,
                                        step_callback, initial_motion, pose, grid_fps, store)
        frames = _retime(grid, num_output, settings.fps, settings.retime)

        result = GenerationResult(frames=frames, fps=settings.fps, seed=seed, plan=plan, grid_fps=grid_fps,
                                  trace=trace, random_weights=self.bundle.random_weights)
        result.sidecar_data = self._sidecar(settings, image, audio, result, (out_h, out_w), time.time() - started)
        if output is not None and self.is_main:
            self.write(result, output, audio, preset=preset, overwrite=overwrite, progress=progress)
            if store is not None:
                store.clear()
        barrier(self.parallel)  # the output exists once any rank returns
        return result

    def _sample_plan(self, plan: LongVideoPlan, ref_pixels: torch.Tensor, features: torch.Tensor,
                     settings: GenerationSettings, seed: int, progress: bool,
                     step_callback: StepCallback | None, initial_motion: torch.Tensor | None,
                     pose: PoseVideo | None = None, grid_fps: Fraction = Fraction(MODEL_FPS),
                     store: ClipStore | None = None) -> tuple[np.ndarray, GenerationTrace]:
        cfg = self.config
        device = self.device
        schedule = self.expert_schedule(settings)
        self._schedule_dict = schedule.to_dict()
        self.offloader = self.expert_offloader(schedule, offload=settings.offload)
        scheduler = make_scheduler(settings.scheduler)
        step_cache = self._step_cache(settings)

        low = self.max_vram_gb is not None
        if low:  # the DiT's resident part off the device while the encoders and the VAE run
            self.offloader.offload_all()
        ref_latent = self.encode_reference(ref_pixels)
        _, channels, _, lat_h, lat_w = ref_latent.shape
        lat_frames = max(c.generated for c in plan.clips) // 4  # the longest clip (for the CFG batch choice)
        text_cond, text_uncond = self.encode_prompts(settings.prompt, settings.negative_prompt)
        num_drive = features.shape[0]
        zero_row = features.new_zeros(features.shape[1:])

        # Motion history: the last `motion_frames` frames before the clip, float pixels on the device.
        motion = torch.zeros(1, 3, cfg.motion_frames, ref_pixels.shape[-2], ref_pixels.shape[-1],
                             device=device)
        if initial_motion is not None:
            tail = initial_motion.to(device, torch.float32)[:, :, -cfg.motion_frames:]
            motion = torch.cat([motion, tail], dim=2)[:, :, -cfg.motion_frames:]
        elif plan.start_from_reference:
            # official init_first_frame: the reference fills the last 6 motion frames
            motion[:, :, -OFFICIAL_REFERENCE_MOTION_FRAMES:] = ref_pixels.to(device)

        per_frame = (lat_h // 2) * (lat_w // 2)  # tokens per latent frame (patch 1x2x2)
        tokens = per_frame * (lat_frames + 1) + (per_frame * 3 // 2 if not plan.clips[-1].drop_motion else 0)
        batched = self._batched_cfg(settings, tokens)
        trace = GenerationTrace()
        kept_frames: list[np.ndarray] = []
        clip_bar = None
        if progress and plan.num_clips > 1:
            from tqdm import tqdm

            clip_bar = tqdm(total=plan.num_clips, desc="clips", unit="clip")
        saved = store.load(seed) if store is not None else []
        if self.parallel is not None and self.parallel.enabled:
            saved = broadcast_from_main(self.parallel, saved)  # the store is rank 0's
        saved = saved[: plan.num_clips]
        if store is not None:
            store.start(seed)
        for done in saved:  # resume: the finished clips of an earlier run with the same inputs
            kept_frames.append(done.frames)
            motion = torch.from_numpy(done.motion).to(device)
            trace.clips.append(ClipTrace(**done.trace))
            trace.steps.extend(StepInfo(**s) for s in done.steps)
        if clip_bar and saved:
            clip_bar.update(len(saved))
        try:
            for clip in plan.clips[len(saved):]:
                sources = [drive_source_index(d, num_drive) for d in clip.drive_range]
                rows = torch.stack([features[s] if s is not None else zero_row for s in sources])
                audio_cond = to_transformer_layout(rows)
                with_motion = not clip.drop_motion
                motion_latents = self.encode_motion(motion) if with_motion else None
                noise = clip_noise((1, channels, clip.generated // 4, lat_h, lat_w), seed, clip.index,
                                   device if settings.noise_device == "model" else torch.device("cpu"),
                                   self.dit_dtype if settings.noise_device == "model" else torch.float32
                                   ).to(device)
                shared = {"ref_latents": ref_latent, "motion_latents": motion_latents,
                          "drop_motion_frames": not with_motion}
                if pose is not None:
                    shared["pose_latents"] = self._pose_latents(pose, list(clip.drive_range), grid_fps,
                                                                ref_pixels.shape[-2], ref_pixels.shape[-1])
                latents = denoise_clip(
                    self.offloader, schedule, scheduler, noise, shared,
                    cond={"text_embeddings": text_cond, "audio_features": audio_cond},
                    uncond={"text_embeddings": text_uncond, "audio_features": torch.zeros_like(audio_cond)},
                    steps=settings.steps, shift=settings.shift, batched_cfg=batched,
                    step_callback=step_callback, clip_index=clip.index, progress=progress, trace=trace.steps,
                    guidance=self.guidance, timesteps=settings.sampler_timesteps, step_cache=step_cache)
                lead = motion_latents if with_motion else ref_latent
                if self.max_vram_gb is not None:
                    # The DiT's resident part off the device while the VAE decodes (and back for the next
                    # clip's first step); decoded frames go to the CPU chunk by chunk, only the clip's
                    # kept frames come back (same numbers as one decode on the device).
                    self.offloader.offload_all()
                    decoded = self._decode_to_host(torch.cat([lead, latents], dim=2), clip.generated)
                    clip_frames = decoded.to(device)
                else:
                    decoded = self.vae.decode(torch.cat([lead, latents], dim=2), chunked=self._vae_chunked)
                    clip_frames = decoded[:, :, -clip.generated:].float()
                kept = clip_frames[:, :, clip.keep_start:clip.keep_start + clip.kept]
                motion = torch.cat([motion, kept], dim=2)[:, :, -cfg.motion_frames:]
                kept_frames.append(_to_uint8(kept))
                trace.clips.append(ClipTrace(index=clip.index, drive_sources=sources, keep_start=clip.keep_start,
                                             kept=clip.kept, output_start=clip.output_start,
                                             with_motion=with_motion))
                if store is not None:
                    # (per-clip seeds: no generator state to carry; the store keeps the clip's own)
                    store.save(clip.index, kept_frames[-1], motion,
                               torch.Generator().manual_seed(seed + clip.index).get_state(),
                               trace.clips[-1].to_dict(),
                               [s.to_dict() for s in trace.steps if s.clip_index == clip.index])
                if clip_bar:
                    clip_bar.update(1)
        finally:
            if clip_bar:
                clip_bar.close()
        return np.concatenate(kept_frames, axis=0), trace

    def _step_cache(self, settings: GenerationSettings):
        """A fresh TeaCache for this run when ``settings.cache`` asks for one (kept for the sidecar)."""
        from s2v_toolkit.models.step_cache import TeaCache, parse_cache

        params = parse_cache(settings.cache)
        if params is not None and self.parallel is not None and self.parallel.sequence_degree > 1:
            raise ConfigError("--cache with a Ulysses (sequence-parallel) run is not supported; use "
                              "--parallel cfg or one GPU")
        self.step_cache = TeaCache(params) if params is not None else None
        return self.step_cache

    def encode_prompts(self, *prompts: str) -> list[torch.Tensor]:
        """Embeddings of ``prompts`` through the cache; umT5 goes back to the CPU once, after all of them."""
        park_after_miss, self.text_cache.park_after_miss = self.text_cache.park_after_miss, False
        try:
            return [self.text_cache(p) for p in prompts]
        finally:
            self.text_cache.park_after_miss = park_after_miss
            self.text_cache.park()

    def encode_motion(self, motion: torch.Tensor) -> torch.Tensor:
        """Motion latents of the pixel history ``[1, 3, T, H, W]``. With ``max_vram_gb`` the experts'
        resident parts leave the device first (the 73-frame encode at 704x1280 peaks at 14 GB above
        what is resident; measured) and come back with the clip's first step."""
        if self.max_vram_gb is not None and self.offloader is not None:
            self.offloader.offload_all()
        return self.vae.encode(motion, chunked=self._vae_chunked).float()

    def _decode_to_host(self, latents: torch.Tensor, last: int) -> torch.Tensor:
        """The last ``last`` decoded frames, float32 on the CPU, with at most one latent's frames on the
        device at a time (chunked path; the whole-sequence path on a CPU device)."""
        if not self._vae_chunked:
            return self.vae.decode(latents, chunked=False)[:, :, -last:].float().cpu()
        chunks = [frames.float().cpu() for frames in self.vae.iter_decode(latents)]
        return torch.cat(chunks, dim=2)[:, :, -last:]

    def _pose_latents(self, pose: PoseVideo, grid_frames: list[int], grid_fps: Fraction, out_h: int,
                      out_w: int) -> torch.Tensor:
        """Pose latents of one clip: its frames behind a copy of the first (the causal VAE's leading
        frame, as the clip's own latents sit behind a leading block), encoded, the leading latent dropped."""
        pixels = fit_pixels(pose.frames(grid_frames, grid_fps), out_h, out_w).to(self.device)
        pixels = torch.cat([pixels[:, :, :1], pixels], dim=2)
        return self.vae.encode(pixels, chunked=self._vae_chunked).float()[:, :, 1:]

    # -- output ---------------------------------------------------------------------------------------
    def _sidecar(self, settings: GenerationSettings, image: ReferenceImage, audio: DriveAudio,
                 result: GenerationResult, size: tuple[int, int], seconds: float) -> dict[str, Any]:
        schedule = ExpertSchedule.from_dict(self._schedule_dict) if self._schedule_dict else None
        data = {
            "tool": f"s2v-toolkit {__version__}",
            "kind": "s2v_generation",
            "model_kind": self.bundle.kind,
            "random_weights": self.bundle.random_weights,
            "checkpoint": self.bundle.to_dict(),
            "device": str(self.device),
            "max_vram_gb": self.max_vram_gb,
            "fp8": self.fp8,
            "loras": self.loras,
            "preset": settings.preset,
            "step_cache": self.step_cache.to_dict() if self.step_cache is not None else None,
            "parallel": self.parallel.to_dict() if self.parallel is not None else None,
            "dit_dtype": str(self.dit_dtype).replace("torch.", ""),
            "settings": settings.to_dict(),
            "seed": result.seed,
            "reference_image": str(image.path),
            "audio": str(audio.path),
            "audio_duration_s": float(audio.duration),
            "pose_video": str(self._pose_path) if self._pose_path else None,
            "width": size[1],
            "height": size[0],
            "fps": f"{result.fps.numerator}/{result.fps.denominator}",
            "frames": result.num_frames,
            "generation_fps": f"{result.grid_fps.numerator}/{result.grid_fps.denominator}",
            "retime": settings.retime,
            "plan": result.plan.to_dict(),
            "experts": schedule.to_dict() if schedule else None,
            "expert_steps": [{"clip": s.clip_index, "step": s.step_index, "timestep": s.timestep,
                              "expert": s.expert, "guidance": s.guidance_scale}
                             for s in result.trace.steps if s.clip_index == 0],
            "seconds": round(seconds, 3),
        }
        if self.bundle.random_weights:
            data["warning"] = RANDOM_WEIGHTS_WARNING
        return data

    def write(self, result: GenerationResult, output: str | Path, audio: DriveAudio, preset: str | None = None,
              overwrite: bool = False, progress: bool = False) -> Path:
        """Write the video (line audio muxed, original channels at 48 kHz) and its sidecar, atomically."""
        from s2v_toolkit.media import atomic_output, read_audio_channels, write_video

        output = Path(output)
        try:
            mux, rate = read_audio_channels(audio.path, 0, float(audio.duration) + 1.0, sample_rate=48000)
        except Exception:  # noqa: BLE001 - fall back to the 16 kHz mono we already have
            mux, rate = audio.waveform, audio.sample_rate
        path = write_video(output, result.frames, result.fps, preset=preset, audio=mux, audio_rate=rate,
                           overwrite=overwrite, progress=progress)
        side = sidecar_path(path)
        data = dict(result.sidecar_data, output=str(path))
        with atomic_output(side, overwrite=True) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        result.output, result.sidecar = path, side
        return path


def clip_noise(shape: tuple[int, ...], seed: int, clip_index: int, device: torch.device,
               dtype: torch.dtype) -> torch.Tensor:
    """The starting noise of clip ``clip_index``: a fresh generator seeded ``seed + clip_index`` on
    ``device``, drawn in ``dtype`` (official ``speech2video.py``: ``seed_g.manual_seed(seed + r)``,
    ``torch.randn(..., dtype=param_dtype, device=self.device, generator=seed_g)``). A clip's noise so
    does not depend on the clips before it: clip 2 alone is clip 2 of the whole run."""
    g = torch.Generator(device=device).manual_seed(seed + clip_index)
    return torch.randn(shape, generator=g, dtype=dtype, device=device)


def _outputs_within(num_grid: int, fps: Fraction) -> int:
    """The most output frames whose retime sources lie within the first ``num_grid`` 16 fps frames."""
    n = max(1, int(num_grid * fps / MODEL_FPS))
    while n > 1 and model_frames_for_output(n, fps) > num_grid:
        n -= 1
    return n


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``[1, 3, T, H, W]`` in [-1, 1] -> ``[T, H, W, 3]`` uint8."""
    x = ((frames[0].clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


def _retime(grid: np.ndarray, num_output: int, fps: Fraction, method: str) -> np.ndarray:
    """Grid frames -> output frames (identity for ``native``)."""
    if method == "native":
        return grid[:num_output]
    out = np.empty((num_output,) + grid.shape[1:], np.uint8)
    for n, (i0, i1, w) in enumerate(retime_sources(num_output, fps)):
        if method == "nearest" or w == 0:
            out[n] = grid[i1 if w >= 0.5 else i0]
        else:
            out[n] = np.round((1 - w) * grid[i0].astype(np.float32) + w * grid[i1]).astype(np.uint8)
    return out

