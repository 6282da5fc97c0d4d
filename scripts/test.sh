#!/bin/sh
# Every test: installs what is missing, then builds and runs the whole suite twice — a plain
# build with warnings as errors, and a build with AddressSanitizer + UndefinedBehaviorSanitizer.
# Build directories: build-test/ and build-asan/ (override with EXO_TEST_BUILD_DIR).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${EXO_TEST_BUILD_DIR:-$ROOT}
JOBS=$(nproc)
"$ROOT/scripts/install-deps.sh"

run_suite() {
  dir=$1; shift
  echo "== configure $dir ($*)"
  cmake -S "$ROOT" -B "$dir" -DEXO_WERROR=ON "$@" >/dev/null
  echo "== build $dir"
  cmake --build "$dir" -j"$JOBS"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 900)
}

run_suite "$BASE/build-test" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite "$BASE/build-asan" -DCMAKE_BUILD_TYPE=Debug -DEXO_SANITIZE=ON
/usr/bin/python3 -c 'print("all test suites passed")'
