"""The audio-visual active-speaker network (Light-ASD): features, crops, weights, calibration, combination."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from s2v_toolkit.faces import asd
from s2v_toolkit.faces.asd_model import LightASD, load_light_asd, state_dict_from_authors


# --- MFCC ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, frames", [(399, 1), (400, 1), (401, 2), (16000, 99), (16161, 100)])
def test_mfcc_frame_count_follows_25ms_frames_every_10ms(n, frames):
    assert asd.mfcc(np.full(n, 0.1, np.float32)).shape == (frames, 13)


def test_mfcc_level_moves_only_the_energy_coefficient():
    """The log mel energies shift by a constant when the level doubles: the DCT puts a constant in c0
    alone (replaced by the log energy, which rises by log 4); c1..c12 stay."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000) * 0.05).astype(np.float32)
    a, b = asd.mfcc(x), asd.mfcc(2 * x)
    np.testing.assert_allclose(b[:, 0] - a[:, 0], math.log(4.0), atol=1e-4)
    np.testing.assert_allclose(b[:, 1:], a[:, 1:], atol=1e-3)


def test_mfcc_energy_is_the_frames_power_as_int16():
    """c0 = log of the frame's power spectrum sum (1/512 |rfft|^2 of the pre-emphasised 16-bit frame)."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4000) * 0.1).astype(np.float32)
    y = x.astype(np.float64) * 32768
    y = np.append(y[:1], y[1:] - 0.97 * y[:-1])
    frame = y[160:560]  # the second frame
    expected = np.log((np.abs(np.fft.rfft(frame, 512)) ** 2).sum() / 512)
    assert asd.mfcc(x)[1, 0] == pytest.approx(expected, rel=1e-5)


def test_mel_filters_are_triangles_spaced_on_the_mel_scale():
    bank = asd._mel_filterbank(26, 512, 16000)
    peaks = bank.argmax(1)
    assert np.all(np.diff(peaks) > 0) and np.allclose(bank.max(1), 1.0)
    mel = 2595 * np.log10(1 + peaks * 16000 / 513 / 700)
    steps = np.diff(mel)
    assert steps.std() < 0.2 * steps.mean()   # equal steps in mel (within the bins' rounding)
    assert bank[:, -2:].sum() > 0 and bank[:, 0].sum() == 0   # up to Nyquist, nothing at 0 Hz


# --- the network --------------------------------------------------------------------------------------------


def _authors_names(ours: dict) -> dict:
    """Our state dict under the authors' names, written from their layout (model.visualEncoder.blockN.s_3,
    audioEncoder m_3 / t_3, GRU.gru_forward, lossAV.FC), independently of ``state_dict_from_authors``."""
    out = {}
    for name, value in ours.items():
        parts = name.split(".")
        if parts[0] == "head":
            out[f"lossAV.FC.{parts[1]}"] = value
        elif parts[0].startswith("gru_"):
            out["model.GRU." + name] = value
        else:
            enc = {"visual": "visualEncoder", "audio": "audioEncoder"}[parts[0]]
            layer = parts[2]
            bn = layer.startswith("bn_")
            core = layer[3:] if bn else layer
            k = core[-1]
            theirs = {"fuse": "last", f"across{k}": ("s_" if parts[0] == "visual" else "m_") + k,
                      f"along{k}": "t_" + k}[core]
            out[".".join(["model", enc, f"block{int(parts[1]) + 1}", ("bn_" if bn else "") + theirs, *parts[3:]])] = value
    out["lossV.FC.weight"] = torch.zeros(2, 128)   # the visual-only training head: not ours
    return out


@pytest.mark.parametrize("network", ["light-asd", "lr-asd"])
def test_authors_checkpoint_names_map_onto_every_tensor(network):
    from s2v_toolkit.faces import lr_asd_model

    make, from_authors, authors_names = {
        "light-asd": (LightASD, state_dict_from_authors, _authors_names),
        "lr-asd": (lr_asd_model.LRASD, lr_asd_model.state_dict_from_authors, _lr_authors_names)}[network]
    torch.manual_seed(0)
    model = make()
    # BatchNorm's step counters are training state: neither kept nor needed to load
    ours = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    renamed = from_authors(authors_names(ours))
    assert set(renamed) == set(ours)
    for k, v in ours.items():
        assert torch.equal(renamed[k], v), k


def test_shipped_weights_load_and_score_per_frame():
    model = load_light_asd()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(1.0e6, rel=0.1)
    with torch.inference_mode():
        out = model(torch.randn(2, 4 * 30, 13), torch.rand(2, 30, 112, 112) * 255)
    assert out.shape == (2, 30) and torch.isfinite(out).all()


def test_encoders_keep_time_one_step_per_video_frame():
    model = load_light_asd()
    with torch.inference_mode():
        assert model.encode_audio(torch.randn(1, 4 * 17, 13)).shape == (1, 17, 128)
        assert model.encode_faces(torch.rand(1, 17, 112, 112) * 255).shape == (1, 17, 128)


def test_long_lines_are_encoded_in_windows_with_the_same_result(monkeypatch):
    """Windows with 8 frames of context give one pass's embeddings (the encoder's temporal reach is 6
    frames), so a minute-long line does not need gigabytes. (Windows of 40 frames here instead of 250.)"""
    monkeypatch.setattr(asd, "FACE_WINDOW", 40)
    model = load_light_asd()
    rng = np.random.default_rng(2)
    faces = rng.integers(0, 255, (110, 112, 112), dtype=np.uint8)
    with torch.inference_mode():
        whole = model.encode_faces(torch.from_numpy(faces)[None])
        windowed = asd.encode_faces_windowed(model, faces)
    assert windowed.shape == whole.shape == (1, 110, 128)
    torch.testing.assert_close(windowed, whole, atol=1e-4, rtol=1e-4)


# --- crops --------------------------------------------------------------------------------------------------


def _coordinate_frame(h: int, w: int) -> np.ndarray:
    """Grey frame whose value is x // 8 (so a sample's column is readable back)."""
    return np.repeat((np.arange(w)[None, :] // 8).astype(np.uint8), h, 0)


@pytest.mark.parametrize("box_px", [60, 400])   # a small face (upsampled) and a large one (area-averaged first)
def test_face_crop_takes_the_lower_face_square(box_px):
    h, w = 1080, 1920
    frame = _coordinate_frame(h, w)
    x0, y0 = 700.0, 300.0
    box = np.array([x0, y0, x0 + box_px, y0 + box_px])
    crop = asd.face_crop(frame, box)
    assert crop.shape == (112, 112) and crop.dtype == np.uint8
    half = box_px / 2
    left = x0 + half - 0.7 * half          # 0.7 box halves either side of the centre
    right = left + 1.4 * half
    assert abs(int(crop[56, 0]) - left / 8) <= 1.5
    assert abs(int(crop[56, -1]) - right / 8) <= 1.5
    # rows: from 0.3 halves above the centre to 1.1 below; a horizontal edge placed at the centre row
    edge = frame.copy()
    edge[: int(y0 + half)] = 0
    edge[int(y0 + half):] = 255
    col = asd.face_crop(edge, box)[:, 56].astype(int)
    row = int(np.argmax(col > 127))
    assert abs(row - 0.3 * half / (1.4 * half) * 112) <= 1.5


def test_face_crop_pads_outside_the_frame_with_grey_110():
    frame = np.full((200, 200, 3), 0, np.uint8)
    crop = asd.face_crop(frame, np.array([150.0, 150.0, 250.0, 250.0]))
    assert crop[-1, -1] == 110 and crop[0, 0] == 0


def test_frames_are_resampled_to_the_networks_25_fps():
    t = asd.asd_frame_times(60, 30.0)            # 2 s at 30 fps -> 50 frames at 25 fps
    assert len(t) == 50 and t[0] == 0 and t[-1] == 59
    assert np.all(np.diff(t) >= 1)
    assert np.array_equal(asd.asd_frame_times(50, 25.0), np.arange(50))


# --- calibration against the shifted audio ------------------------------------------------------------------


class _DotModel:
    """Stands in for the network: per frame, the product of the audio's and the face's one-number
    embeddings. A face is 'speaking this line' when its series lines up with the audio's."""

    def encode_faces(self, faces):
        return faces.float().mean(dim=(2, 3))[..., None] / 255.0 - 0.5

    def encode_audio(self, mfcc):
        x = mfcc[..., 0].float()
        return x.reshape(x.shape[0], -1, 4).mean(-1)[..., None]

    def backend(self, a, v):
        return (a * v)[..., 0]


def _line(seed: int, n: int = 150):
    rng = np.random.default_rng(seed)
    s = (rng.random(n) > 0.5).astype(float)                # a syllable pattern, one value per video frame
    faces = np.repeat((s * 200 + 20)[:, None, None], 112, 1).repeat(112, 2).astype(np.uint8)
    loud = np.repeat(s * 0.3 + 0.001, 640) * rng.standard_normal(n * 640)
    return faces, loud.astype(np.float32)


def test_aligned_audio_scores_far_above_its_shifts_and_unrelated_audio_does_not():
    faces, own = _line(0)
    _, other = _line(1)
    ev = asd.asd_evidence(faces, own, model=_DotModel())
    assert ev.frames == 150 and ev.z > 4 and ev.evidence > 0.99
    un = asd.asd_evidence(faces, other, model=_DotModel())
    assert abs(un.z) < 3 and un.evidence < ev.evidence
    # a second's shift is enough to break the alignment: the same audio one second late is not 'own'
    late = asd.asd_evidence(faces, np.roll(own, 16000), model=_DotModel())
    assert late.z < 2


def test_line_too_short_for_a_null_gives_no_evidence():
    for n in (40, 60):   # 1.6 and 2.4 s: no shift, or fewer than 10 shifts of at least 1 s
        faces, own = _line(0, n=n)
        assert asd.asd_evidence(faces, own, model=_DotModel()) is None
    faces, own = _line(0, n=75)
    assert asd.asd_evidence(faces, own, model=_DotModel()) is not None


def test_a_silent_line_gives_no_evidence_not_a_confident_score():
    """Digital silence and noise 60 dB down are not scored (the shipped network gave z 5.5 on zeros);
    the same line at a normal level is."""
    from s2v_toolkit.faces.asd import loudest_frame_dbfs

    faces, own = _line(0)
    assert asd.asd_evidence(faces, np.zeros_like(own), model=_DotModel()) is None
    hiss = (1e-3 * np.random.default_rng(3).standard_normal(len(own))).astype(np.float32)   # -60 dBFS
    assert -62 < loudest_frame_dbfs(hiss) < -58
    assert asd.asd_evidence(faces, hiss, model=_DotModel()) is None
    assert asd.asd_evidence(faces, own * 0.03, model=_DotModel()).z > 4   # peak ~-40 dBFS: scored as before
    assert loudest_frame_dbfs(np.zeros(10)) == -np.inf


# --- the choice: combined with the landmark evidence --------------------------------------------------------


def _talking_track(track_id: int, n: int, moving: bool):
    from s2v_toolkit.faces import FaceTrack
    from s2v_toolkit.faces.synthetic import FaceIdentity, posed_face

    rng = np.random.default_rng(track_id)
    opening = rng.uniform(0, 1, n) if moving else np.zeros(n)
    lm = np.stack([posed_face((300 + 400 * track_id, 300), 160, 0, FaceIdentity(), float(o)) for o in opening])
    lm[:, :, :2] += rng.normal(0, 0.2, lm[:, :, :2].shape)
    return FaceTrack(track_id, np.arange(n), lm.astype(np.float32), np.ones(n, np.float32))


def test_network_z_combines_with_the_landmarks_and_only_counts_upwards():
    from s2v_toolkit.faces import choose_speaker
    from s2v_toolkit.faces.asd import AsdEvidence
    from s2v_toolkit.faces.speaker import SpeakerParams

    n = 125
    tracks = [_talking_track(0, n, True), _talking_track(1, n, False)]
    rng = np.random.default_rng(3)
    env = np.log(rng.uniform(0.01, 1, n))   # unrelated to either mouth: the landmarks' z is near 0
    base = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0)
    z_lm = base.candidates[0].audio_z
    strong = {0: AsdEvidence(1.0, 0.0, 0.2, 5.0, n), 1: AsdEvidence(0.0, 0.0, 0.2, 4.0, n)}
    got = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0, network=strong)
    c0 = got.candidates[0]
    assert c0.combined_z == pytest.approx((5.0 + z_lm) / math.sqrt(2)) and c0.network_z == 5.0
    assert c0.network_zs is None   # one network: no parts
    averaged = {0: asd.combine_evidence([AsdEvidence(1.0, 0.0, 0.2, 6.0, n, "light-asd"),
                                         AsdEvidence(1.0, 0.0, 0.2, 4.0, n, "lr-asd")])}
    c_avg = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0, network=averaged).candidates[0]
    assert c_avg.network_z == 5.0 and c_avg.network_zs == {"light-asd": 6.0, "lr-asd": 4.0}
    assert c_avg.to_dict()["network_zs"] == {"light-asd": 6.0, "lr-asd": 4.0}
    assert got.candidates[1].combined_z is None and got.candidates[1].score == 0.0   # a still mouth stays 0
    assert (got.track_id == 0) == (c0.combined_z >= 2.326)
    against = {0: AsdEvidence(-1.0, 0.0, 0.2, -4.0, n)}
    neg = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0, network=against)
    assert neg.candidates[0].combined_z == pytest.approx(z_lm / math.sqrt(2))
    # the cut is the combined one where the network ran, the landmarks' own where it did not
    assert "0.98" in neg.reason or neg.track_id is not None
    off = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0, params=SpeakerParams(network=False))
    assert all(c.network_z is None for c in off.candidates)


