"""SpeakerTurns, RTTM and DER: data-model behaviour that needs no audio."""

from __future__ import annotations

import importlib.util
import json

import pytest

from s2v_toolkit.diarization import (
    SpeakerTurn,
    SpeakerTurns,
    diarization_error_rate,
    format_rttm,
    parse_rttm,
    read_rttm,
    write_rttm,
)
from s2v_toolkit.errors import ConfigError, MediaError


def _turns(*spec, uri="ep1"):
    return SpeakerTurns([SpeakerTurn(a, b, s, c) for a, b, s, c in spec], uri=uri, duration=20.0, backend="test")


def test_json_round_trip_keeps_every_field():
    turns = _turns((0.0, 1.5, "A", 0.9), (2.0, 3.25, "B", 0.75))
    turns.turns[1] = SpeakerTurn(2.0, 3.25, "B", 0.75, character="Bob", character_score=0.81)
    doc = json.loads(json.dumps(turns.to_dict()))
    back = SpeakerTurns.from_dict(doc)
    assert back.turns == turns.turns
    assert (back.uri, back.duration, back.backend) == ("ep1", 20.0, "test")
    assert doc["speakers"] == ["A", "B"] and doc["talk_time"] == {"A": 1.5, "B": 1.25}


def test_turns_are_sorted_and_speakers_in_order_of_first_appearance():
    turns = _turns((5.0, 6.0, "B", 1.0), (1.0, 2.0, "C", 1.0), (3.0, 4.0, "B", 1.0))
    assert [t.start for t in turns] == [1.0, 3.0, 5.0]
    assert turns.speakers == ["C", "B"]


def test_exclusive_gives_overlap_to_the_more_confident_turn():
    turns = _turns((0.0, 4.0, "A", 0.6), (3.0, 6.0, "B", 0.9), (5.5, 7.0, "A", 0.95))
    ex = turns.exclusive()
    spans = [(t.start, t.end, t.speaker) for t in ex]
    assert spans == [(0.0, 3.0, "A"), (3.0, 5.5, "B"), (5.5, 7.0, "A")]
    for a, b in zip(ex.turns, ex.turns[1:]):
        assert a.end <= b.start


def test_solo_leaves_out_overlapped_stretches_and_overlapped_seconds_counts_them():
    turns = _turns((0.0, 4.0, "A", 0.6), (3.0, 6.0, "B", 0.9), (5.5, 7.0, "A", 0.95), (8.0, 9.0, "B", 0.5))
    assert turns.overlapped_seconds() == pytest.approx(1.5)
    solo = turns.solo()
    assert [(t.start, t.end, t.speaker, t.confidence) for t in solo] == [
        (0.0, 3.0, "A", 0.6), (4.0, 5.5, "B", 0.9), (6.0, 7.0, "A", 0.95), (8.0, 9.0, "B", 0.5)]
    assert solo.overlapped_seconds() == 0.0 and turns.exclusive().overlapped_seconds() == 0.0


def test_voice_prints_of_overlapping_turns_come_from_solo_speech():
    import numpy as np

    from s2v_toolkit.diarization.assignment import speaker_embeddings

    class Lengths:  # an encoder that reports how much speech it was given
        def embed_speaker(self, speech):
            return np.array([len(speech) / 16000.0])

    turns = _turns((0.0, 6.0, "A", 0.9), (4.5, 9.5, "B", 0.9))
    prints = speaker_embeddings(turns, np.zeros(16000 * 10, np.float32), Lengths(), sample_rate=16000)
    assert prints["A"][0] == pytest.approx(4.5) and prints["B"][0] == pytest.approx(3.5)
    inside = _turns((0.0, 6.0, "A", 0.9), (2.0, 3.0, "B", 0.9), (2.0, 3.0, "C", 0.9))  # B never alone
    prints = speaker_embeddings(inside, np.zeros(16000 * 10, np.float32), Lengths(), sample_rate=16000)
    assert prints["A"][0] == pytest.approx(5.0) and prints["B"][0] == pytest.approx(1.0)


