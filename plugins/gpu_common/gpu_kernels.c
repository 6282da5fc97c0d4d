/* gpu_kernels.c — node -> launches (see gpu_kernels.h). Argument lists follow the kernels'
 * parameter lists in kernels/ one for one; a MEM argument stands for (pointer, element
 * offset), the offset in units of the tensor's dtype. */
#include "gpu_kernels.h"

#include "gpu_target.h"
#include "graph_ir.h"

#include <stdio.h>

typedef struct builder {
    const gpu_exec_view *v;
    gpu_launch l;
} builder;

static void start(builder *b, const gpu_exec_view *v, const char *kernel) {
    b->v = v;
    b->l.kernel = kernel;
    b->l.n_args = 0;
    b->l.dims = 1;
    for (int d = 0; d < 3; d++) b->l.global[d] = b->l.local[d] = 1;
}

static void arg_tensor(builder *b, uint32_t tensor) {
    const exo_tensor *t = &b->v->tensors[tensor];
    uint32_t esz = graph_dtype_size(t->dtype);
    gpu_arg *a = &b->l.args[b->l.n_args++];
    a->kind = GPU_ARG_MEM;
    a->v.mem.mem = b->v->mem[tensor];
    a->v.mem.offset = (uint32_t)(b->v->offset[tensor] / (esz ? esz : 1));
}
static void arg_mem(builder *b, gpu_mem *mem, uint32_t element_offset) {
    gpu_arg *a = &b->l.args[b->l.n_args++];
    a->kind = GPU_ARG_MEM;
    a->v.mem.mem = mem;
    a->v.mem.offset = element_offset;
}
static void arg_u32(builder *b, uint64_t x) {
    gpu_arg *a = &b->l.args[b->l.n_args++];
    a->kind = GPU_ARG_U32;
    a->v.u32 = (uint32_t)x;
}
static void arg_i32(builder *b, int64_t x) {
    gpu_arg *a = &b->l.args[b->l.n_args++];
    a->kind = GPU_ARG_I32;
    a->v.i32 = (int32_t)x;
}
static void arg_f32(builder *b, float x) {
    gpu_arg *a = &b->l.args[b->l.n_args++];
    a->kind = GPU_ARG_F32;
    a->v.f32 = x;
}

static size_t round_up(uint64_t n, size_t m) { return (size_t)((n + m - 1) / m * m); }

/* Sizes: `count` items per dimension, work-groups of `local`. */
static exo_status go(builder *b, uint32_t dims, const uint64_t count[3], const size_t local[3]) {
    b->l.dims = dims;
    for (uint32_t d = 0; d < dims; d++) {
        b->l.local[d] = local[d];
        b->l.global[d] = round_up(count[d] ? count[d] : 1, local[d]);
    }
    return b->v->be->launch(b->v->be->ctx, &b->l);
}

static exo_status go_1d(builder *b, uint64_t count) {
    return go(b, 1, (uint64_t[3]){count, 1, 1}, (size_t[3]){256, 1, 1});
}

static int64_t count_of(const gpu_exec_view *v, uint32_t tensor, int64_t ne[EXO_MAX_DIMS]) {
    int64_t tmp[EXO_MAX_DIMS];
    return graph_resolve_shape(&v->tensors[tensor], v->n_tokens, ne ? ne : tmp);
}
static int64_t outer_dim(const gpu_exec_view *v, uint32_t tensor) {
    int64_t ne[EXO_MAX_DIMS];
    count_of(v, tensor, ne);
    return ne[v->tensors[tensor].n_dims - 1];
}
static const char *dtype_suffix(exo_dtype t) { return t == EXO_DTYPE_F16 ? "f16" : t == EXO_DTYPE_BF16 ? "bf16" : "f32"; }

static void matmul_args(builder *b, const exo_node *nd, uint32_t bias, int64_t m, int64_t k, int64_t n) {
    arg_tensor(b, nd->src[0]);
    arg_tensor(b, nd->src[1]);
    arg_tensor(b, bias);
    arg_i32(b, nd->n_src == 3);
    arg_tensor(b, nd->dst);
    arg_u32(b, (uint64_t)m);
    arg_u32(b, (uint64_t)k);
    arg_u32(b, (uint64_t)n);
}

