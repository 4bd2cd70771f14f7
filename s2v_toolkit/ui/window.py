"""The review window: shot list | viewer + decisions, keyboard-driven, on any :class:`ReviewStore`."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMainWindow,
    QPlainTextEdit, QPushButton, QSplitter, QTableView, QTextEdit, QVBoxLayout, QWidget,
)

from s2v_toolkit.errors import S2VError
from s2v_toolkit.media import MediaInfo
from s2v_toolkit.ui.decisions import DecisionPanel
from s2v_toolkit.ui.media_check import JobMedia, MediaChecker, ProbeCache, inspect_job
from s2v_toolkit.ui.model import APPROVED, NEEDS_CHANGES, REJECTED, Decision, ReviewJob, ReviewStore
from s2v_toolkit.ui.shot_list import ShotListPanel
from s2v_toolkit.ui.viewer import ViewerPanel

KEY_HELP = ("Space play/pause · J/K/L shuttle · ←/→ step (Shift ×10) · Home/End · I/O loop, U clear · "
            "1 side by side · 2 A/B · 3 wipe · T flip A/B · [ ] move wipe · M mask · "
            "PgUp/PgDn shot · Alt+A approve · Alt+N needs changes · Alt+R reject")

DARK_STYLE = """
QWidget { background: #2b2b2f; color: #e0e0e0; }
QTableView { background: #232327; alternate-background-color: #29292e; gridline-color: #3a3a40;
             selection-background-color: #3d5a80; }
QHeaderView::section { background: #34343a; color: #d0d0d0; border: 0; padding: 3px; }
QLineEdit, QPlainTextEdit, QTextBrowser, QComboBox, QSpinBox { background: #1f1f23; border: 1px solid #44444a; }
QPushButton, QToolButton { background: #3a3a42; border: 1px solid #50505a; padding: 3px 8px; }
QToolButton:checked { background: #3d5a80; }
"""


class _CheckBridge(QObject):
    checked = Signal(int, str, object)   # generation, job id, JobMedia (from the checker thread)


class ReviewWindow(QMainWindow):
    def __init__(self, store: ReviewStore, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.jobs: list[ReviewJob] = []
        self.media: dict[str, dict[str, MediaInfo]] = {}   # checked jobs: probed media by role
        self._checker: MediaChecker | None = None
        self._check_generation = 0
        self._probe_cache = ProbeCache()
        self._check_bridge = _CheckBridge(self)
        self._check_bridge.checked.connect(self._on_checked)
        self.last_conform: dict | None = None
        self.setWindowTitle(f"s2v review: {store.title}")
        self.setStyleSheet(DARK_STYLE)
        self.resize(1500, 900)

        self.shots = ShotListPanel(self)
        self.viewer = ViewerPanel(self)
        self.decisions = DecisionPanel(self)
        self.shots.jobSelected.connect(self._show_job)
        self.decisions.decided.connect(self._store_decision)
        self.decisions.rerenderRequested.connect(self.queue_rerender)
        self.decisions.frameNoteJump.connect(self.viewer.seek)
        self.viewer.frameChanged.connect(self._frame_changed)

        self.conform_button = QPushButton("Conform approved…", self)
        self.conform_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.conform_button.clicked.connect(lambda: self.conform_approved())
        reload_button = QPushButton("Reload", self)
        reload_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        reload_button.clicked.connect(self.reload)
        self.summary = QLabel("")
        top = QHBoxLayout()
        top.addWidget(QLabel(f"<b>{store.title}</b>"))
        top.addWidget(self.summary, 1)
        top.addWidget(reload_button)
        top.addWidget(self.conform_button)

        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.viewer, 1)
        rl.addWidget(self.decisions)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.shots)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([640, 860])

        central = QWidget(self)
        cl = QVBoxLayout(central)
        cl.setContentsMargins(6, 6, 6, 6)
        cl.addLayout(top)
        cl.addWidget(split, 1)
        help_label = QLabel(KEY_HELP)
        help_label.setStyleSheet("color: #8a8a92;")
        help_label.setWordWrap(True)
        cl.addWidget(help_label)
        self.setCentralWidget(central)

        app = QApplication.instance()
        app.installEventFilter(self)
        self.reload()

    # -- data -------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the jobs again; their media is checked in the background (the shown job at once)."""
        if self._checker is not None:
            self._checker.stop()
        self._check_generation += 1
        self._probe_cache = ProbeCache()   # files may have changed (a render landed)
        self.jobs = self.store.list_jobs()
        self.media = {}
        gen = self._check_generation
        self._checker = MediaChecker(self.jobs, lambda jid, found: self._check_bridge.checked.emit(gen, jid, found),
                                     self._probe_cache)
        self.shots.set_jobs(self.jobs)
        if self.shots.current_job() is None:
            self.shots.select_row(0)
        self._update_summary()

    @property
    def media_checked(self) -> bool:
        return all(j.job_id in self.media for j in self.jobs)

    def _job_by_id(self, job_id: str) -> ReviewJob | None:
        return next((j for j in self.jobs if j.job_id == job_id), None)

    def _apply_check(self, job: ReviewJob, found: JobMedia) -> None:
        found.apply(job)
        self.media[job.job_id] = found.infos
        self.shots.refresh_job(job)
        self._update_summary()

    def _on_checked(self, gen: int, job_id: str, found: JobMedia) -> None:
        job = self._job_by_id(job_id)
        if gen != self._check_generation or job is None or job_id in self.media:
            return
        self._apply_check(job, found)

    def _update_summary(self) -> None:
        n = len(self.jobs)
        if not self.media_checked:
            self.summary.setText(f"{n} jobs · checking media {len(self.media)}/{n}…")
            return
        counts = {s: sum(1 for j in self.jobs if j.decision_status == s) for s in (APPROVED, NEEDS_CHANGES, REJECTED)}
        problems = sum(1 for j in self.jobs if j.problems)
        text = (f"{n} jobs · {counts[APPROVED]} approved · {counts[NEEDS_CHANGES]} needs changes · "
                f"{counts[REJECTED]} rejected")
        if problems:
            text += f" · <span style='color:#ff6b6b'>{problems} with problems</span>"
        self.summary.setText(text)

    def current_job(self) -> ReviewJob | None:
        return self.viewer.job

    def _show_job(self, job: ReviewJob | None) -> None:
        if job is not None and job.job_id not in self.media:
            self._apply_check(job, inspect_job(job, self._probe_cache))   # the one to show: check it now
        self.viewer.set_job(job, self.media.get(job.job_id) if job else None)
        self.decisions.set_job(job)

    def _frame_changed(self, frame: int) -> None:
        self.decisions.current_frame = frame

    # -- actions ----------------------------------------------------------------------------------
    def _store_decision(self, decision: Decision) -> None:
        job = self.viewer.job
        if job is None:
            return
        try:
            self.store.set_decision(job.job_id, decision)
        except S2VError as exc:
            self.statusBar().showMessage(f"decision not stored: {exc}", 10000)
            return
        job.decision = decision
        self.shots.refresh_job(job)
        self.viewer._update_labels()
        self._update_summary()
        self.statusBar().showMessage(f"{job.shot}: {decision.status} stored", 5000)

    def decide(self, status: str) -> None:
        self.decisions.decide(status)

    def queue_rerender(self, seed: int | None = None) -> str | None:
        job = self.viewer.job
        if job is None:
            return None
        try:
            new_id = self.store.queue_rerender(job.job_id, seed)
        except S2VError as exc:
            self.statusBar().showMessage(f"re-render not queued: {exc}", 10000)
            return None
        self.reload()
        self.shots.select_job(job.job_id)
        self.statusBar().showMessage(f"{job.shot}: queued {new_id}", 8000)
        return new_id

    def conform_approved(self, out_dir: str | Path | None = None) -> dict | None:
        if out_dir is None:
            out_dir = QFileDialog.getExistingDirectory(self, "Write the conformed timeline into…")
            if not out_dir:
                return None
        try:
            result = self.store.conform_approved(out_dir)
        except S2VError as exc:
            self.statusBar().showMessage(f"conform failed: {exc}", 15000)
            return None
        self.last_conform = result
        outs = ", ".join(result.get("outputs", {}).values())
        self.statusBar().showMessage(f"conformed {len(result.get('placed', []))} approved render(s): {outs}", 15000)
        return result

    # -- keys -------------------------------------------------------------------------------------
    def _typing_into(self, widget) -> bool:
        if isinstance(widget, (QLineEdit, QAbstractSpinBox, QPlainTextEdit)):
            return True
        if isinstance(widget, QTextEdit):
            return not widget.isReadOnly()
        return isinstance(widget, QComboBox) and widget.isEditable()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.KeyPress or not isinstance(obj, QWidget):
            return False
        if obj is not self and not self.isAncestorOf(obj):
            return False
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if not alt and (self._typing_into(QApplication.focusWidget()) or self._typing_into(obj)):
            return False  # typing a note or a search; Alt+A/N/R still decide (they type nothing)
        return self.handle_key(event)

    def handle_key(self, event: QKeyEvent) -> bool:
        key, mods = event.key(), event.modifiers()
        K = Qt.Key
        if mods & Qt.KeyboardModifier.AltModifier:
            status = {K.Key_A: APPROVED, K.Key_R: REJECTED, K.Key_N: NEEDS_CHANGES}.get(key)
            if status:
                self.decide(status)
                return True
            return False
        if mods & Qt.KeyboardModifier.ControlModifier:
            return False
        if key in (K.Key_PageDown, K.Key_PageUp):
            self.shots.move(1 if key == K.Key_PageDown else -1)
            return True
        if key in (K.Key_Up, K.Key_Down) and not isinstance(QApplication.focusWidget(), QTableView):
            self.shots.move(1 if key == K.Key_Down else -1)
            return True
        return self.viewer.handle_key(key, mods)

    def closeEvent(self, event) -> None:  # noqa: N802
        QApplication.instance().removeEventFilter(self)
        if self._checker is not None:
            self._checker.stop()
        self.viewer.close_sources()
        super().closeEvent(event)
