"""Several GPUs for one generation: CFG-parallel, Ulysses sequence parallel, or both.

One process per GPU, started by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``). Every rank loads the same models, computes the same inputs (the
seed is rank 0's, broadcast) and runs the same denoising loop; only the transformer forwards are
split (building blocks in :mod:`s2v_toolkit.models.parallel`):

* ``cfg`` (2 ranks): rank 0 runs the conditional branch, rank 1 the unconditional one, the two
  predictions are exchanged and both ranks combine them (:func:`cfg_parallel_prediction`);
* ``ulysses`` (P ranks, P divides the heads): every forward's token sequence is sharded over the
  ranks (:class:`SequenceParallelTransformer`), guidance as on one GPU;
* ``cfg+ulysses`` (2P ranks): two sequence-parallel groups of P, one per guidance branch.

Usage (what ``s2vt generate --parallel`` does)::

    config = resolve_parallel("auto")              # from WORLD_SIZE / RANK
    init_distributed(config, device)               # process group (nccl on CUDA, gloo on CPU)
    generator = S2VGenerator.load(bundle, device=config.device_for(device), parallel=config)
    result = generator.generate(...)               # only rank 0 writes files
    finish_distributed(config)

Lower level: ``models, guidance = parallel_models(config, experts)`` gives the modules and the
guidance callable to hand to :func:`~s2v_toolkit.pipelines.sampling.denoise_clip`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Callable, Mapping

import torch
from torch import nn

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.pipelines.guidance import guided_prediction

__all__ = ["PARALLEL_MODES", "ParallelConfig", "resolve_parallel", "init_distributed", "parallel_models",
           "broadcast_from_main", "barrier", "finish_distributed", "GuidanceFn"]

PARALLEL_MODES = ("none", "cfg", "ulysses", "cfg+ulysses")

#: ``guidance(model, shared, cond, uncond, scale, batched=...)``: same signature as ``guided_prediction``.
GuidanceFn = Callable[..., Any]


@dataclass(frozen=True)
class ParallelConfig:
    """How one generation is spread over the ranks of a ``torchrun`` launch.

    ``sequence_degree``: the number of ranks that share one forward's token sequence (1 = no
    sequence parallel): the world size for ``ulysses``, half of it for ``cfg+ulysses``.
    """

    mode: str = "none"
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    sequence_degree: int = 1

    def __post_init__(self) -> None:
        if self.mode not in PARALLEL_MODES:
            raise ConfigError(f"--parallel {self.mode}: unknown mode "
                              f"(choose from auto, {', '.join(PARALLEL_MODES)})")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} outside a world of {self.world_size} processes")
        need = {"none": "1 process", "cfg": "2 processes", "ulysses": "2 or more processes",
                "cfg+ulysses": "an even number of processes, 4 or more"}[self.mode]
        ok = {"none": self.world_size == 1, "cfg": self.world_size == 2, "ulysses": self.world_size >= 2,
              "cfg+ulysses": self.world_size >= 4 and self.world_size % 2 == 0}[self.mode]
        if not ok:
            if self.world_size == 1:
                n = 4 if self.mode == "cfg+ulysses" else 2
                launch = ("this is a single process (WORLD_SIZE unset or 1): launch with "
                          f"torchrun --standalone --nproc_per_node {n} -m s2v_toolkit generate ...")
            else:
                launch = f"this launch has {self.world_size}"
            raise ConfigError(f"--parallel {self.mode} needs {need}; {launch}")
        degree = {"none": 1, "cfg": 1, "ulysses": self.world_size,
                  "cfg+ulysses": self.world_size // 2}[self.mode]
        if self.sequence_degree != degree:
            raise ConfigError(f"--parallel {self.mode} on {self.world_size} processes has sequence degree "
                              f"{degree}, not {self.sequence_degree}")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the output, the sidecar and the resume parts."""
        return self.rank == 0

    @property
    def uses_cfg(self) -> bool:
        return self.mode in ("cfg", "cfg+ulysses")

    @classmethod
    def for_mode(cls, mode: str, world_size: int, rank: int = 0,
                 local_rank: int | None = None) -> "ParallelConfig":
        """The config of ``mode`` on ``world_size`` ranks (``auto`` chooses, see :func:`resolve_parallel`)."""
        if mode == "auto":
            mode = auto_mode(world_size)
        degree = {"ulysses": world_size, "cfg+ulysses": world_size // 2}.get(mode, 1)
        return cls(mode=mode, world_size=world_size, rank=rank,
                   local_rank=rank if local_rank is None else local_rank, sequence_degree=degree)

    def check_heads(self, num_heads: int) -> None:
        """The sequence degree must divide the model's attention heads (40 for the 14B: 2, 4, 5, 8...)."""
        if num_heads % self.sequence_degree:
            divisors = [d for d in range(2, num_heads + 1) if num_heads % d == 0]
            raise ConfigError(
                f"--parallel {self.mode} on {self.world_size} processes splits each forward over "
                f"{self.sequence_degree} ranks, which must divide the model's {num_heads} attention heads "
                f"(possible degrees: {', '.join(map(str, divisors[:8]))}); "
                "use another process count or --parallel")

    def device_for(self, device: str | torch.device | None) -> str | torch.device | None:
        """The device of this rank: ``cuda:LOCAL_RANK`` for ``None``/``cuda``; CPU stays CPU."""
        if not self.enabled:
            return device
        dev = torch.device(device) if device is not None else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        if dev.type != "cuda":
            return dev
        if dev.index is not None and self.world_size > 1:
            raise ConfigError(f"--device {dev} with --parallel {self.mode}: every rank uses its own GPU "
                              "(cuda:LOCAL_RANK); pass --device cuda or leave it out")
        return torch.device("cuda", self.local_rank)

    def to_dict(self) -> dict:
        return asdict(self)


def auto_mode(world_size: int) -> str:
    """none for 1 process, cfg for 2, cfg+ulysses for an even number > 2, ulysses for an odd one > 1."""
    if world_size <= 1:
        return "none"
    if world_size == 2:
        return "cfg"
    return "cfg+ulysses" if world_size % 2 == 0 else "ulysses"


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_parallel(mode: str = "auto", env: Mapping[str, str] | None = None) -> ParallelConfig:
    """The :class:`ParallelConfig` of ``mode`` for this process, from the torchrun environment
    (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``; unset = one process). Raises :class:`ConfigError`
    when the mode does not fit the number of processes."""
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={world}: must be at least 1")
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", rank)
    if mode not in ("auto",) + PARALLEL_MODES:
        raise ConfigError(f"--parallel {mode}: unknown mode (choose from auto, {', '.join(PARALLEL_MODES)})")
    if mode == "none" and world > 1:
        raise ConfigError(f"--parallel none in a launch of {world} processes: every process would render the "
                          "whole shot; use --parallel auto/cfg/ulysses/cfg+ulysses, or run without torchrun")
    return ParallelConfig.for_mode(mode, world, rank, local_rank)


def init_distributed(config: ParallelConfig, device: str | torch.device | None = None,
                     timeout_s: float | None = None) -> None:
    """Join the process group of a torchrun launch (``env://``: ``MASTER_ADDR``/``MASTER_PORT``).

    Backend ``nccl`` when this rank computes on CUDA (after ``torch.cuda.set_device(LOCAL_RANK)``),
    ``gloo`` on the CPU. Does nothing for ``mode == "none"`` or when the group already exists.
    """
    import torch.distributed as dist

    if not config.enabled or dist.is_initialized():
        return
    dev = config.device_for(device)
    cuda = torch.device(dev).type == "cuda"
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ConfigError(f"--parallel {config.mode}: {name} is not set; launch with "
                              f"torchrun --standalone --nproc_per_node {config.world_size} ...")
    if cuda:
        torch.cuda.set_device(config.local_rank)
    kwargs: dict[str, Any] = {}
    if timeout_s is not None:
        kwargs["timeout"] = timedelta(seconds=timeout_s)
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", world_size=config.world_size,
                            rank=config.rank, **kwargs)