/* exo_matmul_vec16_* reads weights in aligned 8-element chunks and x as float4s: k and the
 * weight's element offset must be multiples of 8, x's of 4 (buffers themselves are at least
 * 16-byte aligned: CL_DEVICE_MEM_BASE_ADDR_ALIGN is >= 1024 bits on every OpenCL 1.2 device). */
static int matvec_wide_loads_fit(const gpu_exec_view *v, const exo_node *nd, int64_t k) {
    uint32_t wsz = graph_dtype_size(v->tensors[nd->src[1]].dtype);
    uint32_t xsz = graph_dtype_size(v->tensors[nd->src[0]].dtype);
    if (k % 8 != 0 || !wsz || xsz != 4) return 0;
    return (v->offset[nd->src[1]] / wsz) % 8 == 0 && v->offset[nd->src[1]] % wsz == 0 &&
           (v->offset[nd->src[0]] / 4) % 4 == 0 && v->offset[nd->src[0]] % 4 == 0;
}

/* Whether tensors a and b share bytes in this execution. */
static bool overlaps(const gpu_exec_view *v, uint32_t a, uint32_t b) {
    if (v->mem[a] != v->mem[b]) return false;
    uint64_t a0 = v->offset[a], a1 = a0 + graph_tensor_bytes(&v->tensors[a], v->n_tokens);
    uint64_t b0 = v->offset[b], b1 = b0 + graph_tensor_bytes(&v->tensors[b], v->n_tokens);
    return a0 < b1 && b0 < a1;
}

/* Launches a wide-load matvec kernel over `rows` weight rows: `lanes` items per row, 256 / lanes
 * rows per work-group; more lanes (while each still gets >= 8 chunks of 8) until ~1024
 * work-groups fill a big GPU (a sweep of fixed lane counts on an H200 found nothing better). */
static exo_status go_matvec(builder *b, int64_t k, int64_t rows) {
    uint64_t lanes = 32, chunks = (uint64_t)k / 8;
    while (lanes < 128 && (uint64_t)rows * lanes / 256 < 1024 && chunks >= lanes * 2 * 4) lanes *= 2;
    return go(b, 2, (uint64_t[3]){lanes, (uint64_t)rows, 1}, (size_t[3]){(size_t)lanes, (size_t)(256 / lanes), 1});
}

/* x [M,K] @ W[N,K]^T: matrix-vector kernels for decode-sized M (in chunks of GPU_MATVEC_MAX_TOKENS
 * rows of x), the tiled kernel otherwise. Among the matrix-vector kernels: the subgroup one where
 * the device has Intel subgroups, else the wide-load one (exo_matmul_vec16_*, what NVIDIA and
 * PoCL get) where the data is aligned for it, else the one-row-per-group fallback. */
