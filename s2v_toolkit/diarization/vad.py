"""Voice-activity detection: the Silero VAD v5 network, run with our own torch code.

The weights are those of the ``silero-vad`` 6.2.3 wheel (MIT licence; the 16 kHz network of its default
``silero_vad.jit``), converted to safetensors and vendored in ``weights/`` (see ``_convert_weights.py``;
our outputs match that TorchScript model's to 3e-5). We do not import the ``silero_vad`` package: its
import calls ``torch.set_num_threads(1)`` for the whole process, and its loader runs a TorchScript file.

The network looks at 512-sample chunks (32 ms at 16 kHz) plus the 64 samples before each chunk, and
carries an LSTM state from chunk to chunk. The convolutional front end does not depend on that state, so
it runs on all chunks of a block at once; only the one-layer LSTM runs in sequence (as ``nn.LSTM``, which
is the same computation as the reference ``LSTMCell`` loop). :class:`SileroVAD` keeps the state between
calls, so a long file can be fed block by block with bounded memory and the same result as in one go.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
CHUNK = 512  # samples per probability (32 ms)
CONTEXT = 64  # samples of the previous chunk the network sees
FRAME_SECONDS = CHUNK / SAMPLE_RATE
WEIGHTS = Path(__file__).resolve().parent / "weights" / "silero_vad_v6_16k.safetensors"


def _build_network():
    import torch
    from torch import nn

    class _SileroNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # A fixed "STFT as convolution": 129 real + 129 imaginary filters of 256 samples, hop 128.
            self.stft_conv = nn.Conv1d(1, 258, kernel_size=256, stride=128, bias=False)
            self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
            self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
            self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
            self.lstm = nn.LSTM(128, 128, batch_first=True)
            self.final_conv = nn.Conv1d(128, 1, 1)

        def features(self, chunks: torch.Tensor) -> torch.Tensor:
            """(n, CONTEXT + CHUNK) samples -> (n, 128) per-chunk features (no state involved)."""
            x = nn.functional.pad(chunks, (0, 64), mode="reflect").unsqueeze(1)
            x = self.stft_conv(x)
            x = (x[:, :129] ** 2 + x[:, 129:] ** 2).sqrt()
            for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
                x = conv(x).relu()
            return x.squeeze(-1)

        def forward(self, chunks: torch.Tensor, state):
            h, state = self.lstm(self.features(chunks).unsqueeze(0), state)
            prob = self.final_conv(h[0].relu().unsqueeze(-1)).sigmoid()
            return prob[:, 0, 0], state

    return _SileroNet()


_NETWORK = None


def _network():
    """The network with its weights, loaded once per process (1.2 MB, safetensors)."""
    global _NETWORK
    if _NETWORK is None:
        from safetensors.torch import load_file

        net = _build_network()
        net.load_state_dict(load_file(str(WEIGHTS)), strict=True)
        _NETWORK = net.eval()
    return _NETWORK


class SileroVAD:
    """Streaming speech probability, one value per 32 ms chunk of 16 kHz mono audio.

    Feed consecutive blocks with :meth:`__call__`; samples that do not fill a chunk are kept for the
    next call, and :meth:`flush` pads the last partial chunk with zeros.
    """

    def __init__(self) -> None:
        self.net = _network()
        self.reset()

    def reset(self) -> None:
        self._state = None
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        import torch

        samples = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        n = len(samples) // CHUNK
        self._pending = samples[n * CHUNK:]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.concatenate([self._context, samples[: n * CHUNK]])
        self._context = padded[-CONTEXT:].copy()
        idx = np.arange(n)[:, None] * CHUNK + np.arange(CONTEXT + CHUNK)[None, :]
        from s2v_toolkit.diarization.embedding import torch_threads

        with torch.inference_mode(), torch_threads():
            probs, self._state = self.net(torch.from_numpy(padded[idx]), self._state)
        return probs.numpy().astype(np.float32)

    def flush(self) -> np.ndarray:
        if len(self._pending) == 0:
            return np.zeros(0, dtype=np.float32)
        tail = np.zeros(CHUNK - len(self._pending), dtype=np.float32)
        return self(tail)


class ChunkCues:
    """Streaming level and harmonicity of each 32 ms chunk, aligned with :class:`SileroVAD`'s chunks.

    Two cues the network does not give: the chunk's level in dBFS (the recording's noise floor is known only
    once the whole recording is seen, so :func:`speech_regions` takes the level relative to a floor it
    estimates itself) and its harmonicity, the highest normalised autocorrelation of the Hann-windowed chunk
    at pitch lags of 62.5-400 Hz (voiced speech: 0.4-0.8; broadband noise: about 0.25; silence: 0).
    """

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        samples = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        n = len(samples) // CHUNK
        self._pending = samples[n * CHUNK:]
        return chunk_cues(samples[: n * CHUNK])

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._pending) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        return self(np.zeros(CHUNK - len(self._pending), dtype=np.float32))


def chunk_cues(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(level dBFS, harmonicity) of each whole 512-sample chunk of ``samples`` (see :class:`ChunkCues`)."""
    n = len(samples) // CHUNK
    frames = np.asarray(samples[: n * CHUNK], dtype=np.float64).reshape(n, CHUNK)
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-12)
    frames = (frames - frames.mean(axis=1, keepdims=True)) * np.hanning(CHUNK)
    spectrum = np.fft.rfft(frames, 2 * CHUNK, axis=1)
    ac = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :CHUNK]
    lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 62  # pitch lags: 400 Hz down to 62.5 Hz
    harmonicity = ac[:, lo:hi].max(axis=1) / np.maximum(ac[:, 0], 1e-20)
    harmonicity[ac[:, 0] <= 1e-20] = 0.0
    return level.astype(np.float32), harmonicity.astype(np.float32)


