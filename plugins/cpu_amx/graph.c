/* Graph compile and execute on the CPU: compile validates everything (at 1 and max_tokens
 * tokens), plans scratch for intermediates, sizes per-thread workspaces and the GEMM's packed
 * activations, picks kernels, finds matmuls that share an input (one pool job each group) and
 * prefaults the weight pages; execute binds INPUT/OUTPUT/KV tensors, checks the data that only
 * exists at run time (token ids, positions) and runs the nodes in order on the thread pool.
 * Matmuls take the streaming matrix-vector kernel up to CPU_GEMV_MAX_TOKENS tokens and the
 * blocked GEMM above (bf16 weights from CPU_ONEDNN_MIN_ROWS rows: oneDNN on AMX, matmul_onednn.h);
 * attention takes the per-token kernel for one token and the tiled one for more. Execute
 * allocates nothing, except a oneDNN primitive for a row count it has not seen yet. */
#include "cpu_plugin.h"
#include "graph_bindings.h"
#include "graph_ir.h"
#include "graph_validate.h"
#include "scratch_plan.h"
#include "graph_prefault.h"
#include "kernels_fast.h"
#include "kernels_ref.h"
#include "matmul_group.h"
#include "matmul_onednn.h"
#include "threadpool.h"

#include <stdlib.h>
#include <string.h>

/* Element-wise work below this many elements runs on the calling thread: a decode step's
 * vectors (a few thousand floats, well under a microsecond) cost less than a hand-off. */
#define CPU_ELTWISE_GRAIN 16384
/* Dense matmuls of up to this many tokens take the streaming kernels, which loop the tokens in
 * tiles while a tile of weight rows is in cache (kernels_avx512.c); above it the GEMM. Past
 * CPU_GEMV_MAX_TOKENS this is a batched decode step (abi/exo_plugin.h, "Pooled KV caches"),
 * whose few rows the GEMM's per-weight packing would cost far more than they compute (1B bf16,
 * 8 rows: ~5x the time of one). Bounded by the bf16 kernel's workspace (CPU_MATMUL_BLOCK rows). */
#define CPU_DECODE_MAX_TOKENS CPU_MATMUL_BLOCK

struct exo_compiled {
    exo_plugin_ctx *ctx;
    uint32_t n_tensors, n_nodes, max_tokens;
    exo_tensor *tensors;
    exo_node *nodes;
    void **data;      /* per tensor: weights and intermediates fixed at compile, bound ones per run */
    uint8_t *bound;   /* per tensor: seen in the current execution's bindings */
    uint8_t *scratch;
    uint64_t scratch_size;
    uint8_t *workspace;
    size_t workspace_stride;
    uint32_t n_threads;
    bool fast;        /* AVX-512 kernels on */
    cpu_kernel_fn gemv; /* the decode matmul: cpu_avx512_matmul, or cpu_mlx_matmul_int8 (EXO_CPU_MLX_INT8) */
    uint8_t *group;   /* per node: matmuls from here on sharing one pool job (0: not a group start) */
    float *x_packed;  /* GEMM activations re-laid out once per matmul (fast kernels, prefill) */
    uint8_t *x_int8;  /* EXO_CPU_MLX_INT8: the same as int8 for cpu_mlx_gemm_int8, or NULL */
    cpu_onednn *onednn; /* bf16 prefill matmuls through oneDNN (AMX), or NULL: matmul_onednn.h */
    /* MOE_MATMUL: the rows of one expert gathered (x) and its results (y) before the scatter,
     * and the (token, slot) rows bucketed by expert. */
    float *moe_x, *moe_y;
    int32_t *moe_rows, *moe_start;
    cpu_matmul_args *moe_args; /* one per active expert (the single-row decode path) */
};

static exo_status check_device(exo_plugin_ctx *ctx, uint32_t device, const char *what) {
    if (device != 0) return cpu_error(ctx, EXO_ERR_NOT_FOUND, "cpu_amx %s: no device %u (only 0)", what, device);
    return EXO_OK;
}

/* The CPU's terms for the shared validator and planner (plugins/graph_common): every dtype,
 * no indexing limit, weights and bindings in host memory, whose addresses must be aligned. */
static bool host_buffer_span(const void *user, exo_buffer *buf, uint64_t *size, uintptr_t *base) {
    if (!buf->data) return false;
    *size = buf->size;
    *base = (uintptr_t)buf->data;
    return true;
}

static graph_target cpu_graph_target(const exo_plugin_ctx *ctx) {
    return (graph_target){.name = "cpu_amx", .host = ctx->host, .dtypes = GRAPH_DTYPES_ALL,
                          .buffer_span = host_buffer_span, .moe = true,
                          .moe_1_5 = true, .kv_pool = true,
                          .kv_dtypes = GRAPH_DTYPE_BIT(EXO_DTYPE_BF16) | GRAPH_DTYPE_BIT(EXO_DTYPE_F16)};
}

static exo_status check_graph(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t *bad_node) {
    graph_target target = cpu_graph_target(ctx);
    return graph_validate(&target, g, bad_node);
}

exo_status cpu_supports_graph(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                              uint32_t *first_unsupported) {
    uint32_t bad = UINT32_MAX;
    exo_status st = check_device(ctx, device, "supports_graph");
    if (st == EXO_OK) st = check_graph(ctx, graph, &bad);
    if (first_unsupported) *first_unsupported = bad;
    return st;
}

void cpu_compiled_free(exo_compiled *c) {
    if (!c) return;
    free(c->tensors);
    free(c->nodes);
    free(c->data);
    free(c->bound);
    free(c->group);
    free(c->x_packed);
    free(c->x_int8);
    free(c->moe_x);
    free(c->moe_y);
    free(c->moe_rows);
    free(c->moe_start);
    free(c->moe_args);
    cpu_onednn_free(c->onednn);
    free(c->scratch);
    free(c->workspace);
    free(c);
}

