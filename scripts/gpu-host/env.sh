# Sourced by the GPU-host scripts: points the loader and the plugin search at the copied bundle,
# and NVIDIA's OpenCL library at an ICD file of our own (the machine has no /etc/OpenCL/vendors).
BUNDLE=${EXO_DEVICE_BUNDLE:-$ROOT/build-device/bundle}
if [ ! -x "$BUNDLE/bin/exo-probe" ]; then
  echo "no bundle at $BUNDLE: build it with scripts/gpu-host/collect.sh and copy it here" >&2
  exit 1
fi
BIN=$BUNDLE/bin
export LD_LIBRARY_PATH="$BUNDLE/lib/carried:$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EXO_PLUGIN_PATH="$BUNDLE/lib/exo/plugins"
ICD_DIR=$(mktemp -d /tmp/exo-icd.XXXXXX)
echo "${EXO_OCL_ICD:-libnvidia-opencl.so.1}" > "$ICD_DIR/vendor.icd"
export OCL_ICD_VENDORS="$ICD_DIR"
RESULTS=${EXO_RESULTS:-/tmp/exo-results}
mkdir -p "$RESULTS"
