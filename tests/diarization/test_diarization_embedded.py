"""The embedded backend end to end on synthesised conversations with known turn times, enrollment and
speaker -> character assignment, and bad input.

Bounds (stated in docs/diarization.md): on the two-voice conversation DER <= 0.15 with no collar (most of
it is VAD padding at turn edges) and <= 0.05 with pyannote's usual 0.25 s collar.
"""

from __future__ import annotations

import numpy as np
import pytest

from s2v_toolkit.diarization import (
    UNKNOWN,
    EmbeddedConfig,
    SpeakerTurn,
    SpeakerTurns,
    assign_characters,
    diarization_error_rate,
    diarize,
    enroll,
)
from s2v_toolkit.diarization.audio import AudioSource, open_audio
from s2v_toolkit.errors import ConfigError, MediaError

from .conftest import SR, needs_espeak, say

DER_NO_COLLAR = 0.15
DER_COLLAR_025 = 0.05


def _reference(ref) -> SpeakerTurns:
    return SpeakerTurns([SpeakerTurn(a, b, s) for a, b, s in ref])


def _majority_character(turns: SpeakerTurns, a: float, b: float) -> str | None:
    """The character covering most of [a, b]."""
    cover: dict = {}
    for t in turns:
        overlap = min(b, t.end) - max(a, t.start)
        if overlap > 0:
            cover[t.character] = cover.get(t.character, 0.0) + overlap
    return max(cover, key=cover.get) if cover else None


@pytest.fixture(scope="module")
def two_speaker_result(two_speakers):
    signal, _ = two_speakers
    return diarize(signal, SR, num_speakers=2)


def test_two_voices_known_count_der(two_speakers, two_speaker_result):
    _, ref = two_speakers
    hyp = two_speaker_result
    assert hyp.speakers == ["SPEAKER_00", "SPEAKER_01"]
    for a, b in zip(hyp.turns, hyp.turns[1:]):
        assert a.end <= b.start + 1e-9  # exclusive turns
    plain = diarization_error_rate(_reference(ref), hyp)
    collared = diarization_error_rate(_reference(ref), hyp, collar=0.25)
    assert plain.der <= DER_NO_COLLAR, plain
    assert collared.der <= DER_COLLAR_025, collared
    assert plain.confusion == pytest.approx(0.0, abs=0.3)
    assert all(0.0 <= t.confidence <= 1.0 for t in hyp) and np.mean([t.confidence for t in hyp]) > 0.8


def test_two_voices_estimated_count(two_speakers):
    signal, ref = two_speakers
    hyp = diarize(signal, SR)  # no count given: the threshold decides
    assert len(hyp.speakers) == 2
    assert diarization_error_rate(_reference(ref), hyp, collar=0.25).der <= DER_COLLAR_025


def test_assignment_with_enrollment_names_every_turn(two_speakers, two_speaker_result, enrollment):
    signal, ref = two_speakers
    voices = enroll({"Ann": [(enrollment["ann"], SR)], "Bob": [(enrollment["bob"], SR)]})
    out = assign_characters(two_speaker_result, signal, voices, characters=["Ann", "Bob"], sample_rate=SR)
    names = {"ann": "Ann", "bob": "Bob"}
    for a, b, speaker in ref:
        assert _majority_character(out, a, b) == names[speaker], (a, b, speaker)
    report = out.info["assignment"]
    assert report["method"].startswith("voice similarity")
    for s in out.speakers:
        assert report["speakers"][s]["similarity"] >= 0.75 and report["speakers"][s]["margin"] > 0.1
    assert set(out.talk_time("character")) == {"Ann", "Bob"}
    # without the audio, the backend's own speaker embeddings are used (no per-turn check)
    quick = assign_characters(two_speaker_result, None, voices, characters=["Ann", "Bob"])
    assert [t.character for t in quick] == [t.character for t in out]