def test_rttm_round_trip(tmp_path):
    turns = _turns((0.5, 1.75, "SPEAKER_00", 0.8), (2.0, 4.0, "SPEAKER_01", 0.6))
    path = write_rttm(turns, tmp_path / "out.rttm")
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["SPEAKER", "ep1", "1", "0.500", "1.250", "<NA>", "<NA>", "SPEAKER_00", "0.8000", "<NA>"]
    back = read_rttm(path)["ep1"]
    assert [(t.start, t.end, t.speaker, t.confidence) for t in back] == \
        [(0.5, 1.75, "SPEAKER_00", 0.8), (2.0, 4.0, "SPEAKER_01", 0.6)]
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary file was renamed away


def test_rttm_character_labels_and_spaces():
    turns = SpeakerTurns([SpeakerTurn(0, 1, "S0", 1.0, character="Mary Ann")], uri="my take")
    line = format_rttm(turns, label="character").split()
    assert line[1] == "my_take" and line[7] == "Mary_Ann"


def test_parse_rttm_several_files_comments_and_errors():
    text = ";; comment\nSPKR-INFO x 1 <NA> <NA> <NA> unknown A <NA>\n" \
           "SPEAKER a 1 0.0 1.0 <NA> <NA> X <NA> <NA>\n\nSPEAKER b 1 2.0 1.0 <NA> <NA> Y <NA> <NA>\n"
    parsed = parse_rttm(text)
    assert list(parsed) == ["a", "b"] and parsed["b"].turns[0].end == 3.0
    with pytest.raises(ConfigError, match="x.rttm:1"):
        parse_rttm("SPEAKER a 1 zero 1.0 <NA> <NA> X\n", "x.rttm")
    with pytest.raises(ConfigError, match="8 fields"):
        parse_rttm("SPEAKER a 1 0.0\n")


