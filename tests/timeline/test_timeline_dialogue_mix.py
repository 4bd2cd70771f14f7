"""Dialogue the way the mixer set it: clip gain, envelopes, fades, clip/track mute, solo, channel
mapping; dialogue tracks by role, name (many languages) or measured speech; missing media."""

from __future__ import annotations

import numpy as np
import opentimelineio as otio
import pytest
import soundfile

from s2v_toolkit.timeline import TimelineError, describe_timeline, extract_dialogue, read_timeline
from s2v_toolkit.timeline.dialogue import speech_ratio_of
from s2v_toolkit.timeline.roles import name_reason

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange
SR = 16000
LEVEL = 0.1          # -20 dBFS peak tone


def _tone(path, seconds=20.0, rate=48000, channels=1, live=(0,)):
    t = np.arange(int(seconds * rate)) / rate
    x = (LEVEL * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    data = np.stack([x if c in live else np.zeros_like(x) for c in range(channels)], axis=1)
    soundfile.write(str(path), data if channels > 1 else data[:, 0], rate, subtype="FLOAT")
    return path


def _db(x) -> float:
    rms = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))
    return 20 * np.log10(rms) if rms > 0 else -300.0


TONE_DB = 20 * np.log10(LEVEL / np.sqrt(2))


def _clip(name, wav, start_s, dur_s, **meta):
    ref = otio.schema.ExternalReference(str(wav), available_range=TR(RT(0, 25), RT(500, 25)))
    c = otio.schema.Clip(name, media_reference=ref, source_range=TR(RT(start_s * 25, 25), RT(dur_s * 25, 25)))
    if meta:
        c.metadata["s2v_toolkit"] = meta
    return c


def _track(name, clips, **meta):
    t = otio.schema.Track(name, kind=otio.schema.TrackKind.Audio)
    for c in clips:
        t.append(c)
    if meta:
        t.metadata["s2v_toolkit"] = meta
    return t


def _desc(tmp_path, tracks):
    tl = otio.schema.Timeline("mix")
    tl.tracks.extend(tracks)
    path = tmp_path / "mix.otio"
    otio.adapters.write_to_file(tl, str(path))
    return describe_timeline(read_timeline(path))


def _second(sig, k):          # the k-th second of a signal, minus 50 ms at each edge
    return sig[k * SR + 800:(k + 1) * SR - 800]


