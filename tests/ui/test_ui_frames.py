"""FrameSource: frame-accurate frames from a worker thread, prefetch in the play direction, bounded cache."""

from __future__ import annotations

import threading

import pytest

from media_factory import decode_stamp
from s2v_toolkit.errors import MediaError
from s2v_toolkit.ui.frames import FrameSource


def eventually(cond, timeout=10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_random_access_returns_the_asked_frames(review_media):
    src = FrameSource(review_media["orig_a"])
    try:
        for i in (0, 37, 5, 47, 6, 20, 19):
            assert decode_stamp(src.wait_frame(i)) == i
    finally:
        src.close()


def test_frame_never_blocks_and_reports_ready_frames(review_media):
    ready: list[int] = []
    got = threading.Event()

    def on_ready(i):
        ready.append(i)
        if i == 30:
            got.set()

    src = FrameSource(review_media["orig_a"], on_ready=on_ready, chunk=4, prefetch=8)
    try:
        assert src.frame(30) is None            # not decoded yet: asks the worker, returns at once
        assert got.wait(10)
        assert decode_stamp(src.frame(30)) == 30
        # without another request, the worker fills the prefetch window ahead of the playhead, no further
        assert eventually(lambda: all(src.cached(i) for i in range(30, 38)))
        assert not src.cached(29) and not src.cached(42)
    finally:
        src.close()


def test_reverse_play_prefetches_backwards(review_media):
    src = FrameSource(review_media["orig_a"], chunk=4, prefetch=8)
    try:
        src.frame(40, direction=-1)
        assert eventually(lambda: all(src.cached(i) for i in range(33, 41)))
        assert not src.cached(41) and not src.cached(30)
    finally:
        src.close()


def test_cache_is_bounded(review_media):
    w, h = 256, 144
    src = FrameSource(review_media["orig_a"], cache_bytes=w * h * 3 * 10, chunk=4, prefetch=4)
    try:
        for i in range(0, 48, 4):
            src.wait_frame(i)
        assert sum(src.cached(i) for i in range(48)) <= src._capacity
        assert src.cached(44)
    finally:
        src.close()


def test_unreadable_file_is_a_media_error(review_media):
    with pytest.raises(MediaError):
        FrameSource(review_media["corrupt"])


def test_media_checker_probes_each_file_once_and_reports_every_job(review_media, tools, monkeypatch):
    import s2v_toolkit.ui.media_check as mc

    calls: list[str] = []
    real_probe = mc.probe
    monkeypatch.setattr(mc, "probe", lambda p: calls.append(str(p)) or real_probe(p))
    jobs = tools.fixture_jobs(review_media)
    results: dict = {}
    done = threading.Event()

    def on_result(job_id, found):
        results[job_id] = found
        if len(results) == len(jobs):
            done.set()

    checker = mc.MediaChecker(jobs, on_result)
    assert done.wait(20)
    checker.join(5)
    assert sorted(calls) == sorted(set(calls))            # originals shared by several jobs: probed once
    assert str(review_media["orig_a"]) in calls
    assert results["j-sh010"].problems == [] and set(results["j-sh010"].infos) == {"source", "render", "mask"}
    assert results["j-sh010"].sidecar["seed"] == 42
    assert results["j-sh030"].problems == [] and set(results["j-sh030"].infos) == {"source"}   # queued: no render yet
    assert any("render missing" in p for p in results["j-sh040"].problems)
    assert any("render unreadable" in p for p in results["j-sh050"].problems)
    assert all(j.problems == [] for j in jobs)             # the UI's jobs are not touched from the thread


def test_rotated_phone_footage_is_shown_upright(tmp_path):
    """Stored sideways with a display matrix (phone portrait video): the panel shows what a player shows."""
    import av
    import numpy as np

    upright = [np.zeros((64, 48, 3), np.uint8) for _ in range(3)]
    for k, f in enumerate(upright):
        f[:8, :, 0] = 255        # a red band along the top edge, as shown
        f[:, :4 * (k + 1), 1] = 255
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv444p"
        s.set_display_rotation(90)  # players turn the stored frame 90 degrees counter-clockwise
        for f in upright:
            stored = np.ascontiguousarray(np.rot90(f, -1))
            for p in s.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    src = FrameSource(path)
    try:
        assert src.rotation == 90 and src.size == (48, 64)
        for k in (2, 0, 1):
            shown = src.wait_frame(k)
            assert shown.shape == (64, 48, 3)
            assert np.abs(shown.astype(int) - upright[k]).max() <= 3, f"frame {k} is not shown upright"
    finally:
        src.close()
