/* plugins/graph_common: what the CPU and GPU targets differ in (graph_target.h) changes exactly
 * what it should, messages carry the target's name, and the scratch planner honours its
 * alignment and shares memory between tensors whose lifetimes do not overlap. The plugins' own
 * suites (test_cpu_graph_errors, the OpenCL and Level Zero runs) cover the IR contract itself. */
#include "graph_bindings.h"
#include "graph_ir.h"
#include "graph_validate.h"
#include "scratch_plan.h"
#include "test_host.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define T EXO_DIM_TOKENS
enum { K = 64, N = 8, MAX_TOKENS = 4 };

/* This test's buffers: a size, the address offsets count from, and whether "we" made it. */
struct exo_buffer {
    uint64_t size;
    uintptr_t base;
    bool ours;
};

static bool span_of(const void *user, exo_buffer *buf, uint64_t *size, uintptr_t *base) {
    (void)user;
    *size = buf->size;
    *base = buf->base;
    return buf->ours;
}

typedef struct fixture {
    exo_test_host host;
    graph_target target;
    exo_tensor tensors[8];
    exo_node nodes[4];
    uint32_t n_tensors, n_nodes;
    exo_buffer weights;
    exo_buffer *buffers[1];
} fixture;

static void fx_init(fixture *fx, uint32_t dtypes) {
    memset(fx, 0, sizeof *fx);
    exo_test_host_init(&fx->host);
    fx->target = (graph_target){.name = "testdev", .host = &fx->host.api, .dtypes = dtypes, .buffer_span = span_of};
    fx->weights = (exo_buffer){.size = 1 << 20, .base = 0, .ours = true};
    fx->buffers[0] = &fx->weights;
}

static uint32_t add_tensor(fixture *fx, const char *name, exo_dtype dtype, uint32_t flags, int64_t ne0, int64_t ne1) {
    uint32_t id = fx->n_tensors++;
    exo_tensor *t = &fx->tensors[id];
    t->id = id;
    t->dtype = dtype;
    t->flags = flags;
    t->n_dims = 2;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->buffer = flags & EXO_TENSOR_WEIGHT ? 0 : -1;
    strncpy(t->name, name, sizeof t->name - 1);
    return id;
}

static exo_node *add_node(fixture *fx, exo_op op, uint32_t dst, uint32_t n_src, const uint32_t *src) {
    exo_node *nd = &fx->nodes[fx->n_nodes++];
    nd->op = op;
    nd->dst = dst;
    nd->n_src = n_src;
    memcpy(nd->src, src, n_src * sizeof *src);
    return nd;
}

static exo_graph graph_of(fixture *fx) {
    exo_graph g;
    memset(&g, 0, sizeof g);
    EXO_STRUCT_INIT(&g);
    g.n_tensors = fx->n_tensors;
    g.tensors = fx->tensors;
    g.n_nodes = fx->n_nodes;
    g.nodes = fx->nodes;
    g.n_buffers = 1;
    g.buffers = fx->buffers;
    g.max_tokens = MAX_TOKENS;
    g.tensor_stride = (uint32_t)sizeof(exo_tensor); /* the writer's element sizes (ABI 1.2+) */
    g.node_stride = (uint32_t)sizeof(exo_node);
    return g;
}

/* x [K, T] @ W [K, N] -> y [N, T]; returns W's id. */
static uint32_t build_matmul(fixture *fx, exo_dtype weight_dtype) {
    uint32_t x = add_tensor(fx, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, K, T);
    uint32_t w = add_tensor(fx, "proj.weight", weight_dtype, EXO_TENSOR_WEIGHT, K, N);
    uint32_t y = add_tensor(fx, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, N, T);
    add_node(fx, EXO_OP_MATMUL, y, 2, (uint32_t[]){x, w});
    return w;
}

static exo_status validate(fixture *fx, uint32_t *bad) {
    exo_graph g = graph_of(fx);
    return graph_validate(&fx->target, &g, bad);
}

#define ck_assert_error_has(fx, needle) \
    ck_assert_msg(strstr((fx)->host.last_error, needle), "'%s' not in: %s", needle, (fx)->host.last_error)

