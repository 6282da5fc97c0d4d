/* Graph validation for the GPU plugins (see gpu_check.h). The IR contract is the same as the CPU
 * plugin's (plugins/cpu_amx/graph_check.c, from which this file was derived); what differs is what
 * the GPU kernels implement (no Q8_0 yet, head_dim <= 512, 32-bit element indexing) and that weight
 * buffers are the backend's device memory. A bad graph must produce a message that names the
 * node, its op and the tensor at fault, never a fault in a kernel. */
#include "gpu_check.h"

#include <stdbool.h>
#include <stdint.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPU_Q8_0_BLOCK 32
#define GPU_Q8_0_BYTES 34
#define KNOWN_FLAGS (EXO_TENSOR_INPUT | EXO_TENSOR_OUTPUT | EXO_TENSOR_WEIGHT | EXO_TENSOR_KV)
#define MAX_DIM_EXTENT ((int64_t)1 << 40)
#define MAX_TENSOR_BYTES ((uint64_t)1 << 48)

const char *gpu_op_name(exo_op op) {
    static const char *names[EXO_OP_COUNT] = {"GET_ROWS", "RMS_NORM", "MATMUL",    "ADD",     "MUL",  "GLU",
                                              "ROPE",     "KV_WRITE", "ATTENTION", "SOFTCAP", "COPY"};
    return op >= 0 && op < EXO_OP_COUNT ? names[op] : "UNKNOWN";
}

const char *gpu_dtype_name(exo_dtype dtype) {
    static const char *names[EXO_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "Q8_0"};
    return dtype >= 0 && dtype < EXO_DTYPE_COUNT ? names[dtype] : "UNKNOWN";
}

uint32_t gpu_dtype_size(exo_dtype dtype) {
    switch (dtype) {
    case EXO_DTYPE_F32:
    case EXO_DTYPE_I32: return 4;
    case EXO_DTYPE_F16:
    case EXO_DTYPE_BF16: return 2;
    default: return 0;
    }
}

int64_t gpu_resolve_shape(const exo_tensor *t, uint32_t n_tokens, int64_t ne[EXO_MAX_DIMS]) {
    int64_t n = 1;
    for (uint32_t d = 0; d < EXO_MAX_DIMS; d++) {
        ne[d] = d < t->n_dims ? (t->ne[d] == EXO_DIM_TOKENS ? (int64_t)n_tokens : t->ne[d]) : 1;
        n *= ne[d];
    }
    return n;
}

uint64_t gpu_tensor_bytes(const exo_tensor *t, uint32_t n_tokens) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t n = gpu_resolve_shape(t, n_tokens, ne);
    if (t->dtype == EXO_DTYPE_Q8_0) return (uint64_t)(n / GPU_Q8_0_BLOCK) * GPU_Q8_0_BYTES;
    return (uint64_t)n * gpu_dtype_size(t->dtype);
}

/* ---------------------------------------------------------------- tensor table */

