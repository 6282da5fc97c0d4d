#!/bin/sh
# The kernels (all of kernels/*.cl as one file, as the plugins build them) compiled by clang-15
# in every variant the plugins compile, with a read of an uninitialised variable as an error.
# Such a read can pass every test by luck (on PoCL the register still held the right value) and
# fail on a GPU: exo_matmul_mmab8_bf16's output macro once initialised a y_ from itself.
# Usage: kernel_warnings.sh CLANG ALL_CL
set -e
clang=$1
all=$2
check() {
    echo "clang $*"
    "$clang" -cl-std=CL1.2 -O0 -Werror=uninitialized -Werror=sometimes-uninitialized -emit-llvm -c "$all" \
        -o /dev/null "$@"
}
check -target spir64                                 # the OpenCL program, portable
check -target spir64 -DEXO_SPIRV                     # the SPIR-V module (Level Zero)
check -target spir64 -DEXO_NV_MMA -DEXO_MMA_EMULATE  # the tensor-core kernels, warp products emulated
check -target nvptx64-nvidia-nvcl -DEXO_NV_MMA -Dasm=__asm__  # NVIDIA's: inline PTX
echo "no uninitialised reads"
