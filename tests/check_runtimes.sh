#!/usr/bin/env bash
# check_runtimes.sh CPU_RUNTIME_DIR CUDA_RUNTIME_DIR
#
# The convgen tool links two kernel libraries, each with its own Halide runtime (one generated for
# the CPU targets, one for CUDA). That is sound only while every global symbol of the CPU runtime
# is weak and also defined, with the same size, by the CUDA runtime: then whichever duplicate the
# linker keeps is the same code, and the CUDA entry points come from the CUDA runtime.
set -euo pipefail
globals() {  # name type size, for every global symbol an object folder defines
  nm -S --defined-only "$1"/*.o | awk 'NF == 4 && $3 ~ /^[A-Z]$/ {print $4, $3, $2}' | sort
}
cpu=$(mktemp) cuda=$(mktemp)
trap 'rm -f "$cpu" "$cuda"' EXIT
globals "$1" >"$cpu"
globals "$2" >"$cuda"
status=0
strong=$(awk '$2 != "W" && $2 != "V"' "$cpu")
if [[ -n $strong ]]; then
  echo "FAIL: the CPU runtime defines strong symbols (duplicates would not link):"
  echo "$strong" | head
  status=1
fi
differ=$(join -a1 "$cpu" "$cuda" | awk 'NF < 5 || $3 != $5')
if [[ -n $differ ]]; then
  echo "FAIL: CPU runtime symbols missing from the CUDA runtime or of another size:"
  echo "$differ" | head
  status=1
fi
echo "$(wc -l <"$cpu") weak CPU runtime symbols, all in the CUDA runtime ($(wc -l <"$cuda") symbols) with the same sizes"
exit $status