def test_network_is_skipped_without_a_file_and_warns_when_the_file_is_gone(tmp_path):
    from types import SimpleNamespace

    track = _talking_track(0, 60, True)
    mem = SimpleNamespace(source=None, rotation=0, fps=25.0)
    assert asd.network_evidence(mem, [track], 0, 59, np.zeros(38400, np.float32)) == {}
    gone = SimpleNamespace(source=str(tmp_path / "moved.mp4"), rotation=0, fps=25.0)
    with pytest.warns(UserWarning, match="moved.mp4: frames 0-59 could not be read again"):
        assert asd.network_evidence(gone, [track], 0, 59, np.zeros(38400, np.float32)) == {}


def _cand(tid: int, z: float):
    from s2v_toolkit.faces.speaker import CandidateEvidence

    ev = max(0.0, math.erf(z / math.sqrt(2)))
    return CandidateEvidence(tid, 1.0, 0.1, 0.3, None, ev, z, 0, ev, None, None, z)


def test_with_two_faces_the_lead_in_z_decides_not_the_saturated_evidence():
    from s2v_toolkit.faces.speaker import _audio_confidence

    # the speaking face at z 3.5 against a face talking at the same time by chance (z 1.2): the evidences
    # (0.9995 and 0.77) differ by 0.23, far under the cut, but the z lead of 2.3 says which face speaks
    conf, lead = _audio_confidence([_cand(0, 3.5), _cand(1, 1.2)], 0.98, 1.0)
    assert lead == pytest.approx(2.3) and conf == pytest.approx(math.erf(3.5 / math.sqrt(2)))
    # both faces far above chance, close to each other: undecided, and the confidence says so
    conf, lead = _audio_confidence([_cand(0, 3.2), _cand(1, 2.6)], 0.98, 1.0)
    assert lead == pytest.approx(0.6) and conf < 0.98 and conf == pytest.approx(0.98 * 0.6)
    # the best face under the cut is never chosen whatever its lead
    conf, _ = _audio_confidence([_cand(0, 2.0), _cand(1, -1.0)], 0.98, 1.0)
    assert conf < 0.98
    # one face: its evidence
    conf, lead = _audio_confidence([_cand(0, 2.5)], 0.98, 1.0)
    assert lead is None and conf == pytest.approx(math.erf(2.5 / math.sqrt(2)))


