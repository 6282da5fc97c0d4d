#!/bin/bash
# CPU benchmark on the GPU machine's host CPU (16 cores with AMX): does prefill reach AMX through
# oneDNN, and what do prefill and decode make of the hardware?
#
#   scripts/gpu-host/cpu-amx-bench.sh
#       On the GPU host: writes the synthetic models with exo-synth (no download), checks
#       with ONEDNN_VERBOSE=1 that the prefill matmuls dispatch to avx512_core_amx, runs exo-bench
#       and prints a table. JSON results go to $EXO_RESULTS/cpu-amx-bench
#       (default /tmp/exo-results).
#
# Environment: EXO_DEVICE_BUNDLE (scripts/gpu-host/collect.sh's bundle, default
# build-device/bundle), EXO_MODELS (default /tmp/exo-models), THREADS (default "16 8"), MODELS (default "small-110m llama-3.2-1b"),
# REPS (default 3), EXO_MODEL_DIR_<preset> is not needed: a model dir in $EXO_MODELS is reused.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)


. "$ROOT/scripts/gpu-host/env.sh"
export EXO_PLUGINS_SELECT=cpu_amx
# The plugin's default: oneDNN bf16 prefill only where AMX is usable (on: force it, off: never).
export EXO_CPU_ONEDNN=${EXO_CPU_ONEDNN:-auto}
MODELS_DIR=${EXO_MODELS:-/tmp/exo-models}
RESULTS=$RESULTS/cpu-amx-bench
THREADS=${THREADS:-"16 8"}
MODELS=${MODELS:-"small-110m llama-3.2-1b"}
REPS=${REPS:-3}
mkdir -p "$MODELS_DIR" "$RESULTS"

echo "== host"
date -u +%FT%TZ
grep -m1 'model name' /proc/cpuinfo
echo "cores: $(nproc); memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
for flag in amx_tile amx_bf16 amx_int8 avx512_bf16 avx512_fp16; do
  grep -qw "$flag" /proc/cpuinfo && echo "cpu flag $flag: yes" || echo "cpu flag $flag: NO"
done
if [ ! -x "$BIN/exo-bench" ]; then
  echo "FAIL: $BIN/exo-bench not found: build it with scripts/gpu-host/collect.sh and copy build-device/bundle here" >&2
  exit 1
fi
missing=$(ldd "$BIN/exo-bench" "$BUNDLE/lib/exo/plugins/libexo-plugin-cpu_amx.so" | grep 'not found' | sort -u)
if [ -n "$missing" ]; then
  echo "FAIL: libraries not found:" >&2
  echo "$missing" >&2
  exit 1
fi

echo "== exo-probe"
"$BIN/exo-probe" 2>&1 | head -40

status=0
for preset in $MODELS; do
  model="$MODELS_DIR/$preset-bf16"
  if [ ! -f "$model/config.json" ]; then
    "$BIN/exo-synth" --preset "$preset" --dtype bf16 --out "$model" || { echo "FAIL: exo-synth $preset" >&2; exit 1; }
  fi

  # Dispatch check: one verbose prefill (ONEDNN_VERBOSE prints every primitive, which would
  # distort the timings, so the measured runs below go without it).
  t=$(echo "$THREADS" | awk '{print $1}')
  verbose="$RESULTS/onednn-verbose-$preset.txt"
  ONEDNN_VERBOSE=1 EXO_LOG_LEVEL=info OMP_NUM_THREADS=$t "$BIN/exo-bench" --model "$model" -p 512 -n 2 -r 1 -t "$t" \
    --no-stream >"$verbose" 2>&1
  echo "== oneDNN dispatch, $preset (EXO_CPU_ONEDNN=$EXO_CPU_ONEDNN, ONEDNN_VERBOSE=1, $(grep -c 'onednn_verbose,exec' "$verbose") executions)"
  grep -m1 'prefill matmuls' "$verbose" # the plugin's path and why (e.g. the kernel's XCOMP mask lacks XTILEDATA)
  grep -m3 'onednn_verbose,info' "$verbose"
  grep 'onednn_verbose,exec,cpu,matmul' "$verbose" | cut -d, -f5,6 | sort | uniq -c | sort -rn | head
  if grep 'onednn_verbose,exec,cpu,matmul' "$verbose" | grep -q 'avx512_core_amx'; then
    echo "PASS: prefill matmuls dispatch to avx512_core_amx"
  else
    echo "FAIL: no matmul dispatched to avx512_core_amx (see $verbose)"
    status=1
  fi

  for t in $THREADS; do
    json="$RESULTS/bench-$preset-bf16-t$t.json"
    echo "== exo-bench $preset bf16, $t threads, -p 512 -n 128 -r $REPS"
    OMP_NUM_THREADS=$t "$BIN/exo-bench" --model "$model" -p 512 -n 128 -r "$REPS" -t "$t" --json >"$json.log" 2>&1
    rc=$?
    grep -v '^{' "$json.log"
    tail -n1 "$json.log" >"$json"
    [ $rc -eq 0 ] || { echo "FAIL: exo-bench exited $rc" >&2; status=1; }
  done
done

echo "== summary (tok/s; GB/s of weights+KV read per decoded token; fraction of the measured read bandwidth)"
printf '%-28s %7s %10s %10s %9s %9s %7s\n' model threads pp512 tg128 dec_GB/s stream frac
for json in "$RESULTS"/bench-*.json; do
  [ -s "$json" ] || continue
  python3 - "$json" <<'PY' 2>/dev/null || echo "$(basename "$json"): $(cat "$json")"
import json, sys
j = json.load(open(sys.argv[1]))
name = sys.argv[1].rsplit('/', 1)[-1][len('bench-'):-len('.json')]
print('%-28s %7d %10.1f %10.2f %9.2f %9.2f %6.0f%%' % (name.rsplit('-t', 1)[0], j['threads'], j['prefill_tps'],
      j['decode_tps'], j['decode_gbps'], j.get('stream_gbps', 0), 100 * j.get('decode_fraction_of_stream', 0)))
PY
done
exit $status
