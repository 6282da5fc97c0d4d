#!/bin/sh
# A quantized (MLX affine) model on a device without quantized kernels (the GPU plugins today):
#  1. asked for by name (--device opencl), the shard must fail with the refusal naming the dtype,
#     never run and print a wrong result;
#  2. with OpenCL ranked above the CPU, the run must pass: on the CPU after the refusal (logged,
#     naming the dtype) where OpenCL is tried first, or on whichever device the ranking picks
#     (PoCL scores below cpu_amx on the CPU it emulates, so there the CPU is chosen outright).
# Exit 77 (skipped) when there is no OpenCL device. Usage: quant_fallback.sh EXO_GOLDEN MODEL_DIR
golden=$1 model=$2
out=$("$golden" "$model" --device opencl 2>&1)
case $out in
*"golden: PASS"*) echo "opencl passed (it has quantized kernels now)";;
*"has dtype MLX_AFFINE; supported:"*"golden: FAIL"*) echo "opencl refused the quantized graph, naming the dtype";;
*"no device"*|*"not found"*|*"No such device"*) echo "no OpenCL device: $out" | tail -3; exit 77;;
*) echo "unexpected outcome with --device opencl:"; echo "$out" | tail -5; exit 1;;
esac
out=$(EXO_PLUGIN_RANK=opencl:300 "$golden" "$model" 2>&1)
echo "$out" | tail -3
case $out in
*"golden: PASS"*) ;;
*) echo "FAIL: no pass with opencl ranked first"; exit 1;;
esac
case $out in
*"opencl:0: cannot run node"*"MLX_AFFINE"*) echo "fell back to the CPU; the refusal is logged";;
*"opencl:0:"*) echo "FAIL: opencl was tried but the logged reason does not name the dtype"; exit 1;;
*) echo "the ranking chose a device that runs it";;
esac
