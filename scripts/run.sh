#!/bin/sh
# The main job: installs what is missing, builds, and runs exo-run on the embedded default
# model (tiny-llama-licenses), streaming a continuation on the best device found.
# Extra arguments go to exo-run (e.g. scripts/run.sh -p "Hello" -n 32).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${EXO_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/install-deps.sh"
echo "run.sh: building in $BUILD (Release; a minute on 2 cores the first time)" >&2
mkdir -p "$BUILD"
LOG="$BUILD/run-build.log"
if ! { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD" -j"$(nproc)" --target exo-run exo-probe exo-plugin-cpu_amx exo-plugin-opencl \
         exo-plugin-level_zero; } >"$LOG" 2>&1; then
  tail -30 "$LOG" >&2
  echo "run.sh: the build failed (full log: $LOG)" >&2
  exit 1
fi
exec "$BUILD/bin/exo-run" "$@"
