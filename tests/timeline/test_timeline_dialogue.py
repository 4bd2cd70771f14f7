"""Dialogue extraction: clicks at known source times land at the right 16 kHz analysis samples."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest

from s2v_toolkit.timeline import (
    TimelineError, choose_dialogue_tracks, describe_timeline, extract_dialogue, read_timeline,
)

import timeline_testkit as kit


RT, TR = kit.RT, kit.TR
RATE = 24000 / 1001           # 667.33 analysis samples per frame: no rounding can hide
FRAME = Fraction(1001, 24000)  # seconds per frame
SR = 16000


def _clip(name, wav, src_start_frames, frames, tc_origin=False, **meta):
    origin = kit.hour(RATE).value if tc_origin else 0
    ref = otio.schema.ExternalReference(str(wav), available_range=TR(RT(origin, RATE), RT(100000, RATE)))
    clip = otio.schema.Clip(name, media_reference=ref,
                            source_range=TR(RT(origin + src_start_frames, RATE), RT(frames, RATE)))
    if meta:
        clip.metadata["s2v_toolkit"] = meta
    return clip


@pytest.fixture
def cut(tmp_path):
    """DIA 1: d1 | gap | d2 (media with 01:00:00:00 origin) | d3 disabled | d4 missing | d5 at -6 dB."""
    media = tmp_path / "media"
    media.mkdir()
    kit.write_wav(media / "dia.wav", 12.0, 48000, clicks={2.5: 0.9, 7.0: 0.8, 9.0: 0.7, 10.5: 0.6})
    kit.write_wav(media / "music.wav", 12.0, 44100, tone=440.0)
    tl = otio.schema.Timeline("dx", global_start_time=kit.hour(RATE))
    dia = otio.schema.Track("DIA 1", kind=otio.schema.TrackKind.Audio)
    dia.append(_clip("d1", media / "dia.wav", 48, 30))                      # source 2.002 s .. 3.253 s
    dia.append(otio.schema.Gap(source_range=TR(RT(0, RATE), RT(20, RATE))))
    dia.append(_clip("d2", media / "dia.wav", 160, 24, tc_origin=True))     # source 6.673 s ..
    d3 = _clip("d3", media / "dia.wav", 210, 12)                            # has the 9.0 s click
    d3.enabled = False
    dia.append(d3)
    dia.append(_clip("d4", media / "gone.wav", 0, 10))
    dia.append(_clip("d5", media / "dia.wav", 245, 15, gain_db=-6.0))      # has the 10.5 s click
    music = otio.schema.Track("MUSIC", kind=otio.schema.TrackKind.Audio)
    music.append(_clip("mx", media / "music.wav", 0, 100))
    tl.tracks.extend([dia, music])
    path = tmp_path / "dx.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def _expected_sample(record_frames: int, source_start_frames: int, click_s: float) -> int:
    seconds = record_frames * FRAME + Fraction(click_s) - source_start_frames * FRAME
    return int(round(seconds * SR))


def _peaks(signal, threshold=0.03):  # a 48 kHz click keeps ~1/3 of its height at 16 kHz
    idx = np.flatnonzero(signal > threshold)
    groups = np.split(idx, np.flatnonzero(np.diff(idx) > 8) + 1) if idx.size else []
    return [int(g[np.argmax(signal[g])]) for g in groups]


def test_clicks_land_at_record_time_within_one_sample(cut):
    desc = describe_timeline(read_timeline(cut))
    # missing media is an error naming the clip, unless silence there is accepted explicitly
    with pytest.raises(TimelineError, match=r"d4.*allow-missing-media"):
        extract_dialogue(desc)
    (track,) = extract_dialogue(desc, allow_missing_media=True)

    assert track.track_name == "DIA 1" and track.sample_rate == SR and track.signal.dtype == np.float32
    assert track.signal.shape[0] == int(round(desc.duration.seconds * SR))
    expect_d1 = _expected_sample(0, 48, 2.5)
    expect_d2 = _expected_sample(30 + 20, 160, 7.0)
    expect_d5 = _expected_sample(30 + 20 + 24 + 12 + 10, 245, 10.5)
    peaks = _peaks(track.signal)
    assert len(peaks) == 3, peaks        # d3 is disabled: its 9.0 s click must not be heard
    for got, want in zip(peaks, [expect_d1, expect_d2, expect_d5]):
        assert abs(got - want) <= 1, (got, want)
    # clip gain: -6 dB on d5 against the unscaled d2 click (0.6 vs 0.8 in the file)
    ratio = track.signal[peaks[2]] / track.signal[peaks[1]]
    assert ratio == pytest.approx(0.6 / 0.8 * 10 ** (-6 / 20), rel=0.05)
    # the gap, the disabled clip and the missing clip are silent
    gap = slice(int(round(30 * FRAME * SR)) + 2, int(round(50 * FRAME * SR)) - 2)
    assert np.abs(track.signal[gap]).max() == 0.0
    assert any("d4" in p and "missing" in p for p in track.problems)
    assert any("d3" in p and "disabled" in p for p in track.problems)


def test_samples_map_back_to_clip_and_source_time(cut):
    desc = describe_timeline(read_timeline(cut))
    (track,) = extract_dialogue(desc, allow_missing_media=True)   # d4 is missing on purpose
    peak = _peaks(track.signal)[1]
    clip_id, source_time = track.source_time_at(peak)
    assert desc.clip(clip_id).name == "d2"
    # d2's media has a 01:00:00:00 origin: source time = origin + 7.0 s (within a sample)
    origin = kit.hour(RATE).value * FRAME
    got = Fraction(source_time.value) / Fraction(24000, 1001)
    assert abs(got - (origin + Fraction(7))) <= Fraction(1, SR)
    assert track.source_time_at(int(round(40 * FRAME * SR))) is None       # in the gap
    # segments cover exactly the record ranges of the clips that sound
    d1 = track.segments[0]
    assert (d1.sample_start, d1.sample_count) == (0, int(round(30 * FRAME * SR)))


def test_choose_tracks_by_name_id_and_pattern(cut):
    desc = describe_timeline(read_timeline(cut), check_media=False)
    assert [t.name for t in choose_dialogue_tracks(desc)] == ["DIA 1"]
    assert [t.name for t in choose_dialogue_tracks(desc, ["A2"])] == ["MUSIC"]
    assert [t.name for t in choose_dialogue_tracks(desc, ["mus*", "dia"])] == ["MUSIC", "DIA 1"]
    with pytest.raises(TimelineError, match="no audio track matches 'VO'"):
        choose_dialogue_tracks(desc, ["VO"])


def test_dialogue_through_fcp7_xml_lands_at_the_same_samples(cut, tmp_path):
    """The same cut exported as FCP 7 XML (as Premiere/Resolve hand it over) gives the same signal timing."""
    tl = otio.adapters.read_from_file(str(cut))
    dia = tl.tracks[0]
    for item in list(dia)[3:]:          # FCP 7 XML from OTIO keeps neither clip disable nor s2v gain
        dia.remove(item)
    xml = tmp_path / "dx.xml"
    otio.adapters.write_to_file(tl, str(xml))
    desc = describe_timeline(read_timeline(xml))
    track = extract_dialogue(desc, ["A1"])[0]
    peaks = _peaks(track.signal)
    assert len(peaks) == 2
    assert abs(peaks[0] - _expected_sample(0, 48, 2.5)) <= 1
    assert abs(peaks[1] - _expected_sample(50, 160, 7.0)) <= 1


def test_media_shorter_than_source_range_is_reported_per_clip(tmp_path):
    kit.write_wav(tmp_path / "short.wav", 1.0, 48000)
    tl = otio.schema.Timeline("t")
    tr = otio.schema.Track("DX", kind=otio.schema.TrackKind.Audio)
    tr.append(otio.schema.Clip("long", media_reference=otio.schema.ExternalReference(str(tmp_path / "short.wav")),
                               source_range=TR(RT(12, 24), RT(48, 24))))
    tr.append(otio.schema.Clip("fine", media_reference=otio.schema.ExternalReference(str(tmp_path / "short.wav")),
                               source_range=TR(RT(0, 24), RT(12, 24))))
    tl.tracks.append(tr)
    desc = describe_timeline(tl)
    long_clip, fine_clip = desc.clips
    assert any("does not hold the clip's source range" in p for p in long_clip.media.problems)
    assert not fine_clip.media.problems and fine_clip.media.exists
    # extraction still renders both: the missing tail is silence, not an error
    (track,) = extract_dialogue(desc)
    assert track.signal.shape[0] == int(round(Fraction(60, 24) * SR))


def test_video_media_with_timecode_is_probed_for_origin_and_length(tmp_path):
    """No available range in the timeline: the file's own start timecode and length are used."""
    from s2v_toolkit.media import write_video

    fps = Fraction(25)
    n = 50                                            # 2 s of video, audio click 1.0 s into the file
    audio = np.zeros(2 * 48000, np.float32)
    audio[48000] = 0.9
    video = tmp_path / "take.mov"
    write_video(video, np.zeros((n, 16, 16, 3), np.uint8), fps, preset="h264", audio=audio,
                start_timecode="01:00:00:00")
    h = 90000                                         # 01:00:00:00 at 25 fps
    tl = otio.schema.Timeline("t", global_start_time=RT(h, 25))
    dia = otio.schema.Track("DX", kind=otio.schema.TrackKind.Audio)
    ref = otio.schema.ExternalReference(str(video))
    dia.append(otio.schema.Clip("in_file", media_reference=ref.clone(),
                                source_range=TR(RT(h + 20, 25), RT(10, 25))))       # source 0.8 s .. 1.2 s
    dia.append(otio.schema.Clip("past_end", media_reference=ref.clone(),
                                source_range=TR(RT(h + 40, 25), RT(20, 25))))       # needs frames 40..60 of 50
    tl.tracks.append(dia)
    desc = describe_timeline(tl)
    in_file, past_end = desc.clips
    assert not in_file.media.problems
    assert any("needs 01:00:01.600-01:00:02.400, the file holds 01:00:00.000-01:00:02.000 (it has 50% of that"
               in p for p in past_end.media.problems), past_end.media.problems
    (track,) = extract_dialogue(desc)
    # the extraction says it too (it reads what the file has and silence for the rest)
    assert [p for p in track.problems if "does not hold" in p] == [f"{past_end.id} 'past_end': "
                                                                   + past_end.media.problems[0]]
    peaks = _peaks(track.signal)
    assert len(peaks) == 1 and abs(peaks[0] - int(round(Fraction(1, 5) * SR))) <= 1   # 0.2 s into the cut


