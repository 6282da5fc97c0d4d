#!/bin/sh
# Every test: installs what is missing, then builds and runs the whole suite twice — a plain
# build with warnings as errors, and a build with AddressSanitizer + UndefinedBehaviorSanitizer —
# and the concurrency tests a third time under ThreadSanitizer.
# Build directories: build-test/, build-asan/ and build-tsan/ (override with EXO_TEST_BUILD_DIR).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${EXO_TEST_BUILD_DIR:-$ROOT}
JOBS=$(nproc)
"$ROOT/scripts/install-deps.sh"
# The Nix expressions (flake.nix, nix/) parse: a syntax error fails the run here, before the builds.
"$ROOT/scripts/check-nix.sh"

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
# Third, small: ThreadSanitizer over the concurrency tests only (two runtimes at once, plugin
# error detail from two threads, tensor-parallel ranks on their host threads over the Level Zero
# test driver's two GPUs); the targets named and their plugins, a few minutes.
TSAN_TESTS="test_two_runtimes test_registry test_placement"
echo "== configure $BASE/build-tsan (-DEXO_TSAN=ON)"
cmake -S "$ROOT" -B "$BASE/build-tsan" -DEXO_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXO_TSAN=ON >/dev/null
echo "== build $BASE/build-tsan ($TSAN_TESTS)"
# shellcheck disable=SC2086 # the list is word-split on purpose
cmake --build "$BASE/build-tsan" -j"$JOBS" --target $TSAN_TESTS
echo "== test $BASE/build-tsan"
(cd "$BASE/build-tsan" && ctest --output-on-failure -j"$JOBS" --timeout 900 -R "^($(echo $TSAN_TESTS | tr ' ' '|'))\$")
/usr/bin/python3 -c 'print("all test suites passed")'
