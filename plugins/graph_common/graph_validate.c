/* graph_validate.c — the header, the tensor table and the node order (see graph_validate.h);
 * each node's op contract is graph_node_rules.c. */
#include "graph_validate.h"

#include "graph_ir.h"
#include "graph_node_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define KNOWN_FLAGS (EXO_TENSOR_INPUT | EXO_TENSOR_OUTPUT | EXO_TENSOR_WEIGHT | EXO_TENSOR_KV)
#define MAX_DIM_EXTENT ((int64_t)1 << 40)
#define MAX_TENSOR_BYTES ((uint64_t)1 << 48)

static exo_status tensor_fail(const graph_target *tg, const exo_tensor *t, uint32_t index, exo_status st,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static exo_status tensor_fail(const graph_target *tg, const exo_tensor *t, uint32_t index, exo_status st,
                              const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return graph_fail(tg, st, "graph: tensor %u '%.*s': %s", index, GRAPH_NAME_ARG(t), msg);
}

/* A weight lies inside its buffer, aligned to its elements and within the kernels' reach. */
static exo_status check_weight(const graph_target *tg, const exo_graph *g, const exo_tensor *t, uint32_t i) {
    if (t->buffer < 0 || (uint32_t)t->buffer >= g->n_buffers)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "weight buffer index %d is outside 0..%u", t->buffer,
                           g->n_buffers);
    exo_buffer *b = g->buffers[t->buffer];
    if (!b) return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "weight buffer %d is NULL", t->buffer);
    uint64_t size = 0;
    uintptr_t base = 0;
    if (!tg->buffer_span(tg->user, b, &size, &base))
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "weight buffer %d was not allocated by this plugin",
                           t->buffer);
    uint64_t bytes = graph_tensor_bytes(t, g->max_tokens);
    if (t->offset > size || bytes > size - t->offset)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "bytes [%llu, %llu) lie outside weight buffer %d of %llu bytes",
                           (unsigned long long)t->offset, (unsigned long long)(t->offset + bytes), t->buffer,
                           (unsigned long long)size);
    uint32_t align = graph_dtype_align(t->dtype);
    if ((base + t->offset) % align != 0)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "offset %llu is not aligned to its %u-byte elements",
                           (unsigned long long)t->offset, align);
    /* Kernels address weights by element offset from the buffer's start. */
    if (tg->max_elements && (t->offset + bytes) / align > tg->max_elements)
        return tensor_fail(tg, t, i, EXO_ERR_UNSUPPORTED,
                           "ends at element %llu of its buffer; the kernels address at most %llu elements",
                           (unsigned long long)((t->offset + bytes) / align), (unsigned long long)tg->max_elements);
    return EXO_OK;
}

static exo_status check_tensor(const graph_target *tg, const exo_graph *g, uint32_t i) {
    const exo_tensor *t = exo_graph_tensor(g, i);
    if (t->id != i) return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "id %u differs from its table index", t->id);
    if (t->dtype < 0 || t->dtype >= EXO_DTYPE_COUNT)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "unknown dtype %d", (int)t->dtype);
    if (t->flags & ~KNOWN_FLAGS)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "unknown flag bits 0x%x", t->flags & ~KNOWN_FLAGS);
    if (t->flags && (t->flags & (t->flags - 1)))
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "has several roles (flags 0x%x); at most one allowed",
                           t->flags);
    if (t->n_dims < 1 || t->n_dims > EXO_MAX_DIMS)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "n_dims %u is outside 1..%d", t->n_dims, EXO_MAX_DIMS);
    for (uint32_t d = 0; d < EXO_MAX_DIMS; d++)
        if (t->nb[d] != 0)
            return tensor_fail(tg, t, i, EXO_ERR_UNSUPPORTED, "strided views (nb[%u] = %lld) are not supported", d,
                               (long long)t->nb[d]);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == EXO_DIM_TOKENS) {
            if (t->flags & EXO_TENSOR_WEIGHT)
                return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "a weight cannot have a token dimension (ne[%u])", d);
            continue;
        }
        if (t->ne[d] < 1 || t->ne[d] > MAX_DIM_EXTENT)
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "ne[%u] = %lld is not a valid extent", d,
                               (long long)t->ne[d]);
    }
    int64_t ne[EXO_MAX_DIMS];
    graph_resolve_shape(t, g->max_tokens, ne);
    uint64_t n = 1;
    for (uint32_t d = 0; d < EXO_MAX_DIMS; d++) {
        if (n > MAX_TENSOR_BYTES / (uint64_t)ne[d])
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "shape is absurdly large");
        n *= (uint64_t)ne[d];
    }
    if (n > MAX_TENSOR_BYTES / 4) return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "shape is absurdly large");
    if (tg->max_elements && n > tg->max_elements)
        return tensor_fail(tg, t, i, EXO_ERR_UNSUPPORTED, "has %llu elements; the kernels index at most %llu",
                           (unsigned long long)n, (unsigned long long)tg->max_elements);
    if (t->dtype == EXO_DTYPE_Q8_0 && ne[0] % GRAPH_Q8_0_BLOCK != 0)
        return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "Q8_0 needs ne[0] (%lld) to be a multiple of %d",
                           (long long)ne[0], GRAPH_Q8_0_BLOCK);
    if (t->dtype == EXO_DTYPE_MLX_AFFINE) {
        /* The descriptor first: the weight's byte count depends on q_bits. */
        if (!EXO_ELEMENT_HAS(exo_graph_tensor_stride(g), exo_tensor, q_biases))
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "MLX_AFFINE needs ABI 1.3 tensors (stride %u holds no "
                               "quantization descriptor)", exo_graph_tensor_stride(g));
        if (!(t->flags & EXO_TENSOR_WEIGHT))
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "MLX_AFFINE tensors must be weights");
        uint32_t bits = t->q_bits, group = t->q_group;
        if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
            return tensor_fail(tg, t, i, EXO_ERR_UNSUPPORTED, "MLX_AFFINE q_bits %u is not 2, 3, 4, 5, 6 or 8", bits);
        if (group != 32 && group != 64 && group != 128)
            return tensor_fail(tg, t, i, EXO_ERR_UNSUPPORTED, "MLX_AFFINE q_group %u is not 32, 64 or 128", group);
        if (ne[0] % group != 0)
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "MLX_AFFINE needs ne[0] (%lld) to be a multiple of "
                               "q_group %u", (long long)ne[0], group);
    }
    return t->flags & EXO_TENSOR_WEIGHT ? check_weight(tg, g, t, i) : EXO_OK;
}

