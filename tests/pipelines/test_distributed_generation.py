"""Multi-GPU generation (s2v_toolkit.pipelines.distributed) against the one-process generation.

The real generation path (``S2VGenerator.load(..., parallel=...)`` then ``generate``) runs in 2 and 4
CPU processes talking over gloo on 127.0.0.1, started the way torchrun starts them (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` in the environment; this file run as a
script is the worker). Each rank saves its final latents, frames, seed and a record of which
guidance branch each transformer forward computed; the tests compare them with a one-process run
of the same seed in the pytest process. A hung collective fails the fixture after a bounded timeout.

Tolerances (float32, tiny random model, 2 clips of 3 steps, guidance 4.5; the reference runs with
one torch thread, like the workers): CFG-parallel runs exactly the forwards of the unbatched
one-process guidance (``cfg_batch off``: the conditional one on rank 0, the unconditional one on
rank 1, all_gather moves them bit for bit), so its latents and frames must be **equal**. Ulysses
changes the float32 summation order inside attention: final latents within 1e-4 of
max(1, max |latent|) (measured: <= 7e-6 on latents of scale ~9), frames within one uint8 level.
(Differences are printed with ``pytest -s``.)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from multiprocess_testkit import launch_ranks

WORKER_TIMEOUT_S = 150
LATENT_TOL = 1e-4  # relative to max(1, max |reference latent|)
SR = 16000
KILL_MESSAGE = "killed for the resume test"


# ----------------------------------------------------------------------------------------------
# shared inputs
# ----------------------------------------------------------------------------------------------
def _settings(**kw):
    from s2v_toolkit.pipelines.generation_inputs import GenerationSettings

    # 1.2 s at 16 fps = 19 frames: two clips of 16 frames (the second one with motion latents).
    base = dict(prompt="a man speaks to the camera", steps=3, guidance=4.5, size="64x80", fps=16,
                infer_frames=16, seed=None, cfg_batch="off")
    base.update(kw)
    return GenerationSettings(**base)


def _write_inputs(folder: Path) -> tuple[Path, Path]:
    import soundfile as sf

    from s2v_toolkit.media import write_png

    rng = np.random.default_rng(0)
    ref = folder / "ref.png"
    write_png(ref, rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
    t = np.arange(int(1.2 * SR)) / SR
    wav = folder / "line.wav"
    sf.write(str(wav), (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)))
             .astype(np.float32), SR)
    return ref, wav


class _Recorder:
    """Final latent of every clip (step callback) and the guidance branch of every forward."""

    def __init__(self):
        self.latents: dict[int, np.ndarray] = {}
        self.clips_run: list[int] = []

    def __call__(self, info, latents, _scheduler):
        if info.step_index == 0:
            self.clips_run.append(info.clip_index)
        if info.step_index == info.num_steps - 1:
            self.latents[info.clip_index] = latents.detach().cpu().numpy().copy()
        return None


def _record_branches(generator) -> list[list[str]]:
    """Wrap every expert's ``embed_inputs`` (called by the plain and the sequence-parallel forward):
    per call, per batch row, "cond" (audio features non-zero) or "uncond" (zeroed audio)."""
    calls: list[list[str]] = []
    for expert in generator.experts.values():
        original = expert.embed_inputs

        def embed(latents, timestep, text_embeddings, audio_features, *args, _original=original, **kwargs):
            calls.append(["cond" if bool(a.abs().sum() > 0) else "uncond" for a in audio_features])
            return _original(latents, timestep, text_embeddings, audio_features, *args, **kwargs)

        expert.embed_inputs = embed
    return calls


# ----------------------------------------------------------------------------------------------
# worker side (one process per rank; environment as torchrun sets it)
# ----------------------------------------------------------------------------------------------
def _run(generator, name, image, audio, settings, out: dict, arrays: dict, **kw) -> None:
    from s2v_toolkit.models import parallel as parallel_module

    rec = _Recorder()
    calls = _record_branches(generator)
    before = parallel_module._ULYSSES_CALLS[0]
    try:
        result = generator.generate(image, audio, settings, step_callback=rec, **kw)
    finally:
        for expert in generator.experts.values():
            expert.__dict__.pop("embed_inputs", None)
    for clip, lat in rec.latents.items():
        arrays[f"{name}_latent{clip}"] = lat
    arrays[f"{name}_frames"] = result.frames
    out[name] = {"seed": result.seed, "branches": calls, "clips_run": rec.clips_run,
                 "ulysses_calls": parallel_module._ULYSSES_CALLS[0] - before,
                 "output": str(result.output) if result.output else None,
                 "sidecar_parallel": result.sidecar_data.get("parallel")}


def _worker(world: int, out_dir: str, bundle_dir: str) -> None:
    import torch

    torch.set_num_threads(1)
    from s2v_toolkit.models import parallel as parallel_module
    from s2v_toolkit.pipelines.checkpoint_bundle import locate_checkpoint
    from s2v_toolkit.pipelines.distributed import finish_distributed, init_distributed, resolve_parallel
    from s2v_toolkit.pipelines.generation_inputs import load_drive_audio, load_reference_image
    from s2v_toolkit.pipelines.s2v_generator import S2VGenerator

    # Count the sequence-parallel attention calls (proves the Ulysses path ran).
    parallel_module._ULYSSES_CALLS = [0]
    original_attention = parallel_module.ulysses_attention

    def counting_attention(*args, **kwargs):
        parallel_module._ULYSSES_CALLS[0] += 1
        return original_attention(*args, **kwargs)

    parallel_module.ulysses_attention = counting_attention

    out_dir = Path(out_dir)
    rank = int(os.environ["RANK"])
    image = load_reference_image(out_dir / "ref.png")
    audio = load_drive_audio(out_dir / "line.wav")
    bundle = locate_checkpoint(bundle_dir)
    out: dict = {}
    arrays: dict = {}
    if world == 2:
        config = resolve_parallel("auto")  # 2 processes -> cfg
        init_distributed(config, "cpu", timeout_s=WORKER_TIMEOUT_S - 20)
        generator = S2VGenerator.load(bundle, device="cpu", parallel=config)
        # CFG-parallel, no seed given (rank 0's random seed must reach rank 1), cfg_batch "on" ignored.
        _run(generator, "cfg", image, audio, _settings(cfg_batch="on"), out, arrays,
             output=out_dir / "cfg.mp4", resume_dir=out_dir / "cfg_parts")
        out["cfg_parts_left"] = (out_dir / "cfg_parts").exists()

        # Killed in clip 1 on every rank, then resumed (seed and clip 0 come from rank 0's store).
        def kill(info, _latents, _scheduler):
            if info.clip_index == 1:
                raise RuntimeError(KILL_MESSAGE)

        try:
            generator.generate(image, audio, _settings(), out_dir / "resumed.mp4", step_callback=kill,
                               resume_dir=out_dir / "parts")
        except RuntimeError as exc:
            assert str(exc) == KILL_MESSAGE
        out["parts_after_kill"] = sorted(p.name for p in (out_dir / "parts").glob("clip_*.npz"))
        _run(generator, "resumed", image, audio, _settings(), out, arrays, output=out_dir / "resumed.mp4",
             resume_dir=out_dir / "parts")

        # Ulysses (degree 2) on the same processes and models.
        generator.enable_parallel(resolve_parallel("ulysses"))
        _run(generator, "ulysses", image, audio, _settings(seed=7), out, arrays)
    else:
        config = resolve_parallel("auto")  # 4 processes -> cfg+ulysses (2 x 2)
        init_distributed(config, "cpu", timeout_s=WORKER_TIMEOUT_S - 20)
        generator = S2VGenerator.load(bundle, device="cpu", parallel=config)
        _run(generator, "cfg_ulysses", image, audio, _settings(seed=9), out, arrays,
             output=out_dir / "cfg_ulysses.mp4")
    out["mode"] = config.mode
    finish_distributed(config)
    np.savez(out_dir / f"rank{rank}.npz", **arrays)
    (out_dir / f"rank{rank}.json").write_text(json.dumps(out))


# ----------------------------------------------------------------------------------------------
# launching
# ----------------------------------------------------------------------------------------------
def _launch(world: int, argv_of_rank, tmp_dir: Path, extra_env: dict | None = None) -> list[str]:
    """Start ``world`` processes with torchrun's environment; return their logs (fails on error/timeout)."""
    return launch_ranks(world, argv_of_rank, tmp_dir, WORKER_TIMEOUT_S, extra_env)