static size_t node_workspace(const exo_compiled *c, const exo_node *nd) {
    if (nd->op == EXO_OP_ATTENTION) {
        int32_t head_dim = nd->i[EXO_ATTENTION_I_HEAD_DIM];
        size_t need = (size_t)head_dim * sizeof(double);
        size_t fast = c->fast ? cpu_avx512_attention_workspace(head_dim) : 0;
        size_t tiled = c->fast && c->max_tokens > 1 ? cpu_avx512_attention_tiled_workspace(head_dim) : 0;
        if (fast > need) need = fast;
        return tiled > need ? tiled : need;
    }
    if ((nd->op == EXO_OP_MATMUL || nd->op == EXO_OP_MOE_MATMUL) && c->fast) {
        size_t gemv = cpu_avx512_matmul_workspace(c->tensors[nd->src[nd->op == EXO_OP_MATMUL ? 1 : 2]].ne[0]);
        size_t gemm = c->max_tokens > CPU_GEMV_MAX_TOKENS ? cpu_avx512_gemm_workspace() : 0;
        size_t gemm_int8 = c->max_tokens > CPU_GEMV_MAX_TOKENS ? cpu_mlx_gemm_int8_workspace() : 0;
        if (gemm_int8 > gemm) gemm = gemm_int8;
        return gemv > gemm ? gemv : gemm;
    }
    return 0;
}

/* EXO_CPU_KERNELS: "ref" forces the reference kernels; "auto" (or unset) picks the fastest the CPU
 * has. Anything else is a typo: warn and keep the default rather than ignore it silently. */
static bool kernels_forced_to_reference(exo_plugin_ctx *ctx) {
    const char *v = ctx->host->get_env ? ctx->host->get_env(ctx->host->host_ctx, "EXO_CPU_KERNELS") : NULL;
    if (!v || !*v || strcmp(v, "auto") == 0) return false;
    if (strcmp(v, "ref") == 0) return true;
    cpu_log(ctx, EXO_LOG_WARN, "EXO_CPU_KERNELS='%.40s' is not one of ref, auto; using auto", v);
    return false;
}

/* EXO_CPU_MLX_INT8=on: matmuls on MLX weights quantize their activations to int8 per group,
 * faster at reduced precision (docs/performance.md 4.4): decode on 4- and 8-bit weights
 * (cpu_mlx_matmul_int8), prefill on 2- to 8-bit (cpu_mlx_gemm_int8). Off (the default) keeps
 * every matmul at float32 precision. */
static bool mlx_int8_requested(exo_plugin_ctx *ctx) {
    const char *v = ctx->host->get_env ? ctx->host->get_env(ctx->host->host_ctx, "EXO_CPU_MLX_INT8") : NULL;
    if (!v || !*v || strcmp(v, "off") == 0 || strcmp(v, "0") == 0) return false;
    if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0) return true;
    cpu_log(ctx, EXO_LOG_WARN, "EXO_CPU_MLX_INT8='%.40s' is not one of on, off (or 1, 0); using off", v);
    return false;
}

/* The MOE_MATMUL gather/scatter buffers, for the largest such node: one expert takes at most
 * max_tokens rows (a token selects an expert once). */
