/* graph_node_rules.c — each op's contract (see graph_node_rules.h): operand count, dtypes,
 * element counts and parameters, as abi/exo_plugin.h defines them, narrowed by what the
 * target's kernels read (graph_target.dtypes, max_head_dim). */
#include "graph_node_rules.h"

#include "graph_ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct node_ctx {
    const graph_target *tg;
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
    const exo_tensor *d = exo_graph_tensor(n->g, n->node->dst);
    return graph_fail(n->tg, st, "graph: node %u (%s -> '%.*s'), %u tokens: %s", n->index, graph_op_name(n->node->op),
                      GRAPH_NAME_ARG(d), n->n_tokens, msg);
}

static const exo_tensor *src_tensor(const node_ctx *n, uint32_t s) { return exo_graph_tensor(n->g, n->node->src[s]); }

static int64_t nelem(const node_ctx *n, const exo_tensor *t, int64_t ne[EXO_MAX_DIMS]) {
    int64_t tmp[EXO_MAX_DIMS];
    return graph_resolve_shape(t, n->n_tokens, ne ? ne : tmp);
}

/* Fails unless tensor `t` (described as `role`) has one of the dtypes in `mask`. */
static exo_status want_dtype(const node_ctx *n, const exo_tensor *t, const char *role, uint32_t mask) {
    if (mask & GRAPH_DTYPE_BIT(t->dtype)) return EXO_OK;
    char allowed[64] = "";
    for (int d = 0; d < EXO_DTYPE_COUNT; d++)
        if (mask & GRAPH_DTYPE_BIT(d)) {
            if (allowed[0]) strncat(allowed, "/", sizeof allowed - strlen(allowed) - 1);
            strncat(allowed, exo_dtype_name(d), sizeof allowed - strlen(allowed) - 1);
        }
    return node_fail(n, EXO_ERR_UNSUPPORTED, "%s '%.*s' has dtype %s; supported: %s", role, GRAPH_NAME_ARG(t),
                     exo_dtype_name(t->dtype), allowed[0] ? allowed : "none on this device");
}

static exo_status want_count(const node_ctx *n, const exo_tensor *t, const char *role, int64_t expected,
                             const char *why) {
    int64_t got = nelem(n, t, NULL);
    if (got == expected) return EXO_OK;
    return node_fail(n, EXO_ERR_INVALID_ARG, "%s '%.*s' has %lld elements; expected %lld (%s)", role, GRAPH_NAME_ARG(t),
                     (long long)got, (long long)expected, why);
}

#define M(d) GRAPH_DTYPE_BIT(EXO_DTYPE_##d)
#define FLOATS (M(F32) | M(F16) | M(BF16))
/* Operands the IR lets come in several dtypes, narrowed to what the target's kernels read. */
#define READABLE(n, mask) ((mask) & (n)->tg->dtypes)
#define TRY(expr)                                   \
    do {                                            \
        exo_status st_ = (expr);                    \
        if (st_ != EXO_OK) return st_;              \
    } while (0)

