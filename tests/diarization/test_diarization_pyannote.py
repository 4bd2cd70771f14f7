"""The pyannote.audio backend's plumbing, with a locally built random-weight pipeline folder (no
download). Skipped where pyannote.audio does not import (it is an optional extra; CI does not install it).
The results of random weights mean nothing: the test checks loading from a folder, the speaker-count
arguments, exclusive turns, confidences and JSON."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from .conftest import SR


def _pyannote_importable() -> bool:
    if importlib.util.find_spec("pyannote.audio") is None:
        return False
    try:
        from s2v_toolkit.diarization.pyannote_backend import import_pyannote

        import_pyannote()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _pyannote_importable(), reason="pyannote.audio is not installed (optional extra)")


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


def test_pipeline_from_local_folder_runs_offline(pipeline_dir, two_speakers):
    import os

    from s2v_toolkit.diarization import SpeakerTurns, diarize

    signal, _ = two_speakers
    turns = diarize(signal[: 8 * SR], SR, backend="pyannote", pyannote_dir=pipeline_dir, num_speakers=2)
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    assert turns.backend == "pyannote" and turns.info["num_speakers"] == 2
    for a, b in zip(turns.turns, turns.turns[1:]):
        assert a.end <= b.start + 1e-9
    assert all(0.0 <= t.confidence <= 1.0 for t in turns)
    assert SpeakerTurns.from_dict(turns.to_dict()).turns == [
        type(t)(round(t.start, 3), round(t.end, 3), t.speaker, round(t.confidence, 4)) for t in turns]


def test_silence_short_circuits(pipeline_dir):
    from s2v_toolkit.diarization import diarize

    turns = diarize(np.zeros(2 * SR, np.float32), SR, backend="pyannote", pyannote_dir=pipeline_dir)
    assert len(turns) == 0 and turns.info["note"] == "no speech detected"


def test_broken_folder_is_a_clear_error(tmp_path):
    from s2v_toolkit.diarization import diarize
    from s2v_toolkit.errors import ConfigError

    (tmp_path / "config.yaml").write_text("pipeline:\n  name: no.such.Pipeline\n")
    with pytest.raises(ConfigError, match="cannot load the pyannote pipeline"):
        diarize(np.zeros(SR, np.float32), SR, backend="pyannote", pyannote_dir=tmp_path)
