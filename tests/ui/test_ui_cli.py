"""`s2vt review`: argument parsing, clear errors, the --screenshot mode."""

from __future__ import annotations

from PySide6.QtGui import QImage

from s2v_toolkit.cli import main


def test_review_missing_plan_is_a_one_line_error(tmp_path, capsys):
    assert main(["review", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "nope.json" in err and "Traceback" not in err


def test_review_unknown_json_names_the_file(tmp_path, capsys):
    p = tmp_path / "other.json"
    p.write_text('{"hello": 1}')
    assert main(["review", str(p)]) == 2
    assert "other.json" in capsys.readouterr().err


def test_review_screenshot(manifest, tmp_path, qapp, capsys):
    png = tmp_path / "shot.png"
    assert main(["review", str(manifest), "--screenshot", str(png)]) == 0
    img = QImage(str(png))
    assert img.width() >= 1000 and img.text("s2v:A") and img.text("s2v:B")
