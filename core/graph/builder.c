/* Builds the decoder-layer graph of the llama family (llama, mistral, qwen2, qwen3, phi3,
 * gemma, and the mixtures of experts qwen3_moe, mixtral, gpt_oss, glm4_moe) for a layer range.
 * The differences between these architectures are all data: biases, q/k norm, fused
 * projections, norm "1 + w", embedding scale, activation, sliding windows, attention sinks and
 * soft-capping, read from the config. The sparse MLPs are built in moe_layer.c. */
#include "builder.h"
#include "builder_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"

bool gb_failed(const builder *b) { return b->st != EXO_OK; }

/* Records the first error; returns NONE for the failing step's result. */
uint32_t gb_fail(builder *b, exo_status st) {
    if (b->st == EXO_OK) b->st = st;
    return NONE;
}

/* ---------------------------------------------------------------- tables */

exo_status gb_grow(void **items, uint32_t *cap, uint32_t need, size_t item_size) {
    if (need <= *cap) return EXO_OK;
    uint32_t n = *cap ? *cap * 2 : 64;
    while (n < need) n *= 2;
    void *grown = realloc(*items, (size_t)n * item_size);
    if (!grown) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the graph");
    memset((char *)grown + (size_t)*cap * item_size, 0, (size_t)(n - *cap) * item_size);
    *items = grown;
    *cap = n;
    return EXO_OK;
}

/* A tensor of the plan to adjust (buffer, a dimension), or the sink after a failure. */
exo_tensor *gb_tensor_at(builder *b, uint32_t id) {
    return gb_failed(b) || id >= b->plan->n_tensors ? &b->sink_tensor : &b->plan->tensors[id];
}

uint32_t gb_set_mlx(builder *b, uint32_t id, uint32_t bits, uint32_t group, uint32_t scales, uint32_t biases) {
    if (gb_failed(b)) return NONE;
    exo_tensor *t = gb_tensor_at(b, id);
    t->q_bits = bits;
    t->q_group = group;
    t->q_scales = scales;
    t->q_biases = biases;
    return id;
}

/* Adds a tensor; dims are given outermost first (as in PyTorch), stored innermost first. */
uint32_t gb_tensor(builder *b, exo_dtype dtype, uint32_t flags, const char *name, uint32_t n_dims,
                       const int64_t *dims) {
    exo_graph_plan *p = b->plan;
    if (gb_failed(b)) return NONE;
    exo_status st = gb_grow((void **)&p->tensors, &p->cap_tensors, p->n_tensors + 1, sizeof *p->tensors);
    if (st != EXO_OK) return gb_fail(b, st);
    exo_tensor *t = &p->tensors[p->n_tensors];
    memset(t, 0, sizeof *t);
    t->id = p->n_tensors;
    t->dtype = dtype;
    t->flags = flags;
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < EXO_MAX_DIMS; i++) t->ne[i] = 1;
    for (uint32_t i = 0; i < n_dims; i++) t->ne[i] = dims[n_dims - 1 - i];
    t->buffer = -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    return p->n_tensors++;
}

/* An intermediate activation [T, ...dims]. */
uint32_t gb_activation(builder *b, const char *name, uint32_t n_inner, int64_t d0, int64_t d1) {
    int64_t dims[3] = {EXO_DIM_TOKENS, d0, d1};
    return gb_tensor(b, EXO_DTYPE_F32, 0, name, 1 + n_inner, dims);
}

/* Adds a node; the caller sets its parameters (exo_node.i / .f by their named slots) through
 * the returned pointer, which stays valid until the next node is added. */
exo_node *gb_node(builder *b, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src) {
    exo_graph_plan *p = b->plan;
    if (gb_failed(b)) return &b->sink_node;
    exo_status st = gb_grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes);
    if (st != EXO_OK) {
        gb_fail(b, st);
        return &b->sink_node;
    }
    exo_node *n = &p->nodes[p->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->dst = dst;
    n->n_src = n_src;
    for (uint32_t i = 0; i < n_src; i++) n->src[i] = src[i];
    return n;
}

/* Adds a weight buffer and returns its index (-1 after a failure). Takes `owned` in all cases. */
int32_t gb_add_buffer(builder *b, const void *data, uint64_t size, void *owned, int32_t layer,
                          const char *name) {
    exo_graph_plan *p = b->plan;
    exo_status st = b->st;
    if (st == EXO_OK) st = gb_grow((void **)&p->buffers, &p->cap_buffers, p->n_buffers + 1, sizeof *p->buffers);
    if (st != EXO_OK) {
        free(owned);
        gb_fail(b, st);
        return -1;
    }
    exo_plan_buffer *buf = &p->buffers[p->n_buffers];
    buf->data = data;
    buf->size = size;
    buf->owned = owned;
    buf->layer = layer;
    snprintf(buf->name, sizeof buf->name, "%s", name);
    return (int32_t)p->n_buffers++;
}

/* ---------------------------------------------------------------- weights */

static bool is_float(exo_dtype d) { return d == EXO_DTYPE_F32 || d == EXO_DTYPE_F16 || d == EXO_DTYPE_BF16; }

/* Looks a checkpoint tensor up and checks its shape (outermost first) and dtype. */
exo_status gb_checkpoint(builder *b, const char *name, uint32_t n_dims, const int64_t *shape,
                             const exo_st_tensor **out) {
    exo_status st = exo_weights_get(b->weights, name, out);
    if (st != EXO_OK) return st;
    const exo_st_tensor *t = *out;
    if (!is_float(t->dtype))
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16%s",
                          t->file, name, exo_st_dtype_name(t->dtype),
                          t->dtype == EXO_ST_DTYPE_U32 ? " (U32 is only read as a quantized module's packed weight, "
                                                         "beside its .scales and .biases)" : "");
    bool same = t->n_dims == n_dims;
    for (uint32_t i = 0; same && i < n_dims; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (uint32_t i = 0; i < n_dims; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
        for (uint32_t i = 0; i < t->n_dims; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has shape [%s], the config implies [%s]", t->file, name,
                          got, want);
    }
    return EXO_OK;
}