def _world_group_ready(config: ParallelConfig) -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        raise ConfigError(f"--parallel {config.mode}: torch.distributed is not initialised "
                          "(call init_distributed first)")
    if dist.get_world_size() != config.world_size or dist.get_rank() != config.rank:
        raise ConfigError(f"parallel config (rank {config.rank} of {config.world_size}) does not match the "
                          f"process group (rank {dist.get_rank()} of {dist.get_world_size()})")


def parallel_models(config: ParallelConfig, experts: Mapping[str, nn.Module]
                    ) -> tuple[dict[str, nn.Module], GuidanceFn]:
    """(models to use, guidance callable) for ``denoise_clip`` on this rank.

    * ``none``: the experts and ``guided_prediction``;
    * ``cfg``: the experts and :func:`cfg_parallel_prediction` over the world group;
    * ``ulysses``: :class:`SequenceParallelTransformer` wrappers over the world group and
      ``guided_prediction``;
    * ``cfg+ulysses``: wrappers over this rank's sequence group and CFG-parallel over its CFG pair
      (:func:`cfg_and_sequence_groups`; collective: every rank must call this).

    The guidance callable also accepts the plain experts: it swaps in their wrappers, so an
    :class:`ExpertOffloader` can keep moving the plain modules. Needs the process group
    (:func:`init_distributed`) unless the mode is ``none``.
    """
    if not config.enabled:
        return dict(experts), guided_prediction
    from s2v_toolkit.models.parallel import (
        SequenceParallelTransformer,
        cfg_and_sequence_groups,
        cfg_parallel_prediction,
    )

    _world_group_ready(config)
    for module in experts.values():
        heads = getattr(getattr(module, "config", None), "num_heads", None)
        if heads is not None:
            config.check_heads(heads)
    cfg_group = seq_group = None
    if config.mode == "cfg+ulysses":
        cfg_group, seq_group = cfg_and_sequence_groups(config.sequence_degree)
    if config.sequence_degree > 1:
        models = {name: SequenceParallelTransformer(m, seq_group) for name, m in experts.items()}
    else:
        models = dict(experts)
    wrapped = {id(experts[name]): models[name] for name in experts}

    if config.uses_cfg:
        def guidance(model, shared, cond, uncond, scale, batched=True, static=None):
            # Each rank runs one branch: the batched/unbatched choice does not apply.
            return cfg_parallel_prediction(wrapped.get(id(model), model), shared, cond, uncond, scale,
                                           group=cfg_group, static=static)
    else:
        def guidance(model, shared, cond, uncond, scale, batched=True, static=None):
            return guided_prediction(wrapped.get(id(model), model), shared, cond, uncond, scale,
                                     batched=batched, static=static)
    guidance.parallel = config  # type: ignore[attr-defined]
    return models, guidance


def broadcast_from_main(config: ParallelConfig | None, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (any picklable object); ``value`` itself without parallelism."""
    if config is None or not config.enabled:
        return value
    import torch.distributed as dist

    box = [value if config.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(config: ParallelConfig | None) -> None:
    if config is not None and config.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


def finish_distributed(config: ParallelConfig | None, wait: bool = True) -> None:
    """Wait for every rank (``wait``), then leave the process group (the end of a parallel run).

    After a failure on this rank pass ``wait=False``: the other ranks may be inside a collective that
    this one never joins, so a barrier could block until the timeout (torchrun stops them once this
    process exits non-zero)."""
    if config is None or not config.enabled:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