static exo_status moe_alloc(exo_compiled *c) {
    size_t xs = 0, ys = 0, rows = 0, experts = 0;
    for (uint32_t i = 0; i < c->n_nodes; i++) {
        const exo_node *nd = &c->nodes[i];
        if (nd->op == EXO_OP_MOE_TOPK && c->tensors[nd->src[0]].ne[0] > CPU_MOE_MAX_EXPERTS)
            return cpu_error(c->ctx, EXO_ERR_UNSUPPORTED, "cpu_amx graph_compile: node %u (MOE_TOPK) routes over %lld "
                             "experts; the kernels take at most %d", i, (long long)c->tensors[nd->src[0]].ne[0],
                             CPU_MOE_MAX_EXPERTS);
        if (nd->op == EXO_OP_MOE_WEIGHTS && c->tensors[nd->src[0]].ne[0] > CPU_MOE_MAX_EXPERTS)
            return cpu_error(c->ctx, EXO_ERR_UNSUPPORTED, "cpu_amx graph_compile: node %u (MOE_WEIGHTS) routes over "
                             "%lld experts; the kernels take at most %d", i, (long long)c->tensors[nd->src[0]].ne[0],
                             CPU_MOE_MAX_EXPERTS);
        if (nd->op != EXO_OP_MOE_MATMUL) continue;
        const exo_tensor *w = &c->tensors[nd->src[2]];
        size_t k = (size_t)c->tensors[nd->src[1]].ne[0];
        if ((size_t)w->ne[0] * c->max_tokens > xs) xs = (size_t)w->ne[0] * c->max_tokens;
        if ((size_t)w->ne[1] * c->max_tokens > ys) ys = (size_t)w->ne[1] * c->max_tokens;
        if (k * c->max_tokens > rows) rows = k * c->max_tokens;
        if ((size_t)nd->i[EXO_MOE_MATMUL_I_N_EXPERTS] + 1 > experts) experts = (size_t)nd->i[EXO_MOE_MATMUL_I_N_EXPERTS] + 1;
    }
    if (!xs) return EXO_OK;
    if (posix_memalign((void **)&c->moe_x, CPU_ALIGN, xs * sizeof(float)) != 0) c->moe_x = NULL;
    if (posix_memalign((void **)&c->moe_y, CPU_ALIGN, ys * sizeof(float)) != 0) c->moe_y = NULL;
    c->moe_rows = malloc(rows * sizeof *c->moe_rows);
    c->moe_start = malloc((experts + 1) * sizeof *c->moe_start);
    c->moe_args = malloc(experts * sizeof *c->moe_args);
    if (!c->moe_x || !c->moe_y || !c->moe_rows || !c->moe_start || !c->moe_args)
        return cpu_error(c->ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: out of memory for the expert buffers");
    return EXO_OK;
}

exo_status cpu_graph_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *g, exo_compiled **out) {
    if (!out) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx graph_compile: out is NULL");
    *out = NULL;
    exo_status st = check_device(ctx, device, "graph_compile");
    if (st != EXO_OK) return st;
    if (!ctx->open) return cpu_error(ctx, EXO_ERR_INVALID_ARG, "cpu_amx graph_compile: device 0 is not open");
    uint32_t bad;
    st = check_graph(ctx, g, &bad);
    if (st != EXO_OK) return st;

    exo_compiled *c = calloc(1, sizeof *c);
    if (!c) return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: out of memory");
    c->ctx = ctx;
    c->n_tensors = g->n_tensors;
    c->n_nodes = g->n_nodes;
    c->max_tokens = g->max_tokens;
    c->n_threads = cpu_threadpool_size(ctx->pool);
    const cpu_features *f = &ctx->features;
    c->fast = f->avx512f && f->avx512bw && f->avx512vl && !kernels_forced_to_reference(ctx);
    bool mlx_int8 = c->fast && mlx_int8_requested(ctx);
    c->gemv = mlx_int8 ? cpu_mlx_matmul_int8 : cpu_avx512_matmul;
    c->tensors = malloc(sizeof *c->tensors * g->n_tensors);
    c->nodes = malloc(sizeof *c->nodes * g->n_nodes);
    c->data = calloc(g->n_tensors, sizeof *c->data);
    c->bound = calloc(g->n_tensors, 1);
    c->group = calloc(g->n_nodes ? g->n_nodes : 1, 1);
    uint64_t *offsets = malloc(sizeof *offsets * g->n_tensors);
    if (!c->tensors || !c->nodes || !c->data || !c->bound || !c->group || !offsets) {
        free(offsets);
        cpu_compiled_free(c);
        return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: out of memory");
    }
    graph_copy_tables(g, c->tensors, c->nodes);
    for (uint32_t i = 0; c->fast && i < g->n_nodes;) {
        uint32_t len = graph_matmul_group_length(g, i, CPU_MATMUL_GROUP_MAX);
        c->group[i] = (uint8_t)len;
        i += len > 1 ? len : 1;
    }

    graph_target target = cpu_graph_target(ctx);
    st = graph_plan_scratch(&target, g, NULL, 0, CPU_ALIGN, offsets, &c->scratch_size);
    uint64_t mem_total = 0, mem_avail = 0;
    if (st == EXO_OK && cpu_read_meminfo(&mem_total, &mem_avail) && c->scratch_size > mem_total)
        st = cpu_error(ctx, EXO_ERR_NO_MEMORY,
                       "cpu_amx graph_compile: intermediates need %llu bytes of scratch at max_tokens %u, more than "
                       "the machine's %llu bytes",
                       (unsigned long long)c->scratch_size, g->max_tokens, (unsigned long long)mem_total);
    if (st == EXO_OK && c->scratch_size > 0 &&
        posix_memalign((void **)&c->scratch, CPU_ALIGN, (size_t)c->scratch_size) != 0) {
        c->scratch = NULL;
        st = cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: cannot allocate %llu bytes of scratch",
                       (unsigned long long)c->scratch_size);
    }
    size_t ws = 0;
    for (uint32_t i = 0; st == EXO_OK && i < g->n_nodes; i++) {
        size_t need = node_workspace(c, &c->nodes[i]);
        if (need > ws) ws = need;
    }
    c->workspace_stride = (ws + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (st == EXO_OK && c->workspace_stride > 0 &&
        posix_memalign((void **)&c->workspace, CPU_ALIGN, c->workspace_stride * c->n_threads) != 0) {
        c->workspace = NULL;
        st = cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: cannot allocate %zu bytes of workspace",
                       c->workspace_stride * c->n_threads);
    }
    size_t packed = 0, packed_int8 = 0;
    for (uint32_t i = 0; st == EXO_OK && c->fast && g->max_tokens > CPU_GEMV_MAX_TOKENS && i < g->n_nodes; i++)
        if (c->nodes[i].op == EXO_OP_MATMUL || c->nodes[i].op == EXO_OP_MOE_MATMUL) {
            const exo_tensor *w = &c->tensors[c->nodes[i].src[c->nodes[i].op == EXO_OP_MATMUL ? 1 : 2]];
            size_t need = cpu_avx512_gemm_packed_floats(g->max_tokens, w->ne[0]);
            if (need > packed) packed = need;
            if (mlx_int8 && w->dtype == EXO_DTYPE_MLX_AFFINE && w->q_group >= 32) {
                need = cpu_mlx_gemm_int8_packed_bytes(g->max_tokens, w->ne[0], w->q_group);
                if (need > packed_int8) packed_int8 = need;
            }
        }
    if (st == EXO_OK && packed > 0 && posix_memalign((void **)&c->x_packed, CPU_ALIGN, packed * sizeof(float)) != 0) {
        c->x_packed = NULL;
        st = cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: cannot allocate %zu bytes for packed activations",
                       packed * sizeof(float));
    }
    if (st == EXO_OK && packed_int8 > 0 && posix_memalign((void **)&c->x_int8, CPU_ALIGN, packed_int8) != 0) {
        c->x_int8 = NULL;
        st = cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx graph_compile: cannot allocate %zu bytes for int8 activations",
                       packed_int8);
    }
    if (st == EXO_OK) st = moe_alloc(c);
    /* Not with the reference kernels: they are the oracle, exact to f32 accumulation. */
    if (st == EXO_OK && c->fast) st = cpu_onednn_create(ctx, g, c->n_threads, &c->onednn);
    if (st != EXO_OK) {
        free(offsets);
        cpu_compiled_free(c);
        return st;
    }
    for (uint32_t t = 0; t < g->n_tensors; t++) {
        const exo_tensor *ten = exo_graph_tensor(g, t);
        if (ten->flags & EXO_TENSOR_WEIGHT) c->data[t] = g->buffers[ten->buffer]->data + ten->offset;
        else if (offsets[t] != GRAPH_NOT_PLANNED) c->data[t] = c->scratch + offsets[t];
    }
    /* offsets has n_tensors 64-bit slots, room for the prefault's n_tensors indices. */
    cpu_prefault_weights(ctx, g, (uint32_t *)offsets);
    free(offsets);
    uint32_t groups = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) groups += c->group[i] > 1;
    cpu_log(ctx, EXO_LOG_DEBUG,
            "compiled %u nodes, %u tensors: %llu bytes scratch, %zu bytes workspace x %u threads, %s kernels, "
            "%u matmul groups",
            g->n_nodes, g->n_tensors, (unsigned long long)c->scratch_size, c->workspace_stride, c->n_threads,
            c->fast ? "AVX-512" : "reference", groups);
    *out = c;
    return EXO_OK;
}

