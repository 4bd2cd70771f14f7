"""Timeline bar under the viewer: playhead, I/O loop range, frame-note ticks; click or drag to scrub."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

MARGIN = 8


class ScrubBar(QWidget):
    scrubbed = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.count = 0
        self.frame = 0
        self.loop_in: int | None = None
        self.loop_out: int | None = None
        self.note_frames: list[int] = []
        self.fps = 24.0

    def set_state(self, *, count: int | None = None, frame: int | None = None, loop=(None, None),
                  note_frames: list[int] | None = None, fps: float | None = None) -> None:
        if count is not None:
            self.count = count
        if frame is not None:
            self.frame = frame
        self.loop_in, self.loop_out = loop
        if note_frames is not None:
            self.note_frames = list(note_frames)
        if fps:
            self.fps = fps
        self.update()

    def _track(self) -> QRect:
        return self.rect().adjusted(MARGIN, 6, -MARGIN, -6)

    def x_of(self, frame: int) -> int:
        t = self._track()
        if self.count <= 1:
            return t.x()
        return t.x() + round(frame * (t.width() - 1) / (self.count - 1))

    def frame_at(self, x: float) -> int:
        t = self._track()
        if self.count <= 1 or t.width() <= 1:
            return 0
        return max(0, min(self.count - 1, round((x - t.x()) * (self.count - 1) / (t.width() - 1))))

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 33))
        t = self._track()
        p.fillRect(t, QColor(52, 52, 58))
        if self.count > 0:
            if self.loop_in is not None or self.loop_out is not None:
                a = self.x_of(self.loop_in or 0)
                b = self.x_of(self.loop_out if self.loop_out is not None else self.count - 1)
                p.fillRect(QRect(a, t.y(), max(2, b - a), t.height()), QColor(70, 110, 160))
            step = max(1, round(self.fps))  # a tick each second, taller each 5 s
            p.setPen(QPen(QColor(110, 110, 118), 1))
            for f in range(0, self.count, step):
                h = t.height() // 2 if (f // step) % 5 == 0 else t.height() // 4
                p.drawLine(self.x_of(f), t.bottom() - h, self.x_of(f), t.bottom())
            p.setPen(QPen(QColor(255, 210, 80), 2))
            for f in self.note_frames:
                p.drawLine(self.x_of(f), t.top(), self.x_of(f), t.top() + 6)
            x = self.x_of(self.frame)
            p.setPen(QPen(QColor(255, 70, 70), 2))
            p.drawLine(x, self.rect().top() + 2, x, self.rect().bottom() - 2)
        p.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.count:
            self.scrubbed.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton and self.count:
            self.scrubbed.emit(self.frame_at(event.position().x()))
