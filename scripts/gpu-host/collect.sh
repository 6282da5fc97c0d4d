#!/bin/bash
# Builds a self-contained bundle for a GPU host that has a GPU driver but no build dependencies
# (no Debian dev packages, perhaps no network): built here (Release), it holds the binaries plus
# every non-glibc library they load, so copying the folder over (scp, rsync) is all it takes.
#
#   [PLUGINS="cpu_amx opencl"] scripts/gpu-host/collect.sh [BUILD_DIR] [BUNDLE_DIR]
#
# libdnnl alone is ~30 MB: an OpenCL-only bundle (PLUGINS=opencl) or a CPU-only one
# (PLUGINS=cpu_amx) keeps the copy small.
#
# Defaults: BUILD_DIR=build-device (configured and built here, Release), BUNDLE_DIR=
# build-device/bundle. The bundle holds bin/ (exo-golden, exo-probe, exo-bench, exo-synth,
# exo-run), lib/ (libexocore, lib/exo/plugins: cpu_amx and opencl) and lib/carried/ (libdnnl,
# libgomp, libcjson, libpcre2-8, libstdc++, the ocl-icd loader libOpenCL.so.1 which the OpenCL
# plugin dlopens, ...). Binaries need glibc >= 2.34 (Debian 12 builds). Copy the whole checkout
# (or scripts/ and the bundle) to the GPU host; the scripts in this folder find the bundle at
# build-device/bundle or $EXO_DEVICE_BUNDLE.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-device}
DEST=${2:-$BUILD/bundle}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEXO_BUILD_TESTS=OFF >/dev/null
PLUGINS=${PLUGINS:-cpu_amx opencl}
cmake --build "$BUILD" -j"$(nproc)" --target exo-golden exo-probe exo-bench exo-synth exo-run \
  $(for p in $PLUGINS; do printf 'exo-plugin-%s ' "$p"; done) >/dev/null
rm -rf "$DEST"
mkdir -p "$DEST/bin" "$DEST/lib/exo/plugins" "$DEST/lib/carried"
for tool in exo-golden exo-probe exo-bench exo-synth exo-run; do cp "$BUILD/bin/$tool" "$DEST/bin/"; done
cp -P "$BUILD"/lib/libexocore.so* "$DEST/lib/"
for p in $PLUGINS; do cp "$BUILD/lib/exo/plugins/libexo-plugin-$p.so" "$DEST/lib/exo/plugins/"; done
# The ICD loader is dlopen'ed, so ldd does not list it.
cp -L "$(ldconfig -p | awk '/libOpenCL.so.1 .*x86-64/ {print $NF; exit}')" "$DEST/lib/carried/libOpenCL.so.1"
ldd "$DEST"/bin/* "$DEST"/lib/libexocore.so.0 "$DEST"/lib/exo/plugins/*.so 2>/dev/null |
  awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
  while read -r name path; do
    case "$name" in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libexocore*) ;;
      *) cp -L "$path" "$DEST/lib/carried/$name" ;;
    esac
  done
echo "bundle in $DEST ($(du -sh "$DEST" | cut -f1)): $(ls "$DEST/lib/carried" | tr '\n' ' ')"