/* ---------------------------------------------------------------- execution */

/* Checks the arguments and bindings (plugins/graph_common), then points each bound tensor at
 * its buffer. */
static exo_status bind_tensors(exo_compiled *c, const exo_exec_args *args) {
    graph_target target = cpu_graph_target(c->ctx);
    exo_status st = graph_check_bindings(&target, c->tensors, c->n_tensors, c->max_tokens, args, c->bound);
    for (uint32_t b = 0; st == EXO_OK && b < args->n_bindings; b++) {
        const exo_binding *bd = exo_exec_binding(args, b);
        c->data[bd->tensor] = bd->buffer->data + bd->offset;
    }
    return st;
}

typedef struct exec_node {
    exo_compiled *c;
    uint32_t index;
    const exo_node *node;
    uint32_t n_tokens;
} exec_node;

static void *src_data(const exec_node *e, uint32_t s) { return e->c->data[e->node->src[s]]; }
static int64_t src_shape(const exec_node *e, uint32_t s, int64_t ne[EXO_MAX_DIMS]) {
    int64_t tmp[EXO_MAX_DIMS];
    return graph_resolve_shape(&e->c->tensors[e->node->src[s]], e->n_tokens, ne ? ne : tmp);
}
static int64_t outer_dim(const exec_node *e, uint32_t tensor) {
    int64_t ne[EXO_MAX_DIMS];
    const exo_tensor *t = &e->c->tensors[tensor];
    graph_resolve_shape(t, e->n_tokens, ne);
    return ne[t->n_dims - 1];
}

/* Token ids and positions arrive with the inputs, so their range is checked per execution. */
static exo_status check_indices(const exec_node *e, uint32_t s, int64_t count, int64_t limit, const char *what) {
    const int32_t *v = src_data(e, s);
    for (int64_t i = 0; i < count; i++)
        if (v[i] < 0 || v[i] >= limit) {
            const exo_tensor *t = &e->c->tensors[e->node->src[s]];
            return cpu_error(e->c->ctx, EXO_ERR_INVALID_ARG,
                             "cpu_amx graph_execute: node %u (%s): %s '%.*s'[%lld] = %d is outside [0, %lld)", e->index,
                             graph_op_name(e->node->op), what, GRAPH_NAME_ARG(t), (long long)i, v[i], (long long)limit);
        }
    return EXO_OK;
}

/* The quantization of weight `tensor` (zero unless MLX_AFFINE). */
static cpu_quant quant_of(const exo_compiled *c, uint32_t tensor) {
    const exo_tensor *t = &c->tensors[tensor];
    if (t->dtype != EXO_DTYPE_MLX_AFFINE) return (cpu_quant){0};
    return (cpu_quant){c->data[t->q_scales], c->data[t->q_biases], c->tensors[t->q_scales].dtype, t->q_bits,
                       t->q_group};
}

static void matmul_args(const exec_node *e, cpu_matmul_args *a) {
    const exo_compiled *c = e->c;
    const exo_node *nd = e->node;
    int64_t wne[EXO_MAX_DIMS];
    int64_t x_count = src_shape(e, 0, NULL), w_count = src_shape(e, 1, wne);
    *a = (cpu_matmul_args){src_data(e, 0), x_count / wne[0], wne[0], w_count / wne[0], src_data(e, 1),
                           c->tensors[nd->src[1]].dtype, nd->n_src == 3 ? src_data(e, 2) : NULL, c->data[nd->dst],
                           c->workspace, c->workspace_stride, NULL, quant_of(c, nd->src[1]), NULL};
}

/* Prepares the prefill GEMM of `count` matmuls that share x (their args in m) and returns its
 * kernel: x re-laid out once for all of them, as floats for the exact GEMM and, in the int8 mode,
 * as int8 for the members cpu_mlx_gemm_int8 takes (at the first such member's group size; a
 * member of another group keeps the exact GEMM, which cpu_mlx_gemm_int8 runs for it). */
static cpu_kernel_fn prefill_prepare(exo_compiled *c, cpu_matmul_args *m, uint32_t count) {
    bool exact = false;
    cpu_matmul_args *int8 = NULL;
    for (uint32_t i = 0; i < count; i++) {
        m[i].x_packed = c->x_packed;
        m[i].x_int8 = NULL;
        if (c->x_int8 && cpu_mlx_gemm_int8_takes(&m[i]) && (!int8 || m[i].q.group == int8->q.group)) {
            m[i].x_int8 = c->x_int8;
            if (!int8) int8 = &m[i];
        } else
            exact = true;
    }
    if (exact)
        cpu_threadpool_run(c->ctx->pool, cpu_avx512_gemm_pack_items(m[0].m, m[0].k), 1, cpu_avx512_gemm_pack_x, &m[0]);
    if (int8)
        cpu_threadpool_run(c->ctx->pool, cpu_mlx_gemm_int8_pack_items(int8->m), 1, cpu_mlx_gemm_int8_pack_x, int8);
    return int8 ? cpu_mlx_gemm_int8 : cpu_avx512_gemm;
}