static exo_status enqueue_matmul(const gpu_exec_view *v, const exo_node *nd) {
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = count_of(v, nd->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = count_of(v, nd->src[0], NULL) / k;
    exo_dtype wt = v->tensors[nd->src[1]].dtype;
    uint32_t bias = nd->n_src == 3 ? nd->src[2] : nd->dst;
    char name[48];
    builder b;
    if (m > GPU_MATVEC_MAX_TOKENS) {
        snprintf(name, sizeof name, "exo_matmul_tiled_%s", dtype_suffix(wt));
        start(&b, v, name);
        matmul_args(&b, nd, bias, m, k, n);
        /* 64x64 outputs per 16x16 work-group. */
        return go(&b, 2, (uint64_t[3]){(uint64_t)(n + 63) / 64 * 16, (uint64_t)(m + 63) / 64 * 16, 1},
                  (size_t[3]){16, 16, 1});
    }
    int sg = v->be->features.subgroups;
    if (!sg && matvec_wide_loads_fit(v, nd, k)) {
        snprintf(name, sizeof name, "exo_matmul_vec16_%s", dtype_suffix(wt));
        start(&b, v, name);
        matmul_args(&b, nd, bias, m, k, n);
        arg_tensor(&b, nd->src[0]); /* no residual */
        arg_i32(&b, 0);
        return go_matvec(&b, k, n);
    }
    snprintf(name, sizeof name, sg ? "exo_matmul_vec_sg_%s" : "exo_matmul_vec_%s", dtype_suffix(wt));
    start(&b, v, name);
    matmul_args(&b, nd, bias, m, k, n);
    /* 64 items per work-group: one weight row per group, or 4 rows (EXO_SG_ROWS) with subgroups. */
    uint64_t groups = sg ? (uint64_t)(n + 3) / 4 : (uint64_t)n;
    return go(&b, 1, (uint64_t[3]){groups * 64, 1, 1}, (size_t[3]){64, 1, 1});
}

/* One decode token: its visible rows cut into splits of whole tiles (enough work-groups to fill
 * a large GPU, at most GPU_ATT_MAX_SPLITS per head), then one combine per head. */
static exo_status enqueue_attention_split(const gpu_exec_view *v, const exo_node *nd) {
    int64_t last = v->attn_position, window = nd->i[3];
    int64_t first = window > 0 && last - window + 1 > 0 ? last - window + 1 : 0;
    int64_t rows = last - first + 1, tiles = (rows + GPU_ATT_TILE - 1) / GPU_ATT_TILE;
    int64_t tiles_per_split = (tiles + GPU_ATT_MAX_SPLITS - 1) / GPU_ATT_MAX_SPLITS;
    int64_t splits = (tiles + tiles_per_split - 1) / tiles_per_split;
    builder b;
    start(&b, v, "exo_attention_split");
    for (uint32_t s = 0; s < 4; s++) arg_tensor(&b, nd->src[s]);
    arg_mem(&b, v->attn_partials, 0);
    for (int p = 0; p < 4; p++) arg_i32(&b, nd->i[p]);
    arg_f32(&b, nd->f[0]);
    arg_f32(&b, nd->f[1]);
    arg_i32(&b, outer_dim(v, nd->src[1]));
    arg_i32(&b, tiles_per_split * GPU_ATT_TILE);
    exo_status st = go(&b, 2, (uint64_t[3]){(uint64_t)splits * GPU_ATT_TILE, (uint64_t)nd->i[0], 1},
                       (size_t[3]){GPU_ATT_TILE, 1, 1});
    if (st != EXO_OK) return st;
    start(&b, v, "exo_attention_combine");
    arg_mem(&b, v->attn_partials, 0);
    arg_tensor(&b, nd->dst);
    arg_i32(&b, nd->i[2]);
    arg_i32(&b, splits);
    return go(&b, 1, (uint64_t[3]){(uint64_t)nd->i[0] * GPU_ATT_TILE, 1, 1}, (size_t[3]){GPU_ATT_TILE, 1, 1});
}

bool gpu_matmul_group_fits(const gpu_exec_view *v, const exo_node *nodes, uint32_t count) {
    if (count < 2 || count > GPU_MATMUL_GROUP_MAX || v->be->features.subgroups) return false;
    int64_t wne[EXO_MAX_DIMS];
    count_of(v, nodes[0].src[1], wne);
    if (count_of(v, nodes[0].src[0], NULL) / wne[0] > GPU_MATVEC_MAX_TOKENS) return false;
    for (uint32_t i = 0; i < count; i++)
        if (v->tensors[nodes[i].src[1]].dtype != v->tensors[nodes[0].src[1]].dtype ||
            !matvec_wide_loads_fit(v, &nodes[i], wne[0]))
            return false;
    return true;
}

/* The norm arguments of the fused kernels: the RMS_NORM node folded in, or none. */
static void norm_args(builder *b, const exo_node *norm, uint32_t x) {
    arg_i32(b, norm != NULL);
    arg_tensor(b, norm ? norm->src[1] : x);
    arg_i32(b, norm ? b->v->tensors[norm->src[1]].dtype : 0);
    arg_f32(b, norm ? norm->f[0] : 0.0f);
    arg_i32(b, norm ? norm->i[0] : 0);
}

bool gpu_norm_fits(const gpu_exec_view *v, const exo_node *norm, const exo_node *nodes, uint32_t count,
                   uint32_t out) {
    if (norm->op != EXO_OP_RMS_NORM || nodes[0].src[0] != norm->dst) return false;
    int64_t ne[EXO_MAX_DIMS];
    int64_t x_count = count_of(v, norm->src[0], ne);
    const exo_tensor *w = &v->tensors[norm->src[1]];
    uint32_t wsz = graph_dtype_size(w->dtype);
    /* One token's row; the weight read 8 at a time from a multiple of 4; x as float4s. */
    if (x_count != ne[0] || ne[0] % 8 != 0 || !wsz || v->offset[norm->src[1]] % ((uint64_t)wsz * 4) != 0 ||
        v->offset[norm->src[0]] % 16 != 0)
        return false;
    /* The raw x is read while the outputs are written. */
    if (overlaps(v, out, norm->src[0])) return false;
    for (uint32_t i = 0; i < count; i++)
        if (overlaps(v, nodes[i].dst, norm->src[0])) return false;
    return true;
}

exo_status gpu_enqueue_matmul_group(const gpu_exec_view *v, const exo_node *nodes, uint32_t count,
                                    const exo_node *norm) {
    int64_t wne[EXO_MAX_DIMS];
    count_of(v, nodes[0].src[1], wne);
    int64_t k = wne[0], m = count_of(v, nodes[0].src[0], NULL) / k, rows = 0;
    char name[48];
    snprintf(name, sizeof name, "exo_matmul_vec16x3_%s", dtype_suffix(v->tensors[nodes[0].src[1]].dtype));
    builder b;
    start(&b, v, name);
    arg_tensor(&b, norm ? norm->src[0] : nodes[0].src[0]);
    arg_u32(&b, (uint64_t)m);
    arg_u32(&b, (uint64_t)k);
    for (uint32_t i = 0; i < GPU_MATMUL_GROUP_MAX; i++) {
        /* A pair repeats member 0 as the third with no rows. */
        const exo_node *nd = &nodes[i < count ? i : 0];
        int64_t n = i < count ? count_of(v, nd->src[1], NULL) / k : 0;
        arg_tensor(&b, nd->src[1]);
        arg_tensor(&b, nd->n_src == 3 ? nd->src[2] : nd->dst);
        arg_i32(&b, nd->n_src == 3);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)n);
        rows += n;
    }
    norm_args(&b, norm, nodes[0].src[0]);
    return go_matvec(&b, k, rows);
}

