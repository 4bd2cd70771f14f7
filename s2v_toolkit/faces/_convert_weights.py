"""Rebuild the active-speaker networks' shipped weights from their authors' repositories.

Not used at run time. Both come from Junhua Liao's repositories (MIT licence) as torch pickles of the whole
training wrapper's state (network, both loss heads). Each is read with ``torch.load(weights_only=True)``,
renamed to our module's names and saved as safetensors, so loading at run time never unpickles:

* ``weights/lr_asd_ava.safetensors`` (``lr_asd_model.LRASD``; the rule averages it with Light-ASD):
  github.com/Junhua-Liao/LR-ASD, commit 1b6dcd2, ``weight/pretrain_AVA.model`` (trained on
  AVA-ActiveSpeaker)::

      git clone https://github.com/Junhua-Liao/LR-ASD /tmp/LR-ASD
      python -m s2v_toolkit.faces._convert_weights --lr-asd /tmp/LR-ASD/weight/pretrain_AVA.model

* ``weights/light_asd_ava.safetensors`` (``asd_model.LightASD``): github.com/Junhua-Liao/Light-ASD, commit
  ed38c23, ``weight/pretrain_AVA_CVPR.model``::

      git clone https://github.com/Junhua-Liao/Light-ASD /tmp/Light-ASD
      python -m s2v_toolkit.faces._convert_weights /tmp/Light-ASD/weight/pretrain_AVA_CVPR.model
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from s2v_toolkit.faces.asd_model import network_module

SOURCES = {
    "light-asd": "github.com/Junhua-Liao/Light-ASD weight/pretrain_AVA_CVPR.model",
    "lr-asd": "github.com/Junhua-Liao/LR-ASD weight/pretrain_AVA.model",
}


def convert(checkpoint: str | Path, out: str | Path | None = None, network: str = "light-asd") -> str:
    """Write the safetensors file of ``network`` (``light-asd`` or ``lr-asd``); returns its sha256."""
    import torch
    from safetensors.torch import save_file

    module = network_module(network)
    out = Path(out) if out is not None else module.WEIGHTS
    state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    ours = {k: v.contiguous() for k, v in module.state_dict_from_authors(state).items()}
    module.Network().load_state_dict(ours)   # every tensor has its place, nothing is missing
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(ours, str(out), metadata={"source": SOURCES[network], "license": "MIT"})
    return hashlib.sha256(out.read_bytes()).hexdigest()


if __name__ == "__main__":
    args = sys.argv[1:]
    network = "lr-asd" if args[:1] == ["--lr-asd"] else "light-asd"
    args = args[1:] if network == "lr-asd" else args
    if len(args) != 1:
        sys.exit("usage: python -m s2v_toolkit.faces._convert_weights [--lr-asd] PATH/<authors' checkpoint>.model")
    print(convert(args[0], network=network))