static exo_status check_get_rows(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *table = src_tensor(n, 0), *ids = src_tensor(n, 1);
    TRY(want_dtype(n, table, "table", READABLE(n, FLOATS | M(Q8_0) | M(MLX_AFFINE))));
    TRY(want_dtype(n, ids, "ids", M(I32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    nelem(n, table, ne);
    TRY(want_count(n, dst, "dst", nelem(n, ids, NULL) * ne[0], "tokens x table width"));
    if (!isfinite(n->node->f[EXO_GET_ROWS_F_SCALE]))
        return node_fail(n, EXO_ERR_INVALID_ARG, "scale f[0] is not finite");
    return EXO_OK;
}

static exo_status check_rms_norm(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0), *w = src_tensor(n, 1);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, w, "weight", READABLE(n, FLOATS)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, x, ne);
    TRY(want_count(n, w, "weight", ne[0], "x's ne[0]"));
    TRY(want_count(n, dst, "dst", count, "same as x"));
    float eps = n->node->f[EXO_RMS_NORM_F_EPS];
    int32_t add_one = n->node->i[EXO_RMS_NORM_I_ADD_ONE];
    if (!(eps >= 0.0f) || !isfinite(eps))
        return node_fail(n, EXO_ERR_INVALID_ARG, "eps f[0] = %g must be finite and >= 0", (double)eps);
    if (add_one != 0 && add_one != 1)
        return node_fail(n, EXO_ERR_INVALID_ARG, "i[0] = %d must be 0 (w) or 1 (1 + w)", add_one);
    return EXO_OK;
}

static exo_status check_matmul(const node_ctx *n, const exo_tensor *dst) {
    if (n->node->n_src != 2 && n->node->n_src != 3)
        return node_fail(n, EXO_ERR_INVALID_ARG, "needs 2 or 3 sources (x, W[, bias]), has %u", n->node->n_src);
    const exo_tensor *x = src_tensor(n, 0), *w = src_tensor(n, 1);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, w, "weight", READABLE(n, FLOATS | M(Q8_0) | M(MLX_AFFINE))));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t wne[EXO_MAX_DIMS], xne[EXO_MAX_DIMS];
    int64_t w_count = nelem(n, w, wne), x_count = nelem(n, x, xne);
    int64_t k = wne[0], cols = w_count / k;
    if (xne[0] != k)
        return node_fail(n, EXO_ERR_INVALID_ARG, "x '%.*s' has ne[0] = %lld but weight '%.*s' has K = %lld",
                         GRAPH_NAME_ARG(x), (long long)xne[0], GRAPH_NAME_ARG(w), (long long)k);
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
    TRY(want_dtype(n, b, "b", READABLE(n, FLOATS)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, a, ne), b_count = nelem(n, b, NULL);
    if (b_count != count && b_count != ne[0])
        return node_fail(n, EXO_ERR_INVALID_ARG, "b '%.*s' has %lld elements; expected %lld (same as a) or %lld (one row)",
                         GRAPH_NAME_ARG(b), (long long)b_count, (long long)count, (long long)ne[0]);
    return want_count(n, dst, "dst", count, "same as a");
}

/* The ABI 1.5 additions (gpt_oss, glm4_moe) run only where the target's kernels say so
 * (graph_target.moe_1_5); elsewhere the node is refused naming the feature, and the core falls
 * back to a device that runs it. */
static exo_status want_1_5(const node_ctx *n, const char *feature) {
    if (n->tg->moe_1_5) return EXO_OK;
    return node_fail(n, EXO_ERR_UNSUPPORTED, "%s (ABI 1.5) has no kernels on this device", feature);
}

static exo_status check_glu(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *gate = src_tensor(n, 0), *up = src_tensor(n, 1);
    TRY(want_dtype(n, gate, "gate", M(F32)));
    TRY(want_dtype(n, up, "up", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t count = nelem(n, gate, NULL);
    TRY(want_count(n, up, "up", count, "same as gate"));
    TRY(want_count(n, dst, "dst", count, "same as gate"));
    int32_t act = n->node->i[EXO_GLU_I_ACT];
    if (act == EXO_ACT_SWIGLU_CLAMP) {
        TRY(want_1_5(n, "activation EXO_ACT_SWIGLU_CLAMP (i[0] = 2)"));
        float alpha = n->node->f[EXO_GLU_F_ALPHA], limit = n->node->f[EXO_GLU_F_LIMIT];
        if (!isfinite(alpha) || !isfinite(limit) || !(limit > 0))
            return node_fail(n, EXO_ERR_INVALID_ARG, "SWIGLU_CLAMP alpha f[0] = %g and limit f[1] = %g must be finite, "
                             "limit > 0", (double)alpha, (double)limit);
        return EXO_OK;
    }
    if (act != EXO_ACT_SILU && act != EXO_ACT_GELU_TANH)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "unknown activation i[0] = %d", act);
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
                         GRAPH_NAME_ARG(x), (long long)count, (long long)tokens, (long long)head_dim);
    int32_t mode = n->node->i[EXO_ROPE_I_MODE], n_rot = n->node->i[EXO_ROPE_I_N_ROT];
    if (mode != EXO_ROPE_NORMAL && mode != EXO_ROPE_NEOX)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "unknown rope mode i[0] = %d", mode);
    if (n_rot < 2 || n_rot % 2 != 0 || n_rot > head_dim)
        return node_fail(n, EXO_ERR_INVALID_ARG, "n_rot i[1] = %d must be even and in 2..head_dim (%lld)", n_rot,
                         (long long)head_dim);
    TRY(want_count(n, freq, "inv_freq", n_rot / 2, "n_rot / 2"));
    TRY(want_count(n, dst, "dst", count, "same as x"));
    if (!isfinite(n->node->f[EXO_ROPE_F_ATTN_FACTOR]))
        return node_fail(n, EXO_ERR_INVALID_ARG, "attention factor f[0] is not finite");
    return EXO_OK;
}

