/* Every op of the graph IR on the OpenCL plugin (PoCL here) against the CPU plugin's plain-C
 * reference kernels (EXO_CPU_KERNELS=ref), by normalised mean squared error per op in the
 * manner of ggml's test-backend-ops: random inputs, several shapes (odd sizes, GQA ratios, f32 /
 * f16 / bf16 weights, weights at an offset inside their buffer), several token counts, and
 * decode steps after a prefill on the same KV cache. Each case prints "nmse <op> <case> <value>". */
#include "op_harness.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argmax_oracle.h"
#include "check_run.h"

#define TOKENS_DIM EXO_DIM_TOKENS

static const char *op_label(exo_op op) {
    switch (op) {
    case EXO_OP_ADD: return "ADD";
    case EXO_OP_MUL: return "MUL";
    case EXO_OP_GLU: return "GLU";
    case EXO_OP_SOFTCAP: return "SOFTCAP";
    default: return "?";
    }
}

/* NMSE thresholds per op. Both sides accumulate differently (f32 trees on the device, double on
 * the reference), so errors are rounding-level; anything structural is orders above these. */
#define NMSE_ELEMENTWISE 1e-12
#define NMSE_NORM 1e-10
#define NMSE_MATMUL 1e-9
#define NMSE_ROPE 1e-10
#define NMSE_ATTENTION 1e-9
#define NMSE_TRANSCENDENTAL 1e-10

static oh_device cl_dev, ref_dev;

static void open_both(void) {
    char why[1200];
    setenv("EXO_CPU_KERNELS", "ref", 1);
    if (oh_open(&cl_dev, "opencl", why, sizeof why) != 0) {
        fprintf(stderr, "skip: no OpenCL device: %s\n", why);
        exit(77);
    }
    ck_assert_msg(oh_open(&ref_dev, "cpu_amx", why, sizeof why) == 0, "%s", why);
}

static void close_both(void) {
    oh_close(&cl_dev);
    oh_close(&ref_dev);
}

typedef struct step_input {
    uint32_t tensor;
    const void *data; /* bytes for n_tokens of the step */
} step_input;

/* Runs the graph for each step (token count + inputs) on both devices and returns the largest
 * NMSE over the `outputs` (read back after every step, at that step's token count). */
static double compare(const oh_graph *g, uint32_t n_steps, const uint32_t *tokens, const step_input *inputs,
                      uint32_t n_inputs, const uint32_t *outputs, uint32_t n_outputs) {
    oh_run cl, ref;
    ck_assert_msg(oh_start(&ref, &ref_dev, g) == EXO_OK, "cpu compile: %s", ref_dev.host.last_error);
    exo_status st = oh_start(&cl, &cl_dev, g);
    ck_assert_msg(st == EXO_OK, "opencl compile: %s", cl_dev.host.last_error);
    double worst = 0.0;
    for (uint32_t s = 0; s < n_steps; s++) {
        for (uint32_t i = 0; i < n_inputs; i++) {
            const step_input *in = &inputs[s * n_inputs + i];
            uint64_t bytes = oh_bytes(g, in->tensor, tokens[s]);
            ck_assert_int_eq(oh_write(&ref, in->tensor, in->data, bytes), EXO_OK);
            ck_assert_int_eq(oh_write(&cl, in->tensor, in->data, bytes), EXO_OK);
        }
        ck_assert_msg(oh_exec(&ref, tokens[s]) == EXO_OK, "cpu: %s", ref_dev.host.last_error);
        ck_assert_msg(oh_exec(&cl, tokens[s]) == EXO_OK, "opencl: %s", cl_dev.host.last_error);
        for (uint32_t o = 0; o < n_outputs; o++) {
            uint64_t bytes = oh_bytes(g, outputs[o], tokens[s]);
            float *a = malloc(bytes), *b = malloc(bytes);
            ck_assert_int_eq(oh_read(&cl, outputs[o], a, bytes), EXO_OK);
            ck_assert_int_eq(oh_read(&ref, outputs[o], b, bytes), EXO_OK);
            double e = oh_nmse(a, b, (int64_t)(bytes / 4));
            if (!(e <= worst)) worst = e; /* NaN propagates */
            free(a);
            free(b);
        }
    }
    oh_stop(&cl);
    oh_stop(&ref);
    return worst;
}

static void report(const char *op, const char *what, double nmse, double limit) {
    printf("nmse %-10s %-44s %.3e\n", op, what, nmse);
    fflush(stdout);
    ck_assert_msg(nmse <= limit, "%s %s: NMSE %.3e exceeds %.1e", op, what, nmse, limit);
}

static const char *dtype_name(exo_dtype t) { return t == EXO_DTYPE_F16 ? "f16" : t == EXO_DTYPE_BF16 ? "bf16" : "f32"; }

/* ---------------------------------------------------------------- one-node ops */

START_TEST(rms_norm_matches_reference) {
    open_both();
    static const int64_t widths[] = {64, 257, 1000, 32};
    static const exo_dtype types[] = {EXO_DTYPE_F32, EXO_DTYPE_F16, EXO_DTYPE_BF16};
    for (int wi = 0; wi < 4; wi++)
        for (int ti = 0; ti < 3; ti++) {
            int64_t w = widths[wi], heads = wi == 3 ? 3 : 1; /* [T, heads, head_dim]: q/k norm */
            float *wv = malloc((size_t)w * 4), *x = malloc((size_t)(w * heads * 6) * 4);
            oh_random(wv, w, -1.0f, 1.0f, 11 + (uint32_t)wi);
            oh_random(x, w * heads * 6, -3.0f, 3.0f, 12 + (uint32_t)wi);
            void *wd = oh_float_bytes(types[ti], wv, w);
            oh_graph g;
            oh_init(&g, 6);
            uint32_t in = heads > 1 ? oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, w, heads, TOKENS_DIM)
                                    : oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, w, TOKENS_DIM, 0);
            uint32_t wt = oh_weight(&g, "w", types[ti], wd, 0, 1, w, 0);
            uint32_t out = heads > 1 ? oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 3, w, heads, TOKENS_DIM)
                                     : oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, w, TOKENS_DIM, 0);
            int32_t one_plus = ti == 2;
            float eps = 1e-6f;
            oh_node(&g, EXO_OP_RMS_NORM, out, 2, (uint32_t[]){in, wt}, &one_plus, 1, &eps, 1);
            uint32_t tokens[] = {6, 1};
            step_input inputs[] = {{in, x}, {in, x}};
            char what[64];
            snprintf(what, sizeof what, "width %lld x %lld heads, w %s%s", (long long)w, (long long)heads,
                     dtype_name(types[ti]), one_plus ? " (1+w)" : "");
            report("RMS_NORM", what, compare(&g, 2, tokens, inputs, 1, &out, 1), NMSE_NORM);
            free(wv);
            free(x);
            free(wd);
        }
    close_both();
}
END_TEST

START_TEST(matmul_matches_reference) {
    open_both();
    /* K, N, tokens: decode (matrix-vector kernels) and prefill (tiled) sizes, odd ones included. */
    /* {2048, 40, 1} and {1536, 24, 2}: long rows, so the decode matvec's paired-load loop runs. */
    static const int64_t shapes[][3] = {{64, 32, 1},   {257, 33, 3},  {128, 96, 4},  {96, 130, 7},
                                        {200, 70, 70}, {33, 65, 5},   {2048, 40, 1}, {1536, 24, 2}};
    static const exo_dtype types[] = {EXO_DTYPE_F32, EXO_DTYPE_F16, EXO_DTYPE_BF16};
    for (int si = 0; si < (int)(sizeof shapes / sizeof shapes[0]); si++)
        for (int ti = 0; ti < 3; ti++) {
            int64_t K = shapes[si][0], N = shapes[si][1], T = shapes[si][2];
            int bias = (si + ti) % 2 == 0;
            uint64_t offset = si % 2 ? (uint64_t)K * 4 * (types[ti] == EXO_DTYPE_F32 ? 4 : 2) : 0; /* a fused slice */
            float *wv = malloc((size_t)(N * K) * 4), *x = malloc((size_t)(T * K) * 4), *b = malloc((size_t)N * 4);
            oh_random(wv, N * K, -1.0f, 1.0f, 21 + (uint32_t)si);
            oh_random(x, T * K, -1.0f, 1.0f, 22 + (uint32_t)si);
            oh_random(b, N, -0.5f, 0.5f, 23 + (uint32_t)si);
            void *wd = oh_float_bytes(types[ti], wv, N * K);
            oh_graph g;
            oh_init(&g, (uint32_t)T);
            uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
            uint32_t wt = oh_weight(&g, "W", types[ti], wd, offset, 2, K, N);
            uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, N, 0);
            uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
            oh_node(&g, EXO_OP_MATMUL, out, bias ? 3 : 2, (uint32_t[]){in, wt, bt}, NULL, 0, NULL, 0);
            uint32_t tokens[] = {(uint32_t)T, 1};
            step_input inputs[] = {{in, x}, {in, x}};
            char what[96];
            snprintf(what, sizeof what, "K %lld N %lld T %lld, W %s%s%s", (long long)K, (long long)N, (long long)T,
                     dtype_name(types[ti]), bias ? " +bias" : "", offset ? " @offset" : "");
            report("MATMUL", what, compare(&g, T > 1 ? 2 : 1, tokens, inputs, 1, &out, 1), NMSE_MATMUL);
            free(wv);
            free(x);
            free(b);
            free(wd);
        }
    close_both();
}
END_TEST

/* ---------------------------------------------------------------- mixture of experts */

/* A whole MoE block on both devices: router logits (an input) -> MOE_TOPK -> MOE_WEIGHTS, an
 * expert matmul on the token rows (x [T, K]) with expert biases, a second one on the per-slot
 * rows it made ([T, k, N] as x, the down projection's shape) and MOE_COMBINE. Experts as a
 * table of E weights (each in its own buffer: one launch group per expert) or one stacked
 * [E, N, K] weight. Any routing difference would show as a large error. */
