/* cpu_amx: malformed graphs and bad execution arguments return errors whose messages name the
 * node, op and tensor at fault, and never crash (including under random mutation). */
#include "cpu_test_graph.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define T EXO_DIM_TOKENS
enum { H = 32, V = 16 };

/* A valid two-node graph: ids -> GET_ROWS -> MATMUL -> logits. */
typedef struct small_graph {
    tgraph g;
    uint32_t emb, ids, w, hidden, logits;
} small_graph;

static float emb_data[V * H], w_data[V * H];

static void build_small(small_graph *s, cpu_fixture *fx) {
    tgraph *g = &s->g;
    tg_init(g, fx, 4);
    tg_random(emb_data, V * H, -1, 1, 1);
    tg_random(w_data, V * H, -1, 1, 2);
    s->emb = tg_weight(g, "token_embd.weight", EXO_DTYPE_F32, emb_data, H, V);
    s->ids = tg_tensor(g, "tokens", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
    s->w = tg_weight(g, "output.weight", EXO_DTYPE_F32, w_data, H, V);
    s->hidden = tg_tensor(g, "hidden", EXO_DTYPE_F32, 0, H, T, 0, 0);
    s->logits = tg_tensor(g, "logits", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, V, T, 0, 0);
    uint32_t s0[] = {s->emb, s->ids}, s1[] = {s->hidden, s->w};
    g->nodes[tg_node(g, EXO_OP_GET_ROWS, s->hidden, 2, s0)].f[EXO_GET_ROWS_F_SCALE] = 1.0f;
    tg_node(g, EXO_OP_MATMUL, s->logits, 2, s1);
}

/* Compiles, expecting `want`; checks supports_graph agrees and the message has each needle. */
static void expect_compile_error(small_graph *s, exo_status want, uint32_t bad_node, const char *n1, const char *n2) {
    cpu_fixture *fx = s->g.fx;
    exo_graph graph = tg_graph(&s->g);
    exo_compiled *c = (exo_compiled *)0x1;
    exo_status st = fx->api.graph_compile(fx->ctx, 0, &graph, &c);
    ck_assert_msg(st == want, "status %d, want %d: %s", st, want, fx->host.last_error);
    ck_assert_ptr_null(c);
    if (n1) ck_assert_msg(strstr(fx->host.last_error, n1), "'%s' not in: %s", n1, fx->host.last_error);
    if (n2) ck_assert_msg(strstr(fx->host.last_error, n2), "'%s' not in: %s", n2, fx->host.last_error);
    uint32_t first = 7;
    ck_assert_int_eq(fx->api.supports_graph(fx->ctx, 0, &graph, &first), want);
    ck_assert_uint_eq(first, bad_node);
}

START_TEST(valid_graph_compiles_and_runs) {
    cpu_fixture fx;
    fx_open(&fx, 2);
    small_graph s;
    build_small(&s, &fx);
    exo_graph graph = tg_graph(&s.g);
    uint32_t first = 7;
    ck_assert_int_eq(fx.api.supports_graph(fx.ctx, 0, &graph, &first), EXO_OK);
    ck_assert_uint_eq(first, UINT32_MAX);
    exo_compiled *c = NULL;
    ck_assert_int_eq(fx.api.graph_compile(fx.ctx, 0, &graph, &c), EXO_OK);
    tg_alloc_bound(&s.g);
    int32_t ids[2] = {3, 15};
    tg_write(&s.g, s.ids, ids, sizeof ids);
    ck_assert_int_eq(tg_run(&s.g, c, 2), EXO_OK);
    float logits[2 * V];
    tg_read(&s.g, s.logits, logits, sizeof logits);
    double want = 0;
    for (int j = 0; j < H; j++) want += (double)emb_data[15 * H + j] * w_data[4 * H + j];
    ck_assert_double_eq_tol(logits[V + 4], want, 1e-5);
    fx.api.compiled_free(c);
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(bad_tensor_id) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    s.g.nodes[1].src[1] = 99;
    expect_compile_error(&s, EXO_ERR_INVALID_ARG, 1, "node 1 (MATMUL)", "99");
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(wrong_dtype) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    s.g.tensors[s.ids].dtype = EXO_DTYPE_F32;
    expect_compile_error(&s, EXO_ERR_UNSUPPORTED, 0, "node 0 (GET_ROWS", "'tokens' has dtype F32");
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(weight_outside_its_buffer) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    s.g.tensors[s.w].offset = 64;
    expect_compile_error(&s, EXO_ERR_INVALID_ARG, UINT32_MAX, "output.weight", "outside weight buffer");
    s.g.tensors[s.w].offset = 0;
    s.g.tensors[s.w].buffer = 5;
    expect_compile_error(&s, EXO_ERR_INVALID_ARG, UINT32_MAX, "output.weight", "buffer index 5");
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(shape_mismatch_names_both_tensors) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    s.g.tensors[s.w].ne[0] = H / 2; /* K no longer matches x */
    s.g.tensors[s.w].ne[1] = V * 2;
    expect_compile_error(&s, EXO_ERR_INVALID_ARG, 1, "'hidden'", "'output.weight'");
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(read_before_write_and_double_write) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    exo_node tmp = s.g.nodes[0];
    s.g.nodes[0] = s.g.nodes[1];
    s.g.nodes[1] = tmp;
    expect_compile_error(&s, EXO_ERR_INVALID_ARG, 0, "'hidden'", "read before");
    s.g.nodes[0] = s.g.nodes[1]; /* GET_ROWS twice into hidden */
    expect_compile_error(&s, EXO_ERR_INVALID_ARG, 1, "'hidden'", "written by an earlier node");
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(unknown_op_is_unsupported) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    s.g.nodes[1].op = 77;
    expect_compile_error(&s, EXO_ERR_UNSUPPORTED, 1, "node 1", "unknown op 77");
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(bad_parameters) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    tgraph g;
    tg_init(&g, &fx, 2);
    uint32_t q = tg_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 8, 3, T, 0);
    uint32_t kc = tg_tensor(&g, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 8, 2, 16, 0);
    uint32_t vc = tg_tensor(&g, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 8, 2, 16, 0);
    uint32_t pos = tg_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
    uint32_t out = tg_tensor(&g, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 24, T, 0, 0);
    uint32_t src[] = {q, kc, vc, pos};
    exo_node *nd = &g.nodes[tg_node(&g, EXO_OP_ATTENTION, out, 4, src)];
    nd->i[EXO_ATTENTION_I_N_HEADS] = 3, nd->i[EXO_ATTENTION_I_N_KV_HEADS] = 2;
    nd->i[EXO_ATTENTION_I_HEAD_DIM] = 8, nd->f[EXO_ATTENTION_F_SCALE] = 0.35f; /* 2 kv heads do not divide 3 */
    small_graph wrap = {.g = g};
    wrap.g.fx = &fx;
    expect_compile_error(&wrap, EXO_ERR_INVALID_ARG, 0, "node 0 (ATTENTION", "n_kv_heads");
    wrap.g.nodes[0].i[EXO_ATTENTION_I_N_KV_HEADS] = 1;
    wrap.g.nodes[0].f[EXO_ATTENTION_F_SOFTCAP] = -1.0f;
    expect_compile_error(&wrap, EXO_ERR_INVALID_ARG, 0, "ATTENTION", "softcap");
    wrap.g.nodes[0].f[EXO_ATTENTION_F_SOFTCAP] = 0.0f;
    wrap.g.tensors[kc].nb[1] = 64;
    expect_compile_error(&wrap, EXO_ERR_UNSUPPORTED, UINT32_MAX, "k_cache", "strided");
    wrap.g.tensors[kc].nb[1] = 0;
    wrap.g.nodes[0].i[EXO_ATTENTION_I_N_KV_HEADS] = 3; /* cache rows are 2 x 8, not 3 x 8 */
    expect_compile_error(&wrap, EXO_ERR_INVALID_ARG, 0, "'k_cache'", "n_kv_heads");
    fx_close(&fx);
}
END_TEST