/* A quantized weight's scales and biases: two float weights of one dtype and shape
 * [ne[0] / q_group, outer dims...] (after every tensor passed check_tensor). */
static exo_status check_quant(const graph_target *tg, const exo_graph *g, uint32_t i) {
    const exo_tensor *t = exo_graph_tensor(g, i);
    if (t->dtype != EXO_DTYPE_MLX_AFFINE) return EXO_OK;
    uint32_t ids[2] = {t->q_scales, t->q_biases};
    const char *role[2] = {"scales", "biases"};
    for (int k = 0; k < 2; k++) {
        if (ids[k] >= g->n_tensors || ids[k] == i)
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "%s tensor id %u is out of range or itself", role[k],
                               ids[k]);
        const exo_tensor *p = exo_graph_tensor(g, ids[k]);
        if (!(p->flags & EXO_TENSOR_WEIGHT) ||
            (p->dtype != EXO_DTYPE_F32 && p->dtype != EXO_DTYPE_F16 && p->dtype != EXO_DTYPE_BF16))
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "%s '%.*s' must be an F32, F16 or BF16 weight (is %s)",
                               role[k], GRAPH_NAME_ARG(p), exo_dtype_name(p->dtype));
        if (!(tg->dtypes & GRAPH_DTYPE_BIT(p->dtype)))
            return tensor_fail(tg, t, i, EXO_ERR_UNSUPPORTED, "%s '%.*s' has dtype %s, which the kernels do not read",
                               role[k], GRAPH_NAME_ARG(p), exo_dtype_name(p->dtype));
        if (p->dtype != exo_graph_tensor(g, ids[0])->dtype)
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG, "scales and biases differ in dtype");
        bool same = p->n_dims == t->n_dims && p->ne[0] * (int64_t)t->q_group == t->ne[0];
        for (uint32_t d = 1; same && d < t->n_dims; d++) same = p->ne[d] == t->ne[d];
        if (!same)
            return tensor_fail(tg, t, i, EXO_ERR_INVALID_ARG,
                               "%s '%.*s' has ne [%lld, %lld]; expected ne[0] = %lld / %u and the weight's outer dims",
                               role[k], GRAPH_NAME_ARG(p), (long long)p->ne[0], (long long)p->ne[1],
                               (long long)t->ne[0], t->q_group);
    }
    return EXO_OK;
}

/* Operand ids are in range, so the later passes index safely. */
static exo_status check_operands(const graph_target *tg, const exo_graph *g, uint32_t *bad_node) {
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const exo_node *nd = exo_graph_node(g, i);
        *bad_node = i;
        if (nd->op < 0 || nd->op >= EXO_OP_COUNT)
            return graph_fail(tg, EXO_ERR_UNSUPPORTED, "graph: node %u: unknown op %d", i, (int)nd->op);
        if (nd->n_src > EXO_MAX_SRC)
            return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: node %u (%s): n_src %u exceeds %d", i,
                              graph_op_name(nd->op), nd->n_src, EXO_MAX_SRC);
        if (nd->dst >= g->n_tensors)
            return graph_fail(tg, EXO_ERR_INVALID_ARG,
                              "graph: node %u (%s): dst tensor id %u is out of range (%u tensors)", i,
                              graph_op_name(nd->op), nd->dst, g->n_tensors);
        for (uint32_t s = 0; s < nd->n_src; s++)
            if (nd->src[s] >= g->n_tensors)
                return graph_fail(tg, EXO_ERR_INVALID_ARG,
                                  "graph: node %u (%s): source %u tensor id %u is out of range (%u tensors)", i,
                                  graph_op_name(nd->op), s, nd->src[s], g->n_tensors);
    }
    *bad_node = UINT32_MAX;
    return EXO_OK;
}

