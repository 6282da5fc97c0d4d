#include "cpu_test_graph.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void fx_open(cpu_fixture *f, uint32_t threads) {
    exo_test_host_init(&f->host);
    f->host.threads = threads;
    exo_status st = exo_test_plugin_load(&f->host, EXO_TEST_PLUGIN_DIR, "cpu_amx", &f->api, &f->ctx);
    ck_assert_msg(st == EXO_OK, "load: %s", f->host.last_error);
    uint32_t count = 0;
    ck_assert_int_eq(f->api.probe(f->ctx, &count), EXO_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_msg(f->api.device_open(f->ctx, 0) == EXO_OK, "open: %s", f->host.last_error);
}

void fx_close(cpu_fixture *f) {
    f->api.device_close(f->ctx, 0);
    exo_test_plugin_unload(&f->host, &f->api, f->ctx);
}

void tg_init(tgraph *g, cpu_fixture *fx, uint32_t max_tokens) {
    memset(g, 0, sizeof *g);
    g->fx = fx;
    g->max_tokens = max_tokens;
}

void tg_free(tgraph *g) {
    for (uint32_t i = 0; i < g->n_buffers; i++) g->fx->api.buffer_free(g->buffers[i]);
    for (uint32_t i = 0; i < g->n_tensors; i++)
        if (g->bound[i]) g->fx->api.buffer_free(g->bound[i]);
}

uint32_t tg_tensor(tgraph *g, const char *name, exo_dtype dtype, uint32_t flags, int64_t ne0, int64_t ne1,
                   int64_t ne2, int64_t ne3) {
    ck_assert_uint_lt(g->n_tensors, TG_MAX_TENSORS);
    uint32_t id = g->n_tensors++;
    exo_tensor *t = &g->tensors[id];
    memset(t, 0, sizeof *t);
    t->id = id;
    t->dtype = dtype;
    t->flags = flags;
    int64_t ne[4] = {ne0, ne1, ne2, ne3};
    t->n_dims = 1;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = ne[d] ? ne[d] : 1;
        if (ne[d]) t->n_dims = (uint32_t)d + 1;
    }
    t->buffer = -1;
    strncpy(t->name, name, sizeof t->name - 1);
    return id;
}

static uint64_t dtype_bytes(exo_dtype dtype, int64_t n) {
    switch (dtype) {
    case EXO_DTYPE_F16:
    case EXO_DTYPE_BF16: return (uint64_t)n * 2;
    case EXO_DTYPE_Q8_0: return (uint64_t)(n / 32) * 34;
    default: return (uint64_t)n * 4;
    }
}

static uint64_t tensor_bytes(const exo_tensor *t, uint32_t tokens) {
    int64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= t->ne[d] == EXO_DIM_TOKENS ? tokens : t->ne[d];
    return dtype_bytes(t->dtype, n);
}

uint32_t tg_weight(tgraph *g, const char *name, exo_dtype dtype, const void *data, int64_t ne0, int64_t ne1) {
    uint32_t id = tg_tensor(g, name, dtype, EXO_TENSOR_WEIGHT, ne0, ne1, 0, 0);
    uint64_t bytes = tensor_bytes(&g->tensors[id], 1);
    exo_buffer *buf = NULL;
    ck_assert_int_eq(g->fx->api.buffer_alloc(g->fx->ctx, 0, bytes, EXO_BUFFER_WEIGHTS, &buf), EXO_OK);
    ck_assert_int_eq(g->fx->api.buffer_write(buf, 0, data, bytes), EXO_OK);
    g->tensors[id].buffer = (int32_t)g->n_buffers;
    g->buffers[g->n_buffers++] = buf;
    return id;
}

uint32_t tg_node(tgraph *g, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src) {
    ck_assert_uint_lt(g->n_nodes, TG_MAX_NODES);
    exo_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->dst = dst;
    nd->n_src = n_src;
    for (uint32_t s = 0; s < n_src; s++) nd->src[s] = src[s];
    return g->n_nodes++;
}

exo_graph tg_graph(const tgraph *g) {
    exo_graph graph;
    memset(&graph, 0, sizeof graph);
    EXO_STRUCT_INIT(&graph);
    graph.n_tensors = g->n_tensors;
    graph.tensors = g->tensors;
    graph.n_nodes = g->n_nodes;
    graph.nodes = g->nodes;
    graph.n_buffers = g->n_buffers;
    graph.buffers = (exo_buffer *const *)g->buffers;
    graph.max_tokens = g->max_tokens;
    graph.tensor_stride = (uint32_t)sizeof(exo_tensor); /* the writer's element sizes (ABI 1.2+) */
    graph.node_stride = (uint32_t)sizeof(exo_node);
    return graph;
}

void tg_alloc_bound(tgraph *g) {
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        const exo_tensor *t = &g->tensors[i];
        if (!(t->flags & (EXO_TENSOR_INPUT | EXO_TENSOR_OUTPUT | EXO_TENSOR_KV)) || g->bound[i]) continue;
        exo_buffer_usage usage = t->flags & EXO_TENSOR_KV ? EXO_BUFFER_KV : EXO_BUFFER_SCRATCH;
        ck_assert_int_eq(g->fx->api.buffer_alloc(g->fx->ctx, 0, tensor_bytes(t, g->max_tokens), usage, &g->bound[i]),
                         EXO_OK);
    }
}