def test_unenrolled_voice_becomes_unknown(three_speakers, enrollment):
    signal, ref = three_speakers
    turns = diarize(signal, SR, num_speakers=3)
    voices = enroll({"Ann": [(enrollment["ann"], SR)], "Bob": [(enrollment["bob"], SR)]})
    out = assign_characters(turns, signal, voices, characters=["Ann", "Bob"], sample_rate=SR)
    names = {"ann": "Ann", "bob": "Bob", "cid": UNKNOWN}
    for a, b, speaker in ref:
        assert _majority_character(out, a, b) == names[speaker], (a, b, speaker)
    assert diarization_error_rate(_reference(ref), turns, collar=0.25).der <= 0.1


def test_turns_of_one_speaker_go_to_the_enrolled_voices_they_are_closest_to(two_speakers, three_speakers,
                                                                            enrollment):
    """Two voices diarization heard as one speaker (alike voices: one synthesiser's, one family's) are told
    apart by the cast's samples, one turn at a time; an unknown speaker's turns stay unknown (session 17:
    the espeak-ng similar-voice scenes went from 4 to 11 of 18 within DER 0.25 with a cast)."""
    signal, ref = two_speakers
    merged = SpeakerTurns([SpeakerTurn(a, b, "SPEAKER_00") for a, b, _ in ref], "two", len(signal) / SR)
    voices = enroll({"Ann": [(enrollment["ann"], SR)], "Bob": [(enrollment["bob"], SR)]})
    out = assign_characters(merged, signal, voices, characters=["Ann", "Bob"], sample_rate=SR)
    names = {"ann": "Ann", "bob": "Bob"}
    assert [t.character for t in out] == [names[s] for _, _, s in ref]
    assert out.info["assignment"]["turns_moved"] == sum(s != ref[0][2] for _, _, s in ref)
    assert all(t.character_score >= 0.7 for t in out)
    # a speaker no enrolled voice matches stays unknown, turn by turn (Cid is nobody in this cast)
    signal3, ref3 = three_speakers
    cid = [(a, b) for a, b, s in ref3 if s == "cid"]
    alone = SpeakerTurns([SpeakerTurn(a, b, "SPEAKER_09") for a, b in cid], "cid", len(signal3) / SR)
    out3 = assign_characters(alone, signal3, voices, characters=["Ann", "Bob"], sample_rate=SR)
    assert {t.character for t in out3} == {UNKNOWN} and out3.info["assignment"]["turns_moved"] == 0


def test_a_turn_holding_two_enrolled_voices_is_cut_where_the_voice_changes(two_speakers, enrollment):
    """Lines that follow each other without a pause (or overlap) make one turn: where diarization heard the
    alike voices as one speaker, such a turn is cut where its windows' nearest enrolled voice changes."""
    signal, ref = two_speakers
    (a0, b0, s0), (a1, b1, s1) = ref[0], ref[1]
    assert (s0, s1) == ("ann", "bob")
    merged = SpeakerTurns([SpeakerTurn(a0, b1, "SPEAKER_00")] + [SpeakerTurn(a, b, "SPEAKER_00") for a, b, _ in ref[2:]],
                          "two", len(signal) / SR)
    voices = enroll({"Ann": [(enrollment["ann"], SR)], "Bob": [(enrollment["bob"], SR)]})
    out = assign_characters(merged, signal, voices, characters=["Ann", "Bob"], sample_rate=SR)
    assert out.info["assignment"]["turns_split"] == 1
    assert _majority_character(out, a0, b0) == "Ann" and _majority_character(out, a1, b1) == "Bob"
    cut = [t.end for t in out if t.start == a0][0]
    assert b0 - 0.3 <= cut <= a1 + 0.3   # at the pause between the two lines (windows are 0.4 s apart)
    kept = assign_characters(merged, signal, voices, characters=["Ann", "Bob"], sample_rate=SR, move_turns=False)
    assert "turns_split" not in kept.info["assignment"]