@pytest.fixture(scope="module")
def single(bundle):
    """The one-process generator (the reference)."""
    from s2v_toolkit.pipelines.s2v_generator import S2VGenerator

    return S2VGenerator.load(bundle, device="cpu")


def _world(world: int, bundle, tmp_dir: Path) -> dict:
    _write_inputs(tmp_dir)
    _launch(world, lambda rank: [sys.executable, __file__, str(world), str(tmp_dir), str(bundle.root)], tmp_dir)
    ranks = []
    for r in range(world):
        meta = json.loads((tmp_dir / f"rank{r}.json").read_text())
        with np.load(tmp_dir / f"rank{r}.npz") as data:
            meta["arrays"] = {k: data[k] for k in data.files}
        ranks.append(meta)
    return {"dir": tmp_dir, "ranks": ranks}


@pytest.fixture(scope="module")
def world2(bundle, tmp_path_factory):
    return _world(2, bundle, tmp_path_factory.mktemp("world2"))


@pytest.fixture(scope="module")
def world4(bundle, tmp_path_factory):
    return _world(4, bundle, tmp_path_factory.mktemp("world4"))


def _reference(single, folder: Path, seed: int) -> tuple[dict, np.ndarray, list]:
    """One process, unbatched guidance (the forwards CFG-parallel splits over two ranks)."""
    from s2v_toolkit.pipelines.generation_inputs import load_drive_audio, load_reference_image

    import torch

    rec = _Recorder()
    calls = _record_branches(single)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the same CPU kernels' summation order
    try:
        result = single.generate(load_reference_image(folder / "ref.png"), load_drive_audio(folder / "line.wav"),
                                 _settings(seed=seed, cfg_batch="off"), step_callback=rec)
    finally:
        torch.set_num_threads(threads)
        for expert in single.experts.values():
            expert.__dict__.pop("embed_inputs", None)
    return rec.latents, result.frames, calls


