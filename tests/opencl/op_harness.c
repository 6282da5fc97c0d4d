/* op_harness.c — see op_harness.h. */
#include "op_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int oh_open(oh_device *d, const char *name, char *why, size_t why_size) {
    exo_test_host_init(&d->host);
    d->ctx = NULL;
    exo_status st = exo_test_plugin_load(&d->host, EXO_TEST_PLUGIN_DIR, name, &d->api, &d->ctx);
    uint32_t count = 0;
    if (st == EXO_OK) st = d->api.probe(d->ctx, &count);
    if (st == EXO_OK && count == 0) st = EXO_ERR_NO_DEVICE;
    if (st == EXO_OK) st = d->api.device_open(d->ctx, 0);
    if (st != EXO_OK) {
        snprintf(why, why_size, "%s: status %d: %s", name, (int)st, d->host.last_error);
        return -1;
    }
    return 0;
}

void oh_close(oh_device *d) {
    if (!d->ctx) return;
    if (d->api.device_close) d->api.device_close(d->ctx, 0);
    exo_test_plugin_unload(&d->host, &d->api, d->ctx);
    d->ctx = NULL;
}

void oh_init(oh_graph *g, uint32_t max_tokens) {
    memset(g, 0, sizeof *g);
    g->max_tokens = max_tokens;
}

uint32_t oh_tensor(oh_graph *g, const char *name, exo_dtype dtype, uint32_t flags, uint32_t n_dims, int64_t ne0,
                   int64_t ne1, int64_t ne2) {
    uint32_t id = g->n_tensors++;
    exo_tensor *t = &g->tensors[id];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->dtype = dtype;
    t->flags = flags;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->buffer = -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    return id;
}

uint32_t oh_weight(oh_graph *g, const char *name, exo_dtype dtype, const void *data, uint64_t offset, uint32_t n_dims,
                   int64_t ne0, int64_t ne1) {
    uint32_t id = oh_tensor(g, name, dtype, EXO_TENSOR_WEIGHT, n_dims, ne0, ne1, 0);
    g->tensors[id].offset = offset;
    g->weight_data[id] = data;
    g->weight_offset[id] = offset;
    return id;
}

uint32_t oh_node(oh_graph *g, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src, const int32_t *i,
                 uint32_t n_i, const float *f, uint32_t n_f) {
    uint32_t k = g->n_nodes++;
    exo_node *nd = &g->nodes[k];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->dst = dst;
    nd->n_src = n_src;
    for (uint32_t s = 0; s < n_src; s++) nd->src[s] = src[s];
    for (uint32_t s = 0; s < n_i; s++) nd->i[s] = i[s];
    for (uint32_t s = 0; s < n_f; s++) nd->f[s] = f[s];
    return k;
}

uint64_t oh_bytes(const oh_graph *g, uint32_t tensor, uint32_t n_tokens) {
    const exo_tensor *t = &g->tensors[tensor];
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)(t->ne[d] == EXO_DIM_TOKENS ? n_tokens : t->ne[d]);
    if (t->dtype == EXO_DTYPE_MLX_AFFINE) return n * t->q_bits / 8; /* packed codes */
    return n * (t->dtype == EXO_DTYPE_F16 || t->dtype == EXO_DTYPE_BF16 ? 2 : 4);
}

