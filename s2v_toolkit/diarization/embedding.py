"""Speaker embeddings: the Resemblyzer voice encoder (GE2E d-vector, 256-d), run with our own torch code.

Network and front end follow the ``Resemblyzer`` 0.1.4 wheel (Apache-2.0, (c) 2019 Resemble.AI), whose
``pretrained.pt`` carries the trained weights; they are vendored in ``weights/`` as safetensors (see
``_convert_weights.py``). The package itself is not imported: it declares obsolete dependencies (the
``typing`` backport, and ``webrtcvad`` which only builds from source).

Front end: 40-band mel power spectrogram (not log) of 16 kHz audio, 25 ms windows every 10 ms, as librosa
computes it with Resemblyzer's settings. The network: a 3-layer LSTM (256 units) whose last hidden state goes
through a linear layer and a ReLU, then L2 normalisation. Embeddings are therefore non-negative unit
vectors, and cosine similarities between them fall in [0, 1]: about 0.75-0.95 for one voice, lower for two.

Resemblyzer was trained on 1.6 s pieces of speech whose level was raised to -30 dBFS; :meth:`embed` brings
each piece to that level (both ways: a mel power front end is not level-invariant).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
N_FFT = 400  # 25 ms
N_MELS = 40
WINDOW_FRAMES = 160  # 1.6 s: the piece length the encoder was trained on
EMBEDDING_DIM = 256
TARGET_DBFS = -30.0
WEIGHTS = Path(__file__).resolve().parent / "weights" / "voice_encoder_resemblyzer.safetensors"


def _hz_to_mel(f):
    """Slaney's mel scale (librosa's default, ``htk=False``): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, mel)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, Slaney-normalised (constant area), as librosa builds
    them by default; a test checks equality with ``librosa.filters.mel``."""
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERS = None
_WINDOW = None


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """(frames, 40) float32 mel power spectrogram, frame i centred on sample i * 160: the same numbers as
    Resemblyzer's ``librosa.feature.melspectrogram`` call (periodic Hann window, zero-padded centring).
    Computed with ``torch.stft`` (single precision, 1e-6 of librosa's float64 result): importing
    ``librosa.feature`` costs seconds, and numpy's FFT and matrix product took about half of the embedded
    backend's time on 2 cores (10-20 times slower than torch for these small frames)."""
    import torch

    global _FILTERS, _WINDOW
    if _WINDOW is None:  # _WINDOW set last: a thread that sees it set also sees the filters (embed's workers)
        _FILTERS = torch.from_numpy(np.ascontiguousarray(mel_filterbank().T))
        _WINDOW = torch.hann_window(N_FFT, periodic=True, dtype=torch.float32)
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if len(x) == 0:  # the zero padding alone makes one (silent) frame
        return np.zeros((1, N_MELS), dtype=np.float32)
    spec = torch.stft(x, N_FFT, HOP, window=_WINDOW, center=True, pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()  # (201, frames)
    return (power.T @ _FILTERS).numpy()


def frame_count(n_samples: int) -> int:
    """Frames :func:`mel_frames` gives for ``n_samples`` samples (centred frames every ``HOP``)."""
    return n_samples // HOP + 1


def tilt_gains(tilt_db: float, corner_hz: float = 1000.0) -> np.ndarray:
    """Power gain per mel band of a high-shelf microphone tilt: 0 dB half an octave below ``corner_hz``,
    ``tilt_db`` half an octave above, a straight line in dB over log frequency between (the smooth step
    of a first-order shelving filter)."""
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))[1:-1]
    ramp = np.clip(np.log2(np.maximum(hz, 1.0) / corner_hz) + 0.5, 0.0, 1.0)
    return (10.0 ** (tilt_db * ramp / 10.0)).astype(np.float32)


def normalize_level(samples: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    if rms < 1e-6:  # digital silence: leave it, scaling would only amplify dither
        return samples
    return (samples * (10 ** (target_dbfs / 20) / rms)).astype(np.float32)


NETWORK_THREADS = 1  # torch intra-op threads for the VAD and the voice encoder (see torch_threads)


@contextmanager
def torch_threads(n: int | None = NETWORK_THREADS):
    """Run torch with ``n`` intra-op threads inside the block, then restore the process's setting.

    The VAD and the voice encoder are small LSTMs run on short batches: a second thread gains little, and
    when the cores are shared with other work (a render, other jobs) OpenMP threads waiting on each other
    made the encoder 20 times slower (2 cores, load 5: real-time factor 0.24-0.31 with 2 threads against
    0.012-0.020 with 1). ``None`` leaves the process's setting alone."""
    import torch

    before = torch.get_num_threads()
    change = n is not None and n != before
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)