def _assert_matches_reference(single, world, name: str, exact: bool = False) -> None:
    ranks = world["ranks"]
    seeds = {r[name]["seed"] for r in ranks}
    assert len(seeds) == 1, f"{name}: ranks used different seeds {seeds}"
    ref_latents, ref_frames, _ = _reference(single, world["dir"], seeds.pop())
    assert sorted(ref_latents) == [0, 1]  # two clips
    for rank, res in enumerate(ranks):
        for clip, ref in ref_latents.items():
            got = res["arrays"][f"{name}_latent{clip}"]
            diff = float(np.abs(got - ref).max())
            scale = max(1.0, float(np.abs(ref).max()))
            print(f"{name} rank {rank} clip {clip}: max |latent diff| {diff:.3g} (scale {scale:.3g})")
            assert diff <= (0.0 if exact else LATENT_TOL * scale), (name, rank, clip, diff, scale)
        frames = res["arrays"][f"{name}_frames"]
        assert frames.shape == ref_frames.shape
        assert np.abs(frames.astype(int) - ref_frames.astype(int)).max() <= (0 if exact else 1), (name, rank)


# ----------------------------------------------------------------------------------------------
# multi-process tests
# ----------------------------------------------------------------------------------------------
def test_cfg_parallel_generation_equals_single_process_unbatched_guidance(single, world2):
    _assert_matches_reference(single, world2, "cfg", exact=True)
    ranks = world2["ranks"]
    assert [r["mode"] for r in ranks] == ["cfg", "cfg"]
    # 2 clips x 3 steps: rank 0 ran only conditional forwards, rank 1 only unconditional ones,
    # each of batch 1 (cfg_batch "on" does not apply: each rank has one branch).
    assert ranks[0]["cfg"]["branches"] == [["cond"]] * 6
    assert ranks[1]["cfg"]["branches"] == [["uncond"]] * 6
    assert ranks[0]["cfg"]["ulysses_calls"] == 0


def test_only_rank_zero_writes_the_output_sidecar_and_parts(world2):
    folder, ranks = world2["dir"], world2["ranks"]
    assert ranks[0]["cfg"]["output"] == str(folder / "cfg.mp4")
    assert ranks[1]["cfg"]["output"] is None
    assert (folder / "cfg.mp4").is_file() and (folder / "cfg.mp4.json").is_file()
    side = json.loads((folder / "cfg.mp4.json").read_text())
    assert side["parallel"]["mode"] == "cfg" and side["parallel"]["world_size"] == 2
    assert side["seed"] == ranks[0]["cfg"]["seed"]
    videos = sorted(p.name for p in folder.iterdir() if p.suffix in (".mp4", ".mov"))
    assert videos == ["cfg.mp4", "resumed.mp4"]  # no per-rank copies
    assert not ranks[0]["cfg_parts_left"]  # rank 0 cleared its resume parts after writing