/* The residual ADD after a matmul: its other operand, when add reads mm's output and a tensor
 * of the same shape. */
static uint32_t residual_of(const exo_node *mm, const exo_node *add) {
    if (add->op != EXO_OP_ADD) return UINT32_MAX;
    if (add->src[0] == mm->dst && add->src[1] != mm->dst) return add->src[1];
    if (add->src[1] == mm->dst && add->src[0] != mm->dst) return add->src[0];
    return UINT32_MAX;
}

bool gpu_matmul_add_fits(const gpu_exec_view *v, const exo_node *mm, const exo_node *add) {
    uint32_t res = residual_of(mm, add);
    if (mm->op != EXO_OP_MATMUL || res == UINT32_MAX || v->be->features.subgroups) return false;
    int64_t wne[EXO_MAX_DIMS];
    count_of(v, mm->src[1], wne);
    int64_t k = wne[0];
    if (count_of(v, mm->src[0], NULL) / k > GPU_MATVEC_MAX_TOKENS || !matvec_wide_loads_fit(v, mm, k)) return false;
    /* No broadcast, and the ADD's output must not land on x while other rows still read it. */
    return count_of(v, res, NULL) == count_of(v, mm->dst, NULL) && !overlaps(v, add->dst, mm->src[0]);
}

exo_status gpu_enqueue_matmul_add(const gpu_exec_view *v, const exo_node *mm, const exo_node *add) {
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = count_of(v, mm->src[1], wne), k = wne[0], n = w_count / k;
    int64_t m = count_of(v, mm->src[0], NULL) / k;
    exo_node fused = *mm;
    fused.dst = add->dst;
    char name[48];
    snprintf(name, sizeof name, "exo_matmul_vec16_%s", dtype_suffix(v->tensors[mm->src[1]].dtype));
    builder b;
    start(&b, v, name);
    matmul_args(&b, &fused, fused.n_src == 3 ? fused.src[2] : fused.dst, m, k, n);
    arg_tensor(&b, residual_of(mm, add));
    arg_i32(&b, 1);
    return go_matvec(&b, k, n);
}

