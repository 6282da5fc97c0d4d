#!/bin/bash
# exo-golden on every fixture through the OpenCL plugin, on the GPU machine (NVIDIA H100/H200
# through NVIDIA's OpenCL ICD). Prints what exo-probe sees, one summary line per fixture and a
# total. Needs the bundle of scripts/gpu-host/collect.sh (copied to build-device/bundle).
#
# Environment: EXO_DEVICE_BUNDLE (default build-device/bundle), EXO_OCL_ICD (the vendor library
# named in the ICD file, default libnvidia-opencl.so.1), FIXTURES (paths under tests/data, default:
# every fixture of hf-tiny, mlx-tiny and moe-tiny), EXO_OPENCL_KERNELS=portable (optional: skip
# the subgroup/fp16 paths).
# Full logs go to $EXO_RESULTS/opencl-golden (default /tmp/exo-results).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/gpu-host/env.sh"
export EXO_PLUGINS_SELECT=opencl
WORK=$(mktemp -d /tmp/exo-opencl.XXXXXX)
# The program-binary cache: fresh per run, so the first fixture builds the kernels and the others
# load them (this also exercises the cache on the real driver).
export XDG_CACHE_HOME="$WORK/cache"
LOGS=$RESULTS/opencl-golden
mkdir -p "$LOGS"

echo "== exo-probe (OpenCL plugin only)"
"$BIN/exo-probe" 2>&1 | tee "$LOGS/probe.txt" | head -40

FIXTURES=${FIXTURES:-$(cd "$ROOT/tests/data" && ls -d hf-tiny/*/ mlx-tiny/*/ moe-tiny/*/ | sed 's:/$::')}
pass=0 fail=0
echo "== exo-golden --device opencl"
for m in $FIXTURES; do
  start=$EPOCHREALTIME
  log=$LOGS/${m//\//_}.txt
  EXO_LOG_LEVEL=${EXO_LOG_LEVEL:-info} "$BIN/exo-golden" "$ROOT/tests/data/$m" --device opencl > "$log" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  summary=$(grep -E "^golden: (PASS|FAIL)" "$log" | tail -1)
  [ -n "$summary" ] || summary="golden: ERROR rc=$rc: $(grep -v '^  ' "$log" | tail -1)"
  case "$summary" in "golden: PASS"*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
  printf '%-28s %s (%ss)\n' "$m" "$summary" "$secs"
done
echo "== opencl golden: $pass passed, $fail failed (logs in $LOGS)"
grep -h "kernels: \|built the kernels\|program cache" "$LOGS"/*.txt 2>/dev/null | sort -u | head -5
rm -rf "$WORK"
[ "$fail" -eq 0 ]