START_TEST(unterminated_names_and_null_graph) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    memset(s.g.tensors[s.ids].name, 'A', EXO_TENSOR_NAME_MAX); /* no NUL */
    s.g.tensors[s.ids].dtype = EXO_DTYPE_F16;
    expect_compile_error(&s, EXO_ERR_UNSUPPORTED, 0, "AAAAAAAA", "F16");
    exo_compiled *c = NULL;
    ck_assert_int_eq(fx.api.graph_compile(fx.ctx, 0, NULL, &c), EXO_ERR_INVALID_ARG);
    exo_graph empty = tg_graph(&s.g);
    empty.n_nodes = 0;
    ck_assert_int_eq(fx.api.graph_compile(fx.ctx, 0, &empty, &c), EXO_ERR_INVALID_ARG);
    empty = tg_graph(&s.g);
    empty.max_tokens = 0;
    ck_assert_int_eq(fx.api.graph_compile(fx.ctx, 0, &empty, &c), EXO_ERR_INVALID_ARG);
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

/* ---------------------------------------------------------------- execution arguments */

static exo_compiled *compile_small(small_graph *s) {
    exo_graph graph = tg_graph(&s->g);
    exo_compiled *c = NULL;
    ck_assert_int_eq(s->g.fx->api.graph_compile(s->g.fx->ctx, 0, &graph, &c), EXO_OK);
    tg_alloc_bound(&s->g);
    int32_t ids[4] = {0, 1, 2, 3};
    tg_write(&s->g, s->ids, ids, sizeof ids);
    return c;
}