/* Matmuls first .. first + count - 1 share their input: one pool job over all their columns. */
static exo_status run_matmul_group(exo_compiled *c, uint32_t first, uint32_t count, uint32_t n_tokens) {
    cpu_matmul_group_args g;
    g.count = count;
    g.start[0] = 0;
    for (uint32_t i = 0; i < count; i++) {
        exec_node e = {c, first + i, &c->nodes[first + i], n_tokens};
        matmul_args(&e, &g.member[i]);
        g.start[i + 1] = g.start[i] + g.member[i].n;
    }
    bool onednn = true;
    for (uint32_t i = 0; i < count; i++) onednn = onednn && cpu_onednn_takes(c->onednn, first + i, g.member[i].m);
    if (onednn) {
        /* The members share x: one bf16 rounding serves them all. */
        cpu_onednn_load_x(c->onednn, c->ctx->pool, g.member[0].x, g.member[0].m, g.member[0].k);
        for (uint32_t i = 0; i < count; i++) {
            exo_status st = cpu_onednn_matmul(c->onednn, first + i, g.member[i].m, g.member[i].bias, g.member[i].dst);
            if (st != EXO_OK) return st;
        }
        return EXO_OK;
    }
    bool gemm = g.member[0].m > CPU_DECODE_MAX_TOKENS;
    g.fn = gemm ? prefill_prepare(c, g.member, count) : c->gemv; /* one packing of x serves them all */
    cpu_threadpool_run(c->ctx->pool, g.start[count], gemm ? CPU_GEMM_GRAIN : CPU_MATMUL_BLOCK, cpu_matmul_group_task,
                       &g);
    return EXO_OK;
}

/* The single-row expert matvecs of one MOE_MATMUL as one thread-pool job: items are the rows of
 * the active experts laid end to end (expert i's rows at [i * n, (i + 1) * n)), so the k experts
 * of a decode step cost one hand-off instead of k, and the threads split all k experts' rows
 * evenly instead of each expert's 768 or 2048 rows separately. */
typedef struct moe_gemv_job {
    const cpu_matmul_args *a; /* one per active expert, x and y pointing at its row */
    int64_t n;                /* rows per expert */
} moe_gemv_job;

static void moe_gemv_rows(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const moe_gemv_job *j = args;
    for (int64_t i = begin / j->n; i * j->n < end; i++) {
        int64_t lo = begin > i * j->n ? begin - i * j->n : 0, hi = end < (i + 1) * j->n ? end - i * j->n : j->n;
        cpu_avx512_matmul((void *)&j->a[i], lo, hi, thread);
    }
}

/* Expert ex's weight (and its quantization: rows of the scales and biases) of a MOE_MATMUL. */
static const void *expert_weight(const exo_compiled *c, const exo_node *nd, int32_t ex, int64_t kin, int64_t n,
                                 cpu_quant *q) {
    const exo_tensor *w0 = &c->tensors[nd->src[2]];
    *q = (cpu_quant){0};
    if (w0->n_dims == 3 && w0->dtype == EXO_DTYPE_MLX_AFFINE) {
        /* Expert ex's packed rows, and its rows of the scales and biases ([E, N, K / group]). */
        size_t groups = (size_t)(n * (kin / w0->q_group));
        *q = quant_of(c, nd->src[2]);
        q->scales = (const uint8_t *)q->scales + (size_t)ex * groups * exo_dtype_size(q->type);
        q->biases = (const uint8_t *)q->biases + (size_t)ex * groups * exo_dtype_size(q->type);
        return (const uint8_t *)c->data[nd->src[2]] + (size_t)ex * (size_t)(n * kin) / 8 * w0->q_bits;
    }
    if (w0->n_dims == 3)
        return (const uint8_t *)c->data[nd->src[2]] + (size_t)ex * (size_t)(n * kin) * exo_dtype_size(w0->dtype);
    *q = quant_of(c, nd->src[2] + (uint32_t)ex);
    return c->data[nd->src[2] + (uint32_t)ex];
}

/* The expert-indexed matmul: the (token, slot) rows are bucketed by expert, and each active
 * expert runs one matmul over its gathered rows (so a decode step reads only the k selected
 * experts' weights, and prefill reads each active expert once per chunk of rows), whose results
 * are scattered back to dst[t, j, :]. When every active expert has a single row (decoding one
 * token), the rows need no gathering: the k matvecs read x and write dst in place, as one job. */