/* "[a, b]" of a checkpoint tensor's shape, for messages. */
static const char *shape_text(const exo_st_tensor *t, char *out, size_t size) {
    out[0] = 0;
    for (uint32_t i = 0; i < t->n_dims; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    return out;
}

/* A checkpoint tensor as one weight buffer and a tensor of the plan (dims outermost first). */
static uint32_t stored(builder *b, const exo_st_tensor *t, const char *name, exo_dtype dtype, int32_t layer,
                       uint32_t n_dims, const int64_t *shape) {
    int32_t buf = gb_add_buffer(b, t->data, t->nbytes, NULL, layer, name);
    uint32_t id = gb_tensor(b, dtype, EXO_TENSOR_WEIGHT, name, n_dims, shape);
    gb_tensor_at(b, id)->buffer = buf;
    return id;
}

/* An MLX-quantized module (`module`.weight U32 [rows, K * bits / 32], .scales and .biases
 * [rows, K / group] of one float dtype) as an EXO_DTYPE_MLX_AFFINE weight of logical shape
 * [rows, K] whose descriptor names its scales and biases (abi/exo_plugin.h, "Quantized
 * weights"). n_dims 3: mlx-lm's stacked experts (SwitchLinear), [E, rows, K] with scales and
 * biases [E, rows, K / group]. The packed words are used as stored: nothing is dequantized here. */
static uint32_t quantized_weight(builder *b, const char *name, const char *module, int32_t layer, uint32_t n_dims,
                                 const int64_t *shape) {
    const exo_model_config *c = b->cfg;
    int64_t k = shape[n_dims - 1];
    uint32_t bits, group;
    exo_quant_for(c, module, &bits, &group);
    char sname[160], bname[160], got[96], want[96] = "";
    snprintf(sname, sizeof sname, "%s.scales", module);
    snprintf(bname, sizeof bname, "%s.biases", module);
    if (c->quant.bits == 0)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' exists but config.json has no 'quantization': "
                                  "cannot read the quantized module '%s'", b->dir, sname, module));
    if (bits == 0)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' exists but config.json's quantization leaves "
                                  "module '%s' unquantized (override false)", b->dir, sname, module));
    if (k % group != 0)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s': input width %lld is not a multiple of the "
                                  "group size %u", b->dir, name, (long long)k, group));
    const exo_st_tensor *w = NULL, *sc = NULL, *bi = NULL;
    exo_status st = exo_weights_get(b->weights, name, &w);
    if (st == EXO_OK) st = exo_weights_get(b->weights, sname, &sc);
    if (st == EXO_OK) st = exo_weights_get(b->weights, bname, &bi);
    if (st != EXO_OK) return gb_fail(b, st);
    int64_t words = k * bits / 32, groups = k / group;
    for (uint32_t i = 0; i + 1 < n_dims; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%lld, ", (long long)shape[i]);
    if (w->dtype != EXO_ST_DTYPE_U32)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has dtype %s; a quantized module's weight (it has "
                                  "'%s') must be U32", w->file, name, exo_st_dtype_name(w->dtype), sname));
    bool same = w->n_dims == n_dims && w->shape[n_dims - 1] == words;
    for (uint32_t i = 0; same && i + 1 < n_dims; i++) same = w->shape[i] == shape[i];
    if (!same)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has shape [%s]; %u-bit packing of [%s%lld] "
                                  "needs [%s%lld] U32 words", w->file, name, shape_text(w, got, sizeof got), bits, want,
                                  (long long)k, want, (long long)words));
    const exo_st_tensor *sb[2] = {sc, bi};
    const char *sbn[2] = {sname, bname};
    for (int i = 0; i < 2; i++) {
        if (!is_float(sb[i]->dtype))
            return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has dtype %s; scales and biases must be F32, "
                                      "F16 or BF16", sb[i]->file, sbn[i], exo_st_dtype_name(sb[i]->dtype)));
        same = sb[i]->n_dims == n_dims && sb[i]->shape[n_dims - 1] == groups;
        for (uint32_t d = 0; same && d + 1 < n_dims; d++) same = sb[i]->shape[d] == shape[d];
        if (!same)
            return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has shape [%s]; group size %u over [%s%lld] "
                                      "needs [%s%lld]", sb[i]->file, sbn[i], shape_text(sb[i], got, sizeof got),
                                      group, want, (long long)k, want, (long long)groups));
    }
    if (sc->dtype != bi->dtype)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: tensors '%s' (%s) and '%s' (%s) must have one dtype", sc->file,
                                  sname, exo_st_dtype_name(sc->dtype), bname, exo_st_dtype_name(bi->dtype)));
    int64_t sshape[3];
    for (uint32_t i = 0; i + 1 < n_dims; i++) sshape[i] = shape[i];
    sshape[n_dims - 1] = groups;
    uint32_t ts = stored(b, sc, sname, sc->dtype, layer, n_dims, sshape);
    uint32_t tb = stored(b, bi, bname, bi->dtype, layer, n_dims, sshape);
    uint32_t id = stored(b, w, name, EXO_DTYPE_MLX_AFFINE, layer, n_dims, shape);
    return gb_set_mlx(b, id, bits, group, ts, tb);
}

/* The module path of a 2-D (or stacked 3-D) weight ("x.weight" -> "x") when the checkpoint
 * quantized it (has "x.scales"); false otherwise. */
bool gb_quantized_module(const builder *b, const char *name, uint32_t n_dims, char *module, size_t size) {
    size_t n = strlen(name);
    if ((n_dims != 2 && n_dims != 3) || n < 7 || strcmp(name + n - 7, ".weight") != 0 || n - 7 + 8 > size) return false;
    snprintf(module, size, "%.*s.scales", (int)(n - 7), name);
    bool quantized = exo_weights_has(b->weights, module);
    module[n - 7] = 0;
    return quantized;
}


/* f32 -> bf16 / f16, rounding to nearest even (as MLX casts its scales and biases). */
static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* rounds to >= 65520: infinity */
    if (a < 0x38800000u) {                       /* below 2^-14: subnormal or zero */
        float v;
        memcpy(&v, &a, 4);
        return (uint16_t)(sign | (uint16_t)lrintf(v * 16777216.0f)); /* units of 2^-24, nearest even */
    }
    uint32_t r = a - 0x38000000u; /* rebias the exponent by 112 */
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | (uint16_t)r);
}

static void store_float(void *out, exo_dtype dtype, uint64_t i, float v) {
    if (dtype == EXO_DTYPE_F32) {
        memcpy((char *)out + 4 * i, &v, 4);
        return;
    }
    uint16_t h = dtype == EXO_DTYPE_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
    memcpy((char *)out + 2 * i, &h, 2);
}

