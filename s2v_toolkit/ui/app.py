"""Open a plan (or review manifest) and run the panel."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from s2v_toolkit.ui.file_store import ReviewFileStore, is_review_manifest
from s2v_toolkit.ui.model import ReviewError, ReviewStore


def open_store(path: str | os.PathLike) -> ReviewStore:
    """A review manifest opens as a :class:`ReviewFileStore`; a RenderPlan opens through the job store."""
    path = Path(path)
    if not path.exists():
        raise ReviewError(f"{path}: plan not found")
    if is_review_manifest(path):
        return ReviewFileStore(path)
    from s2v_toolkit.ui.jobs_adapter import open_plan_store

    return open_plan_store(path)


def run_review(path: str | os.PathLike, argv: list[str] | None = None) -> int:
    """Open the panel on ``path`` and run Qt's event loop until the window closes."""
    store = open_store(path)
    from PySide6.QtWidgets import QApplication

    from s2v_toolkit.ui.window import ReviewWindow

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("s2v review")
    window = ReviewWindow(store)
    window.show()
    try:
        return app.exec()
    finally:
        if hasattr(store, "close"):
            store.close()


def wait_for_frames(window, timeout_s: float = 10.0) -> bool:
    """Process events until the viewer shows the playhead's frames on every side that has media."""
    import time

    from PySide6.QtWidgets import QApplication

    viewer = window.viewer
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QApplication.processEvents()
        sides = [s for s in ("A", "B") if viewer.sources[s] is not None and viewer.sources[s].error is None]
        if window.media_checked and all(viewer.view.shown_index[s] == viewer.file_index(s) for s in sides):
            return True
        time.sleep(0.005)
    return False


def save_screenshot(path: str | os.PathLike, png: str | os.PathLike, *, job: int = 0, frame: int | None = None,
                    size: tuple[int, int] = (1500, 900)) -> Path:
    """Open the panel on ``path`` (offscreen when there is no display), show one frame, save a PNG."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    store = open_store(path)
    from PySide6.QtWidgets import QApplication

    from s2v_toolkit.ui.window import ReviewWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 - must outlive the window
    window = ReviewWindow(store)
    window.resize(*size)
    window.show()
    window.shots.select_row(job)
    if frame is None:
        frame = window.viewer.count // 2
    window.viewer.seek(frame)
    wait_for_frames(window)
    out = Path(png)
    image = window.grab().toImage()
    view = window.viewer.view
    for side, r in view.image_rects().items():  # where each image sits, for scripts that check the picture
        top_left = view.mapTo(window, r.topLeft())
        image.setText(f"s2v:{side}", f"{top_left.x()},{top_left.y()},{r.width()},{r.height()}")
    image.setText("s2v:frame", str(window.viewer.frame))
    window.close()
    if hasattr(store, "close"):
        store.close()
    if not image.save(str(out)):
        raise ReviewError(f"{out}: cannot write the screenshot")
    return out
