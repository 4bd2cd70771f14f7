"""The ``s2vt`` command line as a user runs it: exit codes, one-line errors, no tracebacks."""

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import soundfile as sf

from s2v_toolkit import __version__
from s2v_toolkit.cli import main
from s2v_toolkit.media import probe

from media_factory import decode_stamp, make_stamped_video


def run_s2vt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2v_toolkit", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help_in_a_real_process():
    r = run_s2vt("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"s2v-toolkit {__version__}"
    r = run_s2vt("--help")
    assert r.returncode == 0
    for sub in ("probe", "frames", "convert", "demo"):
        assert sub in r.stdout


def _assert_one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("s2vt: error: ") and "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture
def bad_files(tmp_path):
    good = make_stamped_video(tmp_path / "good.mp4", 30, Fraction(25))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    text = tmp_path / "readme.mov"
    text.write_text("not a video")
    wav = tmp_path / "line.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    return {"good": good, "truncated": truncated, "text": text, "wav": wav, "missing": tmp_path / "missing.mov"}


def test_bad_inputs_give_one_line_errors(bad_files, tmp_path, capsys):
    code = main(["probe", str(bad_files["missing"])])
    _assert_one_line_error(capsys, code, "missing.mov", "not found")
    code = main(["probe", str(bad_files["text"])])
    _assert_one_line_error(capsys, code, "readme.mov", "not a media file")
    code = main(["probe", str(bad_files["truncated"])])
    _assert_one_line_error(capsys, code, "truncated.mp4", "corrupt")
    code = main(["frames", str(bad_files["wav"]), "-o", str(tmp_path / "png")])
    _assert_one_line_error(capsys, code, "line.wav", "no video stream")


def test_read_only_output_folder_error(bad_files, readonly_dir, capsys):
    code = main(["convert", str(bad_files["good"]), str(readonly_dir / "out.mov")])
    _assert_one_line_error(capsys, code, "read_only", "read-only")


def test_debug_shows_the_traceback(bad_files):
    r = run_s2vt("--debug", "probe", str(bad_files["missing"]))
    assert r.returncode != 0 and "Traceback" in r.stderr
    r = run_s2vt("probe", str(bad_files["missing"]))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "missing.mov: file not found" in r.stderr


def test_probe_json_and_convert_to_prores(bad_files, tmp_path, capsys):
    assert main(["probe", "--json", str(bad_files["good"])]) == 0
    out = capsys.readouterr().out
    assert '"fps": "25/1"' in out and '"frame_count": 30' in out
    dst = tmp_path / "good_prores.mov"
    assert main(["convert", str(bad_files["good"]), str(dst)]) == 0
    info = probe(dst)
    assert info.video.codec == "prores" and info.video.frame_count == 30 and info.audio
    # Converting onto the source itself is refused, and the source is untouched.
    before = bad_files["good"].read_bytes()
    code = main(["convert", str(bad_files["good"]), str(bad_files["good"]), "--codec", "h264", "--overwrite"])
    capsys.readouterr()
    assert code == 2 and bad_files["good"].read_bytes() == before


def test_frames_exports_the_right_frames(bad_files, tmp_path, capsys):
    out = tmp_path / "stills"
    assert main(["frames", str(bad_files["good"]), "--start", "7", "--count", "3", "-o", str(out)]) == 0
    import av

    names = sorted(p.name for p in out.iterdir())
    assert names == ["good_000007.png", "good_000008.png", "good_000009.png"]
    with av.open(str(out / "good_000008.png")) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert decode_stamp(img) == 8
