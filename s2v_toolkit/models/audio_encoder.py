"""wav2vec2 audio features for the S2V model: all hidden states, one feature vector per video frame.

Facts: /work/shared/spec/wan_s2v_dit.md "Audio path". The official pipeline (Wan2.2 ``AudioEncoder``):

1. 16 kHz mono waveform -> the folder's ``Wav2Vec2FeatureExtractor`` (zero-mean/unit-variance) ->
   wav2vec2-large-xlsr-53-english -> **all 25 hidden states** (input of layer 0 + 24 layer outputs, the last
   one after the encoder's final LayerNorm) -> ``[25, T50, 1024]`` at 50 Hz;
2. linear interpolation (``align_corners=True``) to ``int(T50 / 50 * 30)`` frames at 30 Hz;
3. video frame ``k`` at ``fps`` takes 30 Hz index ``round(k * 30 / fps)`` (round half to even, as
   ``np.round``); frames past the audio get zeros.

The model was trained at 16 fps; for an editor's 23.976/25/29.97 fps shots :func:`bucket_per_frame`
applies the same rule at that rate, with exact rational frame times, so frame ``k`` (which starts at audio
sample ``k * 16000 / fps``) gets the feature nearest its start time. :func:`official_audio_buckets` is the
official function verbatim in behaviour (clip padding included) for parity checks at 16 fps.

Output layout: ``[frames, 25, 1024]``; the S2V DiT wants ``[B, 25, 1024, frames]``
(:func:`to_transformer_layout`).

Note on transformers versions: v4 (what the official code ran) returns the final-LayerNorm output as the
last hidden state; v5 returns the last layer's raw output there. :meth:`Wav2Vec2AudioEncoder.hidden_states`
always rebuilds the v4 list, so features do not change with the installed version.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .weights import WeightsError

WAV2VEC2_DIRNAME = "wav2vec2-large-xlsr-53-english"
SAMPLE_RATE = 16000
FEATURE_RATE = 50  # wav2vec2 frames per second (320-sample hop)
BUCKET_RATE = 30  # the official intermediate rate


def _fraction(fps) -> Fraction:
    fps = Fraction(fps) if not isinstance(fps, float) else Fraction(fps).limit_denominator(1001)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return fps


def samples_for_frames(num_frames: int, fps, sample_rate: int = SAMPLE_RATE) -> int:
    """Audio samples that cover ``num_frames`` video frames exactly (rounded up to a whole sample)."""
    return math.ceil(num_frames * sample_rate / _fraction(fps))


def frames_in_samples(num_samples: int, fps, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames the audio covers completely (``frames_in_samples(samples_for_frames(n)) == n``)."""
    return math.floor(num_samples * _fraction(fps) / sample_rate)


def interpolate_features(hidden: torch.Tensor, in_rate: float = FEATURE_RATE, out_rate: float = BUCKET_RATE) -> torch.Tensor:
    """``[L, T, D]`` at ``in_rate`` -> ``[L, int(T / in_rate * out_rate), D]`` by linear interpolation with
    aligned end points (the official ``linear_interpolation``; same float expression for the length)."""
    out_len = int(hidden.shape[1] / float(in_rate) * out_rate)
    if out_len < 1:
        return hidden[:, :0]
    if hidden.shape[1] == 1:
        return hidden.expand(-1, out_len, -1).clone()
    return F.interpolate(hidden.transpose(1, 2), size=out_len, mode="linear", align_corners=True).transpose(1, 2)


def frame_feature_indices(num_frames: int, fps, rate: int = BUCKET_RATE) -> list[int]:
    """30 Hz index of each video frame: ``round(k * rate / fps)``, exact, ties to even."""
    fps = _fraction(fps)
    return [round(Fraction(k * rate) / fps) for k in range(num_frames)]