static void moe_case(int32_t rule, int32_t k, int normalize, exo_dtype wt, int stacked, int64_t T) {
    enum { E = 4, K = 96, N = 40 };
    float *logits = malloc((size_t)(T * E) * 4), *x = malloc((size_t)(T * K) * 4), sel_bias[E];
    float *w1 = malloc((size_t)(E * N * K) * 4), *w2 = malloc((size_t)(E * N * N) * 4);
    float eb1[E * N], eb2[E * N];
    oh_random(logits, T * E, -2.0f, 2.0f, 61 + (uint32_t)T);
    oh_random(x, T * K, -1.0f, 1.0f, 62);
    oh_random(sel_bias, E, -0.3f, 0.3f, 63);
    oh_random(w1, E * N * K, -1.0f, 1.0f, 64);
    oh_random(w2, E * N * N, -1.0f, 1.0f, 65);
    oh_random(eb1, E * N, -0.5f, 0.5f, 66);
    oh_random(eb2, E * N, -0.5f, 0.5f, 67);
    void *d1 = oh_float_bytes(wt, w1, E * N * K), *d2 = oh_float_bytes(wt, w2, E * N * N);
    size_t esz = wt == EXO_DTYPE_F32 ? 4 : 2;
    oh_graph g;
    oh_init(&g, (uint32_t)T);
    uint32_t sc = oh_tensor(&g, "logits", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, E, TOKENS_DIM, 0);
    uint32_t xin = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
    uint32_t sb = oh_weight(&g, "e_score_correction_bias", EXO_DTYPE_F32, sel_bias, 0, 1, E, 0);
    uint32_t w1t = 0, w2t = 0;
    if (stacked) {
        w1t = oh_weight(&g, "gate_stacked", wt, d1, 0, 2, K, N);
        w2t = oh_weight(&g, "down_stacked", wt, d2, 0, 2, N, N);
        g.tensors[w1t].n_dims = g.tensors[w2t].n_dims = 3;
        g.tensors[w1t].ne[2] = g.tensors[w2t].ne[2] = E;
    } else {
        for (int e = 0; e < E; e++) {
            uint32_t id = oh_weight(&g, "gate_expert", wt, (const char *)d1 + (size_t)e * N * K * esz, 0, 2, K, N);
            if (e == 0) w1t = id;
        }
        for (int e = 0; e < E; e++) {
            uint32_t id = oh_weight(&g, "down_expert", wt, (const char *)d2 + (size_t)e * N * N * esz, 0, 2, N, N);
            if (e == 0) w2t = id;
        }
    }
    uint32_t b1 = oh_weight(&g, "gate_bias", EXO_DTYPE_F32, eb1, 0, 2, N, E);
    uint32_t b2 = oh_weight(&g, "down_bias", EXO_DTYPE_F32, eb2, 0, 2, N, E);
    uint32_t ids = oh_tensor(&g, "ids", EXO_DTYPE_I32, 0, 2, k, TOKENS_DIM, 0);
    uint32_t wts = oh_tensor(&g, "weights", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, k, TOKENS_DIM, 0);
    uint32_t y1 = oh_tensor(&g, "y1", EXO_DTYPE_F32, 0, 3, N, k, TOKENS_DIM);
    uint32_t y2 = oh_tensor(&g, "y2", EXO_DTYPE_F32, 0, 3, N, k, TOKENS_DIM);
    uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
    int sig = rule == EXO_MOE_RULE_SIGMOID_BIAS;
    oh_node(&g, EXO_OP_MOE_TOPK, ids, sig ? 2 : 1, (uint32_t[]){sc, sb}, (int32_t[]){k, rule}, 2, NULL, 0);
    oh_node(&g, EXO_OP_MOE_WEIGHTS, wts, 2, (uint32_t[]){sc, ids}, (int32_t[]){rule, normalize}, 2,
            (float[]){sig ? 2.5f : 1.0f}, 1);
    oh_node(&g, EXO_OP_MOE_MATMUL, y1, 4, (uint32_t[]){xin, ids, w1t, b1}, (int32_t[]){E}, 1, NULL, 0);
    oh_node(&g, EXO_OP_MOE_MATMUL, y2, stacked ? 3 : 4, (uint32_t[]){y1, ids, w2t, b2}, (int32_t[]){E}, 1, NULL, 0);
    oh_node(&g, EXO_OP_MOE_COMBINE, out, 2, (uint32_t[]){y2, wts}, NULL, 0, NULL, 0);
    uint32_t tokens[] = {(uint32_t)T, 1};
    step_input inputs[] = {{sc, logits}, {xin, x}, {sc, logits + (T - 1) * E}, {xin, x + (T - 1) * K}};
    char what[96];
    snprintf(what, sizeof what, "rule %d k %d%s W %s %s, T %lld", rule, k, normalize ? " norm" : "", dtype_name(wt),
             stacked ? "stacked" : "table", (long long)T);
    report("MOE", what, compare(&g, T > 1 ? 2 : 1, tokens, inputs, 2, (uint32_t[]){wts, out}, 2), NMSE_MATMUL);
    free(logits);
    free(x);
    free(w1);
    free(w2);
    free(d1);
    free(d2);
}

START_TEST(moe_block_matches_reference) {
    open_both();
    /* T = 150, k = 2: each expert gets ~75 rows, so prefill sorts them into more than one tile. */
    static const int64_t tokens[] = {1, 3, 150};
    for (int ti = 0; ti < 3; ti++) {
        int64_t T = tokens[ti];
        moe_case(EXO_MOE_RULE_SOFTMAX, 2, 1, EXO_DTYPE_F32, 0, T);
        moe_case(EXO_MOE_RULE_SOFTMAX, 3, 0, EXO_DTYPE_BF16, 1, T);
        moe_case(EXO_MOE_RULE_SIGMOID_BIAS, 2, 1, EXO_DTYPE_F16, 0, T);
        moe_case(EXO_MOE_RULE_TOPK_SOFTMAX, 2, 0, EXO_DTYPE_F32, 1, T);
    }
    close_both();
}
END_TEST

/* Expert ids given as an input are range-checked before any kernel reads with them: an id of
 * E is an error naming the node and the tensor, on decode and prefill token counts. */
START_TEST(moe_input_ids_out_of_range_are_refused) {
    open_both();
    enum { E = 3, K = 32, N = 8, T = 6 };
    float w[E * N * K], x[T * K];
    oh_random(w, E * N * K, -1.0f, 1.0f, 71);
    oh_random(x, T * K, -1.0f, 1.0f, 72);
    oh_graph g;
    oh_init(&g, T);
    uint32_t xin = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
    uint32_t ids = oh_tensor(&g, "chosen", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 2, 2, TOKENS_DIM, 0);
    uint32_t wt = oh_weight(&g, "experts", EXO_DTYPE_F32, w, 0, 2, K, N);
    g.tensors[wt].n_dims = 3;
    g.tensors[wt].ne[2] = E;
    uint32_t y = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 3, N, 2, TOKENS_DIM);
    oh_node(&g, EXO_OP_MOE_MATMUL, y, 3, (uint32_t[]){xin, ids, wt}, (int32_t[]){E}, 1, NULL, 0);
    oh_run cl;
    ck_assert_msg(oh_start(&cl, &cl_dev, &g) == EXO_OK, "%s", cl_dev.host.last_error);
    int32_t bad[T * 2] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, 1};
    for (uint32_t n = 1; n <= T; n += T - 1) {
        if (n == 1) bad[1] = 3;
        ck_assert_int_eq(oh_write(&cl, xin, x, (uint64_t)n * K * 4), EXO_OK);
        ck_assert_int_eq(oh_write(&cl, ids, bad, (uint64_t)n * 2 * 4), EXO_OK);
        ck_assert_int_eq(oh_exec(&cl, n), EXO_ERR_INVALID_ARG);
        ck_assert_msg(strstr(cl_dev.host.last_error, "MOE_MATMUL") && strstr(cl_dev.host.last_error, "expert id 'chosen'"),
                      "%s", cl_dev.host.last_error);
        bad[1] = 1;
    }
    oh_stop(&cl);
    close_both();
}
END_TEST

/* ---------------------------------------------------------------- MLX affine weights */

/* An MLX_AFFINE weight [K, rows] with random codes, written by this test's own bit writer (a
 * little-endian bit stream per row), and its scales/biases [K / group, rows] in `qt`. Adds the
 * three weights to g (the codes at byte offset `offset`) and returns the packed tensor's id;
 * *mem collects the three allocations to free. */
static uint32_t mlx_weight(oh_graph *g, const char *name, int64_t K, int64_t rows, uint32_t bits, uint32_t group,
                           exo_dtype qt, uint64_t offset, uint32_t seed, void *mem[3]) {
    int64_t wpr = K * bits / 32, groups = K / group;
    uint32_t *words = calloc((size_t)(wpr * rows), 4);
    uint32_t state = seed * 2654435761u + 1u;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < K; j++) {
            state = state * 1664525u + 1013904223u;
            uint32_t q = (state >> 8) & ((1u << bits) - 1u);
            uint64_t p = (uint64_t)j * bits;
            uint32_t *row = words + r * wpr, sh = (uint32_t)(p % 32);
            row[p / 32] |= q << sh;
            if (sh + bits > 32) row[p / 32 + 1] |= q >> (32 - sh);
        }
    float *sv = malloc((size_t)(groups * rows) * 4), *bv = malloc((size_t)(groups * rows) * 4);
    oh_random(sv, groups * rows, -0.2f, 0.2f, seed + 1); /* negative scales too */
    oh_random(bv, groups * rows, -0.5f, 0.5f, seed + 2);
    for (int64_t i = 0; i < groups * rows; i += 7) bv[i] = 0.0f; /* zero biases too */
    mem[0] = words;
    mem[1] = oh_float_bytes(qt, sv, groups * rows);
    mem[2] = oh_float_bytes(qt, bv, groups * rows);
    free(sv);
    free(bv);
    char sname[48], bname[48];
    snprintf(sname, sizeof sname, "%s.scales", name);
    snprintf(bname, sizeof bname, "%s.biases", name);
    uint32_t st = oh_weight(g, sname, qt, mem[1], 0, 2, groups, rows);
    uint32_t bt = oh_weight(g, bname, qt, mem[2], 0, 2, groups, rows);
    uint32_t wt = oh_weight(g, name, EXO_DTYPE_MLX_AFFINE, words, offset, 2, K, rows);
    g->tensors[wt].q_bits = bits;
    g->tensors[wt].q_group = group;
    g->tensors[wt].q_scales = st;
    g->tensors[wt].q_biases = bt;
    return wt;
}