exo_status oh_start(oh_run *r, oh_device *d, const oh_graph *g) {
    memset(r, 0, sizeof *r);
    r->d = d;
    r->g = g;
    exo_buffer *weights[OH_MAX_TENSORS];
    uint32_t n_weights = 0;
    exo_tensor tensors[OH_MAX_TENSORS];
    memcpy(tensors, g->tensors, sizeof tensors);
    for (uint32_t t = 0; t < g->n_tensors; t++) {
        const exo_tensor *ten = &g->tensors[t];
        if (ten->flags == 0) continue;
        uint64_t bytes = oh_bytes(g, t, g->max_tokens), off = g->weight_offset[t] + g->bind_offset[t];
        exo_buffer_usage usage = ten->flags & EXO_TENSOR_WEIGHT ? EXO_BUFFER_WEIGHTS
                                 : ten->flags & EXO_TENSOR_KV   ? EXO_BUFFER_KV
                                                                : EXO_BUFFER_SCRATCH;
        exo_status st = d->api.buffer_alloc(d->ctx, 0, bytes + off, usage, &r->buf[t]);
        if (st != EXO_OK) return st;
        unsigned char *zero = calloc(1, bytes + off);
        st = d->api.buffer_write(r->buf[t], 0, zero, bytes + off);
        free(zero);
        if (st != EXO_OK) return st;
        if (ten->flags & EXO_TENSOR_WEIGHT) {
            st = d->api.buffer_write(r->buf[t], off, g->weight_data[t], bytes);
            if (st != EXO_OK) return st;
            tensors[t].buffer = (int32_t)n_weights;
            weights[n_weights++] = r->buf[t];
        }
    }
    exo_graph graph;
    memset(&graph, 0, sizeof graph);
    EXO_STRUCT_INIT(&graph);
    graph.n_tensors = g->n_tensors;
    graph.tensors = tensors;
    graph.n_nodes = g->n_nodes;
    graph.nodes = g->nodes;
    graph.n_buffers = n_weights;
    graph.buffers = weights;
    graph.max_tokens = g->max_tokens;
    graph.tensor_stride = (uint32_t)sizeof(exo_tensor); /* the writer's element sizes (ABI 1.2+) */
    graph.node_stride = (uint32_t)sizeof(exo_node);
    return d->api.graph_compile(d->ctx, 0, &graph, &r->compiled);
}

exo_status oh_write(oh_run *r, uint32_t tensor, const void *data, uint64_t bytes) {
    return r->d->api.buffer_write(r->buf[tensor], r->g->bind_offset[tensor], data, bytes);
}

exo_status oh_read(oh_run *r, uint32_t tensor, void *data, uint64_t bytes) {
    return r->d->api.buffer_read(r->buf[tensor], r->g->bind_offset[tensor], data, bytes);
}

exo_status oh_exec(oh_run *r, uint32_t n_tokens) {
    exo_binding bindings[OH_MAX_TENSORS];
    uint32_t n = 0;
    for (uint32_t t = 0; t < r->g->n_tensors; t++) {
        uint32_t flags = r->g->tensors[t].flags;
        if (!(flags & (EXO_TENSOR_INPUT | EXO_TENSOR_OUTPUT | EXO_TENSOR_KV))) continue;
        bindings[n++] = (exo_binding){t, 0, r->buf[t], r->g->bind_offset[t]};
    }
    exo_exec_args args;
    memset(&args, 0, sizeof args);
    EXO_STRUCT_INIT(&args);
    args.n_tokens = n_tokens;
    args.n_bindings = n;
    args.bindings = bindings;
    return r->d->api.graph_execute(r->compiled, &args);
}

void oh_stop(oh_run *r) {
    if (r->compiled) r->d->api.compiled_free(r->compiled);
    for (uint32_t t = 0; t < OH_MAX_TENSORS; t++)
        if (r->buf[t]) r->d->api.buffer_free(r->buf[t]);
    memset(r, 0, sizeof *r);
}

void oh_random(float *out, int64_t n, float lo, float hi, uint32_t seed) {
    uint64_t s = 0x9e3779b97f4a7c15ull ^ seed;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = lo + (hi - lo) * (float)((s >> 40) / 16777216.0);
    }
}

uint16_t oh_f32_to_f16(float f) {
    _Float16 h = (_Float16)f;
    uint16_t bits;
    memcpy(&bits, &h, sizeof bits);
    return bits;
}

uint16_t oh_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

void *oh_float_bytes(exo_dtype dtype, const float *values, int64_t n) {
    if (dtype == EXO_DTYPE_F32) {
        float *w = malloc((size_t)n * 4);
        memcpy(w, values, (size_t)n * 4);
        return w;
    }
    uint16_t *w = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) w[i] = dtype == EXO_DTYPE_F16 ? oh_f32_to_f16(values[i]) : oh_f32_to_bf16(values[i]);
    return w;
}

double oh_nmse(const float *a, const float *b, int64_t n) {
    double err = 0.0, ref = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        err += d * d;
        ref += (double)b[i] * b[i];
    }
    return ref > 0 ? err / ref : err;
}