bool gpu_matmul_glu_fits(const gpu_exec_view *v, const exo_node *n) {
    const exo_node *glu = &n[2];
    if (glu->op != EXO_OP_GLU || glu->src[0] != n[0].dst || glu->src[1] != n[1].dst) return false;
    int64_t wne[EXO_MAX_DIMS];
    count_of(v, n[0].src[1], wne);
    /* One token only (the kernel has no per-token loop), the GLU's output not on x (the
     * planner sees to that), otherwise as the grouped matvec. */
    return count_of(v, n[0].src[0], NULL) == wne[0] && !overlaps(v, glu->dst, n[0].src[0]) &&
           gpu_matmul_group_fits(v, n, 2);
}

exo_status gpu_enqueue_matmul_glu(const gpu_exec_view *v, const exo_node *n, const exo_node *norm) {
    int64_t wne[EXO_MAX_DIMS];
    int64_t w_count = count_of(v, n[0].src[1], wne), k = wne[0], rows = w_count / k;
    char name[48];
    snprintf(name, sizeof name, "exo_matmul_vec16_glu_%s", dtype_suffix(v->tensors[n[0].src[1]].dtype));
    builder b;
    start(&b, v, name);
    arg_tensor(&b, norm ? norm->src[0] : n[0].src[0]);
    arg_u32(&b, (uint64_t)k);
    for (int i = 0; i < 2; i++) {
        arg_tensor(&b, n[i].src[1]);
        arg_tensor(&b, n[i].n_src == 3 ? n[i].src[2] : n[i].dst);
        arg_i32(&b, n[i].n_src == 3);
    }
    arg_tensor(&b, n[2].dst);
    arg_u32(&b, (uint64_t)rows);
    arg_i32(&b, n[2].i[0] == EXO_ACT_GELU_TANH ? 1 : 0);
    norm_args(&b, norm, n[0].src[0]);
    return go_matvec(&b, k, rows);
}

bool gpu_rope_kv_fits(const gpu_exec_view *v, const exo_node *n) {
    const exo_node *rq = &n[0], *rk = &n[1], *wk = &n[2], *wv = &n[3];
    if (rq->op != EXO_OP_ROPE || rk->op != EXO_OP_ROPE || wk->op != EXO_OP_KV_WRITE || wv->op != EXO_OP_KV_WRITE)
        return false;
    uint32_t pos = rq->src[1];
    if (wk->src[0] != rk->dst || wv->src[0] == rq->dst || wv->src[0] == rk->dst || rk->src[1] != pos ||
        wk->src[1] != pos || wv->src[1] != pos || rk->src[2] != rq->src[2] || rk->i[0] != rq->i[0] ||
        rk->i[1] != rq->i[1] || rk->f[0] != rq->f[0])
        return false;
    int64_t qne[EXO_MAX_DIMS], kne[EXO_MAX_DIMS];
    count_of(v, rq->src[0], qne);
    int64_t k_count = count_of(v, rk->src[0], kne);
    /* Same head size; v rows as long as k rows; both caches as long. */
    return qne[0] == kne[0] && count_of(v, wv->src[0], NULL) == k_count &&
           outer_dim(v, wk->dst) == outer_dim(v, wv->dst);
}

