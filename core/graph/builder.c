/* Builds the decoder-layer graph of the llama family (llama, mistral, qwen2, qwen3, phi3,
 * gemma) for a layer range. The differences between these architectures are all data:
 * biases, q/k norm, fused projections, norm "1 + w", embedding scale, activation, sliding
 * window and soft-capping, read from the config. */
#include "builder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#define NONE UINT32_MAX

typedef struct builder {
    exo_graph_plan *plan;
    const exo_model_config *cfg;
    exo_weights *weights;
    const char *dir;
} builder;

/* ---------------------------------------------------------------- tables */

static exo_status grow(void **items, uint32_t *cap, uint32_t need, size_t item_size) {
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

/* Adds a tensor; dims are given outermost first (as in PyTorch), stored innermost first. */
static exo_status tensor(builder *b, exo_dtype dtype, uint32_t flags, const char *name, uint32_t n_dims,
                         const int64_t *dims, uint32_t *id) {
    exo_graph_plan *p = b->plan;
    exo_status st = grow((void **)&p->tensors, &p->cap_tensors, p->n_tensors + 1, sizeof *p->tensors);
    if (st != EXO_OK) return st;
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
    *id = p->n_tensors++;
    return EXO_OK;
}

/* An intermediate activation [T, ...dims]. */
static exo_status activation(builder *b, const char *name, uint32_t n_inner, int64_t d0, int64_t d1, uint32_t *id) {
    int64_t dims[3] = {EXO_DIM_TOKENS, d0, d1};
    return tensor(b, EXO_DTYPE_F32, 0, name, 1 + n_inner, dims, id);
}

static exo_status node(builder *b, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src,
                       const int32_t *ip, uint32_t n_ip, const float *fp, uint32_t n_fp) {
    exo_graph_plan *p = b->plan;
    exo_status st = grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes);
    if (st != EXO_OK) return st;
    exo_node *n = &p->nodes[p->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->dst = dst;
    n->n_src = n_src;
    for (uint32_t i = 0; i < n_src; i++) n->src[i] = src[i];
    for (uint32_t i = 0; i < n_ip; i++) n->i[i] = ip[i];
    for (uint32_t i = 0; i < n_fp; i++) n->f[i] = fp[i];
    return EXO_OK;
}

static exo_status add_buffer(builder *b, const void *data, uint64_t size, void *owned, int32_t layer,
                             const char *name, int32_t *index) {
    exo_graph_plan *p = b->plan;
    exo_status st = grow((void **)&p->buffers, &p->cap_buffers, p->n_buffers + 1, sizeof *p->buffers);
    if (st != EXO_OK) {
        free(owned);
        return st;
    }
    exo_plan_buffer *buf = &p->buffers[p->n_buffers];
    buf->data = data;
    buf->size = size;
    buf->owned = owned;
    buf->layer = layer;
    snprintf(buf->name, sizeof buf->name, "%s", name);
    *index = (int32_t)p->n_buffers++;
    return EXO_OK;
}

/* ---------------------------------------------------------------- weights */

static bool is_float(exo_dtype d) { return d == EXO_DTYPE_F32 || d == EXO_DTYPE_F16 || d == EXO_DTYPE_BF16; }

/* Looks a checkpoint tensor up and checks its shape (outermost first) and dtype. */
static exo_status checkpoint(builder *b, const char *name, uint32_t n_dims, const int64_t *shape,
                             const exo_st_tensor **out) {
    exo_status st = exo_weights_get(b->weights, name, out);
    if (st != EXO_OK) return st;
    const exo_st_tensor *t = *out;
    if (!is_float(t->dtype))
        return exo_errorf(EXO_ERR_FORMAT, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                          t->file, name, exo_dtype_name(t->dtype));
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

/* A weight used as stored: one device buffer, used in place where the device can. */
static exo_status weight(builder *b, const char *name, int32_t layer, uint32_t n_dims, const int64_t *shape,
                         uint32_t *id) {
    const exo_st_tensor *t = NULL;
    exo_status st = checkpoint(b, name, n_dims, shape, &t);
    int32_t buf = -1;
    if (st == EXO_OK) st = add_buffer(b, t->data, t->nbytes, NULL, layer, name, &buf);
    if (st == EXO_OK) st = tensor(b, t->dtype, EXO_TENSOR_WEIGHT, name, n_dims, shape, id);
    if (st == EXO_OK) b->plan->tensors[*id].buffer = buf;
    return st;
}

/* Rows [row0, row0 + rows) of a 2-D weight tensor already in the plan (fused projections). */
static exo_status weight_rows(builder *b, uint32_t whole, int64_t row0, int64_t rows, const char *name,
                              uint32_t *id) {
    exo_tensor w = b->plan->tensors[whole];
    int64_t shape[2] = {rows, w.ne[0]};
    exo_status st = tensor(b, w.dtype, EXO_TENSOR_WEIGHT, name, 2, shape, id);
    if (st != EXO_OK) return st;
    exo_tensor *t = &b->plan->tensors[*id];
    t->buffer = w.buffer;
    t->offset = w.offset + (uint64_t)row0 * (uint64_t)w.ne[0] * exo_dtype_size(w.dtype);
    return EXO_OK;
}

static float to_f32(const void *data, exo_dtype dtype, uint64_t i) {
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

/* A small vector (bias) as an f32 constant, whatever its stored dtype. */
static exo_status vector_f32(builder *b, const char *name, int32_t layer, int64_t n, uint32_t *id) {
    const exo_st_tensor *t = NULL;
    int64_t shape[1] = {n};
    exo_status st = checkpoint(b, name, 1, shape, &t);
    if (st != EXO_OK) return st;
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory converting '%s'", name);
    for (int64_t i = 0; i < n; i++) v[i] = to_f32(t->data, t->dtype, (uint64_t)i);
    int32_t buf = -1;
    st = add_buffer(b, v, (uint64_t)n * sizeof *v, v, layer, name, &buf);
    if (st == EXO_OK) st = tensor(b, EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, name, 1, shape, id);
    if (st == EXO_OK) b->plan->tensors[*id].buffer = buf;
    return st;
}

/* ---------------------------------------------------------------- one decoder layer */

static const char *lname(char *out, size_t size, uint32_t layer, const char *suffix) {
    snprintf(out, size, "model.layers.%u.%s", layer, suffix);
    return out;
}

/* x = matmul(h, W) (+ bias): [tokens][d0] out, or [tokens][d0][d1] when d1 > 0 (q, k and v come
 * out per head: the same bytes as [tokens][d0 x d1], so no reshape copy is needed). */
static exo_status projection(builder *b, uint32_t l, uint32_t h, uint32_t w, const char *bias_name, int64_t d0,
                             int64_t d1, const char *out_name, uint32_t *out) {
    uint32_t bias = NONE;
    exo_status st = EXO_OK;
    if (bias_name) st = vector_f32(b, bias_name, (int32_t)l, d1 > 0 ? d0 * d1 : d0, &bias);
    if (st == EXO_OK) st = activation(b, out_name, d1 > 0 ? 2 : 1, d0, d1, out);
    uint32_t src[3] = {h, w, bias};
    if (st == EXO_OK) st = node(b, EXO_OP_MATMUL, *out, bias == NONE ? 2 : 3, src, NULL, 0, NULL, 0);
    return st;
}

static exo_status rms_norm(builder *b, uint32_t x, uint32_t w, uint32_t n_inner, int64_t d0, int64_t d1,
                           const char *name, uint32_t *out) {
    exo_status st = activation(b, name, n_inner, d0, d1, out);
    int32_t ip[1] = {b->cfg->norm_add_one ? 1 : 0};
    float fp[1] = {b->cfg->rms_norm_eps};
    uint32_t src[2] = {x, w};
    if (st == EXO_OK) st = node(b, EXO_OP_RMS_NORM, *out, 2, src, ip, 1, fp, 1);
    return st;
}

static exo_status layer(builder *b, uint32_t l, uint32_t inv_freq, float rope_factor, uint32_t *x) {
    const exo_model_config *c = b->cfg;
    exo_graph_plan *p = b->plan;
    int64_t H = c->hidden_size, I = c->intermediate_size, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;
    char n1[128], n2[128];
    exo_status st = EXO_OK;
    int64_t vec_h[1] = {H};
    uint32_t w_norm1 = NONE, w_norm2 = NONE, h = NONE, q = NONE, k = NONE, v = NONE;

    st = weight(b, lname(n1, sizeof n1, l, "input_layernorm.weight"), (int32_t)l, 1, vec_h, &w_norm1);
    if (st == EXO_OK) st = rms_norm(b, *x, w_norm1, 1, H, 0, "attn_norm", &h);

    /* q, k, v projections: separate, or phi3's fused qkv_proj split by rows. */
    uint32_t wq = NONE, wk = NONE, wv = NONE;
    if (st == EXO_OK && c->arch == EXO_ARCH_PHI3) {
        uint32_t wqkv;
        int64_t shape[2] = {(nh + 2 * nkv) * hd, H};
        st = weight(b, lname(n1, sizeof n1, l, "self_attn.qkv_proj.weight"), (int32_t)l, 2, shape, &wqkv);
        if (st == EXO_OK) st = weight_rows(b, wqkv, 0, nh * hd, "q_proj", &wq);
        if (st == EXO_OK) st = weight_rows(b, wqkv, nh * hd, nkv * hd, "k_proj", &wk);
        if (st == EXO_OK) st = weight_rows(b, wqkv, (nh + nkv) * hd, nkv * hd, "v_proj", &wv);
    } else if (st == EXO_OK) {
        int64_t sq[2] = {nh * hd, H}, skv[2] = {nkv * hd, H};
        st = weight(b, lname(n1, sizeof n1, l, "self_attn.q_proj.weight"), (int32_t)l, 2, sq, &wq);
        if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "self_attn.k_proj.weight"), (int32_t)l, 2, skv, &wk);
        if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "self_attn.v_proj.weight"), (int32_t)l, 2, skv, &wv);
    }
    bool qkv_bias = c->attention_bias;
    if (st == EXO_OK)
        st = projection(b, l, h, wq, qkv_bias ? lname(n2, sizeof n2, l, "self_attn.q_proj.bias") : NULL, nh, hd, "q", &q);
    if (st == EXO_OK)
        st = projection(b, l, h, wk, qkv_bias ? lname(n2, sizeof n2, l, "self_attn.k_proj.bias") : NULL, nkv, hd, "k", &k);
    if (st == EXO_OK)
        st = projection(b, l, h, wv, qkv_bias ? lname(n2, sizeof n2, l, "self_attn.v_proj.bias") : NULL, nkv, hd, "v", &v);

    if (st == EXO_OK && c->qk_norm) {
        int64_t vec_hd[1] = {hd};
        uint32_t wqn, wkn;
        st = weight(b, lname(n1, sizeof n1, l, "self_attn.q_norm.weight"), (int32_t)l, 1, vec_hd, &wqn);
        if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "self_attn.k_norm.weight"), (int32_t)l, 1, vec_hd, &wkn);
        if (st == EXO_OK) st = rms_norm(b, q, wqn, 2, nh, hd, "q_normed", &q);
        if (st == EXO_OK) st = rms_norm(b, k, wkn, 2, nkv, hd, "k_normed", &k);
    }
    /* RoPE */
    uint32_t qr = NONE, kr = NONE;
    int32_t rope_ip[2] = {EXO_ROPE_NEOX, (int32_t)exo_rope_n_rot(c)};
    float rope_fp[1] = {rope_factor};
    if (st == EXO_OK) st = activation(b, "q_rope", 2, nh, hd, &qr);
    if (st == EXO_OK) st = node(b, EXO_OP_ROPE, qr, 3, (uint32_t[]){q, p->in_positions, inv_freq}, rope_ip, 2, rope_fp, 1);
    if (st == EXO_OK) st = activation(b, "k_rope", 2, nkv, hd, &kr);
    if (st == EXO_OK) st = node(b, EXO_OP_ROPE, kr, 3, (uint32_t[]){k, p->in_positions, inv_freq}, rope_ip, 2, rope_fp, 1);

    /* KV cache and attention */
    uint32_t layer_in_range = l - p->start;
    uint32_t kc = p->kv[2 * layer_in_range], vc = p->kv[2 * layer_in_range + 1];
    uint32_t attn;
    /* KV_WRITE's destination is the cache tensor itself: rows at the tokens' positions. */
    if (st == EXO_OK) st = node(b, EXO_OP_KV_WRITE, kc, 2, (uint32_t[]){kr, p->in_positions}, NULL, 0, NULL, 0);
    if (st == EXO_OK) st = node(b, EXO_OP_KV_WRITE, vc, 2, (uint32_t[]){v, p->in_positions}, NULL, 0, NULL, 0);
    /* qwen2/qwen3 slide only from max_window_layers on; mistral's window covers every layer. */
    uint32_t window = l >= c->sliding_window_first_layer ? c->sliding_window : 0;
    int32_t attn_ip[4] = {(int32_t)nh, (int32_t)nkv, (int32_t)hd, (int32_t)window};
    float attn_fp[2] = {c->attn_scale, c->attn_logit_softcap};
    if (st == EXO_OK) st = activation(b, "attn", 1, nh * hd, 0, &attn);
    if (st == EXO_OK)
        st = node(b, EXO_OP_ATTENTION, attn, 4, (uint32_t[]){qr, kc, vc, p->in_positions}, attn_ip, 4, attn_fp, 2);

    uint32_t wo = NONE, o = NONE, x1 = NONE;
    int64_t so[2] = {H, nh * hd};
    if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "self_attn.o_proj.weight"), (int32_t)l, 2, so, &wo);
    bool o_bias = c->attention_out_bias;
    if (st == EXO_OK)
        st = projection(b, l, attn, wo, o_bias ? lname(n2, sizeof n2, l, "self_attn.o_proj.bias") : NULL, H, 0, "attn_out", &o);
    if (st == EXO_OK) st = activation(b, "residual_attn", 1, H, 0, &x1);
    if (st == EXO_OK) st = node(b, EXO_OP_ADD, x1, 2, (uint32_t[]){*x, o}, NULL, 0, NULL, 0);

    /* MLP */
    uint32_t h2 = NONE, wg = NONE, wu = NONE, wd = NONE, g = NONE, u = NONE, m = NONE, d = NONE, x2 = NONE;
    if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "post_attention_layernorm.weight"), (int32_t)l, 1, vec_h, &w_norm2);
    if (st == EXO_OK) st = rms_norm(b, x1, w_norm2, 1, H, 0, "mlp_norm", &h2);
    if (st == EXO_OK && c->arch == EXO_ARCH_PHI3) {
        uint32_t wgu;
        int64_t shape[2] = {2 * I, H};
        st = weight(b, lname(n1, sizeof n1, l, "mlp.gate_up_proj.weight"), (int32_t)l, 2, shape, &wgu);
        if (st == EXO_OK) st = weight_rows(b, wgu, 0, I, "gate_proj", &wg);
        if (st == EXO_OK) st = weight_rows(b, wgu, I, I, "up_proj", &wu);
    } else if (st == EXO_OK) {
        int64_t shape[2] = {I, H};
        st = weight(b, lname(n1, sizeof n1, l, "mlp.gate_proj.weight"), (int32_t)l, 2, shape, &wg);
        if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "mlp.up_proj.weight"), (int32_t)l, 2, shape, &wu);
    }
    bool mlp_bias = c->mlp_bias;
    if (st == EXO_OK)
        st = projection(b, l, h2, wg, mlp_bias ? lname(n2, sizeof n2, l, "mlp.gate_proj.bias") : NULL, I, 0, "gate", &g);
    if (st == EXO_OK)
        st = projection(b, l, h2, wu, mlp_bias ? lname(n2, sizeof n2, l, "mlp.up_proj.bias") : NULL, I, 0, "up", &u);
    int32_t act[1] = {c->activation};
    if (st == EXO_OK) st = activation(b, "glu", 1, I, 0, &m);
    if (st == EXO_OK) st = node(b, EXO_OP_GLU, m, 2, (uint32_t[]){g, u}, act, 1, NULL, 0);
    int64_t sd[2] = {H, I};
    if (st == EXO_OK) st = weight(b, lname(n1, sizeof n1, l, "mlp.down_proj.weight"), (int32_t)l, 2, sd, &wd);
    if (st == EXO_OK)
        st = projection(b, l, m, wd, mlp_bias ? lname(n2, sizeof n2, l, "mlp.down_proj.bias") : NULL, H, 0, "mlp_out", &d);
    if (st == EXO_OK) st = activation(b, "residual_mlp", 1, H, 0, &x2);
    if (st == EXO_OK) st = node(b, EXO_OP_ADD, x2, 2, (uint32_t[]){x1, d}, NULL, 0, NULL, 0);
    if (st == EXO_OK) *x = x2;
    return st;
}

