"""Shot list: every job with its character, line, action, state, version, decision and record range,
filterable by state, character and decision; plus the current job's details and sidecar settings."""

from __future__ import annotations

import html
import json

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QTableView, QTextBrowser,
    QVBoxLayout, QWidget,
)

from s2v_toolkit.ui.model import DECISION_LABELS, DECISIONS, PROBLEM, ReviewJob

COLUMNS = ("Shot", "Character", "Line", "Action", "State", "Ver", "Decision", "Record in", "Record out")
LINE_WIDTH = 220
ALL = "(all)"
UNDECIDED = "undecided"
STATE_COLORS = {"done": "#7fd17f", "failed": "#ff6b6b", "queued": "#c0c0c0", "running": "#6bb8ff",
                "skipped": "#999999", PROBLEM: "#ff6b6b"}
DECISION_COLORS = {"approved": "#7fd17f", "rejected": "#ff6b6b", "needs_changes": "#ffc14d"}


def refilter(proxy: QSortFilterProxyModel, change) -> None:
    """Apply a filter change (Qt 6.10 replaced invalidateFilter with begin/endFilterChange)."""
    if hasattr(proxy, "beginFilterChange") and hasattr(proxy, "endFilterChange"):
        proxy.beginFilterChange()
        change()
        proxy.endFilterChange()
    else:  # Qt < 6.10
        change()
        proxy.invalidateFilter()


def display_state(job: ReviewJob) -> str:
    return PROBLEM if job.problems else job.state


