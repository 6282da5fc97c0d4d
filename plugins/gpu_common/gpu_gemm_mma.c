/* gpu_gemm_mma.c — the tensor-core prompt GEMM's choice and launch (see gpu_gemm_mma.h). */
#include "gpu_gemm_mma.h"

#include "graph_ir.h"

#include <stdio.h>

bool gpu_gemm_mma_fits(const gpu_exec_view *v, const exo_node *nd) {
    exo_dtype wt = v->tensors[nd->src[1]].dtype;
    if (!v->be->features.mma_parts ||
        (wt != EXO_DTYPE_BF16 && wt != EXO_DTYPE_F16 && wt != EXO_DTYPE_MLX_AFFINE))
        return false;
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, nd->src[1], wne);
    int64_t k = wne[0], m = gpu_view_count(v, nd->src[0], NULL) / k;
    return m >= GPU_GEMM_MMA_MIN_TOKENS && k % 32 == 0 && gpu_view_wide_loads_fit(v, nd, k);
}

/* Blocks of 64 tokens x 128 weight rows, or x 64 where 128 would leave fewer than
 * GPU_GEMM_MIN_GROUPS work-groups (Llama 3.2 1B's k/v projections at 512 tokens: 32 of 128 rows). */
exo_status gpu_enqueue_gemm_mma(const gpu_exec_view *v, const exo_node *nd) {
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = gpu_view_count(v, nd->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = gpu_view_count(v, nd->src[0], NULL) / k;
    uint32_t bias = nd->n_src == 3 ? nd->src[2] : nd->dst;
    uint64_t row_blocks = (uint64_t)(m + 63) / 64;
    unsigned bn = row_blocks * (uint64_t)((n + 127) / 128) >= GPU_GEMM_MIN_GROUPS ? 128 : 64;
    gpu_builder b;
    char name[48];
    snprintf(name, sizeof name, "exo_matmul_mma64x%u_%s", bn, gpu_weight_suffix(&v->tensors[nd->src[1]]));
    gpu_build_start(&b, v, name);
    gpu_build_matmul_args(&b, nd, bias, m, k, n);
    gpu_build_u32(&b, v->be->features.mma_parts);
    gpu_build_weight_format(&b, nd->src[1]); /* MLX: q_type, group */
    return gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)(n + bn - 1) / bn * 128, row_blocks, 1}, (size_t[3]){128, 1, 1});
}