static exo_status tensor_fail(const gpu_backend *ctx, const exo_tensor *t, uint32_t index, exo_status st,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static exo_status tensor_fail(const gpu_backend *ctx, const exo_tensor *t, uint32_t index, exo_status st,
                              const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gpu_fail(ctx, st, "graph: tensor %u '%.*s': %s", index, GPU_NAME_ARG(t), msg);
}

static exo_status check_tensor(const gpu_backend *ctx, const exo_graph *g, uint32_t i) {
    const exo_tensor *t = &g->tensors[i];
    if (t->id != i) return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "id %u differs from its table index", t->id);
    if (t->dtype < 0 || t->dtype >= EXO_DTYPE_COUNT)
        return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "unknown dtype %d", (int)t->dtype);
    if (t->flags & ~KNOWN_FLAGS)
        return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "unknown flag bits 0x%x", t->flags & ~KNOWN_FLAGS);
    if (t->flags && (t->flags & (t->flags - 1)))
        return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "has several roles (flags 0x%x); at most one allowed",
                           t->flags);
    if (t->n_dims < 1 || t->n_dims > EXO_MAX_DIMS)
        return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "n_dims %u is outside 1..%d", t->n_dims, EXO_MAX_DIMS);
    for (uint32_t d = 0; d < EXO_MAX_DIMS; d++)
        if (t->nb[d] != 0)
            return tensor_fail(ctx, t, i, EXO_ERR_UNSUPPORTED, "strided views (nb[%u] = %lld) are not supported", d,
                               (long long)t->nb[d]);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == EXO_DIM_TOKENS) {
            if (t->flags & EXO_TENSOR_WEIGHT)
                return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "a weight cannot have a token dimension (ne[%u])", d);
            continue;
        }
        if (t->ne[d] < 1 || t->ne[d] > MAX_DIM_EXTENT)
            return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "ne[%u] = %lld is not a valid extent", d,
                               (long long)t->ne[d]);
    }
    int64_t ne[EXO_MAX_DIMS];
    gpu_resolve_shape(t, g->max_tokens, ne);
    uint64_t n = 1;
    for (uint32_t d = 0; d < EXO_MAX_DIMS; d++) {
        if (n > MAX_TENSOR_BYTES / (uint64_t)ne[d])
            return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "shape is absurdly large");
        n *= (uint64_t)ne[d];
    }
    if (n > MAX_TENSOR_BYTES / 4) return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "shape is absurdly large");
    if (n > UINT32_MAX)
        return tensor_fail(ctx, t, i, EXO_ERR_UNSUPPORTED, "has %llu elements; GPU kernels index at most 2^32",
                           (unsigned long long)n);
    if (t->dtype == EXO_DTYPE_Q8_0 && ne[0] % GPU_Q8_0_BLOCK != 0)
        return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "Q8_0 needs ne[0] (%lld) to be a multiple of 32",
                           (long long)ne[0]);
    if (t->flags & EXO_TENSOR_WEIGHT) {
        if (t->buffer < 0 || (uint32_t)t->buffer >= g->n_buffers)
            return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "weight buffer index %d is outside 0..%u", t->buffer,
                               g->n_buffers);
        exo_buffer *b = g->buffers ? g->buffers[t->buffer] : NULL;
        if (!b) return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "weight buffer %d is NULL", t->buffer);
        uint64_t size = 0;
        if (!ctx->buffer_mem(ctx->ctx, b, &size))
            return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "weight buffer %d was not allocated by this plugin",
                               t->buffer);
        uint64_t bytes = gpu_tensor_bytes(t, g->max_tokens);
        if (t->offset > size || bytes > size - t->offset)
            return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG,
                               "bytes [%llu, %llu) lie outside weight buffer %d of %llu bytes",
                               (unsigned long long)t->offset, (unsigned long long)(t->offset + bytes), t->buffer,
                               (unsigned long long)size);
        uint32_t align = t->dtype == EXO_DTYPE_Q8_0 ? 2 : gpu_dtype_size(t->dtype);
        if (t->offset % align != 0)
            return tensor_fail(ctx, t, i, EXO_ERR_INVALID_ARG, "offset %llu is not aligned to its %u-byte elements",
                               (unsigned long long)t->offset, align);
        /* Kernels address weights with 32-bit element offsets (kernels/common.cl). */
        if ((t->offset + bytes) / align > UINT32_MAX)
            return tensor_fail(ctx, t, i, EXO_ERR_UNSUPPORTED,
                               "ends at element %llu of its buffer; GPU kernels address at most 2^32 elements",
                               (unsigned long long)((t->offset + bytes) / align));
    }
    return EXO_OK;
}

/* Every intermediate and OUTPUT tensor must be written before it is read, and written once
 * (KV tensors persist across executions, so they may be read first and written many times). */
static exo_status check_order(const gpu_backend *ctx, const exo_graph *g, uint32_t *bad_node) {
    uint8_t *written = calloc(g->n_tensors ? g->n_tensors : 1, 1);
    if (!written) return gpu_fail(ctx, EXO_ERR_NO_MEMORY, "graph: out of memory");
    exo_status st = EXO_OK;
    for (uint32_t i = 0; i < g->n_nodes && st == EXO_OK; i++) {
        const exo_node *nd = &g->nodes[i];
        for (uint32_t s = 0; s < nd->n_src && st == EXO_OK; s++) {
            const exo_tensor *t = &g->tensors[nd->src[s]];
            bool produced = !(t->flags & (EXO_TENSOR_INPUT | EXO_TENSOR_WEIGHT | EXO_TENSOR_KV));
            if (produced && !written[t->id]) {
                *bad_node = i;
                st = gpu_fail(ctx, EXO_ERR_INVALID_ARG,
                               "graph: node %u (%s): source %u '%.*s' is read before any node writes it", i,
                               gpu_op_name(nd->op), s, GPU_NAME_ARG(t));
            }
        }
        if (st != EXO_OK) break;
        const exo_tensor *d = &g->tensors[nd->dst];
        if (written[d->id] && !(d->flags & EXO_TENSOR_KV)) {
            *bad_node = i;
            st = gpu_fail(ctx, EXO_ERR_INVALID_ARG,
                           "graph: node %u (%s): tensor '%.*s' is written by an earlier node too", i,
                           gpu_op_name(nd->op), GPU_NAME_ARG(d));
        }
        written[d->id] = 1;
    }
    free(written);
    return st;
}

