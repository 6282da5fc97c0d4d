/* gpu_kernels.c — node -> launches (see gpu_kernels.h). Argument lists follow the kernels'
 * parameter lists in kernels/ one for one; a MEM argument stands for (pointer, element
 * offset), the offset in units of the tensor's dtype (gpu_launch.h builds them). */
#include "gpu_kernels.h"

#include "gpu_intel.h"
#include "gpu_gemm_mma.h"
#include "gpu_moe.h"
#include "gpu_target.h"
#include "graph_ir.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* The matrix-vector kernels without wide loads, for tokens t0 .. t0 + mt - 1 of x and y (mt <=
 * GPU_MATVEC_MAX_TOKENS): exo_matmul_vec_mlx for MLX_AFFINE weights (dequantized in the kernel),
 * else the subgroup kernel where the device has Intel subgroups, else the one-row-per-group one. */
static exo_status enqueue_matvec_rows(const gpu_exec_view *v, const exo_node *nd, uint32_t bias, int64_t t0,
                                      int64_t mt, int64_t k, int64_t n) {
    exo_dtype wt = v->tensors[nd->src[1]].dtype;
    int sg = v->be->features.subgroups;
    char name[48];
    gpu_builder b;
    if (wt == EXO_DTYPE_MLX_AFFINE) {
        gpu_build_start(&b, v, "exo_matmul_vec_mlx");
    } else {
        snprintf(name, sizeof name, sg ? "exo_matmul_vec_sg_%s" : "exo_matmul_vec_%s", gpu_dtype_suffix(wt));
        gpu_build_start(&b, v, name);
    }
    /* x and y are F32: element offsets are bytes / 4. */
    gpu_build_mem(&b, v->mem[nd->src[0]], (uint32_t)(v->offset[nd->src[0]] / 4 + (uint64_t)(t0 * k)));
    if (wt == EXO_DTYPE_MLX_AFFINE)
        gpu_build_mlx_weight(&b, nd->src[1]);
    else
        gpu_build_weight(&b, nd->src[1]);
    gpu_build_tensor(&b, bias);
    gpu_build_i32(&b, nd->n_src == 3);
    gpu_build_mem(&b, v->mem[nd->dst], (uint32_t)(v->offset[nd->dst] / 4 + (uint64_t)(t0 * n)));
    gpu_build_u32(&b, (uint64_t)mt);
    gpu_build_u32(&b, (uint64_t)k);
    gpu_build_u32(&b, (uint64_t)n);
    if (wt == EXO_DTYPE_MLX_AFFINE) return gpu_build_go_matvec(&b, k, n);
    /* 64 items per work-group: one weight row per group, or 4 rows (EXO_SG_ROWS) with subgroups. */
    uint64_t groups = sg ? (uint64_t)(n + 3) / 4 : (uint64_t)n;
    return gpu_build_go(&b, 1, (uint64_t[3]){groups * 64, 1, 1}, (size_t[3]){64, 1, 1});
}

/* x [M,K] @ W[N,K]^T by token count M and the data's alignment (gpu_view_wide_loads_fit: float
 * weights, MLX 4/8-bit):
 *  - aligned, M up to GPU_MATVEC_MAX_TOKENS: the wide-load matvec exo_matmul_vec16_* (what NVIDIA
 *    and PoCL get; devices with Intel subgroups take exo_matmul_vec_sg_* instead). MLX 4/8-bit
 *    weights too (Llama 3.2 1B's 4-bit lm_head on an H100: 108 us, against 1181 us in
 *    exo_matmul_vec_mlx, whose lanes each read 32 consecutive x, 128 bytes apart);
 *  - aligned, a batched step's M (gpu_matvec_batch, 5..16 by default): exo_matmul_vecb<8|16>_*,
 *    every weight read once for all rows (kernels/matvec_batch.cl);
 *  - aligned, more tokens: the register-tiled GEMM exo_matmul_gemm*;
 *  - unaligned (or MLX 2/3/5/6-bit) up to GPU_MATVEC_MAX_TOKENS: enqueue_matvec_rows; a batched
 *    step's M in launches of GPU_MATVEC_MAX_TOKENS rows of those; more: the local-memory tiled
 *    kernels (exo_matmul_tiled_*, exo_matmul_tiled_mlx). */
