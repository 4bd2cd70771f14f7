"""Corpus check: WAV files (field recorders' and DAWs' Broadcast WAVs) read as their bytes say.

For every ``audio/*.wav`` of the corpus, facts walked out of the RIFF/RF64 chunks here, sharing no code with
the toolkit: the ``bext`` TimeReference (where a timeline's source timecodes for the file start), the
``fmt`` rate and channels, and the PCM samples of the ``data`` chunk. ``probe`` must report the same
time reference and layout, and ``read_audio_channels`` the same samples (first 10 s, every channel).
``S2VT_CORPUS=/path`` runs it on another folder with an ``audio/`` subfolder (e.g. the real recorder files
of wavinfo's test data, session 16)."""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest

from corpus_testkit import corpus_files

WAVS = [p for p in corpus_files("audio") if p.suffix.lower() in (".wav", ".bwf", ".rf64")]
PARAMS = [pytest.param(p, id=p.name) for p in WAVS] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no ../shared/corpus/audio/*.wav"))]
SECONDS = 10


def _chunks(path) -> dict:
    """TimeReference (None without bext), fmt fields, and the first bytes of the data chunk."""
    out = {"time_reference": None, "fmt": None, "data": None}
    with open(path, "rb") as f:
        riff = f.read(12)
        assert riff[:4] in (b"RIFF", b"RF64", b"BW64") and riff[8:12] == b"WAVE", f"{path}: not a WAVE file"
        big_data = None
        while True:
            head = f.read(8)
            if len(head) < 8:
                break
            cid, size = head[:4], struct.unpack("<I", head[4:])[0]
            at = f.tell()
            if cid == b"ds64":  # RF64: the real sizes
                big_data = struct.unpack("<Q", f.read(size)[8:16])[0]
            elif cid == b"bext":
                body = f.read(size)
                lo, hi = struct.unpack("<II", body[338:346])  # EBU Tech 3285: TimeReference, 64-bit LE
                out["time_reference"] = lo + (hi << 32)
            elif cid == b"fmt ":
                out["fmt"] = struct.unpack("<HHIIHH", f.read(size)[:16])
            elif cid == b"data":
                if size == 0xFFFFFFFF and big_data is not None:
                    size = big_data
                fmt = out["fmt"]
                out["data"] = f.read(min(size, SECONDS * fmt[3])) if fmt else b""
            f.seek(at + size + (size & 1))
    return out


def _samples(fmt, data: bytes) -> np.ndarray | None:
    """(channels, n) float64 of integer PCM (16/24/32 bit) or float32 PCM, at full scale 1.0."""
    tag, channels, _rate, _bps, align, _bits = fmt
    width = align // channels
    n = len(data) // align
    raw = np.frombuffer(data[: n * align], np.uint8).reshape(n, channels, width)
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: PCM or float by the width here (the corpus's cases)
        tag = 1
    if width == 2:
        v = raw.copy().view("<i2")[..., 0] / 32768.0
    elif width == 3:
        v = raw[..., 0].astype(np.int32) | (raw[..., 1].astype(np.int32) << 8) | (raw[..., 2].astype(np.int32) << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    elif width == 4 and tag == 3:
        v = raw.copy().view("<f4")[..., 0].astype(np.float64)
    elif width == 4:
        v = raw.copy().view("<i4")[..., 0] / float(1 << 31)
    else:
        return None
    return np.asarray(v, np.float64).T


@pytest.mark.parametrize("wav", PARAMS)
def test_wav_time_reference_layout_and_samples(wav):
    from s2v_toolkit.media import probe, read_audio_channels

    facts = _chunks(wav)
    fmt = facts["fmt"]
    info = probe(wav)
    assert info.time_reference == facts["time_reference"], "BWF time reference"
    (a, *_) = info.audio
    assert (a.sample_rate, a.channels) == (fmt[2], fmt[1])
    if facts["time_reference"]:
        assert info.start_seconds == Fraction(facts["time_reference"], fmt[2])
    want = _samples(fmt, facts["data"])
    if want is None:
        pytest.skip(f"{fmt[4] // fmt[1] * 8}-bit samples: not decoded by this check")
    got, rate = read_audio_channels(wav, 0, Fraction(want.shape[1], fmt[2]), sample_rate=None)
    assert rate == fmt[2] and got.shape == want.shape
    assert float(np.abs(got - want).max()) < 1e-6, "samples differ from the data chunk"