def test_fcp7_audio_clip_plays_its_source_channel(tmp_path):
    """Premiere puts channel 1 of a dual-mono file on A1 and channel 2 on A2 (<sourcetrack>)."""
    import soundfile

    stereo = np.zeros((2 * 48000, 2), np.float32)
    stereo[48000, 0] = 0.9                          # boom (left): click at 1.0 s
    stereo[72000, 1] = 0.9                          # lav (right): click at 1.5 s
    soundfile.write(str(tmp_path / "dual.wav"), stereo, 48000, subtype="FLOAT")
    tl = otio.schema.Timeline("dual")
    for name in ("DIA boom", "DIA lav"):
        tr = otio.schema.Track(name, kind=otio.schema.TrackKind.Audio)
        tr.append(otio.schema.Clip(f"dual {name}", media_reference=otio.schema.ExternalReference(
            str(tmp_path / "dual.wav"), available_range=TR(RT(0, 25), RT(50, 25))),
            source_range=TR(RT(0, 25), RT(50, 25))))
        tl.tracks.append(tr)
    xml = tmp_path / "premiere.xml"
    otio.adapters.write_to_file(tl, str(xml))
    text = xml.read_text()
    parts = text.split("</clipitem>")
    assert len(parts) == 3
    text = "".join(part + (f"<sourcetrack><mediatype>audio</mediatype><trackindex>{i + 1}</trackindex>"
                           "</sourcetrack></clipitem>" if i < 2 else "") for i, part in enumerate(parts))
    xml.write_text(text)
    desc = describe_timeline(read_timeline(xml))
    assert [c.source_channel for c in desc.clips] == [0, 1]
    boom, lav = extract_dialogue(desc, ["A1", "A2"])
    assert _peaks(boom.signal) == [pytest.approx(16000, abs=1)]
    assert _peaks(lav.signal) == [pytest.approx(24000, abs=1)]


