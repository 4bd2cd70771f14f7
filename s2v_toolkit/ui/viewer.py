"""Viewer panel: compare view, timecode/frame display, transport, scrub bar, playback clock.

The playhead ``frame`` is shot-relative (0 = the shot's first frame): original frame
``source_start + frame`` is compared with render frame ``render_start + frame``.
"""

from __future__ import annotations

import math
from fractions import Fraction

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QButtonGroup, QHBoxLayout, QLabel, QSizePolicy, QStyle, QToolButton, QVBoxLayout, QWidget,
)

from s2v_toolkit.media import MediaInfo, frames_to_timecode, timecode_to_frames
from s2v_toolkit.ui.audio import LineAudio
from s2v_toolkit.ui.compare_view import FLIP, MODE_LABELS, MODES, SIDE_BY_SIDE, WIPE, CompareView
from s2v_toolkit.ui.frames import FrameSource
from s2v_toolkit.ui.model import ReviewJob
from s2v_toolkit.ui.scrub_bar import ScrubBar

MAX_SHUTTLE = 8.0


class _FrameBridge(QObject):
    """Carries decoder-thread callbacks to the UI thread (queued signal)."""

    ready = Signal(int, str, int)     # generation, side, file frame index
    failed = Signal(int, str, str)    # generation, side, problem