def test_killed_parallel_run_resumes_from_rank_zero_store(single, world2):
    ranks = world2["ranks"]
    assert ranks[0]["parts_after_kill"] == ["clip_0000.npz"]
    # The re-run without a seed takes the interrupted run's seed from rank 0's store on every rank,
    # and every rank continues with clip 1 (clip 0 broadcast from the store).
    for res in ranks:
        assert res["resumed"]["clips_run"] == [1]
    ref_latents, ref_frames, _ = _reference(single, world2["dir"], ranks[0]["resumed"]["seed"])
    for rank, res in enumerate(ranks):
        assert res["resumed"]["seed"] == ranks[0]["resumed"]["seed"]
        assert np.array_equal(res["arrays"]["resumed_latent1"], ref_latents[1]), rank
        assert np.array_equal(res["arrays"]["resumed_frames"], ref_frames), rank
    assert not (world2["dir"] / "parts").exists()


def test_ulysses_generation_equals_single_process(single, world2):
    _assert_matches_reference(single, world2, "ulysses")
    for res in world2["ranks"]:
        # Both branches on every rank (cfg_batch off: two forwards per step), sequence-parallel.
        assert res["ulysses"]["branches"] == [["cond"], ["uncond"]] * 6
        # 4 blocks x 2 forwards x 3 steps x 2 clips self-attentions through Ulysses.
        assert res["ulysses"]["ulysses_calls"] == 4 * 2 * 3 * 2


def test_cfg_times_ulysses_on_four_processes_equals_single_process(single, world4):
    _assert_matches_reference(single, world4, "cfg_ulysses")
    ranks = world4["ranks"]
    assert [r["mode"] for r in ranks] == ["cfg+ulysses"] * 4
    # Ranks 0, 1: the conditional branch (one sequence group); ranks 2, 3: the unconditional one.
    assert [r["cfg_ulysses"]["branches"] for r in ranks] == [[["cond"]] * 6] * 2 + [[["uncond"]] * 6] * 2
    assert all(r["cfg_ulysses"]["ulysses_calls"] == 4 * 3 * 2 for r in ranks)
    assert [r["cfg_ulysses"]["output"] is not None for r in ranks] == [True, False, False, False]
    assert (world4["dir"] / "cfg_ulysses.mp4").is_file()
    assert sorted(p.name for p in world4["dir"].glob("*.mp4")) == ["cfg_ulysses.mp4"]


def test_cli_generate_parallel_cfg_under_torchrun_environment(bundle, tmp_path):
    """``python -m s2v_toolkit.cli generate --parallel cfg`` in two processes (as torchrun starts it)."""
    from s2v_toolkit.pipelines.checkpoint_bundle import default_tiny_bundle_dir

    ref, wav = _write_inputs(tmp_path)
    cache = tmp_path / "cache"
    target = default_tiny_bundle_dir().name
    shutil.copytree(bundle.root, cache / target)
    out = tmp_path / "shot.mp4"
    argv = [sys.executable, "-m", "s2v_toolkit.cli", "generate", "--image", str(ref), "--audio", str(wav),
            "--model", "tiny", "--parallel", "cfg", "--steps", "2", "--size", "64x80", "--clip-frames", "16",
            "--seed", "5", "--quiet", "-o", str(out)]
    logs = _launch(2, lambda rank: argv, tmp_path, {"S2VT_CACHE": str(cache)})
    assert "wrote " + str(out) in logs[0]
    assert "wrote" not in logs[1]  # rank 1 reports nothing
    side = json.loads((tmp_path / "shot.mp4.json").read_text())
    assert side["parallel"]["mode"] == "cfg" and side["seed"] == 5
    assert not (tmp_path / ".shot.mp4.s2vt-parts").exists()
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["shot.mp4"]


# ----------------------------------------------------------------------------------------------
# config: auto choice and validation errors (no processes)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("world, mode, degree", [(None, "none", 1), (1, "none", 1), (2, "cfg", 1),
                                                 (4, "cfg+ulysses", 2), (8, "cfg+ulysses", 4),
                                                 (3, "ulysses", 3), (5, "ulysses", 5)])