/* MATMUL with MLX affine weights: every bits value, every group, each scale dtype, decode
 * (matrix-vector) and prefill (tiled) token counts, with and without bias, packed words at an
 * offset; then the decode step after the prefill on the same graph. */
START_TEST(mlx_matmul_matches_reference) {
    open_both();
    static const uint32_t bits[] = {2, 3, 4, 5, 6, 8};
    static const uint32_t groups[] = {32, 64, 128};
    static const exo_dtype qtypes[] = {EXO_DTYPE_BF16, EXO_DTYPE_F16, EXO_DTYPE_F32};
    static const int64_t shapes[][3] = {{256, 33, 1}, {384, 70, 3}, {128, 65, 70}, {2048, 24, 1}};
    for (int bi = 0; bi < 6; bi++)
        for (int si = 0; si < 4; si++) {
            int64_t K = shapes[si][0], N = shapes[si][1], T = shapes[si][2];
            uint32_t group = groups[(bi + si) % 3];
            exo_dtype qt = qtypes[(bi + 2 * si) % 3];
            int bias = (bi + si) % 2 == 0;
            uint64_t offset = si % 2 ? 12 : 0;
            float *x = malloc((size_t)(T * K) * 4), *b = malloc((size_t)N * 4);
            oh_random(x, T * K, -1.0f, 1.0f, 61 + (uint32_t)si);
            oh_random(b, N, -0.5f, 0.5f, 62 + (uint32_t)si);
            oh_graph g;
            oh_init(&g, (uint32_t)T);
            void *mem[3];
            uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
            uint32_t wt = mlx_weight(&g, "W", K, N, bits[bi], group, qt, offset, 70 + (uint32_t)(bi * 4 + si), mem);
            uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, N, 0);
            uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
            oh_node(&g, EXO_OP_MATMUL, out, bias ? 3 : 2, (uint32_t[]){in, wt, bt}, NULL, 0, NULL, 0);
            uint32_t tokens[] = {(uint32_t)T, 1};
            step_input inputs[] = {{in, x}, {in, x}};
            char what[96];
            snprintf(what, sizeof what, "K %lld N %lld T %lld, q%u g%u %s%s%s", (long long)K, (long long)N,
                     (long long)T, bits[bi], group, dtype_name(qt), bias ? " +bias" : "", offset ? " @offset" : "");
            report("MATMUL", what, compare(&g, T > 1 ? 2 : 1, tokens, inputs, 1, &out, 1), NMSE_MATMUL);
            free(x);
            free(b);
            for (int i = 0; i < 3; i++) free(mem[i]);
        }
    close_both();
}
END_TEST

/* The fused decode kernels on MLX weights (plugins/gpu_common/README.md "Fusions"): per format
 * (4- and 8-bit, groups 32/64/128, each scale dtype), an RMS_NORM then q/k/v matmuls
 * (exo_matmul_vec16x3_mlx*, the norm folded in at one token), an RMS_NORM then gate/up and
 * their GLU (exo_matmul_vec16_glu_mlx*), and a matmul with its residual ADD
 * (exo_matmul_vec16_mlx*), at one token and at a few (the norm then runs alone). The last
 * formats decline a fusion on purpose: members of mixed bits, 8-bit words at an odd word offset,
 * 2-bit codes, so those nodes run alone and must match too. tests/opencl's
 * opencl_profile_mlx_fusions shows which kernels a real model's decode takes. */
typedef struct mlx_fmt {
    uint32_t bits, bits_k, group; /* bits_k: the second member's; 16: bf16 weights, not MLX */
    exo_dtype qt;
    uint64_t offset; /* the packed words' byte offset in their buffer */
} mlx_fmt;

/* A weight of the format: MLX codes (mlx_weight), or for 16 bits plain bf16 values (mem[0];
 * mem[1], mem[2] unused, NULL) at the same byte offset. */
static uint32_t fused_weight(oh_graph *g, const char *name, int64_t K, int64_t rows, uint32_t bits, const mlx_fmt *f,
                             uint32_t seed, void *mem[3]) {
    if (bits != 16) return mlx_weight(g, name, K, rows, bits, f->group, f->qt, f->offset, seed, mem);
    float *wv = malloc((size_t)(K * rows) * 4);
    oh_random(wv, K * rows, -0.1f, 0.1f, seed);
    mem[0] = oh_float_bytes(EXO_DTYPE_BF16, wv, K * rows);
    mem[1] = mem[2] = NULL;
    free(wv);
    return oh_weight(g, name, EXO_DTYPE_BF16, mem[0], f->offset, 2, K, rows);
}

static void mlx_fused_case(const mlx_fmt *f, int64_t K, int64_t N, uint32_t seed) {
    char what[96];
    snprintf(what, sizeof what, "K %lld N %lld, q%u/q%u g%u %s%s", (long long)K, (long long)N, f->bits, f->bits_k,
             f->group, dtype_name(f->qt), f->offset ? " @offset" : "");
    const uint32_t T = 3, tokens[] = {1, T};
    float *x = malloc((size_t)(T * K) * 4), *r = malloc((size_t)(T * N) * 4), *nw = malloc((size_t)K * 4);
    float *b = malloc((size_t)N * 4);
    oh_random(x, T * K, -1.0f, 1.0f, seed);
    oh_random(r, T * N, -1.0f, 1.0f, seed + 1);
    oh_random(nw, K, 0.5f, 1.5f, seed + 2);
    oh_random(b, N, -0.5f, 0.5f, seed + 3);
    const float eps = 1e-5f;
    const int32_t no_add_one = 0;
    void *mem[3][3];
    /* q/k/v: the norm's output read only by the three matmuls; q with a bias. */
    {
        oh_graph g;
        oh_init(&g, T);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t nwt = oh_weight(&g, "norm", EXO_DTYPE_F32, nw, 0, 1, K, 0);
        uint32_t h = oh_tensor(&g, "h", EXO_DTYPE_F32, 0, 2, K, TOKENS_DIM, 0);
        uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, N, 0);
        oh_node(&g, EXO_OP_RMS_NORM, h, 2, (uint32_t[]){in, nwt}, &no_add_one, 1, &eps, 1);
        uint32_t outs[3];
        for (int i = 0; i < 3; i++) {
            char name[8] = {'W', "qkv"[i], 0}, oname[8] = {'y', "qkv"[i], 0};
            uint32_t wt = fused_weight(&g, name, K, N - i, i == 1 ? f->bits_k : f->bits, f, seed + 10 + (uint32_t)i, mem[i]);
            outs[i] = oh_tensor(&g, oname, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N - i, TOKENS_DIM, 0);
            oh_node(&g, EXO_OP_MATMUL, outs[i], i == 0 ? 3 : 2, (uint32_t[]){h, wt, bt}, NULL, 0, NULL, 0);
        }
        step_input inputs[] = {{in, x}, {in, x}};
        report("NORM+QKV", what, compare(&g, 2, tokens, inputs, 1, outs, 3), NMSE_MATMUL);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) free(mem[i][j]);
    }
    /* gate/up and the GLU, after a norm with 1 + w; gate and up never written. */
    {
        oh_graph g;
        oh_init(&g, T);
        const int32_t add_one = 1, act = EXO_ACT_SILU;
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t nwt = oh_weight(&g, "norm", EXO_DTYPE_F32, nw, 0, 1, K, 0);
        uint32_t h = oh_tensor(&g, "h", EXO_DTYPE_F32, 0, 2, K, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_RMS_NORM, h, 2, (uint32_t[]){in, nwt}, &add_one, 1, &eps, 1);
        uint32_t wg = fused_weight(&g, "Wg", K, N, f->bits, f, seed + 20, mem[0]);
        uint32_t wu = fused_weight(&g, "Wu", K, N, f->bits_k, f, seed + 21, mem[1]);
        uint32_t gt = oh_tensor(&g, "g", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
        uint32_t ut = oh_tensor(&g, "u", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
        uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_MATMUL, gt, 2, (uint32_t[]){h, wg}, NULL, 0, NULL, 0);
        oh_node(&g, EXO_OP_MATMUL, ut, 2, (uint32_t[]){h, wu}, NULL, 0, NULL, 0);
        oh_node(&g, EXO_OP_GLU, out, 2, (uint32_t[]){gt, ut}, &act, 1, NULL, 0);
        step_input inputs[] = {{in, x}, {in, x}};
        report("NORM+GLU", what, compare(&g, 2, tokens, inputs, 1, &out, 1), NMSE_MATMUL);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) free(mem[i][j]);
    }
    /* o_proj / down_proj and the residual ADD (matmul output never written). */
    {
        oh_graph g;
        oh_init(&g, T);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t res = oh_tensor(&g, "r", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, N, TOKENS_DIM, 0);
        uint32_t wo = fused_weight(&g, "Wo", K, N, f->bits, f, seed + 30, mem[0]);
        uint32_t y = oh_tensor(&g, "y", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
        uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_MATMUL, y, 2, (uint32_t[]){in, wo}, NULL, 0, NULL, 0);
        oh_node(&g, EXO_OP_ADD, out, 2, (uint32_t[]){y, res}, NULL, 0, NULL, 0);
        step_input inputs[] = {{in, x}, {res, r}, {in, x}, {res, r}};
        report("MATMUL+ADD", what, compare(&g, 2, tokens, inputs, 2, &out, 1), NMSE_MATMUL);
        for (int j = 0; j < 3; j++) free(mem[0][j]);
    }
    free(x);
    free(r);
    free(nw);
    free(b);
}

