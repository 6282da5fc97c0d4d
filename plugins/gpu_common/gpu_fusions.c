/* gpu_fusions.c — the fusion table (see gpu_fusions.h): per fusion, its detection, its fit
 * check and its launch, side by side. Argument lists follow the fused kernels' parameter lists
 * in kernels/matmul.cl and kernels/rope.cl one for one. */
#include "gpu_fusions.h"

#include "gpu_kernels.h"
#include "gpu_intel.h"
#include "graph_ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most matmuls sharing their input in one exo_matmul_vec16x3_* launch. */
#define MATMUL_GROUP_MAX 3

/* Whether tensor t is an intermediate that only nodes first .. last read (so a launch that
 * computes its producer and those readers may skip writing it). */
static bool read_only_by(const exo_graph *g, uint32_t t, uint32_t first, uint32_t last) {
    if (exo_graph_tensor(g, t)->flags & (EXO_TENSOR_INPUT | EXO_TENSOR_OUTPUT | EXO_TENSOR_WEIGHT | EXO_TENSOR_KV)) return false;
    for (uint32_t j = 0; j < g->n_nodes; j++) {
        if (j >= first && j <= last) continue;
        for (uint32_t s = 0; s < exo_graph_node(g, j)->n_src; s++)
            if (exo_graph_node(g, j)->src[s] == t) return false;
    }
    return true;
}

/* ------------------------------------------------ an RMS_NORM folded into the matvec after it */

bool gpu_fusion_norm_detect(const exo_graph *g, uint32_t i, uint32_t len) {
    return exo_graph_node(g, i)->op == EXO_OP_RMS_NORM && read_only_by(g, exo_graph_node(g, i)->dst, i + 1, i + len);
}

static bool dmv_fits(const gpu_exec_view *v, const exo_node *nodes, uint32_t count);

/* When the run takes one token (or, `batched`, a batched step's rows, which the x3 and GLU
 * kernels exo_matmul_vecb<T>* normalise per token), the weight and x are aligned for the wide
 * loads, and no output (`out`, the run's own outputs) overlaps the raw x, which is read while they
 * are written; and, under EXO_GPU_DMV_NORM=0, the run is not an exo_dmv_* one. */
static bool norm_fits(const gpu_exec_view *v, const exo_node *norm, const exo_node *nodes, uint32_t count,
                      uint32_t out, bool batched) {
    if (norm->op != EXO_OP_RMS_NORM || nodes[0].src[0] != norm->dst) return false;
    if (v->be->features.no_dmv_norm && dmv_fits(v, nodes, count)) return false;
    int64_t ne[EXO_MAX_DIMS];
    int64_t x_count = gpu_view_count(v, norm->src[0], ne);
    const exo_tensor *w = &v->tensors[norm->src[1]];
    uint32_t wsz = exo_dtype_size(w->dtype);
    /* One token's row (or a batched step's); the weight read 8 at a time from a multiple of 4;
     * x as float4s. */
    bool rows_fit = x_count == ne[0] || (batched && ne[0] > 0 && gpu_matvec_batch(v, x_count / ne[0]));
    if (!rows_fit || ne[0] % 8 != 0 || !wsz || v->offset[norm->src[1]] % ((uint64_t)wsz * 4) != 0 ||
        v->offset[norm->src[0]] % 16 != 0)
        return false;
    if (gpu_view_overlaps(v, out, norm->src[0])) return false;
    for (uint32_t i = 0; i < count; i++)
        if (gpu_view_overlaps(v, nodes[i].dst, norm->src[0])) return false;
    return true;
}

/* The norm arguments of the fused matvec kernels: the RMS_NORM node folded in, or none. */
static void norm_args(gpu_builder *b, const exo_node *norm, uint32_t x) {
    gpu_build_i32(b, norm != NULL);
    gpu_build_tensor(b, norm ? norm->src[1] : x);
    gpu_build_i32(b, norm ? b->v->tensors[norm->src[1]].dtype : 0);
    gpu_build_f32(b, norm ? norm->f[EXO_RMS_NORM_F_EPS] : 0.0f);
    gpu_build_i32(b, norm ? norm->i[EXO_RMS_NORM_I_ADD_ONE] : 0);
}

/* The head of a fused matvec launch: kernel `family`_<weight storage> (name: its storage;
 * gpu_weight_suffix: f32, f16, bf16, mlx4, mlx8), then x:
 * the folded RMS_NORM's raw input, or the input the run's matmuls share. */
static void matvec_start(gpu_builder *b, char name[48], const gpu_exec_view *v, const char *family,
                         const exo_node *run, const exo_node *norm) {
    snprintf(name, 48, "%s_%s", family, gpu_weight_suffix(&v->tensors[run[0].src[1]]));
    gpu_build_start(b, v, name);
    gpu_build_tensor(b, norm ? norm->src[0] : run[0].src[0]);
}

/* One matmul of a fused matvec: its weight (an MLX one as words, scales, biases), its bias
 * (itself when it has none) and whether it has one. */
static void member_args(gpu_builder *b, const exo_node *nd) {
    gpu_build_weight(b, nd->src[1]);
    gpu_build_tensor(b, nd->n_src == 3 ? nd->src[2] : nd->dst);
    gpu_build_i32(b, nd->n_src == 3);
}

/* ------------------------------------------------ the one-token decode matvec: exo_dmv_* */

/* kernels/decode.cl: EXO_DMV_KMAX (x staged in local memory), EXO_DMV_KSMALL (the exo_dmv_k2048_*
 * kernels' staging), EXO_DMV_WG, rows per item. */
#define DMV_KMAX 8192
#define DMV_KSMALL 2048
#define DMV_WG 256
#define DMV_SLOTS 4
#define DMV_CHUNKS_PER_ITEM 4 /* a row's 16-byte chunks per item, which set the lanes (see dmv_enqueue) */

