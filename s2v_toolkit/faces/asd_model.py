"""Light-ASD: a small audio-visual active speaker network (Liao et al., CVPR 2023), our own torch code.

The network scores, frame by frame, whether a face is speaking the audio heard with it. Its authors
trained it on AVA-ActiveSpeaker (movies: faces speaking, listening, with off-screen speech); those weights
(MIT licence) ship in ``weights/`` as safetensors (``_convert_weights.py`` rebuilds them from the authors'
repository). 1.0 M parameters. (Their second set, fine-tuned on TalkSet, was measured too and not kept:
on real talking heads it said "speaking" at nearly the same level with the face's own audio, another
speaker's or silence, docs/faces.md.)

Inputs, as the network was trained:

* **faces**: ``(B, T, 112, 112)`` grey levels 0-255 at **25 fps**: the lower face (see ``asd.face_crop``);
* **audio**: ``(B, 4 T, 13)`` MFCCs at 100 frames per second of 16 kHz audio (``asd.mfcc``).

Output: one logit per video frame (``> 0``: speaking). Structure: a visual encoder (three blocks of
separable 3-D convolutions, a spatial k x k convolution then a temporal k convolution for k = 3 and 5,
summed, then a 1x1x1 convolution; spatial max pooling between blocks; global spatial max pool at the end),
an audio encoder (the same with 2-D convolutions over MFCC x time, time pooled by 4 in all), their
embeddings added, a forward GRU and a backward GRU (each 128 wide, GELU after each), a linear head.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS = Path(__file__).resolve().parent / "weights" / "light_asd_ava.safetensors"

# Grey-level normalisation of the visual input (the training set's mean and spread, over 255).
GREY_MEAN, GREY_STD = 0.4161, 0.1688


@dataclass(frozen=True)
class LightASDConfig:
    widths: tuple[int, int, int] = (32, 64, 128)   # channels of the three encoder blocks
    hidden: int = 128                              # GRU width (= the last encoder width)
    bn_eps: float = 1e-3


class _Block(nn.Module):
    """Two separable branches (kernel 3 and 5) summed, then a pointwise convolution; BN + ReLU after each.

    ``dims == 3``: video ``(B, C, T, H, W)``, the "across" kernel is spatial ``(1, k, k)`` (stride 2 when
    ``down``) and the "along" kernel temporal ``(k, 1, 1)``. ``dims == 2``: audio ``(B, C, M, T)``, across
    the MFCCs ``(k, 1)`` then along time ``(1, k)``.
    """

    def __init__(self, dims: int, cin: int, cout: int, down: bool = False, eps: float = 1e-3):
        super().__init__()
        conv, bn = (nn.Conv3d, nn.BatchNorm3d) if dims == 3 else (nn.Conv2d, nn.BatchNorm2d)
        for k in (3, 5):
            p = k // 2
            if dims == 3:
                across = conv(cin, cout, (1, k, k), stride=(1, 2, 2) if down else 1, padding=(0, p, p), bias=False)
                along = conv(cout, cout, (k, 1, 1), padding=(p, 0, 0), bias=False)
            else:
                across = conv(cin, cout, (k, 1), padding=(p, 0), bias=False)
                along = conv(cout, cout, (1, k), padding=(0, p), bias=False)
            setattr(self, f"across{k}", across)
            setattr(self, f"bn_across{k}", bn(cout, eps=eps))
            setattr(self, f"along{k}", along)
            setattr(self, f"bn_along{k}", bn(cout, eps=eps))
        self.fuse = conv(cout, cout, 1, bias=False)
        self.bn_fuse = bn(cout, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 0
        for k in (3, 5):
            y = F.relu(getattr(self, f"bn_across{k}")(getattr(self, f"across{k}")(x)))
            out = out + F.relu(getattr(self, f"bn_along{k}")(getattr(self, f"along{k}")(y)))
        return F.relu(self.bn_fuse(self.fuse(out)))


class Encoders:
    """``encode_faces`` / ``encode_audio`` of the authors' networks (Light-ASD here, LR-ASD in
    ``lr_asd_model``): the same normalisation and pooling around each network's own three ``visual`` and
    three ``audio`` blocks."""

    visual: nn.ModuleList
    audio: nn.ModuleList

    def encode_faces(self, faces: torch.Tensor) -> torch.Tensor:
        """``(B, T, 112, 112)`` grey 0-255 -> ``(B, T, 128)``."""
        x = ((faces.float() / 255.0 - GREY_MEAN) / GREY_STD).unsqueeze(1)   # (B, 1, T, H, W)
        for i, block in enumerate(self.visual):
            x = block(x)
            if i < 2:  # spatial max pool 3x3, stride 2, between blocks
                x = F.max_pool3d(x, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        return x.amax(dim=(3, 4)).transpose(1, 2)

    def encode_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``(B, 4 T, 13)`` MFCCs -> ``(B, T, 128)`` (time max-pooled by 2, twice; mean over the MFCCs)."""
        x = mfcc.float().transpose(1, 2).unsqueeze(1)   # (B, 1, 13, 4T)
        for i, block in enumerate(self.audio):
            x = block(x)
            if i < 2:
                x = F.max_pool2d(x, (1, 3), stride=(1, 2), padding=(0, 1))
        return x.mean(dim=2).transpose(1, 2)