START_TEST(q8_0_weights_follow_the_dtype_mask) {
    fixture fx;
    uint32_t bad = 7;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    build_matmul(&fx, EXO_DTYPE_Q8_0);
    ck_assert_int_eq(validate(&fx, &bad), EXO_OK);
    ck_assert_uint_eq(bad, UINT32_MAX);
    fx.target.dtypes = GRAPH_DTYPES_ALL & ~GRAPH_DTYPE_BIT(EXO_DTYPE_Q8_0);
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_uint_eq(bad, 0);
    ck_assert_error_has(&fx, "testdev graph: node 0 (MATMUL -> 'y')");
    ck_assert_error_has(&fx, "'proj.weight' has dtype Q8_0; supported: F32/F16/BF16");
}
END_TEST

START_TEST(same_dtype_copy_follows_the_dtype_mask) {
    fixture fx;
    uint32_t bad;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    uint32_t w = add_tensor(&fx, "table", EXO_DTYPE_Q8_0, EXO_TENSOR_WEIGHT, K, N);
    uint32_t out = add_tensor(&fx, "out", EXO_DTYPE_Q8_0, EXO_TENSOR_OUTPUT, K * N, 1);
    add_node(&fx, EXO_OP_COPY, out, 1, (uint32_t[]){w});
    ck_assert_int_eq(validate(&fx, &bad), EXO_OK);
    fx.target.dtypes &= ~GRAPH_DTYPE_BIT(EXO_DTYPE_Q8_0);
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_error_has(&fx, "src 'table' has dtype Q8_0");
}
END_TEST

START_TEST(head_dim_limit) {
    fixture fx;
    uint32_t bad;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    enum { HD = 16, CTX = 8 };
    uint32_t q = add_tensor(&fx, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2 * HD, T);
    uint32_t kc = add_tensor(&fx, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, HD, CTX);
    uint32_t vc = add_tensor(&fx, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, HD, CTX);
    uint32_t pos = add_tensor(&fx, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 1);
    uint32_t out = add_tensor(&fx, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2 * HD, T);
    exo_node *nd = add_node(&fx, EXO_OP_ATTENTION, out, 4, (uint32_t[]){q, kc, vc, pos});
    nd->i[EXO_ATTENTION_I_N_HEADS] = 2, nd->i[EXO_ATTENTION_I_N_KV_HEADS] = 1;
    nd->i[EXO_ATTENTION_I_HEAD_DIM] = HD, nd->f[EXO_ATTENTION_F_SCALE] = 0.25f;
    ck_assert_int_eq(validate(&fx, &bad), EXO_OK); /* 0: no limit */
    fx.target.max_head_dim = HD;
    ck_assert_int_eq(validate(&fx, &bad), EXO_OK);
    fx.target.max_head_dim = HD - 1;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_uint_eq(bad, 0);
    ck_assert_error_has(&fx, "head_dim i[2] = 16 exceeds the kernels' 15");
}
END_TEST

START_TEST(element_limit_on_tensors_and_weight_ends) {
    fixture fx;
    uint32_t bad;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    uint32_t w = build_matmul(&fx, EXO_DTYPE_F32);
    fx.target.max_elements = K * N;
    ck_assert_int_eq(validate(&fx, &bad), EXO_OK);
    fx.target.max_elements = K * N - 1; /* the weight itself is too large */
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_uint_eq(bad, UINT32_MAX);
    ck_assert_error_has(&fx, "'proj.weight': has 512 elements; the kernels index at most 511");
    fx.target.max_elements = K * N + 3; /* fits, but placed so that it ends past the limit */
    fx.tensors[w].offset = 4 * sizeof(float);
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_error_has(&fx, "ends at element 516 of its buffer");
}
END_TEST

START_TEST(weight_alignment_counts_from_the_buffer_base) {
    fixture fx;
    uint32_t bad;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    uint32_t w = build_matmul(&fx, EXO_DTYPE_F16);
    fx.tensors[w].offset = 2;
    ck_assert_int_eq(validate(&fx, &bad), EXO_OK);
    fx.weights.base = 0x1001; /* host memory at an odd address: offset 2 is misaligned there */
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "offset 2 is not aligned to its 2-byte elements");
    fx.weights.base = 0x1000;
    fx.tensors[w].offset = 3;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
}
END_TEST

/* The ABI 1.5 additions (gpt_oss, glm4_moe) pass on a target whose kernels run them
 * (moe_1_5) and are refused as UNSUPPORTED elsewhere, naming the node and the feature. */