static exo_status enqueue_matmul(const gpu_exec_view *v, const exo_node *nd) {
    exo_status intel_status; /* Intel's kernels first, where the device has them (gpu_intel.h: EXO_GPU_XMX) */
    if (gpu_intel_matmul(v, nd, &intel_status)) return intel_status;
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = gpu_view_count(v, nd->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = gpu_view_count(v, nd->src[0], NULL) / k;
    exo_dtype wt = v->tensors[nd->src[1]].dtype;
    uint32_t bias = nd->n_src == 3 ? nd->src[2] : nd->dst;
    char name[48];
    gpu_builder b;
    bool fits = gpu_view_wide_loads_fit(v, nd, k), batch = gpu_matvec_batch(v, m);
    bool wide = fits && (batch || (!v->be->features.subgroups && m <= GPU_MATVEC_MAX_TOKENS));
    if (wide) {
        char family[48];
        gpu_matvec_family(v, m, nd->src[1], "exo_matmul_vec16", family);
        snprintf(name, sizeof name, "%s_%s", family, gpu_weight_suffix(&v->tensors[nd->src[1]]));
        gpu_build_start(&b, v, name);
        gpu_build_matmul_args(&b, nd, bias, m, k, n);
        gpu_build_tensor(&b, nd->src[0]); /* no residual */
        gpu_build_i32(&b, 0);
        uint32_t rpi = gpu_matvec_rows_per_item(v, m, nd->src[1]);
        gpu_build_u32(&b, rpi);
        gpu_build_weight_format(&b, nd->src[1]);
        return gpu_build_go_matvec_at(&b, m, k, (n + rpi - 1) / rpi, nd->src[1]);
    }
    if (m <= GPU_MATVEC_MAX_TOKENS || batch) {
        exo_status st = EXO_OK;
        for (int64_t t0 = 0; st == EXO_OK && t0 < m; t0 += GPU_MATVEC_MAX_TOKENS)
            st = enqueue_matvec_rows(v, nd, bias, t0, m - t0 < GPU_MATVEC_MAX_TOKENS ? m - t0 : GPU_MATVEC_MAX_TOKENS, k, n);
        return st;
    }
    if (k % 16 == 0 && fits) {
        /* The register-tiled GEMM (kernels/matmul.cl, exo_matmul_gemm*): the largest block (tokens
         * x weight rows) that still leaves GPU_GEMM_MIN_GROUPS work-groups, else the smallest. */
        static const unsigned blocks[][2] = {{128, 128}, {64, 128}, {64, 64}};
        unsigned bi = 0;
        while (bi + 1 < sizeof blocks / sizeof blocks[0] &&
               (uint64_t)((m + blocks[bi][0] - 1) / blocks[bi][0]) * (uint64_t)((n + blocks[bi][1] - 1) / blocks[bi][1]) <
                   GPU_GEMM_MIN_GROUPS)
            bi++;
        unsigned bm = blocks[bi][0], bn = blocks[bi][1];
        snprintf(name, sizeof name, "exo_matmul_gemm%ux%u_%s", bm, bn, gpu_weight_suffix(&v->tensors[nd->src[1]]));
        gpu_build_start(&b, v, name);
        gpu_build_matmul_args(&b, nd, bias, m, k, n);
        gpu_build_weight_format(&b, nd->src[1]);
        return gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)(n + bn - 1) / bn * 16, (uint64_t)(m + bm - 1) / bm * 16, 1},
                            (size_t[3]){16, 16, 1});
    }
    if (wt == EXO_DTYPE_MLX_AFFINE) { /* dequantized in the kernel (kernels/matmul.cl) */
        gpu_build_start(&b, v, "exo_matmul_tiled_mlx");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_mlx_weight(&b, nd->src[1]);
        gpu_build_tensor(&b, bias);
        gpu_build_i32(&b, nd->n_src == 3);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)m);
        gpu_build_u32(&b, (uint64_t)k);
        gpu_build_u32(&b, (uint64_t)n);
    } else {
        snprintf(name, sizeof name, "exo_matmul_tiled_%s", gpu_dtype_suffix(wt));
        gpu_build_start(&b, v, name);
        gpu_build_matmul_args(&b, nd, bias, m, k, n);
    }
    /* 64x64 outputs per 16x16 work-group. */
    return gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)(n + 63) / 64 * 16, (uint64_t)(m + 63) / 64 * 16, 1},
                        (size_t[3]){16, 16, 1});
}