static bool env_is_zero(const gpu_backend *be, const char *name) {
    const char *e = be->host->get_env(be->host->host_ctx, name);
    return e && strcmp(e, "0") == 0;
}

/* Variable `name` as a power of two in [lo, hi], or 0 when unset (a warning when it is not one). */
static uint32_t env_pow2(const gpu_backend *be, const char *name, unsigned long lo, unsigned long hi) {
    const char *e = be->host->get_env(be->host->host_ctx, name);
    if (!e || !*e) return 0;
    char *end = NULL;
    unsigned long n = strtoul(e, &end, 10);
    if (*end == '\0' && n >= lo && n <= hi && (n & (n - 1)) == 0) return (uint32_t)n;
    if (be->host->log) {
        char line[160];
        snprintf(line, sizeof line, "%s=%.32s ignored: expected a power of two from %lu to %lu", name, e, lo, hi);
        be->host->log(be->host->host_ctx, EXO_LOG_WARN, be->name, line);
    }
    return 0;
}

void gpu_fusion_read_env(gpu_backend *be) {
    be->features.no_dmv = env_is_zero(be, "EXO_GPU_DECODE_MATVEC");
    be->features.no_combine_fusion = env_is_zero(be, "EXO_GPU_FUSE_COMBINE");
    const char *cb = be->host->get_env(be->host->host_ctx, "EXO_GPU_FUSE_COMBINE_BATCH");
    be->features.combine_batch = cb && strcmp(cb, "1") == 0;
    be->features.att_gqa_max = env_is_zero(be, "EXO_GPU_ATT_GQA") ? 0 : GPU_ATT_GQA_MAX_GROUP;
    be->features.no_dmv_k2048 = env_is_zero(be, "EXO_GPU_DMV_K2048");
    be->features.no_dmv_norm = env_is_zero(be, "EXO_GPU_DMV_NORM");
    be->features.dmv_chunks = env_pow2(be, "EXO_GPU_DMV_CHUNKS", 1, 64);
    be->features.dmv_lanes = env_pow2(be, "EXO_GPU_DMV_LANES", 32, DMV_WG);
}

/* The exo_dmv_* storage of weight w, or NULL: f32, bf16, and MLX 4- and 8-bit codes with groups
 * of 32, 64 or 128 (whole 16-byte chunks of 32 / 16 codes per group). */
static const char *dmv_storage(const exo_tensor *w) {
    if (w->dtype == EXO_DTYPE_F32) return "f32";
    if (w->dtype == EXO_DTYPE_BF16) return "bf16";
    if (w->dtype != EXO_DTYPE_MLX_AFFINE || (w->q_group != 32 && w->q_group != 64 && w->q_group != 128)) return NULL;
    return w->q_bits == 4 ? "mlx4" : w->q_bits == 8 ? "mlx8" : NULL;
}

/* Weights per 16-byte chunk of an exo_dmv_* storage (EXO_DMV_CE_*). */
static int64_t dmv_chunk_elems(const exo_tensor *w) {
    return w->dtype == EXO_DTYPE_F32 ? 4 : w->dtype == EXO_DTYPE_BF16 ? 8 : w->q_bits == 4 ? 32 : 16;
}

/* Whether matmuls nodes[0 .. count-1], sharing x, take exo_dmv_*: one token, an f32 x of at
 * most DMV_KMAX elements, one storage and format, each weight's rows 16-byte aligned (k a
 * multiple of the chunk's elements, the offset of whole chunks). */
static bool dmv_fits(const gpu_exec_view *v, const exo_node *nodes, uint32_t count) {
    /* Where Intel's sub-group decode kernels were chosen (EXO_GPU_XMX, gpu_intel.h), one-token
     * matmuls stay theirs: they are that device's decode path, and their emulated goldens check
     * it on PoCL. */
    if (v->be->features.no_dmv || (v->be->features.intel & GPU_INTEL_SGBLOCK)) return false;
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, nodes[0].src[1], wne);
    int64_t k = wne[0];
    const exo_tensor *w0 = &v->tensors[nodes[0].src[1]];
    const char *storage = dmv_storage(w0);
    if (!storage || k > DMV_KMAX || gpu_view_count(v, nodes[0].src[0], NULL) != k ||
        v->tensors[nodes[0].src[0]].dtype != EXO_DTYPE_F32)
        return false;
    int64_t chunk_elems = dmv_chunk_elems(w0);
    if (k % chunk_elems != 0) return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t w = nodes[i].src[1];
        if (nodes[i].src[0] != nodes[0].src[0] || !gpu_same_weight_format(v, w, nodes[0].src[1]) ||
            gpu_view_count(v, w, NULL) % k != 0 || v->offset[w] % 16 != 0)
            return false;
    }
    return true;
}

/* exo_dmv_<storage> over members run[0 .. count-1] (count <= 3, sharing x): each written to its
 * own output, or (glu >= 0, count 2: gate and up) act(gate) * up written to glu_dst, or (res
 * set, count 1) the output plus res written to out, or (rope: the ROPE q, ROPE k, KV_WRITE k,
 * KV_WRITE v after q/k/v, count 3) q roped to its ROPE's output, k roped and v into the caches.
 * att: x is that ATTENTION's output, merged from the split attention's partial states while it
 * is staged (its exo_attention_split launched just before) instead of read. */
