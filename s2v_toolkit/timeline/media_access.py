"""The two questions this layer asks of media files: how long is it, and its audio as 16 kHz mono.

Decoding belongs to :mod:`s2v_toolkit.media`; this module is the one place the timeline layer
calls it. While that stage is not installed, WAV/FLAC files are read with soundfile + soxr so that
the timeline layer stays usable and testable on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class MediaFacts:
    duration: float                 # seconds
    start_frame: int = 0            # embedded start timecode as a frame number (0 if none)
    fps: Fraction | None = None     # video rate, if the file has video
    has_audio: bool = True


def _media_module():
    try:
        from s2v_toolkit import media
    except ImportError:
        return None
    return media if hasattr(media, "read_audio") and hasattr(media, "probe") else None


def probe_facts(path: str | os.PathLike) -> MediaFacts:
    media = _media_module()
    if media is not None:
        info = media.probe(path)
        v = info.video
        return MediaFacts(
            duration=float(info.duration),
            start_frame=int(v.start_frame) if v is not None else 0,
            fps=Fraction(v.fps) if v is not None else None,
            has_audio=bool(info.audio),
        )
    import soundfile

    info = soundfile.info(str(path))
    return MediaFacts(duration=float(info.frames) / info.samplerate)


def read_audio_16k(path: str | os.PathLike, start: float, duration: float,
                   sample_rate: int = 16000, channel: int | None = None) -> np.ndarray:
    """Mono float32 audio of ``duration`` seconds from ``start`` seconds into the file.

    Parts outside the file read as zeros, so the length is always ``round(duration*rate)``.
    """
    want = int(round(duration * sample_rate))
    media = _media_module()
    if media is not None:
        out = media.read_audio(path, start=start, duration=duration, sample_rate=sample_rate, channel=channel)
    else:
        out = _read_with_soundfile(path, start, duration, sample_rate, channel)
    out = np.asarray(out, dtype=np.float32).reshape(-1)
    if out.shape[0] != want:  # decoders may round the edge sample differently
        out = np.pad(out, (0, max(0, want - out.shape[0])))[:want]
    return out


def _read_with_soundfile(path, start: float, duration: float, sample_rate: int, channel) -> np.ndarray:
    import soundfile
    import soxr

    with soundfile.SoundFile(str(path)) as f:
        sr = f.samplerate
        first = int(round(start * sr))
        count = int(round(duration * sr))
        lo, hi = max(first, 0), min(first + count, f.frames)
        data = np.zeros((count, f.channels), dtype=np.float32)
        if hi > lo:
            f.seek(lo)
            data[lo - first: hi - first] = f.read(hi - lo, dtype="float32", always_2d=True)
    mono = data.mean(axis=1) if channel is None else data[:, channel]
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    return mono.astype(np.float32)