/* Quantizes t [rows, k] as mlx.core.quantize does (mlx/backend/cpu/quantized.cpp), group by
 * group: the scale spans [min, max] over 2^bits - 1 steps, signed so that the edge of larger
 * magnitude is a whole code, which the bias then makes exact (bias 0 when that edge rounds to
 * code 0, so 0 stays exact). Codes are packed as "Quantized weights" reads them. */
void gb_quantize_rows(const exo_st_tensor *t, int64_t rows, int64_t k, uint32_t bits, uint32_t group,
                      uint32_t *words, void *scales, void *biases) {
    const float n_bins = (float)((1u << bits) - 1), eps = 1e-7f;
    exo_dtype dt = (exo_dtype)t->dtype;
    int64_t groups = k / group, row_words = k * bits / 32;
    for (int64_t r = 0; r < rows; r++) {
        uint32_t *out = words + r * row_words;
        uint64_t acc = 0;
        uint32_t have = 0;
        int64_t wi = 0;
        for (int64_t g = 0; g < groups; g++) {
            uint64_t base = (uint64_t)(r * k + g * group);
            float lo = gb_to_f32(t->data, dt, base), hi = lo;
            for (uint32_t j = 1; j < group; j++) {
                float v = gb_to_f32(t->data, dt, base + j);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            bool mask = fabsf(lo) > fabsf(hi);
            float scale = (hi - lo) / n_bins;
            scale = scale > eps ? scale : eps;
            scale = mask ? scale : -scale;
            float edge = mask ? lo : hi;
            float q0 = rintf(edge / scale), bias = 0.0f;
            if (q0 != 0.0f) {
                scale = edge / q0;
                bias = edge;
            }
            for (uint32_t j = 0; j < group; j++) {
                float q = rintf((gb_to_f32(t->data, dt, base + j) - bias) / scale);
                q = q < 0.0f ? 0.0f : q > n_bins ? n_bins : q;
                acc |= (uint64_t)(uint32_t)q << have;
                have += bits;
                if (have >= 32) {
                    out[wi++] = (uint32_t)acc;
                    acc >>= 32;
                    have -= 32;
                }
            }
            store_float(scales, dt, (uint64_t)(r * groups + g), scale);
            store_float(biases, dt, (uint64_t)(r * groups + g), bias);
        }
    }
}

void exo_quant_cache_free(exo_quant_cache *cache) {
    if (!cache) return;
    for (uint32_t i = 0; i < cache->n; i++) free(cache->items[i].data);
    free(cache->items);
    cache->items = NULL;
    cache->n = cache->cap = 0;
}

/* The mapping is MAP_PRIVATE and read-only: dropping its pages only lets the kernel reclaim them
 * (a later read faults them in from the file again). */
void gb_drop_pages(const exo_st_tensor *t) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t from = ((uintptr_t)t->data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t to = ((uintptr_t)t->data + (uintptr_t)t->nbytes) & ~((uintptr_t)page - 1);
    if (to > from) (void)madvise((void *)from, to - from, MADV_DONTNEED);
}

/* Adds a buffer over data the quantize cache holds. */
int32_t gb_add_heap_buffer(builder *b, const void *data, uint64_t size, int32_t layer, const char *name) {
    int32_t i = gb_add_buffer(b, data, size, NULL, layer, name);
    if (i >= 0) b->plan->buffers[i].heap = true;
    return i;
}

/* A float checkpoint weight [rows, k] quantized on load (b->q): packed once per shard (the
 * cache entry is shared by the shard's plans), then its file pages are dropped so that the
 * float weights do not stay resident. */
static uint32_t quantize_on_load(builder *b, const char *name, int32_t layer, const int64_t *shape) {
    exo_quant_cache *q = b->q;
    const exo_st_tensor *t = NULL;
    exo_status st = gb_checkpoint(b, name, 2, shape, &t);
    if (st != EXO_OK) return gb_fail(b, st);
    int64_t rows = shape[0], k = shape[1], groups = k / q->group;
    exo_quant_entry *e = NULL;
    for (uint32_t i = 0; i < q->n && !e; i++)
        if (strcmp(q->items[i].name, name) == 0) e = &q->items[i];
    if (!e) {
        st = gb_grow((void **)&q->items, &q->cap, q->n + 1, sizeof *q->items);
        if (st != EXO_OK) return gb_fail(b, st);
        uint64_t wbytes = (uint64_t)rows * (uint64_t)k * q->bits / 8;
        uint64_t sbytes = (uint64_t)rows * (uint64_t)groups * exo_dtype_size((exo_dtype)t->dtype);
        char *data = malloc(wbytes + 2 * sbytes ? wbytes + 2 * sbytes : 1);
        if (!data) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory quantizing '%s'", name));
        gb_quantize_rows(t, rows, k, q->bits, q->group, (uint32_t *)(void *)data, data + wbytes, data + wbytes + sbytes);
        e = &q->items[q->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", name);
        e->data = data;
        e->words_bytes = wbytes;
        e->scales_bytes = sbytes;
        gb_drop_pages(t);
    }
    char sname[EXO_TENSOR_NAME_MAX + 8], bname[EXO_TENSOR_NAME_MAX + 8];
    int stem = (int)strlen(name) - 7; /* without ".weight" (quantizes() checked the suffix) */
    snprintf(sname, sizeof sname, "%.*s.scales", stem, name);
    snprintf(bname, sizeof bname, "%.*s.biases", stem, name);
    const char *data = e->data;
    int64_t sshape[2] = {rows, groups};
    exo_dtype sd = (exo_dtype)t->dtype;
    int32_t bs = gb_add_heap_buffer(b, data + e->words_bytes, e->scales_bytes, layer, sname);
    uint32_t ts = gb_tensor(b, sd, EXO_TENSOR_WEIGHT, sname, 2, sshape);
    gb_tensor_at(b, ts)->buffer = bs;
    int32_t bb = gb_add_heap_buffer(b, data + e->words_bytes + e->scales_bytes, e->scales_bytes, layer, bname);
    uint32_t tb = gb_tensor(b, sd, EXO_TENSOR_WEIGHT, bname, 2, sshape);
    gb_tensor_at(b, tb)->buffer = bb;
    int32_t bw = gb_add_heap_buffer(b, data, e->words_bytes, layer, name);
    uint32_t id = gb_tensor(b, EXO_DTYPE_MLX_AFFINE, EXO_TENSOR_WEIGHT, name, 2, shape);
    gb_tensor_at(b, id)->buffer = bw;
    return gb_set_mlx(b, id, q->bits, q->group, ts, tb);
}

/* Whether gb_weight() quantizes a float weight on load: a 2-D ".weight" of a linear layer or the
 * embedding whose input width is a multiple of the group (mlx-lm's nn.quantize predicate).
 * MoE experts and routers stay float (the expert matmul reads float tables); glm4_moe's shared
 * experts are a dense MLP and are quantized like one. */
bool gb_quantizes(const builder *b, const char *name, uint32_t n_dims, const int64_t *shape) {
    size_t n = strlen(name);
    if (!b->q || !b->q->bits || n_dims != 2 || n <= 7 || strcmp(name + n - 7, ".weight") != 0) return false;
    if (shape[1] % b->q->group != 0) return false;
    if (b->cfg->n_experts &&
        (strstr(name, ".experts.") || strstr(name, ".gate.weight") || strstr(name, ".router.weight")))
        return false;
    return true;
}

/* A weight used as stored: one device buffer, used in place where the device can. */
uint32_t gb_weight(builder *b, const char *name, int32_t layer, uint32_t n_dims, const int64_t *shape) {
    const exo_st_tensor *t = NULL;
    if (gb_failed(b)) return NONE;
    bool sliced = false;
    uint32_t part = gb_slice_weight(b, name, layer, n_dims, shape, &sliced); /* tensor parallelism */
    if (sliced) return part;
    if (gb_quantizes(b, name, n_dims, shape)) return quantize_on_load(b, name, layer, shape);
    char module[160];
    if (gb_quantized_module(b, name, n_dims, module, sizeof module))
        return quantized_weight(b, name, module, layer, n_dims, shape);
    exo_status st = gb_checkpoint(b, name, n_dims, shape, &t);
    if (st != EXO_OK) return gb_fail(b, st);
    int32_t buf = gb_add_buffer(b, t->data, t->nbytes, NULL, layer, name);
    uint32_t id = gb_tensor(b, t->dtype, EXO_TENSOR_WEIGHT, name, n_dims, shape);
    gb_tensor_at(b, id)->buffer = buf;
    return id;
}

/* Rows [row0, row0 + rows) of a 2-D weight tensor already in the plan (fused projections). */
static uint32_t weight_rows(builder *b, uint32_t whole, int64_t row0, int64_t rows, const char *name) {
    exo_tensor w = *gb_tensor_at(b, whole);
    int64_t shape[2] = {rows, w.ne[0]};
    uint32_t id = gb_tensor(b, w.dtype, EXO_TENSOR_WEIGHT, name, 2, shape);
    exo_tensor *t = gb_tensor_at(b, id);
    t->buffer = w.buffer;
    if (w.dtype != EXO_DTYPE_MLX_AFFINE) {
        t->offset = w.offset + (uint64_t)row0 * (uint64_t)w.ne[0] * exo_dtype_size(w.dtype);
        return id;
    }
    /* Quantized: the packed rows, and the same rows of the scales and biases. */
    t->offset = w.offset + (uint64_t)row0 * (uint64_t)w.ne[0] * w.q_bits / 8;
    t->q_bits = w.q_bits;
    t->q_group = w.q_group;
    char sub[EXO_TENSOR_NAME_MAX + 8];
    uint32_t parts[2] = {w.q_scales, w.q_biases}, made[2];
    for (int i = 0; i < 2; i++) {
        exo_tensor p = *gb_tensor_at(b, parts[i]);
        int64_t pshape[2] = {rows, p.ne[0]};
        snprintf(sub, sizeof sub, "%s.%s", name, i ? "biases" : "scales");
        made[i] = gb_tensor(b, p.dtype, EXO_TENSOR_WEIGHT, sub, 2, pshape);
        exo_tensor *pt = gb_tensor_at(b, made[i]);
        pt->buffer = p.buffer;
        pt->offset = p.offset + (uint64_t)row0 * (uint64_t)p.ne[0] * exo_dtype_size(p.dtype);
    }
    t = gb_tensor_at(b, id);
    t->q_scales = made[0];
    t->q_biases = made[1];
    return id;
}

float gb_to_f32(const void *data, exo_dtype dtype, uint64_t i) {
    if (dtype == EXO_DTYPE_F32) {
        float v;
        memcpy(&v, (const char *)data + 4 * i, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, (const char *)data + 2 * i, 2);
    if (dtype == EXO_DTYPE_BF16) {
        uint32_t bits = (uint32_t)h << 16;
        float v;
        memcpy(&v, &bits, 4);
        return v;
    }
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0) {
        v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    uint32_t bits = exp == 31 ? sign | 0x7f800000u | (mant << 13) : sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&v, &bits, 4);
    return v;
}

/* A constant f32 weight of n values the builder owns (`values`, taken in all cases). */
uint32_t gb_constant_f32(builder *b, float *values, int64_t n, int32_t layer, const char *name) {
    int64_t shape[1] = {n};
    int32_t buf = gb_add_buffer(b, values, (uint64_t)n * sizeof *values, values, layer, name);
    uint32_t id = gb_tensor(b, EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, name, 1, shape);
    gb_tensor_at(b, id)->buffer = buf;
    return id;
}

/* A small vector (bias) as an f32 constant, whatever its stored dtype. */
uint32_t gb_vector_f32(builder *b, const char *name, int32_t layer, int64_t n) {
    const exo_st_tensor *t = NULL;
    int64_t shape[1] = {n};
    if (gb_failed(b)) return NONE;
    bool sliced = false;
    uint32_t part = gb_slice_vector(b, name, layer, n, &sliced); /* tensor parallelism */
    if (sliced) return part;
    exo_status st = gb_checkpoint(b, name, 1, shape, &t);
    if (st != EXO_OK) return gb_fail(b, st);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory converting '%s'", name));
    for (int64_t i = 0; i < n; i++) v[i] = gb_to_f32(t->data, t->dtype, (uint64_t)i);
    return gb_constant_f32(b, v, n, layer, name);
}

/* ---------------------------------------------------------------- one decoder layer */

const char *gb_lname(char *out, size_t size, uint32_t layer, const char *suffix) {
    snprintf(out, size, "model.layers.%u.%s", layer, suffix);
    return out;
}

/* x = matmul(h, W) (+ bias): [tokens][d0] out, or [tokens][d0][d1] when d1 > 0 (q, k and v come
 * out per head: the same bytes as [tokens][d0 x d1], so no reshape copy is needed). */
uint32_t gb_projection(builder *b, uint32_t l, uint32_t h, uint32_t w, const char *bias_name, int64_t d0,
                           int64_t d1, const char *out_name) {
    uint32_t bias = bias_name ? gb_vector_f32(b, bias_name, (int32_t)l, d1 > 0 ? d0 * d1 : d0) : NONE;
    uint32_t out = gb_activation(b, out_name, d1 > 0 ? 2 : 1, d0, d1);
    gb_node(b, EXO_OP_MATMUL, out, bias_name ? 3 : 2, (uint32_t[]){h, w, bias});
    return out;
}

static uint32_t rms_norm(builder *b, uint32_t x, uint32_t w, uint32_t n_inner, int64_t d0, int64_t d1,
                         const char *name) {
    uint32_t out = gb_activation(b, name, n_inner, d0, d1);
    exo_node *n = gb_node(b, EXO_OP_RMS_NORM, out, 2, (uint32_t[]){x, w});
    n->i[EXO_RMS_NORM_I_ADD_ONE] = b->cfg->norm_add_one ? 1 : 0;
    n->f[EXO_RMS_NORM_F_EPS] = b->cfg->rms_norm_eps;
    return out;
}

static uint32_t rope(builder *b, uint32_t x, uint32_t inv_freq, float factor, int64_t heads, const char *name) {
    uint32_t out = gb_activation(b, name, 2, heads, b->cfg->head_dim);
    exo_node *n = gb_node(b, EXO_OP_ROPE, out, 3, (uint32_t[]){x, b->plan->in_positions, inv_freq});
    n->i[EXO_ROPE_I_MODE] = EXO_ROPE_NEOX;
    n->i[EXO_ROPE_I_N_ROT] = (int32_t)exo_rope_n_rot(b->cfg);
    n->f[EXO_ROPE_F_ATTN_FACTOR] = factor;
    return out;
}

uint32_t gb_add(builder *b, uint32_t x, uint32_t y, int64_t width, const char *name) {
    uint32_t out = gb_activation(b, name, 1, width, 0);
    gb_node(b, EXO_OP_ADD, out, 2, (uint32_t[]){x, y});
    return out;
}

/* Appends layer l's attention over the residual stream x; returns its o_proj output (before the
 * residual is added). */
static uint32_t attention(builder *b, uint32_t l, uint32_t inv_freq, float rope_factor, uint32_t x) {
    const exo_model_config *c = b->cfg;
    exo_graph_plan *p = b->plan;
    int64_t H = c->hidden_size, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;
    int32_t li = (int32_t)l;
    char n1[128], n2[128];
    int64_t vec_h[1] = {H};

    uint32_t h = rms_norm(b, x, gb_weight(b, gb_lname(n1, sizeof n1, l, "input_layernorm.weight"), li, 1, vec_h), 1, H, 0,
                          "attn_norm");

    /* q, k, v projections: separate, or phi3's fused qkv_proj split by rows. */
    uint32_t wq, wk, wv;
    if (c->arch == EXO_ARCH_PHI3) {
        int64_t shape[2] = {(nh + 2 * nkv) * hd, H};
        uint32_t wqkv = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.qkv_proj.weight"), li, 2, shape);
        wq = weight_rows(b, wqkv, 0, nh * hd, "q_proj");
        wk = weight_rows(b, wqkv, nh * hd, nkv * hd, "k_proj");
        wv = weight_rows(b, wqkv, (nh + nkv) * hd, nkv * hd, "v_proj");
    } else {
        int64_t sq[2] = {nh * hd, H}, skv[2] = {nkv * hd, H};
        wq = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.q_proj.weight"), li, 2, sq);
        wk = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.k_proj.weight"), li, 2, skv);
        wv = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.v_proj.weight"), li, 2, skv);
    }
    bool qkv_bias = c->attention_bias;
    const char *bq = qkv_bias ? gb_lname(n2, sizeof n2, l, "self_attn.q_proj.bias") : NULL;
    uint32_t q = gb_projection(b, l, h, wq, bq, nh, hd, "q");
    const char *bk = qkv_bias ? gb_lname(n2, sizeof n2, l, "self_attn.k_proj.bias") : NULL;
    uint32_t k = gb_projection(b, l, h, wk, bk, nkv, hd, "k");
    const char *bv = qkv_bias ? gb_lname(n2, sizeof n2, l, "self_attn.v_proj.bias") : NULL;
    uint32_t v = gb_projection(b, l, h, wv, bv, nkv, hd, "v");
    if (c->qk_norm) {
        int64_t vec_hd[1] = {hd};
        uint32_t wqn = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.q_norm.weight"), li, 1, vec_hd);
        uint32_t wkn = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.k_norm.weight"), li, 1, vec_hd);
        q = rms_norm(b, q, wqn, 2, nh, hd, "q_normed");
        k = rms_norm(b, k, wkn, 2, nkv, hd, "k_normed");
    }
    uint32_t qr = rope(b, q, inv_freq, rope_factor, nh, "q_rope");
    uint32_t kr = rope(b, k, inv_freq, rope_factor, nkv, "k_rope");

    /* KV cache and attention. KV_WRITE's destination is the cache tensor itself: rows at the
     * tokens' positions. */
    uint32_t kc = p->kv[2 * (l - p->start)], vc = p->kv[2 * (l - p->start) + 1];
    gb_node(b, EXO_OP_KV_WRITE, kc, 2, (uint32_t[]){kr, p->in_positions});
    gb_node(b, EXO_OP_KV_WRITE, vc, 2, (uint32_t[]){v, p->in_positions});
    uint32_t attn = gb_activation(b, "attn", 1, nh * hd, 0);
    /* gpt_oss: one learnt logit per head joins each softmax's denominator (ATTENTION's src[4]). */
    uint32_t sinks = c->attention_sinks ? gb_vector_f32(b, gb_lname(n1, sizeof n1, l, "self_attn.sinks"), li, nh) : NONE;
    exo_node *an = gb_node(b, EXO_OP_ATTENTION, attn, c->attention_sinks ? 5 : 4,
                           (uint32_t[]){qr, kc, vc, p->in_positions, sinks});
    an->i[EXO_ATTENTION_I_N_HEADS] = (int32_t)nh;
    an->i[EXO_ATTENTION_I_N_KV_HEADS] = (int32_t)nkv;
    an->i[EXO_ATTENTION_I_HEAD_DIM] = (int32_t)hd;
    /* qwen2/qwen3 slide only from max_window_layers on; mistral's window covers every layer;
     * gpt_oss's layer_types say it per layer. */
    an->i[EXO_ATTENTION_I_WINDOW] = (int32_t)exo_layer_window(c, l);
    an->f[EXO_ATTENTION_F_SCALE] = c->attn_scale;
    an->f[EXO_ATTENTION_F_SOFTCAP] = c->attn_logit_softcap;

    int64_t so[2] = {H, nh * hd};
    uint32_t wo = gb_weight(b, gb_lname(n1, sizeof n1, l, "self_attn.o_proj.weight"), li, 2, so);
    bool o_bias = c->attention_out_bias;
    return gb_projection(b, l, attn, wo, o_bias ? gb_lname(n2, sizeof n2, l, "self_attn.o_proj.bias") : NULL, H, 0,
                         "attn_out");
}

/* Appends layer l to the graph; returns its output (the residual stream after the MLP). A tensor-
 * parallel half layer (b->slice) returns its rank's o_proj or MLP output instead: the caller sums
 * the ranks' outputs and adds the residual. */
static uint32_t layer(builder *b, uint32_t l, uint32_t inv_freq, float rope_factor, uint32_t x) {
    const exo_model_config *c = b->cfg;
    int64_t H = c->hidden_size, I = c->intermediate_size;
    int32_t li = (int32_t)l;
    char n1[128], n2[128];
    int64_t vec_h[1] = {H};
    exo_graph_half half = b->slice ? b->slice->half : 0;
    uint32_t x1 = x;
    if (half != EXO_GRAPH_HALF_MLP) {
        uint32_t o = attention(b, l, inv_freq, rope_factor, x);
        if (half == EXO_GRAPH_HALF_ATTENTION) return o;
        x1 = gb_add(b, x, o, H, "residual_attn");
    }

    /* MLP */
    uint32_t h2 = rms_norm(b, x1, gb_weight(b, gb_lname(n1, sizeof n1, l, "post_attention_layernorm.weight"), li, 1, vec_h),
                           1, H, 0, "mlp_norm");
    if (exo_layer_is_moe(c, l)) {
        uint32_t moe = gb_moe_mlp(b, l, h2);
        return half ? moe : gb_add(b, x1, moe, H, "residual_mlp");
    }
    uint32_t wg, wu;
    if (c->arch == EXO_ARCH_PHI3) {
        int64_t shape[2] = {2 * I, H};
        uint32_t wgu = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.gate_up_proj.weight"), li, 2, shape);
        wg = weight_rows(b, wgu, 0, I, "gate_proj");
        wu = weight_rows(b, wgu, I, I, "up_proj");
    } else {
        int64_t shape[2] = {I, H};
        wg = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.gate_proj.weight"), li, 2, shape);
        wu = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.up_proj.weight"), li, 2, shape);
    }
    bool mlp_bias = c->mlp_bias;
    uint32_t g =
        gb_projection(b, l, h2, wg, mlp_bias ? gb_lname(n2, sizeof n2, l, "mlp.gate_proj.bias") : NULL, I, 0, "gate");
    uint32_t u = gb_projection(b, l, h2, wu, mlp_bias ? gb_lname(n2, sizeof n2, l, "mlp.up_proj.bias") : NULL, I, 0, "up");
    uint32_t m = gb_activation(b, "glu", 1, I, 0);
    gb_node(b, EXO_OP_GLU, m, 2, (uint32_t[]){g, u})->i[EXO_GLU_I_ACT] = c->activation;
    int64_t sd[2] = {H, I};
    uint32_t wd = gb_weight(b, gb_lname(n1, sizeof n1, l, "mlp.down_proj.weight"), li, 2, sd);
    uint32_t d = gb_projection(b, l, m, wd, mlp_bias ? gb_lname(n2, sizeof n2, l, "mlp.down_proj.bias") : NULL, H, 0,
                            "mlp_out");
    return half ? d : gb_add(b, x1, d, H, "residual_mlp");
}

/* ---------------------------------------------------------------- the whole range */

/* RoPE frequencies, one constant shared by every layer; sets *factor (yarn's attention factor). */
static uint32_t rope_frequencies(builder *b, float *factor) {
    uint32_t n_rot = exo_rope_n_rot(b->cfg);
    if (gb_failed(b)) return NONE;
    float *freq = malloc(((size_t)n_rot / 2 + 1) * sizeof *freq);
    if (!freq) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the graph"));
    exo_rope_inv_freq(b->cfg, freq, n_rot, factor);
    return gb_constant_f32(b, freq, n_rot / 2, -1, "rope.inv_freq");
}

/* The final norm, lm_head and optional soft-capping over x; returns the logits tensor. With
 * `selected` rows (> 0), only those rows (in_output_row) go through the norm and the (large)
 * lm_head. */
static uint32_t head(builder *b, uint32_t x, uint32_t embed_table, uint32_t selected) {
    const exo_model_config *cfg = b->cfg;
    exo_graph_plan *out = b->plan;
    int64_t H = cfg->hidden_size, V = cfg->vocab_size, vh[2] = {V, H}, vec_h[1] = {H};
    int64_t rows = EXO_DIM_TOKENS;
    if (selected) {
        int64_t count[1] = {selected};
        rows = selected;
        out->in_output_row = gb_tensor(b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "output_row", 1, count);
        uint32_t row = gb_activation(b, "last_hidden", 1, H, 0);
        gb_tensor_at(b, row)->ne[1] = rows;
        gb_node(b, EXO_OP_GET_ROWS, row, 2, (uint32_t[]){x, out->in_output_row})->f[EXO_GET_ROWS_F_SCALE] = 1.0f;
        x = row;
    }
    uint32_t normed = rms_norm(b, x, gb_weight(b, "model.norm.weight", -1, 1, vec_h), 1, H, 0, "final_norm");
    gb_tensor_at(b, normed)->ne[1] = rows;
    uint32_t lm_head;
    if (cfg->tie_word_embeddings && !exo_weights_has(b->weights, "lm_head.weight"))
        lm_head = embed_table != NONE ? embed_table : gb_weight(b, "model.embed_tokens.weight", -1, 2, vh);
    else
        lm_head = gb_weight(b, "lm_head.weight", -1, 2, vh);
    int64_t shape[2] = {rows, V};
    bool softcap = cfg->final_logit_softcap > 0.0f;
    uint32_t logits = gb_tensor(b, EXO_DTYPE_F32, softcap ? 0 : EXO_TENSOR_OUTPUT, "logits", 2, shape);
    gb_node(b, EXO_OP_MATMUL, logits, 2, (uint32_t[]){normed, lm_head});
    if (softcap) {
        uint32_t capped = gb_tensor(b, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, "logits_capped", 2, shape);
        gb_node(b, EXO_OP_SOFTCAP, capped, 1, (uint32_t[]){logits})->f[EXO_SOFTCAP_F_CAP] = cfg->final_logit_softcap;
        logits = capped;
    }
    /* Every row's greedy token beside its logits: a greedy step reads 4 bytes a row back instead
     * of the vocabulary's floats. Last, so that a view for an older plugin can leave it out. */
    int64_t one_a_row[1] = {rows};
    out->out_argmax = gb_tensor(b, EXO_DTYPE_I32, EXO_TENSOR_OUTPUT, "next_token", 1, one_a_row);
    gb_node(b, EXO_OP_ARGMAX, out->out_argmax, 1, (uint32_t[]){logits});
    return logits;
}

exo_status exo_graph_plan_build(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                uint32_t start, uint32_t end, exo_graph_ends ends, uint32_t max_tokens,
                                uint32_t max_ctx, exo_graph_plan *out) {
    return exo_graph_plan_build_quantized(cfg, weights, model_dir, start, end, ends, max_tokens, max_ctx, NULL, 0, out);
}

exo_status exo_graph_plan_build_quantized(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                          uint32_t start, uint32_t end, exo_graph_ends ends, uint32_t max_tokens,
                                          uint32_t max_ctx, exo_quant_cache *cache, uint64_t max_buffer,
                                          exo_graph_plan *out) {
    memset(out, 0, sizeof *out);
    bool embeds = ends.embeds, has_head = ends.head;
    if (start > end || end > cfg->n_layers)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: layer range [%u, %u) outside the model's %u layers", model_dir,
                          start, end, cfg->n_layers);
    if (start == end && !embeds && !has_head)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: empty layer range [%u, %u) without embedding or head", model_dir,
                          start, end);
    if (max_tokens == 0 || max_ctx == 0)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: max_tokens and max_ctx must be positive", model_dir);
    if (max_buffer == 0 || max_buffer > EXO_GRAPH_MAX_SHARED_BUFFER) max_buffer = EXO_GRAPH_MAX_SHARED_BUFFER;
    builder b = {.plan = out, .cfg = cfg, .weights = weights, .dir = model_dir, .q = cache, .max_buffer = max_buffer,
                 .st = EXO_OK};
    out->start = start;
    out->end = end;
    out->embeds = embeds;
    out->has_head = has_head;
    out->max_tokens = max_tokens;
    out->max_ctx = max_ctx;
    out->in_tokens = out->in_hidden = out->output = out->in_output_row = out->out_argmax = NONE;
    out->n_kv = 2 * (end - start);
    out->kv = calloc(out->n_kv ? out->n_kv : 1, sizeof *out->kv);
    if (!out->kv) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the graph");

    int64_t H = cfg->hidden_size, V = cfg->vocab_size;
    int64_t tokens_only[1] = {EXO_DIM_TOKENS};
    out->in_positions = gb_tensor(&b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "positions", 1, tokens_only);
    for (uint32_t l = start; l < end; l++) {
        int64_t shape[3] = {max_ctx, cfg->n_kv_heads, cfg->head_dim};
        char name[64];
        snprintf(name, sizeof name, "cache_k.%u", l);
        out->kv[2 * (l - start)] = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_KV, name, 3, shape);
        snprintf(name, sizeof name, "cache_v.%u", l);
        out->kv[2 * (l - start) + 1] = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_KV, name, 3, shape);
    }
    float rope_factor = 1.0f;
    uint32_t inv_freq = end > start ? rope_frequencies(&b, &rope_factor) : NONE;

    /* Input: token ids through the embedding, or hidden states from the previous shard. */
    uint32_t x, embed_table = NONE;
    if (embeds) {
        int64_t vh[2] = {V, H};
        out->in_tokens = gb_tensor(&b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "tokens", 1, tokens_only);
        embed_table = gb_weight(&b, "model.embed_tokens.weight", -1, 2, vh);
        x = gb_activation(&b, "embeddings", 1, H, 0);
        gb_node(&b, EXO_OP_GET_ROWS, x, 2, (uint32_t[]){embed_table, out->in_tokens})->f[EXO_GET_ROWS_F_SCALE] =
            cfg->embedding_scale;
    } else {
        int64_t shape[2] = {EXO_DIM_TOKENS, H};
        x = out->in_hidden = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_INPUT, "hidden_in", 2, shape);
    }
    for (uint32_t l = start; l < end; l++) x = layer(&b, l, inv_freq, rope_factor, x);

    if (has_head) {
        out->output = head(&b, x, embed_table, ends.selected_rows > 1 ? ends.selected_rows : ends.last_row_only ? 1 : 0);
    } else {
        /* Hidden states out: a copy, so the output binding never aliases an input. */
        int64_t shape[2] = {EXO_DIM_TOKENS, H};
        out->output = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, "hidden_out", 2, shape);
        gb_node(&b, EXO_OP_COPY, out->output, 1, (uint32_t[]){x});
    }
    if (gb_failed(&b)) exo_graph_plan_free(out);
    return b.st;
}

