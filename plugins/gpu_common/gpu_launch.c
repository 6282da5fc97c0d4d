/* gpu_launch.c — building one kernel launch (see gpu_launch.h). */
#include "gpu_launch.h"

#include "graph_ir.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* The next argument slot; a kernel with more parameters than GPU_MAX_ARGS holds is a bug here. */
static gpu_arg *next_arg(gpu_builder *b) {
    assert(b->l.n_args < GPU_MAX_ARGS);
    return &b->l.args[b->l.n_args++];
}

void gpu_build_start(gpu_builder *b, const gpu_exec_view *v, const char *kernel) {
    b->v = v;
    b->l.kernel = kernel;
    b->l.n_args = 0;
    b->l.dims = 1;
    for (int d = 0; d < 3; d++) b->l.global[d] = b->l.local[d] = 1;
}

void gpu_build_tensor(gpu_builder *b, uint32_t tensor) {
    const exo_tensor *t = &b->v->tensors[tensor];
    uint32_t esz = exo_dtype_size(t->dtype);
    gpu_arg *a = next_arg(b);
    a->kind = GPU_ARG_MEM;
    a->v.mem.mem = b->v->mem[tensor];
    a->v.mem.offset = (uint32_t)(b->v->offset[tensor] / (esz ? esz : 1));
}
void gpu_build_mem(gpu_builder *b, gpu_mem *mem, uint32_t element_offset) {
    gpu_arg *a = next_arg(b);
    a->kind = GPU_ARG_MEM;
    a->v.mem.mem = mem;
    a->v.mem.offset = element_offset;
}
void gpu_build_weight(gpu_builder *b, uint32_t tensor) {
    const exo_tensor *t = &b->v->tensors[tensor];
    if (t->dtype != EXO_DTYPE_MLX_AFFINE) {
        gpu_build_tensor(b, tensor);
        return;
    }
    gpu_build_mem(b, b->v->mem[tensor], (uint32_t)(b->v->offset[tensor] / 4)); /* 4-byte aligned (validator) */
    gpu_build_tensor(b, t->q_scales);
    gpu_build_tensor(b, t->q_biases);
}
void gpu_build_weight_format(gpu_builder *b, uint32_t tensor) {
    const exo_tensor *t = &b->v->tensors[tensor];
    if (t->dtype != EXO_DTYPE_MLX_AFFINE) return;
    gpu_build_i32(b, b->v->tensors[t->q_scales].dtype);
    gpu_build_u32(b, t->q_group);
}
void gpu_build_mlx_weight(gpu_builder *b, uint32_t tensor) {
    const exo_tensor *t = &b->v->tensors[tensor];
    gpu_build_weight(b, tensor);
    gpu_build_i32(b, b->v->tensors[t->q_scales].dtype);
    gpu_build_u32(b, t->q_bits);
    gpu_build_u32(b, t->q_group);
}
void gpu_build_u32(gpu_builder *b, uint64_t x) {
    gpu_arg *a = next_arg(b);
    a->kind = GPU_ARG_U32;
    a->v.u32 = (uint32_t)x;
}
void gpu_build_i32(gpu_builder *b, int64_t x) {
    gpu_arg *a = next_arg(b);
    a->kind = GPU_ARG_I32;
    a->v.i32 = (int32_t)x;
}
void gpu_build_f32(gpu_builder *b, float x) {
    gpu_arg *a = next_arg(b);
    a->kind = GPU_ARG_F32;
    a->v.f32 = x;
}

static size_t round_up(uint64_t n, size_t m) { return (size_t)((n + m - 1) / m * m); }

/* Sizes: `count` items per dimension, work-groups of `local`. */
exo_status gpu_build_go(gpu_builder *b, uint32_t dims, const uint64_t count[3], const size_t local[3]) {
    b->l.dims = dims;
    for (uint32_t d = 0; d < dims; d++) {
        b->l.local[d] = local[d];
        b->l.global[d] = round_up(count[d] ? count[d] : 1, local[d]);
    }
    return b->v->be->launch(b->v->be->ctx, &b->l);
}

exo_status gpu_build_go_1d(gpu_builder *b, uint64_t count) {
    return gpu_build_go(b, 1, (uint64_t[3]){count, 1, 1}, (size_t[3]){256, 1, 1});
}

