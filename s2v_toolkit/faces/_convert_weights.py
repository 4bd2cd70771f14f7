"""Rebuild ``weights/light_asd_ava.safetensors`` from the Light-ASD authors' repository.

Not used at run time. The file comes from github.com/Junhua-Liao/Light-ASD (MIT licence, commit
ed38c23), ``weight/pretrain_AVA_CVPR.model`` (trained on AVA-ActiveSpeaker): a torch pickle of the whole training wrapper's state
(network, both loss heads). It is read with ``torch.load(weights_only=True)``, renamed to our module's
names (``asd_model.state_dict_from_authors``) and saved as safetensors, so loading at run time never
unpickles::

    git clone https://github.com/Junhua-Liao/Light-ASD /tmp/Light-ASD
    python -m s2v_toolkit.faces._convert_weights /tmp/Light-ASD/weight/pretrain_AVA_CVPR.model
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from s2v_toolkit.faces.asd_model import WEIGHTS, LightASD, state_dict_from_authors


def convert(checkpoint: str | Path, out: str | Path = WEIGHTS) -> str:
    """Write the safetensors file; returns its sha256."""
    import torch
    from safetensors.torch import save_file

    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    ours = {k: v.contiguous() for k, v in state_dict_from_authors(state).items()}
    LightASD().load_state_dict(ours)   # every tensor has its place, nothing is missing
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(ours, str(out), metadata={
        "source": "github.com/Junhua-Liao/Light-ASD weight/pretrain_AVA_CVPR.model", "license": "MIT"})
    return hashlib.sha256(Path(out).read_bytes()).hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m s2v_toolkit.faces._convert_weights PATH/pretrain_AVA_CVPR.model")
    print(convert(sys.argv[1]))