static exo_status run_moe_matmul(const exec_node *e) {
    exo_compiled *c = e->c;
    const exo_node *nd = e->node;
    cpu_threadpool *pool = c->ctx->pool;
    int64_t ine[EXO_MAX_DIMS];
    int64_t slots_total = src_shape(e, 1, ine), k = ine[0], tokens = slots_total / k;
    int32_t experts = nd->i[EXO_MOE_MATMUL_I_N_EXPERTS];
    exo_status st = check_indices(e, 1, slots_total, experts, "expert id");
    if (st != EXO_OK) return st;
    const exo_tensor *w0 = &c->tensors[nd->src[2]];
    int64_t kin = w0->ne[0], n = w0->ne[1];
    bool per_slot = src_shape(e, 0, NULL) == slots_total * kin;
    const int32_t *ids = src_data(e, 1);
    const float *x = src_data(e, 0);
    float *dst = c->data[nd->dst];
    /* Bucket the rows by expert (counting sort: rows keep their order within an expert). */
    int32_t *start = c->moe_start;
    memset(start, 0, (size_t)(experts + 1) * sizeof *start);
    for (int64_t r = 0; r < slots_total; r++) start[ids[r] + 1]++;
    for (int32_t x_ = 0; x_ < experts; x_++) start[x_ + 1] += start[x_];
    for (int64_t r = 0; r < slots_total; r++) c->moe_rows[start[ids[r]]++] = (int32_t)r;
    for (int32_t x_ = experts; x_ > 0; x_--) start[x_] = start[x_ - 1];
    start[0] = 0;
    (void)tokens;
    int32_t active = 0;
    bool single_rows = c->fast;
    for (int32_t ex = 0; ex < experts && single_rows; ex++) {
        int64_t m = start[ex + 1] - start[ex];
        if (m == 0) continue;
        if (m > 1) {
            single_rows = false;
            break;
        }
        int32_t r = c->moe_rows[start[ex]];
        cpu_matmul_args *a = &c->moe_args[active++];
        cpu_quant q;
        const void *w = expert_weight(c, nd, ex, kin, n, &q);
        const float *bias = nd->n_src > 3 ? (const float *)src_data(e, 3) + (int64_t)ex * n : NULL;
        *a = (cpu_matmul_args){x + (per_slot ? r : r / k) * kin, 1, kin, n, w, w0->dtype, bias, dst + (int64_t)r * n,
                               c->workspace, c->workspace_stride, NULL, q, NULL};
    }
    if (single_rows && active > 0) {
        moe_gemv_job job = {c->moe_args, n};
        cpu_threadpool_run(pool, active * n, CPU_MATMUL_BLOCK, moe_gemv_rows, &job);
        return EXO_OK;
    }
    for (int32_t ex = 0; ex < experts; ex++) {
        int64_t m = start[ex + 1] - start[ex];
        if (m == 0) continue;
        const int32_t *rows = c->moe_rows + start[ex];
        for (int64_t i = 0; i < m; i++) {
            int64_t src_row = per_slot ? rows[i] : rows[i] / k;
            memcpy(c->moe_x + i * kin, x + src_row * kin, (size_t)kin * sizeof(float));
        }
        cpu_quant q;
        const void *w = expert_weight(c, nd, ex, kin, n, &q);
        /* (1.5) src[3]: the experts' biases [E, N]; expert ex's row is the matmul's bias. */
        const float *bias = nd->n_src > 3 ? (const float *)src_data(e, 3) + (int64_t)ex * n : NULL;
        cpu_matmul_args a = {c->moe_x, m, kin, n, w, w0->dtype, bias, c->moe_y, c->workspace, c->workspace_stride,
                             NULL, q, NULL};
        if (!c->fast)
            cpu_threadpool_run(pool, n, 1, cpu_ref_matmul, &a);
        else if (m > CPU_GEMV_MAX_TOKENS)
            cpu_threadpool_run(pool, n, CPU_GEMM_GRAIN, prefill_prepare(c, &a, 1), &a);
        else
            cpu_threadpool_run(pool, n, CPU_MATMUL_BLOCK, cpu_avx512_matmul, &a);
        for (int64_t i = 0; i < m; i++) memcpy(dst + (int64_t)rows[i] * n, c->moe_y + i * n, (size_t)n * sizeof(float));
    }
    return EXO_OK;
}

/* A KV cache's rows per sequence (ctx). Pooled (ABI 1.6, 4-D [slots][ctx][row]): also the node's
 * slots source `slots_src` and the floats from one slot to the next; unpooled, *slots stays NULL. */
static int64_t cache_geometry(const exec_node *e, uint32_t cache, uint32_t slots_src, const int32_t **slots,
                              int64_t *slot_elems) {
    int64_t ne[EXO_MAX_DIMS];
    const exo_tensor *t = &e->c->tensors[cache];
    graph_resolve_shape(t, e->n_tokens, ne);
    if (t->n_dims != 4) return ne[t->n_dims - 1];
    *slots = src_data(e, slots_src);
    *slot_elems = ne[0] * ne[1] * ne[2];
    return ne[2];
}

/* Attention for a run of tokens that share one cache (one slot, or an unpooled cache): the
 * tiled kernel for several tokens, the per-row kernel otherwise. */
static void run_attention_run(exo_compiled *c, cpu_attention_args *a) {
    int64_t group = a->n_heads / a->n_kv_heads;
    if (c->fast && a->n_tokens > 1 && cpu_attention_tiled_fits(group)) {
        int64_t block = cpu_attention_block_tokens(group);
        cpu_threadpool_run(c->ctx->pool, (a->n_tokens + block - 1) / block * a->n_kv_heads, 1,
                           cpu_avx512_attention_tiled, a);
        return;
    }
    /* Chunks hold whole GQA groups where possible, so the fast kernel shares K/V loads. */
    cpu_threadpool_run(c->ctx->pool, a->n_tokens * a->n_heads, group, c->fast ? cpu_avx512_attention : cpu_ref_attention,
                       a);
}

/* A batched step's tokens come as runs, one per sequence (abi/exo_plugin.h, "Pooled KV caches").
 * When every run is one token (batched decode) the per-row kernel takes them all in one job,
 * each row reading its own slot; otherwise each run of a slot goes to the kernels on its own,
 * so the tiled prefill kernel always sees one sequence's cache. */