START_TEST(mlx_fused_decode_matches_reference) {
    open_both();
    static const mlx_fmt fmts[] = {
        {4, 4, 64, EXO_DTYPE_BF16, 0},  {8, 8, 32, EXO_DTYPE_F16, 8},  {4, 4, 128, EXO_DTYPE_F32, 8},
        {8, 8, 128, EXO_DTYPE_BF16, 0}, {4, 4, 32, EXO_DTYPE_F16, 16}, {8, 8, 64, EXO_DTYPE_F32, 0},
        {4, 8, 64, EXO_DTYPE_BF16, 0}, /* mixed bits: no x3, no GLU fusion */
        {8, 8, 32, EXO_DTYPE_BF16, 4}, /* 8-bit words at an odd word offset: no fusion */
        {2, 2, 64, EXO_DTYPE_BF16, 0}, /* 2-bit: no fusion */
        {16, 16, 64, EXO_DTYPE_BF16, 0}, /* bf16 weights (exo_dmv_bf16 at one token) */
        {16, 16, 64, EXO_DTYPE_BF16, 16},
        {16, 16, 64, EXO_DTYPE_BF16, 8}, /* rows not 16-byte aligned: no fusion */
    };
    /* K 2048: the one-token loop's four-chunk steps run; K 384: 48 chunks, its tail only. One
     * token takes exo_dmv_* (kernels/decode.cl) where the format allows, three the vec16 kernels. */
    for (int i = 0; i < (int)(sizeof fmts / sizeof fmts[0]); i++) {
        mlx_fused_case(&fmts[i], 2048, 40, 300 + (uint32_t)i * 50);
        mlx_fused_case(&fmts[i], 384, 67, 700 + (uint32_t)i * 50);
    }
    /* exo_dmv_* stages x in local memory up to K 8192 (several steps of two chunks per item);
     * past it the vec16 kernels take the one token. */
    for (int i = 0; i < 2; i++) {
        static const int fi[2] = {0, 9};
        mlx_fused_case(&fmts[fi[i]], 8192, 9, 1100 + (uint32_t)i * 50);
        mlx_fused_case(&fmts[fi[i]], 8320, 5, 1200 + (uint32_t)i * 50);
    }
    close_both();
}
END_TEST

/* A layer's q/k/v after its RMS_NORM, their RoPE and the KV writes (gpu_fusions.c "q/k/v + rope_kv":
 * at one token one exo_dmv_* launch whose epilogue rotates q and k and stores k and v into the
 * caches), per weight format and RoPE mode, k with a bias (rotated with its partner row's bias).
 * Steps: a 3-token prompt (the vec16 and exo_rope_kv launches), then one-token steps at positions
 * 3.. (the fused launch); the roped q and both f32 caches against the CPU reference. */