static void expect_1_5(fixture *fx, uint32_t node, const char *feature) {
    uint32_t bad;
    fx->target.moe = true;
    fx->target.moe_1_5 = true;
    ck_assert_msg(validate(fx, &bad) == EXO_OK, "%s: %s", feature, fx->host.last_error);
    fx->target.moe_1_5 = false;
    ck_assert_int_eq(validate(fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_uint_eq(bad, node);
    ck_assert_error_has(fx, feature);
    ck_assert_error_has(fx, "(ABI 1.5) has no kernels on this device");
}

START_TEST(swiglu_clamp_needs_moe_1_5) {
    fixture fx;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    uint32_t g = add_tensor(&fx, "gate", EXO_DTYPE_F32, EXO_TENSOR_INPUT, K, T);
    uint32_t u = add_tensor(&fx, "up", EXO_DTYPE_F32, EXO_TENSOR_INPUT, K, T);
    uint32_t y = add_tensor(&fx, "glu", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, K, T);
    exo_node *nd = add_node(&fx, EXO_OP_GLU, y, 2, (uint32_t[]){g, u});
    nd->i[EXO_GLU_I_ACT] = EXO_ACT_SWIGLU_CLAMP;
    nd->f[EXO_GLU_F_ALPHA] = 1.702f;
    nd->f[EXO_GLU_F_LIMIT] = 7.0f;
    expect_1_5(&fx, 0, "GLU -> 'glu'), 1 tokens: activation EXO_ACT_SWIGLU_CLAMP");
    fx.target.moe_1_5 = true; /* a limit that is not > 0 is malformed, not unsupported */
    nd->f[EXO_GLU_F_LIMIT] = 0.0f;
    uint32_t bad;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "limit f[1] = 0");
}
END_TEST

START_TEST(attention_sinks_need_moe_1_5) {
    fixture fx;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    enum { HD = 16, CTX = 8 };
    uint32_t q = add_tensor(&fx, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2 * HD, T);
    uint32_t kc = add_tensor(&fx, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, HD, CTX);
    uint32_t vc = add_tensor(&fx, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, HD, CTX);
    uint32_t pos = add_tensor(&fx, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 1);
    uint32_t out = add_tensor(&fx, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2 * HD, T);
    uint32_t sinks = add_tensor(&fx, "self_attn.sinks", EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, 2, 1);
    exo_node *nd = add_node(&fx, EXO_OP_ATTENTION, out, 5, (uint32_t[]){q, kc, vc, pos, sinks});
    nd->i[EXO_ATTENTION_I_N_HEADS] = 2, nd->i[EXO_ATTENTION_I_N_KV_HEADS] = 1;
    nd->i[EXO_ATTENTION_I_HEAD_DIM] = HD, nd->f[EXO_ATTENTION_F_SCALE] = 0.25f;
    expect_1_5(&fx, 0, "attention sinks (src[4])");
    fx.tensors[sinks].ne[0] = 3; /* one per head */
    fx.target.moe_1_5 = true;
    uint32_t bad;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "sinks 'self_attn.sinks' has 3 elements; expected 2 (one per head)");
}
END_TEST

/* A target whose kernels lack the MoE ops (graph_target.moe false, e.g. a new GPU plugin) refuses
 * them as UNSUPPORTED naming the node, so the core falls back down the ranking. */
START_TEST(moe_ops_need_moe) {
    fixture fx;
    uint32_t bad;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    uint32_t scores = add_tensor(&fx, "router_logits", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 8, T);
    uint32_t ids = add_tensor(&fx, "moe_ids", EXO_DTYPE_I32, EXO_TENSOR_OUTPUT, 2, T);
    exo_node *top = add_node(&fx, EXO_OP_MOE_TOPK, ids, 1, (uint32_t[]){scores});
    top->i[EXO_MOE_TOPK_I_K] = 2;
    fx.target.moe = true;
    ck_assert_msg(validate(&fx, &bad) == EXO_OK, "%s", fx.host.last_error);
    fx.target.moe = false;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_UNSUPPORTED);
    ck_assert_uint_eq(bad, 0);
    ck_assert_error_has(&fx, "MOE_TOPK -> 'moe_ids'");
    ck_assert_error_has(&fx, "the mixture-of-experts ops have no kernels on this device");
}
END_TEST