_NETWORK = None


def _network():
    global _NETWORK
    if _NETWORK is None:
        from safetensors.torch import load_file
        from torch import nn

        class _VoiceEncoderNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
                self.linear = nn.Linear(256, EMBEDDING_DIM)

        net = _VoiceEncoderNet()
        net.load_state_dict(load_file(str(WEIGHTS)), strict=True)
        _NETWORK = net.eval()
    return _NETWORK


class VoiceEncoder:
    """Turns pieces of 16 kHz mono speech into unit-norm 256-d speaker embeddings."""

    dim = EMBEDDING_DIM
    name = "resemblyzer-ge2e-256"

    def __init__(self, batch_size: int = 64, threads: int | None = NETWORK_THREADS,
                 workers: int | None = None) -> None:
        self.net = _network()
        self.batch_size = batch_size
        self.threads = threads  # torch intra-op threads while embedding (torch_threads); None: the process's
        # batches embedded side by side, each on its own Python thread with one torch thread: torch releases
        # the GIL inside the LSTM, so two batches run on two cores (the encoder 2.0x, diarize 1.7x on 2 cores;
        # the same numbers to float32 round-off) without the OpenMP waits that two intra-op threads cost on
        # shared cores (torch_threads). Default: 2 where the machine has 2 cores or more
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))

    def embed(self, pieces: list[np.ndarray], tilt_db: float = 0.0) -> np.ndarray:
        """One embedding per piece, (n, 256) float32. Pieces may differ in length (about 0.4-1.6 s is typical);
        each is level-normalised first. Longer pieces are fine too: the LSTM runs over all of it.
        ``tilt_db``: embed the pieces as heard through a microphone ``tilt_db`` brighter above 1 kHz
        (:func:`tilt_gains`)."""
        if not pieces:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch_threads(self.threads):
            return self._embed(pieces, tilt_db)

    def _embed(self, pieces: list[np.ndarray], tilt_db: float) -> np.ndarray:
        import torch
        from torch.nn.utils.rnn import pack_padded_sequence

        gains = torch.from_numpy(tilt_gains(tilt_db)) if tilt_db else None
        frames = [frame_count(len(p)) for p in pieces]
        out = np.zeros((len(pieces), self.dim), dtype=np.float32)
        order = sorted(range(len(pieces)), key=lambda i: -frames[i])  # similar lengths batch together
        # at least two batches a worker, so that the last one does not leave a core idle
        size = self.batch_size
        if self.workers > 1:
            size = min(size, max(8, -(-len(order) // (2 * self.workers))))
        batches = [order[b:b + size] for b in range(0, len(order), size)]

        def run(idx: list[int]) -> None:
            mels = {i: torch.from_numpy(mel_frames(normalize_level(np.asarray(pieces[i], dtype=np.float32))))
                    for i in idx}
            if gains is not None:
                mels = {i: m * gains for i, m in mels.items()}
            with torch.inference_mode():
                lengths = torch.tensor([len(mels[i]) for i in idx])
                padded = torch.nn.utils.rnn.pad_sequence([mels[i] for i in idx], batch_first=True)
                packed = pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=True)
                _, (hidden, _) = self.net.lstm(packed)
                raw = self.net.linear(hidden[-1]).relu()
                out[idx] = torch.nn.functional.normalize(raw, dim=1, eps=1e-8).numpy()

        if self.workers > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.workers, len(batches))) as pool:
                list(pool.map(run, batches))  # list(): re-raises a worker's error here
        else:
            for idx in batches:
                run(idx)
        return out

    def embed_speaker(self, samples: np.ndarray, step_seconds: float = 0.8) -> np.ndarray:
        """One embedding for a whole recording of one voice: the normalised mean of the embeddings of its
        1.6 s pieces (how Resemblyzer summarises an utterance). Short recordings give one piece."""
        samples = np.asarray(samples, dtype=np.float32)
        win, step = WINDOW_FRAMES * HOP, int(step_seconds * SAMPLE_RATE)
        starts = list(range(0, max(1, len(samples) - win + 1), step))
        vectors = self.embed([samples[s:s + win] for s in starts])
        mean = vectors.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)