exo_status gpu_check_graph_structure(const gpu_backend *ctx, const exo_graph *g, uint32_t *bad_node) {
    *bad_node = UINT32_MAX;
    if (!g) return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: graph is NULL");
    if (g->hdr.size < sizeof(exo_graph) || EXO_VERSION_MAJOR(g->hdr.version) != EXO_ABI_MAJOR)
        return gpu_fail(ctx, EXO_ERR_ABI_MISMATCH, "graph: header size %u / version 0x%x not understood",
                         g->hdr.size, g->hdr.version);
    if (g->n_tensors == 0 || !g->tensors) return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: no tensors");
    if (g->n_nodes == 0 || !g->nodes) return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: no nodes");
    if (g->n_buffers && !g->buffers)
        return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: %u buffers but the table is NULL", g->n_buffers);
    if (g->max_tokens == 0) return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: max_tokens is 0");
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        exo_status st = check_tensor(ctx, g, i);
        if (st != EXO_OK) return st;
    }
    /* Operand ids first, so the order check and later passes index safely. */
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const exo_node *nd = &g->nodes[i];
        if (nd->op < 0 || nd->op >= EXO_OP_COUNT) {
            *bad_node = i;
            return gpu_fail(ctx, EXO_ERR_UNSUPPORTED, "graph: node %u: unknown op %d", i, (int)nd->op);
        }
        if (nd->n_src > EXO_MAX_SRC) {
            *bad_node = i;
            return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: node %u (%s): n_src %u exceeds %d", i,
                             gpu_op_name(nd->op), nd->n_src, EXO_MAX_SRC);
        }
        if (nd->dst >= g->n_tensors) {
            *bad_node = i;
            return gpu_fail(ctx, EXO_ERR_INVALID_ARG, "graph: node %u (%s): dst tensor id %u is out of range (%u tensors)",
                             i, gpu_op_name(nd->op), nd->dst, g->n_tensors);
        }
        for (uint32_t s = 0; s < nd->n_src; s++)
            if (nd->src[s] >= g->n_tensors) {
                *bad_node = i;
                return gpu_fail(ctx, EXO_ERR_INVALID_ARG,
                                 "graph: node %u (%s): source %u tensor id %u is out of range (%u tensors)", i,
                                 gpu_op_name(nd->op), s, nd->src[s], g->n_tensors);
            }
    }
    return check_order(ctx, g, bad_node);
}

/* ---------------------------------------------------------------- node contracts */

typedef struct node_ctx {
    const gpu_backend *ctx;
    const exo_graph *g;
    uint32_t index;
    const exo_node *node;
    uint32_t n_tokens;
} node_ctx;