int64_t gpu_cache_rows(const gpu_exec_view *v, uint32_t cache) {
    int64_t ne[EXO_MAX_DIMS];
    gpu_view_count(v, cache, ne);
    uint32_t n_dims = v->tensors[cache].n_dims;
    return ne[n_dims == 4 ? 2 : n_dims - 1];
}

/* The kernels that read or write a KV cache, each in its variants per cache dtype (kernels/common.cl,
 * EXO_KV_VARIANTS: F32 is the plain name). */
static const char *const kv_kernel_variants[][3] = {
    {"exo_kv_write", "exo_kv_write_bf16", "exo_kv_write_f16"},
    {"exo_rope_kv", "exo_rope_kv_bf16", "exo_rope_kv_f16"},
    {"exo_attention", "exo_attention_bf16", "exo_attention_f16"},
    {"exo_attention_split", "exo_attention_split_bf16", "exo_attention_split_f16"},
    {"exo_attention_split_g2", "exo_attention_split_g2_bf16", "exo_attention_split_g2_f16"},
    {"exo_attention_split_g4", "exo_attention_split_g4_bf16", "exo_attention_split_g4_f16"},
    {"exo_attention_split_g8", "exo_attention_split_g8_bf16", "exo_attention_split_g8_f16"},
    {"exo_attention_flash64", "exo_attention_flash64_bf16", "exo_attention_flash64_f16"},
    {"exo_attention_flash128", "exo_attention_flash128_bf16", "exo_attention_flash128_f16"},
};

static void use_kv_variant(gpu_builder *b, exo_dtype cache_dtype) {
    size_t variant = cache_dtype == EXO_DTYPE_BF16 ? 1 : cache_dtype == EXO_DTYPE_F16 ? 2 : 0;
    for (size_t i = 0; i < sizeof kv_kernel_variants / sizeof kv_kernel_variants[0]; i++)
        if (strcmp(b->l.kernel, kv_kernel_variants[i][0]) == 0) {
            b->l.kernel = kv_kernel_variants[i][variant];
            return;
        }
    assert(!"gpu_build_kv_slots: a kernel without KV dtype variants");
}

void gpu_build_kv_slots(gpu_builder *b, const exo_node *nd, uint32_t cache, uint32_t stand_in) {
    const exo_tensor *t = &b->v->tensors[cache];
    bool pooled = t->n_dims == 4;
    use_kv_variant(b, t->dtype);
    gpu_build_tensor(b, pooled ? nd->src[nd->n_src - 1] : stand_in);
    gpu_build_u32(b, pooled ? (uint64_t)t->ne[3] : 0);
}

/* The parameters both attention kernels take after their tensors (kernels/attention.cl). */
static void attention_params(gpu_builder *b, const exo_node *nd) {
    gpu_build_i32(b, nd->i[EXO_ATTENTION_I_N_HEADS]);
    gpu_build_i32(b, nd->i[EXO_ATTENTION_I_N_KV_HEADS]);
    gpu_build_i32(b, nd->i[EXO_ATTENTION_I_HEAD_DIM]);
    gpu_build_i32(b, nd->i[EXO_ATTENTION_I_WINDOW]);
    gpu_build_f32(b, nd->f[EXO_ATTENTION_F_SCALE]);
    gpu_build_f32(b, nd->f[EXO_ATTENTION_F_SOFTCAP]);
}

