"""A review fixture built from real files: stamped originals, stamped renders, a mask, a timeline.

Original frame i shows stamp i; render frame k shows stamp RENDER_STAMP + k, so a decoded screen
region tells which file and which frame the panel put there.
"""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("PySide6")

from media_factory import click_track, stamped_frame  # noqa: E402

from s2v_toolkit.media import write_video  # noqa: E402
from s2v_toolkit.ui import ReviewJob, write_manifest  # noqa: E402

FPS = Fraction(24000, 1001)
RENDER_STAMP = 1000
SOURCE_TC = "14:02:10:00"
SH010_SOURCE_START = 10
SH010_FRAMES = 24


def _mask_frame(k: int, w: int = 256, h: int = 144) -> np.ndarray:
    m = np.zeros((h, w, 3), np.uint8)
    m[h // 2 - 20: h // 2 + 20, w // 2 - 40: w // 2 + 40] = 255   # the "mouth" box, centre of the frame
    return m


def _timeline(path, media_a, media_b) -> None:
    import opentimelineio as otio

    rate = float(FPS)
    tl = otio.schema.Timeline(name="REVIEW_FIXTURE",
                              global_start_time=otio.opentime.RationalTime(86400, rate))  # 01:00:00:00
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for name, media, start, count in (("SH010", media_a, SH010_SOURCE_START, SH010_FRAMES), ("SH020", media_b, 0, 20),
                                      ("SH030", media_a, 0, 16)):
        ref = otio.schema.ExternalReference(
            target_url=str(media), available_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(48, rate)))
        track.append(otio.schema.Clip(name=name, media_reference=ref, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(count, rate))))
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(path))


@pytest.fixture(scope="session")
def review_media(tmp_path_factory):
    d = tmp_path_factory.mktemp("review_media")
    orig_a = write_video(d / "A001_orig.mp4", (stamped_frame(i) for i in range(48)), FPS, preset="h264",
                         start_timecode=SOURCE_TC)
    orig_b = write_video(d / "B002_orig.mp4", (stamped_frame(i) for i in range(48)), FPS, preset="h264",
                         start_timecode="09:00:00:00")
    render_a = write_video(d / "SH010_v001.mp4", (stamped_frame(RENDER_STAMP + k) for k in range(SH010_FRAMES)), FPS,
                           preset="h264", audio=click_track(SH010_FRAMES, FPS, 48000), audio_rate=48000)
    render_b = write_video(d / "SH020_v001.mp4", (stamped_frame(RENDER_STAMP + k) for k in range(20)), FPS,
                           preset="h264")
    mask_a = write_video(d / "SH010_v001_mask.mp4", (_mask_frame(k) for k in range(SH010_FRAMES)), FPS, preset="h264")
    corrupt = d / "SH050_v001.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (d / "SH010_v001.json").write_text('{"model": "tiny", "seed": 42, "steps": 4, "cfg": 4.5}', encoding="utf-8")
    _timeline(d / "scene.otio", orig_a, orig_b)
    return {"dir": d, "orig_a": orig_a, "orig_b": orig_b, "render_a": render_a, "render_b": render_b,
            "mask_a": mask_a, "corrupt": corrupt}


def fixture_jobs(m) -> list[ReviewJob]:
    d = m["dir"]
    return [
        ReviewJob("j-sh010", "SH010", "redub", "done", 1, "collins", "Houston, the cabin lights are flickering.",
                  FPS, "01:00:00:00", "01:00:01:00", SH010_FRAMES, str(m["orig_a"]), SH010_SOURCE_START,
                  str(m["render_a"]), 0, mask_path=str(m["mask_a"]), sidecar_path=str(d / "SH010_v001.json"),
                  seed=42),
        ReviewJob("j-sh020", "SH020", "redub", "done", 1, "hopper", "Then read me the numbers slowly.",
                  FPS, "01:00:01:00", "01:00:01:20", 20, str(m["orig_b"]), 0, str(m["render_b"]), 0, seed=7),
        ReviewJob("j-sh030", "SH030", "new_shot", "queued", 1, "collins", None, FPS, "01:00:01:20", "01:00:02:12",
                  16, str(m["orig_a"]), 0, None, 0),
        ReviewJob("j-sh040", "SH040", "redub", "done", 1, "hopper", "A render that went missing.", FPS,
                  "01:00:02:12", "01:00:03:00", 12, str(m["orig_b"]), 0, str(d / "gone" / "SH040_v001.mp4"), 0),
        ReviewJob("j-sh050", "SH050", "redub", "done", 1, "collins", "A corrupt render.", FPS,
                  "01:00:03:00", "01:00:03:12", 12, str(m["orig_a"]), 0, str(m["corrupt"]), 0),
    ]


@pytest.fixture
def manifest(review_media, tmp_path):
    """A fresh review manifest (decisions are written into it) over the shared fixture media."""
    tl = tmp_path / "scene.otio"
    shutil.copy(review_media["dir"] / "scene.otio", tl)
    return write_manifest(tmp_path / "review.json", fixture_jobs(review_media), title="fixture plan",
                          timeline=str(tl))


@pytest.fixture
def window(qtbot, manifest):
    from s2v_toolkit.ui import ReviewFileStore
    from s2v_toolkit.ui.window import ReviewWindow

    w = ReviewWindow(ReviewFileStore(manifest))
    qtbot.addWidget(w)
    w.resize(1400, 860)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.media_checked, timeout=10000)
    wait_shown(qtbot, w)
    yield w
    w.close()


def wait_shown(qtbot, w, timeout=10000) -> None:
    """Until the images on screen are the playhead's frames (decoding runs on worker threads)."""
    v = w.viewer

    def shown():
        for s in ("A", "B"):
            if v.sources[s] is not None and v.sources[s].error is None:
                assert v.view.shown_index[s] == v.file_index(s), (s, v.view.shown_index[s], v.file_index(s))

    qtbot.waitUntil(shown, timeout=timeout)


def screen_rgb(widget) -> np.ndarray:
    """The widget as drawn, as an (H, W, 3) uint8 array."""
    return qimage_rgb(widget.grab().toImage())


def qimage_rgb(img) -> np.ndarray:
    from PySide6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * h).reshape(h, img.bytesPerLine())
    return arr[:, : w * 3].reshape(h, w, 3).copy()


def region(arr: np.ndarray, rect, dpr: float = 1.0) -> np.ndarray:
    x, y, w, h = (round(v * dpr) for v in (rect.x(), rect.y(), rect.width(), rect.height()))
    return arr[y: y + h, x: x + w]


@pytest.fixture
def tools():
    """Helpers for the tests (importlib mode: test modules cannot import this conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(wait_shown=wait_shown, screen_rgb=screen_rgb, screen_rgb_from_image=qimage_rgb, region=region, FPS=FPS,
                           RENDER_STAMP=RENDER_STAMP, SOURCE_TC=SOURCE_TC, SH010_SOURCE_START=SH010_SOURCE_START,
                           SH010_FRAMES=SH010_FRAMES, fixture_jobs=fixture_jobs)
