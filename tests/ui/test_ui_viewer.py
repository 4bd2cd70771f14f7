"""The viewer driven through the real widgets: keyboard stepping, timecodes, pixels, A/B, wipe, mask, playback."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from media_factory import decode_stamp
from s2v_toolkit.media import frames_to_timecode, timecode_to_frames


def displayed_stamps(window, tools) -> dict[str, int]:
    view = window.viewer.view
    screen = tools.screen_rgb(view)
    dpr = screen.shape[1] / view.width()
    return {side: decode_stamp(tools.region(screen, r, dpr)) for side, r in view.image_rects().items()}


def expected_tc(tools, frame: int) -> tuple[str, str]:
    rec = frames_to_timecode(timecode_to_frames("01:00:00:00", tools.FPS) + frame, tools.FPS, False)
    src = frames_to_timecode(timecode_to_frames(tools.SOURCE_TC, tools.FPS) + tools.SH010_SOURCE_START + frame,
                             tools.FPS, False)
    return rec, src


def test_arrow_keys_step_frames_and_screen_shows_those_frames(qtbot, window, tools):
    v = window.viewer
    assert window.current_job().job_id == "j-sh010"
    assert displayed_stamps(window, tools) == {"A": tools.SH010_SOURCE_START, "B": tools.RENDER_STAMP}
    for _ in range(3):
        qtbot.keyClick(v.view, Qt.Key.Key_Right)
    tools.wait_shown(qtbot, window)
    rec, src = expected_tc(tools, 3)
    assert v.frame_label.text() == f"frame 3 / {tools.SH010_FRAMES - 1}"
    assert v.tc_label.text() == f"REC {rec}"
    assert v.src_label.text() == f"SRC {src}"
    assert displayed_stamps(window, tools) == {"A": tools.SH010_SOURCE_START + 3, "B": tools.RENDER_STAMP + 3}

    qtbot.keyClick(v.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)   # +10
    qtbot.keyClick(v.view, Qt.Key.Key_Left)
    tools.wait_shown(qtbot, window)
    assert v.frame == 12
    assert displayed_stamps(window, tools) == {"A": tools.SH010_SOURCE_START + 12, "B": tools.RENDER_STAMP + 12}
    assert v.tc_label.text() == f"REC {expected_tc(tools, 12)[0]}"

    qtbot.keyClick(v.view, Qt.Key.Key_End)
    tools.wait_shown(qtbot, window)
    last = tools.SH010_FRAMES - 1
    assert displayed_stamps(window, tools) == {"A": tools.SH010_SOURCE_START + last, "B": tools.RENDER_STAMP + last}
    qtbot.keyClick(v.view, Qt.Key.Key_Right)          # clamps at the shot's end
    assert v.frame == last
    qtbot.keyClick(v.view, Qt.Key.Key_Home)
    tools.wait_shown(qtbot, window)
    assert displayed_stamps(window, tools) == {"A": tools.SH010_SOURCE_START, "B": tools.RENDER_STAMP}


def test_keys_work_with_the_shot_list_focused_but_not_while_typing_a_note(qtbot, window, tools):
    v = window.viewer
    window.shots.table.setFocus()
    qtbot.keyClick(window.shots.table, Qt.Key.Key_Right)
    assert v.frame == 1
    window.decisions.frame_note.setFocus()
    qtbot.keyClicks(window.decisions.frame_note, "lip late")
    qtbot.keyClick(window.decisions.frame_note, Qt.Key.Key_Left)
    assert v.frame == 1 and window.decisions.frame_note.text() == "lip late"


def test_scrub_bar_click_seeks(qtbot, window, tools):
    bar = window.viewer.scrub
    x = bar.x_of(17)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=QPoint(x, bar.height() // 2))
    tools.wait_shown(qtbot, window)
    assert window.viewer.frame == 17
    assert displayed_stamps(window, tools)["B"] == tools.RENDER_STAMP + 17


def test_ab_toggle_and_wipe_show_the_right_image(qtbot, window, tools):
    v = window.viewer
    qtbot.keyClick(v.view, Qt.Key.Key_Right)
    qtbot.keyClick(v.view, Qt.Key.Key_Right)
    tools.wait_shown(qtbot, window)
    a, b = tools.SH010_SOURCE_START + 2, tools.RENDER_STAMP + 2

    qtbot.keyClick(v.view, Qt.Key.Key_2)              # A/B mode, render up
    assert displayed_stamps(window, tools) == {"B": b}
    qtbot.keyClick(v.view, Qt.Key.Key_T)              # flip to the original
    assert displayed_stamps(window, tools) == {"A": a}
    qtbot.keyClick(v.view, Qt.Key.Key_T)
    assert displayed_stamps(window, tools) == {"B": b}

    qtbot.keyClick(v.view, Qt.Key.Key_3)              # wipe at the middle: stamp columns 0-5 from A, 6-11 from B
    screen = tools.screen_rgb(v.view)
    rect = v.view.image_rects()["A"]
    both = decode_stamp(tools.region(screen, rect, screen.shape[1] / v.view.width()))
    assert both == (a & 0x3F) | (b & ~0x3F & 0xFFF)

    # drag the wipe to a quarter: columns 0-2 from A
    y = rect.center().y()
    qtbot.mousePress(v.view, Qt.MouseButton.LeftButton, pos=QPoint(rect.x() + rect.width() // 4, y))
    qtbot.mouseRelease(v.view, Qt.MouseButton.LeftButton, pos=QPoint(rect.x() + rect.width() // 4, y))
    assert v.view.wipe == pytest.approx(0.25, abs=0.01)
    screen = tools.screen_rgb(v.view)
    assert decode_stamp(tools.region(screen, rect, screen.shape[1] / v.view.width())) == (a & 0x7) | (b & ~0x7 & 0xFFF)

    qtbot.keyClick(v.view, Qt.Key.Key_1)
    assert displayed_stamps(window, tools) == {"A": a, "B": b}


def test_mask_overlay_tints_only_the_masked_region_of_the_render(qtbot, window, tools):
    v = window.viewer
    rect_b = v.view.image_rects()["B"]
    before = tools.region(tools.screen_rgb(v.view), rect_b).astype(int)
    qtbot.keyClick(v.view, Qt.Key.Key_M)
    qtbot.waitUntil(lambda: v.view.mask is not None, timeout=5000)
    after = tools.region(tools.screen_rgb(v.view), rect_b).astype(int)
    h, w = after.shape[:2]
    centre = (slice(h // 2 - 5, h // 2 + 5), slice(w // 2 - 10, w // 2 + 10))
    corner = (slice(h - 12, h - 4), slice(4, 20))
    assert (after[centre][..., 0] - after[centre][..., 1]).mean() > 40      # red tint in the mouth box
    assert np.abs(after[corner] - before[corner]).max() <= 2               # outside untouched
    assert displayed_stamps(window, tools)["A"] == tools.SH010_SOURCE_START  # the original is never tinted


def test_loop_playback_and_jkl_shuttle(qtbot, window, tools):
    v = window.viewer
    seen: list[int] = []
    v.frameChanged.connect(seen.append)
    for _ in range(4):
        qtbot.keyClick(v.view, Qt.Key.Key_Right)
    qtbot.keyClick(v.view, Qt.Key.Key_I)
    for _ in range(4):
        qtbot.keyClick(v.view, Qt.Key.Key_Right)
    qtbot.keyClick(v.view, Qt.Key.Key_O)
    assert (v.loop_in, v.loop_out) == (4, 8)
    seen.clear()
    qtbot.keyClick(v.view, Qt.Key.Key_L)
    assert v.playing and v.rate == 1
    # plays 4..8 and wraps back to 4: the loop range is all it shows
    qtbot.waitUntil(lambda: 8 in seen and seen.count(4) >= 1 and seen.index(8) < len(seen) - 1, timeout=8000)
    assert set(seen) <= set(range(4, 9))
    qtbot.keyClick(v.view, Qt.Key.Key_L)
    assert v.rate == 2
    qtbot.keyClick(v.view, Qt.Key.Key_J)               # reverse
    assert v.rate == -1
    seen.clear()
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=5000)
    steps = [b - a for a, b in zip(seen, seen[1:])]
    assert all(s < 0 or (a, b) == (4, 8) for s, (a, b) in zip(steps, zip(seen, seen[1:]))), seen  # backwards, wraps 4 -> 8
    qtbot.keyClick(v.view, Qt.Key.Key_K)
    assert not v.playing
    stopped = v.frame
    qtbot.wait(100)
    assert v.frame == stopped and 4 <= stopped <= 8
    qtbot.keyClick(v.view, Qt.Key.Key_U)
    assert (v.loop_in, v.loop_out) == (None, None)
    qtbot.keyClick(v.view, Qt.Key.Key_Space)
    assert v.playing
    qtbot.keyClick(v.view, Qt.Key.Key_Space)
    assert not v.playing
