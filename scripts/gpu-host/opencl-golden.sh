#!/bin/bash
# exo-golden on every fixture through the OpenCL plugin, on the GPU machine (NVIDIA H100/H200
# through NVIDIA's OpenCL ICD). Prints what exo-probe sees, one summary line per fixture and KV
# cache dtype, and a total. Needs the bundle of scripts/gpu-host/collect.sh (copied to
# build-device/bundle).
#
# Environment: EXO_DEVICE_BUNDLE (default build-device/bundle), EXO_OCL_ICD (the vendor library
# named in the ICD file, default libnvidia-opencl.so.1), FIXTURES (paths under tests/data, default:
# every fixture of hf-tiny, mlx-tiny and moe-tiny), EXO_OPENCL_KERNELS=portable (optional: skip
# the subgroup/fp16 paths), KV_DTYPES (the KV caches to run every fixture with, one pass each:
# "default" - the library's default, bf16, or what EXO_KV_DTYPE names - and/or f32, bf16, f16;
# default "default f32").
# A float32 cache is judged at exo-golden's 1e-4; a 16-bit one at KV16_TOLERANCE (default 2e-2,
# tests/CMakeLists.txt's EXO_GOLDEN_KV16_TOLERANCE; docs/model-files.md "KV cache dtype"), where
# the fixtures of KV16_SKIP are not run: the tiny MoE routers that sit near ties, which any 16-bit
# rounding flips (the ones tests/CMakeLists.txt leaves out of EXO_GOLDEN_KV16_MODELS).
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
KV_DTYPES=${KV_DTYPES:-default f32}
KV16_TOLERANCE=${KV16_TOLERANCE:-2e-2}
KV16_SKIP=${KV16_SKIP:-moe-tiny/qwen3_moe moe-tiny/glm4_moe}

echo "== exo-probe (OpenCL plugin only)"
"$BIN/exo-probe" 2>&1 | tee "$LOGS/probe.txt" | head -40

FIXTURES=${FIXTURES:-$(cd "$ROOT/tests/data" && ls -d hf-tiny/*/ mlx-tiny/*/ moe-tiny/*/ | sed 's:/$::')}
pass=0 fail=0 skipped=0
for kv in $KV_DTYPES; do
  # The cache this pass runs: "default" is EXO_KV_DTYPE where set, else bf16.
  cache=$kv
  [ "$kv" = default ] && cache=${EXO_KV_DTYPE:-bf16}
  args=()
  [ "$kv" = default ] || args+=(--kv-dtype "$kv")
  [ "$cache" = f32 ] || args+=(--tolerance "$KV16_TOLERANCE")
  echo "== exo-golden --device opencl, KV cache: $kv ($cache) ${args[*]}"
  for m in $FIXTURES; do
    if [ "$cache" != f32 ] && [[ " $KV16_SKIP " == *" $m "* ]]; then
      printf '%-28s skipped: a router near ties (KV16_SKIP)\n' "$m"
      skipped=$((skipped + 1))
      continue
    fi
    start=$EPOCHREALTIME
    log=$LOGS/${m//\//_}.kv-$kv.txt
    EXO_LOG_LEVEL=${EXO_LOG_LEVEL:-info} "$BIN/exo-golden" "$ROOT/tests/data/$m" --device opencl "${args[@]}" > "$log" 2>&1
    rc=$?
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
    summary=$(grep -E "^golden: (PASS|FAIL)" "$log" | tail -1)
    [ -n "$summary" ] || summary="golden: ERROR rc=$rc: $(grep -v '^  ' "$log" | tail -1)"
    # The cache the shard really ran (exo-golden's first line names it).
    ran=$(grep -oE '(f32|bf16|f16) KV cache' "$log" | head -1)
    if [ "$ran" != "$cache KV cache" ]; then
      summary="golden: ERROR ran '${ran:-no KV cache line}', not $cache: $summary"
    fi
    case "$summary" in "golden: PASS"*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
    printf '%-28s %s (%ss)\n' "$m" "$summary" "$secs"
  done
done
echo "== opencl golden: $pass passed, $fail failed, $skipped skipped (logs in $LOGS)"
grep -h "kernels: \|built the kernels\|program cache" "$LOGS"/*.txt 2>/dev/null | sort -u | head -5
rm -rf "$WORK"
[ "$fail" -eq 0 ]
