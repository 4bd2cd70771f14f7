# Sourced by scripts/setup.sh and scripts/setup_pyannote.sh (not run on its own). The caller sets ROOT
# (the project folder) and VPY (the python of the venv being built).

# pip -q still warns about every package missing from a local extra index (some machines configure one)
pip_install() {
  "$VPY" -m pip --disable-pip-version-check install -q "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# Run "$@" holding the project's setup lock. Both scripts install this project in editable mode, which
# writes s2v_toolkit.egg-info in the project; setup.sh --dev runs setup_pyannote.sh beside itself, so those
# two installs take turns: one lock (flock on pyproject.toml), defined here once for both. Without flock,
# the command runs unlocked (setup.sh then builds the two venvs one after the other).
locked() { ( ! command -v flock >/dev/null 2>&1 || flock 9; "$@" ) 9<"$ROOT/pyproject.toml"; }