void tg_write(tgraph *g, uint32_t tensor, const void *data, uint64_t bytes) {
    ck_assert_ptr_nonnull(g->bound[tensor]);
    ck_assert_int_eq(g->fx->api.buffer_write(g->bound[tensor], 0, data, bytes), EXO_OK);
}

void tg_read(tgraph *g, uint32_t tensor, void *data, uint64_t bytes) {
    ck_assert_ptr_nonnull(g->bound[tensor]);
    ck_assert_int_eq(g->fx->api.buffer_read(g->bound[tensor], 0, data, bytes), EXO_OK);
}

exo_status tg_run(tgraph *g, exo_compiled *c, uint32_t n_tokens) {
    exo_binding bindings[TG_MAX_TENSORS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->n_tensors; i++)
        if (g->bound[i]) bindings[n++] = (exo_binding){.tensor = i, .buffer = g->bound[i], .offset = 0};
    exo_exec_args args;
    memset(&args, 0, sizeof args);
    EXO_STRUCT_INIT(&args);
    args.n_tokens = n_tokens;
    args.n_bindings = n;
    args.bindings = bindings;
    return g->fx->api.graph_execute(c, &args);
}

void tg_random(float *out, int64_t n, float lo, float hi, uint32_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

uint16_t tg_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits += 0x7fff + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

uint16_t tg_f32_to_f16(float f) {
    /* Test values are normal f16 numbers; use the hardware-free exact path via frexp. */
    if (f == 0.0f) return signbit(f) ? 0x8000 : 0;
    uint16_t sign = f < 0 ? 0x8000 : 0;
    double a = fabs((double)f);
    int e;
    double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    int exp = e - 1 + 15;    /* biased exponent of 1.xxx form */
    if (exp <= 0) {          /* subnormal: value = mant * 2^-24 */
        double mant = nearbyint(a / ldexp(1.0, -24));
        return (uint16_t)(sign | (uint16_t)mant);
    }
    double mant = nearbyint((m * 2.0 - 1.0) * 1024.0);
    if (mant == 1024.0) {
        mant = 0;
        exp++;
    }
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    return (uint16_t)(sign | (exp << 10) | (uint16_t)mant);
}

double tg_bf16_to_f64(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

double tg_f16_to_f64(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v;
    if (exp == 0) v = ldexp(mant, -24);
    else if (exp == 31) v = mant ? NAN : INFINITY;
    else v = ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

double tg_nmse(const float *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

double tg_nmse_f(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

void *tg_weights_of(exo_dtype type, int64_t n, uint32_t seed) {
    float *src = malloc(sizeof(float) * n);
    tg_random(src, n, -1, 1, seed);
    if (type == EXO_DTYPE_F32) return src;
    if (type == EXO_DTYPE_Q8_0) {
        uint8_t *q = malloc((size_t)(n / 32) * 34);
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t d = tg_f32_to_f16(1.0f / 127.0f);
            memcpy(q + b * 34, &d, 2);
            for (int j = 0; j < 32; j++) q[b * 34 + 2 + j] = (uint8_t)(int8_t)(src[b * 32 + j] * 127.0f);
        }
        free(src);
        return q;
    }
    uint16_t *h = malloc(sizeof(uint16_t) * n);
    for (int64_t i = 0; i < n; i++) h[i] = type == EXO_DTYPE_BF16 ? tg_f32_to_bf16(src[i]) : tg_f32_to_f16(src[i]);
    free(src);
    return h;
}

void tg_build_matmul_group(tgraph *g, const exo_dtype types[3], tg_matmul_group *mg) {
    const int64_t k = TG_GROUP_K, widths[3] = {128, 48, 80};
    mg->x = tg_tensor(g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, k, EXO_DIM_TOKENS, 0, 0);
    mg->bias = tg_weights_of(EXO_DTYPE_F32, widths[1], 8);
    uint32_t tb = tg_weight(g, "b", EXO_DTYPE_F32, mg->bias, widths[1], 0);
    for (int i = 0; i < 3; i++) {
        mg->n[i] = widths[i];
        mg->w[i] = tg_weights_of(types[i], widths[i] * k, 10 + (uint32_t)i);
        char name[8] = {'w', (char)('0' + i), 0};
        uint32_t tw = tg_weight(g, name, types[i], mg->w[i], k, widths[i]);
        name[0] = 'y';
        mg->out[i] = tg_tensor(g, name, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, widths[i], EXO_DIM_TOKENS, 0, 0);
        uint32_t src[] = {mg->x, tw, tb};
        tg_node(g, EXO_OP_MATMUL, mg->out[i], i == 1 ? 3 : 2, src);
    }
}

void tg_matmul_group_free(tg_matmul_group *mg) {
    for (int i = 0; i < 3; i++) free(mg->w[i]);
    free(mg->bias);
}
