#!/bin/sh
# Optional: compiles the Level Zero plugin's SPIR-V kernels for real Intel GPUs (dg2: Arc
# A-series, pvc: Data Center GPU Max) with Intel's offline compiler, ocloc.
#
# ocloc comes from Debian's intel-opencl-icd, but installing that package registers Intel's
# OpenCL ICD and Level Zero driver system-wide, which breaks the sanitizer build and can crash
# Level Zero loader 1.8 after a failed zeInit (platform-notes §4). So this script only downloads
# the packages and unpacks them under the build directory (apt-get download + dpkg -x): nothing
# is installed or registered. Then it configures build-ocloc/ with EXO_OCLOC_CHECK=ON, builds
# the SPIR-V and runs the ocloc_* tests (tests/level_zero/CMakeLists.txt): the portable module and
# Intel's sub-group/XMX kernels (kernels/matmul_intel.cl: their SPIR-V modules and the OpenCL C
# with EXO_GPU_XMX=1's defines) for dg2 and pvc.
#
# Usage: scripts/ocloc-check.sh   (from anywhere; needs the archive reachable once)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build-ocloc"
debs="$build/intel-debs"
root="$debs/root"
"$repo/scripts/install-deps.sh"
if [ ! -x "$root/usr/bin/ocloc" ]; then
  mkdir -p "$debs"
  # The packages ocloc and its compiler libraries come in (Debian 12).
  (cd "$debs" && apt-get download intel-opencl-icd libigc1 libigdfcl1 libigdgmm12 libopencl-clang14 \
    libllvmspirvlib14)
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
fi
# ocloc disasm loads libiga64.so by that name (the ocloc_isa_intel_* tests read the ISA text).
ln -sf libiga64.so.1 "$root/usr/lib/x86_64-linux-gnu/libiga64.so"
cmake -S "$repo" -B "$build" -DEXO_OCLOC_CHECK=ON -DEXO_OCLOC="$root/usr/bin/ocloc" \
  -DEXO_OCLOC_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu"
cmake --build "$build" --target exo_kernels_spv -j"$(nproc)"
cd "$build" && ctest -R '^ocloc_' --output-on-failure