static exo_status dmv_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t count, int glu, uint32_t glu_dst,
                              uint32_t res, uint32_t out, const exo_node *rope, const exo_node *norm,
                              const exo_node *att) {
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, run[0].src[1], wne);
    int64_t k = wne[0], items = 0;
    char name[48];
    bool small = k <= DMV_KSMALL && !v->be->features.no_dmv_k2048;
    snprintf(name, sizeof name, "exo_dmv_%s%s", small ? "k2048_" : "", dmv_storage(&v->tensors[run[0].src[1]]));
    gpu_builder b;
    gpu_build_start(&b, v, name);
    if (att) /* x: the partial states the kernel merges into x */
        gpu_build_mem(&b, v->attn_partials, 0);
    else
        gpu_build_tensor(&b, norm ? norm->src[0] : run[0].src[0]);
    gpu_build_u32(&b, (uint64_t)k);
    for (uint32_t i = 0; i < 3; i++) {
        /* Fewer than three: member 0 again, with no rows. */
        const exo_node *nd = &run[i < count ? i : 0];
        int64_t n = i < count ? gpu_view_count(v, nd->src[1], NULL) / k : 0;
        member_args(&b, nd);
        if (rope)
            gpu_build_tensor(&b, i == 0 ? rope[0].dst : rope[1 + i].dst); /* roped q, the K and V caches */
        else
            gpu_build_tensor(&b, glu >= 0 ? glu_dst : i == 0 && res != UINT32_MAX ? out : nd->dst);
        gpu_build_u32(&b, (uint64_t)n);
        if (glu < 0) items += (n + DMV_SLOTS - 1) / DMV_SLOTS;
        else if (i == 0) items = (n + 1) / 2;
    }
    gpu_build_tensor(&b, res != UINT32_MAX ? res : run[0].src[0]);
    gpu_build_i32(&b, res != UINT32_MAX);
    gpu_build_i32(&b, glu);
    uint32_t x = run[0].src[0]; /* stand-in for the tensors a launch without RoPE never reads */
    bool sinks = att && gpu_attention_has_sinks(v, att);
    gpu_build_i32(&b, rope ? rope[0].i[EXO_ROPE_I_MODE] : -1);
    gpu_build_tensor(&b, rope ? rope[0].src[1] : x);
    /* The slots of a pooled cache and their count (0: a 3-D cache), as gpu_build_kv_slots
     * passes them; the kernel takes the cache dtype as an argument, not as a variant. */
    const exo_tensor *cache = rope ? &v->tensors[rope[2].dst] : NULL;
    bool pooled = cache && cache->n_dims == 4;
    gpu_build_tensor(&b, pooled ? rope[2].src[rope[2].n_src - 1] : x);
    gpu_build_u32(&b, pooled ? (uint64_t)cache->ne[3] : 0);
    gpu_build_tensor(&b, rope ? rope[0].src[2] : sinks ? att->src[4] : x); /* inv_freq, or the attention's sinks */
    int64_t qne[EXO_MAX_DIMS];
    if (rope) gpu_view_count(v, rope[0].src[0], qne);
    gpu_build_u32(&b, rope ? (uint64_t)qne[0] : att ? (uint64_t)att->i[EXO_ATTENTION_I_HEAD_DIM] : 0);
    gpu_build_f32(&b, rope ? rope[0].f[EXO_ROPE_F_ATTN_FACTOR] : 0.0f);
    gpu_build_u32(&b, rope ? (uint64_t)gpu_cache_rows(v, rope[2].dst) : 0);
    gpu_build_i32(&b, cache ? (int)cache->dtype : 0);
    norm_args(&b, norm, run[0].src[0]);
    /* The attention's merge: its splits per head, negative when it has sinks (passed as inv_freq). */
    int64_t splits = att ? gpu_attention_split_count(v, att) : 0;
    gpu_build_i32(&b, sinks ? -splits : splits);
    gpu_build_weight_format(&b, run[0].src[1]);
    /* About `per` chunks of a row per item (lanes the power of two >= chunks / per, 32 .. 256):
     * 4 measured best on the H100 (docs/performance.md 5.5.3; 2 before, 3-14 % slower steps). */
    const exo_tensor *w = &v->tensors[run[0].src[1]];
    uint64_t chunks = (uint64_t)k / (uint64_t)dmv_chunk_elems(w), lanes = 32;
    uint64_t per = v->be->features.dmv_chunks ? v->be->features.dmv_chunks : DMV_CHUNKS_PER_ITEM;
    while (lanes < DMV_WG && lanes * per < chunks) lanes *= 2;
    if (v->be->features.dmv_lanes) lanes = v->be->features.dmv_lanes;
    return gpu_build_go(&b, 2, (uint64_t[3]){lanes, (uint64_t)items, 1}, (size_t[3]){(size_t)lanes, (size_t)(DMV_WG / lanes), 1});
}

/* ------------------------------------------------ matmuls sharing their input: exo_matmul_vec16x3_* */

/* The q/k/v projections, gate and up (graph_matmul_group_length). */
static uint32_t group_detect(const exo_graph *g, uint32_t i) {
    uint32_t len = graph_matmul_group_length(g, i, MATMUL_GROUP_MAX);
    return len > 1 ? len : 0;
}

/* Matrix-vector sized, of one weight format (dtype; for MLX_AFFINE also bits, group and scale
 * dtype: the kernel takes them once), aligned for the wide loads, and the device takes that
 * kernel (not the subgroup one). */
static bool group_fits_matmuls(const gpu_exec_view *v, const exo_node *nodes, uint32_t count) {
    if (count < 2 || count > MATMUL_GROUP_MAX || v->be->features.subgroups) return false;
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, nodes[0].src[1], wne);
    if (!gpu_matvec_tokens_fit(v, gpu_view_count(v, nodes[0].src[0], NULL) / wne[0])) return false;
    for (uint32_t i = 0; i < count; i++)
        if (!gpu_same_weight_format(v, nodes[i].src[1], nodes[0].src[1]) || !gpu_view_wide_loads_fit(v, &nodes[i], wne[0]))
            return false;
    return true;
}

static bool group_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    return group_fits_matmuls(v, run, len) && (!norm || norm_fits(v, norm, run, len, run[0].dst, true));
}

