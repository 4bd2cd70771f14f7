"""One entry point for all backends: :func:`diarize`."""

from __future__ import annotations

import os

from s2v_toolkit.diarization.audio import AudioSource, open_audio
from s2v_toolkit.diarization.turns import SpeakerTurns
from s2v_toolkit.errors import ConfigError

BACKENDS = ("embedded", "neural", "pyannote")


def _check_counts(num_speakers, min_speakers, max_speakers) -> None:
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                        ("max_speakers", max_speakers)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if min_speakers and max_speakers and min_speakers > max_speakers:
        raise ConfigError(f"min_speakers ({min_speakers}) is larger than max_speakers ({max_speakers})")


def diarize(audio, sample_rate: int | None = None, *, backend: str = "embedded", num_speakers: int | None = None,
            min_speakers: int | None = None, max_speakers: int | None = None,
            pyannote_dir: str | os.PathLike | None = None, channel=None, config=None, progress=False,
            uri: str | None = None) -> SpeakerTurns:
    """Who speaks when in ``audio`` (a file path, an array with ``sample_rate``, or an :class:`AudioSource`).

    Returns non-overlapping :class:`SpeakerTurns` labelled ``SPEAKER_00``, ``SPEAKER_01``... in order of
    first appearance. ``num_speakers`` fixes the count; otherwise it is estimated (a cast bounds it: max_speakers),
    within ``min_speakers``/``max_speakers``. ``backend="pyannote"`` needs ``pyannote_dir``, a pipeline
    folder downloaded once (see docs/diarization.md), and the optional ``pyannote`` extra. ``channel``:
    None mixes channels down, an int picks one, ``"auto"`` picks the one with the most speech.
    ``config``: an :class:`~s2v_toolkit.diarization.embedded.EmbeddedConfig` for the embedded backend, a
    :class:`~s2v_toolkit.diarization.neural.NeuralConfig` for the neural one (``backend="neural"``: speaker
    segmentation + CAM++ voice prints; its two model files come from ``s2vt diarize --setup``).
    """
    _check_counts(num_speakers, min_speakers, max_speakers)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown diarization backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    source: AudioSource = open_audio(audio, sample_rate, channel)
    if uri:
        source.name = uri
    if backend == "embedded":
        from s2v_toolkit.diarization.embedded import EmbeddedDiarizer

        diarizer = EmbeddedDiarizer(config)
    elif backend == "neural":
        from s2v_toolkit.diarization.neural import NeuralConfig, NeuralDiarizer

        if config is not None and not isinstance(config, NeuralConfig):
            raise ConfigError(f"the neural backend takes a NeuralConfig, not {type(config).__name__}")
        diarizer = NeuralDiarizer(config=config)
    else:
        from s2v_toolkit.diarization.pyannote_backend import PyannoteDiarizer

        if pyannote_dir is None:
            raise ConfigError("the pyannote backend needs a pipeline folder (--pyannote-dir); "
                              "see docs/diarization.md for the one-time download")
        diarizer = PyannoteDiarizer(pyannote_dir)
    result = diarizer(source, num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers,
                      progress=progress)
    if channel is not None:
        result.info["channel"] = getattr(source, "channel", None)
    return result
