from fractions import Fraction

import pytest

from s2v_toolkit.media import frames_to_timecode, snap_rate, timecode_to_frames

NTSC30 = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)


@pytest.mark.parametrize("frames, tc", [
    (0, "00:00:00;00"),
    (1799, "00:00:59;29"),
    (1800, "00:01:00;02"),   # ;00 and ;01 are skipped at minute 1
    (17981, "00:09:59;29"),
    (17982, "00:10:00;00"),  # every tenth minute keeps all labels
    (107892, "01:00:00;00"),  # one hour of 29.97 DF is 107892 frames
])
def test_drop_frame_known_values(frames, tc):
    assert frames_to_timecode(frames, NTSC30) == tc
    assert timecode_to_frames(tc, NTSC30) == frames


@pytest.mark.parametrize("fps, drop", [
    (Fraction(24000, 1001), False), (Fraction(25), False), (NTSC30, True), (NTSC30, False), (NTSC60, True),
])
def test_timecode_round_trip_every_frame_over_two_hours_sampled(fps, drop):
    for frames in list(range(0, 40000)) + list(range(200000, 432000, 997)):
        tc = frames_to_timecode(frames, fps, drop_frame=drop)
        assert timecode_to_frames(tc, fps) == frames, tc


def test_drop_frame_labels_that_do_not_exist_are_rejected():
    with pytest.raises(ValueError, match="does not exist"):
        timecode_to_frames("00:01:00;00", NTSC30)
    assert timecode_to_frames("00:10:00;00", NTSC30) == 17982


def test_non_drop_ntsc_counts_labels_plainly():
    assert timecode_to_frames("01:00:00:00", NTSC30) == 108000
    assert frames_to_timecode(108000, NTSC30, drop_frame=False) == "01:00:00:00"


def test_drop_frame_at_pal_rate_is_an_error():
    with pytest.raises(ValueError):
        timecode_to_frames("00:00:10;00", Fraction(25))
    with pytest.raises(ValueError):
        frames_to_timecode(10, Fraction(25), drop_frame=True)


def test_snap_rate_to_exact_rationals():
    assert snap_rate(23.976023976) == Fraction(24000, 1001)
    assert snap_rate(29.97) == NTSC30
    assert snap_rate(Fraction(2997, 100)) == NTSC30
    assert snap_rate(25.0) == 25
    assert snap_rate(Fraction(12345, 1000)) == Fraction(12345, 1000)  # unusual rates are kept, not forced


def test_drop_frame_at_119_88_skips_eight_labels_per_minute_except_every_tenth():
    ntsc120 = Fraction(120000, 1001)
    # 119.88 DF drops labels ;00-;07 at every minute not divisible by ten (as 29.97 drops ;00-;01)
    assert frames_to_timecode(120 * 60, ntsc120, drop_frame=True) == "00:01:00;08"  # minute 0 keeps all
    assert frames_to_timecode(120 * 60 - 1, ntsc120, drop_frame=True) == "00:00:59;119"
    ten_minutes = 120 * 600 - 8 * 9
    assert frames_to_timecode(ten_minutes, ntsc120, drop_frame=True) == "00:10:00;00"
    for frames in (0, 7199, 7200, ten_minutes - 1, ten_minutes, 431_568, 10_000_000):
        tc = frames_to_timecode(frames, ntsc120, drop_frame=True)
        assert timecode_to_frames(tc, ntsc120) == frames