/* A cache is [ctx][row]: its outermost dim is the context length. */
/* A cache is [ctx][row] or, pooled (ABI 1.6), [slots][ctx][row]: returns ctx and sets the row
 * size and the slot count (1 unpooled). */
static int64_t cache_rows(const node_ctx *n, const exo_tensor *t, int64_t *row_size, int64_t *slots) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, t, ne);
    bool pooled = t->n_dims == 4;
    int64_t rows = ne[pooled ? 2 : t->n_dims - 1];
    *slots = pooled ? ne[3] : 1;
    *row_size = count / (rows * *slots);
    return rows;
}

/* The slots source of a pooled node: I32, one per token, and a target whose kernels take it. */
static exo_status check_slots(const node_ctx *n, uint32_t s, const exo_tensor *pos) {
    const exo_tensor *slots = src_tensor(n, s);
    if (!n->tg->kv_pool)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "pooled KV caches (ABI 1.6) have no kernels on this device");
    TRY(want_dtype(n, slots, "slots", M(I32)));
    return want_count(n, slots, "slots", nelem(n, pos, NULL), "one per token");
}

/* The dtypes a KV cache may have on this target: F32, and the 16-bit floats its kernels declare
 * (ABI 1.7, "KV cache dtypes"). */
#define KV_DTYPES(n) (M(F32) | ((n)->tg->kv_dtypes & (M(BF16) | M(F16))))

static exo_status check_kv_write(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *src = src_tensor(n, 0), *pos = src_tensor(n, 1);
    if (!(dst->flags & EXO_TENSOR_KV))
        return node_fail(n, EXO_ERR_INVALID_ARG, "dst '%.*s' is not a KV tensor", GRAPH_NAME_ARG(dst));
    TRY(want_dtype(n, dst, "cache", KV_DTYPES(n)));
    TRY(want_dtype(n, src, "src", M(F32)));
    TRY(want_dtype(n, pos, "positions", M(I32)));
    bool pooled = dst->n_dims == 4;
    if (n->node->n_src != (pooled ? 3u : 2u))
        return node_fail(n, EXO_ERR_INVALID_ARG, "cache '%.*s' is %u-D: needs %u sources, has %u", GRAPH_NAME_ARG(dst),
                         dst->n_dims, pooled ? 3u : 2u, n->node->n_src);
    if (pooled) TRY(check_slots(n, 2, pos));
    int64_t row, slots;
    cache_rows(n, dst, &row, &slots);
    return want_count(n, src, "src", nelem(n, pos, NULL) * row, "tokens x cache row");
}

