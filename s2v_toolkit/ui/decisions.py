"""Decision controls: approve / reject / needs changes, a shot note, notes on frames, re-render with a seed."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton,
    QSpinBox, QWidget,
)

from s2v_toolkit.ui.model import APPROVED, DECISION_LABELS, NEEDS_CHANGES, REJECTED, Decision, FrameNote, ReviewJob

BUTTON_STYLE = {APPROVED: "background:#2f6b3a;color:white;", REJECTED: "background:#7a2b2b;color:white;",
                NEEDS_CHANGES: "background:#7a5a1c;color:white;"}
SHORTCUT_HINT = {APPROVED: "Alt+A", REJECTED: "Alt+R", NEEDS_CHANGES: "Alt+N"}


class DecisionPanel(QWidget):
    decided = Signal(object)           # Decision
    rerenderRequested = Signal(object)  # seed: int | None
    frameNoteJump = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.job: ReviewJob | None = None
        self.frame_notes: list[FrameNote] = []
        self.status_label = QLabel("undecided")
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Decision</b>"))
        for status in (APPROVED, NEEDS_CHANGES, REJECTED):
            b = QPushButton(f"{DECISION_LABELS[status].capitalize()}  ({SHORTCUT_HINT[status]})", self)
            b.setStyleSheet(BUTTON_STYLE[status])
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, s=status: self.decide(s))
            self.buttons[status] = b
            row.addWidget(b)
        row.addWidget(self.status_label, 1)

        self.note = QPlainTextEdit(self)
        self.note.setPlaceholderText("note for this shot (stored with the decision)")
        self.note.setMaximumHeight(54)
        self.frame_note = QLineEdit(self)
        self.frame_note.setPlaceholderText("note on the current frame (kept with the verdict), Enter")
        self.frame_note_list = QListWidget(self)
        self.frame_note_list.setMaximumHeight(54)
        self.frame_note_list.itemActivated.connect(lambda it: self.frameNoteJump.emit(it.data(Qt.ItemDataRole.UserRole)))
        self.frame_note_list.itemClicked.connect(lambda it: self.frameNoteJump.emit(it.data(Qt.ItemDataRole.UserRole)))
        self.current_frame = 0
        self.frame_note.returnPressed.connect(self.add_frame_note)

        self.seed = QSpinBox(self)
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.seed.setValue(-1)
        self.rerender_button = QPushButton("Re-render with seed", self)
        self.rerender_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.rerender_button.clicked.connect(
            lambda: self.rerenderRequested.emit(None if self.seed.value() < 0 else self.seed.value()))

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.addLayout(row, 0, 0, 1, 4)
        grid.addWidget(self.note, 1, 0, 1, 2)
        grid.addWidget(self.frame_note, 1, 2, 1, 2)
        grid.addWidget(self.frame_note_list, 2, 2, 1, 2)
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("seed"))
        seed_row.addWidget(self.seed)
        seed_row.addWidget(self.rerender_button)
        seed_row.addStretch(1)
        grid.addLayout(seed_row, 2, 0, 1, 2)
        self.set_job(None)

    def set_job(self, job: ReviewJob | None) -> None:
        self.job = job
        d = job.decision if job else None
        self.note.setPlainText(d.note if d else "")
        self.frame_notes = [FrameNote(n.frame, n.note) for n in d.frame_notes] if d else []
        self._fill_notes()
        self.status_label.setText(f"<b>{DECISION_LABELS[d.status]}</b>" if d else "undecided")
        for b in self.buttons.values():
            b.setEnabled(job is not None and bool(job.render_path))
        self.rerender_button.setEnabled(job is not None)
        if job is not None and job.seed is not None:
            self.seed.setValue(min(job.seed + 1, 2**31 - 1))

    def _fill_notes(self) -> None:
        self.frame_note_list.clear()
        for n in sorted(self.frame_notes, key=lambda n: n.frame):
            item = QListWidgetItem(f"frame {n.frame}: {n.note}")
            item.setData(Qt.ItemDataRole.UserRole, n.frame)
            self.frame_note_list.addItem(item)

    def add_frame_note(self) -> None:
        text = self.frame_note.text().strip()
        if not text or self.job is None:
            return
        self.frame_notes.append(FrameNote(self.current_frame, text))
        self.frame_note.clear()
        self._fill_notes()
        if self.job.decision:  # a note on a decided shot is stored at once, under the same verdict
            self.decide(self.job.decision.status)

    def decide(self, status: str) -> None:
        if self.job is None or not self.job.render_path:
            return
        decision = Decision(status=status, note=self.note.toPlainText().strip(), frame_notes=list(self.frame_notes))
        self.status_label.setText(f"<b>{DECISION_LABELS[status]}</b>")
        self.decided.emit(decision)
