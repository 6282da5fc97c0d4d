#!/bin/bash
# Every GPU-host job in one go: OpenCL golden on the GPU, OpenCL benchmarks, then the CPU
# benchmark on the host CPU. Build the bundle first with scripts/gpu-host/collect.sh and copy
# build-device/bundle to the host.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
"$ROOT/scripts/gpu-host/opencl-golden.sh"; echo "opencl-golden rc=$?"
"$ROOT/scripts/gpu-host/opencl-bench.sh"; echo "opencl-bench rc=$?"
"$ROOT/scripts/gpu-host/cpu-amx-bench.sh"; echo "cpu-amx-bench rc=$?"