static void qkv_rope_case(const mlx_fmt *f, int64_t K, int32_t nh, int32_t nkv, int32_t hd, int32_t mode,
                          uint32_t seed) {
    const int64_t ctx = 8;
    const uint32_t n_steps = 4, tokens[4] = {3, 1, 1, 1};
    oh_graph g;
    oh_init(&g, 3);
    float *nw = malloc((size_t)K * 4), *kb = malloc((size_t)(nkv * hd) * 4), *freq = malloc((size_t)hd / 2 * 4);
    oh_random(nw, K, 0.5f, 1.5f, seed);
    oh_random(kb, nkv * hd, -0.5f, 0.5f, seed + 1);
    for (int32_t i = 0; i < hd / 2; i++) freq[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
    const float eps = 1e-5f, factor = 1.0f;
    const int32_t no_add_one = 0, rope_i[2] = {[EXO_ROPE_I_MODE] = mode, [EXO_ROPE_I_N_ROT] = hd};
    uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
    uint32_t pos = oh_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
    uint32_t nwt = oh_weight(&g, "norm", EXO_DTYPE_F32, nw, 0, 1, K, 0);
    uint32_t kbt = oh_weight(&g, "k_bias", EXO_DTYPE_F32, kb, 0, 1, nkv * hd, 0);
    uint32_t ft = oh_weight(&g, "inv_freq", EXO_DTYPE_F32, freq, 0, 1, hd / 2, 0);
    uint32_t h = oh_tensor(&g, "h", EXO_DTYPE_F32, 0, 2, K, TOKENS_DIM, 0);
    oh_node(&g, EXO_OP_RMS_NORM, h, 2, (uint32_t[]){in, nwt}, &no_add_one, 1, &eps, 1);
    void *mem[3][3];
    uint32_t w[3], out[3];
    const int32_t heads[3] = {nh, nkv, nkv};
    for (int i = 0; i < 3; i++) {
        char name[8] = {'W', "qkv"[i], 0}, oname[8] = {"qkv"[i], 0};
        w[i] = fused_weight(&g, name, K, (int64_t)heads[i] * hd, f->bits, f, seed + 10 + (uint32_t)i, mem[i]);
        out[i] = oh_tensor(&g, oname, EXO_DTYPE_F32, 0, 3, hd, heads[i], TOKENS_DIM);
        oh_node(&g, EXO_OP_MATMUL, out[i], i == 1 ? 3 : 2, (uint32_t[]){h, w[i], kbt}, NULL, 0, NULL, 0);
    }
    uint32_t qr = oh_tensor(&g, "q_rope", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 3, hd, nh, TOKENS_DIM);
    uint32_t kr = oh_tensor(&g, "k_rope", EXO_DTYPE_F32, 0, 3, hd, nkv, TOKENS_DIM);
    uint32_t kc = oh_tensor(&g, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    uint32_t vc = oh_tensor(&g, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    oh_node(&g, EXO_OP_ROPE, qr, 3, (uint32_t[]){out[0], pos, ft}, rope_i, 2, &factor, 1);
    oh_node(&g, EXO_OP_ROPE, kr, 3, (uint32_t[]){out[1], pos, ft}, rope_i, 2, &factor, 1);
    oh_node(&g, EXO_OP_KV_WRITE, kc, 2, (uint32_t[]){kr, pos}, NULL, 0, NULL, 0);
    oh_node(&g, EXO_OP_KV_WRITE, vc, 2, (uint32_t[]){out[2], pos}, NULL, 0, NULL, 0);
    float *x[4];
    int32_t positions[4][3] = {{0, 1, 2}, {3}, {4}, {5}};
    step_input inputs[8];
    for (uint32_t s = 0; s < n_steps; s++) {
        x[s] = malloc((size_t)(K * tokens[s]) * 4);
        oh_random(x[s], K * tokens[s], -1.0f, 1.0f, seed + 20 + s);
        inputs[2 * s] = (step_input){in, x[s]};
        inputs[2 * s + 1] = (step_input){pos, positions[s]};
    }
    char what[96];
    snprintf(what, sizeof what, "K %lld, %d/%d heads, hd %d, %s, %s", (long long)K, nh, nkv, hd,
             mode == EXO_ROPE_NEOX ? "neox" : "normal", f->bits == 16 ? "bf16" : f->bits == 4 ? "q4" : "q8");
    report("QKV+ROPE+KV", what, compare(&g, n_steps, tokens, inputs, 2, (uint32_t[]){qr, kc, vc}, 3), NMSE_MATMUL);
    for (uint32_t s = 0; s < n_steps; s++) free(x[s]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) free(mem[i][j]);
    free(nw);
    free(kb);
    free(freq);
}

START_TEST(qkv_rope_kv_decode_matches_reference) {
    open_both();
    static const mlx_fmt fmts[] = {{4, 4, 64, EXO_DTYPE_BF16, 0}, {8, 8, 32, EXO_DTYPE_F16, 0}, {16, 16, 64, EXO_DTYPE_BF16, 0}};
    for (int i = 0; i < 3; i++) {
        qkv_rope_case(&fmts[i], 256, 4, 2, 64, EXO_ROPE_NEOX, 1500 + (uint32_t)i * 40);
        qkv_rope_case(&fmts[i], 128, 3, 1, 32, EXO_ROPE_NORMAL, 1600 + (uint32_t)i * 40);
    }
    close_both();
}
END_TEST

/* A decode step's attention, o_proj and residual ADD (gpu_fusions.c "attention combine + o_proj":
 * at one token the split attention's partial states are merged by the exo_dmv_* launch of o_proj
 * while it stages x, so exo_attention_combine never runs): KV writes of k and v, ATTENTION (sinks
 * as a weight when `sinks`), MATMUL with Wo of the format, ADD of a residual. Steps: a prompt of
 * `prefill` tokens (the flash attention and the node-by-node path), then `decode_steps` one-token
 * steps through the fused launches; the output and both caches against the CPU reference. */
static void attention_oproj_case(const mlx_fmt *f, int32_t nh, int32_t nkv, int32_t hd, int32_t window, int sinks,
                                 uint32_t prefill, uint32_t decode_steps, uint32_t seed) {
    const int64_t ctx = prefill + decode_steps + 1, N = 72, K = (int64_t)nh * hd;
    ck_assert_uint_le(decode_steps, 7);
    oh_graph g;
    oh_init(&g, prefill);
    uint32_t q = oh_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nh, TOKENS_DIM);
    uint32_t k = oh_tensor(&g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    uint32_t v = oh_tensor(&g, "v", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    uint32_t p = oh_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
    uint32_t res = oh_tensor(&g, "r", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, N, TOKENS_DIM, 0);
    uint32_t kc = oh_tensor(&g, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    uint32_t vc = oh_tensor(&g, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    float *sv = malloc((size_t)nh * 4);
    oh_random(sv, nh, -1.0f, 3.0f, seed);
    uint32_t st = oh_weight(&g, "sinks", EXO_DTYPE_F32, sv, 0, 1, nh, 0);
    uint32_t att = oh_tensor(&g, "attn", EXO_DTYPE_F32, 0, 2, K, TOKENS_DIM, 0);
    void *mem[3];
    uint32_t wo = fused_weight(&g, "Wo", K, N, f->bits, f, seed + 1, mem);
    uint32_t y = oh_tensor(&g, "y", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
    uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
    oh_node(&g, EXO_OP_KV_WRITE, kc, 2, (uint32_t[]){k, p}, NULL, 0, NULL, 0);
    oh_node(&g, EXO_OP_KV_WRITE, vc, 2, (uint32_t[]){v, p}, NULL, 0, NULL, 0);
    int32_t ip[4] = {nh, nkv, hd, window};
    float fp[2] = {1.0f / sqrtf((float)hd), 0.0f};
    oh_node(&g, EXO_OP_ATTENTION, att, sinks ? 5 : 4, (uint32_t[]){q, kc, vc, p, st}, ip, 4, fp, 2);
    oh_node(&g, EXO_OP_MATMUL, y, 2, (uint32_t[]){att, wo}, NULL, 0, NULL, 0);
    oh_node(&g, EXO_OP_ADD, out, 2, (uint32_t[]){y, res}, NULL, 0, NULL, 0);

    uint32_t n_steps = 1 + decode_steps, tokens[8], next = 0;
    step_input inputs[8 * 5];
    float *data[8 * 4];
    int32_t *positions[8];
    for (uint32_t s = 0; s < n_steps; s++) {
        tokens[s] = s == 0 ? prefill : 1;
        positions[s] = malloc(sizeof(int32_t) * tokens[s]);
        for (uint32_t t = 0; t < tokens[s]; t++) positions[s][t] = (int32_t)next++;
        int64_t sizes[4] = {K, (int64_t)nkv * hd, (int64_t)nkv * hd, N};
        uint32_t ids[4] = {q, k, v, res};
        for (int j = 0; j < 4; j++) {
            data[s * 4 + j] = malloc((size_t)(sizes[j] * tokens[s]) * 4);
            oh_random(data[s * 4 + j], sizes[j] * tokens[s], -2.0f, 2.0f, seed + 10 + s * 4 + (uint32_t)j);
            inputs[s * 5 + j] = (step_input){ids[j], data[s * 4 + j]};
        }
        inputs[s * 5 + 4] = (step_input){p, positions[s]};
    }
    char what[96];
    snprintf(what, sizeof what, "%d/%d heads, hd %d, window %d%s, %u+%u tok, Wo %s%u", nh, nkv, hd, window,
             sinks ? ", sinks" : "", prefill, decode_steps, f->bits == 16 ? "bf" : "q", f->bits);
    report("ATTN+OPROJ", what, compare(&g, n_steps, tokens, inputs, 5, (uint32_t[]){out, kc, vc}, 3), NMSE_ATTENTION);
    for (uint32_t s = 0; s < n_steps * 4; s++) free(data[s]);
    for (uint32_t s = 0; s < n_steps; s++) free(positions[s]);
    for (int j = 0; j < 3; j++) free(mem[j]);
    free(sv);
}

/* How many launches of `kernel` the EXO_OPENCL_PROFILE table in log lists (0: none). */
static unsigned long long profile_launches(const char *log, const char *kernel) {
    char key[80];
    snprintf(key, sizeof key, "profile:   %s ", kernel);
    const char *at = strstr(log, key);
    unsigned long long n = 0;
    if (at && sscanf(at + strlen(key), " %llu launches", &n) != 1) n = 0;
    return n;
}

/* The split attention's launches, per-head and grouped-query kernels together. */
static unsigned long long split_launches(const char *log) {
    return profile_launches(log, "exo_attention_split") + profile_launches(log, "exo_attention_split_g2") +
           profile_launches(log, "exo_attention_split_g4") + profile_launches(log, "exo_attention_split_g8");
}

/* Caches of one to 5 tiles (one to 5 splits: the merge's unrolled loop and its tail), GQA, MQA, a
 * window, sinks, bf16 and 4/8-bit Wo: every one-token step takes the fused launch (the profile
 * counts the combines); then 33 tiles (17 splits of two tiles: past ATTN_OPROJ_MAX_SPLITS), 64
 * heads over 33 tiles (64 x 17 splits: more weights than the kernel holds) and 2-bit Wo, which keep
 * exo_attention_combine and must match too. */
START_TEST(attention_oproj_decode_matches_reference) {
    setenv("EXO_OPENCL_PROFILE", "1", 1);
    open_both();
    static const mlx_fmt fmts[] = {{16, 16, 64, EXO_DTYPE_BF16, 0}, {4, 4, 64, EXO_DTYPE_BF16, 0}, {8, 8, 32, EXO_DTYPE_F16, 16},
                                   {2, 2, 64, EXO_DTYPE_BF16, 0}};
    attention_oproj_case(&fmts[0], 4, 2, 64, 0, 0, 5, 3, 2000);
    attention_oproj_case(&fmts[1], 8, 2, 64, 0, 1, 130, 2, 2100);
    attention_oproj_case(&fmts[2], 6, 1, 32, 0, 0, 300, 2, 2200);
    attention_oproj_case(&fmts[0], 4, 4, 32, 100, 1, 200, 2, 2300);
    cl_dev.host.log[0] = '\0'; /* the profile table comes at close */
    close_both();
    /* 9 one-token steps, fused; the 5-token prompt of the first case takes the split attention
     * too (up to 16 tokens), with its combine. */
    /* Each case's groups take their kernel: 2:1 exo_attention_split_g2, 4:1 _g4, 6:1 _g8 (two
     * heads to spare), MHA the per-head exo_attention_split. */
    ck_assert_msg(split_launches(cl_dev.host.log) == 10 &&
                      profile_launches(cl_dev.host.log, "exo_attention_combine") == 1,
                  "expected 10 split attentions and 1 combine (the prompt's); log:\n%s", cl_dev.host.log);
    open_both();
    attention_oproj_case(&fmts[1], 2, 1, 64, 0, 1, 2100, 1, 2400);
    attention_oproj_case(&fmts[0], 64, 8, 8, 0, 0, 2100, 1, 2500);
    attention_oproj_case(&fmts[3], 4, 2, 64, 0, 1, 130, 2, 2600);
    cl_dev.host.log[0] = '\0';
    close_both();
    ck_assert_msg(profile_launches(cl_dev.host.log, "exo_attention_combine") == 4,
                  "the 4 steps that do not fit the fusion did not run exo_attention_combine; log:\n%s", cl_dev.host.log);
}
END_TEST

/* GET_ROWS of an MLX affine table (a quantized embed_tokens): every bits value, with a scale. */
START_TEST(mlx_get_rows_matches_reference) {
    open_both();
    static const uint32_t bits[] = {2, 3, 4, 5, 6, 8};
    static const uint32_t groups[] = {32, 64, 128};
    static const exo_dtype qtypes[] = {EXO_DTYPE_BF16, EXO_DTYPE_F16, EXO_DTYPE_F32};
    const int64_t V = 37, H = 384;
    const uint32_t T = 6;
    int32_t ids[6] = {0, 36, 5, 5, 17, 2};
    for (int bi = 0; bi < 6; bi++) {
        oh_graph g;
        oh_init(&g, T);
        void *mem[3];
        uint32_t group = groups[bi % 3];
        exo_dtype qt = qtypes[bi % 3];
        uint32_t tab = mlx_weight(&g, "table", H, V, bits[bi], group, qt, bi % 2 ? 8 : 0, 90 + (uint32_t)bi, mem);
        uint32_t in = oh_tensor(&g, "ids", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
        uint32_t out = oh_tensor(&g, "rows", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, H, TOKENS_DIM, 0);
        float scale = bi % 2 ? 2.5f : 1.0f;
        oh_node(&g, EXO_OP_GET_ROWS, out, 2, (uint32_t[]){tab, in}, NULL, 0, &scale, 1);
        uint32_t tokens[] = {T, 1};
        step_input inputs[] = {{in, ids}, {in, ids + 1}};
        char what[64];
        snprintf(what, sizeof what, "q%u g%u %s [%lld][%lld], scale %g", bits[bi], group, dtype_name(qt),
                 (long long)V, (long long)H, (double)scale);
        report("GET_ROWS", what, compare(&g, 2, tokens, inputs, 1, &out, 1), NMSE_ELEMENTWISE);
        for (int i = 0; i < 3; i++) free(mem[i]);
    }
    close_both();
}
END_TEST

/* One elementwise node of x (and y) -> out over [T, width]. */
static void elementwise_case(exo_op op, int32_t iparam, float fparam, int64_t width, int b_row, exo_dtype b_type,
                             const char *what, double limit) {
    const uint32_t T = 5;
    float *x = malloc((size_t)(width * T) * 4), *y = malloc((size_t)(width * T) * 4);
    oh_random(x, width * T, -4.0f, 4.0f, 31);
    oh_random(y, width * T, -2.0f, 2.0f, 32);
    void *yw = NULL;
    oh_graph g;
    oh_init(&g, T);
    uint32_t a = oh_tensor(&g, "a", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, width, TOKENS_DIM, 0), b = 0;
    uint32_t n_src = op == EXO_OP_SOFTCAP ? 1 : 2;
    if (b_row) {
        yw = oh_float_bytes(b_type, y, width);
        b = oh_weight(&g, "b", b_type, yw, 0, 1, width, 0);
    } else {
        b = oh_tensor(&g, "b", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, width, TOKENS_DIM, 0);
    }
    uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, width, TOKENS_DIM, 0);
    oh_node(&g, op, out, n_src, (uint32_t[]){a, b}, &iparam, 1, &fparam, 1);
    uint32_t tokens[] = {T, 2};
    step_input inputs[] = {{a, x}, {b, y}, {a, x + width}, {b, y}};
    uint32_t n_in = b_row || n_src == 1 ? 1 : 2;
    step_input in1[] = {{a, x}, {a, x + width}};
    report(op_label(op), what, compare(&g, 2, tokens, n_in == 1 ? in1 : inputs, n_in, &out, 1), limit);
    free(x);
    free(y);
    free(yw);
}

START_TEST(elementwise_ops_match_reference) {
    open_both();
    elementwise_case(EXO_OP_ADD, 0, 0, 301, 0, EXO_DTYPE_F32, "301 wide", NMSE_ELEMENTWISE);
    elementwise_case(EXO_OP_ADD, 0, 0, 64, 1, EXO_DTYPE_BF16, "64 wide, b one bf16 row", NMSE_ELEMENTWISE);
    elementwise_case(EXO_OP_MUL, 0, 0, 77, 0, EXO_DTYPE_F32, "77 wide", NMSE_ELEMENTWISE);
    elementwise_case(EXO_OP_MUL, 0, 0, 96, 1, EXO_DTYPE_F16, "96 wide, b one f16 row", NMSE_ELEMENTWISE);
    elementwise_case(EXO_OP_GLU, EXO_ACT_SILU, 0, 300, 0, EXO_DTYPE_F32, "silu 300 wide", NMSE_TRANSCENDENTAL);
    elementwise_case(EXO_OP_GLU, EXO_ACT_GELU_TANH, 0, 129, 0, EXO_DTYPE_F32, "gelu-tanh 129 wide", NMSE_TRANSCENDENTAL);
    elementwise_case(EXO_OP_SOFTCAP, 0, 3.0f, 500, 0, EXO_DTYPE_F32, "cap 3, 500 wide", NMSE_TRANSCENDENTAL);
    close_both();
}
END_TEST

START_TEST(get_rows_and_copy_match_reference) {
    open_both();
    static const exo_dtype types[] = {EXO_DTYPE_F32, EXO_DTYPE_F16, EXO_DTYPE_BF16};
    const int64_t V = 37, H = 70;
    const uint32_t T = 6;
    float *table = malloc((size_t)(V * H) * 4);
    oh_random(table, V * H, -1.0f, 1.0f, 41);
    int32_t ids[6] = {0, 36, 5, 5, 17, 2};
    for (int ti = 0; ti < 3; ti++) {
        void *td = oh_float_bytes(types[ti], table, V * H);
        oh_graph g;
        oh_init(&g, T);
        uint32_t tab = oh_weight(&g, "table", types[ti], td, 0, 2, H, V);
        uint32_t in = oh_tensor(&g, "ids", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
        uint32_t rows = oh_tensor(&g, "rows", EXO_DTYPE_F32, 0, 2, H, TOKENS_DIM, 0);
        uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 3, 10, 7, TOKENS_DIM);
        float scale = ti == 1 ? 2.5f : 1.0f;
        oh_node(&g, EXO_OP_GET_ROWS, rows, 2, (uint32_t[]){tab, in}, NULL, 0, &scale, 1);
        oh_node(&g, EXO_OP_COPY, out, 1, (uint32_t[]){rows}, NULL, 0, NULL, 0); /* the reshape */
        uint32_t tokens[] = {T, 1};
        step_input inputs[] = {{in, ids}, {in, ids + 1}};
        char what[64];
        snprintf(what, sizeof what, "table %s [%lld][%lld], scale %g + reshape", dtype_name(types[ti]), (long long)V,
                 (long long)H, (double)scale);
        report("GET_ROWS", what, compare(&g, 2, tokens, inputs, 1, &out, 1), NMSE_ELEMENTWISE);
        free(td);
    }
    /* The converting copy: f16 / bf16 weights to f32. */
    for (int ti = 1; ti < 3; ti++) {
        void *td = oh_float_bytes(types[ti], table, V * H);
        oh_graph g;
        oh_init(&g, 1);
        uint32_t tab = oh_weight(&g, "table", types[ti], td, 0, 2, H, V);
        uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 1, V * H, 0, 0);
        oh_node(&g, EXO_OP_COPY, out, 1, (uint32_t[]){tab}, NULL, 0, NULL, 0);
        uint32_t tokens[] = {1};
        char what[64];
        snprintf(what, sizeof what, "%s -> f32, %lld elements", dtype_name(types[ti]), (long long)(V * H));
        report("COPY", what, compare(&g, 1, tokens, NULL, 0, &out, 1), 0.0);
        free(td);
    }
    free(table);
    close_both();
}
END_TEST

START_TEST(rope_matches_reference) {
    open_both();
    /* head_dim, heads, n_rot, mode, attention factor */
    static const struct { int64_t hd, heads; int32_t n_rot, mode; float factor; } cases[] = {
        {64, 4, 64, EXO_ROPE_NEOX, 1.0f}, {40, 3, 40, EXO_ROPE_NEOX, 1.0f}, {64, 2, 32, EXO_ROPE_NEOX, 1.2f},
        {32, 5, 32, EXO_ROPE_NORMAL, 1.0f}, {128, 2, 96, EXO_ROPE_NORMAL, 0.9f}};
    const uint32_t T = 7;
    int32_t pos[7] = {0, 1, 2, 3, 100, 2047, 9};
    for (int ci = 0; ci < 5; ci++) {
        int64_t hd = cases[ci].hd, heads = cases[ci].heads;
        float *x = malloc((size_t)(hd * heads * T) * 4), *freq = malloc((size_t)hd / 2 * 4);
        oh_random(x, hd * heads * T, -2.0f, 2.0f, 51 + (uint32_t)ci);
        for (int64_t i = 0; i < cases[ci].n_rot / 2; i++) freq[i] = powf(10000.0f, -2.0f * (float)i / (float)cases[ci].n_rot);
        oh_graph g;
        oh_init(&g, T);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, heads, TOKENS_DIM);
        uint32_t p = oh_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
        uint32_t f = oh_weight(&g, "inv_freq", EXO_DTYPE_F32, freq, 0, 1, cases[ci].n_rot / 2, 0);
        uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 3, hd, heads, TOKENS_DIM);
        int32_t ip[2] = {cases[ci].mode, cases[ci].n_rot};
        oh_node(&g, EXO_OP_ROPE, out, 3, (uint32_t[]){in, p, f}, ip, 2, &cases[ci].factor, 1);
        uint32_t tokens[] = {T, 1};
        step_input inputs[] = {{in, x}, {p, pos}, {in, x}, {p, pos + 5}};
        char what[80];
        snprintf(what, sizeof what, "%s hd %lld x %lld heads, n_rot %d, factor %g",
                 cases[ci].mode == EXO_ROPE_NEOX ? "neox" : "normal", (long long)hd, (long long)heads, cases[ci].n_rot,
                 (double)cases[ci].factor);
        report("ROPE", what, compare(&g, 2, tokens, inputs, 2, &out, 1), NMSE_ROPE);
        free(x);
        free(freq);
    }
    close_both();
}
END_TEST

/* KV_WRITE k and v, then ATTENTION, over steps: a prefill of `prefill` tokens at positions
 * 0.., then single-token decode steps; compares the attention output and both caches. */
static void attention_case(int32_t nh, int32_t nkv, int32_t hd, int32_t window, float softcap, uint32_t prefill,
                           uint32_t decode_steps) {
    const int64_t ctx = prefill + decode_steps + 3; /* the cache holds every step's rows */
    uint32_t max_t = prefill;
    ck_assert_uint_le(decode_steps, 15);
    oh_graph g;
    oh_init(&g, max_t);
    uint32_t q = oh_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nh, TOKENS_DIM);
    uint32_t k = oh_tensor(&g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    uint32_t v = oh_tensor(&g, "v", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    uint32_t p = oh_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
    uint32_t kc = oh_tensor(&g, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    uint32_t vc = oh_tensor(&g, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    uint32_t out = oh_tensor(&g, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, (int64_t)nh * hd, TOKENS_DIM, 0);
    oh_node(&g, EXO_OP_KV_WRITE, kc, 2, (uint32_t[]){k, p}, NULL, 0, NULL, 0);
    oh_node(&g, EXO_OP_KV_WRITE, vc, 2, (uint32_t[]){v, p}, NULL, 0, NULL, 0);
    int32_t ip[4] = {nh, nkv, hd, window};
    float fp[2] = {1.0f / sqrtf((float)hd), softcap};
    oh_node(&g, EXO_OP_ATTENTION, out, 4, (uint32_t[]){q, kc, vc, p}, ip, 4, fp, 2);

    uint32_t n_steps = 1 + decode_steps;
    uint32_t tokens[16];
    step_input inputs[16 * 4];
    float *data[16 * 3];
    int32_t *positions[16];
    uint32_t next = 0;
    for (uint32_t s = 0; s < n_steps; s++) {
        tokens[s] = s == 0 ? prefill : 1;
        positions[s] = malloc(sizeof(int32_t) * tokens[s]);
        for (uint32_t t = 0; t < tokens[s]; t++) positions[s][t] = (int32_t)next++;
        int64_t sizes[3] = {(int64_t)nh * hd, (int64_t)nkv * hd, (int64_t)nkv * hd};
        uint32_t ids[3] = {q, k, v};
        for (int j = 0; j < 3; j++) {
            data[s * 3 + j] = malloc((size_t)(sizes[j] * tokens[s]) * 4);
            oh_random(data[s * 3 + j], sizes[j] * tokens[s], -2.0f, 2.0f, 61 + s * 3 + (uint32_t)j);
            inputs[s * 4 + j] = (step_input){ids[j], data[s * 3 + j]};
        }
        inputs[s * 4 + 3] = (step_input){p, positions[s]};
    }
    uint32_t outputs[3] = {out, kc, vc};
    char what[96];
    snprintf(what, sizeof what, "%d/%d heads, hd %d, window %d, cap %g, %u+%u tok", nh, nkv, hd, window,
             (double)softcap, prefill, decode_steps);
    report("ATTENTION", what, compare(&g, n_steps, tokens, inputs, 4, outputs, 3), NMSE_ATTENTION);
    for (uint32_t s = 0; s < n_steps * 3; s++) free(data[s]);
    for (uint32_t s = 0; s < n_steps; s++) free(positions[s]);
}

START_TEST(attention_and_kv_write_match_reference) {
    open_both();
    attention_case(4, 4, 64, 0, 0.0f, 7, 2);    /* MHA */
    attention_case(8, 2, 64, 0, 0.0f, 5, 3);    /* GQA 4:1 */
    attention_case(6, 1, 40, 0, 0.0f, 37, 2);   /* MQA, odd head_dim, prefill across KV tiles */
    attention_case(4, 2, 128, 3, 0.0f, 9, 2);   /* sliding window */
    attention_case(2, 1, 32, 0, 20.0f, 6, 2);   /* softcap */
    attention_case(3, 3, 256, 0, 0.0f, 40, 1);  /* wide heads */
    attention_case(4, 2, 64, 0, 0.0f, 70, 2);   /* a context over one 64-row KV tile: parts merge */
    /* Groups the grouped-query kernels hold with heads to spare (kernels/attention_gqa.cl): 3:1 in
     * the 4 variant with heads of 80 dims (two V columns for some items), 6:1 in the 8 variant
     * with 128 (Qwen2-1.5B's shape), over more than one tile. */
    attention_case(6, 2, 80, 0, 0.0f, 70, 2);
    attention_case(12, 2, 128, 0, 0.0f, 130, 2);
    /* Groups they do not take, so the per-head kernel's KV-head index still runs: heads of 256
     * dims (Gemma 2's) and a group of 16. */
    attention_case(4, 2, 256, 0, 0.0f, 40, 1);
    attention_case(16, 1, 32, 0, 0.0f, 70, 1);
    /* Decode over a long cache: split into more tiles than splits (two tiles per split, the
     * last split short), with and without a window that starts mid-cache. */
    attention_case(2, 1, 32, 0, 0.0f, 2100, 2);
    attention_case(4, 2, 32, 2090, 0.0f, 2200, 1);
    close_both();
}
END_TEST

/* ---------------------------------------------------------------- Intel sub-group / XMX kernels */

/* MATMULs that Intel's kernels take where the build has them (plugins/gpu_common/gpu_intel.h):
 * bf16 decode (exo_matmul_sgblock_bf16: K with and without a block-read tail, 1-4 tokens, odd N),
 * MLX 4-bit decode (exo_matmul_sgblock_mlx4: every group, words at a 16-byte offset), bf16 prompts
 * (exo_matmul_xmx_bf16: tokens and rows past a tile, K one step or many), and cases that stay on
 * the portable kernels (f32 weights, MLX words off 16-byte alignment). Against the reference
 * kernels at the matmul NMSE. Run as test_opencl_ops (no EXO_GPU_XMX: none of Intel's kernels may
 * run) and as opencl_ops_intel_emulate* (EXO_GPU_XMX=emulate / emulate8 on PoCL: the builtins
 * emulated, and each of the three kernels must have run): EXO_OPENCL_PROFILE names them. */
START_TEST(intel_matmuls_match_reference) {
    setenv("EXO_OPENCL_PROFILE", "1", 1);
    open_both();
    static const int64_t bf16_shapes[][3] = {{256, 33, 1}, {200, 70, 3},   {2048, 40, 4}, {1544, 9, 2},
                                             {96, 130, 7}, {16, 5, 5},     {128, 70, 70}, {2048, 64, 33},
                                             {48, 200, 40}};
    for (int si = 0; si < (int)(sizeof bf16_shapes / sizeof bf16_shapes[0]); si++)
        for (int f32 = 0; f32 < (si == 4 ? 2 : 1); f32++) {
            int64_t K = bf16_shapes[si][0], N = bf16_shapes[si][1], T = bf16_shapes[si][2];
            exo_dtype wt = f32 ? EXO_DTYPE_F32 : EXO_DTYPE_BF16;
            int bias = si % 2 == 0;
            uint64_t offset = si % 3 == 1 ? (uint64_t)K * 2 * 8 : 0; /* a fused slice, 16-byte aligned */
            float *wv = malloc((size_t)(N * K) * 4), *x = malloc((size_t)(T * K) * 4), *b = malloc((size_t)N * 4);
            oh_random(wv, N * K, -1.0f, 1.0f, 81 + (uint32_t)si);
            oh_random(x, T * K, -1.0f, 1.0f, 82 + (uint32_t)si);
            oh_random(b, N, -0.5f, 0.5f, 83 + (uint32_t)si);
            void *wd = oh_float_bytes(wt, wv, N * K);
            oh_graph g;
            oh_init(&g, (uint32_t)T);
            uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
            uint32_t w = oh_weight(&g, "W", wt, wd, offset, 2, K, N);
            uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, N, 0);
            uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
            oh_node(&g, EXO_OP_MATMUL, out, bias ? 3 : 2, (uint32_t[]){in, w, bt}, NULL, 0, NULL, 0);
            step_input inputs[] = {{in, x}};
            char what[96];
            snprintf(what, sizeof what, "K %lld N %lld T %lld, W %s%s%s", (long long)K, (long long)N, (long long)T,
                     dtype_name(wt), bias ? " +bias" : "", offset ? " @offset" : "");
            report("MATMUL", what, compare(&g, 1, (uint32_t[]){(uint32_t)T}, inputs, 1, &out, 1), NMSE_MATMUL);
            free(wv);
            free(x);
            free(b);
            free(wd);
        }
    static const int64_t q4_shapes[][4] = {{256, 33, 1, 32}, {384, 70, 3, 64}, {2048, 24, 2, 128}, {4096, 17, 4, 64},
                                           {512, 12, 1, 32}};
    for (int si = 0; si < (int)(sizeof q4_shapes / sizeof q4_shapes[0]); si++) {
        int64_t K = q4_shapes[si][0], N = q4_shapes[si][1], T = q4_shapes[si][2];
        uint64_t offset = si == 1 ? 16 : si == 4 ? 12 : 0; /* 12: not 16-byte aligned, portable kernels */
        exo_dtype qt = si % 2 ? EXO_DTYPE_F16 : EXO_DTYPE_BF16;
        float *x = malloc((size_t)(T * K) * 4), *b = malloc((size_t)N * 4);
        oh_random(x, T * K, -1.0f, 1.0f, 91 + (uint32_t)si);
        oh_random(b, N, -0.5f, 0.5f, 92 + (uint32_t)si);
        oh_graph g;
        oh_init(&g, (uint32_t)T);
        void *mem[3];
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t w = mlx_weight(&g, "W", K, N, 4, (uint32_t)q4_shapes[si][3], qt, offset, 93 + (uint32_t)si, mem);
        uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, N, 0);
        uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_MATMUL, out, si % 2 ? 3 : 2, (uint32_t[]){in, w, bt}, NULL, 0, NULL, 0);
        step_input inputs[] = {{in, x}};
        char what[96];
        snprintf(what, sizeof what, "K %lld N %lld T %lld, q4 g%lld %s%s", (long long)K, (long long)N, (long long)T,
                 (long long)q4_shapes[si][3], dtype_name(qt), offset ? " @offset" : "");
        report("MATMUL", what, compare(&g, 1, (uint32_t[]){(uint32_t)T}, inputs, 1, &out, 1), NMSE_MATMUL);
        free(x);
        free(b);
        for (int i = 0; i < 3; i++) free(mem[i]);
    }
    cl_dev.host.log[0] = '\0'; /* the profile table comes at close */
    close_both();
    const char *xmx = getenv("EXO_GPU_XMX");
    int emulated = xmx && strncmp(xmx, "emulate", 7) == 0;
    static const char *const kernels[] = {"exo_matmul_sgblock_bf16 ", "exo_matmul_sgblock_mlx4 ", "exo_matmul_xmx_bf16 "};
    for (int i = 0; i < 3; i++) {
        char line[64];
        snprintf(line, sizeof line, "profile:   %s", kernels[i]);
        int ran = strstr(cl_dev.host.log, line) != NULL;
        ck_assert_msg(ran == emulated, "%s %s with EXO_GPU_XMX=%s; log:\n%s", kernels[i], ran ? "ran" : "did not run",
                      xmx ? xmx : "(unset)", cl_dev.host.log);
    }
    /* The f32 case and the MLX words off 16 bytes took a portable kernel (which one is not this
     * test's business: the batched-step matvecs, the GEMM). */
    int portable = 0;
    for (const char *p = cl_dev.host.log; (p = strstr(p, "profile:   exo_matmul_")) != NULL; p++)
        portable += strncmp(p + 11, "exo_matmul_sgblock_", 19) != 0 && strncmp(p + 11, "exo_matmul_xmx_", 15) != 0;
    ck_assert_msg(portable > 0, "no portable matmul kernel ran; log:\n%s", cl_dev.host.log);
}
END_TEST

/* ---------------------------------------------------------------- ARGMAX (ABI 1.10) */

/* The oracle is the op's definition, the loop itself (tests/common/argmax_oracle.h). */
/* Row patterns: each aims at one part of the rule or of the kernel's split of a row over items
 * (kernels/argmax.cl: EXO_ARGMAX_WG items, float4 chunks from the row's first 16-byte boundary,
 * strided over the items). Positions beyond the row are dropped, so narrow rows get what fits. */
enum {
    ROW_RANDOM,         /* distinct values */
    ROW_TIES_SPREAD,    /* the max 4 times: first in a high item's chunk, repeats in lower items' later chunks */
    ROW_TIES_ADJACENT,  /* the max in two elements of one chunk, and again in the next chunk */
    ROW_ZERO_SIGNS,     /* all negative but -0 then +0: the first zero */
    ROW_ZERO_SIGNS_REV, /* +0 then -0 */
    ROW_ALL_NEG_INF,    /* 0 */
    ROW_ALL_EQUAL,      /* 0 */
    ROW_NAN_FIRST,      /* x[0] NaN, a clear max later: still 0 */
    ROW_NAN_SPRINKLED,  /* NaN every 5th element and right after the max: never taken */
    ROW_MAX_FIRST,      /* the max at index 0 */
    ROW_MAX_LAST,       /* the max at the last index */
    ROW_INF_TIES_NAN,   /* -inf at 0, NaN elsewhere but +inf at two places: the first +inf */
    ROW_PATTERNS
};

static const char *const row_pattern_names[ROW_PATTERNS] = {
    "random", "ties spread", "ties adjacent", "-0 then +0", "+0 then -0", "all -inf",
    "all equal", "NaN first", "NaN sprinkled", "max first", "max last", "+inf ties among NaN"};

static void set_at(float *x, int64_t n, int64_t i, float v) {
    if (i >= 0 && i < n) x[i] = v;
}

static void argmax_row(float *x, int64_t n, int pattern, uint32_t seed) {
    oh_random(x, n, -1.0f, 1.0f, seed);
    switch (pattern) {
    case ROW_RANDOM: break;
    case ROW_TIES_SPREAD: /* chunks 200, 256 + 3, 512 (items 200, 3, 0) and the last element */
        set_at(x, n, 4 * 200 + 1, 2.0f);
        set_at(x, n, 4 * (256 + 3) + 2, 2.0f);
        set_at(x, n, 4 * 512, 2.0f);
        set_at(x, n, n - 1, 2.0f);
        break;
    case ROW_TIES_ADJACENT:
        set_at(x, n, n / 2 + 1, 1.5f);
        set_at(x, n, n / 2 + 2, 1.5f);
        set_at(x, n, n / 2 + 5, 1.5f);
        break;
    case ROW_ZERO_SIGNS:
    case ROW_ZERO_SIGNS_REV:
        oh_random(x, n, -2.0f, -1.0f, seed);
        set_at(x, n, n / 3, pattern == ROW_ZERO_SIGNS ? -0.0f : 0.0f);
        set_at(x, n, n / 3 + 1 + n / 4, pattern == ROW_ZERO_SIGNS ? 0.0f : -0.0f);
        break;
    case ROW_ALL_NEG_INF:
        for (int64_t i = 0; i < n; i++) x[i] = -INFINITY;
        break;
    case ROW_ALL_EQUAL:
        for (int64_t i = 0; i < n; i++) x[i] = 0.25f;
        break;
    case ROW_NAN_FIRST:
        x[0] = NAN;
        set_at(x, n, n / 2 + 1, 3.0f);
        break;
    case ROW_NAN_SPRINKLED:
        for (int64_t i = 1; i < n; i += 5) x[i] = NAN;
        set_at(x, n, (n * 2) / 3, 3.0f);
        set_at(x, n, (n * 2) / 3 + 1, NAN);
        break;
    case ROW_MAX_FIRST:
        x[0] = 3.0f;
        break;
    case ROW_MAX_LAST:
        x[n - 1] = 3.0f;
        break;
    case ROW_INF_TIES_NAN:
        for (int64_t i = 1; i < n; i++) x[i] = NAN;
        x[0] = -INFINITY;
        set_at(x, n, n - 2, INFINITY);
        set_at(x, n, n - 1, INFINITY);
        break;
    }
}

/* ARGMAX on the GPU plugin EXO_TEST_GPU_PLUGIN (opencl unless set: opencl_ops_argmax_level_zero
 * runs this case through the Level Zero plugin and its SPIR-V module) against argmax_one_pass, every
 * index exact. Rows: the token rows of x [width, T] at T = 8, 3 and 1 from one compiled graph,
 * widths 1 to 128,256 (a Llama 3 vocabulary; 7 and 32,003 are not multiples of 4, so rows start
 * off 16-byte boundaries), and x [width, 2, T] bound 1 element into its buffer (dst 3 in), whose
 * rows start off them whatever the width. Every width sees every row pattern. */
START_TEST(argmax_matches_one_pass_loop) {
    const char *gpu_name = getenv("EXO_TEST_GPU_PLUGIN") ? getenv("EXO_TEST_GPU_PLUGIN") : "opencl";
    oh_device gpu;
    char why[1200];
    if (oh_open(&gpu, gpu_name, why, sizeof why) != 0) {
        fprintf(stderr, "skip: no %s device: %s\n", gpu_name, why);
        exit(77);
    }
    static const int64_t widths[] = {1, 7, 1000, 32003, 128256};
    int pattern = 0, checked = 0;
    for (int wi = 0; wi < (int)(sizeof widths / sizeof widths[0]); wi++)
        for (int heads = 1; heads <= 2; heads++) {
            int64_t w = widths[wi];
            const uint32_t max_tokens = 8;
            oh_graph g;
            oh_init(&g, max_tokens);
            uint32_t in = heads == 1 ? oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, w, TOKENS_DIM, 0)
                                     : oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, w, heads, TOKENS_DIM);
            uint32_t out = heads == 1 ? oh_tensor(&g, "best", EXO_DTYPE_I32, EXO_TENSOR_OUTPUT, 1, TOKENS_DIM, 0, 0)
                                      : oh_tensor(&g, "best", EXO_DTYPE_I32, EXO_TENSOR_OUTPUT, 2, heads, TOKENS_DIM, 0);
            if (heads == 2) {
                g.bind_offset[in] = 4;
                g.bind_offset[out] = 12;
            }
            oh_node(&g, EXO_OP_ARGMAX, out, 1, (uint32_t[]){in}, NULL, 0, NULL, 0);
            oh_run run;
            ck_assert_msg(oh_start(&run, &gpu, &g) == EXO_OK, "%s compile: %s", gpu_name, gpu.host.last_error);
            static const uint32_t steps[] = {8, 3, 1};
            for (int si = 0; si < 3; si++) {
                int64_t rows = (int64_t)steps[si] * heads;
                float *x = malloc((size_t)(rows * w) * sizeof(float));
                int32_t *best = malloc((size_t)rows * sizeof(int32_t));
                int *kind = malloc((size_t)rows * sizeof(int));
                for (int64_t r = 0; r < rows; r++) {
                    kind[r] = pattern++ % ROW_PATTERNS;
                    argmax_row(x + r * w, w, kind[r], 1000u + (uint32_t)(wi * 64 + r));
                }
                ck_assert_int_eq(oh_write(&run, in, x, (uint64_t)(rows * w) * sizeof(float)), EXO_OK);
                ck_assert_msg(oh_exec(&run, steps[si]) == EXO_OK, "%s: %s", gpu_name, gpu.host.last_error);
                ck_assert_int_eq(oh_read(&run, out, best, (uint64_t)rows * sizeof(int32_t)), EXO_OK);
                for (int64_t r = 0; r < rows; r++) {
                    int32_t want = argmax_one_pass(x + r * w, w);
                    ck_assert_msg(best[r] == want, "%s: width %lld, %lld rows (%s at %u tokens), row %lld (%s): index %d, the loop's %d",
                                  gpu_name, (long long)w, (long long)rows, heads == 1 ? "x [w, T]" : "x [w, 2, T] at offsets",
                                  steps[si], (long long)r, row_pattern_names[kind[r]], best[r], want);
                    checked++;
                }
                free(x);
                free(best);
                free(kind);
            }
            oh_stop(&run);
        }
    printf("argmax %s: %d rows, every index the loop's\n", gpu_name, checked);
    oh_close(&gpu);
}
END_TEST

int main(void) {
    Suite *s = suite_create("opencl_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, rms_norm_matches_reference);
    tcase_add_test(tc, matmul_matches_reference);
    tcase_add_test(tc, elementwise_ops_match_reference);
    tcase_add_test(tc, get_rows_and_copy_match_reference);
    tcase_add_test(tc, mlx_matmul_matches_reference);
    tcase_add_test(tc, mlx_get_rows_matches_reference);
    tcase_add_test(tc, mlx_fused_decode_matches_reference);
    tcase_add_test(tc, qkv_rope_kv_decode_matches_reference);
    tcase_add_test(tc, attention_oproj_decode_matches_reference);
    tcase_add_test(tc, rope_matches_reference);
    tcase_add_test(tc, attention_and_kv_write_match_reference);
    tcase_add_test(tc, moe_block_matches_reference);
    tcase_add_test(tc, moe_input_ids_out_of_range_are_refused);
    suite_add_tcase(s, tc);
    TCase *intel = tcase_create("intel"); /* opencl_ops_intel_emulate*: CK_RUN_CASE=intel */
    tcase_set_timeout(intel, 300);
    tcase_add_test(intel, intel_matmuls_match_reference);
    suite_add_tcase(s, intel);
    TCase *argmax = tcase_create("argmax"); /* opencl_ops_argmax_level_zero: CK_RUN_CASE=argmax */
    tcase_set_timeout(argmax, 300);
    tcase_add_test(argmax, argmax_matches_one_pass_loop);
    suite_add_tcase(s, argmax);
    return exo_check_run(s, CK_FORK_GETENV);
}
