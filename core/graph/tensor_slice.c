/* One rank's part of the weights tensor parallelism splits (builder.h, "Tensor parallelism"):
 * q/k/v and gate/up by rows (their output features: heads, KV heads, intermediate columns),
 * o_proj and down_proj by columns (their input features), phi3's fused qkv_proj / gate_up_proj
 * by the rows of each section, biases and attention sinks as their rows, and the output biases
 * on rank 0 alone (the all-reduce would add them n_ranks times). The part is copied out of the
 * checkpoint into a buffer of the plan's own, so a device holds only its slice; MLX-quantized
 * weights keep their packed words, scales and biases, cut on group boundaries (a cut inside a
 * group dequantizes that part to float32). */
#include "builder_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* A run of the full tensor's rows the rank takes. */
typedef struct section {
    int64_t row0, rows;
} section;

typedef enum split_kind { NOT_SPLIT, BY_ROWS, BY_COLUMNS, FUSED_QKV, FUSED_GATE_UP, RANK0_ONLY } split_kind;

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* How a layer tensor is split (by its name under model.layers.<l>.). */
static split_kind kind_of(const char *name) {
    static const char *const rows[] = {".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
                                       ".self_attn.v_proj.weight", ".mlp.gate_proj.weight", ".mlp.up_proj.weight",
                                       ".self_attn.q_proj.bias", ".self_attn.k_proj.bias", ".self_attn.v_proj.bias",
                                       ".mlp.gate_proj.bias", ".mlp.up_proj.bias", ".self_attn.sinks"};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        if (ends_with(name, rows[i])) return BY_ROWS;
    if (ends_with(name, ".self_attn.o_proj.weight") || ends_with(name, ".mlp.down_proj.weight")) return BY_COLUMNS;
    if (ends_with(name, ".self_attn.qkv_proj.weight")) return FUSED_QKV;
    if (ends_with(name, ".mlp.gate_up_proj.weight")) return FUSED_GATE_UP;
    if (ends_with(name, ".self_attn.o_proj.bias") || ends_with(name, ".mlp.down_proj.bias")) return RANK0_ONLY;
    return NOT_SPLIT;
}

/* The sections of the full tensor's rows that make the rank's `local_rows` rows. */
static uint32_t sections_of(const builder *b, split_kind kind, int64_t local_rows, section *out, int64_t *full_rows) {
    const exo_model_config *f = b->full, *c = b->cfg;
    uint32_t r = b->slice->rank, n = b->slice->n_ranks;
    if (kind == FUSED_QKV) {
        int64_t hd = c->head_dim, q = c->n_heads * hd, kv = c->n_kv_heads * hd;
        out[0] = (section){r * q, q};
        out[1] = (section){(int64_t)f->n_heads * hd + r * kv, kv};
        out[2] = (section){(int64_t)(f->n_heads + f->n_kv_heads) * hd + r * kv, kv};
        *full_rows = (int64_t)(f->n_heads + 2 * f->n_kv_heads) * hd;
        return 3;
    }
    if (kind == FUSED_GATE_UP) {
        int64_t i = c->intermediate_size;
        out[0] = (section){r * i, i};
        out[1] = (section){(int64_t)f->intermediate_size + r * i, i};
        *full_rows = 2 * (int64_t)f->intermediate_size;
        return 2;
    }
    out[0] = (section){r * local_rows, local_rows};
    *full_rows = local_rows * n;
    return 1;
}

/* Copies the sections' rows, columns [col_byte0, col_byte0 + col_bytes) of each, out of a tensor
 * whose rows are row_bytes long; NULL when out of memory. */
static void *gather(const exo_st_tensor *t, const section *s, uint32_t n, uint64_t row_bytes, uint64_t col_byte0,
                    uint64_t col_bytes, uint64_t *size) {
    uint64_t rows = 0;
    for (uint32_t i = 0; i < n; i++) rows += (uint64_t)s[i].rows;
    *size = rows * col_bytes;
    char *out = malloc(*size ? *size : 1), *dst = out;
    if (!out) return NULL;
    for (uint32_t i = 0; i < n; i++)
        for (int64_t r = 0; r < s[i].rows; r++, dst += col_bytes)
            memcpy(dst, (const char *)t->data + (uint64_t)(s[i].row0 + r) * row_bytes + col_byte0, col_bytes);
    return out;
}

