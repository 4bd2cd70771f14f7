"""The pyannote.audio backend: a pipeline folder the user downloaded once, run offline.

``Pipeline.from_pretrained(LOCAL_DIR)`` with a folder holding ``config.yaml`` (speaker-diarization-
community-1, or 3.1), on the GPU when there is one. pyannote's usage telemetry is switched off and the
Hugging Face hub is put offline before pyannote is imported. We decode and resample the audio ourselves
and pass the waveform, so pyannote's own decoder (torchcodec) is never needed. The whole signal is held in
memory (pyannote needs it: about 230 MB per hour at 16 kHz).

pyannote loads model checkpoints with pickle (``weights_only=False``), so only use a pipeline folder you
downloaded yourself from its official source.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from s2v_toolkit.diarization.audio import SAMPLE_RATE, AudioSource
from s2v_toolkit.diarization.turns import SpeakerTurn, SpeakerTurns
from s2v_toolkit.errors import ConfigError

INSTALL_HINT = ("the pyannote backend needs pyannote.audio: pip install 's2v-toolkit[pyannote]' "
                "(see docs/diarization.md for a CPU-only install)")


def import_pyannote():
    """Import pyannote.audio with telemetry off and the hub offline; a clear error when it is missing."""
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"  # read by pyannote.audio.telemetry at import
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder never needs the hub
    with warnings.catch_warnings():
        # pyannote warns when torchcodec cannot load (CPU torch); we pass waveforms, so it is not needed
        warnings.filterwarnings("ignore", message=".*torchcodec.*")
        try:
            import pyannote.audio as pa
        except ImportError as exc:
            raise ConfigError(f"{INSTALL_HINT} ({exc})") from None
        except Exception as exc:  # broken installs raise OSError/RuntimeError from compiled parts
            raise ConfigError(f"pyannote.audio is installed but does not import: {exc}; {INSTALL_HINT}") from None
    try:
        from pyannote.audio.telemetry import set_telemetry_metrics

        set_telemetry_metrics(False)
    except ImportError:  # pyannote.audio 3.x has no telemetry
        pass
    return pa


def load_pipeline(pipeline_dir: str | os.PathLike, device: str | None = None):
    """The pipeline in ``pipeline_dir`` (a folder with config.yaml, or the config.yaml itself), moved to
    ``device`` (default: cuda when available)."""
    path = Path(pipeline_dir)
    config = path / "config.yaml" if path.is_dir() else path
    if not config.is_file():
        raise ConfigError(f"{path}: not a pyannote pipeline folder (no config.yaml); download one once, "
                          "see docs/diarization.md")
    pa = import_pyannote()
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torchcodec.*")
        try:
            pipeline = pa.Pipeline.from_pretrained(str(path))
        except Exception as exc:
            raise ConfigError(f"{path}: cannot load the pyannote pipeline: {str(exc).splitlines()[0]}") from None
    if pipeline is None:
        raise ConfigError(f"{path}: cannot load the pyannote pipeline (from_pretrained returned nothing)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipeline.to(torch.device(device))
    return pipeline


def _annotation_of(output, overlap: bool = True):
    """(annotation, whether it is exclusive): the regular one, overlapped speech included; with
    ``overlap=False`` the pipeline's own non-overlapping one where it gives one (4.x)."""
    exclusive = None if overlap else getattr(output, "exclusive_speaker_diarization", None)
    if exclusive is not None:
        return exclusive, True
    regular = getattr(output, "speaker_diarization", None)
    return (regular if regular is not None else output), False


class PyannoteDiarizer:
    """``PyannoteDiarizer(pipeline_dir)(source, num_speakers=...) -> SpeakerTurns`` (turns overlap where two
    voices speak at once; ``overlap=False``: non-overlapping).

    ``pipeline`` may be given instead of a folder (an already built pyannote ``SpeakerDiarization``).
    Turn confidence: pyannote reports none per turn, so each turn is scored as the embedded backend does:
    the posterior of its speaker for the turn's voice-encoder embedding against all speakers' embeddings."""

    name = "pyannote"

    def __init__(self, pipeline_dir: str | os.PathLike | None = None, pipeline=None, device: str | None = None):
        if pipeline is None:
            if pipeline_dir is None:
                raise ConfigError("the pyannote backend needs a pipeline folder")
            pipeline = load_pipeline(pipeline_dir, device)
        self.pipeline = pipeline
        self.source_dir = None if pipeline_dir is None else str(pipeline_dir)

    def __call__(self, source: AudioSource, num_speakers: int | None = None, min_speakers: int | None = None,
                 max_speakers: int | None = None, progress=False, overlap: bool = True) -> SpeakerTurns:
        import torch

        samples = source.read_all()
        info = {"pipeline": self.source_dir or type(self.pipeline).__name__, "num_speakers": num_speakers,
                "min_speakers": min_speakers, "max_speakers": max_speakers,
                "overlap": ("turns overlap where the pipeline hears several voices at once" if overlap
                            else "exclusive turns: one voice per moment")}
        if len(samples) == 0 or float(np.max(np.abs(samples))) == 0.0:
            return SpeakerTurns([], source.name, source.duration, self.name, {**info, "note": "no speech detected"})
        kwargs = {k: v for k, v in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                                    ("max_speakers", max_speakers)) if v is not None}
        if progress is True:
            try:
                from pyannote.audio.pipelines.utils.hook import ProgressHook

                with ProgressHook() as hook:
                    output = self._run(torch, samples, source.name, hook=hook, **kwargs)
            except ImportError:
                output = self._run(torch, samples, source.name, **kwargs)
        else:
            output = self._run(torch, samples, source.name, **kwargs)
        annotation, exclusive = _annotation_of(output, overlap)
        turns = SpeakerTurns.from_annotation(annotation, source.duration, self.name)
        turns.uri, turns.info = source.name, info
        if not (exclusive or overlap):
            turns = turns.exclusive()
        turns = _score_turns(turns, source)
        if not turns.turns:
            turns.info["note"] = "no speech detected"
        return turns

    def _run(self, torch, samples: np.ndarray, uri: str, **kwargs):
        waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torchcodec.*")
            return self.pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": uri}, **kwargs)


def _score_turns(turns: SpeakerTurns, source: AudioSource) -> SpeakerTurns:
    """Per-turn confidence with our voice encoder (see :class:`PyannoteDiarizer`); speaker embeddings kept."""
    from s2v_toolkit.diarization.assignment import speaker_embeddings
    from s2v_toolkit.diarization.embedded import EmbeddedConfig, _posteriors
    from s2v_toolkit.diarization.embedding import VoiceEncoder

    if not turns.turns:
        return turns
    encoder = VoiceEncoder()
    embs = speaker_embeddings(turns, source, encoder)
    names = [s for s in turns.speakers if s in embs]
    cents = np.stack([embs[s] for s in names])
    pieces = [source.read(t.start, t.duration) for t in turns]
    vectors = encoder.embed(pieces)
    cfg = EmbeddedConfig()  # the same definition as the embedded backend's confidence
    post = _posteriors(vectors @ cents.T, temperature=cfg.temperature, other=1.0 - cfg.threshold)
    new = [SpeakerTurn(t.start, t.end, t.speaker, float(post[i, names.index(t.speaker)]) if t.speaker in names else 0.0)
           for i, t in enumerate(turns)]
    out = turns.with_turns(new, confidence="voice-encoder posterior of the turn's speaker (pyannote gives none)")
    out.speaker_embeddings = embs
    return out