static exo_status node_fail(const node_ctx *n, exo_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static exo_status node_fail(const node_ctx *n, exo_status st, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const exo_tensor *d = &n->g->tensors[n->node->dst];
    return gpu_fail(n->ctx, st, "graph: node %u (%s -> '%.*s'), %u tokens: %s", n->index,
                     gpu_op_name(n->node->op), GPU_NAME_ARG(d), n->n_tokens, msg);
}

static const exo_tensor *src_tensor(const node_ctx *n, uint32_t s) { return &n->g->tensors[n->node->src[s]]; }

static int64_t nelem(const node_ctx *n, const exo_tensor *t, int64_t ne[EXO_MAX_DIMS]) {
    int64_t tmp[EXO_MAX_DIMS];
    return gpu_resolve_shape(t, n->n_tokens, ne ? ne : tmp);
}

/* Fails unless tensor `t` (described as `role`) has one of the dtypes in `mask` (bits 1 << dtype). */
static exo_status want_dtype(const node_ctx *n, const exo_tensor *t, const char *role, uint32_t mask) {
    if (mask & (1u << t->dtype)) return EXO_OK;
    char allowed[64] = "";
    for (int d = 0; d < EXO_DTYPE_COUNT; d++)
        if (mask & (1u << d)) {
            if (allowed[0]) strncat(allowed, "/", sizeof allowed - strlen(allowed) - 1);
            strncat(allowed, gpu_dtype_name(d), sizeof allowed - strlen(allowed) - 1);
        }
    return node_fail(n, EXO_ERR_UNSUPPORTED, "%s '%.*s' has dtype %s; supported: %s", role, GPU_NAME_ARG(t),
                     gpu_dtype_name(t->dtype), allowed);
}

static exo_status want_count(const node_ctx *n, const exo_tensor *t, const char *role, int64_t expected,
                             const char *why) {
    int64_t got = nelem(n, t, NULL);
    if (got == expected) return EXO_OK;
    return node_fail(n, EXO_ERR_INVALID_ARG, "%s '%.*s' has %lld elements; expected %lld (%s)", role, GPU_NAME_ARG(t),
                     (long long)got, (long long)expected, why);
}

#define M(d) (1u << EXO_DTYPE_##d)
#define FLOATS (M(F32) | M(F16) | M(BF16))
#define TRY(expr)                                   \
    do {                                            \
        exo_status st_ = (expr);                    \
        if (st_ != EXO_OK) return st_;              \
    } while (0)

static exo_status check_get_rows(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *table = src_tensor(n, 0), *ids = src_tensor(n, 1);
    TRY(want_dtype(n, table, "table", FLOATS));
    TRY(want_dtype(n, ids, "ids", M(I32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    nelem(n, table, ne);
    TRY(want_count(n, dst, "dst", nelem(n, ids, NULL) * ne[0], "tokens x table width"));
    if (!isfinite(n->node->f[0])) return node_fail(n, EXO_ERR_INVALID_ARG, "scale f[0] is not finite");
    return EXO_OK;
}

static exo_status check_rms_norm(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0), *w = src_tensor(n, 1);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, w, "weight", FLOATS));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, x, ne);
    TRY(want_count(n, w, "weight", ne[0], "x's ne[0]"));
    TRY(want_count(n, dst, "dst", count, "same as x"));
    if (!(n->node->f[0] >= 0.0f) || !isfinite(n->node->f[0]))
        return node_fail(n, EXO_ERR_INVALID_ARG, "eps f[0] = %g must be finite and >= 0", (double)n->node->f[0]);
    if (n->node->i[0] != 0 && n->node->i[0] != 1)
        return node_fail(n, EXO_ERR_INVALID_ARG, "i[0] = %d must be 0 (w) or 1 (1 + w)", n->node->i[0]);
    return EXO_OK;
}

static exo_status check_matmul(const node_ctx *n, const exo_tensor *dst) {
    if (n->node->n_src != 2 && n->node->n_src != 3)
        return node_fail(n, EXO_ERR_INVALID_ARG, "needs 2 or 3 sources (x, W[, bias]), has %u", n->node->n_src);
    const exo_tensor *x = src_tensor(n, 0), *w = src_tensor(n, 1);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, w, "weight", FLOATS));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t wne[EXO_MAX_DIMS], xne[EXO_MAX_DIMS];
    int64_t w_count = nelem(n, w, wne), x_count = nelem(n, x, xne);
    int64_t k = wne[0], cols = w_count / k;
    if (xne[0] != k)
        return node_fail(n, EXO_ERR_INVALID_ARG, "x '%.*s' has ne[0] = %lld but weight '%.*s' has K = %lld",
                         GPU_NAME_ARG(x), (long long)xne[0], GPU_NAME_ARG(w), (long long)k);
    TRY(want_count(n, dst, "dst", x_count / k * cols, "rows of x x weight rows"));
    if (n->node->n_src == 3) {
        const exo_tensor *bias = src_tensor(n, 2);
        TRY(want_dtype(n, bias, "bias", M(F32)));
        TRY(want_count(n, bias, "bias", cols, "one per weight row"));
    }
    return EXO_OK;
}

static exo_status check_binary(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *a = src_tensor(n, 0), *b = src_tensor(n, 1);
    TRY(want_dtype(n, a, "a", M(F32)));
    TRY(want_dtype(n, b, "b", FLOATS));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, a, ne), b_count = nelem(n, b, NULL);
    if (b_count != count && b_count != ne[0])
        return node_fail(n, EXO_ERR_INVALID_ARG, "b '%.*s' has %lld elements; expected %lld (same as a) or %lld (one row)",
                         GPU_NAME_ARG(b), (long long)b_count, (long long)count, (long long)ne[0]);
    return want_count(n, dst, "dst", count, "same as a");
}