def bucket_per_frame(
    features: torch.Tensor, fps, num_frames: int, covered_frames: int | None = None
) -> torch.Tensor:
    """30 Hz features ``[L, T30, D]`` -> ``[num_frames, L, D]``, one row per video frame.

    ``covered_frames`` is how many frames the real audio covers (:func:`frames_in_samples`): frames from
    there on get zeros, like the official padding, while covered frames whose index falls past ``T30`` (the
    official length truncations can lose up to ~1 frame at the end) take the last feature instead of zeros.
    Without ``covered_frames`` every index past ``T30`` is zero (the official behaviour).
    """
    n_layers, t30, dim = features.shape
    out = features.new_zeros(num_frames, n_layers, dim)
    index = torch.tensor(frame_feature_indices(num_frames, fps), dtype=torch.long)
    if covered_frames is None:
        inside = index < t30
    else:
        inside = (torch.arange(num_frames) < covered_frames) & (t30 > 0)
        index = index.clamp(max=max(t30 - 1, 0))
    rows = inside.nonzero().flatten()
    if len(rows):
        out[rows.to(out.device)] = features[:, index[rows].to(features.device)].transpose(0, 1)
    return out


def official_audio_buckets(features: torch.Tensor, fps: int = 16, frames_per_clip: int = 80) -> tuple[torch.Tensor, int]:
    """The official ``get_audio_embed_bucket_fps(z, fps, batch_frames, m=0)``: ``[clips*frames, L, D]`` and the
    clip count ``int(T30 / (frames * 30 / fps)) + 1``; frames beyond the audio are zero."""
    n_layers, t30, dim = features.shape
    clips = int(t30 / (frames_per_clip * (BUCKET_RATE / fps))) + 1
    n = clips * frames_per_clip
    times = np.linspace(0, n / fps, n, endpoint=False)
    index = np.round(times * BUCKET_RATE).astype(int)
    out = features.new_zeros(n, n_layers, dim)
    keep = np.nonzero(index < t30)[0]
    out[torch.from_numpy(keep)] = features[:, torch.from_numpy(index[keep])].transpose(0, 1)
    return out, clips


def to_transformer_layout(frame_features: torch.Tensor) -> torch.Tensor:
    """``[frames, layers, dim]`` (or a batch ``[B, frames, layers, dim]``) -> ``[B, layers, dim, frames]``,
    the S2V transformer's audio input."""
    if frame_features.dim() == 3:
        frame_features = frame_features.unsqueeze(0)
    if frame_features.dim() != 4:
        raise ValueError(f"expected [frames, layers, dim] features, got shape {list(frame_features.shape)}")
    return frame_features.permute(0, 2, 3, 1)


