"""The pyannote.audio backend's plumbing, with a locally built random-weight pipeline folder (no
download). The results of random weights mean nothing: the tests check loading from a folder, the
speaker-count arguments, exclusive turns, confidences and JSON.

pyannote.audio is an optional extra that needs its own torch build, so the main venv usually lacks it.
Then, when scripts/setup_pyannote.sh (run by ``scripts/setup.sh --dev``, i.e. in CI) has built
``.venv-pyannote`` at the repository root, ``test_pyannote_tests_pass_in_pyannote_venv`` runs this same file
in that interpreter and asserts its tests passed; otherwise everything here skips with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .conftest import SR

REPO_ROOT = Path(__file__).resolve().parents[2]
PYANNOTE_VENV_PYTHON = REPO_ROOT / ".venv-pyannote" / "bin" / "python"
PYANNOTE_VENV_READY = REPO_ROOT / ".venv-pyannote" / ".s2vt-pyannote-ready"  # written by a complete setup
INNER_RUN = "S2VT_PYANNOTE_INNER_RUN"  # set in the child run, so it never starts another one
INNER_TIMEOUT_S = 300


def _pyannote_importable() -> bool:
    if importlib.util.find_spec("pyannote.audio") is None:
        return False
    try:
        from s2v_toolkit.diarization.pyannote_backend import import_pyannote

        import_pyannote()
        return True
    except Exception:
        return False


PYANNOTE_HERE = _pyannote_importable()
needs_pyannote = pytest.mark.skipif(
    not PYANNOTE_HERE,
    reason="pyannote.audio is not installed in this interpreter (optional extra); "
           "test_pyannote_tests_pass_in_pyannote_venv runs these in .venv-pyannote when it exists")


def _venv_skip_reason() -> str | None:
    if PYANNOTE_HERE:
        return "pyannote.audio imports here: the tests of this file run directly"
    if os.environ.get(INNER_RUN):
        return "already inside the .venv-pyannote run, where pyannote.audio does not import"
    if not PYANNOTE_VENV_PYTHON.exists():
        return "pyannote.audio is not installed and there is no .venv-pyannote (bash scripts/setup_pyannote.sh)"
    if not PYANNOTE_VENV_READY.exists():
        return ".venv-pyannote is incomplete (its setup failed or was interrupted; bash scripts/setup_pyannote.sh)"
    return None


def _outcome_counts(output: str) -> dict[str, int]:
    """{"passed": 3, "skipped": 1, ...} from pytest's final summary line ("== 3 passed, 1 skipped in 9.1s ==")."""
    final = [line for line in output.splitlines() if re.search(r"\d+ \w+.* in [\d.]+s", line)]
    if not final:
        return {}
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)",
                                                     final[-1])}


