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


def speech_regions(probs: np.ndarray, duration: float, config: VADConfig = VADConfig(),
                   frame_seconds: float = FRAME_SECONDS) -> list[tuple[float, float]]:
    """Turn per-frame speech probabilities into sorted, non-overlapping (start, end) regions in seconds."""
    regions: list[list[float]] = []
    active, start = False, 0.0
    for i, p in enumerate(np.asarray(probs, dtype=np.float32)):
        if not active and p >= config.onset:
            active, start = True, i * frame_seconds
        elif active and p < config.offset:
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
