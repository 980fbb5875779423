#!/usr/bin/env bash
# Checks the instruction sets of every x86 variant object in a generated kernel folder: AVX-512
# variants must use zmm registers, AVX2 variants ymm and no zmm, SSE4.1 variants neither. This is
# how variants the build machine would not pick are known to be what their name says.
#   check_isa.sh <library>/kernels
set -euo pipefail
dir=$1
checked=0 failed=0
check() {  # object, register that must appear, registers that must not
  local object=$1 must=$2 mustnot=$3 text count
  text=$(objdump -d --no-show-raw-insn "$object")
  count=$(grep -c "%$must" <<<"$text" || true)
  if ((count == 0)) || grep -qE "%($mustnot)[0-9]" <<<"$text"; then
    echo "FAIL $(basename "$object"): $count instructions on $must, or some on $mustnot"
    failed=$((failed + 1))
  fi
  checked=$((checked + 1))
}
shopt -s nullglob
for o in "$dir"/*/*-avx512*.o; do check "$o" zmm "__none__"; done
for o in "$dir"/*/*-avx2*.o; do check "$o" ymm "zmm"; done
for o in "$dir"/*/*-sse41*.o; do check "$o" xmm "ymm|zmm"; done
echo "checked $checked variant objects, $failed wrong"
((checked > 0 && failed == 0))
