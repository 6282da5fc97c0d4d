#!/bin/bash
# exo-golden on every fixture through the OpenCL plugin, on the GPU machine (NVIDIA H100/H200
# through NVIDIA's OpenCL ICD). Prints one summary line per fixture and a total.
#
# Two modes:
#   scripts/device/opencl-golden.sh --collect [DIR]
#       Here, on the build machine: copies what the device needs into DIR (default
#       build-oclx/device): bin/exo-golden, bin/exo-probe, lib/libexocore.so*, the OpenCL plugin
#       (lib/exo/plugins/libexo-plugin-opencl.so, the only plugin carried, so no oneDNN is needed)
#       and lib/carried/: every non-glibc .so those load, i.e. libcjson.so.1, libpcre2-8.so.0
#       (core), libOpenCL.so.1 (the ocl-icd loader the plugin dlopens; the device has no Debian
#       packages) and whatever else ldd lists. Build first:
#         cmake -S . -B build-oclx && cmake --build build-oclx -j2 --target exo-golden exo-probe exo-plugin-opencl
#       Binaries need glibc >= 2.34 (Debian 12 builds).
#   scripts/device/opencl-golden.sh
#       On the device, from the repository root (fixtures: tests/data/hf-tiny/*): writes an ICD
#       file naming libnvidia-opencl.so.1 into a temp dir, points OCL_ICD_VENDORS at it, shows
#       what exo-probe sees, then runs exo-golden --device opencl on each fixture.
#
# Environment: EXO_OCL_DIR (the collected dir, default build-oclx/device), EXO_OCL_ICD (the
# vendor library named in the ICD file, default libnvidia-opencl.so.1), FIXTURES (default: all
# under tests/data/hf-tiny), EXO_OPENCL_KERNELS=portable (optional: skip the subgroup/fp16 paths).
# Logs (full exo-golden output per fixture) go to $OUT or /tmp/exo-opencl-golden.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OCL_DIR=${EXO_OCL_DIR:-$ROOT/build-oclx/device}

collect() {
  local build=${EXO_BUILD_DIR:-$ROOT/build-oclx} dest=${1:-$ROOT/build-oclx/device}
  for f in bin/exo-golden bin/exo-probe lib/libexocore.so.0 lib/exo/plugins/libexo-plugin-opencl.so; do
    [ -e "$build/$f" ] || { echo "collect: $build/$f is missing: build it first" >&2; exit 1; }
  done
  rm -rf "$dest"
  mkdir -p "$dest/bin" "$dest/lib/exo/plugins" "$dest/lib/carried"
  cp "$build"/bin/exo-golden "$build"/bin/exo-probe "$dest/bin/"
  cp -P "$build"/lib/libexocore.so* "$dest/lib/"
  cp "$build/lib/exo/plugins/libexo-plugin-opencl.so" "$dest/lib/exo/plugins/"
  # The ICD loader is dlopen'ed (not in ldd's list): carry it explicitly.
  cp -L "$(ldconfig -p | awk '/libOpenCL.so.1 .*x86-64/ {print $NF; exit}')" "$dest/lib/carried/libOpenCL.so.1"
  ldd "$dest"/bin/* "$dest"/lib/libexocore.so.0 "$dest"/lib/exo/plugins/*.so 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
      case "$name" in
        libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libexocore*) ;;
        *) cp -L "$path" "$dest/lib/carried/$name" ;;
      esac
    done
  echo "collected into $dest ($(du -sh "$dest" | cut -f1)):"
  ls "$dest/lib/carried"
}

if [ "${1:-}" = "--collect" ]; then
  collect "${2:-}"
  exit 0
fi

[ -x "$OCL_DIR/bin/exo-golden" ] || { echo "no $OCL_DIR/bin/exo-golden: run --collect on the build machine and carry $OCL_DIR" >&2; exit 1; }
export LD_LIBRARY_PATH="$OCL_DIR/lib/carried:$OCL_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EXO_PLUGIN_PATH="$OCL_DIR/lib/exo/plugins"
export EXO_PLUGINS_SELECT=opencl
WORK=$(mktemp -d /tmp/exo-opencl.XXXXXX)
mkdir -p "$WORK/vendors"
echo "${EXO_OCL_ICD:-libnvidia-opencl.so.1}" > "$WORK/vendors/nvidia.icd"
export OCL_ICD_VENDORS="$WORK/vendors"
# The program-binary cache: fresh per run, so the first fixture builds the kernels and the others
# load them (this also exercises the cache on the real driver).
export XDG_CACHE_HOME="$WORK/cache"
LOGS=${OUT:-/tmp/exo-opencl-golden}
mkdir -p "$LOGS"

echo "== exo-probe (OpenCL plugin only)"
"$OCL_DIR/bin/exo-probe" 2>&1 | tee "$LOGS/probe.txt" | head -40

FIXTURES=${FIXTURES:-$(ls -d "$ROOT"/tests/data/hf-tiny/*/ | xargs -n1 basename)}
pass=0 fail=0
echo "== exo-golden --device opencl"
for m in $FIXTURES; do
  start=$EPOCHREALTIME
  EXO_LOG_LEVEL=${EXO_LOG_LEVEL:-info} "$OCL_DIR/bin/exo-golden" "$ROOT/tests/data/hf-tiny/$m" --device opencl > "$LOGS/$m.txt" 2>&1
  rc=$?
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  summary=$(grep -E "^golden: (PASS|FAIL)" "$LOGS/$m.txt" | tail -1)
  [ -n "$summary" ] || summary="golden: ERROR rc=$rc: $(grep -v '^  ' "$LOGS/$m.txt" | tail -1)"
  case "$summary" in "golden: PASS"*) pass=$((pass + 1)) ;; *) fail=$((fail + 1)) ;; esac
  printf '%-12s %s (%ss)\n' "$m" "$summary" "$secs"
done
echo "== opencl golden: $pass passed, $fail failed (logs in $LOGS)"
grep -h "kernels: \|built the kernels\|program cache" "$LOGS"/*.txt 2>/dev/null | sort -u | head -5
rm -rf "$WORK"
[ "$fail" -eq 0 ]