/* ---------------------------------------------------------------- tensor parallelism */

exo_status exo_graph_slice_check(const exo_model_config *cfg, uint32_t l, uint32_t n_ranks) {
    if (n_ranks < 2) return EXO_OK;
    if (cfg->n_heads % n_ranks || cfg->n_kv_heads % n_ranks)
        return exo_errorf(EXO_ERR_INVALID_ARG, "tensor parallelism over %u devices splits attention heads evenly: %u "
                          "heads and %u KV heads do not divide by %u", n_ranks, cfg->n_heads, cfg->n_kv_heads, n_ranks);
    if (!exo_layer_is_moe(cfg, l) && cfg->intermediate_size % n_ranks)
        return exo_errorf(EXO_ERR_INVALID_ARG, "tensor parallelism over %u devices splits the MLP evenly: layer %u's "
                          "intermediate size %u does not divide by %u", n_ranks, l, cfg->intermediate_size, n_ranks);
    return EXO_OK;
}

exo_status exo_graph_plan_build_slice(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                      uint32_t l, const exo_graph_slice *slice, uint32_t max_tokens, uint32_t max_ctx,
                                      exo_quant_cache *cache, exo_graph_plan *out) {
    memset(out, 0, sizeof *out);
    if (l >= cfg->n_layers || !slice || slice->n_ranks == 0 || slice->rank >= slice->n_ranks ||
        (slice->half != EXO_GRAPH_HALF_ATTENTION && slice->half != EXO_GRAPH_HALF_MLP) || !max_tokens || !max_ctx)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: bad tensor-parallel slice of layer %u", model_dir, l);
    exo_status checked = exo_graph_slice_check(cfg, l, slice->n_ranks);
    if (checked != EXO_OK) return exo_error_wrap(checked, "%s", model_dir);
    /* The rank's shapes: its heads, KV heads and intermediate columns. */
    exo_model_config local = *cfg;
    local.n_heads /= slice->n_ranks;
    local.n_kv_heads /= slice->n_ranks;
    local.intermediate_size /= slice->n_ranks;
    builder b = {.plan = out, .cfg = &local, .weights = weights, .dir = model_dir, .q = cache,
                 .max_buffer = EXO_GRAPH_MAX_SHARED_BUFFER, .slice = slice, .full = cfg, .st = EXO_OK};
    bool attn = slice->half == EXO_GRAPH_HALF_ATTENTION;
    out->start = l;
    out->end = l + 1;
    out->max_tokens = max_tokens;
    out->max_ctx = max_ctx;
    out->in_tokens = out->output = out->in_output_row = out->out_argmax = NONE;
    out->n_kv = attn ? 2 : 0;
    out->kv = calloc(2, sizeof *out->kv);
    if (!out->kv) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the graph");
    int64_t H = cfg->hidden_size, tokens_only[1] = {EXO_DIM_TOKENS}, hidden[2] = {EXO_DIM_TOKENS, H};
    out->in_positions = gb_tensor(&b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "positions", 1, tokens_only);
    if (attn) {
        int64_t shape[3] = {max_ctx, local.n_kv_heads, local.head_dim};
        out->kv[0] = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_KV, "cache_k", 3, shape);
        out->kv[1] = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_KV, "cache_v", 3, shape);
    }
    float rope_factor = 1.0f;
    uint32_t inv_freq = attn ? rope_frequencies(&b, &rope_factor) : NONE;
    uint32_t x = out->in_hidden = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_INPUT, "hidden_in", 2, hidden);
    uint32_t part = layer(&b, l, inv_freq, rope_factor, x);
    out->output = gb_tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, attn ? "attn_part" : "mlp_part", 2, hidden);
    gb_node(&b, EXO_OP_COPY, out->output, 1, (uint32_t[]){part});
    if (gb_failed(&b)) exo_graph_plan_free(out);
    return b.st;
}