def test_two_talking_faces_choice_and_reason():
    from s2v_toolkit.faces import choose_speaker
    from s2v_toolkit.faces.asd import AsdEvidence

    n = 125
    tracks = [_talking_track(0, n, True), _talking_track(1, n, True)]
    env = np.log(np.random.default_rng(3).uniform(0.01, 1, n))
    base = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0)
    z_lm = {c.track_id: c.audio_z for c in base.candidates}
    clear = {0: AsdEvidence(1, 0, 0.2, 7.0, n), 1: AsdEvidence(1, 0, 0.2, 1.0, n)}
    got = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0, network=clear)
    comb = {t: (max(clear[t].z, 0) + z_lm[t]) / math.sqrt(2) for t in (0, 1)}
    assert (got.track_id == 0) == (comb[0] >= 2.326 and comb[0] - comb[1] >= 1.0)
    close = {0: AsdEvidence(1, 0, 0.2, 5.0, n), 1: AsdEvidence(1, 0, 0.2, 5.0 + (z_lm[0] - z_lm[1]) + 0.2, n)}
    tie = choose_speaker(tracks, 0, n - 1, envelope=env, fps=25.0, network=close)
    assert tie.track_id is None and "about equally" in tie.reason and tie.confidence < 0.98


def test_pooled_lines_use_the_same_z_lead_rule():
    from s2v_toolkit.faces import pool_audio_z

    # three lines: face 0 speaks them (z 2.5 each), face 1 talks too, by chance (z 1.0 each)
    got = pool_audio_z([{0: 2.5, 1: 1.0}] * 3)
    assert got.track_id == 0 and got.confidence == pytest.approx(math.erf(2.5 * math.sqrt(3) / math.sqrt(2)))
    close = pool_audio_z([{0: 2.5, 1: 2.2}] * 3)      # a lead of 0.52 pooled: undecided
    assert close.track_id is None and close.confidence < 0.9