START_TEST(routing_rules_need_moe_1_5) {
    fixture fx;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    enum { E = 8, KS = 2 };
    uint32_t scores = add_tensor(&fx, "router_logits", EXO_DTYPE_F32, EXO_TENSOR_INPUT, E, T);
    uint32_t bias = add_tensor(&fx, "mlp.gate.e_score_correction_bias", EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, E, 1);
    uint32_t ids = add_tensor(&fx, "moe_ids", EXO_DTYPE_I32, EXO_TENSOR_OUTPUT, KS, T);
    uint32_t w = add_tensor(&fx, "moe_weights", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, KS, T);
    exo_node *top = add_node(&fx, EXO_OP_MOE_TOPK, ids, 2, (uint32_t[]){scores, bias});
    top->i[EXO_MOE_TOPK_I_K] = KS;
    top->i[EXO_MOE_TOPK_I_RULE] = EXO_MOE_RULE_SIGMOID_BIAS;
    exo_node *wt = add_node(&fx, EXO_OP_MOE_WEIGHTS, w, 2, (uint32_t[]){scores, ids});
    wt->i[EXO_MOE_WEIGHTS_I_RULE] = EXO_MOE_RULE_SIGMOID_BIAS;
    wt->i[EXO_MOE_WEIGHTS_I_NORMALIZE] = 1;
    wt->f[EXO_MOE_WEIGHTS_F_SCALE] = 2.5f;
    expect_1_5(&fx, 0, "MOE_TOPK -> 'moe_ids'), 1 tokens: routing rule SIGMOID_BIAS");
    /* gpt_oss's rule ranks the raw logits: no bias source, and its weights are not renormalised. */
    fx.nodes[0].n_src = 1;
    fx.nodes[0].i[EXO_MOE_TOPK_I_RULE] = EXO_MOE_RULE_TOPK_SOFTMAX;
    fx.nodes[1].i[EXO_MOE_WEIGHTS_I_RULE] = EXO_MOE_RULE_TOPK_SOFTMAX;
    fx.nodes[1].i[EXO_MOE_WEIGHTS_I_NORMALIZE] = 0;
    expect_1_5(&fx, 0, "routing rule TOPK_SOFTMAX");
    uint32_t bad;
    fx.target.moe_1_5 = true;
    fx.nodes[1].i[EXO_MOE_WEIGHTS_I_NORMALIZE] = 1;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_uint_eq(bad, 1);
    ck_assert_error_has(&fx, "normalize i[1] must be 0 with rule TOPK_SOFTMAX");
    fx.nodes[1].i[EXO_MOE_WEIGHTS_I_NORMALIZE] = 0;
    fx.nodes[0].n_src = 2; /* a bias with a rule that has none */
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "takes 1 source (scores); the node has 2 sources");
}
END_TEST

START_TEST(expert_bias_needs_moe_1_5) {
    fixture fx;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    enum { E = 4, KS = 2 };
    uint32_t x = add_tensor(&fx, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, K, T);
    uint32_t ids = add_tensor(&fx, "moe_ids", EXO_DTYPE_I32, EXO_TENSOR_INPUT, KS, T);
    uint32_t w = add_tensor(&fx, "mlp.experts.gate_proj.weight", EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, K, N);
    fx.tensors[w].n_dims = 3;
    fx.tensors[w].ne[2] = E;
    uint32_t bias = add_tensor(&fx, "mlp.experts.gate_proj.bias", EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, N, E);
    uint32_t y = add_tensor(&fx, "moe_gate", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, KS * N, T);
    add_node(&fx, EXO_OP_MOE_MATMUL, y, 4, (uint32_t[]){x, ids, w, bias})->i[EXO_MOE_MATMUL_I_N_EXPERTS] = E;
    expect_1_5(&fx, 0, "expert bias (src[3])");
    fx.tensors[bias].ne[0] = N + 1; /* [E, N] */
    fx.target.moe_1_5 = true;
    uint32_t bad;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "expected [E = 4, N = 8]");
}
END_TEST

START_TEST(foreign_weight_buffer) {
    fixture fx;
    uint32_t bad;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    build_matmul(&fx, EXO_DTYPE_F32);
    fx.weights.ours = false;
    ck_assert_int_eq(validate(&fx, &bad), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "testdev graph: tensor 1 'proj.weight': weight buffer 0 was not allocated by this plugin");
}
END_TEST

