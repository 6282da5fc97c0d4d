/* exo_kernels_spv.h — the kernels of kernels/ as one SPIR-V 1.2 module (OpenCL kernel
 * capabilities, portable path: no subgroups, no fp16 arithmetic), built at build time by
 * clang-15 + llvm-spirv-15 and validated by spirv-val (generated exo_kernels_spv.c, target
 * exo_kernels_spv). For zeModuleCreate with ZE_MODULE_FORMAT_IL_SPIRV. */
#ifndef EXO_KERNELS_SPV_H
#define EXO_KERNELS_SPV_H

#include <stddef.h>

extern const unsigned char exo_kernels_spv[];
extern const size_t exo_kernels_spv_size;

#endif
