#!/bin/sh
# Long fuzz runs of the parser harnesses (tests/fuzz, docs/fuzzing.md): builds them with clang-15
# and runs each for a number of executions (or seconds) spread over the cores, then prints one
# table: executions, wall time, executions/s, coverage (edges, features), corpus size, findings.
#
#   scripts/fuzz-long.sh [-n EXECUTIONS] [-t SECONDS] [-j WORKERS] [HARNESS ...]
#
#   -n  executions per harness, summed over the workers (default 10000000)
#   -t  stop each worker after this many seconds instead (overrides -n)
#   -j  parallel workers per harness (default: the number of cores)
#   HARNESS: safetensors weights_index config tokenizer sampler (default: all, one after another)
#
# EXO_FUZZ_BUILD: build and output directory (default build-fuzz-long/); its bin/ holds the
# harnesses, <harness>/ the grown corpus, worker logs and any crash-*/leak-*/timeout-* input.
# EXO_FUZZ_BIN: a directory of already built harnesses (e.g. copied from another machine;
# they need libcjson1 and libpcre2-8-0) — then nothing is built.
# Exit status 1 when any harness left a crash, leak, timeout or out-of-memory input.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=10000000
SECONDS_EACH=""
WORKERS=$(nproc)
while getopts "n:t:j:" opt; do
  case $opt in
    n) RUNS=$OPTARG ;;
    t) SECONDS_EACH=$OPTARG ;;
    j) WORKERS=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
HARNESSES=${*:-safetensors weights_index config tokenizer sampler}
OUT=${EXO_FUZZ_BUILD:-$ROOT/build-fuzz-long}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ -n "${EXO_FUZZ_BIN:-}" ]; then
  BIN=$(cd "$EXO_FUZZ_BIN" && pwd)
else
  "$ROOT/scripts/install-deps.sh"
  cmake -S "$ROOT/tests/fuzz/clang" -B "$OUT/build" -DCMAKE_C_COMPILER=clang-15 \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$OUT/build" -j"$(nproc)"
  BIN=$OUT/build/bin
fi

# The last value of "name: N" on libFuzzer's final status lines ("#123 DONE cov: 45 ft: 67 ...").
field() { grep -E "DONE|^#[0-9]+" "$1" 2>/dev/null | tail -1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"; }

SUMMARY=$OUT/summary.txt
printf '%-14s %12s %8s %10s %6s %7s %7s %s\n' harness executions wall_s exec/s cov ft corpus findings > "$SUMMARY"
failed=0
for h in $HARNESSES; do
  [ -x "$BIN/fuzz_$h" ] || { echo "fuzz-long: no harness $BIN/fuzz_$h" >&2; exit 2; }
  dir=$OUT/$h
  mkdir -p "$dir/corpus"
  rm -f "$dir"/fuzz-*.log
  dict=""
  [ -f "$ROOT/tests/fuzz/dict/$h.dict" ] && dict="-dict=$ROOT/tests/fuzz/dict/$h.dict"
  if [ -n "$SECONDS_EACH" ]; then limit="-max_total_time=$SECONDS_EACH"
  else limit="-runs=$(( (RUNS + WORKERS - 1) / WORKERS ))"; fi
  echo "== fuzz_$h: $WORKERS workers, $limit"
  start=$(date +%s)
  # -jobs=W -workers=W: W independent processes sharing the corpus directory (each reloads
  # what the others add); each writes $dir/fuzz-<i>.log.
  # shellcheck disable=SC2086 # $dict and $limit are single words or empty
  (cd "$dir" && "$BIN/fuzz_$h" -jobs="$WORKERS" -workers="$WORKERS" $limit $dict \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/" \
      "$dir/corpus" "$ROOT/tests/fuzz/corpus/$h" >/dev/null 2>&1) || true
  wall=$(( $(date +%s) - start ))
  [ "$wall" -gt 0 ] || wall=1
  execs=0 cov=0 ft=0
  for log in "$dir"/fuzz-*.log; do
    [ -f "$log" ] || continue
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=$((execs + ${n:-0}))
    c=$(field "$log" cov); f=$(field "$log" ft)
    [ "${c:-0}" -gt "$cov" ] && cov=$c
    [ "${f:-0}" -gt "$ft" ] && ft=$f
  done
  corpus=$(find "$dir/corpus" -type f | wc -l)
  findings=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  [ "$findings" -eq 0 ] || failed=1
  printf '%-14s %12s %8s %10s %6s %7s %7s %s\n' "$h" "$execs" "$wall" $((execs / wall)) "$cov" "$ft" \
         "$corpus" "$findings" >> "$SUMMARY"
done
echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
cat "$SUMMARY"
[ "$failed" -eq 0 ] || echo "fuzz-long: findings left in $OUT/<harness>/ (crash-*, leak-*, timeout-*, oom-*)" >&2
exit "$failed"
