"""Rebuild the vendored weight files in ``weights/`` from the PyPI wheels they come from.

Not used at run time. Run it by hand to check the provenance of the shipped files::

    pip download --no-deps Resemblyzer==0.1.4 silero-vad==6.2.3 -d /tmp/wheels
    python -m s2v_toolkit.diarization._convert_weights /tmp/wheels

Resemblyzer's ``pretrained.pt`` is a torch pickle that also carries the optimizer state (17 MB); only the
encoder's tensors are kept (read with ``torch.load(weights_only=True)``). Silero VAD's wheel carries an
older network in ``silero_vad_16k.safetensors``; the weights its own loader uses by default are in the
TorchScript file ``silero_vad.jit`` (16 kHz branch ``_model``), so those are taken, renamed to our module
names. Both are saved as safetensors, so loading at run time never unpickles nor runs TorchScript.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
ENCODER_FILE = "voice_encoder_resemblyzer.safetensors"
VAD_FILE = "silero_vad_v6_16k.safetensors"


def _member(wheel: Path, name: str) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(name)


def convert(wheel_dir: str | Path, out_dir: str | Path = WEIGHTS_DIR) -> dict[str, str]:
    """Write both weight files into ``out_dir``; returns {file name: sha256} of what was written."""
    import torch
    from safetensors.torch import save_file

    wheel_dir, out_dir = Path(wheel_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resemblyzer = next(wheel_dir.glob("[Rr]esemblyzer-0.1.4-*.whl"))
    silero = next(wheel_dir.glob("silero_vad-6.2.3-*.whl"))

    checkpoint = torch.load(io.BytesIO(_member(resemblyzer, "resemblyzer/pretrained.pt")),
                            map_location="cpu", weights_only=True)
    state = {k: v.contiguous() for k, v in checkpoint["model_state"].items()
             if k.startswith(("lstm.", "linear."))}  # similarity_* are GE2E training-loss parameters
    save_file(state, str(out_dir / ENCODER_FILE), metadata={
        "source": "Resemblyzer 0.1.4 wheel, resemblyzer/pretrained.pt (model_state)", "license": "Apache-2.0"})
    jit = torch.jit.load(io.BytesIO(_member(silero, "silero_vad/data/silero_vad.jit")), map_location="cpu")
    src = jit.state_dict()
    names = {"stft_conv.weight": "_model.stft.forward_basis_buffer",
             "final_conv.weight": "_model.decoder.decoder.2.weight", "final_conv.bias": "_model.decoder.decoder.2.bias"}
    for i in range(4):
        for kind in ("weight", "bias"):
            names[f"conv{i + 1}.{kind}"] = f"_model.encoder.{i}.reparam_conv.{kind}"
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        names[f"lstm.{kind}_l0"] = f"_model.decoder.rnn.{kind}"  # LSTMCell == one-layer LSTM, same tensors
    save_file({ours: src[theirs].contiguous() for ours, theirs in names.items()}, str(out_dir / VAD_FILE),
              metadata={"source": "silero-vad 6.2.3 wheel, silero_vad/data/silero_vad.jit (_model)",
                        "license": "MIT"})
    return {name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest() for name in (ENCODER_FILE, VAD_FILE)}


if __name__ == "__main__":  # pragma: no cover
    for name, digest in convert(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else WEIGHTS_DIR).items():
        print(f"{digest}  {name}")