@pytest.mark.skipif(_venv_skip_reason() is not None, reason=str(_venv_skip_reason()))
def test_pyannote_tests_pass_in_pyannote_venv():
    """This file's pyannote tests, run in .venv-pyannote; all of them must pass there."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update({INNER_RUN: "1", "HF_HUB_OFFLINE": "1", "PYANNOTE_METRICS_ENABLED": "false"})
    command = [str(PYANNOTE_VENV_PYTHON), "-m", "pytest", str(Path(__file__).resolve()), "-q",
               "-p", "no:cacheprovider", "-k", "not test_pyannote_tests_pass_in_pyannote_venv"]
    try:
        run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                             timeout=INNER_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the .venv-pyannote run took over {INNER_TIMEOUT_S} s: {str(exc.stdout)[-2000:]}")
    output = run.stdout + run.stderr
    counts = _outcome_counts(output)
    expected = sum(1 for name in list(globals())
                   if name.startswith("test_") and name != "test_pyannote_tests_pass_in_pyannote_venv")
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    assert run.returncode == 0 and failed == 0, f".venv-pyannote run failed:\n{output[-4000:]}"
    if counts.get("skipped", 0):
        skips = "; ".join(line for line in output.splitlines() if line.startswith("SKIPPED"))
        pytest.skip(f".venv-pyannote run: {counts}: {skips}")
    assert counts.get("passed") == expected, f"expected {expected} passed tests:\n{output[-4000:]}"


def _save_model(model, folder):
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                  "pytorch-lightning_version": "2.5.0"}
    model.on_save_checkpoint(checkpoint)  # adds pyannote's versions/architecture/specifications
    torch.save(checkpoint, folder / "pytorch_model.bin")


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    """A community-1 style folder: config.yaml + segmentation/ + embedding/ + plda/, random weights."""
    import torch
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    out = tmp_path_factory.mktemp("pyannote_pipeline")
    torch.manual_seed(0)
    seg = PyanNet(sincnet={"stride": 10})
    seg.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=10.0, min_duration=10.0,
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2, permutation_invariant=True)
    seg.setup()
    _save_model(seg, out / "segmentation")
    emb = WeSpeakerResNet34()
    emb.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    _save_model(emb, out / "embedding")
    rng = np.random.default_rng(0)
    (out / "plda").mkdir()
    np.savez(out / "plda" / "xvec_transform.npz", mean1=rng.normal(size=256), mean2=rng.normal(size=128),
             lda=rng.normal(size=(256, 128)))
    np.savez(out / "plda" / "plda.npz", mu=rng.normal(size=128), tr=rng.normal(size=(128, 128)),
             psi=np.abs(rng.normal(size=128)))
    config = {"pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization",
                           "params": {"segmentation": "$model/segmentation", "embedding": "$model/embedding",
                                      "plda": "$model/plda", "clustering": "AgglomerativeClustering"}},
              "params": {"segmentation": {"min_duration_off": 0.0},
                         "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.7}}}
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    return out


@needs_pyannote
def test_pipeline_from_local_folder_runs_offline(pipeline_dir, two_speakers):
    from s2v_toolkit.diarization import SpeakerTurns, diarize

    signal, _ = two_speakers
    turns = diarize(signal[: 8 * SR], SR, backend="pyannote", pyannote_dir=pipeline_dir, num_speakers=2,
                    overlap=False)
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    assert turns.backend == "pyannote" and turns.info["num_speakers"] == 2
    assert turns.info["overlap"].startswith("exclusive")
    for a, b in zip(turns.turns, turns.turns[1:]):
        assert a.end <= b.start + 1e-9
    both = diarize(signal[: 8 * SR], SR, backend="pyannote", pyannote_dir=pipeline_dir, num_speakers=2)
    assert both.info["overlap"].startswith("turns overlap") and set(turns.speakers) <= set(both.speakers)
    assert all(0.0 <= t.confidence <= 1.0 for t in turns)
    assert SpeakerTurns.from_dict(turns.to_dict()).turns == [
        type(t)(round(t.start, 3), round(t.end, 3), t.speaker, round(t.confidence, 4)) for t in turns]


@needs_pyannote
def test_silence_short_circuits(pipeline_dir):
    from s2v_toolkit.diarization import diarize

    turns = diarize(np.zeros(2 * SR, np.float32), SR, backend="pyannote", pyannote_dir=pipeline_dir)
    assert len(turns) == 0 and turns.info["note"] == "no speech detected"


@needs_pyannote
def test_broken_folder_is_a_clear_error(tmp_path):
    from s2v_toolkit.diarization import diarize
    from s2v_toolkit.errors import ConfigError

    (tmp_path / "config.yaml").write_text("pipeline:\n  name: no.such.Pipeline\n")
    with pytest.raises(ConfigError, match="cannot load the pyannote pipeline"):
        diarize(np.zeros(SR, np.float32), SR, backend="pyannote", pyannote_dir=tmp_path)


def test_overlap_picks_the_regular_annotation_and_exclusive_the_pipelines_own():
    """pyannote 4.x returns both annotations; 3.x returns the regular one only (made exclusive here)."""
    from types import SimpleNamespace

    from s2v_toolkit.diarization.pyannote_backend import _annotation_of

    out4 = SimpleNamespace(speaker_diarization="regular", exclusive_speaker_diarization="exclusive")
    assert _annotation_of(out4, overlap=True) == ("regular", False)
    assert _annotation_of(out4, overlap=False) == ("exclusive", True)
    out3 = "annotation"  # 3.x: the annotation itself
    assert _annotation_of(out3, overlap=True) == ("annotation", False)
    assert _annotation_of(out3, overlap=False) == ("annotation", False)