/* ---------------------------------------------------------------- bindings */

typedef struct run {
    exo_buffer in, out;
    exo_binding b[2];
    exo_exec_args args;
    uint8_t bound[8];
} run;

static void run_init(run *r, fixture *fx, uint32_t n_tokens) {
    memset(r, 0, sizeof *r);
    r->in = (exo_buffer){.size = K * MAX_TOKENS * sizeof(float), .ours = true};
    r->out = (exo_buffer){.size = N * MAX_TOKENS * sizeof(float), .ours = true};
    r->b[0] = (exo_binding){.tensor = 0, .buffer = &r->in};
    r->b[1] = (exo_binding){.tensor = 2, .buffer = &r->out};
    EXO_STRUCT_INIT(&r->args);
    r->args.n_tokens = n_tokens;
    r->args.n_bindings = 2;
    r->args.bindings = r->b;
    (void)fx;
}

static exo_status bind(fixture *fx, run *r) {
    return graph_check_bindings(&fx->target, fx->tensors, fx->n_tensors, MAX_TOKENS, &r->args, r->bound);
}

START_TEST(bindings_mark_what_they_bind) {
    fixture fx;
    run r;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    build_matmul(&fx, EXO_DTYPE_F32);
    run_init(&r, &fx, MAX_TOKENS);
    memset(r.bound, 0xee, sizeof r.bound);
    ck_assert_int_eq(bind(&fx, &r), EXO_OK);
    ck_assert_uint_eq(r.bound[0], 1);
    ck_assert_uint_eq(r.bound[1], 0);
    ck_assert_uint_eq(r.bound[2], 1);
}
END_TEST

START_TEST(bindings_reject_foreign_buffers_and_token_counts) {
    fixture fx;
    run r;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    build_matmul(&fx, EXO_DTYPE_F32);
    run_init(&r, &fx, MAX_TOKENS + 1);
    ck_assert_int_eq(bind(&fx, &r), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "testdev graph_execute: n_tokens 5 is outside 1..4");
    r.args.n_tokens = 1;
    r.out.ours = false;
    ck_assert_int_eq(bind(&fx, &r), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "binding 1 ('y') has no buffer of this plugin");
    r.out.ours = true;
    r.args.n_bindings = 1;
    ck_assert_int_eq(bind(&fx, &r), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "OUTPUT tensor 2 'y' has no binding");
    ck_assert_int_eq(graph_check_bindings(&fx.target, fx.tensors, fx.n_tensors, MAX_TOKENS, NULL, r.bound),
                     EXO_ERR_INVALID_ARG);
}
END_TEST

START_TEST(bindings_follow_alignment_and_element_limit) {
    fixture fx;
    run r;
    fx_init(&fx, GRAPH_DTYPES_ALL);
    build_matmul(&fx, EXO_DTYPE_F32);
    run_init(&r, &fx, 1);
    r.out.base = 2; /* host memory two bytes off a float boundary */
    ck_assert_int_eq(bind(&fx, &r), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "'y' is bound at offset 0, not aligned to 4 bytes");
    r.out.base = 0;
    r.b[0].offset = 3 * K * sizeof(float); /* x in the last of four token rows: elements [192, 256) */
    fx.target.max_elements = 4 * K;
    ck_assert_int_eq(bind(&fx, &r), EXO_OK);
    fx.target.max_elements = 4 * K - 1;
    ck_assert_int_eq(bind(&fx, &r), EXO_ERR_INVALID_ARG);
    ck_assert_error_has(&fx, "'x' bound at offset 768 ends at element 256 of its buffer; the kernels address at most 255");
}
END_TEST

/* ---------------------------------------------------------------- scratch planning */

/* in -> a -> b -> c -> out (RMS norms): a and c never live at once, b overlaps both. */
static void build_chain(fixture *fx, uint32_t ids[3]) {
    uint32_t norm_w = add_tensor(fx, "norm.weight", EXO_DTYPE_F32, EXO_TENSOR_WEIGHT, 10, 1);
    uint32_t prev = add_tensor(fx, "in", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 10, T);
    static const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 4; i++) {
        uint32_t dst = i < 3 ? add_tensor(fx, names[i], EXO_DTYPE_F32, 0, 10, T)
                             : add_tensor(fx, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 10, T);
        add_node(fx, EXO_OP_RMS_NORM, dst, 2, (uint32_t[]){prev, norm_w});
        if (i < 3) ids[i] = dst;
        prev = dst;
    }
}

