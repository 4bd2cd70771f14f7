"""Audio for diarization: 16 kHz mono float32, read block by block so long files use bounded memory.

An :class:`AudioSource` has a ``duration`` and ``read(start, duration)``. :func:`open_audio` makes one from
a file path (soundfile for WAV/FLAC/OGG/MP3: exact seeks; otherwise ``s2v_toolkit.media.read_audio``, which
decodes any FFmpeg format) or from an in-memory array. Each block is read with a margin of 50 ms on both
sides and resampled with soxr (its default high-quality filter), so block edges carry no filter artefacts.

Channels: ``channel=None`` mixes all channels down; an integer picks one channel; ``"auto"`` picks the
channel with the most speech (Silero VAD over the first two minutes), for stereo stems with dialogue on
one side only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from s2v_toolkit.errors import MediaError

SAMPLE_RATE = 16000
_MARGIN = 0.05


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE or len(x) == 0:
        return x.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(x, rate, SAMPLE_RATE).astype(np.float32, copy=False)


def _pick_channels(block: np.ndarray, channel) -> np.ndarray:
    """(frames, channels) -> mono."""
    if channel is None:
        return block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
    return block[:, channel]


class AudioSource:
    """Random access to a recording as 16 kHz mono float32."""

    sample_rate = SAMPLE_RATE
    duration: float = 0.0
    name: str = "audio"
    channels: int = 1
    source_rate: int = SAMPLE_RATE

    def read(self, start: float, duration: float | None = None) -> np.ndarray:
        """Samples from ``start`` seconds for ``duration`` seconds (to the end if None); zeros outside."""
        raise NotImplementedError

    def read_all(self) -> np.ndarray:
        return self.read(0.0, self.duration)

    def _read_native(self, first: int, last: int) -> np.ndarray:
        """(frames, channels) float32 at the source rate for source frames [first, last) within range."""
        raise NotImplementedError

    def _read_via_native(self, start: float, duration: float | None, channel) -> np.ndarray:
        if duration is None:
            duration = max(0.0, self.duration - start)
        n_out = int(round(duration * SAMPLE_RATE))
        out = np.zeros(n_out, dtype=np.float32)
        if n_out == 0:
            return out
        rate = self.source_rate
        total = int(round(self.duration * rate))
        lo = max(0, int(np.floor((start - _MARGIN) * rate)))
        hi = min(total, int(np.ceil((start + duration + _MARGIN) * rate)))
        if hi <= lo:
            return out
        mono = _pick_channels(self._read_native(lo, hi), channel)
        res = _resample(mono, rate)
        offset = int(round((start - lo / rate) * SAMPLE_RATE))  # output index of `start` within `res`
        src_a, dst_a = max(0, offset), max(0, -offset)
        n = min(len(res) - src_a, n_out - dst_a)
        if n > 0:
            out[dst_a:dst_a + n] = res[src_a:src_a + n]
        return out


class ArraySource(AudioSource):
    """An in-memory signal: (samples,) or (samples, channels) at ``sample_rate``."""

    def __init__(self, samples: np.ndarray, sample_rate: int, channel=None, name: str = "audio") -> None:
        data = np.asarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2:
            raise MediaError(name, f"audio array must be (samples,) or (samples, channels), got {data.shape}")
        if data.shape[1] > data.shape[0] and 0 < data.shape[0] <= 8:  # (channels, samples) given: accept it
            data = data.T
        if sample_rate <= 0:
            raise MediaError(name, f"invalid sample rate {sample_rate}")
        self.name, self.channels, self.source_rate = name, data.shape[1], int(sample_rate)
        self._data = data
        self.duration = data.shape[0] / sample_rate
        self.channel = _resolve_channel(self, channel)
        self._mono: np.ndarray | None = None

    def _read_native(self, first: int, last: int) -> np.ndarray:
        return self._data[first:last]

    def read(self, start: float, duration: float | None = None) -> np.ndarray:
        if self._mono is None:  # small enough to hold: resample once, exactly as a file would be
            self._mono = _resample(_pick_channels(self._data, self.channel), self.source_rate)
        if duration is None:
            duration = max(0.0, self.duration - start)
        n_out = int(round(duration * SAMPLE_RATE))
        first = int(round(start * SAMPLE_RATE))
        out = np.zeros(n_out, dtype=np.float32)
        a, b = max(0, first), min(len(self._mono), first + n_out)
        if b > a:
            out[a - first:b - first] = self._mono[a:b]
        return out


class SoundFileSource(AudioSource):
    """A file libsndfile reads (WAV, FLAC, OGG, MP3, AIFF...), read with exact seeks."""

    def __init__(self, path: str | os.PathLike, channel=None) -> None:
        import soundfile as sf

        self.path = Path(path)
        info = sf.info(str(self.path))
        self.name, self.channels, self.source_rate = self.path.stem, info.channels, int(info.samplerate)
        self.frames = int(info.frames)
        self.duration = self.frames / self.source_rate
        self.channel = _resolve_channel(self, channel)

    def _read_native(self, first: int, last: int) -> np.ndarray:
        import soundfile as sf

        data, _ = sf.read(str(self.path), start=first, stop=last, dtype="float32", always_2d=True)
        return data

    def read(self, start: float, duration: float | None = None) -> np.ndarray:
        return self._read_via_native(start, duration, self.channel)


class MediaSource(AudioSource):
    """Any file FFmpeg decodes (video containers, AAC, ...), through ``s2v_toolkit.media``."""

    def __init__(self, path: str | os.PathLike, channel=None) -> None:
        from s2v_toolkit import media

        self.path = Path(path)
        self._media = media
        info = media.probe(self.path)
        if not info.audio:
            raise MediaError(self.path, "has no audio stream to diarize")
        stream = info.audio[0]
        # channels counted across the audio streams (a camera file's mono stream per microphone), as
        # media.read_audio(channel=) numbers them; with no channel chosen the first stream is mixed down
        channels = sum(int(a.channels) for a in info.audio)
        self.name, self.channels, self.source_rate = self.path.stem, channels, int(stream.sample_rate)
        self.duration = float(stream.duration or info.duration)
        self.channel = _resolve_channel(self, channel)

    def read(self, start: float, duration: float | None = None) -> np.ndarray:
        if duration is None:
            duration = max(0.0, self.duration - start)
        samples = self._media.read_audio(self.path, start=start, duration=duration, sample_rate=SAMPLE_RATE,
                                         channel=self.channel)
        n_out = int(round(duration * SAMPLE_RATE))
        samples = np.asarray(samples, dtype=np.float32)[:n_out]
        return np.pad(samples, (0, n_out - len(samples))) if len(samples) < n_out else samples


def _resolve_channel(source: AudioSource, channel):
    if channel is None or source.channels == 1:
        return None
    if channel == "auto":
        return _speechiest_channel(source)
    try:
        channel = int(channel)
    except (TypeError, ValueError):
        raise MediaError(source.name, f"channel must be an integer, 'auto' or None, got {channel!r}") from None
    if not 0 <= channel < source.channels:
        raise MediaError(source.name, f"has {source.channels} channel(s); channel {channel} does not exist")
    return channel


def _speechiest_channel(source: AudioSource, seconds: float = 120.0) -> int | None:
    """The channel whose first ``seconds`` have the highest mean speech probability (None: they tie)."""
    from s2v_toolkit.diarization.vad import speech_probabilities

    span = min(seconds, source.duration)
    scores = []
    for c in range(source.channels):
        mono = source._read_via_native(0.0, span, c) if not isinstance(source, MediaSource) \
            else source._media.read_audio(source.path, start=0.0, duration=span, sample_rate=SAMPLE_RATE, channel=c)
        probs = speech_probabilities(np.asarray(mono, dtype=np.float32))
        scores.append(float(probs.mean()) if len(probs) else 0.0)
    best = int(np.argmax(scores))
    others = [s for i, s in enumerate(scores) if i != best]
    return best if scores[best] > max(others, default=0.0) + 0.05 else None


def open_audio(audio, sample_rate: int | None = None, channel=None) -> AudioSource:
    """An :class:`AudioSource` for a path, an array (``sample_rate`` required) or an existing source."""
    if isinstance(audio, AudioSource):
        return audio
    if isinstance(audio, np.ndarray):
        if sample_rate is None:
            raise MediaError("<array>", "sample_rate is required with an in-memory signal")
        return ArraySource(audio, sample_rate, channel)
    path = Path(audio)
    if not path.exists():
        raise MediaError(path, "file not found")
    if path.is_dir():
        raise MediaError(path, "is a folder, not an audio or video file")
    try:
        return SoundFileSource(path, channel)
    except MediaError:
        raise
    except Exception:  # not a libsndfile format: let FFmpeg try
        pass
    try:
        return MediaSource(path, channel)
    except MediaError:
        raise
    except ImportError:
        raise MediaError(path, "not a format soundfile reads, and s2v_toolkit.media is unavailable") from None
    except Exception as exc:
        raise MediaError(path, f"cannot decode audio ({exc})") from None
