#!/bin/bash
# Every device job in one call (device time is scarce): OpenCL golden on the GPU, OpenCL
# benchmarks, then the CPU benchmark on the AMX host. Build the bundle first with
# scripts/device/collect.sh and carry build-device/bundle.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
"$ROOT/scripts/device/opencl-golden.sh"; echo "opencl-golden rc=$?"
"$ROOT/scripts/device/opencl-bench.sh"; echo "opencl-bench rc=$?"
"$ROOT/scripts/device/cpu-amx-bench.sh"; echo "cpu-amx-bench rc=$?"