/* A gathered part as a weight tensor with a buffer of its own. */
static uint32_t owned_tensor(builder *b, const exo_st_tensor *t, const char *name, exo_dtype dtype, int32_t layer,
                             const section *s, uint32_t n, uint64_t row_bytes, uint64_t col_byte0, uint64_t col_bytes,
                             const int64_t *shape) {
    uint64_t size = 0;
    void *data = gather(t, s, n, row_bytes, col_byte0, col_bytes, &size);
    if (!data) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory slicing '%s'", name));
    int32_t buf = gb_add_buffer(b, data, size, data, layer, name);
    uint32_t id = gb_tensor(b, dtype, EXO_TENSOR_WEIGHT, name, 2, shape);
    gb_tensor_at(b, id)->buffer = buf;
    return id;
}

/* A column cut inside a quantization group (tiny models: 64 columns of 2 heads against groups of
 * 64) cannot keep the packing: the rank's part is dequantized to float32 (w = scale * q + bias,
 * MLX's affine form), exact up to float rounding, at 4 bytes a weight. Logged by the caller's
 * shard as ever; real models' head and intermediate widths are multiples of the groups. */
static uint32_t dequantized(builder *b, const exo_st_tensor *w, const exo_st_tensor *sc, const exo_st_tensor *bi,
                            const char *name, int32_t layer, const section *s, uint32_t n, uint32_t bits,
                            uint32_t group, int64_t full_k, int64_t col0, const int64_t *shape) {
    int64_t k = shape[1], words = full_k * bits / 32, groups = full_k / group;
    float *out = malloc((size_t)shape[0] * (size_t)k * sizeof *out), *dst = out;
    if (!out) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory slicing '%s'", name));
    const uint32_t *packed = w->data;
    uint32_t mask = (1u << bits) - 1;
    for (uint32_t i = 0; i < n; i++)
        for (int64_t r = s[i].row0; r < s[i].row0 + s[i].rows; r++)
            for (int64_t c = col0; c < col0 + k; c++) {
                uint64_t bit = (uint64_t)c * bits;
                const uint32_t *row = packed + r * words;
                uint64_t pair = row[bit / 32] | (bit / 32 + 1 < (uint64_t)words ? (uint64_t)row[bit / 32 + 1] << 32 : 0);
                uint32_t q = (uint32_t)(pair >> (bit % 32)) & mask;
                uint64_t g = (uint64_t)(r * groups + c / group);
                *dst++ = gb_to_f32(sc->data, sc->dtype, g) * (float)q + gb_to_f32(bi->data, bi->dtype, g);
            }
    int32_t buf = gb_add_buffer(b, out, (uint64_t)shape[0] * (uint64_t)k * 4, out, layer, name);
    uint32_t id = gb_tensor(b, EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, name, 2, shape);
    gb_tensor_at(b, id)->buffer = buf;
    return id;
}

/* The rank's part of an MLX affine matrix (packed words w [rows, full_k * bits / 32], scales and
 * biases [rows, full_k / group]): the packed words, scales and biases of its rows and columns when
 * the cut falls on group boundaries, else (a cut inside a group) dequantized to float32. */