static exo_status group_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    if (dmv_fits(v, run, len)) return dmv_enqueue(v, run, len, -1, 0, UINT32_MAX, 0, NULL, norm, NULL);
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, run[0].src[1], wne);
    int64_t k = wne[0], m = gpu_view_count(v, run[0].src[0], NULL) / k, rows = 0;
    char name[48];
    gpu_builder b;
    char family[48];
    gpu_matvec_family(v, m, run[0].src[1], "exo_matmul_vec16x3", family);
    matvec_start(&b, name, v, family, run, norm);
    gpu_build_u32(&b, (uint64_t)m);
    gpu_build_u32(&b, (uint64_t)k);
    uint32_t rpi = gpu_matvec_rows_per_item(v, m, run[0].src[1]);
    for (uint32_t i = 0; i < MATMUL_GROUP_MAX; i++) {
        /* A pair repeats member 0 as the third with no rows. */
        const exo_node *nd = &run[i < len ? i : 0];
        int64_t n = i < len ? gpu_view_count(v, nd->src[1], NULL) / k : 0;
        member_args(&b, nd);
        gpu_build_tensor(&b, nd->dst);
        gpu_build_u32(&b, (uint64_t)n);
        rows += (n + rpi - 1) / rpi;
    }
    norm_args(&b, norm, run[0].src[0]);
    gpu_build_u32(&b, rpi);
    gpu_build_weight_format(&b, run[0].src[1]);
    return gpu_build_go_matvec_at(&b, m, k, rows, run[0].src[1]);
}

/* ------------------------------------------------ gate, up and their GLU: exo_matmul_vec16_glu_* */

/* A pair sharing x, then the GLU that alone reads both outputs (never written). */
static uint32_t glu_detect(const exo_graph *g, uint32_t i) {
    if (i + 3 > g->n_nodes || graph_matmul_group_length(g, i, MATMUL_GROUP_MAX) != 2 ||
        exo_graph_node(g, i + 2)->op != EXO_OP_GLU ||
        !read_only_by(g, exo_graph_node(g, i)->dst, i + 2, i + 2) || !read_only_by(g, exo_graph_node(g, i + 1)->dst, i + 2, i + 2))
        return 0;
    return 3;
}

static bool glu_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    const exo_node *glu = &run[2];
    if (len != 3 || glu->op != EXO_OP_GLU || glu->src[0] != run[0].dst || glu->src[1] != run[1].dst) return false;
    /* exo_matmul_vec16_glu_* knows SiLU and GELU only: a clamped SwiGLU (gpt_oss) runs alone. */
    if (glu->i[EXO_GLU_I_ACT] != EXO_ACT_SILU && glu->i[EXO_GLU_I_ACT] != EXO_ACT_GELU_TANH) return false;
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, run[0].src[1], wne);
    /* One token (exo_matmul_vec16_glu_* has no per-token loop) or a batched step's rows
     * (exo_matmul_vecb<T>_glu_*), the GLU's output not on x (the keep entry sees to that),
     * otherwise as the grouped matvec. */
    int64_t m = gpu_view_count(v, run[0].src[0], NULL) / wne[0];
    return (m == 1 || gpu_matvec_batch(v, m)) && !gpu_view_overlaps(v, glu->dst, run[0].src[0]) &&
           group_fits_matmuls(v, run, 2) && (!norm || norm_fits(v, norm, run, 2, glu->dst, true));
}

/* A batched step's m rows: exo_matmul_vecb<T>_glu_*, the one-token kernel's arguments with m,
 * R gate and R up rows per item. */
static exo_status glu_batch_enqueue(const gpu_exec_view *v, const exo_node *run, int64_t m, int64_t k, int64_t n,
                                    const exo_node *norm) {
    char family[48], name[48];
    gpu_matvec_family(v, m, run[0].src[1], "exo_matmul_vec16_glu", family);
    gpu_builder b;
    matvec_start(&b, name, v, family, run, norm);
    gpu_build_u32(&b, (uint64_t)m);
    gpu_build_u32(&b, (uint64_t)k);
    member_args(&b, &run[0]);
    member_args(&b, &run[1]);
    gpu_build_tensor(&b, run[2].dst);
    gpu_build_u32(&b, (uint64_t)n);
    gpu_build_i32(&b, run[2].i[EXO_GLU_I_ACT] == EXO_ACT_GELU_TANH ? 1 : 0);
    norm_args(&b, norm, run[0].src[0]);
    gpu_build_weight_format(&b, run[0].src[1]);
    /* the kernel's 2R accumulator rows hold as many sums (the tensor-core kernel's tiles: half
     * gate, half up rows) */
    uint32_t r = gpu_matvec_rows_per_item(v, m, run[0].src[1]) / 2;
    return gpu_build_go_matvec_at(&b, m, k, (n + r - 1) / r, run[0].src[1]);
}

static exo_status glu_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    (void)len;
    if (dmv_fits(v, run, 2))
        return dmv_enqueue(v, run, 2, run[2].i[EXO_GLU_I_ACT] == EXO_ACT_GELU_TANH ? 1 : 0, run[2].dst, UINT32_MAX, 0, NULL, norm,
                           NULL);
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = gpu_view_count(v, run[0].src[1], wne), k = wne[0], rows = w_count / k;
    int64_t m = gpu_view_count(v, run[0].src[0], NULL) / k;
    if (m > 1) return glu_batch_enqueue(v, run, m, k, rows, norm);
    char name[48];
    gpu_builder b;
    matvec_start(&b, name, v, "exo_matmul_vec16_glu", run, norm);
    gpu_build_u32(&b, (uint64_t)k);
    member_args(&b, &run[0]);
    member_args(&b, &run[1]);
    gpu_build_tensor(&b, run[2].dst);
    gpu_build_u32(&b, (uint64_t)rows);
    gpu_build_i32(&b, run[2].i[EXO_GLU_I_ACT] == EXO_ACT_GELU_TANH ? 1 : 0);
    norm_args(&b, norm, run[0].src[0]);
    gpu_build_weight_format(&b, run[0].src[1]);
    return gpu_build_go_matvec(&b, k, rows);
}

/* ------------------------------------------------ a matmul and its residual ADD: exo_matmul_vec16_* */