def test_network_device_follows_the_environment_and_the_gpu(monkeypatch):
    from s2v_toolkit.faces.asd_model import default_device

    monkeypatch.delenv("S2VT_ASD_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"  # a GPU torch sees is used by default
    monkeypatch.setenv("S2VT_ASD_DEVICE", "cpu")
    assert default_device() == "cpu"  # the environment overrides
    assert next(load_light_asd(device="cpu").parameters()).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["light-asd", "lr-asd"])
def test_network_evidence_on_the_gpu_matches_the_cpu(name):
    from s2v_toolkit.faces.asd_model import load_network

    rng = np.random.default_rng(3)
    faces = rng.integers(0, 255, (120, 112, 112), dtype=np.uint8)
    audio = rng.normal(0, 0.1, int(120 / 25 * 16000) + 400).astype(np.float32)
    cpu = asd.asd_evidence(faces, audio, model=load_network(name, "cpu"))
    gpu = asd.asd_evidence(faces, audio, model=load_network(name, "cuda"))
    assert abs(cpu.score - gpu.score) < 1e-3 and abs(cpu.null_mean - gpu.null_mean) < 1e-3
    assert abs(cpu.z - gpu.z) < 1e-2


def test_a_wrong_network_device_is_one_clear_error(monkeypatch):
    from s2v_toolkit.errors import S2VError
    from s2v_toolkit.faces.asd_model import default_device

    monkeypatch.setenv("S2VT_ASD_DEVICE", "gpu")
    with pytest.raises(S2VError, match="S2VT_ASD_DEVICE='gpu': not a torch device"):
        default_device()
    monkeypatch.setenv("S2VT_ASD_DEVICE", "cuda:7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(S2VError, match="S2VT_ASD_DEVICE='cuda:7': no such CUDA GPU"):
        default_device()
    # a line's scoring says so too, not "could not be read again" (nothing is read before the model loads)
    from types import SimpleNamespace

    line = SimpleNamespace(source="/nonexistent/clip.mp4", rotation=0, fps=25.0)
    with pytest.raises(S2VError, match="S2VT_ASD_DEVICE"):
        asd.network_evidence(line, [_talking_track(0, 60, True)], 0, 59, np.zeros(38400, np.float32))


# --- LR-ASD and the average of the networks ----------------------------------------------------------------


def _lr_authors_names(ours: dict) -> dict:
    """Our LR-ASD state dict under the authors' names (the inverse of the renaming, written out here)."""
    out = {}
    for name, value in ours.items():
        parts = name.split(".")
        if parts[0] == "head":
            out[f"lossAV.FC.{parts[1]}"] = value
        elif parts[0].startswith("gru_"):
            out["model.detector." + name] = value
        elif parts[0] in ("fusion", "temporal"):
            where = "model.fusion" if parts[0] == "fusion" else "model.detector.attention"
            out[f"{where}.attention.weight" if parts[1] == "mix" else f"{where}.bn.{parts[2]}"] = value
        else:
            enc = {"visual": "visualEncoder", "audio": "audioEncoder"}[parts[0]]
            step = int(parts[3])
            layer = [("s_1" if parts[0] == "visual" else "m_1"), ("s_2" if parts[0] == "visual" else "m_2"),
                     "t_1", "t_2"][step]
            if parts[2] == "norms":
                layer = layer[:2] + "norm_" + layer[2:]
            out[f"model.{enc}.block{int(parts[1]) + 1}.{layer}.{parts[4]}"] = value
    out["lossV.FC.weight"] = torch.zeros(2, 128)   # the visual-only training head: not ours
    out["model.fusion.bn.num_batches_tracked"] = torch.tensor(5)
    return out


def test_shipped_lr_asd_weights_load_and_score_per_frame_like_light_asd():
    from s2v_toolkit.faces.asd_model import load_network

    model = load_network("lr-asd", "cpu")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(0.84e6, rel=0.05)
    with torch.inference_mode():
        assert model.encode_audio(torch.randn(1, 4 * 17, 13)).shape == (1, 17, 128)
        assert model.encode_faces(torch.rand(1, 17, 112, 112) * 255).shape == (1, 17, 128)
        out = model(torch.randn(2, 4 * 30, 13), torch.rand(2, 30, 112, 112) * 255)
    assert out.shape == (2, 30) and torch.isfinite(out).all()
    # trained weights, not a fresh module: the same input scores differently from a random initialisation
    from s2v_toolkit.faces.lr_asd_model import LRASD

    torch.manual_seed(0)
    with torch.inference_mode():
        x = (torch.randn(1, 4 * 30, 13), torch.rand(1, 30, 112, 112) * 255)
        assert not torch.allclose(model(*x), LRASD().eval()(*x))


def test_networks_are_averaged_in_z_and_each_is_kept():
    from s2v_toolkit.faces.asd import AsdEvidence, combine_evidence

    a = AsdEvidence(1.0, 0.2, 0.3, 4.0, 150, "light-asd")
    b = AsdEvidence(0.5, 0.1, 0.2, 1.0, 150, "lr-asd")
    both = combine_evidence([a, None, b])
    assert both.z == pytest.approx(2.5) and both.network == "light-asd+lr-asd" and both.parts == (a, b)
    assert both.score == pytest.approx(0.75) and both.frames == 150
    d = both.to_dict()
    assert [p["network"] for p in d["parts"]] == ["light-asd", "lr-asd"] and d["z"] == 2.5
    assert combine_evidence([a]) is a and combine_evidence([None]) is None
    assert not math.isfinite(combine_evidence([a, AsdEvidence(0, 0, 0, float("nan"), 150, "lr-asd")]).z)


class _LateDotModel(_DotModel):
    """Like _DotModel, but hears the audio 8 frames late: its z on the aligned line is lower."""

    def encode_audio(self, mfcc):
        return torch.roll(super().encode_audio(mfcc), 8, dims=1)


def test_evidence_without_a_model_averages_the_networks_named_in_the_environment(monkeypatch):
    from s2v_toolkit.errors import S2VError
    from s2v_toolkit.faces import asd_model

    faces, own = _line(0)
    one = asd.asd_evidence(faces, own, model=_DotModel(), network="light-asd")
    late = asd.asd_evidence(faces, own, model=_LateDotModel(), network="lr-asd")
    stand_ins = {"light-asd": _DotModel(), "lr-asd": _LateDotModel()}
    monkeypatch.setattr(asd_model, "load_network", lambda name, device=None, path=None: stand_ins[name])
    monkeypatch.delenv("S2VT_ASD_NETWORKS", raising=False)
    both = asd.asd_evidence(faces, own)
    assert both.network == "light-asd+lr-asd" and both.z == pytest.approx((one.z + late.z) / 2)
    monkeypatch.setenv("S2VT_ASD_NETWORKS", "light-asd")
    alone = asd.asd_evidence(faces, own)
    assert alone.network == "light-asd" and alone.z == pytest.approx(one.z) and alone.parts == ()
    monkeypatch.setenv("S2VT_ASD_NETWORKS", "light-asd,syncnet")
    with pytest.raises(S2VError, match="S2VT_ASD_NETWORKS='light-asd,syncnet': unknown network syncnet"):
        asd.asd_evidence(faces, own)


def test_a_face_encoded_once_scores_each_line_as_encoding_it_again():
    faces, own = _line(0)
    _, other = _line(1)
    model = _DotModel()
    emb = asd.encode_faces_windowed(model, faces)
    for line in (own, other):
        again = asd.asd_evidence(faces, line, model=model)
        once = asd.asd_evidence(faces, line, model=model, face_embedding=emb)
        assert once == again