def test_one_voice_diarization_split_in_two_speakers_is_one_character(two_speakers, three_speakers, enrollment):
    """The one-to-one matching left the second speaker of a split voice unknown (its lines were skipped as
    nobody's); a left-over speaker whose voice matches a character is that character (session 17: LibriSpeech
    conversations that counted one voice too many, DER by character 0.11 -> 0.08, bench_cast_scenes)."""
    signal, ref = two_speakers
    ann_turns = [(a, b) for a, b, s in ref if s == "ann"]
    half = len(ann_turns) // 2
    split = SpeakerTurns([SpeakerTurn(a, b, "SPEAKER_00" if (a, b) in ann_turns[:half] else
                                      "SPEAKER_02" if s == "ann" else "SPEAKER_01") for a, b, s in ref],
                         "two", len(signal) / SR)
    voices = enroll({"Ann": [(enrollment["ann"], SR)], "Bob": [(enrollment["bob"], SR)]})
    out = assign_characters(split, signal, voices, characters=["Ann", "Bob"], sample_rate=SR)
    names = {"ann": "Ann", "bob": "Bob"}
    assert [t.character for t in out] == [names[s] for _, _, s in ref]
    assert len(out.info["assignment"]["same_voice"]) == 1
    before = assign_characters(split, signal, voices, characters=["Ann", "Bob"], sample_rate=SR, same_voice=False)
    assert sum(t.character == UNKNOWN for t in before) == len(ann_turns) - half or \
        sum(t.character == UNKNOWN for t in before) == half
    # a stranger's speaker is no character's second speaker (Cid's voice reaches no enrolled one)
    signal3, ref3 = three_speakers
    turns3 = SpeakerTurns([SpeakerTurn(a, b, {"ann": "S0", "bob": "S1", "cid": "S2"}[s]) for a, b, s in ref3],
                          "three", len(signal3) / SR)
    out3 = assign_characters(turns3, signal3, voices, characters=["Ann", "Bob"], sample_rate=SR)
    assert {t.character for t in out3 if t.speaker == "S2"} == {UNKNOWN}
    assert "same_voice" not in out3.info["assignment"]


def test_without_voice_samples_order_of_first_appearance(two_speaker_result):
    out = assign_characters(two_speaker_result, characters=["Bob", "Ann"])
    first = out.turns[0]
    assert first.character == "Bob" and first.character_score is None
    assert "first appearance" in out.info["assignment"]["method"]
    more = assign_characters(two_speaker_result, characters=["Solo"])
    assert {t.character for t in more} == {"Solo", UNKNOWN}


@needs_espeak
def test_single_speaker_is_one_speaker():
    x = np.concatenate([say("bob", "I was at the harbour watching the boats come in"), np.zeros(8000, np.float32),
                        say("bob", "Maybe the wind did it"), np.zeros(4000, np.float32)])
    turns = diarize(x, SR)
    assert turns.speakers == ["SPEAKER_00"] and len(turns) >= 1


def test_silence_noise_and_music_give_no_turns():
    silent = diarize(np.zeros(3 * SR, np.float32), SR)
    assert len(silent) == 0 and silent.info["note"] == "no speech detected" and silent.duration == 3.0
    rng = np.random.default_rng(0)
    hum = 0.2 * np.sin(2 * np.pi * 60 * np.arange(4 * SR) / SR) + 0.01 * rng.standard_normal(4 * SR)
    assert len(diarize(hum.astype(np.float32), SR)) == 0
    t = np.arange(SR // 2) / SR  # plucked harmonic notes, a scale twice: music without voice
    notes = [sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6)) * np.exp(-3 * t)
             for f in [220, 247, 262, 294, 330, 349, 392, 440] * 2]
    assert len(diarize((0.3 * np.concatenate(notes)).astype(np.float32), SR)) == 0