static uint32_t packed_part(builder *b, const exo_st_tensor *w, const exo_st_tensor *sc, const exo_st_tensor *bi,
                            const char *name, const char *module, int32_t layer, const section *s, uint32_t n,
                            uint32_t bits, uint32_t group, int64_t full_k, int64_t col0, const int64_t *shape) {
    int64_t k = shape[1], words = full_k * bits / 32, groups = full_k / group;
    if (col0 % group || k % group) /* the cut falls inside a group: this part as float32 */
        return dequantized(b, w, sc, bi, name, layer, s, n, bits, group, full_k, col0, shape);
    char sname[176], bname[176];
    snprintf(sname, sizeof sname, "%s.scales", module);
    snprintf(bname, sizeof bname, "%s.biases", module);
    uint64_t se = exo_dtype_size(sc->dtype);
    int64_t sshape[2] = {shape[0], k / group};
    uint32_t ts = owned_tensor(b, sc, sname, sc->dtype, layer, s, n, (uint64_t)groups * se,
                               (uint64_t)(col0 / group) * se, (uint64_t)(k / group) * se, sshape);
    uint32_t tb = owned_tensor(b, bi, bname, bi->dtype, layer, s, n, (uint64_t)groups * se,
                               (uint64_t)(col0 / group) * se, (uint64_t)(k / group) * se, sshape);
    uint32_t id = owned_tensor(b, w, name, EXO_DTYPE_MLX_AFFINE, layer, s, n, (uint64_t)words * 4,
                               (uint64_t)col0 * bits / 8, (uint64_t)k * bits / 8, shape);
    return gb_set_mlx(b, id, bits, group, ts, tb);
}

/* Quantize on load under tensor parallelism: the rank's rows are quantized over the full input
 * width, in the groups one device would use (gb_quantize_rows on whole rows), then cut like a
 * checkpoint's MLX weight (packed_part): on group boundaries the rank keeps exactly the packed
 * words, scales and biases one device would hold for those columns; a cut inside a group (the
 * tiny fixtures' 80 of 160 down_proj columns against groups of 32) holds them dequantized. */
static uint32_t quantized_on_load(builder *b, const exo_st_tensor *t, const char *name, int32_t layer,
                                  const section *s, uint32_t n, int64_t full_k, int64_t col0, const int64_t *shape) {
    uint32_t bits = b->q->bits, group = b->q->group;
    uint64_t e = exo_dtype_size(t->dtype), size = 0;
    void *rows_data = gather(t, s, n, (uint64_t)full_k * e, 0, (uint64_t)full_k * e, &size);
    int64_t rows = (int64_t)(size / ((uint64_t)full_k * e)), words = full_k * bits / 32, groups = full_k / group;
    uint64_t wbytes = (uint64_t)rows * (uint64_t)words * 4, sbytes = (uint64_t)rows * (uint64_t)groups * e;
    char *packed = rows_data ? malloc(wbytes + 2 * sbytes) : NULL;
    if (!packed) {
        free(rows_data);
        return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory quantizing '%s' for its rank", name));
    }
    exo_st_tensor src = *t, w = *t, sc = *t, bi = *t;
    src.data = rows_data;
    gb_quantize_rows(&src, rows, full_k, bits, group, (uint32_t *)(void *)packed, packed + wbytes,
                     packed + wbytes + sbytes);
    free(rows_data);
    w.dtype = EXO_ST_DTYPE_U32;
    w.data = packed;
    sc.data = packed + wbytes;
    bi.data = packed + wbytes + sbytes;
    char module[160];
    snprintf(module, sizeof module, "%.*s", (int)(strlen(name) - 7), name); /* without ".weight" */
    section all = {0, rows}; /* the rank's rows, gathered in order */
    uint32_t id = packed_part(b, &w, &sc, &bi, name, module, layer, &all, 1, bits, group, full_k, col0, shape);
    free(packed); /* packed_part copied what the rank keeps */
    return id;
}

