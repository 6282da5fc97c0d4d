/* exo_kernels_spv_intel.h — Intel's sub-group and XMX kernels (kernels/common.cl +
 * kernels/matmul_intel.cl) as SPIR-V modules, built at build time beside the portable module
 * (plugins/gpu_common/CMakeLists.txt) and used by the Level Zero plugin where gpu_intel_choose
 * picks them (plugins/gpu_common/gpu_intel.h, EXO_GPU_XMX): sg8 (8-lane sub-groups, dg2), sg16
 * (16 lanes: pvc, Xe2), and emu8 / emu16 with the sub-group builtins emulated in local memory
 * (EXO_GPU_XMX=emulate8 / emulate: any device, the tests' Level Zero test driver). */
#ifndef EXO_KERNELS_SPV_INTEL_H
#define EXO_KERNELS_SPV_INTEL_H

#include <stddef.h>

extern const unsigned char exo_kernels_spv_intel_sg8[], exo_kernels_spv_intel_sg16[];
extern const unsigned char exo_kernels_spv_intel_emu8[], exo_kernels_spv_intel_emu16[];
extern const size_t exo_kernels_spv_intel_sg8_size, exo_kernels_spv_intel_sg16_size;
extern const size_t exo_kernels_spv_intel_emu8_size, exo_kernels_spv_intel_emu16_size;

#endif
