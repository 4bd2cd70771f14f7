"""LR-ASD: the lightweight and robust active speaker network (Liao et al., IJCV 2025), our own torch code.

The journal successor of Light-ASD (``asd_model.py``) by the same authors, with the same inputs and the
same output and the same encoders' pooling (``asd_model.Encoders``), so ``asd.py`` runs either one:

* **faces**: ``(B, T, 112, 112)`` grey levels 0-255 at 25 fps (``asd.face_crop``);
* **audio**: ``(B, 4 T, 13)`` MFCCs at 100 frames per second of 16 kHz audio (``asd.mfcc``);
* **output**: one speaking logit per video frame.

What differs from Light-ASD:

* each encoder block is one chain, not two summed branches: a spatial ``k1`` convolution to half the
  block's width, a spatial ``k2`` one to its width, then a temporal ``k1`` and a temporal ``k2`` convolution
  (``k1 = 5``, ``k2 = 3``; BN + ReLU after each; across the MFCCs then along time for the audio);
* the audio and face embeddings are concatenated (256) and gated channel by channel (a 1x1 convolution,
  BN, sigmoid: ``_Gate``), not added;
* a forward GRU and a backward GRU, each 64 wide, run side by side on the gated embedding; their outputs
  are concatenated and gated again (128), then the linear head.

The authors' weights (MIT licence, github.com/Junhua-Liao/LR-ASD, ``weight/pretrain_AVA.model``: trained
on AVA-ActiveSpeaker) ship as safetensors in ``weights/lr_asd_ava.safetensors``
(``_convert_weights.py --lr-asd`` rebuilds it). 0.84 M parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .asd_model import Encoders

WEIGHTS = Path(__file__).resolve().parent / "weights" / "lr_asd_ava.safetensors"


@dataclass(frozen=True)
class LRASDConfig:
    widths: tuple[int, int, int] = (32, 64, 128)   # channels of the three encoder blocks
    kernels: tuple[int, int] = (5, 3)              # k1, k2 of every block
    bn_eps: float = 1e-3


class _Chain(nn.Module):
    """One encoder block: across (k1 to half width, k2 to width), then along (k1, k2); BN + ReLU after each.

    ``dims == 3``: video ``(B, C, T, H, W)``: across is spatial ``(1, k, k)`` (the first stride 2 when
    ``down``), along is temporal ``(k, 1, 1)``. ``dims == 2``: audio ``(B, C, M, T)``: across the MFCCs
    ``(k, 1)``, along time ``(1, k)``."""

    def __init__(self, dims: int, cin: int, cout: int, kernels: tuple[int, int], down: bool = False,
                 eps: float = 1e-3):
        super().__init__()
        conv, bn = (nn.Conv3d, nn.BatchNorm3d) if dims == 3 else (nn.Conv2d, nn.BatchNorm2d)

        def across(k, a, b, stride=1):
            if dims == 3:
                return conv(a, b, (1, k, k), stride=(1, stride, stride), padding=(0, k // 2, k // 2), bias=False)
            return conv(a, b, (k, 1), padding=(k // 2, 0), bias=False)

        def along(k, c):
            if dims == 3:
                return conv(c, c, (k, 1, 1), padding=(k // 2, 0, 0), bias=False)
            return conv(c, c, (1, k), padding=(0, k // 2), bias=False)

        k1, k2 = kernels
        self.layers = nn.ModuleList([across(k1, cin, cout // 2, 2 if down else 1), across(k2, cout // 2, cout),
                                     along(k1, cout), along(k2, cout)])
        self.norms = nn.ModuleList([bn(cout // 2, eps=eps), bn(cout, eps=eps), bn(cout, eps=eps), bn(cout, eps=eps)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, norm in zip(self.layers, self.norms):
            x = F.relu(norm(layer(x)))
        return x


class _Gate(nn.Module):
    """Two ``(B, T, C)`` series concatenated and weighted channel by channel, per frame, by
    ``sigmoid(BN(W x))`` (``W`` a 1x1 convolution over the concatenated channels)."""

    def __init__(self, channels: int, eps: float = 1e-3):
        super().__init__()
        self.mix = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm1d(channels, eps=eps)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([a, b], 2).transpose(1, 2)   # (B, C, T)
        return (x * torch.sigmoid(self.bn(self.mix(x)))).transpose(1, 2)


class LRASD(Encoders, nn.Module):
    def __init__(self, config: LRASDConfig = LRASDConfig()):
        super().__init__()
        w, k, eps = config.widths, config.kernels, config.bn_eps
        self.config = config
        self.visual = nn.ModuleList([_Chain(3, 1, w[0], k, down=True, eps=eps), _Chain(3, w[0], w[1], k, eps=eps),
                                     _Chain(3, w[1], w[2], k, eps=eps)])
        self.audio = nn.ModuleList([_Chain(2, 1, w[0], k, eps=eps), _Chain(2, w[0], w[1], k, eps=eps),
                                    _Chain(2, w[1], w[2], k, eps=eps)])
        self.fusion = _Gate(2 * w[2], eps)
        self.gru_forward = nn.GRU(2 * w[2], w[2] // 2, batch_first=True)
        self.gru_backward = nn.GRU(2 * w[2], w[2] // 2, batch_first=True)
        self.temporal = _Gate(w[2], eps)
        self.head = nn.Linear(w[2], 2)

    def backend(self, audio_emb: torch.Tensor, face_emb: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, T, 128)`` each -> speaking logits ``(B, T)``."""
        x = self.fusion(audio_emb, face_emb)
        ahead, _ = self.gru_forward(x)
        back, _ = self.gru_backward(x.flip(1))
        return self.head(self.temporal(ahead, back.flip(1)))[..., 1]

    def forward(self, mfcc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return self.backend(self.encode_audio(mfcc), self.encode_faces(faces))


Network = LRASD   # this module's network, by the name asd_model.network_module's callers use


def state_dict_from_authors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the authors' checkpoint (``model.visualEncoder.block1.s_1.weight``, ``model.detector.
    gru_forward.weight_ih_l0``, ``lossAV.FC.bias``, ...) to this module's names. Their visual-only head
    (``lossV``, a training aid) and BN batch counters are left out."""
    layer_index = {"s_1": 0, "m_1": 0, "s_2": 1, "m_2": 1, "t_1": 2, "t_2": 3}
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked") or name.startswith("lossV."):
            continue
        if name.startswith("lossAV.FC."):
            out["head." + name.rsplit(".", 1)[1]] = value
            continue
        n = name[len("model."):]
        if n.startswith("detector.gru_"):
            out[n[len("detector."):]] = value
        elif n.startswith(("fusion.", "detector.attention.")):
            gate = "fusion" if n.startswith("fusion.") else "temporal"
            part = n.split(".")[-2:]   # attention.weight | bn.<param>
            out[f"{gate}.mix.weight" if part[0] == "attention" else f"{gate}.bn.{part[1]}"] = value
        else:
            enc, block, layer, param = n.split(".")
            group = {"visualEncoder": "visual", "audioEncoder": "audio"}[enc]
            index = int(block[len("block"):]) - 1
            if "_norm_" in layer:   # s_norm_1 -> the norm after s_1
                kind = "norms"
                layer = layer.replace("_norm", "")
            else:
                kind = "layers"
            out[f"{group}.{index}.{kind}.{layer_index[layer]}.{param}"] = value
    return out