START_TEST(missing_binding) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    exo_compiled *c = compile_small(&s);
    exo_buffer *keep = s.g.bound[s.logits];
    s.g.bound[s.logits] = NULL;
    ck_assert_int_eq(tg_run(&s.g, c, 1), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(fx.host.last_error, "'logits' has no binding"), "%s", fx.host.last_error);
    s.g.bound[s.logits] = keep;
    ck_assert_int_eq(tg_run(&s.g, c, 1), EXO_OK);
    fx.api.compiled_free(c);
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(binding_out_of_bounds_and_bad_tokens) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    exo_compiled *c = compile_small(&s);
    exo_binding b[2] = {{.tensor = s.ids, .buffer = s.g.bound[s.ids], .offset = 0},
                        {.tensor = s.logits, .buffer = s.g.bound[s.logits], .offset = 8}};
    exo_exec_args args;
    EXO_STRUCT_INIT(&args);
    args.n_tokens = 4; /* logits need 4 x 16 floats; the buffer has exactly that, so offset 8 overflows */
    args.n_bindings = 2;
    args.bindings = b;
    ck_assert_int_eq(fx.api.graph_execute(c, &args), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(fx.host.last_error, "'logits'") && strstr(fx.host.last_error, "[8, 264)"), "%s",
                  fx.host.last_error);
    b[1].offset = 0;
    b[1].tensor = 99;
    ck_assert_int_eq(fx.api.graph_execute(c, &args), EXO_ERR_INVALID_ARG);
    b[1].tensor = s.emb; /* a weight cannot be bound */
    ck_assert_int_eq(fx.api.graph_execute(c, &args), EXO_ERR_INVALID_ARG);
    b[1].tensor = s.ids; /* bound twice */
    ck_assert_int_eq(fx.api.graph_execute(c, &args), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(fx.host.last_error, "twice"));
    ck_assert_int_eq(tg_run(&s.g, c, 0), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(tg_run(&s.g, c, 5), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(fx.host.last_error, "max_tokens"));
    ck_assert_int_eq(fx.api.graph_execute(c, NULL), EXO_ERR_INVALID_ARG);
    fx.api.compiled_free(c);
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(token_id_out_of_range) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    small_graph s;
    build_small(&s, &fx);
    exo_compiled *c = compile_small(&s);
    int32_t ids[2] = {1, V};
    tg_write(&s.g, s.ids, ids, sizeof ids);
    ck_assert_int_eq(tg_run(&s.g, c, 2), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(fx.host.last_error, "node 0 (GET_ROWS)") && strstr(fx.host.last_error, "'tokens'[1] = 16"),
                  "%s", fx.host.last_error);
    ids[1] = -5;
    tg_write(&s.g, s.ids, ids, sizeof ids);
    ck_assert_int_eq(tg_run(&s.g, c, 2), EXO_ERR_INVALID_ARG);
    fx.api.compiled_free(c);
    tg_free(&s.g);
    fx_close(&fx);
}
END_TEST

START_TEST(position_beyond_cache) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    tgraph g;
    tg_init(&g, &fx, 2);
    uint32_t k = tg_tensor(&g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 8, T, 0, 0);
    uint32_t pos = tg_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
    uint32_t kc = tg_tensor(&g, "cache_k", EXO_DTYPE_F32, EXO_TENSOR_KV, 8, 4, 0, 0);
    uint32_t src[] = {k, pos};
    tg_node(&g, EXO_OP_KV_WRITE, kc, 2, src);
    tg_alloc_bound(&g);
    exo_graph graph = tg_graph(&g);
    exo_compiled *c = NULL;
    ck_assert_int_eq(fx.api.graph_compile(fx.ctx, 0, &graph, &c), EXO_OK);
    int32_t p[2] = {3, 4};
    tg_write(&g, pos, p, sizeof p);
    ck_assert_int_eq(tg_run(&g, c, 2), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(fx.host.last_error, "KV_WRITE") && strstr(fx.host.last_error, "outside [0, 4)"), "%s",
                  fx.host.last_error);
    ck_assert_int_eq(tg_run(&g, c, 1), EXO_OK);
    fx.api.compiled_free(c);
    tg_free(&g);
    fx_close(&fx);
}
END_TEST