class Wav2Vec2AudioEncoder:
    """wav2vec2 from a local HF-format folder (``wav2vec2-large-xlsr-53-english`` in the checkpoint)."""

    def __init__(self, model, feature_extractor, device: torch.device | str, dtype: torch.dtype = torch.float32):
        self.model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        self.feature_extractor = feature_extractor
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> "Wav2Vec2AudioEncoder":
        """Load with ``local_files_only`` (never the hub). ``folder`` may be the checkpoint folder that holds
        ``wav2vec2-large-xlsr-53-english``. Device defaults to CUDA when there is one."""
        folder = Path(folder)
        if (folder / WAV2VEC2_DIRNAME).is_dir():
            folder = folder / WAV2VEC2_DIRNAME
        if not folder.is_dir():
            raise WeightsError(folder, "wav2vec2 model folder not found")
        if not (folder / "config.json").is_file():
            raise WeightsError(folder, "wav2vec2 folder has no config.json (expected a Hugging Face model folder)")
        if not (folder / "preprocessor_config.json").is_file():
            raise WeightsError(folder, "wav2vec2 folder has no preprocessor_config.json")
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model
        from transformers.utils import logging as hf_logging

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the CTC head in the folder is unused: silence that notice
        try:
            extractor = Wav2Vec2FeatureExtractor.from_pretrained(os.fspath(folder), local_files_only=True)
            model, info = Wav2Vec2Model.from_pretrained(
                os.fspath(folder), local_files_only=True, output_loading_info=True
            )
        except Exception as exc:  # noqa: BLE001 - any failure to load the folder is the user's file, one line
            import pickle

            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
                raise WeightsError(folder, "wav2vec2 weights hold Python objects other than tensors; refused "
                                           "(weights load with weights_only=True; use model.safetensors)") from None
            raise WeightsError(folder, f"cannot load wav2vec2 ({first[:300]})") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        # masked_spec_embed is only used for training-time masking; anything else missing would be random.
        missing = [k for k in info.get("missing_keys", []) if "masked_spec_embed" not in k]
        if missing:
            raise WeightsError(folder, f"wav2vec2 weights lack {missing[0]!r} ({len(missing)} missing)")
        mismatched = info.get("mismatched_keys", [])
        if mismatched:
            raise WeightsError(folder, f"wav2vec2 weight {mismatched[0][0]!r} has the wrong shape")
        return cls(model, extractor, device=device, dtype=dtype)

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers + 1

    def _input_values(self, waveform) -> torch.Tensor:
        if isinstance(waveform, torch.Tensor):
            waveform = waveform.detach().cpu().numpy()
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"waveform must be 1-D mono at {SAMPLE_RATE} Hz, got shape {waveform.shape}")
        values = self.feature_extractor(waveform, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
        return values.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def hidden_states(self, waveform) -> torch.Tensor:
        """16 kHz mono waveform -> ``[num_layers + 1, T50, hidden]`` float32 (v4 semantics, see module doc)."""
        values = self._input_values(waveform)
        out = self.model(values, output_hidden_states=True)
        states = list(out.hidden_states)
        if len(states) != self.num_layers:
            raise RuntimeError(f"expected {self.num_layers} hidden states, transformers returned {len(states)}")
        states[-1] = out.last_hidden_state
        return torch.cat(states).float()

    def features_30hz(self, waveform) -> torch.Tensor:
        """The official ``extract_audio_feat(..., return_all_layers=True)``: ``[L, T30, D]``."""
        return interpolate_features(self.hidden_states(waveform))

    def frame_features(self, waveform, fps, num_frames: int | None = None) -> torch.Tensor:
        """One feature row per video frame: ``[num_frames, L, D]``.

        ``waveform`` starts at video frame 0 (16 kHz mono). ``num_frames`` defaults to the frames the audio
        covers completely; pass :func:`samples_for_frames` samples for an exact fit. Frames the audio does
        not cover completely are zero.
        """
        covered = frames_in_samples(len(waveform), fps)
        if num_frames is None:
            num_frames = covered
        features = self.features_30hz(waveform)
        return bucket_per_frame(features, fps, num_frames, covered_frames=covered)


def load_audio_encoder(
    folder: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Wav2Vec2AudioEncoder:
    return Wav2Vec2AudioEncoder.from_folder(folder, device=device, dtype=dtype)


def write_tiny_wav2vec2(
    folder: str | os.PathLike, hidden_size: int = 24, num_hidden_layers: int = 4, seed: int = 0
) -> Path:
    """Write a random tiny wav2vec2 the way the official folder is laid out (a CTC model with stable layer
    norm + ``preprocessor_config.json``) into ``folder/wav2vec2-large-xlsr-53-english``. The defaults match
    the tiny S2V transformer (audio_dim 24, 5 hidden states). For tests and the ``--model tiny`` demo."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    target = Path(folder) / WAV2VEC2_DIRNAME
    config = Wav2Vec2Config(
        vocab_size=12, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=2,
        intermediate_size=2 * hidden_size, conv_dim=(8,) * 7, num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True,
    )
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Wav2Vec2ForCTC(config)
    finally:
        torch.random.set_rng_state(rng_state)
    model.save_pretrained(target)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(target)
    return target


__all__ = [
    "BUCKET_RATE",
    "FEATURE_RATE",
    "SAMPLE_RATE",
    "WAV2VEC2_DIRNAME",
    "Wav2Vec2AudioEncoder",
    "bucket_per_frame",
    "frame_feature_indices",
    "frames_in_samples",
    "interpolate_features",
    "load_audio_encoder",
    "official_audio_buckets",
    "samples_for_frames",
    "to_transformer_layout",
    "write_tiny_wav2vec2",
]
