"""Speaker segmentation: pyannote's PyanNet (SincNet, LSTMs, powerset output), one readable file.

Written here from pyannote.audio's description of the model (Bredin, "pyannote.audio 2.1 speaker
diarization pipeline", Interspeech 2023; Plaquet & Bredin, "Powerset multi-class cross entropy loss for
neural speaker diarization", Interspeech 2023) and the parameter layout of the official
``segmentation-3.0`` checkpoint (MIT), so that its ``pytorch_model.bin`` loads unchanged.

For a 10 s chunk of 16 kHz audio it gives, every ~17 ms, the probability of each "powerset" class over up
to 3 local speakers with at most 2 at once: nobody, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
:func:`powerset_to_speakers` turns that into per-speaker activity. Local speakers are only "the voices of
this chunk": linking them across chunks is the diarizer's job.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2v_toolkit.diarization._checkpoint import load_into, read_state

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SegmentationConfig:
    sinc_filters: int = 80       # half cosine, half sine band-pass filters
    sinc_kernel: int = 251
    sinc_stride: int = 10
    conv_channels: int = 60
    lstm_hidden: int = 128
    lstm_layers: int = 4
    linear_hidden: int = 128
    linear_layers: int = 2
    max_speakers: int = 3        # per chunk
    max_simultaneous: int = 2    # per frame
    duration: float = 10.0       # seconds per chunk the model was trained on

    @staticmethod
    def tiny() -> SegmentationConfig:
        """A small layout for tests (random weights)."""
        return SegmentationConfig(sinc_filters=8, sinc_kernel=31, conv_channels=6, lstm_hidden=8, lstm_layers=2,
                                  linear_hidden=8, duration=2.0)

    @property
    def classes(self) -> list[tuple[int, ...]]:
        """The powerset classes in the model's output order: (), (0,), (1,), ..., (0, 1), ..."""
        out: list[tuple[int, ...]] = []
        for k in range(self.max_simultaneous + 1):
            out.extend(itertools.combinations(range(self.max_speakers), k))
        return out


class _SincFilterbank(nn.Module):
    """Parametrised band-pass filters (SincNet with sine and cosine halves), as a fixed conv at inference.

    Parameters as in the checkpoint: ``low_hz_``, ``band_hz_`` (one per filter pair), the half Hamming
    ``window_`` and the half time axis ``n_`` (2 pi t / sample rate for t = -K/2 .. -1).
    """

    def __init__(self, cfg: SegmentationConfig, min_low_hz: float = 50.0, min_band_hz: float = 50.0):
        super().__init__()
        half = cfg.sinc_filters // 2
        k = cfg.sinc_kernel // 2
        self.stride = cfg.sinc_stride
        self.min_low_hz, self.min_band_hz = min_low_hz, min_band_hz
        self.low_hz_ = nn.Parameter(torch.zeros(half, 1))
        self.band_hz_ = nn.Parameter(torch.zeros(half, 1))
        self.register_buffer("window_", torch.hamming_window(2 * k + 1, periodic=False)[:k])
        self.register_buffer("n_", 2 * math.pi * torch.arange(-k, 0.0).view(1, -1) / SAMPLE_RATE)

    def filters(self) -> torch.Tensor:
        low = self.min_low_hz + self.low_hz_.abs()
        high = torch.clamp(low + self.min_band_hz + self.band_hz_.abs(), self.min_low_hz, SAMPLE_RATE / 2)
        band = (high - low)[:, 0]
        f_low, f_high = low @ self.n_, high @ self.n_
        half_t = self.n_ / 2
        cos_left = (torch.sin(f_high) - torch.sin(f_low)) / half_t * self.window_
        sin_left = (torch.cos(f_low) - torch.cos(f_high)) / half_t * self.window_
        cos = torch.cat([cos_left, 2 * band[:, None], cos_left.flip(1)], dim=1)
        sin = torch.cat([sin_left, torch.zeros_like(band[:, None]), -sin_left.flip(1)], dim=1)
        return (torch.cat([cos, sin], dim=0) / (2 * torch.cat([band, band])[:, None])).unsqueeze(1)

    def forward(self, x):
        return F.conv1d(x, self.filters(), stride=self.stride)