/* Every intermediate and OUTPUT tensor must be written before it is read, and written once
 * (KV tensors persist across executions, so they may be read first and written many times). */
static exo_status check_order(const graph_target *tg, const exo_graph *g, uint32_t *bad_node) {
    uint8_t *written = calloc(g->n_tensors, 1);
    if (!written) return graph_fail(tg, EXO_ERR_NO_MEMORY, "graph: out of memory");
    exo_status st = EXO_OK;
    for (uint32_t i = 0; i < g->n_nodes && st == EXO_OK; i++) {
        const exo_node *nd = exo_graph_node(g, i);
        for (uint32_t s = 0; s < nd->n_src && st == EXO_OK; s++) {
            const exo_tensor *t = exo_graph_tensor(g, nd->src[s]);
            bool produced = !(t->flags & (EXO_TENSOR_INPUT | EXO_TENSOR_WEIGHT | EXO_TENSOR_KV));
            if (produced && !written[t->id]) {
                *bad_node = i;
                st = graph_fail(tg, EXO_ERR_INVALID_ARG,
                                "graph: node %u (%s): source %u '%.*s' is read before any node writes it", i,
                                graph_op_name(nd->op), s, GRAPH_NAME_ARG(t));
            }
        }
        if (st != EXO_OK) break;
        const exo_tensor *d = exo_graph_tensor(g, nd->dst);
        if (written[d->id] && !(d->flags & EXO_TENSOR_KV)) {
            *bad_node = i;
            st = graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: node %u (%s): tensor '%.*s' is written by an earlier node too",
                            i, graph_op_name(nd->op), GRAPH_NAME_ARG(d));
        }
        written[d->id] = 1;
    }
    free(written);
    return st;
}

static exo_status check_structure(const graph_target *tg, const exo_graph *g, uint32_t *bad_node) {
    if (!g) return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: graph is NULL");
    /* A graph of an ABI 1.0/1.1 core ends before the strides: its elements are 1.0-sized. */
    if (g->hdr.size < offsetof(exo_graph, tensor_stride) || EXO_VERSION_MAJOR(g->hdr.version) != EXO_ABI_MAJOR)
        return graph_fail(tg, EXO_ERR_ABI_MISMATCH, "graph: header size %u / version 0x%x not understood", g->hdr.size,
                          g->hdr.version);
    uint32_t ts = exo_graph_tensor_stride(g), ns = exo_graph_node_stride(g);
    if (ts < EXO_TENSOR_SIZE_1_0 || ts % _Alignof(exo_tensor) != 0)
        return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: tensor_stride %u is below %u bytes or not a multiple of %zu",
                          ts, EXO_TENSOR_SIZE_1_0, _Alignof(exo_tensor));
    if (ns < EXO_NODE_SIZE_1_0 || ns % _Alignof(exo_node) != 0)
        return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: node_stride %u is below %u bytes or not a multiple of %zu", ns,
                          EXO_NODE_SIZE_1_0, _Alignof(exo_node));
    if (g->n_tensors == 0 || !g->tensors) return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: no tensors");
    if (g->n_nodes == 0 || !g->nodes) return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: no nodes");
    if (g->n_buffers && !g->buffers)
        return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: %u buffers but the table is NULL", g->n_buffers);
    if (g->max_tokens == 0) return graph_fail(tg, EXO_ERR_INVALID_ARG, "graph: max_tokens is 0");
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        exo_status st = check_tensor(tg, g, i);
        if (st != EXO_OK) return st;
    }
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        exo_status st = check_quant(tg, g, i);
        if (st != EXO_OK) return st;
    }
    exo_status st = check_operands(tg, g, bad_node);
    return st == EXO_OK ? check_order(tg, g, bad_node) : st;
}

exo_status graph_validate(const graph_target *target, const exo_graph *g, uint32_t *bad_node) {
    *bad_node = UINT32_MAX;
    exo_status st = check_structure(target, g, bad_node);
    if (st != EXO_OK) return st;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        st = graph_check_node(target, g, i, 1);
        if (st == EXO_OK && g->max_tokens > 1) st = graph_check_node(target, g, i, g->max_tokens);
        if (st != EXO_OK) {
            *bad_node = i;
            return st;
        }
    }
    return EXO_OK;
}