/* ATTENTION's optional sinks (src[4], ABI 1.5): the tensor and whether it is there. Pooled
 * caches (ABI 1.6) append the slots after them. */
static void attention_sinks(gpu_builder *b, const exo_node *nd) {
    bool sinks = gpu_attention_has_sinks(b->v, nd);
    gpu_build_tensor(b, sinks ? nd->src[4] : nd->src[0]);
    gpu_build_i32(b, sinks);
}

/* Up to GPU_ATT_SPLIT_MAX_TOKENS query tokens (a decode step, a batched one of several
 * sequences): the visible rows cut into splits of whole tiles (enough work-groups to fill a large
 * GPU, at most GPU_ATT_MAX_SPLITS per head). The split length comes from the token that sees the
 * most rows: the one at the largest position, as a window only caps the count (v->attn_position);
 * tokens that see fewer leave their last splits empty. */
static int64_t attention_tiles_per_split(const gpu_exec_view *v, const exo_node *nd, int64_t *splits) {
    int64_t last = v->attn_position, window = nd->i[EXO_ATTENTION_I_WINDOW];
    int64_t first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
    int64_t rows = last - first + 1, tiles = (rows + GPU_ATT_TILE - 1) / GPU_ATT_TILE;
    int64_t tiles_per_split = (tiles + GPU_ATT_MAX_SPLITS - 1) / GPU_ATT_MAX_SPLITS;
    *splits = (tiles + tiles_per_split - 1) / tiles_per_split;
    return tiles_per_split;
}

int64_t gpu_attention_split_count(const gpu_exec_view *v, const exo_node *nd) {
    int64_t splits;
    attention_tiles_per_split(v, nd, &splits);
    return splits;
}

/* The split attention's kernel: the grouped-query one (kernels/attention_gqa.cl,
 * exo_attention_split_g<2|4|8>: the smallest variant that holds the group of query heads reading
 * one KV head), or exo_attention_split (one query head a work-group) for MHA, groups past the
 * backend's largest variant (features.att_gqa_max; 0 under EXO_GPU_ATT_GQA=0) and heads wider
 * than GPU_ATT_GQA_MAX_DIM. */
static const char *attention_split_kernel(const gpu_exec_view *v, const exo_node *nd) {
    int64_t heads = nd->i[EXO_ATTENTION_I_N_HEADS], kv_heads = nd->i[EXO_ATTENTION_I_N_KV_HEADS];
    int64_t group = kv_heads > 0 ? heads / kv_heads : 0;
    if (group < 2 || group > v->be->features.att_gqa_max || nd->i[EXO_ATTENTION_I_HEAD_DIM] > GPU_ATT_GQA_MAX_DIM)
        return "exo_attention_split";
    return group <= 2 ? "exo_attention_split_g2" : group <= 4 ? "exo_attention_split_g4" : "exo_attention_split_g8";
}

exo_status gpu_enqueue_attention_splits(const gpu_exec_view *v, const exo_node *nd, int64_t tokens) {
    int64_t splits, tiles_per_split = attention_tiles_per_split(v, nd, &splits);
    const char *kernel = attention_split_kernel(v, nd);
    bool grouped = strcmp(kernel, "exo_attention_split") != 0;
    gpu_builder b;
    gpu_build_start(&b, v, kernel);
    for (uint32_t s = 0; s < 4; s++) gpu_build_tensor(&b, nd->src[s]);
    gpu_build_kv_slots(&b, nd, nd->src[1], nd->src[3]);
    gpu_build_mem(&b, v->attn_partials, 0);
    attention_params(&b, nd);
    gpu_build_i32(&b, gpu_cache_rows(v, nd->src[1]));
    gpu_build_i32(&b, tiles_per_split * GPU_ATT_TILE);
    /* One work-group per (split, head), or per (split, KV head) for the grouped-query kernels. */
    uint64_t heads = (uint64_t)nd->i[grouped ? EXO_ATTENTION_I_N_KV_HEADS : EXO_ATTENTION_I_N_HEADS];
    return gpu_build_go(&b, 3, (uint64_t[3]){(uint64_t)splits * GPU_ATT_TILE, heads, (uint64_t)tokens},
                        (size_t[3]){GPU_ATT_TILE, 1, 1});
}

