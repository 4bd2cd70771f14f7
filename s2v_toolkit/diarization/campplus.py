"""CAM++ speaker embeddings (3D-Speaker's D-TDNN with context-aware masking), one readable file.

The network of Wang et al., "CAM++: A Fast and Efficient Network for Speaker Verification Using
Context-Aware Masking" (Interspeech 2023), written here from the paper and the parameter layout of the
official checkpoints (github.com/modelscope/3D-Speaker, Apache-2.0), so that an official
``campplus_*.pt`` state dict loads unchanged. Input: 16 kHz mono; features: Kaldi-style 80-bin log-mel
filterbanks (25 ms / 10 ms, Povey window, no dither), mean-normalised per utterance (:func:`kaldi_fbank`).

Two uses: :meth:`CAMPPlus.forward` (features -> one 192-d embedding per utterance), and
:meth:`CAMPPlus.frame_features` + :func:`masked_stats_embedding`, which run the trunk once over a long
recording and pool any set of frames into an embedding (the diarizer pools each local speaker's frames of
each chunk without running the network again).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2v_toolkit.diarization._checkpoint import load_into, read_state

SAMPLE_RATE = 16000
FRAME_SHIFT = 160      # samples (10 ms)
FRAME_LENGTH = 400     # samples (25 ms)


@dataclass(frozen=True)
class CAMPPlusConfig:
    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    head_channels: int = 32
    # (layers, kernel, dilation) of the three dense blocks
    blocks: tuple[tuple[int, int, int], ...] = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
    cam_segment: int = 100  # trunk frames per segment of the context pooling (2 s: the trunk runs at 20 ms)

    @staticmethod
    def tiny() -> CAMPPlusConfig:
        """A small layout for tests (random weights): same structure, few channels and layers."""
        return CAMPPlusConfig(feat_dim=16, embedding_size=8, growth_rate=4, bn_size=2, init_channels=8,
                              head_channels=4, blocks=((2, 3, 1), (2, 3, 2)), cam_segment=10)


# --- feature front end ------------------------------------------------------------------------------

def _mel(f):
    return 1127.0 * torch.log1p(f / 700.0)


def _mel_banks(n_mels: int, n_fft: int, sample_rate: int, low: float = 20.0) -> torch.Tensor:
    """Kaldi's triangular mel filters on the FFT bins (the Nyquist bin gets no weight, as in Kaldi)."""
    n_bins = n_fft // 2
    lo, hi = _mel(torch.tensor(low, dtype=torch.float64)), _mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    edges = torch.linspace(0, 1, n_mels + 2, dtype=torch.float64) * (hi - lo) + lo
    bin_mel = _mel(torch.arange(n_bins, dtype=torch.float64) * sample_rate / n_fft)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1)).float()  # (n_mels, n_fft // 2 + 1)


_BANKS: dict[tuple[int, int], torch.Tensor] = {}


def kaldi_fbank(wave: torch.Tensor, n_mels: int = 80, normalise: bool = True) -> torch.Tensor:
    """(samples,) float 16 kHz in [-1, 1] -> (frames, n_mels) log-mel filterbanks, Kaldi's recipe.

    Frames of 400 samples every 160 (edges snipped), each: DC removed, pre-emphasis 0.97, Povey window,
    512-point power spectrum, mel filters (20 Hz to Nyquist), log (floored at float eps). ``normalise``
    subtracts the mean over frames (the checkpoints were trained so). Shorter than one frame: 0 frames.
    """
    wave = wave.float().reshape(-1)
    n = 0 if wave.numel() < FRAME_LENGTH else 1 + (wave.numel() - FRAME_LENGTH) // FRAME_SHIFT
    if n == 0:
        return wave.new_zeros((0, n_mels))
    frames = wave.unfold(0, FRAME_LENGTH, FRAME_SHIFT)[:n]
    frames = frames - frames.mean(dim=1, keepdim=True)
    frames = torch.cat([frames[:, :1] * (1 - 0.97), frames[:, 1:] - 0.97 * frames[:, :-1]], dim=1)
    window = torch.hann_window(FRAME_LENGTH, periodic=False, dtype=frames.dtype, device=frames.device) ** 0.85
    power = torch.fft.rfft(frames * window, n=512).abs() ** 2
    key = (n_mels, 512)
    if key not in _BANKS:
        _BANKS[key] = _mel_banks(n_mels, 512, SAMPLE_RATE)
    feats = torch.log(torch.clamp(power @ _BANKS[key].to(power.device).T, min=torch.finfo(torch.float32).eps))
    return feats - feats.mean(dim=0, keepdim=True) if normalise else feats


# --- the network ------------------------------------------------------------------------------------