static exo_status check_attention(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *q = src_tensor(n, 0), *k = src_tensor(n, 1), *v = src_tensor(n, 2), *pos = src_tensor(n, 3);
    TRY(want_dtype(n, q, "q", M(F32)));
    TRY(want_dtype(n, k, "k cache", KV_DTYPES(n)));
    TRY(want_dtype(n, v, "v cache", KV_DTYPES(n)));
    if (k->dtype != v->dtype)
        return node_fail(n, EXO_ERR_INVALID_ARG, "k cache '%.*s' is %s and v cache '%.*s' %s: both must be one dtype",
                         GRAPH_NAME_ARG(k), exo_dtype_name(k->dtype), GRAPH_NAME_ARG(v), exo_dtype_name(v->dtype));
    TRY(want_dtype(n, pos, "positions", M(I32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int32_t heads = n->node->i[EXO_ATTENTION_I_N_HEADS], kv_heads = n->node->i[EXO_ATTENTION_I_N_KV_HEADS];
    int32_t head_dim = n->node->i[EXO_ATTENTION_I_HEAD_DIM], window = n->node->i[EXO_ATTENTION_I_WINDOW];
    if (heads < 1 || kv_heads < 1 || head_dim < 1 || heads % kv_heads != 0)
        return node_fail(n, EXO_ERR_INVALID_ARG,
                         "n_heads i[0] = %d, n_kv_heads i[1] = %d, head_dim i[2] = %d: all must be >= 1 and n_kv_heads "
                         "must divide n_heads",
                         heads, kv_heads, head_dim);
    uint32_t max_head_dim = n->tg->max_head_dim;
    if (max_head_dim && (uint32_t)head_dim > max_head_dim)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "head_dim i[2] = %d exceeds the kernels' %u", head_dim, max_head_dim);
    if (window < 0) return node_fail(n, EXO_ERR_INVALID_ARG, "window i[3] = %d is negative", window);
    float scale = n->node->f[EXO_ATTENTION_F_SCALE], cap = n->node->f[EXO_ATTENTION_F_SOFTCAP];
    if (!isfinite(scale)) return node_fail(n, EXO_ERR_INVALID_ARG, "scale f[0] is not finite");
    if (!isfinite(cap) || cap < 0)
        return node_fail(n, EXO_ERR_INVALID_ARG, "softcap f[1] = %g must be finite and >= 0", (double)cap);
    int64_t tokens = nelem(n, pos, NULL), q_row = (int64_t)heads * head_dim, kv_row = (int64_t)kv_heads * head_dim;
    TRY(want_count(n, q, "q", tokens * q_row, "tokens x n_heads x head_dim"));
    TRY(want_count(n, dst, "dst", tokens * q_row, "tokens x n_heads x head_dim"));
    int64_t k_row, v_row, k_slots, v_slots;
    int64_t k_rows = cache_rows(n, k, &k_row, &k_slots), v_rows = cache_rows(n, v, &v_row, &v_slots);
    bool pooled = k->n_dims == 4;
    if (pooled != (v->n_dims == 4) || k_slots != v_slots)
        return node_fail(n, EXO_ERR_INVALID_ARG, "k '%.*s' is %u-D with %lld slots and v '%.*s' %u-D with %lld: both "
                         "pooled (4-D) with one slot count, or neither", GRAPH_NAME_ARG(k), k->n_dims,
                         (long long)k_slots, GRAPH_NAME_ARG(v), v->n_dims, (long long)v_slots);
    uint32_t base = 4 + (pooled ? 1u : 0u);
    if (n->node->n_src != base && n->node->n_src != base + 1)
        return node_fail(n, EXO_ERR_INVALID_ARG, "caches are %s: needs %u sources (or one more for sinks), has %u",
                         pooled ? "pooled (4-D)" : "3-D", base, n->node->n_src);
    if (pooled) TRY(check_slots(n, n->node->n_src - 1, pos));
    if (k_row != kv_row || v_row != kv_row || k_rows != v_rows)
        return node_fail(n, EXO_ERR_INVALID_ARG,
                         "k '%.*s' is [%lld][%lld] and v '%.*s' is [%lld][%lld]; both must be [ctx][n_kv_heads x "
                         "head_dim = %lld]",
                         GRAPH_NAME_ARG(k), (long long)k_rows, (long long)k_row, GRAPH_NAME_ARG(v), (long long)v_rows,
                         (long long)v_row, (long long)kv_row);
    if (n->node->n_src == base + 1) {
        const exo_tensor *sinks = src_tensor(n, 4);
        TRY(want_1_5(n, "attention sinks (src[4])"));
        TRY(want_dtype(n, sinks, "sinks", M(F32)));
        TRY(want_count(n, sinks, "sinks", heads, "one per head"));
    }
    return EXO_OK;
}

static exo_status check_softcap(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    float cap = n->node->f[EXO_SOFTCAP_F_CAP];
    if (!(cap > 0) || !isfinite(cap))
        return node_fail(n, EXO_ERR_INVALID_ARG, "cap f[0] = %g must be finite and > 0", (double)cap);
    return want_count(n, dst, "dst", nelem(n, x, NULL), "same as x");
}

/* A same-dtype copy moves bytes (any dtype the kernels read); a converting copy widens a float
 * type to F32. */
static exo_status check_copy(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0);
    if (x->dtype == dst->dtype) {
        TRY(want_dtype(n, x, "src", READABLE(n, GRAPH_DTYPES_ALL)));
    } else {
        TRY(want_dtype(n, x, "src (converting copy)", READABLE(n, FLOATS)));
        TRY(want_dtype(n, dst, "dst (converting copy)", M(F32)));
    }
    return want_count(n, dst, "dst", nelem(n, x, NULL), "same as src");
}

/* ---- mixture of experts (ABI 1.4) */

/* [T, k] of an ids or weights operand: *k from its ne[0], its count a multiple of it. */
static exo_status want_token_slots(const node_ctx *n, const exo_tensor *t, const char *role, int64_t k) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, t, ne);
    if (ne[0] != k || count != (int64_t)n->n_tokens * k)
        return node_fail(n, EXO_ERR_INVALID_ARG, "%s '%.*s' has ne[0] = %lld and %lld elements; expected [tokens = %u, k = %lld]",
                         role, GRAPH_NAME_ARG(t), (long long)ne[0], (long long)count, n->n_tokens, (long long)k);
    return EXO_OK;
}