class LightASD(Encoders, nn.Module):
    def __init__(self, config: LightASDConfig = LightASDConfig()):
        super().__init__()
        w, eps = config.widths, config.bn_eps
        self.config = config
        self.visual = nn.ModuleList([_Block(3, 1, w[0], down=True, eps=eps), _Block(3, w[0], w[1], eps=eps),
                                     _Block(3, w[1], w[2], eps=eps)])
        self.audio = nn.ModuleList([_Block(2, 1, w[0], eps=eps), _Block(2, w[0], w[1], eps=eps),
                                    _Block(2, w[1], w[2], eps=eps)])
        self.gru_forward = nn.GRU(w[2], config.hidden, batch_first=True)
        self.gru_backward = nn.GRU(config.hidden, config.hidden, batch_first=True)
        self.head = nn.Linear(config.hidden, 2)

    def backend(self, audio_emb: torch.Tensor, face_emb: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, T, 128)`` each -> speaking logits ``(B, T)``."""
        x, _ = self.gru_forward(audio_emb + face_emb)
        x = F.gelu(x)
        x, _ = self.gru_backward(x.flip(1))
        x = F.gelu(x.flip(1))
        return self.head(x)[..., 1]

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return self.backend(self.encode_audio(mfcc), self.encode_faces(faces))


def state_dict_from_authors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the authors' checkpoint (``model.visualEncoder.block1.s_3.weight``, ``lossAV.FC.bias``, ...)
    to this module's names. Their visual-only head (``lossV``, a training aid) is left out."""
    parts = {"s_": "across", "m_": "across", "t_": "along"}
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.startswith("lossAV.FC."):
            out["head." + name.split(".")[-1]] = value
            continue
        if not name.startswith("model.") or name.endswith("num_batches_tracked"):
            continue
        n = name[len("model."):]
        if n.startswith("GRU."):
            out[n[len("GRU."):]] = value
            continue
        enc, block, layer, *rest = n.split(".")
        group = {"visualEncoder": "visual", "audioEncoder": "audio"}[enc]
        index = int(block[len("block"):]) - 1
        bn = layer.startswith("bn_")
        core = layer[3:] if bn else layer
        if core == "last":
            new = "fuse"
        else:
            new = parts[core[:2]] + core[2:]
        out[".".join([group, str(index), ("bn_" if bn else "") + new, *rest])] = value
    return out


Network = LightASD   # this module's network, by the name network_module's callers use

_LOADED: dict[str, nn.Module] = {}

# The networks run on each face and line; their z's are averaged (``asd.combine_evidence``). Both are the
# same authors' AVA-trained networks: Light-ASD (this file) and its successor LR-ASD (``lr_asd_model``).
# Measured on 33 real talking heads and 330 unrelated lines, the average picks far fewer unrelated lines
# than either alone at the rule's cut (docs/faces.md, bench/bench_asd_networks.py).
NETWORKS = ("light-asd", "lr-asd")


def default_device() -> str:
    """Where the network runs: ``S2VT_ASD_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``) when set, else the first
    GPU when torch sees one (a line of 8 s takes ~3.6 s per face on one CPU core, a few ms on a GPU), else
    the CPU. A value torch does not know, or a GPU this machine does not have, is an error that names the
    variable (torch's own message named neither it nor the network)."""
    from s2v_toolkit.errors import S2VError

    chosen = os.environ.get("S2VT_ASD_DEVICE", "").strip()
    if not chosen:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(chosen)
    except RuntimeError:
        raise S2VError(f"S2VT_ASD_DEVICE={chosen!r}: not a torch device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        raise S2VError(f"S2VT_ASD_DEVICE={chosen!r}: no such CUDA GPU on this machine "
                       f"({torch.cuda.device_count()} seen); use cpu")
    return chosen


def network_names() -> tuple[str, ...]:
    """The networks to run: ``S2VT_ASD_NETWORKS`` (comma-separated, e.g. ``light-asd`` alone for half the CPU
    time) when set, else :data:`NETWORKS`. An unknown name is an error that names the variable."""
    from s2v_toolkit.errors import S2VError

    chosen = os.environ.get("S2VT_ASD_NETWORKS", "").strip()
    if not chosen:
        return NETWORKS
    names = tuple(dict.fromkeys(n.strip() for n in chosen.split(",") if n.strip()))
    unknown = [n for n in names if n not in NETWORKS]
    if unknown or not names:
        raise S2VError(f"S2VT_ASD_NETWORKS={chosen!r}: unknown network {', '.join(unknown) or '(none named)'}; "
                       f"use one or more of {', '.join(NETWORKS)}")
    return names


def network_module(name: str):
    """The module of a shipped network (:data:`NETWORKS`): its ``Network`` class, ``WEIGHTS`` file and
    ``state_dict_from_authors`` (used to load it and to rebuild its weights, ``_convert_weights``)."""
    from s2v_toolkit.errors import S2VError

    if name == "light-asd":
        return sys.modules[__name__]
    if name == "lr-asd":
        from . import lr_asd_model   # imports this module (the shared encoders): not at the top

        return lr_asd_model
    raise S2VError(f"unknown active-speaker network {name!r} (use one of {', '.join(NETWORKS)})")


def load_network(name: str = "light-asd", device: str | None = None, path: str | Path | None = None) -> nn.Module:
    """A shipped network by name (:data:`NETWORKS`), cached per process, weights file and device, in eval
    mode on ``device`` (:func:`default_device` when None)."""
    from safetensors.torch import load_file

    from s2v_toolkit.errors import S2VError

    module = network_module(name)
    path = Path(path) if path is not None else module.WEIGHTS
    device = device or default_device()
    key = f"{name}|{path}|{device}"
    if key not in _LOADED:
        if not path.is_file():
            raise S2VError(f"{path}: the active-speaker network's weights are missing (reinstall s2v-toolkit)")
        model = module.Network()
        model.load_state_dict(load_file(str(path)))
        _LOADED[key] = model.eval().to(device)
    return _LOADED[key]


def load_light_asd(path: str | Path | None = None, device: str | None = None) -> LightASD:
    """Light-ASD alone (:func:`load_network`)."""
    return load_network("light-asd", device, path)
