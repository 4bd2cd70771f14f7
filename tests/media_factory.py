"""Test media whose content encodes time: frames stamped with their index, audio clicks at frame starts.

The stamp is 12 black/white columns (bits of the frame index) tall enough to survive any codec,
so a decoded frame tells its own index; the audio has one click at the first sample of each frame.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from s2v_toolkit.media import frame_to_sample, write_video

BITS = 12


def stamped_frame(index: int, width: int = 256, height: int = 144) -> np.ndarray:
    img = np.full((height, width, 3), 64, np.uint8)
    col = width // BITS
    for b in range(BITS):
        if (index >> b) & 1:
            img[:, b * col : (b + 1) * col] = 235
    img[: height // 8, :, 1] = (index * 37) % 256  # a second, independent clue in green
    return img


def decode_stamp(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    col = w // BITS
    row = frame[h // 2]
    return sum(1 << b for b in range(BITS) if row[b * col + col // 2].mean() > 150)


def click_track(frames: int, fps: Fraction, rate: int, channels: int = 1) -> np.ndarray:
    n = round(Fraction(frames) / fps * rate)
    audio = np.zeros((channels, n), np.float32)
    for k in range(frames):
        audio[:, frame_to_sample(k, fps, rate)] = 0.8
    for c in range(1, channels):  # later channels carry a constant offset so a channel pick is visible
        audio[c] += 0.1 * c
    return audio


def make_stamped_video(path, frames: int, fps: Fraction, preset: str = "h264", timecode: str | None = None,
                       rate: int = 48000, channels: int = 1, width: int = 256, height: int = 144, audio: bool = True):
    track = click_track(frames, fps, rate, channels) if audio else None
    return write_video(path, (stamped_frame(i, width, height) for i in range(frames)), fps, preset=preset,
                       audio=track, audio_rate=rate, start_timecode=timecode)