def test_auto_mode_follows_the_number_of_processes(world, mode, degree):
    from s2v_toolkit.pipelines.distributed import resolve_parallel

    env = {} if world is None else {"WORLD_SIZE": str(world), "RANK": "1" if world > 1 else "0"}
    config = resolve_parallel("auto", env)
    assert (config.mode, config.sequence_degree, config.world_size) == (mode, degree, world or 1)
    assert config.is_main == (world is None or world == 1)


@pytest.mark.parametrize("mode, world, words", [
    ("cfg", None, ["--parallel cfg needs 2 processes", "torchrun", "--nproc_per_node 2"]),
    ("cfg", 1, ["--parallel cfg needs 2 processes", "torchrun"]),
    ("cfg", 4, ["--parallel cfg needs 2 processes", "this launch has 4"]),
    ("ulysses", None, ["--parallel ulysses needs 2 or more processes", "torchrun"]),
    ("cfg+ulysses", 2, ["an even number of processes, 4 or more", "this launch has 2"]),
    ("cfg+ulysses", 5, ["an even number", "this launch has 5"]),
    ("none", 2, ["--parallel none in a launch of 2 processes"]),
    ("sideways", 2, ["--parallel sideways: unknown mode"]),
])
def test_mode_that_does_not_fit_the_launch_is_a_one_line_config_error(mode, world, words):
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.pipelines.distributed import resolve_parallel

    env = {} if world is None else {"WORLD_SIZE": str(world), "RANK": "0"}
    with pytest.raises(ConfigError) as err:
        resolve_parallel(mode, env)
    message = str(err.value)
    assert "\n" not in message
    for w in words:
        assert w in message, (w, message)


@pytest.mark.parametrize("mode, world, ok", [("ulysses", 2, True), ("ulysses", 4, True), ("ulysses", 5, True),
                                             ("ulysses", 8, True), ("ulysses", 3, False), ("ulysses", 6, False),
                                             ("cfg+ulysses", 4, True), ("cfg+ulysses", 10, True),
                                             ("cfg+ulysses", 6, False), ("cfg", 2, True)])
def test_sequence_degree_must_divide_the_14b_heads(mode, world, ok):
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.pipelines.distributed import resolve_parallel

    config = resolve_parallel(mode, {"WORLD_SIZE": str(world), "RANK": "0"})
    if ok:
        config.check_heads(40)
    else:
        with pytest.raises(ConfigError, match=r"must divide the model's 40 attention heads"):
            config.check_heads(40)


def test_bad_environment_and_device_are_config_errors():
    from s2v_toolkit.errors import ConfigError
    from s2v_toolkit.pipelines.distributed import resolve_parallel

    with pytest.raises(ConfigError, match="WORLD_SIZE='two' is not an integer"):
        resolve_parallel("auto", {"WORLD_SIZE": "two"})
    with pytest.raises(ConfigError, match="rank 2 outside a world of 2"):
        resolve_parallel("cfg", {"WORLD_SIZE": "2", "RANK": "2"})
    config = resolve_parallel("cfg", {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert str(config.device_for("cpu")) == "cpu"
    assert str(config.device_for("cuda")) == "cuda:1"  # each rank its own GPU
    with pytest.raises(ConfigError, match="every rank uses its own GPU"):
        config.device_for("cuda:0")


def test_parallel_models_without_parallelism_are_the_plain_experts_and_guidance():
    import torch

    from s2v_toolkit.pipelines.distributed import ParallelConfig, parallel_models
    from s2v_toolkit.pipelines.guidance import guided_prediction

    experts = {"expert1": torch.nn.Linear(2, 2)}
    models, guidance = parallel_models(ParallelConfig(), experts)
    assert models == experts and guidance is guided_prediction


def test_cli_parallel_cfg_without_torchrun_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from s2v_toolkit import cli

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(["generate", "--image", str(tmp_path / "ref.png"), "--audio", str(tmp_path / "a.wav"),
                     "--model", "tiny", "--parallel", "cfg", "-o", str(tmp_path / "out.mov")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "--parallel cfg needs 2 processes" in err[0] and "torchrun" in err[0]
    assert not (tmp_path / "out.mov").exists()


if __name__ == "__main__":
    _worker(int(sys.argv[1]), sys.argv[2], sys.argv[3])
