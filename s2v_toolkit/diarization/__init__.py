"""Diarization: who speaks when, and which cast character that is.

Public API::

    diarize(audio, sample_rate=None, backend=None|"auto"|"embedded"|"neural"|"pyannote", num_speakers=None, ...)
        -> SpeakerTurns (None: default_backend(), "auto" unless $S2VT_DIARIZATION_BACKEND says otherwise)
    resolve_backend(backend, config) -> (backend that runs, why)
    SpeakerTurns / SpeakerTurn        result (JSON: to_dict/from_dict; pyannote.core: to_annotation/from_annotation)
    read_rttm(path) / write_rttm(turns, path) / parse_rttm(text) / format_rttm(turns)
    load_cast_voices(cast_file) -> CastVoices ; enroll(voices) -> {character: embedding}
    assign_characters(turns, audio, voices, characters=..., threshold=0.75) -> SpeakerTurns with characters
    diarization_error_rate(reference, hypothesis, collar=0.0) -> DERReport
    EmbeddedDiarizer / EmbeddedConfig, VoiceEncoder, SileroVAD: the offline backend's parts
    NeuralDiarizer / NeuralConfig, CAMPPlus, PyanNet: the neural backend's parts;
    fetch_neural_models / load_neural_models: its two model files (``s2vt diarize --setup``)
    UNKNOWN: the character name of voices that match nobody in the cast

Heavy libraries (torch) load on first use, not at import.
"""

from s2v_toolkit.diarization.api import BACKENDS, default_backend, diarize, resolve_backend
from s2v_toolkit.diarization.assignment import (
    DEFAULT_THRESHOLD,
    CastVoices,
    assign_characters,
    embed_voice,
    enroll,
    load_cast_voices,
    speaker_embeddings,
    voice_sample_notes,
)
from s2v_toolkit.diarization.audio import AudioSource, open_audio
from s2v_toolkit.diarization.embedded import EmbeddedConfig, EmbeddedDiarizer
from s2v_toolkit.diarization.embedding import VoiceEncoder
from s2v_toolkit.diarization.metrics import DERReport, diarization_error_rate
from s2v_toolkit.diarization.model_files import (
    NeuralModelsMissing,
    NeuralModelsUnreadable,
    fetch_neural_models,
    find_neural_models,
    load_neural_models,
)
from s2v_toolkit.diarization.rttm import format_rttm, parse_rttm, read_rttm, write_rttm
from s2v_toolkit.diarization.turns import UNKNOWN, SpeakerTurn, SpeakerTurns
from s2v_toolkit.diarization.vad import (
    SileroVAD,
    VADConfig,
    speech_probabilities,
    speech_regions,
)

__all__ = [
    "BACKENDS", "DEFAULT_THRESHOLD", "default_backend", "resolve_backend", "UNKNOWN", "AudioSource", "CastVoices",
    "DERReport", "EmbeddedConfig", "EmbeddedDiarizer", "NeuralConfig", "NeuralDiarizer", "NeuralModelsMissing",
    "NeuralModelsUnreadable", "fetch_neural_models", "find_neural_models", "load_neural_models", "CAMPPlus",
    "PyanNet", "SileroVAD", "SpeakerTurn", "SpeakerTurns", "VADConfig", "VoiceEncoder", "assign_characters",
    "voice_sample_notes", "diarization_error_rate", "diarize", "embed_voice", "enroll", "format_rttm",
    "load_cast_voices", "open_audio", "parse_rttm", "read_rttm", "speaker_embeddings", "speech_probabilities",
    "speech_regions", "write_rttm",
]

# the neural backend's classes import torch: loaded on first use, like the rest of the package's heavy parts
_LAZY = {"NeuralConfig": "neural", "NeuralDiarizer": "neural", "CAMPPlus": "campplus", "PyanNet": "segmentation"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"s2v_toolkit.diarization.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
