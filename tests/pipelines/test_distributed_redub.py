"""The re-dub on several processes (``s2vt redub --parallel``) against the one-process re-dub.

Two CPU processes over gloo (torchrun's environment, this file run as the ranks' script) each load the
tiny models with ``parallel=cfg`` and re-dub the same shot with ``redub_video``; rank 0 alone writes
the output and its sidecar. CFG-parallel runs exactly the forwards of the unbatched one-process
guidance (conditional on rank 0, unconditional on rank 1, all_gather moves them bit for bit), so the
output file must be **the same bytes** as a one-process run with ``cfg_batch off``. Also: the seed is
rank 0's, and a re-run gives the same bytes (two launches of the ranks, two one-process runs): what
resume and review rely on.

Issue 20: these files once differed by up to 3 levels in a few samples, at random from run to run: the
mouth mask's distance transform (OpenCV's, through IPP) varied by a float ulp between calls. The mask
is exact now (tests/faces/test_faces_mask_exact.py checks it directly; a run-to-run check like the one
here catches such a fault only in some runs).
"""

from __future__ import annotations

import filecmp
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from multiprocess_testkit import launch_ranks

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 150
if str(HERE) not in sys.path:  # the shot helpers of test_redub_shot (also in the rank processes)
    sys.path.insert(0, str(HERE))


def _settings(seed):
    from s2v_toolkit.pipelines.generation_inputs import GenerationSettings
    from s2v_toolkit.pipelines.redub import RedubSettings

    return RedubSettings(crop_size=64, motion_frames=5,
                         generation=GenerationSettings(steps=2, infer_frames=8, seed=seed, guidance=4.5,
                                                       cfg_batch="off"))


def _inputs(folder: Path):
    """The astronaut shot (test_redub_shot's) as a file, a line, and its scripted face analysis."""
    import soundfile as sf
    from test_redub_shot import FPS, _analysis, _astronaut_shot, _speech

    from s2v_toolkit.media import read_frames, write_video

    frames, script = _astronaut_shot(16)
    video = folder / "shot.mov"
    if not video.exists():
        write_video(video, frames, FPS, audio=np.zeros(48000, np.float32))
        sf.write(folder / "line.wav", _speech(0.4, 48000), 48000)
    decoded = read_frames(video, 0, 16)
    return video, folder / "line.wav", _analysis(decoded, script, 0, 15)


def _redub(generator, folder: Path, out: Path, seed):
    from s2v_toolkit.pipelines.redub import redub_video

    video, line, analysis = _inputs(folder)
    return redub_video(video, line, out, generator=generator, settings=_settings(seed), analysis=analysis,
                       line_start=2, overwrite=True)


def _same_bytes(a: Path, b: Path) -> bool:
    return filecmp.cmp(a, b, shallow=False)


def _worker(folder: str, name: str) -> None:
    import torch

    torch.set_num_threads(1)
    from s2v_toolkit.pipelines.distributed import finish_distributed, resolve_parallel
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    folder = Path(folder)
    parallel = resolve_parallel("cfg")
    generator = load_generator(tiny=True, device="cpu", parallel=parallel)
    # rank 1 asks for another seed: rank 0's must win (broadcast)
    doc = _redub(generator, folder, folder / f"{name}.mov", seed=11 if parallel.rank == 0 else 99)
    (folder / f"{name}_rank{parallel.rank}.json").write_text(json.dumps(
        {"seed": doc["settings"]["generation"]["seed"], "parallel": doc["model"]["parallel"]}))
    finish_distributed(parallel)


@pytest.fixture(scope="module")
def world2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("redub_world2")
    _inputs(folder)
    for name in ("out", "again"):  # two launches: a fresh parallel re-run must give the same bytes
        launch_ranks(2, lambda rank: [sys.executable, __file__, str(folder), name], folder, TIMEOUT_S)
    return folder


@pytest.fixture(scope="module")
def single2(world2, tmp_path_factory):
    """Two one-process runs of the same re-dub (the second reuses the loaded models, as a server does)."""
    import torch

    from s2v_toolkit.pipelines.redub_sampler import load_generator

    folder = tmp_path_factory.mktemp("redub_single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers
    try:
        single = load_generator(tiny=True, device="cpu")
        for name in ("single", "again"):
            _redub(single, world2, folder / f"{name}.mov", seed=11)
    finally:
        torch.set_num_threads(threads)
    return folder


def test_cfg_parallel_redub_equals_single_process_and_only_rank0_writes(world2, single2):
    from s2v_toolkit.media import read_frames

    ranks = [json.loads((world2 / f"out_rank{r}.json").read_text()) for r in range(2)]
    assert [r["seed"] for r in ranks] == [11, 11]
    assert ranks[0]["parallel"]["mode"] == "cfg" and ranks[0]["parallel"]["world_size"] == 2
    side = json.loads((world2 / "out.mov.json").read_text())
    assert side["model"]["parallel"]["rank"] == 0  # the sidecar on disk is rank 0's
    got = read_frames(world2 / "out.mov", 0, 16)
    want = read_frames(single2 / "single.mov", 0, 16)
    assert np.array_equal(got, want), (np.abs(got.astype(np.int32) - want).max(), np.count_nonzero(got != want))
    assert _same_bytes(world2 / "out.mov", single2 / "single.mov")  # the same encoded file
    src = read_frames(world2 / "shot.mov", 0, 16)
    assert not np.array_equal(got, src)  # the mouth was regenerated


def test_a_rerun_gives_the_same_bytes_on_one_process_and_on_two(world2, single2):
    assert _same_bytes(world2 / "again.mov", world2 / "out.mov")  # a fresh parallel launch
    assert _same_bytes(single2 / "again.mov", single2 / "single.mov")


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