static exo_status want_rule(const node_ctx *n, int32_t rule, const char *slot) {
    if (rule == EXO_MOE_RULE_SIGMOID_BIAS) return want_1_5(n, "routing rule SIGMOID_BIAS");
    if (rule == EXO_MOE_RULE_TOPK_SOFTMAX) return want_1_5(n, "routing rule TOPK_SOFTMAX");
    if (rule != EXO_MOE_RULE_SOFTMAX)
        return node_fail(n, EXO_ERR_UNSUPPORTED, "routing rule %s = %d is not supported (0 softmax, 1 sigmoid_bias, "
                         "2 topk_softmax are)", slot, rule);
    return EXO_OK;
}

static exo_status check_moe_topk(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *scores = src_tensor(n, 0);
    TRY(want_dtype(n, scores, "scores", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(I32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, scores, ne), experts = ne[0];
    if (count != (int64_t)n->n_tokens * experts)
        return node_fail(n, EXO_ERR_INVALID_ARG, "scores '%.*s' (%lld elements) is not [tokens][experts = %lld]",
                         GRAPH_NAME_ARG(scores), (long long)count, (long long)experts);
    int32_t k = n->node->i[EXO_MOE_TOPK_I_K];
    if (k < 1 || k > experts)
        return node_fail(n, EXO_ERR_INVALID_ARG, "k i[0] = %d must be in 1..experts (%lld)", k, (long long)experts);
    int32_t rule = n->node->i[EXO_MOE_TOPK_I_RULE];
    TRY(want_rule(n, rule, "i[1]"));
    /* Only SIGMOID_BIAS ranks with a bias, and it needs one. */
    if ((rule == EXO_MOE_RULE_SIGMOID_BIAS) != (n->node->n_src == 2))
        return node_fail(n, EXO_ERR_INVALID_ARG, "routing rule i[1] = %d takes %s; the node has %u sources", rule,
                         rule == EXO_MOE_RULE_SIGMOID_BIAS ? "2 sources (scores, bias)" : "1 source (scores)",
                         n->node->n_src);
    if (n->node->n_src == 2) {
        const exo_tensor *bias = src_tensor(n, 1);
        TRY(want_dtype(n, bias, "selection bias", M(F32)));
        TRY(want_count(n, bias, "selection bias", experts, "one per expert"));
    }
    return want_token_slots(n, dst, "dst", k);
}

static exo_status check_moe_weights(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *scores = src_tensor(n, 0), *ids = src_tensor(n, 1);
    TRY(want_dtype(n, scores, "scores", M(F32)));
    TRY(want_dtype(n, ids, "ids", M(I32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t ne[EXO_MAX_DIMS], ine[EXO_MAX_DIMS];
    int64_t count = nelem(n, scores, ne);
    nelem(n, ids, ine);
    if (count != (int64_t)n->n_tokens * ne[0])
        return node_fail(n, EXO_ERR_INVALID_ARG, "scores '%.*s' (%lld elements) is not [tokens][experts = %lld]",
                         GRAPH_NAME_ARG(scores), (long long)count, (long long)ne[0]);
    if (ine[0] < 1 || ine[0] > ne[0])
        return node_fail(n, EXO_ERR_INVALID_ARG, "ids '%.*s' has k = %lld; expected 1..experts (%lld)", GRAPH_NAME_ARG(ids),
                         (long long)ine[0], (long long)ne[0]);
    TRY(want_token_slots(n, ids, "ids", ine[0]));
    TRY(want_token_slots(n, dst, "dst", ine[0]));
    int32_t rule = n->node->i[EXO_MOE_WEIGHTS_I_RULE];
    TRY(want_rule(n, rule, "i[0]"));
    int32_t norm = n->node->i[EXO_MOE_WEIGHTS_I_NORMALIZE];
    if (norm != 0 && norm != 1) return node_fail(n, EXO_ERR_INVALID_ARG, "normalize i[1] = %d must be 0 or 1", norm);
    if (rule == EXO_MOE_RULE_TOPK_SOFTMAX && norm)
        return node_fail(n, EXO_ERR_INVALID_ARG, "normalize i[1] must be 0 with rule TOPK_SOFTMAX (its k weights "
                         "already sum to 1)");
    float scale = n->node->f[EXO_MOE_WEIGHTS_F_SCALE];
    if (!isfinite(scale) || scale == 0.0f)
        return node_fail(n, EXO_ERR_INVALID_ARG, "scale f[0] = %g must be finite and non-zero (1 = none)", (double)scale);
    return EXO_OK;
}

static exo_status check_moe_matmul(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0), *ids = src_tensor(n, 1), *w0 = src_tensor(n, 2);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, ids, "ids", M(I32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int32_t experts = n->node->i[EXO_MOE_MATMUL_I_N_EXPERTS];
    if (experts < 1) return node_fail(n, EXO_ERR_INVALID_ARG, "n_experts i[0] = %d must be >= 1", experts);
    if (!(w0->flags & EXO_TENSOR_WEIGHT))
        return node_fail(n, EXO_ERR_INVALID_ARG, "experts' weight '%.*s' is not a WEIGHT tensor", GRAPH_NAME_ARG(w0));
    int64_t k_in = w0->ne[0], rows = w0->ne[1];
    if (w0->n_dims == 3) { /* stacked [E, N, K]; MLX_AFFINE: scales/biases [E, N, K / group] (check_quant) */
        TRY(want_dtype(n, w0, "experts' weight", READABLE(n, FLOATS | M(MLX_AFFINE))));
        if (w0->ne[2] != experts)
            return node_fail(n, EXO_ERR_INVALID_ARG, "stacked weight '%.*s' holds %lld experts; n_experts i[0] = %d",
                             GRAPH_NAME_ARG(w0), (long long)w0->ne[2], experts);
    } else if (w0->n_dims == 2) { /* a table of E 2-D weights with consecutive ids */
        if ((uint64_t)n->node->src[2] + (uint64_t)experts > n->g->n_tensors)
            return node_fail(n, EXO_ERR_INVALID_ARG, "the expert table from tensor %u holds %d entries, past the graph's %u tensors",
                             n->node->src[2], experts, n->g->n_tensors);
        for (int32_t e = 0; e < experts; e++) {
            const exo_tensor *w = exo_graph_tensor(n->g, n->node->src[2] + (uint32_t)e);
            TRY(want_dtype(n, w, "expert weight", READABLE(n, FLOATS | M(Q8_0) | M(MLX_AFFINE))));
            if (!(w->flags & EXO_TENSOR_WEIGHT) || w->n_dims != 2 || w->ne[0] != k_in || w->ne[1] != rows ||
                w->dtype != w0->dtype)
                return node_fail(n, EXO_ERR_INVALID_ARG,
                                 "expert %d's weight '%.*s' (tensor %u) is not a 2-D WEIGHT of expert 0's dtype %s and "
                                 "shape [%lld, %lld]",
                                 e, GRAPH_NAME_ARG(w), n->node->src[2] + (uint32_t)e, exo_dtype_name(w0->dtype),
                                 (long long)rows, (long long)k_in);
        }
    } else {
        return node_fail(n, EXO_ERR_INVALID_ARG, "experts' weight '%.*s' has %u dims; expected 2 (a table) or 3 (stacked)",
                         GRAPH_NAME_ARG(w0), w0->n_dims);
    }
    int64_t ine[EXO_MAX_DIMS], xne[EXO_MAX_DIMS];
    nelem(n, ids, ine);
    int64_t slots = ine[0], x_count = nelem(n, x, xne);
    TRY(want_token_slots(n, ids, "ids", slots));
    if (xne[0] != k_in)
        return node_fail(n, EXO_ERR_INVALID_ARG, "x '%.*s' has ne[0] = %lld but the experts' K is %lld", GRAPH_NAME_ARG(x),
                         (long long)xne[0], (long long)k_in);
    int64_t tokens = n->n_tokens;
    if (x_count != tokens * k_in && x_count != tokens * slots * k_in)
        return node_fail(n, EXO_ERR_INVALID_ARG, "x '%.*s' has %lld elements; expected [tokens, K] or [tokens, k, K]",
                         GRAPH_NAME_ARG(x), (long long)x_count);
    if (n->node->n_src == 4) {
        const exo_tensor *bias = src_tensor(n, 3);
        TRY(want_1_5(n, "expert bias (src[3])"));
        TRY(want_dtype(n, bias, "expert bias", M(F32)));
        int64_t bne[EXO_MAX_DIMS];
        int64_t b_count = nelem(n, bias, bne);
        if (bne[0] != rows || b_count != (int64_t)experts * rows)
            return node_fail(n, EXO_ERR_INVALID_ARG, "expert bias '%.*s' has ne[0] = %lld and %lld elements; expected "
                             "[E = %d, N = %lld]", GRAPH_NAME_ARG(bias), (long long)bne[0], (long long)b_count, experts,
                             (long long)rows);
    }
    return want_count(n, dst, "dst", tokens * slots * rows, "tokens x k x N");
}

static exo_status check_moe_combine(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *y = src_tensor(n, 0), *w = src_tensor(n, 1);
    TRY(want_dtype(n, y, "y", M(F32)));
    TRY(want_dtype(n, w, "weights", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(F32)));
    int64_t wne[EXO_MAX_DIMS], yne[EXO_MAX_DIMS];
    nelem(n, w, wne);
    int64_t slots = wne[0], y_count = nelem(n, y, yne);
    TRY(want_token_slots(n, w, "weights", slots));
    if (y_count != (int64_t)n->n_tokens * slots * yne[0])
        return node_fail(n, EXO_ERR_INVALID_ARG, "y '%.*s' (%lld elements) is not [tokens][k = %lld][%lld]",
                         GRAPH_NAME_ARG(y), (long long)y_count, (long long)slots, (long long)yne[0]);
    return want_count(n, dst, "dst", (int64_t)n->n_tokens * yne[0], "tokens x N");
}

/* Rows of any count (the token rows, or a head's selected rows): dst holds one index a row. */
static exo_status check_argmax(const node_ctx *n, const exo_tensor *dst) {
    const exo_tensor *x = src_tensor(n, 0);
    TRY(want_dtype(n, x, "x", M(F32)));
    TRY(want_dtype(n, dst, "dst", M(I32)));
    int64_t ne[EXO_MAX_DIMS];
    int64_t count = nelem(n, x, ne);
    if (ne[0] < 1 || count % ne[0])
        return node_fail(n, EXO_ERR_INVALID_ARG, "x '%.*s' (%lld elements) is not [rows][%lld]", GRAPH_NAME_ARG(x),
                         (long long)count, (long long)ne[0]);
    return want_count(n, dst, "dst", count / ne[0], "one index per row of x");
}

exo_status graph_check_node(const graph_target *target, const exo_graph *g, uint32_t index, uint32_t n_tokens) {
    node_ctx n = {target, g, index, exo_graph_node(g, index), n_tokens};
    static const uint32_t n_src[EXO_OP_COUNT] = {2, 2, 2, 2, 2, 2, 3, 2, 4, 1, 1, 1, 2, 3, 2, 1};
    const exo_node *nd = n.node;
    const exo_tensor *dst = exo_graph_tensor(g, nd->dst);
    /* One optional source (1.5): ATTENTION's sinks, MOE_TOPK's selection bias, MOE_MATMUL's bias;
     * (1.6) the slots of KV_WRITE and ATTENTION over pooled caches, checked with the caches. */
    bool optional = nd->op == EXO_OP_ATTENTION || nd->op == EXO_OP_MOE_TOPK || nd->op == EXO_OP_MOE_MATMUL ||
                    nd->op == EXO_OP_KV_WRITE;
    uint32_t extra = nd->op == EXO_OP_ATTENTION ? 2 : 1;
    if (nd->op != EXO_OP_MATMUL && nd->n_src != n_src[nd->op] &&
        !(optional && nd->n_src > n_src[nd->op] && nd->n_src <= n_src[nd->op] + extra))
        return node_fail(&n, EXO_ERR_INVALID_ARG, "needs %u%s sources, has %u", n_src[nd->op],
                         optional ? (extra > 1 ? " to two more" : " or one more") : "", nd->n_src);
    if (dst->flags & (EXO_TENSOR_INPUT | EXO_TENSOR_WEIGHT))
        return node_fail(&n, EXO_ERR_INVALID_ARG, "dst is an %s tensor, which nodes cannot write",
                         dst->flags & EXO_TENSOR_INPUT ? "INPUT" : "WEIGHT");
    if ((dst->flags & EXO_TENSOR_KV) && nd->op != EXO_OP_KV_WRITE)
        return node_fail(&n, EXO_ERR_INVALID_ARG, "only KV_WRITE may write the KV tensor");
    for (uint32_t s = 0; s < nd->n_src; s++)
        if (nd->src[s] == nd->dst)
            return node_fail(&n, EXO_ERR_INVALID_ARG, "source %u is also the destination", s);
    if (nd->op >= EXO_OP_MOE_TOPK && nd->op <= EXO_OP_MOE_COMBINE && !target->moe)
        return node_fail(&n, EXO_ERR_UNSUPPORTED, "the mixture-of-experts ops have no kernels on this device");
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
    case EXO_OP_MOE_TOPK: return check_moe_topk(&n, dst);
    case EXO_OP_MOE_WEIGHTS: return check_moe_weights(&n, dst);
    case EXO_OP_MOE_MATMUL: return check_moe_matmul(&n, dst);
    case EXO_OP_MOE_COMBINE: return check_moe_combine(&n, dst);
    case EXO_OP_ARGMAX: return check_argmax(&n, dst);
    default: return node_fail(&n, EXO_ERR_UNSUPPORTED, "unknown op");
    }
}