exo_status gpu_enqueue_rope_kv(const gpu_exec_view *v, const exo_node *n) {
    const exo_node *rq = &n[0], *rk = &n[1], *wk = &n[2], *wv = &n[3];
    int64_t ne[EXO_MAX_DIMS];
    int64_t q_count = count_of(v, rq->src[0], ne), tokens = count_of(v, rq->src[1], NULL), head_dim = ne[0];
    int64_t heads = q_count / (head_dim * tokens), kv_heads = count_of(v, rk->src[0], NULL) / (head_dim * tokens);
    builder b;
    start(&b, v, "exo_rope_kv");
    arg_tensor(&b, rq->src[0]);
    arg_tensor(&b, rk->src[0]);
    arg_tensor(&b, wv->src[0]);
    arg_tensor(&b, rq->src[1]);
    arg_tensor(&b, rq->src[2]);
    arg_tensor(&b, rq->dst);
    arg_tensor(&b, wk->dst);
    arg_tensor(&b, wv->dst);
    arg_u32(&b, (uint64_t)head_dim);
    arg_u32(&b, (uint64_t)heads);
    arg_u32(&b, (uint64_t)kv_heads);
    arg_i32(&b, rq->i[1]);
    arg_i32(&b, rq->i[0]);
    arg_f32(&b, rq->f[0]);
    arg_u32(&b, (uint64_t)outer_dim(v, wk->dst));
    return go(&b, 3, (uint64_t[3]){(uint64_t)head_dim, (uint64_t)(heads + 2 * kv_heads), (uint64_t)tokens},
              (size_t[3]){32, 1, 1});
}

static exo_status enqueue_binary(const gpu_exec_view *v, const exo_node *nd, const char *kernel) {
    builder b;
    start(&b, v, kernel);
    int64_t count = count_of(v, nd->src[0], NULL);
    arg_tensor(&b, nd->src[0]);
    arg_tensor(&b, nd->src[1]);
    arg_i32(&b, v->tensors[nd->src[1]].dtype);
    arg_u32(&b, (uint64_t)count_of(v, nd->src[1], NULL));
    arg_tensor(&b, nd->dst);
    arg_u32(&b, (uint64_t)count);
    return go_1d(&b, (uint64_t)count);
}

