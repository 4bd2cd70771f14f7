"""A cut whose sound starts an hour in (a Pro Tools session placed at 01:00:00:00 exports an AAF whose clips
start an hour into the composition): the planner analyses the stretch that holds sound, not the hour of
silence before it (230 MB at 16 kHz, all of it diarized), and a dialogue track found by measured speech is
measured over that stretch too (counted with the silence, no track reached the speech threshold)."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio

from jobs_helpers import copy_demo, demo_project

HOUR = 3600


def _hour_later(tmp_path):
    """The demo scene with an hour's gap before every track, its dialogue track named as nothing says."""
    root = copy_demo(tmp_path)
    tl = otio.adapters.read_from_file(str(root / "scene.otio"))
    rate = tl.find_clips()[0].source_range.duration.rate
    for track in tl.tracks:
        track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(HOUR * rate, rate))))
        if track.kind == otio.schema.TrackKind.Audio:
            track.name = "Audio 1"
    path = root / "scene_later.otio"
    otio.adapters.write_to_file(tl, str(path))
    return root, path


def test_measured_dialogue_track_is_found_after_an_hour_of_silence(tmp_path):
    from s2v_toolkit.timeline import choose_dialogue_tracks, describe_timeline, read_timeline

    _, path = _hour_later(tmp_path)
    desc = describe_timeline(read_timeline(path))
    (track,) = choose_dialogue_tracks(desc)
    assert track.name == "Audio 1" and track.dialogue_reason.startswith("measured speech ratio")


def test_plan_diarizes_only_the_stretch_with_sound_and_places_lines_in_record_time(tmp_path, monkeypatch):
    import s2v_toolkit.jobs.planner as planner
    from s2v_toolkit.jobs import build_plan

    root, path = _hour_later(tmp_path)
    seen = []
    real = planner._diarize_track

    def spy(signal, *a, **k):
        seen.append(len(signal))
        return real(signal, *a, **k)

    monkeypatch.setattr(planner, "_diarize_track", spy)
    plan = build_plan(path, root / "cast.yaml", face_check=False, dialogue_tracks=["A1"])
    proj = demo_project()
    assert len(seen) == 1 and seen[0] < 40 * 16000   # the ~20 s scene (from a 16 s grid), not an hour and more
    fps = Fraction(proj["fps"])
    offset = int(HOUR * fps)
    assert [ln.character for ln in plan.lines] == [ln["character"] for ln in proj["lines"]]
    for ln, ref in zip(plan.lines, proj["lines"]):   # where the speech is, an hour later (as in test_jobs_plan)
        assert ref["record_frame"] + offset - 1 <= ln.record_in <= ref["record_frame"] + offset + 24
    assert {j.action for j in plan.jobs if j.clip_name == "SH010"} == {"redub"}


def test_the_stretch_gives_the_lines_of_the_whole_track(tmp_path, monkeypatch):
    """Analysed from the first sound (on the 16 s grid) to the timeline's end, the lines are exactly those of
    the whole track: the analysis grid and the signal's end are the whole track's."""
    import s2v_toolkit.jobs.planner as planner
    import s2v_toolkit.timeline as timeline
    from s2v_toolkit.jobs import build_plan

    root, path = _hour_later(tmp_path)
    seen = []
    real = planner._diarize_track
    monkeypatch.setattr(planner, "_diarize_track", lambda signal, *a, **k: seen.append(len(signal)) or
                        real(signal, *a, **k))

    def lines():
        plan = build_plan(path, root / "cast.yaml", face_check=False, dialogue_tracks=["A1"])
        return [(ln.record_in, ln.record_out, ln.character) for ln in plan.lines]

    now = lines()
    monkeypatch.setattr(timeline, "diarization_window", lambda *a, **k: None)   # the whole track, as before
    assert lines() == now
    assert seen[0] < 40 * 16000 < HOUR * 16000 < seen[1]   # the stretch, then the whole track
