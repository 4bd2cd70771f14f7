"""FabuLight-ASD (face and audio): Light-ASD's network trained from scratch on WASD by other authors.

Carneiro et al., "FabuLight-ASD: unveiling speech activity via body language" (Neural Computing and
Applications, 2024), github.com/knowledgetechnologyuhh/FabuLight-ASD (MIT licence), the model that uses the
face and the audio only (``exps/..._112_F_fabulight_config/model/best_0044.model``). The network is
Light-ASD's (``asd_model.LightASD``, the same tensors under other names); what differs is what it was trained
on and how its inputs were made:

* trained on WASD (Roxo et al. 2023: interviews, debates, podcasts, reaction and police videos from YouTube;
  annotations CC BY-SA 4.0), not AVA's movies: talking heads like the ones this toolkit re-dubs;
* **faces**: the face box itself resized to 112 x 112 (WASD's annotated boxes; ``asd.face_crop``'s ``"face
  box"`` view), not Light-ASD's lower-face square; grey levels normalised by 0.2380, not 0.1688;
* **audio**: 13 MFCCs per 10 ms as Light-ASD's, with an FFT of 1024 points (Light-ASD: 512).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .asd_model import LightASD
from .asd_model import state_dict_from_authors as light_asd_names

WEIGHTS = Path(__file__).resolve().parent / "weights" / "fabulight_wasd.safetensors"


class FabuLight(LightASD):
    grey_std = 0.2380
    mfcc_fft = 1024
    crop_view = "face box"


def state_dict_from_authors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' checkpoint (``model.module.faceEncoder...``, ``model.module.GRUFA...``, ``lossFA.module.FC``)
    under Light-ASD's authors' names, then ours (:func:`asd_model.state_dict_from_authors`)."""
    renamed = {}
    for name, value in state.items():
        n = name.replace("model.module.", "model.").replace("faceEncoder", "visualEncoder").replace("GRUFA.", "GRU.")
        n = n.replace("lossFA.module.", "lossAV.").replace("lossF.module.", "lossV.")
        renamed[n] = value
    return light_asd_names(renamed)


Network = FabuLight