class ViewerPanel(QWidget):
    frameChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.job: ReviewJob | None = None
        self.sources: dict[str, FrameSource | None] = {"A": None, "B": None, "mask": None}
        self.frame = 0
        self.count = 0
        self.loop_in: int | None = None
        self.loop_out: int | None = None
        self.rate = 0.0               # playback speed in frames/frame; 0 = paused, <0 = reverse
        self._last_rate = 1.0
        self._generation = 0
        self._source_tc_start = 0     # source file's timecode (as a frame number) at its frame 0
        self._source_fps = Fraction(24)
        self._source_drop = False
        self._record_start: int | None = None
        self._record_drop = False
        self._bridge = _FrameBridge(self)
        self._bridge.ready.connect(self._on_frame_ready)
        self._bridge.failed.connect(self._on_decode_failed)
        self.audio = LineAudio(self)
        self._clock = QElapsedTimer()
        self._clock_origin = 0.0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._build()

    # -- layout -----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.view = CompareView(self)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSize(12)
        self.tc_label = QLabel("REC --:--:--:--")
        self.src_label = QLabel("SRC --:--:--:--")
        self.frame_label = QLabel("frame -")
        for lab in (self.tc_label, self.src_label, self.frame_label):
            lab.setFont(mono)
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tc_label.setStyleSheet("color: #ffd75a;")
        self.src_label.setStyleSheet("color: #5aaaff;")
        self.speed_label = QLabel("paused")
        self.loop_label = QLabel("loop: shot")

        self.scrub = ScrubBar(self)
        self.scrub.scrubbed.connect(self.seek)

        style = self.style()
        sp = QStyle.StandardPixmap

        def tool(icon, tip, slot) -> QToolButton:
            b = QToolButton(self)
            b.setIcon(style.standardIcon(icon))
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            return b

        self.btn_start = tool(sp.SP_MediaSkipBackward, "first frame (Home)", lambda: self.seek(self._range()[0]))
        self.btn_back = tool(sp.SP_MediaSeekBackward, "previous frame (Left)", lambda: self.step(-1))
        self.btn_play = tool(sp.SP_MediaPlay, "play / pause (Space)", self.toggle_play)
        self.btn_fwd = tool(sp.SP_MediaSeekForward, "next frame (Right)", lambda: self.step(1))
        self.btn_end = tool(sp.SP_MediaSkipForward, "last frame (End)", lambda: self.seek(self._range()[1]))

        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QToolButton] = {}
        keys = {SIDE_BY_SIDE: "1", FLIP: "2 / T flips", WIPE: "3"}
        for mode in MODES:
            b = QToolButton(self)
            b.setText(MODE_LABELS[mode])
            b.setCheckable(True)
            b.setToolTip(f"{MODE_LABELS[mode]} ({keys[mode]})")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, m=mode: self.set_mode(m))
            self.mode_group.addButton(b)
            self.mode_buttons[mode] = b
        self.mode_buttons[SIDE_BY_SIDE].setChecked(True)
        self.mask_button = QToolButton(self)
        self.mask_button.setText("Mask")
        self.mask_button.setCheckable(True)
        self.mask_button.setToolTip("mouth-mask overlay on the render (M)")
        self.mask_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.mask_button.toggled.connect(self.set_mask_overlay)

        info = QHBoxLayout()
        info.addWidget(self.tc_label)
        info.addSpacing(16)
        info.addWidget(self.src_label)
        info.addSpacing(16)
        info.addWidget(self.frame_label)
        info.addStretch(1)
        info.addWidget(self.loop_label)
        info.addSpacing(12)
        info.addWidget(self.speed_label)

        transport = QHBoxLayout()
        for b in (self.btn_start, self.btn_back, self.btn_play, self.btn_fwd, self.btn_end):
            transport.addWidget(b)
        transport.addSpacing(20)
        for b in self.mode_buttons.values():
            transport.addWidget(b)
        transport.addWidget(self.mask_button)
        transport.addStretch(1)
        self.audio_label = QLabel("audio: " + ("on" if self.audio.available else f"off ({self.audio.reason})"))
        self.audio_label.setStyleSheet("color: #888;")
        transport.addWidget(self.audio_label)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view, 1)
        lay.addLayout(info)
        lay.addWidget(self.scrub)
        lay.addLayout(transport)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # -- loading ----------------------------------------------------------------------------------
    def close_sources(self) -> None:
        self.pause()
        self._generation += 1
        for key, src in self.sources.items():
            if src is not None:
                src.close()
            self.sources[key] = None

    def set_job(self, job: ReviewJob | None, infos: dict[str, MediaInfo] | None = None) -> None:
        """Show a job; ``infos`` are the probed media from the media check (only those are opened)."""
        self.close_sources()
        infos = infos or {}
        self.job = job
        self.frame = 0
        self.loop_in = self.loop_out = None
        self.view.set_image("A", None, None)
        self.view.set_image("B", None, None)
        self.view.set_mask(None)
        self.view.messages = {"A": "", "B": ""}
        if job is None:
            self.count = 0
            self.view.messages = {"A": "no shot selected", "B": ""}
            self._update_labels()
            return
        self.count = max(1, job.frame_count)
        gen = self._generation
        for side, role, path in (("A", "source", job.source_path), ("B", "render", job.render_path),
                                 ("mask", "mask", job.mask_path)):
            info = infos.get(role)
            if info is None:
                if side != "mask":
                    self.view.messages[side] = self._missing_message(job, side, path)
                continue
            try:
                self.sources[side] = FrameSource(
                    path, info=info,
                    on_ready=lambda i, s=side, g=gen: self._bridge.ready.emit(g, s, i),
                    on_error=lambda msg, s=side, g=gen: self._bridge.failed.emit(g, s, msg))
            except Exception as exc:  # noqa: BLE001 - shown in the view, never a crash
                if side != "mask":
                    self.view.messages[side] = f"cannot open {path}: {exc}"
        self.view.labels = {"A": f"A  original  {_short(job.source_path)}",
                            "B": ("B  RANDOM WEIGHTS (plumbing test)  " if job.random_weights else "B  ")
                                 + f"render v{job.version:03d}  {_short(job.render_path)}"}
        src_info = infos.get("source")
        if src_info is not None:
            v = src_info.video
            self._source_tc_start, self._source_fps, self._source_drop = v.start_frame, v.fps, v.drop_frame
        else:
            self._source_tc_start, self._source_fps, self._source_drop = 0, job.fps, False
        self._record_start = None
        if job.record_in:
            try:
                self._record_start = timecode_to_frames(job.record_in, job.fps)
                self._record_drop = ";" in job.record_in
            except ValueError:
                self._record_start = None
        self.mask_button.setEnabled(self.sources["mask"] is not None)
        self.mask_button.setToolTip("mouth-mask overlay on the render (M)" if self.sources["mask"] is not None
                                    else "this job has no mask video")
        self.audio.set_source(job.playback_audio if job.render_path or job.audio_path else None,
                              offset_s=(job.render_start / float(job.fps)) if not job.audio_path else 0.0)
        self._show_frame()

    @staticmethod
    def _missing_message(job: ReviewJob, side: str, path: str | None) -> str:
        what = "original" if side == "A" else "render"
        if side == "A" and not path and job.action == "new_shot":
            return "no original: a new shot (gap in the cut)"
        if side == "B" and not path:
            return f"not rendered yet ({job.state})" + (f"\n{job.error}" if job.error else "")
        for p in job.problems:
            if (side == "A" and p.startswith("original")) or (side == "B" and p.startswith("render")):
                return p
        return f"{what} unavailable: {path}"

    # -- playhead ---------------------------------------------------------------------------------
    def _range(self) -> tuple[int, int]:
        lo = self.loop_in if self.loop_in is not None else 0
        hi = self.loop_out if self.loop_out is not None else self.count - 1
        return lo, max(lo, hi)

    def seek(self, frame: int) -> None:
        if self.count <= 0:
            return
        frame = max(0, min(self.count - 1, int(frame)))
        if self.rate:
            self._restart_clock(frame)
        self.frame = frame
        self._show_frame()

    def step(self, n: int) -> None:
        self.pause()
        self.seek(self.frame + n)

    def set_in(self) -> None:
        self.loop_in = self.frame
        if self.loop_out is not None and self.loop_out < self.frame:
            self.loop_out = None
        self._update_labels()

    def set_out(self) -> None:
        self.loop_out = self.frame
        if self.loop_in is not None and self.loop_in > self.frame:
            self.loop_in = None
        self._update_labels()

    def clear_loop(self) -> None:
        self.loop_in = self.loop_out = None
        self._update_labels()

    # -- display ----------------------------------------------------------------------------------
    def file_index(self, side: str) -> int | None:
        if self.job is None:
            return None
        return (self.job.source_start if side == "A" else self.job.render_start) + self.frame

    def _direction(self) -> int:
        return -1 if self.rate < 0 else 1

    def _show_frame(self) -> None:
        for side in ("A", "B"):
            src = self.sources[side]
            if src is None:
                continue
            idx = self.file_index(side)
            img = src.frame(idx, self._direction())
            if img is not None:
                self.view.set_image(side, img, idx)
        mask_src = self.sources["mask"]
        if mask_src is not None and self.view.mask_overlay:
            m = mask_src.frame(self.file_index("B"), self._direction())
            if m is not None:
                self.view.set_mask(m)
        self._update_labels()
        self.frameChanged.emit(self.frame)

    def _on_frame_ready(self, gen: int, side: str, index: int) -> None:
        if gen != self._generation or self.job is None:
            return
        if side == "mask":
            if self.view.mask_overlay and index == self.file_index("B"):
                self.view.set_mask(self.sources["mask"].frame(index))
            return
        if index == self.file_index(side) and self.view.shown_index[side] != index:
            img = self.sources[side].frame(index, self._direction())
            if img is not None:
                self.view.set_image(side, img, index)

    def _on_decode_failed(self, gen: int, side: str, problem: str) -> None:
        if gen != self._generation or side == "mask":
            return
        self.view.messages[side] = problem
        self.view.set_image(side, None, None)

    def record_timecode(self) -> str | None:
        if self.job is None or self._record_start is None:
            return None
        return frames_to_timecode(self._record_start + self.frame, self.job.fps, self._record_drop)

    def source_timecode(self) -> str | None:
        if self.job is None or self.sources["A"] is None:
            return None
        return frames_to_timecode(self._source_tc_start + self.job.source_start + self.frame,
                                  self._source_fps, self._source_drop)

    def _update_labels(self) -> None:
        if self.job is None:
            self.tc_label.setText("REC --:--:--:--")
            self.src_label.setText("SRC --:--:--:--")
            self.frame_label.setText("frame -")
        else:
            self.tc_label.setText(f"REC {self.record_timecode() or '--:--:--:--'}")
            self.src_label.setText(f"SRC {self.source_timecode() or '--:--:--:--'}")
            self.frame_label.setText(f"frame {self.frame} / {self.count - 1}")
        lo, hi = self._range()
        self.loop_label.setText("loop: shot" if self.loop_in is None and self.loop_out is None
                                else f"loop: {lo}–{hi}")
        self.speed_label.setText("paused" if not self.rate else f"{self.rate:+g}×")
        notes = [n.frame for n in self.job.decision.frame_notes] if self.job and self.job.decision else []
        self.scrub.set_state(count=self.count, frame=self.frame, loop=(self.loop_in, self.loop_out),
                             note_frames=notes, fps=float(self.job.fps) if self.job else 24.0)

    # -- compare modes ----------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.view.set_mode(mode)
        self.mode_buttons[mode].setChecked(True)

    def toggle_ab(self) -> None:
        """Flip between A and B (switches to A/B mode first if needed)."""
        if self.view.mode != FLIP:
            self.set_mode(FLIP)
        else:
            self.view.show_b = not self.view.show_b
        self.view.update()

    def set_mask_overlay(self, on: bool) -> None:
        self.view.mask_overlay = bool(on)
        if self.mask_button.isChecked() != bool(on):
            self.mask_button.setChecked(bool(on))
        if not on:
            self.view.set_mask(None)
        self._show_frame()

    # -- playback ---------------------------------------------------------------------------------
    def _restart_clock(self, frame: int) -> None:
        self._clock.start()
        self._clock_origin = frame
        if self.job is not None:
            self.audio.start(frame / float(self.job.fps), self.rate)

    def play(self, rate: float | None = None) -> None:
        if self.count <= 0:
            return
        self.rate = rate if rate is not None else (self._last_rate or 1.0)
        self._last_rate = self.rate
        lo, hi = self._range()
        if not lo <= self.frame <= hi or (self.rate > 0 and self.frame >= hi) or (self.rate < 0 and self.frame <= lo):
            self.frame = lo if self.rate > 0 else hi
        self._restart_clock(self.frame)
        interval = max(4, int(500 / (float(self.job.fps) * abs(self.rate))))
        self._timer.start(interval)
        self.btn_play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self._show_frame()

    def pause(self) -> None:
        if self.rate:
            self._last_rate = self.rate if abs(self.rate) == 1 else math.copysign(1, self.rate)
        self.rate = 0.0
        self._timer.stop()
        self.audio.stop()
        self.btn_play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self._update_labels()

    def toggle_play(self) -> None:
        if self.rate:
            self.pause()
        else:
            self.play(1.0 if self._last_rate >= 0 else -1.0)

    @property
    def playing(self) -> bool:
        return bool(self.rate)

    def shuttle(self, direction: int) -> None:
        """J (-1) / L (+1): start that way at 1x, or double the speed when already going that way."""
        if direction > 0:
            rate = 1.0 if self.rate <= 0 else min(MAX_SHUTTLE, self.rate * 2)
        else:
            rate = -1.0 if self.rate >= 0 else max(-MAX_SHUTTLE, self.rate * 2)
        self.play(rate)

    def _tick(self) -> None:
        if not self.rate or self.job is None:
            return
        fps = float(self.job.fps)
        heard = self.audio.shot_seconds()
        if heard is not None:
            # the sound is the clock while it plays; the wall clock is kept in step for when it stops
            pos = heard * fps
            self._clock.start()
            self._clock_origin = pos
        else:
            pos = self._clock_origin + self._clock.nsecsElapsed() / 1e9 * fps * self.rate
        frame = math.floor(pos + 1e-9) if self.rate > 0 else math.ceil(pos - 1e-9)
        lo, hi = self._range()
        if frame > hi or frame < lo:  # loop the I/O range (or the whole shot)
            frame = lo if self.rate > 0 else hi
            self._restart_clock(frame)
        if frame != self.frame:
            self.frame = frame
            self._show_frame()

    # -- keys -------------------------------------------------------------------------------------
    def handle_key(self, key: int, modifiers) -> bool:
        """Viewer keys (RV/xStudio-like). Returns True when the key was used."""
        K = Qt.Key
        shift = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        big = 10 if shift else 1
        if key == K.Key_Right:
            self.step(big)
        elif key == K.Key_Left:
            self.step(-big)
        elif key == K.Key_Space:
            self.toggle_play()
        elif key == K.Key_L:
            self.shuttle(1)
        elif key == K.Key_J:
            self.shuttle(-1)
        elif key == K.Key_K:
            self.pause()
        elif key == K.Key_Home:
            self.pause()
            self.seek(self._range()[0])
        elif key == K.Key_End:
            self.pause()
            self.seek(self._range()[1])
        elif key == K.Key_I and not shift:
            self.set_in()
        elif key == K.Key_O and not shift:
            self.set_out()
        elif key == K.Key_U or (shift and key in (K.Key_I, K.Key_O)):
            self.clear_loop()
        elif key == K.Key_1:
            self.set_mode(SIDE_BY_SIDE)
        elif key == K.Key_2:
            self.set_mode(FLIP)
        elif key == K.Key_3:
            self.set_mode(WIPE)
        elif key == K.Key_T:
            self.toggle_ab()
        elif key == K.Key_M:
            self.set_mask_overlay(not self.view.mask_overlay)
        elif key == K.Key_BracketLeft and self.view.mode == WIPE:
            self.view.set_wipe(self.view.wipe - 0.05)
        elif key == K.Key_BracketRight and self.view.mode == WIPE:
            self.view.set_wipe(self.view.wipe + 0.05)
        else:
            return False
        return True


def _short(path: str | None) -> str:
    if not path:
        return ""
    return path.replace("\\", "/").rsplit("/", 1)[-1]