class _FilterbankEncoder(nn.Module):
    """Holds the filterbank under the checkpoint's name (``conv1d.0.filterbank``)."""

    def __init__(self, cfg: SegmentationConfig):
        super().__init__()
        self.filterbank = _SincFilterbank(cfg)

    def forward(self, x):
        return self.filterbank(x)


class _SincNet(nn.Module):
    def __init__(self, cfg: SegmentationConfig):
        super().__init__()
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        c = cfg.conv_channels
        self.conv1d = nn.ModuleList([_FilterbankEncoder(cfg), nn.Conv1d(cfg.sinc_filters, c, 5), nn.Conv1d(c, c, 5)])
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(n, affine=True) for n in (cfg.sinc_filters, c, c)])

    def forward(self, wave):  # (batch, 1, samples)
        return self._after_pooling(self._pooled_magnitude(wave))

    def _pooled_magnitude(self, wave):  # (batch, 1, samples) -> (batch, filters, frames / 3)
        x = self.conv1d[0](self.wav_norm1d(wave))  # the band-pass outputs of the normalised wave
        return F.max_pool1d(x.abs(), 3, 3)  # their magnitude, pooled

    def _after_pooling(self, x):  # (batch, filters, frames / 3)
        x = F.leaky_relu(self.norm1d[0](x))
        for conv, norm in zip(self.conv1d[1:], self.norm1d[1:]):
            x = F.leaky_relu(norm(F.max_pool1d(conv(x), 3, 3)))
        return x

    def chunks(self, span: torch.Tensor, offsets: list[int], samples: int) -> torch.Tensor:
        """``forward`` of the chunks ``span[o:o + samples]`` for each offset in ``offsets`` -> (chunks,
        channels, frames), to float round-off, filtering the span once.

        Overlapping chunks share their band-pass filtering: the first normalisation is an affine map per chunk
        (``g (x - mean) / sd + b``) and the filterbank is linear, so a chunk's filtered normalised wave is
        ``a f + c`` per filter, with ``f`` the span's filtering, ``a = g / sd`` and ``c = (b - a mean) S``
        (``S``: the filter's sum). The magnitude of an affine map is convex, so its largest value over a
        pooling window is at the window's largest or smallest ``f``: the windows' extremes of ``f`` are
        taken once for the span too. Offsets that are not a multiple of the filters' stride are filtered on
        their own."""
        bank = self.conv1d[0].filterbank
        filters = bank.filters()
        stride = bank.stride
        norm = self.wav_norm1d
        pooled = ((samples - filters.shape[-1]) // stride + 1) // 3
        out = torch.empty(len(offsets), filters.shape[0], pooled, dtype=span.dtype, device=span.device)
        aligned = [i for i, o in enumerate(offsets) if o % stride == 0]
        if aligned:
            lo = min(offsets[i] for i in aligned)
            hi = max(offsets[i] for i in aligned) + samples
            f = F.conv1d(span[lo:hi].view(1, 1, -1), filters, stride=stride)
            f_max = F.max_pool1d(f, 3, 1)[0]  # every window of 3, whichever phase a chunk's pooling has
            f_min = -F.max_pool1d(-f, 3, 1)[0]
            pieces = torch.stack([span[offsets[i]:offsets[i] + samples] for i in aligned])
            var, mean = torch.var_mean(pieces, dim=1, unbiased=False)
            gain = norm.weight / torch.sqrt(var + norm.eps)  # (chunks,)
            sums = filters.sum(-1)  # (filters, 1)
            for row, i in enumerate(aligned):
                a = (offsets[i] - lo) // stride
                window = slice(a, a + 3 * pooled, 3)
                shift = (norm.bias - gain[row] * mean[row]) * sums
                out[i] = torch.maximum((gain[row] * f_max[:, window] + shift).abs(),
                                       (gain[row] * f_min[:, window] + shift).abs())
        rest = [i for i in range(len(offsets)) if offsets[i] % stride != 0]
        if rest:
            pieces = torch.stack([span[offsets[i]:offsets[i] + samples] for i in rest])
            out[rest] = self._pooled_magnitude(pieces[:, None])
        return self._after_pooling(out)


class PyanNet(nn.Module):
    """Waveform chunks (batch, samples) -> powerset log-probabilities (batch, frames, classes)."""

    def __init__(self, cfg: SegmentationConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SegmentationConfig()
        self.sincnet = _SincNet(cfg)
        self.lstm = nn.LSTM(cfg.conv_channels, cfg.lstm_hidden, num_layers=cfg.lstm_layers, bidirectional=True,
                            batch_first=True)
        dims = [2 * cfg.lstm_hidden] + [cfg.linear_hidden] * cfg.linear_layers
        self.linear = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.classifier = nn.Linear(dims[-1], len(cfg.classes))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self._head(self.sincnet(wave.unsqueeze(1)))

    def chunks(self, span: torch.Tensor, offsets: list[int]) -> torch.Tensor:
        """``forward`` of the chunks of ``cfg.duration`` starting at each of ``offsets`` (samples) in the 1-D
        ``span``, to float round-off, at a fraction of the cost where they overlap (the band-pass filtering
        is shared: :meth:`_SincNet.chunks`)."""
        return self._head(self.sincnet.chunks(span, offsets, int(round(self.cfg.duration * SAMPLE_RATE))))

    def _head(self, features: torch.Tensor) -> torch.Tensor:  # (batch, channels, frames) -> log-probabilities
        x, _ = self.lstm(features.transpose(1, 2))
        for layer in self.linear:
            x = F.leaky_relu(layer(x))
        return F.log_softmax(self.classifier(x), dim=-1)

    def num_frames(self, samples: int) -> int:
        """Output frames for a chunk of ``samples`` (no padding anywhere: each conv and pool trims)."""
        n = (samples - self.cfg.sinc_kernel) // self.cfg.sinc_stride + 1
        for kernel in (3, 5, 3, 5, 3):  # pool, conv, pool, conv, pool
            n = n // 3 if kernel == 3 else n - 4
        return max(n, 0)

    def frame_times(self) -> tuple[float, float]:
        """(step, offset) in seconds: frame ``i`` is centred on ``offset + i * step`` from the chunk start."""
        step, field = 1, 1
        for kernel, stride in ((3, 3), (5, 1), (3, 3), (5, 1), (3, 3)):  # back from the last pool to the sinc conv
            field = (field - 1) * stride + kernel
            step *= stride
        field = (field - 1) * self.cfg.sinc_stride + self.cfg.sinc_kernel
        step *= self.cfg.sinc_stride
        return step / SAMPLE_RATE, field / 2 / SAMPLE_RATE


def _powerset_table(cfg: SegmentationConfig, like: torch.Tensor) -> torch.Tensor:
    """(classes, speakers) 0/1: which local speakers each powerset class holds."""
    table = torch.zeros(len(cfg.classes), cfg.max_speakers, dtype=like.dtype, device=like.device)
    for c, members in enumerate(cfg.classes):
        for s in members:
            table[c, s] = 1.0
    return table


def powerset_to_speakers(log_probs: torch.Tensor, cfg: SegmentationConfig) -> torch.Tensor:
    """(..., frames, classes) powerset log-probabilities -> (..., frames, speakers) soft activity.

    A speaker's activity is the total probability of the classes that contain it (so overlap counts for
    both of its speakers).
    """
    return log_probs.exp() @ _powerset_table(cfg, log_probs)


def powerset_hard(log_probs: torch.Tensor, cfg: SegmentationConfig) -> torch.Tensor:
    """The most likely class per frame as 0/1 speaker activity (..., frames, speakers)."""
    return _powerset_table(cfg, log_probs)[log_probs.argmax(-1)]


def load_segmentation(path: str | os.PathLike, cfg: SegmentationConfig | None = None) -> PyanNet:
    """An official ``segmentation-3.0`` checkpoint (PyTorch Lightning ``pytorch_model.bin``) or a plain
    state dict of the same layout, in eval mode, float32, CPU. Never runs code from the file: only tensors
    and plain containers are built (other pickled objects become inert placeholders)."""
    return load_into(PyanNet(cfg), read_state(path, lightning=True), path, "segmentation")