def test_read_rttm_missing_file(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        read_rttm(tmp_path / "nope.rttm")


def test_der_counts_miss_false_alarm_and_confusion_exactly():
    ref = _turns((0.0, 10.0, "A", 1.0), (10.0, 20.0, "B", 1.0))
    # hyp: A right for 0-8, says "A" for 8-12 (2 s confusion in B's part), misses 18-20, false alarm 20-21
    hyp = _turns((0.0, 12.0, "h1", 1.0), (12.0, 18.0, "h2", 1.0), (20.0, 21.0, "h2", 1.0))
    r = diarization_error_rate(ref, hyp)
    assert r.mapping == {"h1": "A", "h2": "B"}
    assert (r.total, r.missed, r.false_alarm, r.confusion) == pytest.approx((20.0, 2.0, 1.0, 2.0))
    assert r.der == pytest.approx(5.0 / 20.0)
    # a 1 s collar (0.5 s each side of 0, 10, 20) removes 2 s of reference: 0.5 s each of the miss
    # (19.5-20), the false alarm (20-20.5) and the confusion (10-10.5)
    c = diarization_error_rate(ref, hyp, collar=1.0)
    assert (c.total, c.missed, c.false_alarm, c.confusion) == pytest.approx((18.0, 1.5, 0.5, 1.5))


def test_der_of_perfect_and_empty_hypotheses():
    ref = _turns((0.0, 2.0, "A", 1.0), (1.0, 3.0, "B", 1.0))  # overlap 1-2
    assert diarization_error_rate(ref, _turns((0.0, 2.0, "x", 1), (1.0, 3.0, "y", 1))).der == 0.0
    assert diarization_error_rate(ref, SpeakerTurns()).der == pytest.approx(1.0)
    assert diarization_error_rate(ref, _turns((0.0, 3.0, "x", 1)), skip_overlap=True).der == pytest.approx(0.5)
    assert diarization_error_rate(SpeakerTurns(), SpeakerTurns()).der == 0.0


@pytest.mark.skipif(importlib.util.find_spec("pyannote.core") is None, reason="pyannote.core not installed")
def test_annotation_round_trip():
    from pyannote.core import Annotation, Segment

    turns = _turns((0.0, 1.0, "A", 1.0), (1.5, 2.5, "B", 1.0), (3.0, 4.0, "A", 1.0))
    ann = turns.to_annotation()
    assert isinstance(ann, Annotation) and ann.uri == "ep1"
    assert sorted(ann.labels()) == ["A", "B"] and ann.label_duration("A") == pytest.approx(2.0)
    assert Segment(1.5, 2.5) in ann.get_timeline()
    back = SpeakerTurns.from_annotation(ann)
    assert [(t.start, t.end, t.speaker) for t in back] == [(t.start, t.end, t.speaker) for t in turns]


@pytest.mark.skipif(importlib.util.find_spec("pyannote.metrics") is None, reason="pyannote.metrics not installed")
@pytest.mark.filterwarnings("ignore:.*uem.*:UserWarning")
@pytest.mark.parametrize("collar", [0.0, 0.25, 1.0])
def test_der_agrees_with_pyannote_metrics(collar):
    import numpy as np
    from pyannote.metrics.diarization import DiarizationErrorRate

    rng = np.random.default_rng(7)
    for _ in range(5):
        ref_spec, hyp_spec, t = [], [], 0.0
        for _ in range(12):
            d = rng.uniform(0.3, 3.0)
            ref_spec.append((t, t + d, "ABC"[rng.integers(3)], 1.0))
            t += d + rng.uniform(-0.2, 0.6)  # some overlap, some pauses
        for a, b, s, _ in ref_spec:
            jitter = rng.uniform(-0.3, 0.3, 2)
            label = s.lower() if rng.random() > 0.15 else "xyz"[rng.integers(3)]
            hyp_spec.append((max(0.0, a + jitter[0]), max(a + 0.1, b + jitter[1]), label, 1.0))
        # well-formed inputs: one speaker's overlapping turns merged (pyannote's co-occurrence would count
        # a self-overlap twice when choosing the mapping, we count time once)
        ref_ann, hyp_ann = _turns(*ref_spec).to_annotation().support(), _turns(*hyp_spec).to_annotation().support()
        ref, hyp = SpeakerTurns.from_annotation(ref_ann), SpeakerTurns.from_annotation(hyp_ann)
        ours = diarization_error_rate(ref, hyp, collar=collar)
        theirs = DiarizationErrorRate(collar=collar, skip_overlap=False)(ref_ann, hyp_ann)
        assert ours.der == pytest.approx(theirs, abs=1e-6)


def test_short_turns_are_checked_on_their_own_voice_with_a_looser_bar():
    """A turn's own print is checked from MIN_TURN_CHECK (0.75 s); under SHORT_TURN (1 s) it loses its
    speaker's character only below turn_threshold - SHORT_TURN_SLACK; shorter turns keep it unchecked."""
    import numpy as np

    from s2v_toolkit.diarization import UNKNOWN, assign_characters
    from s2v_toolkit.diarization.assignment import MIN_TURN_CHECK, SHORT_TURN, SHORT_TURN_SLACK, TURN_THRESHOLD

    rate = 16000
    a, b, other = np.eye(3, dtype=np.float32)

    def towards_a(similarity):  # a unit print at this cosine to character A's samples
        return similarity * a + np.sqrt(1 - similarity ** 2) * other

    # each stretch of the signal holds a constant that names the print it sounds like
    prints = {1: towards_a(0.95), 2: towards_a(TURN_THRESHOLD - SHORT_TURN_SLACK + 0.04),
              3: towards_a(0.45), 4: b}

    class ConstantCoded:
        def embed_speaker(self, speech):
            return prints[int(round(float(np.median(speech))))]

    spans = [(0.0, 4.0, 1), (5.0, 5.8, 2), (6.0, 6.8, 3), (7.0, 8.5, 2), (9.0, 9.6, 3), (10.0, 14.0, 4)]
    x = np.zeros(15 * rate, np.float32)
    for start, end, code in spans:
        x[int(start * rate):int(end * rate)] = code
    turns = _turns(*[(s, e, "S1" if code != 4 else "S2", 0.9) for s, e, code in spans])
    named = assign_characters(turns, x, {"A": a, "B": b}, characters=["A", "B"], sample_rate=rate,
                              encoder=ConstantCoded())
    got = [(t.start, t.character) for t in named]
    assert MIN_TURN_CHECK <= 0.8 < SHORT_TURN <= 1.5 and 0.6 < MIN_TURN_CHECK
    assert got == [(0.0, "A"),
                   (5.0, "A"),        # 0.8 s, its own print just above the looser bar: keeps the name
                   (6.0, UNKNOWN),    # 0.8 s, like nobody in the cast (a stranger's short line)
                   (7.0, UNKNOWN),    # 1.5 s at the same similarity as the first: the full bar applies
                   (9.0, "A"),        # 0.6 s: too short to check, its speaker's character
                   (10.0, "B")]