class _BnRelu(nn.Sequential):
    """``nonlinear``: BatchNorm then ReLU, named as in the checkpoints (``batchnorm``, ``relu``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.add_module("batchnorm", nn.BatchNorm1d(channels))
        self.add_module("relu", nn.ReLU(inplace=True))  # on the BatchNorm's own new output


class _ResBlock(nn.Module):
    """2-D residual block of the front-end (frequency stride only)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=(stride, 1), bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class _FrontEnd(nn.Module):
    """FCM: a small 2-D ResNet over (frequency, time) that turns the filterbanks into channels."""

    def __init__(self, cfg: CAMPPlusConfig):
        super().__init__()
        c = cfg.head_channels
        self.conv1 = nn.Conv2d(1, c, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.layer1 = nn.Sequential(_ResBlock(c, c, 2), _ResBlock(c, c, 1))
        self.layer2 = nn.Sequential(_ResBlock(c, c, 2), _ResBlock(c, c, 1))
        self.conv2 = nn.Conv2d(c, c, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.out_channels = c * math.ceil(math.ceil(math.ceil(cfg.feat_dim / 2) / 2) / 2)

    def forward(self, x):  # (batch, feat, time)
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.flatten(1, 2)  # (batch, channels * freq, time)


class _FoldedFrontEnd(nn.Module):
    """The front end for inference: every BatchNorm folded into the convolution before it, run channels-last
    (the same function to float round-off; ~25 % less time on a CPU)."""

    def __init__(self, front: _FrontEnd):
        super().__init__()
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        def fold(conv, bn):
            return fuse_conv_bn_eval(conv.eval(), bn.eval())

        self.conv1 = fold(front.conv1, front.bn1)
        self.blocks = nn.ModuleList()
        for block in (*front.layer1, *front.layer2):
            short = fold(block.shortcut[0], block.shortcut[1]) if len(block.shortcut) else None
            self.blocks.append(nn.ModuleList([fold(block.conv1, block.bn1), fold(block.conv2, block.bn2)]
                                             + ([short] if short is not None else [])))
        self.conv2 = fold(front.conv2, front.bn2)
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        # every ReLU and the residual sum work in place, on the new output of a convolution
        x = F.relu(self.conv1(x.unsqueeze(1).contiguous(memory_format=torch.channels_last)), inplace=True)
        for convs in self.blocks:  # each residual block: conv1, conv2 and, where the shape changes, the shortcut
            shortcut = convs[2](x) if len(convs) > 2 else x
            out = convs[1](F.relu(convs[0](x), inplace=True))
            x = F.relu(out.add_(shortcut), inplace=True)
        x = F.relu(self.conv2(x), inplace=True)
        return x.contiguous().flatten(1, 2)


class _ContextMask(nn.Module):
    """CAM layer: a local dilated conv, gated by a mask from the utterance mean plus segment means."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, segment: int):
        super().__init__()
        self.segment = segment
        self.linear_local = nn.Conv1d(c_in, c_out, kernel, padding=(kernel - 1) // 2 * dilation,
                                      dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(c_in, c_in // 2, 1)
        self.linear2 = nn.Conv1d(c_in // 2, c_out, 1)

    def forward(self, x):
        t = x.shape[-1]
        segments = F.avg_pool1d(x, self.segment, self.segment, ceil_mode=True)  # last segment: its own mean
        # the context (utterance mean + segment mean) is the same at every frame of a segment, so the mask
        # is computed once per segment and then spread over its frames
        mask = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(-1, keepdim=True) + segments))))
        return self.linear_local(x) * mask.repeat_interleave(self.segment, dim=-1)[..., :t]


class _DenseLayer(nn.Module):
    def __init__(self, c_in: int, cfg: CAMPPlusConfig, kernel: int, dilation: int):
        super().__init__()
        bottleneck = cfg.bn_size * cfg.growth_rate
        self.nonlinear1 = _BnRelu(c_in)
        self.linear1 = nn.Conv1d(c_in, bottleneck, 1, bias=False)
        self.nonlinear2 = _BnRelu(bottleneck)
        self.cam_layer = _ContextMask(bottleneck, cfg.growth_rate, kernel, dilation, cfg.cam_segment)

    def forward(self, x):
        return torch.cat([x, self.new_channels(x)], dim=1)

    def new_channels(self, x):
        """The ``growth_rate`` channels this layer adds to its input's."""
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class _DenseBlock(nn.Sequential):
    """Dense layers, each seeing its input and every earlier layer's new channels. The channels are written
    into one tensor as they come instead of concatenated at every layer (which copies all of them again)."""

    def forward(self, x):
        if torch.is_grad_enabled():  # writing into the tensor would break autograd: concatenate
            return super().forward(x)
        layers = list(self)
        growth = layers[0].cam_layer.linear_local.out_channels if layers else 0
        c = x.shape[1]
        out = x.new_empty(x.shape[0], c + growth * len(layers), x.shape[2])
        out[:, :c] = x
        for layer in layers:
            out[:, c:c + growth] = layer.new_channels(out[:, :c])
            c += growth
        return out


class _Transit(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.nonlinear = _BnRelu(c_in)
        self.linear = nn.Conv1d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return self.linear(self.nonlinear(x))


class _Tdnn(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.linear = nn.Conv1d(c_in, c_out, 5, stride=2, padding=2, bias=False)
        self.nonlinear = _BnRelu(c_out)

    def forward(self, x):
        return self.nonlinear(self.linear(x))


class _Dense(nn.Module):
    """Final projection: 1x1 conv and a BatchNorm without scale or shift."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.linear = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(c_out, affine=False))

    def forward(self, x):
        return self.nonlinear(self.linear(x))


class CAMPPlus(nn.Module):
    """CAM++: filterbanks (batch, time, feat) -> embeddings (batch, embedding_size)."""

    def __init__(self, cfg: CAMPPlusConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or CAMPPlusConfig()
        self.head = _FrontEnd(cfg)
        self.xvector = nn.Sequential()
        self.xvector.add_module("tdnn", _Tdnn(self.head.out_channels, cfg.init_channels))
        channels = cfg.init_channels
        for b, (layers, kernel, dilation) in enumerate(cfg.blocks, start=1):
            block = _DenseBlock()
            for i in range(1, layers + 1):
                block.add_module(f"tdnnd{i}", _DenseLayer(channels + (i - 1) * cfg.growth_rate, cfg, kernel, dilation))
            channels += layers * cfg.growth_rate
            self.xvector.add_module(f"block{b}", block)
            self.xvector.add_module(f"transit{b}", _Transit(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", _BnRelu(channels))
        self.xvector.add_module("dense", _Dense(channels * 2, cfg.embedding_size))
        self.trunk_channels = channels

    def frame_features(self, feats: torch.Tensor) -> torch.Tensor:
        """(batch, time, feat) -> (batch, channels, time / 2): everything before the statistics pooling.

        In eval mode the front end runs folded (:class:`_FoldedFrontEnd`, built on first use from the
        current weights; :meth:`train`, :meth:`load_state_dict` and moves between devices or dtypes drop it)."""
        if self.training:
            x = self.head(feats.transpose(1, 2))
        else:
            if self.__dict__.get("_folded") is None:  # kept out of the module tree and the state dict
                self.__dict__["_folded"] = _FoldedFrontEnd(self.head)
            x = self.__dict__["_folded"](feats.transpose(1, 2))
        for name, module in self.xvector.named_children():
            if name == "dense":
                break
            x = module(x)
        return x

    def train(self, mode: bool = True):
        self.__dict__["_folded"] = None  # not a submodule: stays out of the state dict
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self.__dict__["_folded"] = None
        return super().load_state_dict(*args, **kwargs)

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .half(): the folded copy is rebuilt after
        self.__dict__["_folded"] = None
        return super()._apply(fn, *args, **kwargs)

    def embed_stats(self, stats: torch.Tensor) -> torch.Tensor:
        """(batch, 2 * channels) pooled mean and std -> (batch, embedding_size)."""
        return self.xvector.dense(stats.unsqueeze(-1)).squeeze(-1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.frame_features(feats)
        stats = torch.cat([x.mean(-1), x.std(-1, unbiased=True)], dim=-1)
        return self.embed_stats(stats)


def masked_stats(frames: torch.Tensor, weights: torch.Tensor, squares: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean and (unbiased-style) std of trunk frames.

    ``frames`` (channels, time), ``weights`` (n, time) >= 0 -> (n, 2 * channels). With 0/1 weights this is
    exactly the network's own pooling over the chosen frames. ``squares``: ``frames ** 2``, where the same
    frames are pooled under several calls' weights.
    """
    w = weights.to(frames.dtype)
    total = w.sum(-1, keepdim=True).clamp(min=1e-6)
    mean = (w @ frames.T) / total
    second = (w @ (frames ** 2 if squares is None else squares).T) / total
    var = (second - mean ** 2).clamp(min=0) * (total / (total - 1).clamp(min=1e-6))
    return torch.cat([mean, var.sqrt()], dim=-1)


def load_campplus(path: str | os.PathLike, cfg: CAMPPlusConfig | None = None) -> CAMPPlus:
    """An official CAM++ state dict (``campplus_*.pt``, tensors only) in eval mode, float32, CPU."""
    return load_into(CAMPPlus(cfg), read_state(path), path, "CAM++")