exo_status gpu_enqueue_node(const gpu_exec_view *v, const exo_node *nd, uint32_t index) {
    builder b;
    int64_t ne[EXO_MAX_DIMS];
    switch (nd->op) {
    case EXO_OP_GET_ROWS: {
        int64_t count = count_of(v, nd->src[0], ne), tokens = count_of(v, nd->src[1], NULL);
        start(&b, v, "exo_get_rows");
        arg_tensor(&b, nd->src[0]);
        arg_i32(&b, v->tensors[nd->src[0]].dtype);
        arg_u32(&b, (uint64_t)(count / ne[0]));
        arg_tensor(&b, nd->src[1]);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)ne[0]);
        arg_f32(&b, nd->f[0]);
        return go(&b, 2, (uint64_t[3]){(uint64_t)ne[0], (uint64_t)tokens, 1}, (size_t[3]){64, 1, 1});
    }
    case EXO_OP_RMS_NORM: {
        int64_t count = count_of(v, nd->src[0], ne);
        /* A power-of-two group no wider than the row (small rows: q/k norm over head_dim). */
        size_t local = 256;
        while (local > 32 && (int64_t)local / 2 >= ne[0]) local /= 2;
        start(&b, v, "exo_rms_norm");
        arg_tensor(&b, nd->src[0]);
        arg_tensor(&b, nd->src[1]);
        arg_i32(&b, v->tensors[nd->src[1]].dtype);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)ne[0]);
        arg_f32(&b, nd->f[0]);
        arg_i32(&b, nd->i[0]);
        return go(&b, 1, (uint64_t[3]){(uint64_t)(count / ne[0]) * local, 1, 1}, (size_t[3]){local, 1, 1});
    }
    case EXO_OP_MATMUL: return enqueue_matmul(v, nd);
    case EXO_OP_ADD: return enqueue_binary(v, nd, "exo_add");
    case EXO_OP_MUL: return enqueue_binary(v, nd, "exo_mul");
    case EXO_OP_GLU: {
        int64_t count = count_of(v, nd->src[0], NULL);
        start(&b, v, "exo_glu");
        arg_tensor(&b, nd->src[0]);
        arg_tensor(&b, nd->src[1]);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)count);
        arg_i32(&b, nd->i[0]);
        return go_1d(&b, (uint64_t)count);
    }
    case EXO_OP_ROPE: {
        int64_t count = count_of(v, nd->src[0], ne), tokens = count_of(v, nd->src[1], NULL);
        int64_t heads = count / (ne[0] * tokens);
        start(&b, v, "exo_rope");
        arg_tensor(&b, nd->src[0]);
        arg_tensor(&b, nd->src[1]);
        arg_tensor(&b, nd->src[2]);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)ne[0]);
        arg_u32(&b, (uint64_t)heads);
        arg_i32(&b, nd->i[1]);
        arg_i32(&b, nd->i[0]);
        arg_f32(&b, nd->f[0]);
        return go(&b, 3, (uint64_t[3]){(uint64_t)ne[0], (uint64_t)heads, (uint64_t)tokens}, (size_t[3]){32, 1, 1});
    }
    case EXO_OP_KV_WRITE: {
        int64_t tokens = count_of(v, nd->src[1], NULL), row = count_of(v, nd->src[0], NULL) / tokens;
        start(&b, v, "exo_kv_write");
        arg_tensor(&b, nd->src[0]);
        arg_tensor(&b, nd->src[1]);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)row);
        arg_u32(&b, (uint64_t)outer_dim(v, nd->dst));
        return go(&b, 2, (uint64_t[3]){(uint64_t)row, (uint64_t)tokens, 1}, (size_t[3]){64, 1, 1});
    }
    case EXO_OP_ATTENTION: {
        int64_t tokens = count_of(v, nd->src[3], NULL);
        if (tokens == 1 && v->attn_partials && v->attn_position >= 0) return enqueue_attention_split(v, nd);
        start(&b, v, "exo_attention");
        for (uint32_t s = 0; s < 4; s++) arg_tensor(&b, nd->src[s]);
        arg_tensor(&b, nd->dst);
        for (int p = 0; p < 4; p++) arg_i32(&b, nd->i[p]);
        arg_f32(&b, nd->f[0]);
        arg_f32(&b, nd->f[1]);
        arg_i32(&b, outer_dim(v, nd->src[1]));
        /* One work-group of 4 parts x 64 items per (head, token) (kernels/attention.cl): the
         * parts walk alternate tiles of the cache; head_dim <= 512 keeps 8 dims per item. */
        return go(&b, 2, (uint64_t[3]){(uint64_t)nd->i[0] * 256, (uint64_t)tokens, 1}, (size_t[3]){256, 1, 1});
    }
    case EXO_OP_SOFTCAP: {
        int64_t count = count_of(v, nd->src[0], NULL);
        start(&b, v, "exo_softcap");
        arg_tensor(&b, nd->src[0]);
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)count);
        arg_f32(&b, nd->f[0]);
        return go_1d(&b, (uint64_t)count);
    }
    case EXO_OP_COPY: {
        const exo_tensor *s = &v->tensors[nd->src[0]], *d = &v->tensors[nd->dst];
        int64_t count = count_of(v, nd->src[0], NULL);
        if (s->dtype != d->dtype) {
            start(&b, v, "exo_copy_to_f32");
            arg_tensor(&b, nd->src[0]);
            arg_i32(&b, s->dtype);
        } else {
            start(&b, v, graph_dtype_size(s->dtype) == 4 ? "exo_copy_u32" : "exo_copy_u16");
            arg_tensor(&b, nd->src[0]);
        }
        arg_tensor(&b, nd->dst);
        arg_u32(&b, (uint64_t)count);
        return go_1d(&b, (uint64_t)count);
    }
    default:
        break;
    }
    return gpu_fail(v->be, EXO_ERR_INTERNAL, "graph_execute: node %u has op %d, which has no kernel", index, (int)nd->op);
}