int64_t gpu_view_count(const gpu_exec_view *v, uint32_t tensor, int64_t ne[EXO_MAX_DIMS]) {
    int64_t tmp[EXO_MAX_DIMS];
    return graph_resolve_shape(&v->tensors[tensor], v->n_tokens, ne ? ne : tmp);
}
int64_t gpu_view_outer_dim(const gpu_exec_view *v, uint32_t tensor) {
    int64_t ne[EXO_MAX_DIMS];
    gpu_view_count(v, tensor, ne);
    return ne[v->tensors[tensor].n_dims - 1];
}
const char *gpu_dtype_suffix(exo_dtype t) { return t == EXO_DTYPE_F16 ? "f16" : t == EXO_DTYPE_BF16 ? "bf16" : "f32"; }
const char *gpu_weight_suffix(const exo_tensor *w) {
    if (w->dtype == EXO_DTYPE_MLX_AFFINE) return w->q_bits == 8 ? "mlx8" : "mlx4"; /* gpu_view_wide_loads_fit: 4 or 8 */
    return gpu_dtype_suffix(w->dtype);
}
bool gpu_same_weight_format(const gpu_exec_view *v, uint32_t a, uint32_t b) {
    const exo_tensor *ta = &v->tensors[a], *tb = &v->tensors[b];
    if (ta->dtype != tb->dtype) return false;
    return ta->dtype != EXO_DTYPE_MLX_AFFINE || (ta->q_bits == tb->q_bits && ta->q_group == tb->q_group &&
                                                 v->tensors[ta->q_scales].dtype == v->tensors[tb->q_scales].dtype);
}

void gpu_build_matmul_args(gpu_builder *b, const exo_node *nd, uint32_t bias, int64_t m, int64_t k, int64_t n) {
    gpu_build_tensor(b, nd->src[0]);
    gpu_build_weight(b, nd->src[1]);
    gpu_build_tensor(b, bias);
    gpu_build_i32(b, nd->n_src == 3);
    gpu_build_tensor(b, nd->dst);
    gpu_build_u32(b, (uint64_t)m);
    gpu_build_u32(b, (uint64_t)k);
    gpu_build_u32(b, (uint64_t)n);
}

/* exo_matmul_vec16* read weights in aligned 8-element chunks and x as float4s: k and the
 * weight's element offset must be multiples of 8, x's of 4 (buffers themselves are at least
 * 16-byte aligned: CL_DEVICE_MEM_BASE_ADDR_ALIGN is >= 1024 bits on every OpenCL 1.2 device).
 * MLX_AFFINE weights: 4- and 8-bit codes only (a chunk is one word, or an 8-byte pair, so the
 * 8-bit words' offset must be even; 2/3/5/6-bit codes straddle words and run alone as
 * exo_matmul_vec_mlx), groups of 32, 64 or 128 (whole chunks, a power of two). */
bool gpu_view_wide_loads_fit(const gpu_exec_view *v, const exo_node *nd, int64_t k) {
    const exo_tensor *w = &v->tensors[nd->src[1]];
    uint32_t xsz = exo_dtype_size(v->tensors[nd->src[0]].dtype);
    if (k % 8 != 0 || xsz != 4 || (v->offset[nd->src[0]] / 4) % 4 != 0 || v->offset[nd->src[0]] % 4 != 0) return false;
    if (w->dtype == EXO_DTYPE_MLX_AFFINE)
        return (w->q_bits == 4 || w->q_bits == 8) && (w->q_group == 32 || w->q_group == 64 || w->q_group == 128) &&
               v->offset[nd->src[1]] % (w->q_bits == 8 ? 8 : 4) == 0;
    uint32_t wsz = exo_dtype_size(w->dtype);
    return wsz && (v->offset[nd->src[1]] / wsz) % 8 == 0 && v->offset[nd->src[1]] % wsz == 0;
}

/* Whether tensors a and b share bytes in this execution. */
bool gpu_view_overlaps(const gpu_exec_view *v, uint32_t a, uint32_t b) {
    if (v->mem[a] != v->mem[b]) return false;
    uint64_t a0 = v->offset[a], a1 = a0 + graph_tensor_bytes(&v->tensors[a], v->n_tokens);
    uint64_t b0 = v->offset[b], b1 = b0 + graph_tensor_bytes(&v->tensors[b], v->n_tokens);
    return a0 < b1 && b0 < a1;
}

/* Launches a wide-load matvec kernel over `rows` weight rows: `lanes` items per row, 256 / lanes
 * rows per work-group; more lanes (while each still gets >= 8 chunks of 8) until ~1024
 * work-groups fill a big GPU (a sweep of fixed lane counts on an H200 found nothing better). */
exo_status gpu_build_go_matvec(gpu_builder *b, int64_t k, int64_t rows) {
    uint64_t lanes = 32, chunks = (uint64_t)k / 8;
    while (lanes < 128 && (uint64_t)rows * lanes / 256 < 1024 && chunks >= lanes * 2 * 4) lanes *= 2;
    return gpu_build_go(b, 2, (uint64_t[3]){lanes, (uint64_t)rows, 1}, (size_t[3]){(size_t)lanes, (size_t)(256 / lanes), 1});
}

/* The batched-step kernels (rows: groups of R weight rows) do R x tokens multiply-adds per chunk,
 * so fewer work-groups keep the device busy: more lanes only while under
 * GPU_MATVEC_BATCH_MIN_GROUPS work-groups and each lane keeps >= 4 chunks of every row (its sums
 * cost a pass through local memory, one item summing an output over the lanes; the minimum is
 * in gpu_launch.h, the tensor-core kernels' rows per group go by it too). */