static exo_status check_glu(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *gate = src_tensor(n, 0), *up = src_tensor(n, 1);
    TRY(want_dtype(n, gate, "gate", M(F32)));
    TRY(want_dtype(n, up, "up", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t count = nelem(n, gate, NULL);
    TRY(want_count(n, up, "up", count, "same as gate"));
    TRY(want_count(n, dst, "dst", count, "same as gate"));
    if (n->node->i[0] != EXO_ACT_SILU && n->node->i[0] != EXO_ACT_GELU_TANH)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "unknown activation i[0] = %d", n->node->i[0]);
    return EXO_OK;
}

static exo_status check_rope(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0), *pos = src_tensor(n, 1), *freq = src_tensor(n, 2);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, pos, "positions", M(I32)));
    TRY(want_dtype(n, freq, "inv_freq", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, x, ne), tokens = nelem(n, pos, NULL), head_dim = ne[0];
    if (count % (head_dim * tokens) != 0)
        return node_fail(n, EXO_ERR_INVALID_ARG, "x '%.*s' (%lld elements) is not [%lld tokens][heads][%lld]",
                         GPU_NAME_ARG(x), (long long)count, (long long)tokens, (long long)head_dim);
    int32_t mode = n->node->i[0], n_rot = n->node->i[1];
    if (mode != EXO_ROPE_NORMAL && mode != EXO_ROPE_NEOX)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "unknown rope mode i[0] = %d", mode);
    if (n_rot < 2 || n_rot % 2 != 0 || n_rot > head_dim)
        return node_fail(n, EXO_ERR_INVALID_ARG, "n_rot i[1] = %d must be even and in 2..head_dim (%lld)", n_rot,
                         (long long)head_dim);
    TRY(want_count(n, freq, "inv_freq", n_rot / 2, "n_rot / 2"));
    TRY(want_count(n, dst, "dst", count, "same as x"));
    if (!isfinite(n->node->f[0])) return node_fail(n, EXO_ERR_INVALID_ARG, "attention factor f[0] is not finite");
    return EXO_OK;
}

/* A cache is [ctx][row]: its outermost dim is the context length. */
static int64_t cache_rows(const node_ctx *n, const exo_tensor *t, int64_t *row_size) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, t, ne);
    int64_t rows = ne[t->n_dims - 1];
    *row_size = count / rows;
    return rows;
}

static exo_status check_kv_write(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *src = src_tensor(n, 0), *pos = src_tensor(n, 1);
    if (!(dst->flags & EXO_TENSOR_KV))
        return node_fail(n, EXO_ERR_INVALID_ARG, "dst '%.*s' is not a KV tensor", GPU_NAME_ARG(dst));
    TRY(want_dtype(n, dst, "cache", M(F32)));
    TRY(want_dtype(n, src, "src", M(F32)));
    TRY(want_dtype(n, pos, "positions", M(I32)));
    int64_t row;
    cache_rows(n, dst, &row);
    return want_count(n, src, "src", nelem(n, pos, NULL) * row, "tokens x cache row");
}

