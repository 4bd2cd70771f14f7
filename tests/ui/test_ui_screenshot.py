"""A screenshot of the whole panel, rendered offscreen: both images, the shot list and the controls."""

from __future__ import annotations

import os
import shutil

from PySide6.QtGui import QImage

from media_factory import decode_stamp
from s2v_toolkit.ui.app import save_screenshot


def test_screenshot_of_the_panel_shows_both_images(manifest, qtbot, tools, tmp_path):
    png = save_screenshot(manifest, tmp_path / "panel.png", job=0, frame=5, size=(1400, 860))
    img = QImage(str(png))
    assert (img.width(), img.height()) == (1400, 860)
    if os.environ.get("S2V_UI_SCREENSHOT"):  # keep a copy to look at (never committed)
        shutil.copy(png, os.environ["S2V_UI_SCREENSHOT"])
    # the saved picture itself holds frame 5 of both files, not just the live widget
    from PySide6.QtWidgets import QApplication

    for w in QApplication.topLevelWidgets():
        if w.__class__.__name__ == "ReviewWindow" and w.isVisible():
            raise AssertionError("save_screenshot left its window open")
    arr = tools.screen_rgb_from_image(img)
    # find the image regions by their frame borders is brittle: decode the stamp along the middle row
    # of each half of the viewer instead, via the window geometry recorded in the PNG's metadata
    rects = {k: [int(x) for x in img.text(f"s2v:{k}").split(",")] for k in ("A", "B")}
    for side, stamp in (("A", tools.SH010_SOURCE_START + 5), ("B", tools.RENDER_STAMP + 5)):
        x, y, w, h = rects[side]
        assert decode_stamp(arr[y: y + h, x: x + w]) == stamp