void exo_graph_plan_resize(exo_graph_plan *plan, uint32_t max_tokens, uint32_t max_ctx) {
    plan->max_tokens = max_tokens;
    plan->max_ctx = max_ctx;
    for (uint32_t i = 0; i < plan->n_kv; i++) {
        exo_tensor *t = &plan->tensors[plan->kv[i]];
        t->ne[t->n_dims - 1] = max_ctx; /* ne is innermost first: positions are the outermost */
    }
}

void exo_graph_plan_free(exo_graph_plan *plan) {
    if (!plan) return;
    for (uint32_t i = 0; i < plan->n_buffers; i++) free(plan->buffers[i].owned);
    free(plan->buffers);
    free(plan->tensors);
    free(plan->tensors_1_0);
    free(plan->nodes);
    free(plan->kv);
    memset(plan, 0, sizeof *plan);
}

/* The plan's arrays are of this header's element sizes, and a plugin that negotiated a minor
 * below 1.2 indexes them with the 1.0 sizes (abi/exo_plugin.h, "IR arrays"). exo_tensor grew in
 * 1.3 (the quantization descriptor), so such a plugin gets the tensors repacked at the 1.0
 * stride (it loses only the descriptor, of a dtype it does not know and refuses). exo_node has
 * not grown: the day it does, this fails and the nodes need the same. */
