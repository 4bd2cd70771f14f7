"""The new line's audio during playback (QtMultimedia, from PySide6-Addons; optional).

Video keeps its own clock (the panel's playhead); audio is started at the playhead's time when play
starts, re-seeked on loops and jumps, and muted for reverse or very fast shuttle. Without
QtMultimedia or without an audio output (CI, offscreen), playback runs silently.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QUrl

try:  # PySide6-Addons
    from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
except ImportError:  # pragma: no cover - Essentials only
    QMediaPlayer = None

MAX_AUDIBLE_RATE = 2.0


class LineAudio(QObject):
    """Plays one audio file in step with the viewer."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.path: str | None = None
        self.offset_s = 0.0          # file time of the shot's frame 0
        self._player = None
        self.reason = ""
        if QMediaPlayer is None:
            self.reason = "no QtMultimedia (pip install PySide6-Addons)"
        elif os.environ.get("QT_QPA_PLATFORM") == "offscreen" or not QMediaDevices.audioOutputs():
            self.reason = "no audio output device"
        else:
            self._player = QMediaPlayer(self)
            self._output = QAudioOutput(self)
            self._player.setAudioOutput(self._output)

    @property
    def available(self) -> bool:
        return self._player is not None

    def set_source(self, path: str | None, offset_s: float = 0.0) -> None:
        self.path, self.offset_s = path, offset_s
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl.fromLocalFile(path) if path else QUrl())

    def start(self, shot_seconds: float, rate: float = 1.0) -> None:
        if self._player is None or not self.path:
            return
        if rate <= 0 or rate > MAX_AUDIBLE_RATE:
            self._player.pause()
            return
        self._player.setPlaybackRate(rate)
        self._player.setPosition(max(0, round((self.offset_s + shot_seconds) * 1000)))
        self._player.play()

    def stop(self) -> None:
        if self._player is not None:
            self._player.pause()

    def set_volume(self, volume: float) -> None:
        if self._player is not None:
            self._output.setVolume(volume)
