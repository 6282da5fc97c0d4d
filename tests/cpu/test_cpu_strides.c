/* cpu_amx and graph_common's validator read the IR arrays through their strides (ABI 1.2,
 * "IR arrays" in abi/exo_plugin.h): a graph whose tensors, nodes and bindings lie further apart
 * than this header's sizeof (as a later minor's grown elements would), with unknown bytes in
 * the padding, runs to the same bits as the packed graph; so does a graph from an ABI 1.0/1.1
 * core, whose header ends before the stride members. */
#include "cpu_test_graph.h"

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define H 32
#define N 3
#define PAD_TENSOR 64 /* bytes a future minor might append to each element */
#define PAD_NODE 28
#define PAD_BINDING 16
#define JUNK 0xA5 /* what those unknown members hold: never read */

/* rms_norm -> matmul -> glu(silu) -> add: four nodes, eight tensors, every kind of role. */
typedef struct chain {
    cpu_fixture fx;
    tgraph g;
    uint32_t in, out;
    float x[N * H];
} chain;

static void chain_build(chain *c) {
    fx_open(&c->fx, 2);
    tg_init(&c->g, &c->fx, 4);
    tgraph *g = &c->g;
    float *wn = tg_weights_of(EXO_DTYPE_F32, H, 1), *wm = tg_weights_of(EXO_DTYPE_F32, H * H, 2);
    uint32_t w_norm = tg_weight(g, "norm", EXO_DTYPE_F32, wn, H, 0);
    uint32_t w_mm = tg_weight(g, "w", EXO_DTYPE_F32, wm, H, H);
    free(wn);
    free(wm);
    c->in = tg_tensor(g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, H, EXO_DIM_TOKENS, 0, 0);
    uint32_t normed = tg_tensor(g, "normed", EXO_DTYPE_F32, 0, H, EXO_DIM_TOKENS, 0, 0);
    uint32_t y = tg_tensor(g, "y", EXO_DTYPE_F32, 0, H, EXO_DIM_TOKENS, 0, 0);
    uint32_t gate = tg_tensor(g, "act", EXO_DTYPE_F32, 0, H, EXO_DIM_TOKENS, 0, 0);
    c->out = tg_tensor(g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, H, EXO_DIM_TOKENS, 0, 0);
    exo_node *nd = &g->nodes[tg_node(g, EXO_OP_RMS_NORM, normed, 2, (uint32_t[]){c->in, w_norm})];
    nd->f[EXO_RMS_NORM_F_EPS] = 1e-5f;
    tg_node(g, EXO_OP_MATMUL, y, 2, (uint32_t[]){normed, w_mm});
    tg_node(g, EXO_OP_GLU, gate, 2, (uint32_t[]){y, normed});
    tg_node(g, EXO_OP_ADD, c->out, 2, (uint32_t[]){gate, c->in});
    tg_alloc_bound(g);
    tg_random(c->x, N * H, -1.0f, 1.0f, 3);
    tg_write(g, c->in, c->x, sizeof c->x);
}

static void chain_free(chain *c) {
    tg_free(&c->g);
    fx_close(&c->fx);
}

/* The graph's tables copied `pad` bytes apart, the padding filled with JUNK. */
typedef struct padded {
    unsigned char *tensors, *nodes;
} padded;

static exo_graph padded_graph(const tgraph *g, padded *p) {
    exo_graph graph = tg_graph(g);
    size_t ts = sizeof(exo_tensor) + PAD_TENSOR, ns = sizeof(exo_node) + PAD_NODE;
    p->tensors = malloc(ts * g->n_tensors);
    p->nodes = malloc(ns * g->n_nodes);
    ck_assert(p->tensors && p->nodes);
    memset(p->tensors, JUNK, ts * g->n_tensors);
    memset(p->nodes, JUNK, ns * g->n_nodes);
    for (uint32_t i = 0; i < g->n_tensors; i++) memcpy(p->tensors + i * ts, &g->tensors[i], sizeof(exo_tensor));
    for (uint32_t i = 0; i < g->n_nodes; i++) memcpy(p->nodes + i * ns, &g->nodes[i], sizeof(exo_node));
    graph.tensors = (const exo_tensor *)(const void *)p->tensors;
    graph.nodes = (const exo_node *)(const void *)p->nodes;
    graph.tensor_stride = (uint32_t)ts;
    graph.node_stride = (uint32_t)ns;
    return graph;
}

static void padded_free(padded *p) {
    free(p->tensors);
    free(p->nodes);
}

static exo_compiled *compile(chain *c, const exo_graph *graph) {
    exo_compiled *compiled = NULL;
    exo_status st = c->fx.api.graph_compile(c->fx.ctx, 0, graph, &compiled);
    ck_assert_msg(st == EXO_OK, "compile: %s", c->fx.host.last_error);
    return compiled;
}

/* Executes with the bindings `binding_pad` bytes apart (JUNK between them); `old_header`: the
 * args of an ABI 1.0/1.1 core, which end before binding_stride. */
static void run(chain *c, exo_compiled *compiled, size_t binding_pad, bool old_header, float *out) {
    size_t stride = sizeof(exo_binding) + binding_pad;
    unsigned char table[TG_MAX_TENSORS * (sizeof(exo_binding) + PAD_BINDING)];
    memset(table, JUNK, sizeof table);
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->g.n_tensors; i++)
        if (c->g.bound[i]) {
            exo_binding b = {.tensor = i, .buffer = c->g.bound[i], .offset = 0};
            memcpy(table + n++ * stride, &b, sizeof b);
        }
    exo_exec_args args;
    memset(&args, 0, sizeof args);
    EXO_STRUCT_INIT(&args);
    if (old_header) args.hdr.size = (uint32_t)offsetof(exo_exec_args, binding_stride);
    else args.binding_stride = (uint32_t)stride;
    args.n_tokens = N;
    args.n_bindings = n;
    args.bindings = (const exo_binding *)(const void *)table;
    exo_status st = c->fx.api.graph_execute(compiled, &args);
    ck_assert_msg(st == EXO_OK, "execute: %s", c->fx.host.last_error);
    tg_read(&c->g, c->out, out, N * H * sizeof *out);
}