def speech_probabilities(samples: np.ndarray, block_seconds: float = 60.0) -> np.ndarray:
    """Speech probability per 32 ms chunk for a whole 16 kHz mono signal (the last chunk zero-padded)."""
    vad = SileroVAD()
    block = int(block_seconds * SAMPLE_RATE) // CHUNK * CHUNK
    parts = [vad(samples[i:i + block]) for i in range(0, len(samples), block)]
    parts.append(vad.flush())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class VADConfig:
    """How speech probabilities become speech regions (seconds)."""

    onset: float = 0.5  # a region starts when the probability reaches this
    offset: float = 0.35  # ... and ends when it falls below this (hysteresis)
    min_speech: float = 0.25  # shorter regions are dropped
    min_silence: float = 0.15  # shorter pauses inside speech are bridged
    pad: float = 0.03  # added on both sides of each region (kept inside the signal)
    # Adapting to the recording (used when speech_regions gets ``cues``; docs/diarization.md). The noise floor
    # is the ``floor_percentile`` of the recording's chunk levels. In chunks ``weak_level_db`` above it, a
    # region may start at ``weak_onset`` and lasts down to ``weak_offset`` (far voices reach 0.2-0.4; at the
    # floor, noise the network half-believes keeps the strict thresholds; None: onset / offset) ...
    weak_onset: float | None = 0.2
    weak_offset: float | None = 0.1
    weak_level_db: float = 15.0
    # ... and a chunk counts as reaching ``onset`` when it is ``cue_level_db`` above the floor, voiced
    # (harmonicity >= ``cue_harmonicity``) and the network gives it at least ``cue_min_prob``
    cue_level_db: float = 12.0
    cue_harmonicity: float = 0.5
    cue_min_prob: float = 0.05
    floor_percentile: float = 10.0


def noise_floor(level_db: np.ndarray, percentile: float = 10.0) -> float:
    """The recording's noise floor (dBFS): a low percentile of its chunk levels, digital silence left out
    (zero padding or muted stretches would put the floor at -120 dB and every breath above it)."""
    level_db = np.asarray(level_db, dtype=np.float64)
    live = level_db[level_db > -100.0]
    return float(np.percentile(live, percentile)) if len(live) else -100.0


def cue_speech(probs: np.ndarray, level_db: np.ndarray, harmonicity: np.ndarray,
               config: VADConfig = VADConfig()) -> np.ndarray:
    """Chunks the spectral/level cue marks as speech (boolean per chunk; see :class:`VADConfig`)."""
    probs = np.asarray(probs, dtype=np.float32)
    n = min(len(probs), len(level_db), len(harmonicity))
    out = np.zeros(len(probs), dtype=bool)
    if n == 0:
        return out
    rel = np.asarray(level_db[:n]) - noise_floor(level_db[:n], config.floor_percentile)
    out[:n] = ((rel >= config.cue_level_db) & (np.asarray(harmonicity[:n]) >= config.cue_harmonicity)
               & (probs[:n] >= config.cue_min_prob))
    return out


def speech_regions(probs: np.ndarray, duration: float, config: VADConfig = VADConfig(),
                   frame_seconds: float = FRAME_SECONDS,
                   cues: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[float, float]]:
    """Turn per-frame speech probabilities into sorted, non-overlapping (start, end) regions in seconds.

    ``cues``: (level dBFS, harmonicity) per frame (:func:`chunk_cues`): the thresholds adapt to the
    recording's noise floor (the ``weak_*`` fields of :class:`VADConfig`) and frames :func:`cue_speech`
    marks count as reaching ``onset``. Without them, only the network's probabilities count."""
    probs = np.asarray(probs, dtype=np.float32)
    onset = np.full(len(probs), config.onset, dtype=np.float32)
    offset = np.full(len(probs), config.offset, dtype=np.float32)
    if cues is not None:
        n = min(len(probs), len(cues[0]))
        rel = np.full(len(probs), -np.inf, dtype=np.float32)
        rel[:n] = np.asarray(cues[0][:n]) - noise_floor(cues[0][:n], config.floor_percentile)
        # clearly above the noise floor, the network's weaker beliefs count: far voices reach 0.2-0.4; at the
        # floor they stay at onset/offset (noise the network half-believes is not promoted)
        loud = rel >= config.weak_level_db
        if config.weak_onset is not None:
            onset[loud] = min(config.onset, config.weak_onset)
        if config.weak_offset is not None:
            offset[loud] = min(config.offset, config.weak_offset)
        probs = np.where(cue_speech(probs, cues[0], cues[1], config), np.maximum(probs, config.onset), probs)
    regions: list[list[float]] = []
    active, start = False, 0.0
    for i, p in enumerate(probs):
        if not active and p >= onset[i]:
            active, start = True, i * frame_seconds
        elif active and p < offset[i]:
            active = False
            regions.append([start, i * frame_seconds])
    if active:
        regions.append([start, len(probs) * frame_seconds])

    merged: list[list[float]] = []
    for region in regions:  # bridge short pauses
        if merged and region[0] - merged[-1][1] < config.min_silence:
            merged[-1][1] = region[1]
        else:
            merged.append(region)
    out: list[tuple[float, float]] = []
    for s, e in merged:
        if e - s < config.min_speech:
            continue
        s, e = max(0.0, s - config.pad), min(duration, e + config.pad)
        if out and s <= out[-1][1]:  # padding made two regions touch
            out[-1] = (out[-1][0], e)
        elif e > s:
            out.append((s, e))
    return out