exo_status gpu_build_go_matvec_at(gpu_builder *b, int64_t m, int64_t k, int64_t rows, uint32_t weight) {
    if (!gpu_matvec_batch(b->v, m)) return gpu_build_go_matvec(b, k, rows);
    if (gpu_matvec_batch_mma(b->v, m, weight)) {
        uint64_t items = gpu_matvec_mma_rows(b->v, weight) == 16 ? GPU_MATVEC_MMA_ITEMS_R16 : GPU_MATVEC_MMA_ITEMS;
        return gpu_build_go(b, 2, (uint64_t[3]){items, (uint64_t)rows, 1}, (size_t[3]){(size_t)items, 1, 1});
    }
    uint64_t lanes = 32, chunks = (uint64_t)k / 8;
    while (lanes < 128 && (uint64_t)rows * lanes / 256 < GPU_MATVEC_BATCH_MIN_GROUPS && chunks >= lanes * 2 * 4)
        lanes *= 2;
    if (b->v->be->features.matvec_batch_lanes) lanes = b->v->be->features.matvec_batch_lanes;
    return gpu_build_go(b, 2, (uint64_t[3]){lanes, (uint64_t)rows, 1}, (size_t[3]){(size_t)lanes, (size_t)(256 / lanes), 1});
}

bool gpu_matvec_batch(const gpu_exec_view *v, int64_t m) {
    const gpu_features *f = &v->be->features;
    uint32_t lo = f->matvec_batch_min ? f->matvec_batch_min : GPU_MATVEC_BATCH_MIN_DEFAULT;
    uint32_t hi = f->matvec_batch_max ? f->matvec_batch_max : GPU_MATVEC_BATCH_MAX_DEFAULT;
    if (hi > GPU_MATVEC_BATCH_MAX_TOKENS) hi = GPU_MATVEC_BATCH_MAX_TOKENS;
    return m >= 2 && m >= (int64_t)lo && m <= (int64_t)hi;
}

bool gpu_matvec_batch_mma(const gpu_exec_view *v, int64_t m, uint32_t weight) {
    if (!v->be->features.mma_parts || !v->be->features.mma_batch || m > GPU_MATVEC_MMA_MAX_TOKENS ||
        !gpu_matvec_batch(v, m) || v->tensors[weight].dtype != EXO_DTYPE_BF16)
        return false;
    int64_t ne[EXO_MAX_DIMS];
    gpu_view_count(v, weight, ne);
    return ne[0] % 32 == 0;
}

uint32_t gpu_matvec_mma_rows(const gpu_exec_view *v, uint32_t weight) {
    uint32_t forced = v->be->features.mma_batch_rows;
    /* The 16-row kernels take 512 items a work-group: not on a device of fewer. */
    if (v->be->features.max_work_group < GPU_MATVEC_MMA_ITEMS_R16) return GPU_MATVEC_MMA_ROWS;
    if (forced == 16 || forced == 32) return forced;
    int64_t ne[EXO_MAX_DIMS] = {0};
    int64_t count = gpu_view_count(v, weight, ne), rows = ne[0] > 0 ? count / ne[0] : 0;
    return rows < (int64_t)GPU_MATVEC_MMA_ROWS * GPU_MATVEC_BATCH_MIN_GROUPS ? 16 : GPU_MATVEC_MMA_ROWS;
}

bool gpu_matvec_tokens_fit(const gpu_exec_view *v, int64_t m) {
    return m <= GPU_MATVEC_MAX_TOKENS || gpu_matvec_batch(v, m);
}

/* Up to 8 tokens: exo_matmul_vecb8* (4 rows per item); up to 16: exo_matmul_vecb16* (2 rows). */
static uint32_t batch_tokens(int64_t m) { return m <= 8 ? 8 : 16; }

void gpu_matvec_family(const gpu_exec_view *v, int64_t m, uint32_t weight, const char *family, char name[48]) {
    if (!gpu_matvec_batch(v, m)) {
        snprintf(name, 48, "%s", family);
        return;
    }
    size_t base = strlen("exo_matmul_vec16");
    assert(strncmp(family, "exo_matmul_vec16", base) == 0);
    if (gpu_matvec_batch_mma(v, m, weight))
        snprintf(name, 48, "exo_matmul_mmab8%s%s", gpu_matvec_mma_rows(v, weight) == 16 ? "r16" : "", family + base);
    else
        snprintf(name, 48, "exo_matmul_vecb%u%s", batch_tokens(m), family + base);
}

uint32_t gpu_matvec_rows_per_item(const gpu_exec_view *v, int64_t m, uint32_t weight) {
    if (gpu_matvec_batch_mma(v, m, weight)) return gpu_matvec_mma_rows(v, weight);
    if (gpu_matvec_batch(v, m)) return 32 / batch_tokens(m);
    uint32_t rows = v->be->features.matvec_rows ? v->be->features.matvec_rows : GPU_MATVEC_ROWS_DEFAULT;
    return m == 1 && rows == 2 ? 2 : 1;
}