static exo_status check_attention(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *q = src_tensor(n, 0), *k = src_tensor(n, 1), *v = src_tensor(n, 2), *pos = src_tensor(n, 3);
    TRY(want_dtype(n, q, "q", M(F32)));
    TRY(want_dtype(n, k, "k cache", M(F32)));
    TRY(want_dtype(n, v, "v cache", M(F32)));
    TRY(want_dtype(n, pos, "positions", M(I32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    const int32_t *p = n->node->i;
    if (p[0] < 1 || p[1] < 1 || p[2] < 1 || p[0] % p[1] != 0)
        return node_fail(n, EXO_ERR_INVALID_ARG,
                         "n_heads i[0] = %d, n_kv_heads i[1] = %d, head_dim i[2] = %d: all must be >= 1 and n_kv_heads "
                         "must divide n_heads",
                         p[0], p[1], p[2]);
    if (p[2] > GPU_MAX_HEAD_DIM)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "head_dim i[2] = %d exceeds the GPU kernels' %d", p[2], GPU_MAX_HEAD_DIM);
    if (p[3] < 0) return node_fail(n, EXO_ERR_INVALID_ARG, "window i[3] = %d is negative", p[3]);
    float scale = n->node->f[0], cap = n->node->f[1];
    if (!isfinite(scale)) return node_fail(n, EXO_ERR_INVALID_ARG, "scale f[0] is not finite");
    if (!isfinite(cap) || cap < 0) return node_fail(n, EXO_ERR_INVALID_ARG, "softcap f[1] = %g must be finite and >= 0", (double)cap);
    int64_t tokens = nelem(n, pos, NULL), q_row = (int64_t)p[0] * p[2], kv_row = (int64_t)p[1] * p[2];
    TRY(want_count(n, q, "q", tokens * q_row, "tokens x n_heads x head_dim"));
    TRY(want_count(n, dst, "dst", tokens * q_row, "tokens x n_heads x head_dim"));
    int64_t k_row, v_row;
    int64_t k_rows = cache_rows(n, k, &k_row), v_rows = cache_rows(n, v, &v_row);
    if (k_row != kv_row || v_row != kv_row || k_rows != v_rows)
        return node_fail(n, EXO_ERR_INVALID_ARG,
                         "k '%.*s' is [%lld][%lld] and v '%.*s' is [%lld][%lld]; both must be [ctx][n_kv_heads x "
                         "head_dim = %lld]",
                         GPU_NAME_ARG(k), (long long)k_rows, (long long)k_row, GPU_NAME_ARG(v), (long long)v_rows,
                         (long long)v_row, (long long)kv_row);
    return EXO_OK;
}

static exo_status check_softcap(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    if (!(n->node->f[0] > 0) || !isfinite(n->node->f[0]))
        return node_fail(n, EXO_ERR_INVALID_ARG, "cap f[0] = %g must be finite and > 0", (double)n->node->f[0]);
    return want_count(n, dst, "dst", nelem(n, x, NULL), "same as x");
}

static exo_status check_copy(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0);
    if (x->dtype == dst->dtype) TRY(want_dtype(n, x, "src", FLOATS | M(I32)));
    if (x->dtype != dst->dtype) {
        TRY(want_dtype(n, x, "src (converting copy)", FLOATS));
        TRY(want_dtype(n, dst, "dst (converting copy)", M(F32)));
    }
    return want_count(n, dst, "dst", nelem(n, x, NULL), "same as src");
}

exo_status gpu_check_node(const gpu_backend *ctx, const exo_graph *g, uint32_t index, uint32_t n_tokens) {
    node_ctx n = {ctx, g, index, &g->nodes[index], n_tokens};
    static const uint32_t n_src[EXO_OP_COUNT] = {2, 2, 2, 2, 2, 2, 3, 2, 4, 1, 1};
    const exo_node *nd = n.node;
    const exo_tensor *dst = &g->tensors[nd->dst];
    if (nd->op != EXO_OP_MATMUL && nd->n_src != n_src[nd->op])
        return node_fail(&n, EXO_ERR_INVALID_ARG, "needs %u sources, has %u", n_src[nd->op], nd->n_src);
    if (dst->flags & (EXO_TENSOR_INPUT | EXO_TENSOR_WEIGHT))
        return node_fail(&n, EXO_ERR_INVALID_ARG, "dst is an %s tensor, which nodes cannot write",
                         dst->flags & EXO_TENSOR_INPUT ? "INPUT" : "WEIGHT");
    if ((dst->flags & EXO_TENSOR_KV) && nd->op != EXO_OP_KV_WRITE)
        return node_fail(&n, EXO_ERR_INVALID_ARG, "only KV_WRITE may write the KV tensor");
    for (uint32_t s = 0; s < nd->n_src; s++)
        if (nd->src[s] == nd->dst)
            return node_fail(&n, EXO_ERR_INVALID_ARG, "source %u is also the destination", s);
    switch (nd->op) {
    case EXO_OP_GET_ROWS: return check_get_rows(&n, dst);
    case EXO_OP_RMS_NORM: return check_rms_norm(&n, dst);
    case EXO_OP_MATMUL: return check_matmul(&n, dst);
    case EXO_OP_ADD:
    case EXO_OP_MUL: return check_binary(&n, dst);
    case EXO_OP_GLU: return check_glu(&n, dst);
    case EXO_OP_ROPE: return check_rope(&n, dst);
    case EXO_OP_KV_WRITE: return check_kv_write(&n, dst);
    case EXO_OP_ATTENTION: return check_attention(&n, dst);
    case EXO_OP_SOFTCAP: return check_softcap(&n, dst);
    case EXO_OP_COPY: return check_copy(&n, dst);
    default: return node_fail(&n, EXO_ERR_UNSUPPORTED, "unknown op");
    }
}

exo_status gpu_fail(const gpu_backend *be, exo_status status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return be->host->set_error(be->host->host_ctx, status, 0, "%s %s", be->name, msg);
}
