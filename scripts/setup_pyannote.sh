#!/usr/bin/env bash
# Build .venv-pyannote: a separate virtual environment where the pyannote.audio backend's tests run
# (tests/diarization/test_diarization_pyannote.py runs them there when the main venv has no pyannote.audio).
# scripts/setup.sh --dev calls this. Idempotent: a second run with the same pyproject.toml and script
# returns at once. Never fails: when something is unavailable it says so and exits 0 (the tests then skip).
#
# Why a separate venv: pyannote.audio 4 pins torchaudio 2.11 + torchcodec 0.17, while the main venv keeps its
# own torch. Here: the CPU build of torch 2.13.0 with the pure-Python parts of torchaudio (its compiled
# libraries link CUDA ones that a CPU torch lacks, so they are removed: pyannote uses only resample, kaldi
# and MFCC, which are Python) - about 2 GB and 1-1.5 minutes, against 6 GB and 2-4 minutes with the CUDA
# build of torch 2.14.1 it used before (measured side by side on the 2-core machine: 148 s against 234 s).
# torchcodec stays installed but cannot load on a CPU torch: pyannote warns at import and cannot decode
# file paths; our backend passes waveforms (recipe: ../shared/recipes/pyannote_offline_install.txt).
#
# Environment:
#   S2VT_PYANNOTE_VENV=path   the venv folder (default .venv-pyannote)
#   S2VT_SKIP_PYANNOTE=1      do nothing
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${S2VT_PYANNOTE_VENV:-.venv-pyannote}
[[ "$VENV" = /* ]] || VENV="$ROOT/$VENV"
STAMP="$VENV/.s2vt-pyannote-ready"   # the tests use the venv only when this exists
TORCH="torch==2.13.0"
PYANNOTE_STACK=("$TORCH" "pyannote.audio==4.0.7" "torchaudio==2.11.0" "torchcodec==0.17.0")

give_up() {
  echo "setup_pyannote: $*"
  echo "setup_pyannote: no pyannote venv; the pyannote backend tests will skip (run scripts/setup_pyannote.sh again later)"
  exit 0
}

[[ -n "${S2VT_SKIP_PYANNOTE:-}" ]] && { echo "setup_pyannote: skipped (S2VT_SKIP_PYANNOTE is set)"; exit 0; }
[[ "$(uname -m)" == x86_64 && "$(uname -s)" == Linux ]] || give_up "only set up on Linux x86_64 (pinned wheels)"

want=$(cat pyproject.toml scripts/setup_pyannote.sh scripts/setup_common.sh | sha256sum | cut -c1-16)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "setup_pyannote: $VENV is up to date"
  exit 0
fi

# --- the venv ------------------------------------------------------------------------------------
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || give_up "Python >= 3.11 is needed"
rm -f "$STAMP"  # from here on, only a complete run marks the venv usable
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV" || give_up "cannot create $VENV"
echo '*' > "$VENV/.gitignore"  # keep the 6 GB venv out of git status (Python 3.11's venv does not do it)
VPY="$VENV/bin/python"
source scripts/setup_common.sh  # pip_install, locked
echo "setup_pyannote: installing ${PYANNOTE_STACK[*]} into $VENV (about 2 GB)"
pip_install "${PYANNOTE_STACK[@]}" || give_up "pip could not install the pyannote stack"
# This project and the test tools. torch is named again with its pin, so nothing replaces it. setup.sh
# may be installing this project into its own venv at the same time: the two take turns (`locked`).
locked pip_install "$TORCH" -e . "pytest>=8" "pytest-timeout>=2.2" \
  || give_up "pip could not install s2v-toolkit into $VENV"
# torchaudio's compiled libraries need CUDA libraries a CPU torch does not ship; its Python parts do not.
SITE=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -f "$SITE"/torchaudio/lib/*.so
check='import warnings; warnings.simplefilter("ignore")
import torch; assert torch.__version__.split("+")[0] == "'"${TORCH#torch==}"'", torch.__version__
from s2v_toolkit.diarization.pyannote_backend import import_pyannote; import_pyannote()
from pyannote.audio import Pipeline
print("torch", torch.__version__, "pyannote.audio", __import__("pyannote.audio").audio.__version__)'
versions=$(cd / && "$VPY" -c "$check" 2>&1) || give_up "$VENV does not import pyannote.audio: $(echo "$versions" | tail -1)"
echo "$want" > "$STAMP"
echo "setup_pyannote: done ($versions)"
