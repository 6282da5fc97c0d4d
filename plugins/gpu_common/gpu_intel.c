/* gpu_intel.c — Intel's sub-group and XMX kernels: the build-time choice and the launches (see
 * gpu_intel.h; the kernels are kernels/matmul_intel.cl). */
#include "gpu_intel.h"

#include <stdio.h>
#include <string.h>

/* Sub-groups per work-group, and tokens per sub-group tile of the GEMM (EXO_XMX_SGS, EXO_XMX_TM
 * in kernels/matmul_intel.cl). */
#define INTEL_SUB_GROUPS 4u
#define INTEL_GEMM_TOKENS 32u

bool gpu_intel_has_extension(const char *extensions, const char *name) {
    if (!extensions || !name || !*name) return false;
    size_t len = strlen(name);
    for (const char *p = extensions; (p = strstr(p, name)) != NULL; p += len) {
        /* Whole words only: "cl_intel_subgroups" must not match "cl_intel_subgroups_short". */
        bool starts = p == extensions || p[-1] == ' ';
        bool ends = p[len] == '\0' || p[len] == ' ';
        if (starts && ends) return true;
    }
    return false;
}

static void choose(gpu_intel_choice *out, uint32_t kernels, uint32_t sub_group, int emulated) {
    out->kernels = kernels;
    out->sub_group = sub_group;
    out->emulated = emulated;
    snprintf(out->defines, sizeof out->defines, " -DEXO_INTEL_SUBGROUPS%s -DEXO_XMX_SG=%u%s",
             (kernels & GPU_INTEL_DPAS) ? " -DEXO_INTEL_DPAS" : "", sub_group, emulated ? " -DEXO_XMX_EMULATE" : "");
}

void gpu_intel_choose(const char *extensions, const uint32_t *sub_group_sizes, uint32_t n_sizes, const char *env,
                      gpu_intel_choice *out) {
    memset(out, 0, sizeof *out);
    if (!env || !*env || strcmp(env, "0") == 0) {
        snprintf(out->why, sizeof out->why,
                 "Intel sub-group/XMX kernels off (EXO_GPU_XMX unset: off until they have run on an Intel GPU)");
        return;
    }
    if (strcmp(env, "emulate") == 0 || strcmp(env, "emulate8") == 0) {
        choose(out, GPU_INTEL_SGBLOCK | GPU_INTEL_DPAS, env[7] == '8' ? 8u : 16u, 1);
        snprintf(out->why, sizeof out->why, "Intel sub-group/XMX kernels emulated in local memory (EXO_GPU_XMX=%s, %u lanes)",
                 env, out->sub_group);
        return;
    }
    if (strcmp(env, "1") != 0) {
        snprintf(out->why, sizeof out->why, "Intel sub-group/XMX kernels off: EXO_GPU_XMX=%.40s is not 1, emulate or emulate8",
                 env);
        return;
    }
    static const char *const needed[] = {"cl_intel_subgroups", "cl_intel_subgroups_short",
                                         "cl_intel_required_subgroup_size"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!gpu_intel_has_extension(extensions, needed[i])) {
            snprintf(out->why, sizeof out->why, "Intel sub-group/XMX kernels off: the device lacks %s", needed[i]);
            return;
        }
    bool has8 = false, has16 = false;
    for (uint32_t i = 0; i < n_sizes; i++) {
        has8 |= sub_group_sizes[i] == 8;
        has16 |= sub_group_sizes[i] == 16;
    }
    if (!has8 && !has16) {
        snprintf(out->why, sizeof out->why, "Intel sub-group/XMX kernels off: the device offers no 8- or 16-lane sub-groups");
        return;
    }
    bool dpas = gpu_intel_has_extension(extensions, "cl_intel_subgroup_matrix_multiply_accumulate");
    choose(out, GPU_INTEL_SGBLOCK | (dpas ? GPU_INTEL_DPAS : 0u), has8 ? 8u : 16u, 0);
    snprintf(out->why, sizeof out->why, "Intel sub-group block-read kernels%s on (EXO_GPU_XMX=1, %u lanes)",
             dpas ? " and XMX (DPAS) GEMM" : " (no cl_intel_subgroup_matrix_multiply_accumulate: no XMX GEMM)",
             out->sub_group);
}

/* Block reads want 16-byte aligned rows: x's element offset a multiple of 4 (k is a multiple of 8,
 * gpu_view_wide_loads_fit), MLX words at a multiple of 4 words. */
static bool intel_aligned(const gpu_exec_view *v, const exo_node *nd, int64_t k) {
    if (!gpu_view_wide_loads_fit(v, nd, k)) return false;
    const exo_tensor *w = &v->tensors[nd->src[1]];
    return w->dtype != EXO_DTYPE_MLX_AFFINE || v->offset[nd->src[1]] % 16 == 0;
}

bool gpu_intel_matmul(const gpu_exec_view *v, const exo_node *nd, exo_status *status) {
    uint32_t kernels = v->be->features.intel, lanes = v->be->features.intel_sub_group;
    if (!kernels || (lanes != 8 && lanes != 16)) return false;
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = gpu_view_count(v, nd->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = gpu_view_count(v, nd->src[0], NULL) / k;
    const exo_tensor *w = &v->tensors[nd->src[1]];
    bool bf16 = w->dtype == EXO_DTYPE_BF16, q4 = w->dtype == EXO_DTYPE_MLX_AFFINE && w->q_bits == 4;
    if (n < 1 || !intel_aligned(v, nd, k)) return false;
    uint32_t bias = nd->n_src == 3 ? nd->src[2] : nd->dst;
    uint64_t group_items = (uint64_t)lanes * INTEL_SUB_GROUPS;
    gpu_builder b;
    if (m <= GPU_MATVEC_MAX_TOKENS && (kernels & GPU_INTEL_SGBLOCK) && (bf16 || q4)) {
        /* Two weight rows per sub-group. */
        gpu_build_start(&b, v, bf16 ? "exo_matmul_sgblock_bf16" : "exo_matmul_sgblock_mlx4");
        gpu_build_matmul_args(&b, nd, bias, m, k, n);
        gpu_build_weight_format(&b, nd->src[1]);
        uint64_t groups = ((uint64_t)n + 2 * INTEL_SUB_GROUPS - 1) / (2 * INTEL_SUB_GROUPS);
        *status = gpu_build_go(&b, 1, (uint64_t[3]){groups * group_items, 1, 1}, (size_t[3]){(size_t)group_items, 1, 1});
        return true;
    }
    if (m > GPU_MATVEC_MAX_TOKENS && (kernels & GPU_INTEL_DPAS) && bf16 && k % 16 == 0) {
        /* A sub-group: 32 tokens x 2 * lanes weight rows. */
        gpu_build_start(&b, v, "exo_matmul_xmx_bf16");
        gpu_build_matmul_args(&b, nd, bias, m, k, n);
        uint64_t rows_per_group = 2 * (uint64_t)lanes * INTEL_SUB_GROUPS;
        uint64_t groups = ((uint64_t)n + rows_per_group - 1) / rows_per_group;
        uint64_t tiles = ((uint64_t)m + INTEL_GEMM_TOKENS - 1) / INTEL_GEMM_TOKENS;
        *status = gpu_build_go(&b, 2, (uint64_t[3]){groups * group_items, tiles, 1}, (size_t[3]){(size_t)group_items, 1, 1});
        return true;
    }
    return false;
}