def test_clip_gain_mute_fades_and_envelope_are_applied(tmp_path):
    mono = _tone(tmp_path / "mono.wav")
    desc = _desc(tmp_path, [_track("Dialog", [
        _clip("plain", mono, 0, 1),
        _clip("minus99", mono, 1, 1, gain_db=-99.0),
        _clip("minus6", mono, 2, 1, gain_db=-6.0),
        _clip("muted", mono, 3, 1, muted=True),
        _clip("fades", mono, 4, 2, fade_in=1.0, fade_out=0.5),
        _clip("envelope", mono, 6, 1, gain_envelope=[[0.0, 0.0], [0.5, 0.0], [0.5001, -40.0], [1.0, -40.0]]),
    ])])
    (t,) = extract_dialogue(desc)
    s = t.signal
    assert _db(_second(s, 0)) == pytest.approx(TONE_DB, abs=0.2)
    assert _db(_second(s, 1)) < -110                       # a clip at -99 dB comes out silent
    assert _db(_second(s, 2)) == pytest.approx(TONE_DB - 6, abs=0.2)
    assert _db(_second(s, 3)) < -200 and any("muted" in p for p in t.problems)
    # fade in over 1 s: the first quarter is ~12 dB down on the last quarter of the fade
    fade = s[4 * SR:5 * SR]
    assert _db(fade[: SR // 4]) < _db(fade[-SR // 4:]) - 10
    assert _db(s[5 * SR + 800:5 * SR + SR // 2 - 800]) == pytest.approx(TONE_DB, abs=0.3)   # before the fade-out
    assert _db(s[6 * SR - 1600:6 * SR]) < TONE_DB - 15                                     # its end
    env = s[6 * SR:7 * SR]
    assert _db(env[800:SR // 2 - 800]) == pytest.approx(TONE_DB, abs=0.3)
    assert _db(env[SR // 2 + 800:-800]) == pytest.approx(TONE_DB - 40, abs=0.5)


def test_track_mute_solo_gain_and_channel_mapping(tmp_path):
    stereo = _tone(tmp_path / "stereo.wav", channels=2, live=(1,))     # only the right channel has sound
    mono = _tone(tmp_path / "mono.wav")
    right = _track("DX 1", [_clip("right", stereo, 0, 2, source_channel=1)], gain_db=-10.0)
    left = _track("DX 2", [_clip("left", stereo, 0, 2, source_channel=0)])
    muted = _track("DX 3", [_clip("m", mono, 0, 2)], muted=True)
    desc = _desc(tmp_path, [right, left, muted])
    a, b, c = extract_dialogue(desc)
    assert _db(a.signal[800:-800]) == pytest.approx(TONE_DB - 10, abs=0.3)   # channel 2, track at -10 dB
    assert _db(b.signal) < -200                                                # channel 1 is silent
    assert _db(c.signal) < -200 and "muted" in c.problems[0]
    soloed = _desc(tmp_path, [_track("DX 1", [_clip("x", mono, 0, 2)]),
                              _track("DX 2", [_clip("y", mono, 0, 2)], solo=True)])
    x, y = extract_dialogue(soloed)
    assert _db(x.signal) < -200 and "not soloed" in x.problems[0]
    assert _db(y.signal[800:-800]) == pytest.approx(TONE_DB, abs=0.3)


def test_missing_media_is_an_error_naming_each_clip_unless_accepted(tmp_path):
    mono = _tone(tmp_path / "mono.wav", seconds=3)
    desc = _desc(tmp_path, [_track("Dialogue", [_clip("here", mono, 0, 1), _clip("gone A", tmp_path / "a.wav", 0, 1),
                                                _clip("gone B", tmp_path / "b.wav", 0, 1)])])
    with pytest.raises(TimelineError, match=r"2 dialogue clip\(s\).*gone A.*gone B"):
        extract_dialogue(desc)
    (t,) = extract_dialogue(desc, allow_missing_media=True)
    assert _db(_second(t.signal, 0)) > -30 and _db(t.signal[SR:]) < -200
    assert sum("gone" in p for p in t.problems) == 2


def test_missing_media_cli_exits_2_naming_the_clip(tmp_path, capsys):
    from s2v_toolkit.cli import main

    mono = _tone(tmp_path / "mono.wav", seconds=3)
    _desc(tmp_path, [_track("Voice", [_clip("here", mono, 0, 1), _clip("gone", tmp_path / "gone.wav", 0, 1)])])
    rc = main(["extract-dialogue", str(tmp_path / "mix.otio"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "'gone'" in err and "--allow-missing-media" in err and not (tmp_path / "out" / "dialogue.json").exists()
    rc = main(["extract-dialogue", str(tmp_path / "mix.otio"), "-o", str(tmp_path / "out"), "--allow-missing-media"])
    out = capsys.readouterr().out
    assert rc == 0 and "dialogue: track name 'Voice'" in out


@pytest.mark.parametrize("name", ["Synk 1", "Synk 4", "Kommentar", "Voice", "Speak", "VO", "Sync", "Interview",
                                  "Dial", "Ton", "O-Ton", "Dialogo", "Diálogo", "Dialogue", "Parole", "Voix",
                                  "Stimme", "Sprache", "声", "台词", "セリフ", "DX_Boom", "DIA 1", "Narration"])
def test_dialogue_names_in_several_conventions_and_languages(name):
    assert name_reason(name)


@pytest.mark.parametrize("name", ["Music", "FX", "SFX", "Ambience", "Atmos", "Audio 1", "A2", "Musik", "Foley",
                                  "Sync FX", "VO Music bed", "Tone", "Stereo", "音楽"])
def test_names_that_are_not_dialogue(name):
    assert name_reason(name) is None


def test_role_metadata_chooses_the_track(tmp_path):
    mono = _tone(tmp_path / "mono.wav", seconds=3)
    desc = _desc(tmp_path, [_track("A1", [_clip("m", mono, 0, 1)], role="music"),
                            _track("A2", [_clip("d", mono, 0, 1)], role="dialogue.boom")])
    (t,) = extract_dialogue(desc)
    assert t.track_id == "A2" and "role" in t.reason


def _speechlike(seconds=12.0, rate=48000, seed=1):
    """Syllables: 150-250 ms voiced bursts (harmonics of ~120-200 Hz) with pauses between them."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate), np.float32)
    t = 0.2
    while t < seconds - 0.5:
        dur = rng.uniform(0.15, 0.25)
        n = int(dur * rate)
        f0 = rng.uniform(120, 200)
        tt = np.arange(n) / rate
        burst = sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in range(1, 12)) * np.hanning(n)
        out[int(t * rate):int(t * rate) + n] += 0.1 * burst.astype(np.float32)
        t += dur + rng.uniform(0.08, 0.4)
    return out


def test_measured_speech_ratio_picks_the_dialogue_track_when_names_say_nothing(tmp_path):
    rate = 48000
    speech = tmp_path / "speech.wav"
    soundfile.write(str(speech), _speechlike(), rate, subtype="FLOAT")
    t = np.arange(12 * rate) / rate
    music = tmp_path / "music.wav"
    chords = sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440)) * 0.05
    soundfile.write(str(music), chords.astype(np.float32), rate, subtype="FLOAT")
    noise = tmp_path / "noise.wav"
    soundfile.write(str(noise), (np.random.default_rng(0).standard_normal(12 * rate) * 0.05).astype(np.float32),
                    rate, subtype="FLOAT")
    desc = _desc(tmp_path, [_track("Audio 1", [_clip("a", music, 0, 10)]),
                            _track("Audio 2", [_clip("b", speech, 0, 10)]),
                            _track("Audio 3", [_clip("c", noise, 0, 10)])])
    (chosen,) = extract_dialogue(desc)
    assert chosen.track_id == "A2" and chosen.reason.startswith("measured speech ratio")
    ratios = {n: speech_ratio_of(sig, SR) for n, sig in
              (("speech", _speechlike(rate=SR)), ("music", chords[::3]), ("silence", np.zeros(SR * 5)))}
    assert ratios["speech"] > 0.3 > ratios["music"] and ratios["silence"] == 0.0
    # a caller's VAD replaces the measure
    from s2v_toolkit.timeline import choose_dialogue_tracks

    picked = choose_dialogue_tracks(desc, speech_ratio=lambda sig, sr: float(np.std(sig) > 0.06))   # the steady chords
    assert [p.id for p in picked] == ["A1"]


def test_channels_of_a_camera_file_with_one_stream_per_channel(tmp_path):
    """Camera MXF/MOV files (Sony XDCAM/XAVC, Panasonic P2, ARRI) carry each audio channel as a mono stream
    of its own; an NLE numbers them 1..n as one file's channels. A clip playing channel 3 read the first
    stream instead ("plays channel 3, media has fewer; all channels mixed")."""
    from media_factory import write_camera_file

    path = write_camera_file(tmp_path / "camera.mov", [0.0, 0.0, LEVEL])  # only channel 3 (index 2) sounds
    boom = _track("DX 1", [_clip("ch1", path, 0, 2, source_channel=0)])
    lav = _track("DX 2", [_clip("ch3", path, 0, 2, source_channel=2)])
    beyond = _track("DX 3", [_clip("ch5", path, 0, 2, source_channel=4)])
    a, b, c = extract_dialogue(_desc(tmp_path, [boom, lav, beyond]))
    assert _db(a.signal) < -200 and not a.problems
    assert _db(b.signal[800:-800]) == pytest.approx(TONE_DB, abs=0.3) and not b.problems
    assert "plays channel 5, media has fewer" in c.problems[0]


@pytest.mark.parametrize("rate", [SR, 48000])
def test_a_window_of_a_track_is_the_same_samples_as_the_whole_tracks_slice(tmp_path, rate):
    """The renderer reads each job's record range only (a feature's dialogue at 48 kHz is a gigabyte a
    track, and every worker process held every track whole): a window holds the samples the whole track
    holds there, with gain, fades, envelopes, channels and speed changes applied, and cut clips' edges."""
    noise = np.random.default_rng(3).standard_normal(48000 * 8).astype(np.float32) * 0.05
    wav = tmp_path / "noise.wav"
    soundfile.write(str(wav), np.stack([noise, -noise[::-1]], axis=1), 48000, subtype="FLOAT")
    speed = _clip("speed", wav, 1, 1)
    speed.effects.append(otio.schema.LinearTimeWarp(time_scalar=1.5))
    desc = _desc(tmp_path, [_track("Dialog", [
        _clip("plain", wav, 0, 1, source_channel=1),
        _clip("fades", wav, 2, 2, fade_in=0.7, fade_out=0.4, gain_db=-3.0),
        speed,
        _clip("envelope", wav, 3, 1, gain_envelope=[[0.0, 0.0], [0.5, -20.0], [1.0, -6.0]]),
    ])])
    (whole,) = extract_dialogue(desc, sample_rate=rate)
    rng = np.random.default_rng(4)
    n = len(whole.signal)
    windows = [(0, n), (rate // 3, 2 * rate + 17), (n - 5, n)]
    windows += [tuple(sorted(rng.integers(0, n, 2))) for _ in range(6)]
    for a, b in windows:
        (part,) = extract_dialogue(desc, sample_rate=rate, window=(int(a), int(b)))
        assert part.first_sample == a and len(part.signal) == b - a
        np.testing.assert_allclose(part.signal, whole.signal[a:b], atol=2e-6, err_msg=f"window {a}-{b}")
        for seg in part.segments:  # segments count from the window's first sample
            assert part.source_time_at(seg.sample_start) is not None and 0 <= seg.sample_start < b - a