/* ---------------------------------------------------------------- mutation fuzz */

static int64_t pick(uint64_t *s, const int64_t *values, int n) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return values[*s % (uint64_t)n];
}

START_TEST(random_mutations_never_crash) {
    cpu_fixture fx;
    fx_open(&fx, 2);
    static const int64_t vals[] = {-2, -1, 0, 1, 2, 3, 4, 15, 16, 17, 32, 64, 1000, 1 << 30, INT32_MAX, (int64_t)1 << 41};
    uint64_t seed = 0x1234567;
    int compiled = 0;
    for (int iter = 0; iter < 3000; iter++) {
        small_graph s;
        build_small(&s, &fx);
        tg_alloc_bound(&s.g);
        for (int m = 0; m < 1 + iter % 3; m++) {
            int64_t v = pick(&seed, vals, 16);
            int which = (int)(pick(&seed, vals, 16) & 15);
            exo_tensor *t = &s.g.tensors[(uint64_t)pick(&seed, vals, 16) % s.g.n_tensors];
            exo_node *nd = &s.g.nodes[(uint64_t)pick(&seed, vals, 16) % s.g.n_nodes];
            switch (which) {
            case 0: t->dtype = (exo_dtype)v; break;
            case 1: t->ne[0] = v; break;
            case 2: t->ne[1] = v; break;
            case 3: t->n_dims = (uint32_t)v; break;
            case 4: t->offset = (uint64_t)v; break;
            case 5: t->buffer = (int32_t)v; break;
            case 6: t->flags = (uint32_t)v; break;
            case 7: nd->op = (exo_op)v; break;
            case 8: nd->src[v & 1] = (uint32_t)v; break;
            case 9: nd->n_src = (uint32_t)v; break;
            case 10: nd->dst = (uint32_t)v; break;
            case 11: nd->i[v & 3] = (int32_t)v; break;
            case 12: nd->f[0] = (float)v; break;
            case 13: s.g.max_tokens = (uint32_t)v; break;
            case 14: t->id = (uint32_t)v; break;
            default: t->ne[2] = v; break;
            }
        }
        exo_graph graph = tg_graph(&s.g);
        exo_compiled *c = NULL;
        uint32_t first;
        fx.api.supports_graph(fx.ctx, 0, &graph, &first);
        if (fx.api.graph_compile(fx.ctx, 0, &graph, &c) == EXO_OK) {
            compiled++;
            /* Buffers were sized for the original graph; execute must refuse or run in bounds. */
            tg_run(&s.g, c, 1);
            tg_run(&s.g, c, s.g.max_tokens < 4 ? s.g.max_tokens : 4);
            fx.api.compiled_free(c);
        }
        tg_free(&s.g);
    }
    ck_assert_int_gt(compiled, 0); /* some mutations are harmless and must still compile */
    fx_close(&fx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_graph_errors");
    TCase *tc = tcase_create("compile");
    tcase_add_test(tc, valid_graph_compiles_and_runs);
    tcase_add_test(tc, bad_tensor_id);
    tcase_add_test(tc, wrong_dtype);
    tcase_add_test(tc, weight_outside_its_buffer);
    tcase_add_test(tc, shape_mismatch_names_both_tensors);
    tcase_add_test(tc, read_before_write_and_double_write);
    tcase_add_test(tc, unknown_op_is_unsupported);
    tcase_add_test(tc, bad_parameters);
    tcase_add_test(tc, unterminated_names_and_null_graph);
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("execute");
    tcase_add_test(te, missing_binding);
    tcase_add_test(te, binding_out_of_bounds_and_bad_tokens);
    tcase_add_test(te, token_id_out_of_range);
    tcase_add_test(te, position_beyond_cache);
    suite_add_tcase(s, te);
    TCase *tf = tcase_create("fuzz");
    tcase_set_timeout(tf, 300);
    tcase_add_test(tf, random_mutations_never_crash);
    suite_add_tcase(s, tf);
    return exo_check_run(s, CK_FORK_GETENV);
}