static void run_attention(exo_compiled *c, const cpu_attention_args *a) {
    if (!a->slots) {
        cpu_attention_args one = *a;
        run_attention_run(c, &one);
        return;
    }
    bool decode = true;
    for (int64_t t = 1; decode && t < a->n_tokens; t++) decode = a->slots[t] != a->slots[t - 1];
    if (decode) {
        cpu_attention_args all = *a;
        cpu_threadpool_run(c->ctx->pool, all.n_tokens * all.n_heads, all.n_heads / all.n_kv_heads,
                           c->fast ? cpu_avx512_attention : cpu_ref_attention, &all);
        return;
    }
    int64_t q_row = a->n_heads * a->head_dim;
    for (int64_t t0 = 0; t0 < a->n_tokens;) {
        int64_t t1 = t0 + 1;
        while (t1 < a->n_tokens && a->slots[t1] == a->slots[t0]) t1++;
        cpu_attention_args run = *a;
        run.q = a->q + t0 * q_row;
        run.dst = a->dst + t0 * q_row;
        run.pos = a->pos + t0;
        size_t slot_bytes = (size_t)a->slot_elems * exo_dtype_size(a->kv_dtype);
        run.k = (const uint8_t *)a->k + (size_t)a->slots[t0] * slot_bytes;
        run.v = (const uint8_t *)a->v + (size_t)a->slots[t0] * slot_bytes;
        run.slots = NULL;
        run.n_tokens = t1 - t0;
        run_attention_run(c, &run);
        t0 = t1;
    }
}

