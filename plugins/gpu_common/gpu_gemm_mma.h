/* gpu_gemm_mma.h — the prompt matmuls on NVIDIA's tensor cores (kernels/matmul_mma.cl): which
 * MATMUL nodes take exo_matmul_mma64x<BN>_<storage>, and their launch. Only where the backend built the
 * kernels with them (gpu_features.mma_parts, the OpenCL plugin on sm_80+); every other matmul is
 * gpu_kernels.c's. */
#ifndef EXO_GPU_GEMM_MMA_H
#define EXO_GPU_GEMM_MMA_H

#include "gpu_launch.h"

#include <stdbool.h>

/* Fewest tokens that take the tensor-core GEMM: its blocks are 64 tokens tall. */
#define GPU_GEMM_MMA_MIN_TOKENS 32

/* Whether MATMUL node nd runs as the tensor-core GEMM at this execution's token count: the
 * device has it, bf16, f16 or MLX 4/8-bit weights, at least GPU_GEMM_MMA_MIN_TOKENS rows of x,
 * k a multiple of 32, and the wide-load alignment (gpu_view_wide_loads_fit: MLX groups of
 * 32/64/128). */
bool gpu_gemm_mma_fits(const gpu_exec_view *v, const exo_node *nd);
exo_status gpu_enqueue_gemm_mma(const gpu_exec_view *v, const exo_node *nd);

#endif