def compact(value, max_items: int = 6, max_text: int = 160):
    """A readable digest of sidecar JSON: long lists (per-frame reports) shortened, long strings cut."""
    if isinstance(value, dict):
        return {k: compact(v, max_items, max_text) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > max_items:
            return [compact(v, max_items, max_text) for v in value[:2]] + [f"… {len(value) - 2} more"]
        return [compact(v, max_items, max_text) for v in value]
    if isinstance(value, str) and len(value) > max_text:
        return value[: max_text - 1] + "…"
    return value


class ShotTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: list[ReviewJob] = []

    def set_jobs(self, jobs: list[ReviewJob]) -> None:
        self.beginResetModel()
        self.jobs = list(jobs)
        self.endResetModel()

    def job_changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        job = self.jobs[index.row()]
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return {
                "Shot": job.shot, "Character": job.character or "", "Line": job.line_text or "",
                "Action": job.action, "State": display_state(job), "Ver": f"v{job.version:03d}",
                "Decision": DECISION_LABELS.get(job.decision_status, ""),
                "Record in": job.record_in or "", "Record out": job.record_out or "",
            }[col]
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == "State":
                return QBrush(QColor(STATE_COLORS.get(display_state(job), "#dddddd")))
            if col == "Decision" and job.decision_status:
                return QBrush(QColor(DECISION_COLORS[job.decision_status]))
        if role == Qt.ItemDataRole.ToolTipRole:
            if job.problems:
                return "\n".join(job.problems)
            if col == "Line" and job.line_text:
                return job.line_text
            if job.error:
                return job.error
        if role == Qt.ItemDataRole.UserRole:
            return job
        return None


class ShotFilter(QSortFilterProxyModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = ALL
        self.character = ALL
        self.decision = ALL

    def set_filters(self, state: str | None = None, character: str | None = None, decision: str | None = None):
        def change():
            if state is not None:
                self.state = state
            if character is not None:
                self.character = character
            if decision is not None:
                self.decision = decision

        refilter(self, change)

    def filterAcceptsRow(self, row, parent) -> bool:  # noqa: N802
        job: ReviewJob = self.sourceModel().jobs[row]
        if self.state != ALL and display_state(job) != self.state:
            return False
        if self.character != ALL and (job.character or "") != self.character:
            return False
        if self.decision != ALL:
            want = None if self.decision == UNDECIDED else self.decision
            if job.decision_status != want:
                return False
        text = self.filterRegularExpression().pattern()
        if text:
            hay = " ".join(filter(None, (job.shot, job.character, job.line_text, job.job_id))).lower()
            return text.lower() in hay
        return True


class ShotListPanel(QWidget):
    """Filters above the table, the current job's details below."""

    jobSelected = Signal(object)   # ReviewJob | None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ShotTableModel(self)
        self.proxy = ShotFilter(self)
        self.proxy.setSourceModel(self.model)

        self.state_filter = QComboBox(self)
        self.character_filter = QComboBox(self)
        self.decision_filter = QComboBox(self)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("search shot, character, line…")
        self.decision_filter.addItems([ALL, UNDECIDED, *DECISIONS])
        self.state_filter.currentTextChanged.connect(lambda t: self._filter(state=t))
        self.character_filter.currentTextChanged.connect(lambda t: self._filter(character=t))
        self.decision_filter.currentTextChanged.connect(lambda t: self._filter(decision=t))
        self.search.textChanged.connect(self._search)

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Line"), QHeaderView.ResizeMode.Interactive)
        header.resizeSection(COLUMNS.index("Line"), LINE_WIDTH)
        header.setStretchLastSection(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)   # plan (record) order until a header is clicked
        self.table.setSortingEnabled(True)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)

        self.details = QTextBrowser(self)
        self.details.setOpenExternalLinks(False)

        filters = QHBoxLayout()
        for label, box in (("State", self.state_filter), ("Character", self.character_filter),
                           ("Decision", self.decision_filter)):
            filters.addWidget(QLabel(label))
            filters.addWidget(box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(filters)
        lay.addWidget(self.search)
        lay.addWidget(self.table, 3)
        lay.addWidget(self.details, 2)

    # -- data -------------------------------------------------------------------------------------
    def set_jobs(self, jobs: list[ReviewJob]) -> None:
        current = self.current_job()
        self.model.set_jobs(jobs)
        self._fill_filter_choices()
        if current is not None:
            self.select_job(current.job_id)

    def _fill_filter_choices(self) -> None:
        jobs = self.model.jobs
        for box, values in ((self.state_filter, sorted({display_state(j) for j in jobs})),
                            (self.character_filter, sorted({j.character or "" for j in jobs}))):
            if [box.itemText(i) for i in range(box.count())] == [ALL, *values]:
                continue
            keep = box.currentText() or ALL
            box.blockSignals(True)
            box.clear()
            box.addItems([ALL, *values])
            box.setCurrentText(keep if keep in (ALL, *values) else ALL)
            box.blockSignals(False)

    def visible_jobs(self) -> list[ReviewJob]:
        return [self.proxy.data(self.proxy.index(r, 0), Qt.ItemDataRole.UserRole) for r in range(self.proxy.rowCount())]

    def current_job(self) -> ReviewJob | None:
        idx = self.table.currentIndex()
        return self.proxy.data(idx, Qt.ItemDataRole.UserRole) if idx.isValid() else None

    def select_row(self, row: int) -> None:
        if 0 <= row < self.proxy.rowCount():
            self.table.setCurrentIndex(self.proxy.index(row, 0))

    def select_job(self, job_id: str) -> bool:
        for r in range(self.proxy.rowCount()):
            job = self.proxy.data(self.proxy.index(r, 0), Qt.ItemDataRole.UserRole)
            if job.job_id == job_id:
                self.select_row(r)
                return True
        return False

    def move(self, delta: int) -> None:
        row = self.table.currentIndex().row()
        self.select_row(max(0, min(self.proxy.rowCount() - 1, row + delta)) if row >= 0 else 0)

    def refresh_job(self, job: ReviewJob) -> None:
        for row, j in enumerate(self.model.jobs):
            if j.job_id == job.job_id:
                self.model.jobs[row] = job
                self.model.job_changed(row)
        self._fill_filter_choices()
        refilter(self.proxy, lambda: None)
        if (cur := self.current_job()) is not None and cur.job_id == job.job_id:
            self.show_details(job)

    # -- filters ----------------------------------------------------------------------------------
    def _filter(self, **kw) -> None:
        self.proxy.set_filters(**kw)
        if not self.table.currentIndex().isValid():
            self.select_row(0)

    def _search(self, text: str) -> None:
        refilter(self.proxy, lambda: self.proxy.setFilterFixedString(text))

    def _current_changed(self, current, _previous) -> None:
        job = self.proxy.data(current, Qt.ItemDataRole.UserRole) if current.isValid() else None
        self.show_details(job)
        self.jobSelected.emit(job)

    # -- details ----------------------------------------------------------------------------------
    def show_details(self, job: ReviewJob | None) -> None:
        if job is None:
            self.details.setHtml("<i>no shot selected</i>")
            return
        e = html.escape
        rows = [("Job", job.job_id), ("Shot", job.shot), ("Character", job.character or "–"),
                ("Action", job.action), ("State", job.state), ("Version", f"v{job.version:03d}"),
                ("Seed", "–" if job.seed is None else str(job.seed)),
                ("Record", f"{job.record_in or '?'} – {job.record_out or '?'} ({job.frame_count} frames @ "
                           f"{float(job.fps):.3f} fps)"),
                ("Original", f"{job.source_path}  frames {job.source_start}–{job.source_start + job.frame_count - 1}"
                             if job.source_path else "none (gap in the cut)"),
                ("Render", f"{job.render_path or '–'}  from frame {job.render_start}")]
        if job.mask_path:
            rows.append(("Mask", job.mask_path))
        parts = ["<table cellspacing=2>"]
        parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in rows]
        parts.append("</table>")
        if job.line_text:
            parts.append(f"<p><b>Line:</b> “{e(job.line_text)}”</p>")
        if job.problems:
            parts.append("<p style='color:#ff6b6b'><b>Problems</b><br>" + "<br>".join(e(p) for p in job.problems) + "</p>")
        if job.error:
            parts.append(f"<p style='color:#ff6b6b'><b>Error:</b> {e(job.error)}</p>")
        if job.decision:
            d = job.decision
            parts.append(f"<p><b>Decision:</b> {e(DECISION_LABELS[d.status])} ({e(d.decided_at)})"
                         + (f"<br>{e(d.note)}" if d.note else "") + "</p>")
            if d.frame_notes:
                parts.append("<p>" + "<br>".join(f"frame {n.frame}: {e(n.note)}" for n in d.frame_notes) + "</p>")
        if job.sidecar:
            parts.append("<p><b>Sidecar</b></p><pre>" + e(json.dumps(compact(job.sidecar), indent=1, sort_keys=True))
                         + "</pre>")
        self.details.setHtml("".join(parts))