static exo_status run_node(const exec_node *e) {
    exo_compiled *c = e->c;
    const exo_node *nd = e->node;
    cpu_threadpool *pool = c->ctx->pool;
    float *dst = c->data[nd->dst];
    int64_t ne[EXO_MAX_DIMS];
    switch (nd->op) {
    case EXO_OP_GET_ROWS: {
        int64_t count = src_shape(e, 0, ne), tokens = src_shape(e, 1, NULL);
        exo_status st = check_indices(e, 1, tokens, count / ne[0], "token id");
        if (st != EXO_OK) return st;
        cpu_get_rows_args a = {src_data(e, 0), c->tensors[nd->src[0]].dtype, ne[0], src_data(e, 1),
                               nd->f[EXO_GET_ROWS_F_SCALE], dst, quant_of(c, nd->src[0])};
        cpu_threadpool_run(pool, tokens, 1, cpu_ref_get_rows, &a);
        return EXO_OK;
    }
    case EXO_OP_RMS_NORM: {
        int64_t count = src_shape(e, 0, ne);
        cpu_rms_norm_args a = {src_data(e, 0), src_data(e, 1), c->tensors[nd->src[1]].dtype, ne[0],
                               nd->f[EXO_RMS_NORM_F_EPS], nd->i[EXO_RMS_NORM_I_ADD_ONE], dst};
        cpu_threadpool_run(pool, count / ne[0], 1, c->fast ? cpu_avx512_rms_norm : cpu_ref_rms_norm, &a);
        return EXO_OK;
    }
    case EXO_OP_MATMUL: {
        cpu_matmul_args a;
        matmul_args(e, &a);
        if (cpu_onednn_takes(c->onednn, e->index, a.m)) {
            cpu_onednn_load_x(c->onednn, pool, a.x, a.m, a.k);
            return cpu_onednn_matmul(c->onednn, e->index, a.m, a.bias, a.dst);
        }
        if (!c->fast)
            cpu_threadpool_run(pool, a.n, 1, cpu_ref_matmul, &a);
        else if (a.m > CPU_DECODE_MAX_TOKENS)
            cpu_threadpool_run(pool, a.n, CPU_GEMM_GRAIN, prefill_prepare(c, &a, 1), &a);
        else
            cpu_threadpool_run(pool, a.n, CPU_MATMUL_BLOCK, c->gemv, &a);
        return EXO_OK;
    }
    case EXO_OP_ADD:
    case EXO_OP_MUL: {
        int64_t count = src_shape(e, 0, NULL);
        cpu_binary_args a = {src_data(e, 0), src_data(e, 1), c->tensors[nd->src[1]].dtype, src_shape(e, 1, NULL), dst};
        cpu_kernel_fn fn = nd->op == EXO_OP_ADD ? (c->fast ? cpu_avx512_add : cpu_ref_add)
                                                : (c->fast ? cpu_avx512_mul : cpu_ref_mul);
        cpu_threadpool_run(pool, count, CPU_ELTWISE_GRAIN, fn, &a);
        return EXO_OK;
    }
    case EXO_OP_GLU: {
        cpu_glu_args a = {src_data(e, 0), src_data(e, 1), nd->i[EXO_GLU_I_ACT], dst, nd->f[EXO_GLU_F_ALPHA],
                          nd->f[EXO_GLU_F_LIMIT]};
        cpu_threadpool_run(pool, src_shape(e, 0, NULL), c->fast ? CPU_ELTWISE_GRAIN : 1024,
                           c->fast ? cpu_avx512_glu : cpu_ref_glu, &a);
        return EXO_OK;
    }
    case EXO_OP_ROPE: {
        int64_t count = src_shape(e, 0, ne), tokens = src_shape(e, 1, NULL);
        cpu_rope_args a = {src_data(e, 0), src_data(e, 1), src_data(e, 2), ne[0], count / (ne[0] * tokens),
                           nd->i[EXO_ROPE_I_N_ROT], nd->i[EXO_ROPE_I_MODE], nd->f[EXO_ROPE_F_ATTN_FACTOR],
                           dst};
        cpu_threadpool_run(pool, tokens, 1, c->fast ? cpu_avx512_rope : cpu_ref_rope, &a);
        return EXO_OK;
    }
    case EXO_OP_KV_WRITE: {
        int64_t tokens = src_shape(e, 1, NULL), slot_elems = 0;
        const int32_t *slots = NULL;
        int64_t rows = cache_geometry(e, nd->dst, 2, &slots, &slot_elems);
        exo_status st = check_indices(e, 1, tokens, rows, "position");
        if (st == EXO_OK && slots) st = check_indices(e, 2, tokens, outer_dim(e, nd->dst), "slot");
        if (st != EXO_OK) return st;
        cpu_kv_write_args a = {src_data(e, 0), src_data(e, 1), src_shape(e, 0, NULL) / tokens, dst, slots, slot_elems,
                               c->tensors[nd->dst].dtype};
        cpu_threadpool_run(pool, tokens, 1, c->fast ? cpu_avx512_kv_write : cpu_ref_kv_write, &a);
        return EXO_OK;
    }
    case EXO_OP_ATTENTION: {
        int64_t tokens = src_shape(e, 3, NULL), slot_elems = 0;
        const int32_t *slots = NULL;
        int64_t rows = cache_geometry(e, nd->src[1], nd->n_src - 1, &slots, &slot_elems);
        exo_status st = check_indices(e, 3, tokens, rows, "position");
        if (st == EXO_OK && slots) st = check_indices(e, nd->n_src - 1, tokens, outer_dim(e, nd->src[1]), "slot");
        if (st != EXO_OK) return st;
        int32_t heads = nd->i[EXO_ATTENTION_I_N_HEADS], kv_heads = nd->i[EXO_ATTENTION_I_N_KV_HEADS];
        bool sinks = nd->n_src == (slots ? 6u : 5u);
        cpu_attention_args a = {src_data(e, 0), src_data(e, 1), src_data(e, 2), src_data(e, 3), heads, kv_heads,
                                nd->i[EXO_ATTENTION_I_HEAD_DIM], nd->i[EXO_ATTENTION_I_WINDOW],
                                nd->f[EXO_ATTENTION_F_SCALE], nd->f[EXO_ATTENTION_F_SOFTCAP], dst, c->workspace,
                                c->workspace_stride, tokens, sinks ? src_data(e, 4) : NULL, slots, slot_elems,
                                c->tensors[nd->src[1]].dtype};
        run_attention(c, &a);
        return EXO_OK;
    }
    case EXO_OP_SOFTCAP: {
        cpu_softcap_args a = {src_data(e, 0), nd->f[EXO_SOFTCAP_F_CAP], dst};
        cpu_threadpool_run(pool, src_shape(e, 0, NULL), 1024, cpu_ref_softcap, &a);
        return EXO_OK;
    }
    case EXO_OP_ARGMAX: {
        int64_t count = src_shape(e, 0, ne);
        cpu_argmax_args a = {src_data(e, 0), ne[0], (int32_t *)c->data[nd->dst]};
        cpu_threadpool_run(pool, count / ne[0], 1, cpu_ref_argmax, &a);
        return EXO_OK;
    }
    case EXO_OP_COPY: {
        const exo_tensor *s = &c->tensors[nd->src[0]], *d = &c->tensors[nd->dst];
        cpu_copy_args a = {src_data(e, 0), s->dtype, d->dtype, dst};
        int64_t items = s->dtype == d->dtype ? (int64_t)graph_tensor_bytes(s, e->n_tokens) : src_shape(e, 0, NULL);
        cpu_threadpool_run(pool, items, 16384, cpu_ref_copy, &a);
        return EXO_OK;
    }
    case EXO_OP_MOE_TOPK:
    case EXO_OP_MOE_WEIGHTS: {
        int64_t tokens = src_shape(e, 0, ne), experts = ne[0];
        bool topk = nd->op == EXO_OP_MOE_TOPK;
        int64_t k = topk ? nd->i[EXO_MOE_TOPK_I_K] : c->tensors[nd->src[1]].ne[0];
        tokens /= experts;
        if (!topk) {
            exo_status st = check_indices(e, 1, tokens * k, experts, "expert id");
            if (st != EXO_OK) return st;
        }
        cpu_moe_route_args a = {src_data(e, 0), experts, k, topk ? (int32_t *)c->data[nd->dst] : src_data(e, 1),
                                topk ? NULL : dst, nd->i[EXO_MOE_WEIGHTS_I_NORMALIZE], nd->f[EXO_MOE_WEIGHTS_F_SCALE],
                                nd->i[topk ? EXO_MOE_TOPK_I_RULE : EXO_MOE_WEIGHTS_I_RULE],
                                topk && nd->n_src > 1 ? src_data(e, 1) : NULL};
        cpu_threadpool_run(pool, tokens, 8, topk ? cpu_ref_moe_topk : cpu_ref_moe_weights, &a);
        return EXO_OK;
    }
    case EXO_OP_MOE_MATMUL: return run_moe_matmul(e);
    case EXO_OP_MOE_COMBINE: {
        int64_t wne[EXO_MAX_DIMS];
        int64_t slots = src_shape(e, 1, wne), k = wne[0];
        cpu_moe_combine_args a = {src_data(e, 0), src_data(e, 1), k, src_shape(e, 0, NULL) / slots, dst};
        cpu_threadpool_run(pool, slots / k, 8, cpu_ref_moe_combine, &a);
        return EXO_OK;
    }
    default:
        return cpu_error(c->ctx, EXO_ERR_INTERNAL, "cpu_amx graph_execute: node %u has unknown op %d", e->index, (int)nd->op);
    }
}

exo_status cpu_graph_execute(exo_compiled *c, const exo_exec_args *args) {
    if (!c) return EXO_ERR_INVALID_ARG;
    exo_status st = bind_tensors(c, args);
    for (uint32_t i = 0; st == EXO_OK && i < c->n_nodes; i++) {
        if (c->group[i] > 1) {
            st = run_matmul_group(c, i, c->group[i], args->n_tokens);
            i += c->group[i] - 1u;
            continue;
        }
        exec_node e = {c, i, &c->nodes[i], args->n_tokens};
        st = run_node(&e);
    }
    return st;
}