@needs_espeak
@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_sample_rates_give_the_same_turns(tmp_path, two_speakers, two_speaker_result, rate):
    import soundfile as sf
    import soxr

    signal, ref = two_speakers
    path = tmp_path / f"conv_{rate}.wav"
    sf.write(path, soxr.resample(signal, SR, rate), rate)
    hyp = diarize(path, num_speakers=2)
    assert hyp.duration == pytest.approx(len(signal) / SR, abs=1e-3)
    # 8 kHz loses the band above 4 kHz: a looser bound
    assert diarization_error_rate(_reference(ref), hyp, collar=0.25).der <= (0.1 if rate == 8000 else DER_COLLAR_025)


@needs_espeak
def test_stereo_with_dialogue_on_one_channel(tmp_path, two_speakers):
    import soundfile as sf

    signal, ref = two_speakers
    rng = np.random.default_rng(3)
    music = 0.3 * np.sin(2 * np.pi * 220 * np.arange(len(signal)) / SR) * (1 + 0.5 * np.sin(np.arange(len(signal)) / 3000))
    music += 0.02 * rng.standard_normal(len(signal))
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([music.astype(np.float32), signal], axis=1), SR)
    assert open_audio(path, channel="auto").channel == 1
    hyp = diarize(path, num_speakers=2, channel="auto")
    assert hyp.info["channel"] == 1
    assert diarization_error_rate(_reference(ref), hyp, collar=0.25).der <= DER_COLLAR_025
    with pytest.raises(MediaError, match="channel 2 does not exist"):
        diarize(path, channel=2)


class _CountingSource(AudioSource):
    """Wraps a source and records the longest read, to check that memory stays bounded."""

    def __init__(self, inner: AudioSource) -> None:
        self.inner, self.duration, self.name, self.longest = inner, inner.duration, "long", 0.0

    def read(self, start, duration=None):
        duration = self.duration - start if duration is None else duration
        self.longest = max(self.longest, duration)
        return self.inner.read(start, duration)


@needs_espeak
def test_long_input_is_read_in_bounded_blocks(two_speakers, two_speaker_result):
    signal, _ = two_speakers
    source = _CountingSource(open_audio(signal, SR))
    turns = diarize(source, num_speakers=2, config=EmbeddedConfig(block_seconds=4.0))
    assert source.longest <= 4.0 + 1e-9
    # same turns as reading everything at once (block edges do not show)
    assert len(turns) == len(two_speaker_result)
    for a, b in zip(turns, two_speaker_result):
        assert a.speaker == b.speaker and abs(a.start - b.start) < 0.05 and abs(a.end - b.end) < 0.05


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="num_speakers"):
        diarize(np.zeros(SR, np.float32), SR, num_speakers=0)
    with pytest.raises(ConfigError, match="unknown diarization backend"):
        diarize(np.zeros(SR, np.float32), SR, backend="magic")
    with pytest.raises(MediaError, match="file not found"):
        diarize(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(MediaError, match="junk.wav"):
        diarize(tmp_path / "junk.wav")
    with pytest.raises(MediaError, match="sample_rate"):
        diarize(np.zeros(SR, np.float32))
    with pytest.raises(ConfigError, match="pipeline folder"):
        diarize(np.zeros(SR, np.float32), SR, backend="pyannote")


@needs_espeak
def test_video_file_with_48k_aac_audio(tmp_path, two_speakers):
    """A video container goes through s2v_toolkit.media (FFmpeg): AAC at 48 kHz, resampled by us."""
    import soxr

    media = pytest.importorskip("s2v_toolkit.media")
    signal, ref = two_speakers
    seconds = len(signal) / SR
    frames = np.zeros((int(seconds * 4) + 1, 64, 64, 3), np.uint8)
    path = media.write_video(tmp_path / "scene.mp4", frames, 4, preset="h264",
                             audio=soxr.resample(signal, SR, 48000).astype(np.float32), audio_rate=48000)
    from s2v_toolkit.diarization.audio import MediaSource

    assert isinstance(open_audio(path), MediaSource)
    hyp = diarize(path, num_speakers=2)
    assert hyp.duration == pytest.approx(seconds, abs=0.3)
    assert diarization_error_rate(_reference(ref), hyp, collar=0.25).der <= DER_COLLAR_025
