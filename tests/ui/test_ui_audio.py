"""Playback with sound: the picture follows the audio clock. Skipped where there is no audio output."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt


@pytest.fixture
def audio_window(qtbot, manifest, monkeypatch, tools):
    monkeypatch.setenv("S2V_REVIEW_AUDIO", "1")
    from PySide6.QtMultimedia import QMediaDevices

    if not QMediaDevices.audioOutputs():
        pytest.skip("no audio output device (a PulseAudio null sink is enough)")
    from s2v_toolkit.ui import ReviewFileStore
    from s2v_toolkit.ui.window import ReviewWindow

    w = ReviewWindow(ReviewFileStore(manifest))
    qtbot.addWidget(w)
    w.show()
    tools.wait_shown(qtbot, w)
    yield w
    w.close()


def test_picture_follows_the_line_audio(qtbot, audio_window, tools):
    v = audio_window.viewer
    assert v.audio.available and v.audio.path.endswith("SH010_v001.mp4")
    qtbot.keyClick(v.view, Qt.Key.Key_Space)
    # wait until the sound runs (devices take a moment to start), then the playhead is where the sound is
    qtbot.waitUntil(lambda: (v.audio.shot_seconds() or 0) > 0.2, timeout=8000)
    for _ in range(5):
        qtbot.wait(60)
        heard = v.audio.shot_seconds()
        if heard is None or v.frame >= v.count - 2:
            break
        assert abs(v.frame - heard * float(tools.FPS)) <= 2.5
    qtbot.keyClick(v.view, Qt.Key.Key_Space)
    assert not v.playing and v.audio.shot_seconds() is None