def test_fcp7_audio_levels_filter_sets_clip_gain(tmp_path):
    kit.write_wav(tmp_path / "a.wav", 2.0, 16000, clicks={0.5: 0.8})
    tl = otio.schema.Timeline("lv")
    tr = otio.schema.Track("DIA", kind=otio.schema.TrackKind.Audio)
    tr.append(otio.schema.Clip("a", media_reference=otio.schema.ExternalReference(
        str(tmp_path / "a.wav"), available_range=TR(RT(0, 25), RT(50, 25))), source_range=TR(RT(0, 25), RT(25, 25))))
    tl.tracks.append(tr)
    xml = tmp_path / "lv.xml"
    otio.adapters.write_to_file(tl, str(xml))
    level = ("<filter><effect><name>Audio Levels</name><effectid>audiolevels</effectid>"
             "<effectcategory>audiolevels</effectcategory><effecttype>audiolevels</effecttype>"
             "<mediatype>audio</mediatype><parameter><parameterid>level</parameterid><name>Level</name>"
             "<value>0.5</value></parameter></effect></filter></clipitem>")
    xml.write_text(xml.read_text().replace("</clipitem>", level, 1))
    desc = describe_timeline(read_timeline(xml))
    assert desc.clips[0].gain_db == pytest.approx(-6.0206, abs=1e-3)
    (track,) = extract_dialogue(desc, ["A1"])     # plain adapter output: no track names
    assert track.signal.max() == pytest.approx(0.4, abs=1e-3)     # 16 kHz file: no resampling