/* The ADD's other operand, when it reads the matmul's output and a different tensor. */
static uint32_t residual_of(const exo_node *mm, const exo_node *add) {
    if (add->op != EXO_OP_ADD) return UINT32_MAX;
    if (add->src[0] == mm->dst && add->src[1] != mm->dst) return add->src[1];
    if (add->src[1] == mm->dst && add->src[0] != mm->dst) return add->src[0];
    return UINT32_MAX;
}

/* A matmul whose output only the ADD right after it reads (never written: (x.w + b) + r). */
static uint32_t add_detect(const exo_graph *g, uint32_t i) {
    if (exo_graph_node(g, i)->op != EXO_OP_MATMUL || i + 1 >= g->n_nodes || exo_graph_node(g, i + 1)->op != EXO_OP_ADD ||
        !read_only_by(g, exo_graph_node(g, i)->dst, i + 1, i + 1))
        return 0;
    return 2;
}

static bool add_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    const exo_node *mm = &run[0], *add = &run[1];
    uint32_t res = residual_of(mm, add);
    if (len != 2 || norm || mm->op != EXO_OP_MATMUL || res == UINT32_MAX || v->be->features.subgroups) return false;
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, mm->src[1], wne);
    int64_t k = wne[0];
    if (!gpu_matvec_tokens_fit(v, gpu_view_count(v, mm->src[0], NULL) / k) || !gpu_view_wide_loads_fit(v, mm, k))
        return false;
    /* No broadcast, and the ADD's output must not land on x while other rows still read it. */
    return gpu_view_count(v, res, NULL) == gpu_view_count(v, mm->dst, NULL) &&
           !gpu_view_overlaps(v, add->dst, mm->src[0]);
}

static exo_status add_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    (void)len;
    (void)norm;
    const exo_node *mm = &run[0], *add = &run[1];
    if (dmv_fits(v, mm, 1)) return dmv_enqueue(v, mm, 1, -1, 0, residual_of(mm, add), add->dst, NULL, NULL, NULL);
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = gpu_view_count(v, mm->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = gpu_view_count(v, mm->src[0], NULL) / k;
    exo_node fused = *mm;
    fused.dst = add->dst;
    char name[48], family[48];
    gpu_matvec_family(v, m, mm->src[1], "exo_matmul_vec16", family);
    snprintf(name, sizeof name, "%s_%s", family, gpu_weight_suffix(&v->tensors[mm->src[1]]));
    gpu_builder b;
    gpu_build_start(&b, v, name);
    gpu_build_matmul_args(&b, &fused, fused.n_src == 3 ? fused.src[2] : fused.dst, m, k, n);
    gpu_build_tensor(&b, residual_of(mm, add));
    gpu_build_i32(&b, 1);
    uint32_t rpi = gpu_matvec_rows_per_item(v, m, mm->src[1]);
    gpu_build_u32(&b, rpi);
    gpu_build_weight_format(&b, mm->src[1]);
    return gpu_build_go_matvec_at(&b, m, k, (n + rpi - 1) / rpi, mm->src[1]);
}

/* ------------------------------------------------ RoPE of q and k, KV writes of k and v: exo_rope_kv */

/* Two ROPEs, the roped k read only by the KV_WRITE after them (the kernel writes it straight
 * into the cache); fits checks the rest. */
static uint32_t rope_kv_detect(const exo_graph *g, uint32_t i) {
    if (i + 4 > g->n_nodes || exo_graph_node(g, i)->op != EXO_OP_ROPE || exo_graph_node(g, i + 1)->op != EXO_OP_ROPE ||
        !read_only_by(g, exo_graph_node(g, i + 1)->dst, i + 2, i + 2))
        return 0;
    return 4;
}

/* The same positions and RoPE parameters for q and k, the KV writes of the roped k and of a v
 * that is neither roped output, into caches of one form and one dtype (pooled ones, ABI 1.6,
 * with one slots source). */
static bool rope_kv_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    const exo_node *rq = &run[0], *rk = &run[1], *wk = &run[2], *wv = &run[3];
    if (len != 4 || norm || rq->op != EXO_OP_ROPE || rk->op != EXO_OP_ROPE || wk->op != EXO_OP_KV_WRITE ||
        wv->op != EXO_OP_KV_WRITE)
        return false;
    uint32_t pos = rq->src[1];
    if (wk->src[0] != rk->dst || wv->src[0] == rq->dst || wv->src[0] == rk->dst || rk->src[1] != pos ||
        wk->src[1] != pos || wv->src[1] != pos || rk->src[2] != rq->src[2] || rk->i[EXO_ROPE_I_MODE] != rq->i[EXO_ROPE_I_MODE] ||
        rk->i[EXO_ROPE_I_N_ROT] != rq->i[EXO_ROPE_I_N_ROT] ||
        rk->f[EXO_ROPE_F_ATTN_FACTOR] != rq->f[EXO_ROPE_F_ATTN_FACTOR] || wk->n_src != wv->n_src ||
        wk->src[wk->n_src - 1] != wv->src[wv->n_src - 1])
        return false;
    int64_t qne[EXO_MAX_DIMS], kne[EXO_MAX_DIMS];
    gpu_view_count(v, rq->src[0], qne);
    int64_t k_count = gpu_view_count(v, rk->src[0], kne);
    /* Same head size; v rows as long as k rows; both caches as long and of one dtype (the
     * kernel writes both through one exo_rope_kv variant, picked by the K cache's dtype). */
    return qne[0] == kne[0] && gpu_view_count(v, wv->src[0], NULL) == k_count &&
           v->tensors[wk->dst].dtype == v->tensors[wv->dst].dtype &&
           gpu_view_count(v, wk->dst, NULL) == gpu_view_count(v, wv->dst, NULL) &&
           gpu_cache_rows(v, wk->dst) == gpu_cache_rows(v, wv->dst);
}

