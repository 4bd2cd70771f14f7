"""The image area: original (A) and render (B) side by side, A/B flip, or a wipe; optional mask overlay."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SIDE_BY_SIDE = "side_by_side"
FLIP = "ab"
WIPE = "wipe"
MODES = (SIDE_BY_SIDE, FLIP, WIPE)
MODE_LABELS = {SIDE_BY_SIDE: "Side by side", FLIP: "A/B", WIPE: "Wipe"}

HEADER = 24          # label strip above the images (kept off the pixels)
GAP = 6
BACKGROUND = QColor(24, 24, 26)
A_COLOR = QColor(90, 170, 255)
B_COLOR = QColor(255, 170, 60)
MASK_COLOR = (255, 40, 90)
MASK_ALPHA = 0.45


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the pixels


def mask_to_qimage(mask_rgb: np.ndarray) -> QImage:
    """A tinted, half-transparent overlay: white in the mask = regenerated region."""
    h, w = mask_rgb.shape[:2]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = MASK_COLOR
    rgba[..., 3] = (mask_rgb.mean(axis=2) * MASK_ALPHA).astype(np.uint8)
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


class CompareView(QWidget):
    wipeMoved = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(480, 220)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.mode = SIDE_BY_SIDE
        self.show_b = True           # in A/B mode: which image is up
        self.wipe = 0.5              # wipe position, 0..1 of the image width (A left, B right)
        self.mask_overlay = False
        self.images: dict[str, QImage | None] = {"A": None, "B": None}
        self.mask: QImage | None = None
        self.labels: dict[str, str] = {"A": "A  original", "B": "B  render"}
        self.messages: dict[str, str] = {"A": "", "B": ""}   # shown instead of a missing image
        self.aspect = 16 / 9
        self.shown_index: dict[str, int | None] = {"A": None, "B": None}  # file frame index on screen

    # -- state ------------------------------------------------------------------------------------
    def set_image(self, side: str, rgb: np.ndarray | None, index: int | None) -> None:
        self.images[side] = rgb_to_qimage(rgb) if rgb is not None else None
        self.shown_index[side] = index if rgb is not None else None
        if rgb is not None:
            self.aspect = rgb.shape[1] / rgb.shape[0]
        self.update()

    def set_mask(self, mask_rgb: np.ndarray | None) -> None:
        self.mask = mask_to_qimage(mask_rgb) if mask_rgb is not None else None
        self.update()

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.update()

    def set_wipe(self, fraction: float) -> None:
        self.wipe = min(1.0, max(0.0, fraction))
        self.wipeMoved.emit(self.wipe)
        self.update()

    def visible_sides(self) -> list[str]:
        if self.mode == SIDE_BY_SIDE:
            return ["A", "B"]
        if self.mode == FLIP:
            return ["B" if self.show_b else "A"]
        return ["A", "B"]

    # -- geometry ---------------------------------------------------------------------------------
    def _fit(self, area: QRect) -> QRect:
        w, h = area.width(), area.height()
        if w <= 0 or h <= 0:
            return QRect(area.topLeft(), area.topLeft())
        if w / h > self.aspect:
            fw, fh = round(h * self.aspect), h
        else:
            fw, fh = w, round(w / self.aspect)
        return QRect(area.x() + (w - fw) // 2, area.y() + (h - fh) // 2, fw, fh)

    def image_rects(self) -> dict[str, QRect]:
        """Where each side's image is drawn (widget coordinates). In wipe mode both share one rect."""
        area = self.rect().adjusted(GAP, HEADER, -GAP, -GAP)
        if self.mode == SIDE_BY_SIDE:
            half = (area.width() - GAP) // 2
            left = QRect(area.x(), area.y(), half, area.height())
            right = QRect(area.x() + half + GAP, area.y(), half, area.height())
            return {"A": self._fit(left), "B": self._fit(right)}
        r = self._fit(area)
        if self.mode == FLIP:
            return {("B" if self.show_b else "A"): r}
        return {"A": r, "B": r}

    def wipe_x(self) -> int:
        r = self.image_rects()["A"] if self.mode == WIPE else self.rect()
        return r.x() + round(self.wipe * r.width())

    # -- painting ---------------------------------------------------------------------------------
    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        rects = self.image_rects()
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        p.setFont(font)
        if self.mode == WIPE:
            r = rects["A"]
            x = self.wipe_x()
            self._draw_side(p, "A", r, clip=QRect(r.x(), r.y(), x - r.x(), r.height()))
            self._draw_side(p, "B", r, clip=QRect(x, r.y(), r.right() - x + 1, r.height()))
            p.setPen(QPen(QColor(255, 255, 255), 2))
            p.drawLine(x, r.top(), x, r.bottom())
            p.setBrush(QColor(255, 255, 255))
            p.drawEllipse(QPointF(x, r.center().y()), 5, 5)
            self._draw_label(p, "A", QRect(r.x(), r.y() - HEADER, r.width() // 2, HEADER), Qt.AlignmentFlag.AlignLeft)
            self._draw_label(p, "B", QRect(r.x(), r.y() - HEADER, r.width(), HEADER), Qt.AlignmentFlag.AlignRight)
        else:
            for side, r in rects.items():
                self._draw_side(p, side, r)
                self._draw_label(p, side, QRect(r.x(), r.y() - HEADER, r.width(), HEADER), Qt.AlignmentFlag.AlignLeft)
        p.end()

    def _draw_side(self, p: QPainter, side: str, r: QRect, clip: QRect | None = None) -> None:
        p.save()
        if clip is not None:
            p.setClipRect(clip)
        img = self.images[side]
        if img is not None:
            p.drawImage(QRectF(r), img)
            if side == "B" and self.mask_overlay and self.mask is not None:
                p.drawImage(QRectF(r), self.mask)
        else:
            p.fillRect(r, QColor(40, 40, 44))
            p.setPen(QColor(200, 90, 90) if self.messages[side] else QColor(150, 150, 150))
            p.drawText(r.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.messages[side] or "decoding…")
        color = A_COLOR if side == "A" else B_COLOR
        p.setPen(QPen(color, 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r.adjusted(0, 0, -1, -1))
        p.restore()

    def _draw_label(self, p: QPainter, side: str, r: QRect, align) -> None:
        p.setPen(A_COLOR if side == "A" else B_COLOR)
        p.drawText(r.adjusted(2, 0, -2, -4), align | Qt.AlignmentFlag.AlignBottom, self.labels[side])

    # -- wipe dragging ----------------------------------------------------------------------------
    def _wipe_from_mouse(self, x: float) -> None:
        r = self.image_rects()["A"]
        if r.width() > 0:
            self.set_wipe((x - r.x()) / r.width())

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self.mode == WIPE and event.button() == Qt.MouseButton.LeftButton:
            self._wipe_from_mouse(event.position().x())
        self.setFocus()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self.mode == WIPE and event.buttons() & Qt.MouseButton.LeftButton:
            self._wipe_from_mouse(event.position().x())