bool gpu_attention_has_sinks(const gpu_exec_view *v, const exo_node *nd) {
    return nd->n_src >= (v->tensors[nd->src[1]].n_dims == 4 ? 6u : 5u);
}

/* The split launch, then one combine per (head, token). */
static exo_status enqueue_attention_split(const gpu_exec_view *v, const exo_node *nd, int64_t tokens) {
    exo_status st = gpu_enqueue_attention_splits(v, nd, tokens);
    if (st != EXO_OK) return st;
    gpu_builder b;
    gpu_build_start(&b, v, "exo_attention_combine");
    gpu_build_mem(&b, v->attn_partials, 0);
    attention_sinks(&b, nd);
    gpu_build_tensor(&b, nd->dst);
    gpu_build_i32(&b, nd->i[EXO_ATTENTION_I_HEAD_DIM]);
    gpu_build_i32(&b, gpu_attention_split_count(v, nd));
    uint64_t heads = (uint64_t)nd->i[EXO_ATTENTION_I_N_HEADS];
    return gpu_build_go(&b, 2, (uint64_t[3]){heads * GPU_ATT_TILE, (uint64_t)tokens, 1}, (size_t[3]){GPU_ATT_TILE, 1, 1});
}

/* The arguments exo_attention and exo_attention_flash<DMAX> share (kernels/attention.cl): q, k
 * cache, v cache, positions, the KV slots, sinks, the output, the parameters, the cache's rows. */
static void attention_prompt_args(gpu_builder *b, const gpu_exec_view *v, const exo_node *nd, const char *kernel) {
    gpu_build_start(b, v, kernel);
    for (uint32_t s = 0; s < 4; s++) gpu_build_tensor(b, nd->src[s]);
    gpu_build_kv_slots(b, nd, nd->src[1], nd->src[3]);
    attention_sinks(b, nd);
    gpu_build_tensor(b, nd->dst);
    attention_params(b, nd);
    gpu_build_i32(b, gpu_cache_rows(v, nd->src[1]));
}

/* A prompt's attention (kernels/attention.cl, exo_attention_flash<DMAX>): a work-group per
 * (head, GPU_ATT_FLASH_QUERIES query tokens), K/V tiles through local memory for all of them;
 * the smaller size for heads of at most 64 dims (larger K/V tiles in the same local memory). */
static exo_status enqueue_attention_flash(const gpu_exec_view *v, const exo_node *nd, int64_t tokens) {
    gpu_builder b;
    attention_prompt_args(&b, v, nd, nd->i[EXO_ATTENTION_I_HEAD_DIM] <= 64 ? "exo_attention_flash64" : "exo_attention_flash128");
    gpu_build_u32(&b, (uint64_t)tokens);
    uint64_t heads = (uint64_t)nd->i[EXO_ATTENTION_I_N_HEADS];
    uint64_t tiles = ((uint64_t)tokens + GPU_ATT_FLASH_QUERIES - 1) / GPU_ATT_FLASH_QUERIES;
    return gpu_build_go(&b, 2, (uint64_t[3]){heads * GPU_ATT_FLASH_ITEMS, tiles, 1}, (size_t[3]){GPU_ATT_FLASH_ITEMS, 1, 1});
}

static exo_status enqueue_binary(const gpu_exec_view *v, const exo_node *nd, const char *kernel) {
    gpu_builder b;
    gpu_build_start(&b, v, kernel);
    int64_t count = gpu_view_count(v, nd->src[0], NULL);
    gpu_build_tensor(&b, nd->src[0]);
    gpu_build_tensor(&b, nd->src[1]);
    gpu_build_i32(&b, v->tensors[nd->src[1]].dtype);
    gpu_build_u32(&b, (uint64_t)gpu_view_count(v, nd->src[1], NULL));
    gpu_build_tensor(&b, nd->dst);
    gpu_build_u32(&b, (uint64_t)count);
    return gpu_build_go_1d(&b, (uint64_t)count);
}

