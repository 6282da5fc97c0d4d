# Sourced by the device scripts: points the loader and the plugin search at the carried bundle,
# and NVIDIA's OpenCL library at an ICD file of our own (the machine has no /etc/OpenCL/vendors).
BUNDLE=${EXO_DEVICE_BUNDLE:-$ROOT/build-device/bundle}
if [ ! -x "$BUNDLE/bin/exo-probe" ]; then
  echo "no bundle at $BUNDLE: run scripts/device/collect.sh on the build machine and carry it" >&2
  exit 1
fi
BIN=$BUNDLE/bin
export LD_LIBRARY_PATH="$BUNDLE/lib/carried:$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EXO_PLUGIN_PATH="$BUNDLE/lib/exo/plugins"
ICD_DIR=$(mktemp -d /tmp/exo-icd.XXXXXX)
echo "${EXO_OCL_ICD:-libnvidia-opencl.so.1}" > "$ICD_DIR/vendor.icd"
export OCL_ICD_VENDORS="$ICD_DIR"
RESULTS=${OUT:-/tmp/exo-device-results}
mkdir -p "$RESULTS"