/* The packed graph's result: what every other layout must reproduce bit for bit. */
static void run_packed(chain *c, float *want) {
    exo_graph packed = tg_graph(&c->g);
    exo_compiled *compiled = compile(c, &packed);
    run(c, compiled, 0, false, want);
    c->fx.api.compiled_free(compiled);
}

START_TEST(padded_elements_run_to_the_same_bits) {
    chain c;
    chain_build(&c);
    float want[N * H], got[N * H];
    run_packed(&c, want);
    padded p;
    exo_graph graph = padded_graph(&c.g, &p);
    uint32_t first_bad = 0;
    ck_assert_int_eq(c.fx.api.supports_graph(c.fx.ctx, 0, &graph, &first_bad), EXO_OK);
    ck_assert_uint_eq(first_bad, UINT32_MAX);
    exo_compiled *compiled = compile(&c, &graph);
    padded_free(&p); /* borrowed for the call only: the compiled graph keeps its own copies */
    run(&c, compiled, PAD_BINDING, false, got);
    ck_assert_mem_eq(got, want, sizeof want);
    c.fx.api.compiled_free(compiled);
    chain_free(&c);
}
END_TEST

START_TEST(an_older_cores_graph_and_args_still_run) {
    chain c;
    chain_build(&c);
    float want[N * H], got[N * H];
    run_packed(&c, want);
    /* An ABI 1.1 core's graph: 64 bytes, no stride members, 1.0-sized elements (exo_tensor has
     * grown since: its 1.0 prefix, packed). */
    exo_graph graph = tg_graph(&c.g);
    graph.hdr.size = (uint32_t)offsetof(exo_graph, tensor_stride);
    graph.hdr.version = EXO_MAKE_VERSION(1, 1);
    unsigned char *tensors_1_0 = malloc((size_t)c.g.n_tensors * EXO_TENSOR_SIZE_1_0);
    ck_assert_ptr_nonnull(tensors_1_0);
    for (uint32_t i = 0; i < c.g.n_tensors; i++)
        memcpy(tensors_1_0 + (size_t)i * EXO_TENSOR_SIZE_1_0, &c.g.tensors[i], EXO_TENSOR_SIZE_1_0);
    graph.tensors = (const exo_tensor *)(const void *)tensors_1_0;
    _Static_assert(sizeof(exo_node) == EXO_NODE_SIZE_1_0, "nodes: pack them at 1.0 too");
    exo_compiled *compiled = compile(&c, &graph);
    free(tensors_1_0);
    run(&c, compiled, 0, true, got);
    ck_assert_mem_eq(got, want, sizeof want);
    c.fx.api.compiled_free(compiled);
    chain_free(&c);
}
END_TEST

/* The validator finds the node at fault through the node stride, and names it. */
START_TEST(validator_indexes_nodes_through_the_stride) {
    chain c;
    chain_build(&c);
    c.g.nodes[2].i[EXO_GLU_I_ACT] = 7; /* no such activation */
    padded p;
    exo_graph graph = padded_graph(&c.g, &p);
    uint32_t first_bad = 0;
    ck_assert_int_eq(c.fx.api.supports_graph(c.fx.ctx, 0, &graph, &first_bad), EXO_ERR_UNSUPPORTED);
    ck_assert_uint_eq(first_bad, 2);
    ck_assert_msg(strstr(c.fx.host.last_error, "node 2 (GLU") && strstr(c.fx.host.last_error, "activation"),
                  "%s", c.fx.host.last_error);
    padded_free(&p);
    chain_free(&c);
}
END_TEST

/* Strides below the 1.0 sizes, or misaligned, cannot be a layout of this major. */
START_TEST(impossible_strides_are_refused) {
    chain c;
    chain_build(&c);
    const struct {
        uint32_t tensor_stride, node_stride;
        const char *what;
    } cases[] = {
        {EXO_TENSOR_SIZE_1_0 - 8, 0, "tensor_stride 136"},
        {EXO_TENSOR_SIZE_1_0 + 4, 0, "tensor_stride 148"},
        {0, EXO_NODE_SIZE_1_0 - 4, "node_stride 96"},
        {0, EXO_NODE_SIZE_1_0 + 2, "node_stride 102"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        exo_graph graph = tg_graph(&c.g);
        graph.tensor_stride = cases[k].tensor_stride;
        graph.node_stride = cases[k].node_stride;
        exo_compiled *compiled = NULL;
        ck_assert_int_eq(c.fx.api.graph_compile(c.fx.ctx, 0, &graph, &compiled), EXO_ERR_INVALID_ARG);
        ck_assert_ptr_null(compiled);
        ck_assert_msg(strstr(c.fx.host.last_error, cases[k].what), "case %zu: %s", k, c.fx.host.last_error);
    }
    chain_free(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_strides");
    TCase *tc = tcase_create("strides");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, padded_elements_run_to_the_same_bits);
    tcase_add_test(tc, an_older_cores_graph_and_args_still_run);
    tcase_add_test(tc, validator_indexes_nodes_through_the_stride);
    tcase_add_test(tc, impossible_strides_are_refused);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