static exo_status rope_kv_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    (void)len;
    (void)norm;
    const exo_node *rq = &run[0], *rk = &run[1], *wk = &run[2], *wv = &run[3];
    int64_t ne[EXO_MAX_DIMS];
    int64_t q_count = gpu_view_count(v, rq->src[0], ne), tokens = gpu_view_count(v, rq->src[1], NULL);
    int64_t head_dim = ne[0], heads = q_count / (head_dim * tokens);
    int64_t kv_heads = gpu_view_count(v, rk->src[0], NULL) / (head_dim * tokens);
    gpu_builder b;
    gpu_build_start(&b, v, "exo_rope_kv");
    gpu_build_tensor(&b, rq->src[0]);
    gpu_build_tensor(&b, rk->src[0]);
    gpu_build_tensor(&b, wv->src[0]);
    gpu_build_tensor(&b, rq->src[1]);
    gpu_build_kv_slots(&b, wk, wk->dst, rq->src[1]);
    gpu_build_tensor(&b, rq->src[2]);
    gpu_build_tensor(&b, rq->dst);
    gpu_build_tensor(&b, wk->dst);
    gpu_build_tensor(&b, wv->dst);
    gpu_build_u32(&b, (uint64_t)head_dim);
    gpu_build_u32(&b, (uint64_t)heads);
    gpu_build_u32(&b, (uint64_t)kv_heads);
    gpu_build_i32(&b, rq->i[EXO_ROPE_I_N_ROT]);
    gpu_build_i32(&b, rq->i[EXO_ROPE_I_MODE]);
    gpu_build_f32(&b, rq->f[EXO_ROPE_F_ATTN_FACTOR]);
    gpu_build_u32(&b, (uint64_t)gpu_cache_rows(v, wk->dst));
    return gpu_build_go(&b, 3, (uint64_t[3]){(uint64_t)head_dim, (uint64_t)(heads + 2 * kv_heads), (uint64_t)tokens},
                        (size_t[3]){32, 1, 1});
}

/* ------------------------------------------------ q/k/v, their RoPE and KV writes: exo_dmv_* */

/* q/k/v (a group of three sharing x), then exo_rope_kv's run over their outputs, the raw q, k
 * and v read by nothing else: one launch for seven nodes (the matvec's epilogue rotates and
 * stores), a decode step's RoPE + KV launch per layer saved. */
static uint32_t qkv_rope_detect(const exo_graph *g, uint32_t i) {
    if (graph_matmul_group_length(g, i, MATMUL_GROUP_MAX) != 3 || rope_kv_detect(g, i + 3) != 4) return 0;
    const exo_node *q = exo_graph_node(g, i), *k = exo_graph_node(g, i + 1), *vv = exo_graph_node(g, i + 2);
    if (exo_graph_node(g, i + 3)->src[0] != q->dst || exo_graph_node(g, i + 4)->src[0] != k->dst ||
        exo_graph_node(g, i + 6)->src[0] != vv->dst || !read_only_by(g, q->dst, i + 3, i + 3) ||
        !read_only_by(g, k->dst, i + 4, i + 4) || !read_only_by(g, vv->dst, i + 6, i + 6))
        return 0;
    return 7;
}

/* A batched step's q/k/v on the tensor cores (exo_matmul_mmab8*x3_rope_bf16: the x3 kernel's
 * rows as rotation pairs, kernels/matvec_batch_mma.cl) where all three weights take them. */
static bool qkv_rope_mma_fits(const gpu_exec_view *v, const exo_node *run) {
    int64_t wne[EXO_MAX_DIMS];
    gpu_view_count(v, run[0].src[1], wne);
    int64_t m = gpu_view_count(v, run[0].src[0], NULL) / wne[0];
    for (uint32_t i = 0; i < 3; i++)
        if (!gpu_matvec_batch_mma(v, m, run[i].src[1])) return false;
    return group_fits_matmuls(v, run, 3);
}

/* One token on exo_dmv_* (or a batched step on the tensor cores), exo_rope_kv's conditions, and
 * the shapes the epilogue's row mapping needs: the whole head rotates (n_rot = head_dim, a
 * multiple of 4, so a dmv item's four rows are two rotation pairs), q rows whole heads, v rows
 * as many as k rows. */
static bool qkv_rope_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    if (len != 7) return false;
    bool one = dmv_fits(v, run, 3);
    if (!(one || qkv_rope_mma_fits(v, run)) || !rope_kv_fits(v, run + 3, 4, NULL)) return false;
    const exo_node *rq = &run[3];
    int64_t qne[EXO_MAX_DIMS], wne[EXO_MAX_DIMS];
    gpu_view_count(v, rq->src[0], qne);
    gpu_view_count(v, run[0].src[1], wne);
    int64_t hd = qne[0], k = wne[0], m = gpu_view_count(v, run[0].src[0], NULL) / k;
    int64_t nq = gpu_view_count(v, run[0].src[1], NULL) / k, nk = gpu_view_count(v, run[1].src[1], NULL) / k,
            nv = gpu_view_count(v, run[2].src[1], NULL) / k;
    int mode = rq->i[EXO_ROPE_I_MODE];
    if ((mode != EXO_ROPE_NEOX && mode != EXO_ROPE_NORMAL) || rq->i[EXO_ROPE_I_N_ROT] != hd || hd % 4 != 0 ||
        nq % hd != 0 || nk % hd != 0 || nv != nk || gpu_view_count(v, rq->src[0], NULL) != m * nq ||
        gpu_view_count(v, run[4].src[0], NULL) != m * nk)
        return false;
    return !norm || norm_fits(v, norm, run, 3, rq->dst, !one);
}

/* exo_matmul_mmab8*x3_rope_bf16: the x3 launch's arguments (q's output the roped q, k's and v's
 * their caches), then the RoPE's and the caches' (as dmv_enqueue passes them), then rpi. */