/* The chain, validated, as a graph. */
static exo_graph chain_graph(fixture *fx, uint32_t ids[3]) {
    uint32_t bad;
    fx_init(fx, GRAPH_DTYPES_ALL);
    build_chain(fx, ids);
    ck_assert_int_eq(validate(fx, &bad), EXO_OK);
    return graph_of(fx);
}

START_TEST(plan_aligns_and_reuses_dead_intermediates) {
    fixture fx;
    uint32_t ids[3];
    exo_graph g = chain_graph(&fx, ids);
    static const uint64_t aligns[] = {64, 256};
    for (int k = 0; k < 2; k++) {
        uint64_t align = aligns[k], offsets[8], total = 0;
        uint64_t slot = (10 * MAX_TOKENS * sizeof(float) + align - 1) / align * align; /* 160 bytes, rounded */
        ck_assert_int_eq(graph_plan_scratch(&fx.target, &g, NULL, 0, align, offsets, &total), EXO_OK);
        ck_assert_uint_eq(offsets[ids[0]], 0);
        ck_assert_uint_eq(offsets[ids[1]], slot);
        ck_assert_uint_eq(offsets[ids[2]], 0); /* a is dead once b is computed */
        ck_assert_uint_eq(total, 2 * slot);
        for (uint32_t t = 0; t < fx.n_tensors; t++)
            if (fx.tensors[t].flags) ck_assert_uint_eq(offsets[t], GRAPH_NOT_PLANNED);
            else ck_assert_uint_eq(offsets[t] % align, 0);
    }
}
END_TEST

/* A fused launch that computes c while still reading a: a lives through c's node, so c no longer
 * lands on it; a keep-alive for a role tensor (the input) changes nothing. */
START_TEST(plan_keeps_what_a_fused_launch_still_reads) {
    fixture fx;
    uint32_t ids[3];
    exo_graph g = chain_graph(&fx, ids);
    uint64_t offsets[8], total = 0, slot = 256; /* 160 bytes, rounded to 256 */
    const graph_keep_alive keep[] = {{ids[0], 2}, {fx.nodes[0].src[0], 3}};
    ck_assert_int_eq(graph_plan_scratch(&fx.target, &g, keep, 2, 256, offsets, &total), EXO_OK);
    ck_assert_uint_eq(offsets[ids[0]], 0);
    ck_assert_uint_eq(offsets[ids[1]], slot);
    ck_assert_uint_eq(offsets[ids[2]], 2 * slot);
    ck_assert_uint_eq(offsets[fx.nodes[0].src[0]], GRAPH_NOT_PLANNED);
    ck_assert_uint_eq(total, 3 * slot);
}
END_TEST

int main(void) {
    Suite *s = suite_create("graph_common");
    TCase *tc = tcase_create("target");
    tcase_add_test(tc, q8_0_weights_follow_the_dtype_mask);
    tcase_add_test(tc, same_dtype_copy_follows_the_dtype_mask);
    tcase_add_test(tc, head_dim_limit);
    tcase_add_test(tc, element_limit_on_tensors_and_weight_ends);
    tcase_add_test(tc, weight_alignment_counts_from_the_buffer_base);
    tcase_add_test(tc, foreign_weight_buffer);
    tcase_add_test(tc, swiglu_clamp_needs_moe_1_5);
    tcase_add_test(tc, attention_sinks_need_moe_1_5);
    tcase_add_test(tc, moe_ops_need_moe);
    tcase_add_test(tc, routing_rules_need_moe_1_5);
    tcase_add_test(tc, expert_bias_needs_moe_1_5);
    suite_add_tcase(s, tc);
    tc = tcase_create("bindings");
    tcase_add_test(tc, bindings_mark_what_they_bind);
    tcase_add_test(tc, bindings_reject_foreign_buffers_and_token_counts);
    tcase_add_test(tc, bindings_follow_alignment_and_element_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_add_test(tc, plan_aligns_and_reuses_dead_intermediates);
    tcase_add_test(tc, plan_keeps_what_a_fused_launch_still_reads);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
