"""The new line's audio during playback (QtMultimedia, from PySide6-Addons; optional).

While audio plays it is the master clock: the viewer asks :meth:`LineAudio.shot_seconds` and follows
it (an audio device can take a moment to start; the picture waits for the sound rather than running
ahead). Audio is started at the playhead when play starts, re-seeked on loops and jumps, and muted for
reverse or fast shuttle, where the picture runs on its own clock. Without QtMultimedia or an audio
output (CI, offscreen), playback is silent and the picture runs on the wall clock.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QUrl

try:  # PySide6-Addons
    from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer
except ImportError:  # pragma: no cover - Essentials only
    QMediaPlayer = None

MAX_AUDIBLE_RATE = 2.0
FORCE_ENV = "S2V_REVIEW_AUDIO"   # "1": use audio even offscreen (tests with a null sink); "0": never


class LineAudio(QObject):
    """Plays one audio file in step with the viewer."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.path: str | None = None
        self.offset_s = 0.0          # file time of the shot's frame 0
        self._player = None
        self._pending: tuple[float, float] | None = None   # (file seconds, rate) to start once loaded
        self._running = False
        self.reason = ""
        force = os.environ.get(FORCE_ENV)
        if QMediaPlayer is None:
            self.reason = "no QtMultimedia (pip install PySide6-Addons)"
        elif force == "0" or (force != "1" and os.environ.get("QT_QPA_PLATFORM") == "offscreen"):
            self.reason = "disabled offscreen" if force != "0" else f"disabled ({FORCE_ENV}=0)"
        elif not QMediaDevices.audioOutputs():
            self.reason = "no audio output device"
        else:
            self._player = QMediaPlayer(self)
            self._output = QAudioOutput(self)
            self._player.setAudioOutput(self._output)
            self._player.mediaStatusChanged.connect(self._status_changed)

    @property
    def available(self) -> bool:
        return self._player is not None

    def set_source(self, path: str | None, offset_s: float = 0.0) -> None:
        self.path, self.offset_s = path, offset_s
        self._pending = None
        self._running = False
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl.fromLocalFile(path) if path else QUrl())

    def _loaded(self) -> bool:
        S = QMediaPlayer.MediaStatus
        return self._player.mediaStatus() in (S.LoadedMedia, S.BufferedMedia, S.BufferingMedia, S.EndOfMedia)

    def _status_changed(self, status) -> None:
        S = QMediaPlayer.MediaStatus
        if status == S.LoadedMedia:
            self._player.setActiveVideoTrack(-1)   # sound only: the viewer decodes the picture itself
        if self._pending is not None and self._loaded():
            seconds, rate = self._pending
            self._pending = None
            self._go(seconds, rate)
        if status in (S.InvalidMedia, S.NoMedia):
            self._running = False

    def _go(self, file_seconds: float, rate: float) -> None:
        self._player.setPlaybackRate(rate)
        self._player.setPosition(max(0, round(file_seconds * 1000)))
        self._player.play()
        self._running = True

    def start(self, shot_seconds: float, rate: float = 1.0) -> None:
        """Play from the shot time ``shot_seconds`` at ``rate`` (silent for reverse or fast shuttle)."""
        self._running = False
        if self._player is None or not self.path:
            return
        if rate <= 0 or rate > MAX_AUDIBLE_RATE:
            self._player.pause()
            return
        seconds = self.offset_s + shot_seconds
        if self._loaded():
            self._go(seconds, rate)
        else:
            self._pending = (seconds, rate)  # setPosition before the media is loaded is ignored

    def stop(self) -> None:
        self._pending = None
        self._running = False
        if self._player is not None:
            self._player.pause()

    def shot_seconds(self) -> float | None:
        """Where the sound is, in shot time, while it plays (None when audio is not the clock)."""
        if not self._running or self._player is None:
            return None
        if self._player.playbackState() != QMediaPlayer.PlaybackState.PlayingState:
            return None
        return self._player.position() / 1000.0 - self.offset_s

    def set_volume(self, volume: float) -> None:
        if self._player is not None:
            self._output.setVolume(volume)