/* ---------------------------------------------------------------- the whole range */

exo_status exo_graph_plan_build(const exo_model_config *cfg, exo_weights *weights, const char *model_dir,
                                uint32_t start, uint32_t end, exo_graph_ends ends, uint32_t max_tokens,
                                uint32_t max_ctx, exo_graph_plan *out) {
    memset(out, 0, sizeof *out);
    bool embeds = ends.embeds, head = ends.head;
    if (start > end || end > cfg->n_layers)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: layer range [%u, %u) outside the model's %u layers", model_dir,
                          start, end, cfg->n_layers);
    if (start == end && !embeds && !head)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: empty layer range [%u, %u) without embedding or head", model_dir,
                          start, end);
    if (max_tokens == 0 || max_ctx == 0)
        return exo_errorf(EXO_ERR_INVALID_ARG, "%s: max_tokens and max_ctx must be positive", model_dir);
    builder b = {.plan = out, .cfg = cfg, .weights = weights, .dir = model_dir};
    out->start = start;
    out->end = end;
    out->embeds = embeds;
    out->has_head = head;
    out->max_tokens = max_tokens;
    out->max_ctx = max_ctx;
    out->in_tokens = out->in_hidden = out->output = out->in_output_row = NONE;
    out->n_kv = 2 * (end - start);
    out->kv = calloc(out->n_kv ? out->n_kv : 1, sizeof *out->kv);
    if (!out->kv) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the graph");

    int64_t H = cfg->hidden_size, V = cfg->vocab_size;
    int64_t tokens_only[1] = {EXO_DIM_TOKENS};
    exo_status st = tensor(&b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "positions", 1, tokens_only, &out->in_positions);
    for (uint32_t l = start; st == EXO_OK && l < end; l++) {
        int64_t shape[3] = {max_ctx, cfg->n_kv_heads, cfg->head_dim};
        char name[64];
        snprintf(name, sizeof name, "cache_k.%u", l);
        st = tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_KV, name, 3, shape, &out->kv[2 * (l - start)]);
        snprintf(name, sizeof name, "cache_v.%u", l);
        if (st == EXO_OK) st = tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_KV, name, 3, shape, &out->kv[2 * (l - start) + 1]);
    }

    /* RoPE frequencies, shared by every layer. */
    uint32_t inv_freq = NONE;
    float rope_factor = 1.0f;
    uint32_t n_rot = exo_rope_n_rot(cfg);
    if (st == EXO_OK && end > start) {
        float *freq = malloc(((size_t)n_rot / 2 + 1) * sizeof *freq);
        if (!freq) st = exo_errorf(EXO_ERR_NO_MEMORY, "out of memory building the graph");
        int32_t buf = -1;
        if (st == EXO_OK) {
            exo_rope_inv_freq(cfg, freq, n_rot, &rope_factor);
            st = add_buffer(&b, freq, (uint64_t)(n_rot / 2) * sizeof *freq, freq, -1, "rope.inv_freq", &buf);
        }
        int64_t shape[1] = {n_rot / 2};
        if (st == EXO_OK) st = tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, "rope.inv_freq", 1, shape, &inv_freq);
        if (st == EXO_OK) out->tensors[inv_freq].buffer = buf;
    }

    /* Input: token ids through the embedding, or hidden states from the previous shard. */
    uint32_t x = NONE, embed_table = NONE;
    int64_t vh[2] = {V, H};
    if (st == EXO_OK && embeds) {
        st = tensor(&b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "tokens", 1, tokens_only, &out->in_tokens);
        if (st == EXO_OK) st = weight(&b, "model.embed_tokens.weight", -1, 2, vh, &embed_table);
        if (st == EXO_OK) st = activation(&b, "embeddings", 1, H, 0, &x);
        float scale[1] = {cfg->embedding_scale};
        if (st == EXO_OK) st = node(&b, EXO_OP_GET_ROWS, x, 2, (uint32_t[]){embed_table, out->in_tokens}, NULL, 0, scale, 1);
    } else if (st == EXO_OK) {
        int64_t shape[2] = {EXO_DIM_TOKENS, H};
        st = tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_INPUT, "hidden_in", 2, shape, &out->in_hidden);
        x = out->in_hidden;
    }
    for (uint32_t l = start; st == EXO_OK && l < end; l++) st = layer(&b, l, inv_freq, rope_factor, &x);

    if (st == EXO_OK && head) {
        uint32_t w_norm = NONE, normed = NONE, lm_head = NONE, logits = NONE;
        int64_t vec_h[1] = {H};
        int64_t rows = EXO_DIM_TOKENS;
        if (ends.last_row_only) {
            /* Only the selected row goes through the final norm and the (large) lm_head. */
            int64_t one[1] = {1};
            uint32_t row = NONE;
            rows = 1;
            st = tensor(&b, EXO_DTYPE_I32, EXO_TENSOR_INPUT, "output_row", 1, one, &out->in_output_row);
            if (st == EXO_OK) st = activation(&b, "last_hidden", 1, H, 0, &row);
            if (st == EXO_OK) b.plan->tensors[row].ne[1] = 1;
            float unit[1] = {1.0f};
            if (st == EXO_OK) st = node(&b, EXO_OP_GET_ROWS, row, 2, (uint32_t[]){x, out->in_output_row}, NULL, 0, unit, 1);
            x = row;
        }
        if (st == EXO_OK) st = weight(&b, "model.norm.weight", -1, 1, vec_h, &w_norm);
        if (st == EXO_OK) st = rms_norm(&b, x, w_norm, 1, H, 0, "final_norm", &normed);
        if (st == EXO_OK) b.plan->tensors[normed].ne[1] = rows;
        if (st == EXO_OK) {
            if (cfg->tie_word_embeddings && !exo_weights_has(weights, "lm_head.weight")) {
                if (embed_table == NONE) st = weight(&b, "model.embed_tokens.weight", -1, 2, vh, &embed_table);
                lm_head = embed_table;
            } else {
                st = weight(&b, "lm_head.weight", -1, 2, vh, &lm_head);
            }
        }
        int64_t shape[2] = {rows, V};
        bool softcap = cfg->final_logit_softcap > 0.0f;
        if (st == EXO_OK) st = tensor(&b, EXO_DTYPE_F32, softcap ? 0 : EXO_TENSOR_OUTPUT, "logits", 2, shape, &logits);
        if (st == EXO_OK) st = node(&b, EXO_OP_MATMUL, logits, 2, (uint32_t[]){normed, lm_head}, NULL, 0, NULL, 0);
        if (st == EXO_OK && softcap) {
            uint32_t capped;
            float cap[1] = {cfg->final_logit_softcap};
            st = tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, "logits_capped", 2, shape, &capped);
            if (st == EXO_OK) st = node(&b, EXO_OP_SOFTCAP, capped, 1, (uint32_t[]){logits}, NULL, 0, cap, 1);
            logits = capped;
        }
        out->output = logits;
    } else if (st == EXO_OK) {
        /* Hidden states out: a copy, so the output binding never aliases an input. */
        int64_t shape[2] = {EXO_DIM_TOKENS, H};
        st = tensor(&b, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, "hidden_out", 2, shape, &out->output);
        if (st == EXO_OK) st = node(&b, EXO_OP_COPY, out->output, 1, (uint32_t[]){x}, NULL, 0, NULL, 0);
    }
    if (st != EXO_OK) exo_graph_plan_free(out);
    return st;
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
    free(plan->nodes);
    free(plan->kv);
    memset(plan, 0, sizeof *plan);
}

void exo_graph_plan_view(const exo_graph_plan *plan, exo_buffer *const *buffers, exo_graph *out) {
    memset(out, 0, sizeof *out);
    EXO_ABI_STRUCT_INIT(out);
    out->n_tensors = plan->n_tensors;
    out->tensors = plan->tensors;
    out->n_nodes = plan->n_nodes;
    out->nodes = plan->nodes;
    out->n_buffers = plan->n_buffers;
    out->buffers = buffers;
    out->max_tokens = plan->max_tokens;
}
