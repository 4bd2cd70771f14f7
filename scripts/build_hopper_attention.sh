#!/usr/bin/env bash
# Build the optional Hopper (sm_90a) attention kernels that s2v-toolkit can use, from their public sources,
# with only what the Wan S2V model needs: FlashAttention 3 (the flash-attention repository's hopper/
# forward, head dim 128, bf16) and SageAttention 2 (thu-ml/SageAttention: the sm90 int8-QK / fp8-PV kernel
# and its fused quantization). A full build of either compiles hundreds of kernels (an hour or more); this
# one compiles three FlashAttention files and two SageAttention extensions (minutes on 16 cores).
#
#   scripts/build_hopper_attention.sh FLASH_ATTENTION_CHECKOUT SAGEATTENTION_CHECKOUT PREFIX
#
# FLASH_ATTENTION_CHECKOUT needs csrc/cutlass filled (git submodule update --init csrc/cutlass).
# Either checkout may be given as "-" to skip it. PREFIX receives the importable packages
# (flash_attn_3/, flash_attn_interface.py, sageattention/); put it on PYTHONPATH. Needs CUDA >= 12.3
# (nvcc), the PyTorch that will run them, ninja, and an H100/H200 (or TORCH_CUDA_ARCH_LIST=9.0).
# Logs: PREFIX/build_fa3.log and PREFIX/build_sage2.log.
set -euo pipefail
FA_SRC=${1:?flash-attention checkout or -}
SAGE_SRC=${2:?SageAttention checkout or -}
PREFIX=${3:?output folder}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
PY=${PYTHON:-python3}
JOBS=${MAX_JOBS:-8}
status=0

# Each build runs in a subshell whose status is read afterwards, not through `||`: inside a `( ... ) ||`
# list bash ignores `set -e`, so a failed step went unnoticed and the unbuilt package was copied.
if [ "$FA_SRC" != "-" ]; then
  set +e
  (
    set -e
    cd "$FA_SRC/hopper"
    # hopper/setup.py reads the checkout's README.md for its long description; source archives without
    # it fail there, so an empty one is made (the build only).
    [ -e ../README.md ] || { echo "no ../README.md: writing an empty one for setup.py"; : > ../README.md; }
    # Only the forward pass, bf16, head dim 128 (Wan: 5120 / 40 heads), no paged/split/softcap/local/GQA
    # packing/fp8: three translation units instead of ~450. Varlen stays (the official Wan code calls
    # flash_attn_varlen_func).
    for f in BACKWARD SPLIT PAGEDKV APPENDKV LOCAL SOFTCAP PACKGQA FP16 FP8 CLUSTER HDIM64 HDIM96 HDIM192 \
             HDIM256 SM80 HDIMDIFF64 HDIMDIFF192; do export FLASH_ATTENTION_DISABLE_$f=TRUE; done
    export FLASH_ATTENTION_FORCE_BUILD=TRUE MAX_JOBS=$JOBS NVCC_THREADS=${NVCC_THREADS:-4}
    $PY setup.py build_ext --inplace
    cp -r flash_attn_3 flash_attn_interface.py "$PREFIX"/
  ) > "$PREFIX/build_fa3.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 0 ] || { echo "FlashAttention 3 build failed: $PREFIX/build_fa3.log"; status=1; }
fi

if [ "$SAGE_SRC" != "-" ]; then
  set +e
  (
    set -e
    cd "$SAGE_SRC"
    # The sm90 kernel and the fused quantization only: SageAttention's setup.py also builds its sm80
    # and sm89 kernels for a Hopper target, which the sm90 path never calls.
    $PY - <<'EOF'
import re, pathlib
p = pathlib.Path("setup.py"); s = p.read_text()
s = s.replace("if HAS_SM80 or HAS_SM86 or HAS_SM89 or HAS_SM90 or HAS_SM100 or HAS_SM120 or HAS_SM121:", "if False:")
s = s.replace("if HAS_SM89 or HAS_SM90 or HAS_SM100 or HAS_SM120 or HAS_SM121:", "if False:")
p.write_text(s)
EOF
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} EXT_PARALLEL=2 MAX_JOBS=$JOBS
    $PY setup.py build_ext --inplace
    cp -r sageattention "$PREFIX"/
  ) > "$PREFIX/build_sage2.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 0 ] || { echo "SageAttention 2 build failed: $PREFIX/build_sage2.log"; status=1; }
fi
exit $status