exo_status gpu_enqueue_node(const gpu_exec_view *v, const exo_node *nd, uint32_t index) {
    gpu_builder b;
    int64_t ne[EXO_MAX_DIMS];
    switch (nd->op) {
    case EXO_OP_GET_ROWS: {
        int64_t count = gpu_view_count(v, nd->src[0], ne), tokens = gpu_view_count(v, nd->src[1], NULL);
        if (v->tensors[nd->src[0]].dtype == EXO_DTYPE_MLX_AFFINE) { /* rows dequantized (kernels/embed.cl) */
            gpu_build_start(&b, v, "exo_get_rows_mlx");
            gpu_build_mlx_weight(&b, nd->src[0]);
        } else {
            gpu_build_start(&b, v, "exo_get_rows");
            gpu_build_tensor(&b, nd->src[0]);
            gpu_build_i32(&b, v->tensors[nd->src[0]].dtype);
        }
        gpu_build_u32(&b, (uint64_t)(count / ne[0]));
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)ne[0]);
        gpu_build_f32(&b, nd->f[EXO_GET_ROWS_F_SCALE]);
        return gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)ne[0], (uint64_t)tokens, 1}, (size_t[3]){64, 1, 1});
    }
    case EXO_OP_RMS_NORM: {
        int64_t count = gpu_view_count(v, nd->src[0], ne);
        /* A power-of-two group no wider than the row (small rows: q/k norm over head_dim). */
        size_t local = 256;
        while (local > 32 && (int64_t)local / 2 >= ne[0]) local /= 2;
        gpu_build_start(&b, v, "exo_rms_norm");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_i32(&b, v->tensors[nd->src[1]].dtype);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)ne[0]);
        gpu_build_f32(&b, nd->f[EXO_RMS_NORM_F_EPS]);
        gpu_build_i32(&b, nd->i[EXO_RMS_NORM_I_ADD_ONE]);
        return gpu_build_go(&b, 1, (uint64_t[3]){(uint64_t)(count / ne[0]) * local, 1, 1}, (size_t[3]){local, 1, 1});
    }
    case EXO_OP_MATMUL: return gpu_gemm_mma_fits(v, nd) ? gpu_enqueue_gemm_mma(v, nd) : enqueue_matmul(v, nd);
    case EXO_OP_ADD: return enqueue_binary(v, nd, "exo_add");
    case EXO_OP_MUL: return enqueue_binary(v, nd, "exo_mul");
    case EXO_OP_GLU: {
        int64_t count = gpu_view_count(v, nd->src[0], NULL);
        gpu_build_start(&b, v, "exo_glu");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)count);
        gpu_build_i32(&b, nd->i[EXO_GLU_I_ACT]);
        gpu_build_f32(&b, nd->f[EXO_GLU_F_ALPHA]); /* EXO_ACT_SWIGLU_CLAMP only */
        gpu_build_f32(&b, nd->f[EXO_GLU_F_LIMIT]);
        return gpu_build_go_1d(&b, (uint64_t)count);
    }
    case EXO_OP_ROPE: {
        int64_t count = gpu_view_count(v, nd->src[0], ne), tokens = gpu_view_count(v, nd->src[1], NULL);
        int64_t heads = count / (ne[0] * tokens);
        gpu_build_start(&b, v, "exo_rope");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_tensor(&b, nd->src[2]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)ne[0]);
        gpu_build_u32(&b, (uint64_t)heads);
        gpu_build_i32(&b, nd->i[EXO_ROPE_I_N_ROT]);
        gpu_build_i32(&b, nd->i[EXO_ROPE_I_MODE]);
        gpu_build_f32(&b, nd->f[EXO_ROPE_F_ATTN_FACTOR]);
        return gpu_build_go(&b, 3, (uint64_t[3]){(uint64_t)ne[0], (uint64_t)heads, (uint64_t)tokens}, (size_t[3]){32, 1, 1});
    }
    case EXO_OP_KV_WRITE: {
        int64_t tokens = gpu_view_count(v, nd->src[1], NULL), row = gpu_view_count(v, nd->src[0], NULL) / tokens;
        gpu_build_start(&b, v, "exo_kv_write");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->src[1]);
        gpu_build_kv_slots(&b, nd, nd->dst, nd->src[1]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)row);
        gpu_build_u32(&b, (uint64_t)gpu_cache_rows(v, nd->dst));
        return gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)row, (uint64_t)tokens, 1}, (size_t[3]){64, 1, 1});
    }
    case EXO_OP_ATTENTION: {
        int64_t tokens = gpu_view_count(v, nd->src[3], NULL);
        if (tokens <= GPU_ATT_SPLIT_MAX_TOKENS && v->attn_partials && v->attn_position >= 0)
            return enqueue_attention_split(v, nd, tokens);
        int32_t head_dim = nd->i[EXO_ATTENTION_I_HEAD_DIM];
        if (head_dim % 4 == 0 && head_dim <= GPU_ATT_FLASH_MAX_DIM) return enqueue_attention_flash(v, nd, tokens);
        attention_prompt_args(&b, v, nd, "exo_attention");
        /* One work-group of 4 parts x 64 items per (head, token) (kernels/attention.cl): the
         * parts walk alternate tiles of the cache; head_dim <= 512 keeps 8 dims per item. */
        return gpu_build_go(&b, 2, (uint64_t[3]){(uint64_t)nd->i[EXO_ATTENTION_I_N_HEADS] * 256, (uint64_t)tokens, 1}, (size_t[3]){256, 1, 1});
    }
    case EXO_OP_SOFTCAP: {
        int64_t count = gpu_view_count(v, nd->src[0], NULL);
        gpu_build_start(&b, v, "exo_softcap");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)count);
        gpu_build_f32(&b, nd->f[EXO_SOFTCAP_F_CAP]);
        return gpu_build_go_1d(&b, (uint64_t)count);
    }
    case EXO_OP_ARGMAX: {
        /* One work-group per row of x (any row count: the token rows, or a head's selected rows),
         * its index into dst I32 [rows] (kernels/argmax.cl). */
        int64_t count = gpu_view_count(v, nd->src[0], ne);
        gpu_build_start(&b, v, "exo_argmax_rows");
        gpu_build_tensor(&b, nd->src[0]);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)ne[0]);
        return gpu_build_go(&b, 1, (uint64_t[3]){(uint64_t)(count / ne[0]) * GPU_ARGMAX_WG, 1, 1},
                            (size_t[3]){GPU_ARGMAX_WG, 1, 1});
    }
    case EXO_OP_COPY: {
        const exo_tensor *s = &v->tensors[nd->src[0]], *d = &v->tensors[nd->dst];
        int64_t count = gpu_view_count(v, nd->src[0], NULL);
        if (s->dtype != d->dtype) {
            gpu_build_start(&b, v, "exo_copy_to_f32");
            gpu_build_tensor(&b, nd->src[0]);
            gpu_build_i32(&b, s->dtype);
        } else {
            gpu_build_start(&b, v, exo_dtype_size(s->dtype) == 4 ? "exo_copy_u32" : "exo_copy_u16");
            gpu_build_tensor(&b, nd->src[0]);
        }
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)count);
        return gpu_build_go_1d(&b, (uint64_t)count);
    }
    case EXO_OP_MOE_TOPK:
    case EXO_OP_MOE_WEIGHTS:
    case EXO_OP_MOE_MATMUL:
    case EXO_OP_MOE_COMBINE: return gpu_moe_enqueue(v, nd, index);
    default:
        break;
    }
    return gpu_fail(v->be, EXO_ERR_INTERNAL, "graph_execute: node %u has op %d, which has no kernel", index, (int)nd->op);
}