_Static_assert(sizeof(exo_node) == EXO_NODE_SIZE_1_0, "exo_node grew: repack for ABI 1.0/1.1 plugins");

exo_status exo_graph_plan_view(exo_graph_plan *plan, exo_buffer *const *buffers, uint32_t abi_version, exo_graph *out) {
    memset(out, 0, sizeof *out);
    EXO_ABI_STRUCT_INIT(out);
    /* The shard offers 16-bit caches only from ABI 1.7 on (run/shard.c); an older plugin would
     * read them as float32. */
    if (EXO_VERSION_MINOR(abi_version) < 7 && plan->kv_dtype != EXO_DTYPE_F32)
        return exo_errorf(EXO_ERR_INTERNAL, "a %s KV cache offered to a plugin of ABI 1.%u (16-bit caches need 1.7)",
                          exo_dtype_name(plan->kv_dtype), EXO_VERSION_MINOR(abi_version));
    const void *tensors = plan->tensors;
    uint32_t tensor_stride = (uint32_t)sizeof *plan->tensors;
    if (EXO_VERSION_MINOR(abi_version) < 2 && sizeof *plan->tensors != EXO_TENSOR_SIZE_1_0) {
        free(plan->tensors_1_0);
        plan->tensors_1_0 = malloc((size_t)(plan->n_tensors ? plan->n_tensors : 1) * EXO_TENSOR_SIZE_1_0);
        if (!plan->tensors_1_0) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory repacking the graph");
        for (uint32_t i = 0; i < plan->n_tensors; i++)
            memcpy((char *)plan->tensors_1_0 + (size_t)i * EXO_TENSOR_SIZE_1_0, &plan->tensors[i], EXO_TENSOR_SIZE_1_0);
        tensors = plan->tensors_1_0;
        tensor_stride = EXO_TENSOR_SIZE_1_0;
    }
    out->tensor_stride = tensor_stride;
    out->node_stride = (uint32_t)sizeof *plan->nodes;
    out->n_tensors = plan->n_tensors;
    out->tensors = tensors;
    out->n_nodes = plan->n_nodes;
    /* ARGMAX (1.10) is a head graph's last node: a plugin below 1.10 gets the graph without it
     * (its output tensor stays, bound and never written; the core picks on the host). */
    if (EXO_VERSION_MINOR(abi_version) < 10 && plan->out_argmax != NONE && plan->n_nodes &&
        plan->nodes[plan->n_nodes - 1].op == EXO_OP_ARGMAX)
        out->n_nodes--;
    out->nodes = plan->nodes;
    out->n_buffers = plan->n_buffers;
    out->buffers = buffers;
    out->max_tokens = plan->max_tokens;
    return EXO_OK;
}
