"""One entry point for all backends: :func:`diarize`."""

from __future__ import annotations

import logging
import os

from s2v_toolkit.diarization.audio import AudioSource, open_audio
from s2v_toolkit.diarization.turns import SpeakerTurns
from s2v_toolkit.errors import ConfigError

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "embedded", "neural", "pyannote")
DEFAULT_BACKEND_ENV = "S2VT_DIARIZATION_BACKEND"


def default_backend() -> str:
    """The backend used when none is named: ``$S2VT_DIARIZATION_BACKEND`` if set, else ``"auto"``."""
    name = os.environ.get(DEFAULT_BACKEND_ENV, "").strip() or "auto"
    if name not in BACKENDS:
        raise ConfigError(f"${DEFAULT_BACKEND_ENV}={name!r} is not a diarization backend; "
                          f"choose one of {', '.join(BACKENDS)}")
    return name


def resolve_backend(backend: str | None = None, config=None) -> tuple[str, str]:
    """(the backend that runs, why) for a requested one; ``None`` asks for :func:`default_backend`.

    ``"auto"`` is the neural backend when its two model files are installed (``s2vt diarize --setup``;
    ``scripts/setup.sh`` runs it), else the embedded one, which ships inside the package. Why the neural one
    first: on the 33 real recordings with reference turns measured (docs/diarization.md, "Which backend")
    it is better on most (mean DER 0.268 against 0.363, the count within one of the truth on 26 against
    20); the embedded one is better on voices of one speech synthesiser. A config object names its backend."""
    requested = backend or default_backend()
    if requested not in BACKENDS:
        raise ConfigError(f"unknown diarization backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested, "asked for" if backend else f"${DEFAULT_BACKEND_ENV}"
    from s2v_toolkit.diarization.embedded import EmbeddedConfig
    from s2v_toolkit.diarization.model_files import SETUP_COMMAND, find_neural_models, models_dir
    from s2v_toolkit.diarization.neural import NeuralConfig

    if isinstance(config, EmbeddedConfig):
        return "embedded", "auto: an EmbeddedConfig was given"
    if isinstance(config, NeuralConfig):
        return "neural", "auto: a NeuralConfig was given"
    if find_neural_models() is not None:
        return "neural", f"auto: the neural backend's model files are installed ({models_dir()})"
    return "embedded", (f"auto: the neural backend's model files are not installed in {models_dir()} "
                        f"(`{SETUP_COMMAND}` fetches them; it is more accurate on most real recordings)")


def _check_counts(num_speakers, min_speakers, max_speakers) -> None:
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                        ("max_speakers", max_speakers)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if min_speakers and max_speakers and min_speakers > max_speakers:
        raise ConfigError(f"min_speakers ({min_speakers}) is larger than max_speakers ({max_speakers})")


def diarize(audio, sample_rate: int | None = None, *, backend: str | None = None, num_speakers: int | None = None,
            min_speakers: int | None = None, max_speakers: int | None = None,
            pyannote_dir: str | os.PathLike | None = None, channel=None, config=None, progress=False,
            uri: str | None = None, overlap: bool = True) -> SpeakerTurns:
    """Who speaks when in ``audio`` (a file path, an array with ``sample_rate``, or an :class:`AudioSource`).

    Returns :class:`SpeakerTurns` labelled ``SPEAKER_00``, ``SPEAKER_01``... in order of first appearance.
    ``overlap``: where two voices speak at once, both hold a turn (the neural and pyannote backends detect
    overlapped speech; the embedded one gives each moment to its dominant voice); ``overlap=False`` gives
    exclusive turns, one voice per moment, as the planner uses (``info["overlap"]`` says which). ``num_speakers`` fixes the count; otherwise it is estimated (a cast bounds it: max_speakers),
    within ``min_speakers``/``max_speakers``. ``backend``: None for the default (:func:`default_backend`:
    ``"auto"``, the neural backend where its model files are installed, else the embedded one; the result's
    ``info["backend_choice"]`` says which and why). ``backend="pyannote"`` needs ``pyannote_dir``, a pipeline
    folder downloaded once (see docs/diarization.md), and the optional ``pyannote`` extra. ``channel``:
    None mixes channels down, an int picks one, ``"auto"`` picks the one with the most speech.
    ``config``: an :class:`~s2v_toolkit.diarization.embedded.EmbeddedConfig` for the embedded backend, a
    :class:`~s2v_toolkit.diarization.neural.NeuralConfig` for the neural one (``backend="neural"``: speaker
    segmentation + CAM++ voice prints; its two model files come from ``s2vt diarize --setup``).
    """
    _check_counts(num_speakers, min_speakers, max_speakers)
    # auto with no config: the neural backend only for its files being installed, so it may fall back below
    auto_by_files = config is None and (backend or default_backend()) == "auto"
    backend, why = resolve_backend(backend, config)
    source: AudioSource = open_audio(audio, sample_rate, channel)
    if uri:
        source.name = uri
    if backend == "embedded":
        from s2v_toolkit.diarization.embedded import EmbeddedConfig, EmbeddedDiarizer

        if config is not None and not isinstance(config, EmbeddedConfig):
            raise ConfigError(f"the embedded backend takes an EmbeddedConfig, not {type(config).__name__}")
        diarizer = EmbeddedDiarizer(config)
    elif backend == "neural":
        from s2v_toolkit.diarization.model_files import NeuralModelsUnreadable
        from s2v_toolkit.diarization.neural import NeuralConfig, NeuralDiarizer

        if config is not None and not isinstance(config, NeuralConfig):
            raise ConfigError(f"the neural backend takes a NeuralConfig, not {type(config).__name__}")
        try:
            diarizer = NeuralDiarizer(config=config)
        except NeuralModelsUnreadable as exc:
            if not auto_by_files:
                raise
            # auto chose it for files that turn out unreadable: the job goes on with the other backend, and
            # the result says why (a named backend, or one asked for by config, stops with the line instead)
            from s2v_toolkit.diarization.embedded import EmbeddedDiarizer

            logger.warning("%s; the embedded backend runs instead", exc)
            backend, why = "embedded", f"auto: {exc}; the embedded backend ran instead"
            diarizer = EmbeddedDiarizer()
    else:
        from s2v_toolkit.diarization.pyannote_backend import PyannoteDiarizer

        if pyannote_dir is None:
            raise ConfigError("the pyannote backend needs a pipeline folder (--pyannote-dir); "
                              "see docs/diarization.md for the one-time download")
        diarizer = PyannoteDiarizer(pyannote_dir)
    counts = dict(num_speakers=num_speakers, min_speakers=min_speakers, max_speakers=max_speakers)
    result = diarizer(source, **counts, progress=progress, overlap=overlap)
    if backend == "neural" and auto_by_files and not result.turns and source.duration > 0:
        # the segmentation network heard nobody: quiet far-field speech can sit under what it learned to
        # hear while the embedded backend's voice-activity detector, which adapts to the recording's noise
        # floor, still finds it (a meeting excerpt: nothing against 0.9 s of its 3.3 s). Auto gives the
        # embedded result then, and says so; a backend named by the caller is left as it is.
        from s2v_toolkit.diarization.embedded import EmbeddedDiarizer

        fallback = EmbeddedDiarizer()(source, **counts, progress=progress, overlap=overlap)
        if fallback.turns:
            found = sum(t.duration for t in fallback.turns)
            why = (f"{why}; the neural backend heard no speech, the embedded backend found {found:.1f} s, "
                   "so its turns are given")
            result = fallback
    result.info["backend_choice"] = why
    if channel is not None:
        result.info["channel"] = getattr(source, "channel", None)
    return result
