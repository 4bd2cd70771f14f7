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


def shown_on_grid(times: list, fps: Fraction, n: int | None = None) -> list[int]:
    """For each frame of a grid at ``fps`` from the first time, which of the frames displayed at ``times``
    (seconds, any order) it shows, written from the rule, for tests to check readers against.

    A frame belongs to the grid slot nearest its time (of two frames near one slot, the nearer keeps it,
    the earlier on a tie; the other is dropped); a slot no frame belongs to shows the frame still displayed
    at its time. ``n`` defaults to the slot of the last frame, plus one.
    """
    order = sorted(range(len(times)), key=lambda k: Fraction(times[k]))
    t0 = Fraction(times[order[0]])
    owner: dict[int, int] = {}
    for k in order:
        x = (Fraction(times[k]) - t0) * fps
        slot = int(x + Fraction(1, 2)) if x >= 0 else 0
        if slot not in owner or abs(x - slot) < abs((Fraction(times[owner[slot]]) - t0) * fps - slot):
            owner[slot] = k
    n = max(owner) + 1 if n is None else n
    out, current = [], owner[0]
    for i in range(n):
        if i in owner:
            current = owner[i]
        else:  # the latest frame whose time is at or before this slot's
            t = t0 + Fraction(i) / fps
            current = max((k for k in order if Fraction(times[k]) <= t), key=lambda k: Fraction(times[k]))
        out.append(current)
    return out


def encode_video(path, frames, codec: str, pix_fmt: str = "yuv420p", rate: int = 25, format: str | None = None,
                 options: dict | None = None, setup=None):
    """Encode ``frames`` with ``codec`` into ``path`` (container ``format`` where the extension does not say
    it): RGB arrays (uint8 (H, W, 3)), or PyAV frames already in ``pix_fmt`` (samples written as they are);
    ``setup(stream)`` sets anything else before the first frame. Returns path."""
    import av

    frames = list(frames)
    first = frames[0]
    h, w = (first.height, first.width) if isinstance(first, av.VideoFrame) else first.shape[:2]
    with av.open(str(path), "w", format=format) as c:
        s = c.add_stream(codec, rate=rate, options=options or {})
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if setup is not None:
            setup(s)
        for k, item in enumerate(frames):
            f = item if isinstance(item, av.VideoFrame) else \
                av.VideoFrame.from_ndarray(np.ascontiguousarray(item), format="rgb24")
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def mux_pcm(container, stream, samples: np.ndarray, rate: int) -> None:
    """Encode and mux one mono int16 signal on an open output ``container``'s PCM ``stream``, flushed."""
    import av

    frame = av.AudioFrame.from_ndarray(np.asarray(samples, np.int16)[None], format="s16", layout="mono")
    frame.sample_rate, frame.pts = rate, 0
    for p in stream.encode(frame):
        container.mux(p)
    for p in stream.encode(None):
        container.mux(p)


def write_camera_file(path, levels: list[float], seconds: float = 3.0, rate: int = 48000, fps: int = 25):
    """A small MOV as cameras that record a mono audio stream per microphone write it (Sony XDCAM/XAVC,
    Panasonic P2, ARRI): a black picture and one mono stream per entry of ``levels``, stream i a 440 Hz tone
    at peak ``levels[i]`` (0: silent)."""
    import av

    n = int(seconds * rate)
    t = np.arange(n) / rate
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        streams = [c.add_stream("pcm_s16le", rate=rate, layout="mono") for _ in levels]
        for k in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = k
            for p in v.encode(frame):
                c.mux(p)
        for level, s in zip(levels, streams):
            mux_pcm(c, s, (level * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16), rate)
        for p in v.encode(None):
            c.mux(p)
    return path
