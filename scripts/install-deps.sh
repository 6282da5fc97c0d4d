#!/bin/sh
# Installs the Debian 12 packages exo-ipex needs to build and test, when any is missing.
# Runs apt-get only when something is absent, so a warm machine pays nothing.
set -eu
PACKAGES="build-essential cmake pkg-config git \
  libze-dev libze1 ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo \
  libdnnl-dev libcjson-dev check libsubunit-dev libpcre2-dev \
  clang-15 llvm-spirv-15 spirv-tools llvm-15 \
  python3 python3-pytest python3-zmq python3-numpy python3-jinja2 \
  nix-bin"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