uint32_t gb_slice_weight(builder *b, const char *name, int32_t layer, uint32_t n_dims, const int64_t *shape,
                         bool *handled) {
    *handled = false;
    split_kind kind = b->slice && b->slice->n_ranks > 1 && n_dims == 2 ? kind_of(name) : NOT_SPLIT;
    if (kind == NOT_SPLIT || kind == RANK0_ONLY) return NONE;
    *handled = true;
    if (gb_failed(b)) return NONE;
    section s[3];
    int64_t full_rows = 0, k = shape[1], full_k = k, col0 = 0;
    uint32_t n = kind == BY_COLUMNS ? 1 : sections_of(b, kind, shape[0], s, &full_rows);
    if (kind == BY_COLUMNS) {
        s[0] = (section){0, shape[0]};
        full_rows = shape[0];
        full_k = k * b->slice->n_ranks;
        col0 = k * b->slice->rank;
    }
    char module[160];
    if (!gb_quantized_module(b, name, 2, module, sizeof module)) {
        const exo_st_tensor *t = NULL;
        int64_t full[2] = {full_rows, full_k};
        exo_status st = gb_checkpoint(b, name, 2, full, &t);
        if (st != EXO_OK) return gb_fail(b, st);
        if (gb_quantizes(b, name, 2, full)) return quantized_on_load(b, t, name, layer, s, n, full_k, col0, shape);
        uint64_t e = exo_dtype_size(t->dtype);
        return owned_tensor(b, t, name, t->dtype, layer, s, n, (uint64_t)full_k * e, (uint64_t)col0 * e,
                            (uint64_t)k * e, shape);
    }
    /* MLX affine: the packed words and the groups' scales and biases of the same rows and columns. */
    uint32_t bits, group;
    exo_quant_for(b->full, module, &bits, &group);
    if (!bits || !group || full_k % group)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: '%s' is not a whole number of %u-wide quantization groups",
                                     b->dir, name, group));
    char sname[176], bname[176];
    snprintf(sname, sizeof sname, "%s.scales", module);
    snprintf(bname, sizeof bname, "%s.biases", module);
    const exo_st_tensor *w = NULL, *sc = NULL, *bi = NULL;
    exo_status st = exo_weights_get(b->weights, name, &w);
    if (st == EXO_OK) st = exo_weights_get(b->weights, sname, &sc);
    if (st == EXO_OK) st = exo_weights_get(b->weights, bname, &bi);
    if (st != EXO_OK) return gb_fail(b, st);
    int64_t words = full_k * bits / 32, groups = full_k / group;
    bool ok = w->dtype == EXO_ST_DTYPE_U32 && w->n_dims == 2 && w->shape[0] == full_rows && w->shape[1] == words;
    for (int i = 0; i < 2; i++) {
        const exo_st_tensor *p = i ? bi : sc;
        ok = ok && p->n_dims == 2 && p->shape[0] == full_rows && p->shape[1] == groups &&
             (p->dtype == EXO_DTYPE_F32 || p->dtype == EXO_DTYPE_F16 || p->dtype == EXO_DTYPE_BF16) &&
             p->dtype == sc->dtype;
    }
    if (!ok)
        return gb_fail(b, exo_errorf(EXO_ERR_FORMAT, "%s: the quantized module '%s' does not have the packed weight, "
                                     "scales and biases of a [%lld, %lld] %u-bit matrix in groups of %u", w->file,
                                     module, (long long)full_rows, (long long)full_k, bits, group));
    return packed_part(b, w, sc, bi, name, module, layer, s, n, bits, group, full_k, col0, shape);
}

uint32_t gb_slice_vector(builder *b, const char *name, int32_t layer, int64_t n, bool *handled) {
    *handled = false;
    split_kind kind = b->slice && b->slice->n_ranks > 1 ? kind_of(name) : NOT_SPLIT;
    if (kind != BY_ROWS && kind != RANK0_ONLY) return NONE;
    *handled = true;
    if (gb_failed(b)) return NONE;
    int64_t full_n = kind == RANK0_ONLY ? n : n * b->slice->n_ranks, row0 = kind == RANK0_ONLY ? 0 : n * b->slice->rank;
    const exo_st_tensor *t = NULL;
    exo_status st = gb_checkpoint(b, name, 1, (int64_t[]){full_n}, &t);
    if (st != EXO_OK) return gb_fail(b, st);
    float *v = calloc((size_t)n, sizeof *v);
    if (!v) return gb_fail(b, exo_errorf(EXO_ERR_NO_MEMORY, "out of memory slicing '%s'", name));
    /* An output bias belongs to the sum once: rank 0 adds it, the others add zeros. */
    if (kind == BY_ROWS || b->slice->rank == 0)
        for (int64_t i = 0; i < n; i++) v[i] = gb_to_f32(t->data, t->dtype, (uint64_t)(row0 + i));
    return gb_constant_f32(b, v, n, layer, name);
}
