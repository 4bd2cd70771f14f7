"""Builders for the timeline tests: small cuts made with the OTIO API at any rate, media made here.

Test files load this module with :func:`load` below (tests run with ``--import-mode=importlib``,
so test folders are not on ``sys.path``)."""

from __future__ import annotations

import numpy as np
import opentimelineio as otio
import soundfile

RT = otio.opentime.RationalTime
TR = otio.opentime.TimeRange

# name -> (rate as OTIO holds it, drop-frame display)
RATES = {
    "23.976": (24000 / 1001, False),
    "24": (24.0, False),
    "25": (25.0, False),
    "29.97DF": (30000 / 1001, True),
    "29.97NDF": (30000 / 1001, False),
    "30": (30.0, False),
}
# extension -> adapter the toolkit must pick
FORMATS = {"otio": "otio_json", "xml": "fcp_xml", "fcpxml": "fcpx_xml", "aaf": "AAF", "edl": "cmx_3600"}


def hour(rate: float) -> RT:
    """01:00:00:00 at ``rate`` (timecode counts nominal frames: 24 per second at 23.976)."""
    return RT(3600 * round(rate), rate)


def media_ref(url: str, rate: float, frames: int = 5000, tc_start: bool = True) -> otio.schema.ExternalReference:
    start = hour(rate) if tc_start else RT(0, rate)
    return otio.schema.ExternalReference(target_url=url, available_range=TR(start, RT(frames, rate)))


def build_cut(rate: float, drop: bool = False, single_video: bool = False, audio: bool = True,
              media_dir: str = "/media") -> otio.schema.Timeline:
    """A cut like an editor's: V1 with a gap, a V2 overlay, dialogue + music tracks, a marker.

    Source in-points are odd frame counts so that any float drift in a rate would show.
    """
    tl = otio.schema.Timeline("reel1_cut", global_start_time=hour(rate))
    tl.metadata["s2v_toolkit"] = {"drop_frame": drop}
    v1 = otio.schema.Track("V1", kind=otio.schema.TrackKind.Video)
    tl.tracks.append(v1)
    h = hour(rate).value
    for i, (src_in, dur) in enumerate([(1013, 47), (2207, 61), (3301, 29)]):
        clip = otio.schema.Clip(f"shot{i + 1}", media_reference=media_ref(f"{media_dir}/shot{i + 1}.mov", rate),
                                source_range=TR(RT(h + src_in, rate), RT(dur, rate)))
        v1.append(clip)
        if i == 0:
            v1.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(13, rate))))
    v1[0].markers.append(otio.schema.Marker("note: ADR", TR(RT(h + 1020, rate), RT(1, rate)),
                                            color=otio.schema.MarkerColor.RED))
    if not single_video:
        v2 = otio.schema.Track("V2", kind=otio.schema.TrackKind.Video)
        v2.append(otio.schema.Gap(source_range=TR(RT(0, rate), RT(70, rate))))
        v2.append(otio.schema.Clip("insert", media_reference=media_ref(f"{media_dir}/insert.mov", rate),
                                   source_range=TR(RT(h + 501, rate), RT(17, rate))))
        tl.tracks.append(v2)
    if audio:
        for name, kind in (("DIA 1", "dia"), ("MUSIC", "mx")):
            a = otio.schema.Track(name, kind=otio.schema.TrackKind.Audio)
            for i, (src_in, dur) in enumerate([(1013, 47), (2207, 74)] if kind == "dia" else [(0, 150)]):
                a.append(otio.schema.Clip(f"{kind}{i + 1}",
                                          media_reference=media_ref(f"{media_dir}/{kind}{i + 1}.wav", rate),
                                          source_range=TR(RT(h + src_in, rate), RT(dur, rate))))
            tl.tracks.append(a)
    return tl


def write_with_adapter(tl: otio.schema.Timeline, path) -> None:
    """Write a test timeline as an editor's app would hand it over (not through the toolkit).

    FCPXML at NTSC rates is the exception: otio-fcpx-xml-adapter 1.0 cannot write it, so the
    toolkit's writer makes it (hand-written NTSC FCPXML is read in test_timeline_errors)."""
    if str(path).endswith(".fcpxml") and tl.global_start_time is not None \
            and round(tl.global_start_time.rate) != tl.global_start_time.rate:
        from s2v_toolkit.timeline import write_timeline

        write_timeline(tl, path)
        return
    kwargs = {"use_empty_mob_ids": True} if str(path).endswith(".aaf") else {}
    otio.adapters.write_to_file(tl, str(path), **kwargs)


def write_wav(path, seconds: float, rate: int = 48000, clicks: dict[float, float] | None = None,
              tone: float | None = None) -> np.ndarray:
    """A WAV of ``seconds``: silence (or a quiet tone) with unit clicks at the given times (s -> amplitude)."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    data = (0.05 * np.sin(2 * np.pi * tone * t)).astype(np.float32) if tone else np.zeros(n, np.float32)
    for at, amp in (clicks or {}).items():
        data[int(round(at * rate))] = amp
    soundfile.write(str(path), data, rate, subtype="FLOAT")
    return data


def fcp7_rate(tb: int = 25, ntsc: bool = False) -> str:
    """An FCP 7 XML ``<rate>`` element."""
    return f"<rate><timebase>{tb}</timebase><ntsc>{'TRUE' if ntsc else 'FALSE'}</ntsc></rate>"


def fcp7_file(fid: str, name: str = "a.mov", tc: int = 0, dur: int = 100000, tb: int = 25, ntsc: bool = False) -> str:
    """An FCP 7 XML ``<file>`` element: media ``name`` of ``dur`` frames whose timecode starts at frame ``tc``."""
    return (f'<file id="{fid}"><name>{name}</name><pathurl>file://localhost/m/{name}</pathurl>{fcp7_rate(tb, ntsc)}'
            f"<duration>{dur}</duration><timecode>{fcp7_rate(tb, ntsc)}<frame>{tc}</frame>"
            f"<displayformat>NDF</displayformat></timecode></file>")