static exo_status qkv_rope_mma_enqueue(const gpu_exec_view *v, const exo_node *run, const exo_node *norm) {
    const exo_node *rope = run + 3;
    int64_t wne[EXO_MAX_DIMS], qne[EXO_MAX_DIMS];
    gpu_view_count(v, run[0].src[1], wne);
    int64_t k = wne[0], m = gpu_view_count(v, run[0].src[0], NULL) / k, rows = 0;
    char family[48], name[48];
    gpu_matvec_family(v, m, run[0].src[1], "exo_matmul_vec16x3_rope", family);
    gpu_builder b;
    matvec_start(&b, name, v, family, run, norm);
    gpu_build_u32(&b, (uint64_t)m);
    gpu_build_u32(&b, (uint64_t)k);
    uint32_t rpi = gpu_matvec_rows_per_item(v, m, run[0].src[1]);
    for (uint32_t i = 0; i < 3; i++) {
        int64_t n = gpu_view_count(v, run[i].src[1], NULL) / k;
        member_args(&b, &run[i]);
        gpu_build_tensor(&b, i == 0 ? rope[0].dst : rope[1 + i].dst); /* roped q, the K and V caches */
        gpu_build_u32(&b, (uint64_t)n);
        rows += (n + rpi - 1) / rpi;
    }
    norm_args(&b, norm, run[0].src[0]);
    const exo_tensor *cache = &v->tensors[rope[2].dst];
    bool pooled = cache->n_dims == 4;
    gpu_build_i32(&b, rope[0].i[EXO_ROPE_I_MODE]);
    gpu_build_tensor(&b, rope[0].src[1]);
    gpu_build_tensor(&b, pooled ? rope[2].src[rope[2].n_src - 1] : run[0].src[0]);
    gpu_build_u32(&b, pooled ? (uint64_t)cache->ne[3] : 0);
    gpu_build_tensor(&b, rope[0].src[2]);
    gpu_view_count(v, rope[0].src[0], qne);
    gpu_build_u32(&b, (uint64_t)qne[0]);
    gpu_build_f32(&b, rope[0].f[EXO_ROPE_F_ATTN_FACTOR]);
    gpu_build_u32(&b, (uint64_t)gpu_cache_rows(v, rope[2].dst));
    gpu_build_i32(&b, (int)cache->dtype);
    gpu_build_u32(&b, rpi);
    gpu_build_weight_format(&b, run[0].src[1]);
    return gpu_build_go_matvec_at(&b, m, k, rows, run[0].src[1]);
}

static exo_status qkv_rope_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    (void)len;
    if (!dmv_fits(v, run, 3)) return qkv_rope_mma_enqueue(v, run, norm);
    return dmv_enqueue(v, run, 3, -1, 0, UINT32_MAX, 0, run + 3, norm, NULL);
}

/* ------------------------------------------------ an RMS_NORM and the one matmul after it: exo_dmv_* */

/* Any matmul; the run is the norm before it (folds_norm) and it, e.g. the final norm and the
 * lm_head: one launch instead of two. Without a norm the matmul runs alone. */
static uint32_t norm_matmul_detect(const exo_graph *g, uint32_t i) { return exo_graph_node(g, i)->op == EXO_OP_MATMUL ? 1 : 0; }

static bool norm_matmul_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    return norm && len == 1 && run[0].op == EXO_OP_MATMUL && dmv_fits(v, run, 1) && norm_fits(v, norm, run, 1, run[0].dst, false);
}

static exo_status norm_matmul_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    (void)len;
    return dmv_enqueue(v, run, 1, -1, 0, UINT32_MAX, 0, NULL, norm, NULL);
}

/* ------------------------------------------------ the attention's combine in o_proj: exo_dmv_* */

/* An ATTENTION whose output only the matmul after it reads (never written: the matmul's launch
 * merges the splits' partial states itself), that matmul, and the residual ADD that alone reads
 * the matmul's output where there is one (o_proj + residual): three nodes, or two. */
static uint32_t attn_oproj_detect(const exo_graph *g, uint32_t i) {
    if (exo_graph_node(g, i)->op != EXO_OP_ATTENTION || i + 1 >= g->n_nodes) return 0;
    const exo_node *mm = exo_graph_node(g, i + 1);
    if (mm->op != EXO_OP_MATMUL || mm->src[0] != exo_graph_node(g, i)->dst || mm->src[1] == mm->src[0] ||
        (mm->n_src == 3 && mm->src[2] == mm->src[0]) || !read_only_by(g, mm->src[0], i + 1, i + 1))
        return 0;
    return add_detect(g, i + 1) ? 3 : 2;
}

/* At most this many splits a head: every o_proj work-group re-reads all heads' partial states, so
 * the merge grows with the cache while the launch it saves does not. On the H100 (1B bf16, step
 * medians of 2-3 alternating runs, docs/performance.md 5.5.1) the fusion gained ~1% at 128-row
 * caches (3 splits), broke even at 512 (9) and lost 1-3% at 1024 (17) and 2048 (17, two tiles each). */
#define ATTN_OPROJ_MAX_SPLITS 8

/* kernels/matvec_batch_mma.cl: EXO_MMAB_ATT_W, the (token, head, split) weights its o_proj with
 * the combine holds. */
#define MMAB_ATT_W 2048

/* One token whose split attention runs (the partials buffer there, the position read back) in at
 * most ATTN_OPROJ_MAX_SPLITS splits, and the matmul on exo_dmv_* (as the ADD fusion wants it, when
 * the ADD is in the run) with every head's split weights in the kernel's reduction array (heads x
 * splits <= DMV_SLOTS x DMV_WG); or, under EXO_GPU_FUSE_COMBINE_BATCH=1 (features.combine_batch:
 * on an H100 it saved nothing at 1-2 splits and cost 2-3 % at 2-3, docs/performance.md 7.10), a
 * batched step's tokens with the matmul on the tensor cores (exo_matmul_mmab8*_att_bf16) and
 * tokens x heads x splits <= MMAB_ATT_W. */
static bool attn_oproj_fits(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    const exo_node *att = &run[0], *mm = &run[1];
    if (norm || (len != 2 && len != 3) || att->op != EXO_OP_ATTENTION || mm->op != EXO_OP_MATMUL || v->be->features.no_combine_fusion ||
        !v->attn_partials || v->attn_position < 0)
        return false;
    int64_t heads = att->i[EXO_ATTENTION_I_N_HEADS], hd = att->i[EXO_ATTENTION_I_HEAD_DIM];
    int64_t splits = gpu_attention_split_count(v, att), tokens = gpu_view_count(v, att->src[3], NULL);
    if (heads * hd * tokens != gpu_view_count(v, mm->src[0], NULL) || splits > ATTN_OPROJ_MAX_SPLITS) return false;
    bool one = tokens == 1 && dmv_fits(v, mm, 1) && heads * splits <= DMV_SLOTS * DMV_WG;
    bool mma = v->be->features.combine_batch && tokens > 1 && tokens <= GPU_ATT_SPLIT_MAX_TOKENS &&
               gpu_matvec_batch_mma(v, tokens, mm->src[1]) &&
               gpu_view_wide_loads_fit(v, mm, heads * hd) && hd % 4 == 0 && tokens * heads * splits <= MMAB_ATT_W;
    if (!one && !mma) return false;
    return len == 2 || add_fits(v, run + 1, 2, NULL);
}

/* exo_matmul_mmab8*_att_bf16: the batched-step matmul's arguments (exo_matmul_mmab8*_bf16 with
 * its residual or none) with the partials as x, then the merge's. */
static exo_status attn_oproj_mma_enqueue(const gpu_exec_view *v, const exo_node *att, const exo_node *mm, uint32_t res,
                                         uint32_t out) {
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = gpu_view_count(v, mm->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = gpu_view_count(v, mm->src[0], NULL) / k;
    char family[48], name[48];
    gpu_matvec_family(v, m, mm->src[1], "exo_matmul_vec16_att", family);
    snprintf(name, sizeof name, "%s_%s", family, gpu_weight_suffix(&v->tensors[mm->src[1]]));
    gpu_builder b;
    gpu_build_start(&b, v, name);
    gpu_build_mem(&b, v->attn_partials, 0);
    gpu_build_weight(&b, mm->src[1]);
    gpu_build_tensor(&b, mm->n_src == 3 ? mm->src[2] : mm->dst);
    gpu_build_i32(&b, mm->n_src == 3);
    gpu_build_tensor(&b, res != UINT32_MAX ? out : mm->dst);
    gpu_build_u32(&b, (uint64_t)m);
    gpu_build_u32(&b, (uint64_t)k);
    gpu_build_u32(&b, (uint64_t)n);
    gpu_build_tensor(&b, res != UINT32_MAX ? res : mm->src[0]);
    gpu_build_i32(&b, res != UINT32_MAX);
    bool sinks = gpu_attention_has_sinks(v, att);
    int64_t splits = gpu_attention_split_count(v, att);
    gpu_build_i32(&b, sinks ? -splits : splits);
    gpu_build_tensor(&b, sinks ? att->src[4] : mm->src[0]);
    gpu_build_u32(&b, (uint64_t)att->i[EXO_ATTENTION_I_HEAD_DIM]);
    uint32_t rpi = gpu_matvec_rows_per_item(v, m, mm->src[1]);
    gpu_build_u32(&b, rpi);
    gpu_build_weight_format(&b, mm->src[1]);
    return gpu_build_go_matvec_at(&b, m, k, (n + rpi - 1) / rpi, mm->src[1]);
}

static exo_status attn_oproj_enqueue(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm) {
    (void)norm;
    int64_t tokens = gpu_view_count(v, run[0].src[3], NULL);
    exo_status st = gpu_enqueue_attention_splits(v, &run[0], tokens);
    if (st != EXO_OK) return st;
    const exo_node *mm = &run[1];
    uint32_t res = len == 3 ? residual_of(mm, &run[2]) : UINT32_MAX, out = len == 3 ? run[2].dst : 0;
    if (tokens > 1) return attn_oproj_mma_enqueue(v, &run[0], mm, res, out);
    return dmv_enqueue(v, mm, 1, -1, 0, res, out, NULL, NULL, &run[0]);
}

/* ------------------------------------------------ the table */

/* Tried in this order at a node: gate/up/GLU before the plain pair it starts with. The keep
 * entries: the GLU and the ADD write while the matmuls' rows still read x (run[0]'s source 0);
 * the group's outputs are written by nodes that all read x, and exo_rope_kv's by nodes whose
 * inputs are read at or after them, so both keep nothing. A folded RMS_NORM's raw input is
 * checked per execution instead (norm_fits: no output of the run may overlap it). */
const gpu_fusion gpu_fusions[GPU_FUSION_COUNT] = {
    {"exo_dmv or exo_matmul_mmab8*x3_rope (q/k/v + rope_kv)", qkv_rope_detect, qkv_rope_fits, qkv_rope_enqueue, 0, 0, true},
    {"exo_dmv or exo_matmul_mmab8*_att (attention combine + o_proj)", attn_oproj_detect, attn_oproj_fits, attn_oproj_enqueue, 0, -1, false},
    {"exo_matmul_vec16_glu", glu_detect, glu_fits, glu_enqueue, 0, 0, true},
    {"exo_matmul_vec16x3", group_detect, group_fits, group_enqueue, 0, -1, true},
    {"exo_rope_kv", rope_kv_detect, rope_kv_fits, rope_kv_enqueue, 0, -1, false},
    {"exo_matmul_vec16 + add", add_detect, add_fits, add_enqueue, 0, 0, false},
    {"exo_dmv (norm + matmul)", norm_matmul_detect, norm_matmul_fits, norm_matmul_enqueue, 0, -1, true},
};
