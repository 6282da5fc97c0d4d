/* cpu_amx: every op against a small independent double-precision implementation written here.
 * Each test runs twice: with the reference kernels forced (EXO_CPU_KERNELS=ref) and with the
 * kernels the plugin picks for this CPU. */
#include "cpu_test_graph.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define TOL 1e-11 /* NMSE: float32 rounding of results that are exact in double is ~1e-15 */
#define T EXO_DIM_TOKENS

static const char *mode_name(int mode) { return mode == 0 ? "reference" : "default"; }
static void set_mode(int mode) {
    if (mode == 0) setenv("EXO_CPU_KERNELS", "ref", 1);
    else unsetenv("EXO_CPU_KERNELS");
}

static exo_compiled *compile_ok(tgraph *g) {
    exo_graph graph = tg_graph(g);
    exo_compiled *c = NULL;
    exo_status st = g->fx->api.graph_compile(g->fx->ctx, 0, &graph, &c);
    ck_assert_msg(st == EXO_OK, "compile: %s", g->fx->host.last_error);
    return c;
}

static void run_ok(tgraph *g, exo_compiled *c, uint32_t n_tokens) {
    exo_status st = tg_run(g, c, n_tokens);
    ck_assert_msg(st == EXO_OK, "execute: %s", g->fx->host.last_error);
}

static void check_close(const char *what, int mode, const float *got, const double *want, int64_t n, double tol) {
    double e = tg_nmse(got, want, n);
    ck_assert_msg(e < tol, "%s (%s kernels): NMSE %.3g >= %.3g (got[0] %g want[0] %g)", what, mode_name(mode), e, tol,
                  (double)got[0], want[0]);
    for (int64_t i = 0; i < n; i++) ck_assert_msg(isfinite(got[i]), "%s: element %lld not finite", what, (long long)i);
}

/* ---------------------------------------------------------------- GET_ROWS */

/* Builds a Q8_0 row set from floats: per block scale = max|x| / 127 (stored as f16). Returns
 * the dequantised values in `deq` so the expected math uses exactly what the plugin sees. */
static void make_q8_0(const float *src, int64_t n, uint8_t *out, double *deq) {
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(src[b * 32 + j]));
        uint16_t d16 = tg_f32_to_f16(amax / 127.0f);
        double d = tg_f16_to_f64(d16);
        uint8_t *blk = out + b * 34;
        memcpy(blk, &d16, 2);
        for (int j = 0; j < 32; j++) {
            int q = d > 0 ? (int)lrint(src[b * 32 + j] / d) : 0;
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            blk[2 + j] = (uint8_t)(int8_t)q;
            deq[b * 32 + j] = d * q;
        }
    }
}

/* Table values in `type`; `exact` receives each stored value as double. */
static void *make_weights(exo_dtype type, const float *src, int64_t n, double *exact) {
    if (type == EXO_DTYPE_F32) {
        float *w = malloc(n * 4);
        for (int64_t i = 0; i < n; i++) w[i] = src[i], exact[i] = src[i];
        return w;
    }
    if (type == EXO_DTYPE_Q8_0) {
        uint8_t *w = malloc(n / 32 * 34);
        make_q8_0(src, n, w, exact);
        return w;
    }
    uint16_t *w = malloc(n * 2);
    for (int64_t i = 0; i < n; i++) {
        w[i] = type == EXO_DTYPE_BF16 ? tg_f32_to_bf16(src[i]) : tg_f32_to_f16(src[i]);
        exact[i] = type == EXO_DTYPE_BF16 ? tg_bf16_to_f64(w[i]) : tg_f16_to_f64(w[i]);
    }
    return w;
}

static void get_rows_case(exo_dtype type) {
    enum { V = 10, H = 64, N = 4 };
    int32_t ids[N] = {5, 0, 9, 3};
    float src[V * H];
    double exact[V * H], want[N * H];
    tg_random(src, V * H, -2, 2, 11);
    void *table = make_weights(type, src, V * H, exact);
    for (int t = 0; t < N; t++)
        for (int j = 0; j < H; j++) want[t * H + j] = exact[ids[t] * H + j] * 1.5f;
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, 8);
        uint32_t w = tg_weight(&g, "token_embd", type, table, H, V);
        uint32_t id = tg_tensor(&g, "ids", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
        uint32_t out = tg_tensor(&g, "embd", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, H, T, 0, 0);
        uint32_t src2[] = {w, id};
        g.nodes[tg_node(&g, EXO_OP_GET_ROWS, out, 2, src2)].f[EXO_GET_ROWS_F_SCALE] = 1.5f;
        tg_alloc_bound(&g);
        tg_write(&g, id, ids, sizeof ids);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, N);
        float got[N * H];
        tg_read(&g, out, got, sizeof got);
        check_close("GET_ROWS", mode, got, want, N * H, TOL);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
    free(table);
}

START_TEST(get_rows_f32) { get_rows_case(EXO_DTYPE_F32); }
END_TEST
START_TEST(get_rows_f16) { get_rows_case(EXO_DTYPE_F16); }
END_TEST
START_TEST(get_rows_bf16) { get_rows_case(EXO_DTYPE_BF16); }
END_TEST
START_TEST(get_rows_q8_0) { get_rows_case(EXO_DTYPE_Q8_0); }
END_TEST

/* ---------------------------------------------------------------- RMS_NORM */

static void rms_norm_case(exo_dtype wtype, int one_plus) {
    enum { H = 40, N = 3 };
    float x[N * H], wsrc[H];
    double wexact[H], want[N * H];
    tg_random(x, N * H, -3, 3, 21);
    tg_random(wsrc, H, -1, 1, 22);
    void *w = make_weights(wtype, wsrc, H, wexact);
    const float eps = 1e-6f;
    for (int t = 0; t < N; t++) {
        double ss = 0;
        for (int j = 0; j < H; j++) ss += (double)x[t * H + j] * x[t * H + j];
        double inv = 1.0 / sqrt(ss / H + (double)eps);
        for (int j = 0; j < H; j++) want[t * H + j] = x[t * H + j] * inv * (one_plus ? 1.0 + wexact[j] : wexact[j]);
    }
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, 4);
        uint32_t wt = tg_weight(&g, "attn_norm", wtype, w, H, 0);
        uint32_t in = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, H, T, 0, 0);
        uint32_t out = tg_tensor(&g, "normed", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, H, T, 0, 0);
        uint32_t src[] = {in, wt};
        exo_node *nd = &g.nodes[tg_node(&g, EXO_OP_RMS_NORM, out, 2, src)];
        nd->f[EXO_RMS_NORM_F_EPS] = eps;
        nd->i[EXO_RMS_NORM_I_ADD_ONE] = one_plus;
        tg_alloc_bound(&g);
        tg_write(&g, in, x, sizeof x);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, N);
        float got[N * H];
        tg_read(&g, out, got, sizeof got);
        check_close("RMS_NORM", mode, got, want, N * H, TOL);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
    free(w);
}

START_TEST(rms_norm_weight) { rms_norm_case(EXO_DTYPE_F32, 0); }
END_TEST
START_TEST(rms_norm_one_plus_weight) { rms_norm_case(EXO_DTYPE_F32, 1); }
END_TEST
START_TEST(rms_norm_bf16_weight) { rms_norm_case(EXO_DTYPE_BF16, 1); }
END_TEST

/* ---------------------------------------------------------------- MATMUL */

static void matmul_case(exo_dtype wtype, int64_t k, int64_t n, int with_bias, int tokens) {
    float *x = malloc(sizeof(float) * tokens * k), *wsrc = malloc(sizeof(float) * n * k), *bias = malloc(sizeof(float) * n);
    double *wexact = malloc(sizeof(double) * n * k), *want = malloc(sizeof(double) * tokens * n);
    float *got = malloc(sizeof(float) * tokens * n);
    tg_random(x, tokens * k, -1, 1, 31);
    tg_random(wsrc, n * k, -1, 1, 32);
    tg_random(bias, n, -1, 1, 33);
    void *w = make_weights(wtype, wsrc, n * k, wexact);
    for (int t = 0; t < tokens; t++)
        for (int64_t o = 0; o < n; o++) {
            double acc = with_bias ? bias[o] : 0;
            for (int64_t j = 0; j < k; j++) acc += (double)x[t * k + j] * wexact[o * k + j];
            want[t * n + o] = acc;
        }
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, (uint32_t)tokens);
        uint32_t wt = tg_weight(&g, "attn_q", wtype, w, k, n);
        uint32_t bt = tg_weight(&g, "attn_q.bias", EXO_DTYPE_F32, bias, n, 0);
        uint32_t in = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, k, T, 0, 0);
        uint32_t out = tg_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, n, T, 0, 0);
        uint32_t src[] = {in, wt, bt};
        tg_node(&g, EXO_OP_MATMUL, out, with_bias ? 3 : 2, src);
        tg_alloc_bound(&g);
        tg_write(&g, in, x, sizeof(float) * tokens * k);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, (uint32_t)tokens);
        tg_read(&g, out, got, sizeof(float) * tokens * n);
        check_close("MATMUL", mode, got, want, tokens * n, 1e-11);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
    free(w), free(x), free(wsrc), free(bias), free(wexact), free(want), free(got);
}

START_TEST(matmul_f32_bias) { matmul_case(EXO_DTYPE_F32, 37, 19, 1, 3); }
END_TEST
START_TEST(matmul_f16) { matmul_case(EXO_DTYPE_F16, 40, 21, 0, 2); }
END_TEST
START_TEST(matmul_bf16) { matmul_case(EXO_DTYPE_BF16, 48, 17, 1, 3); }
END_TEST
START_TEST(matmul_q8_0) { matmul_case(EXO_DTYPE_Q8_0, 64, 9, 0, 3); }
END_TEST
START_TEST(matmul_prefill_bf16) { matmul_case(EXO_DTYPE_BF16, 72, 35, 1, 11); }
END_TEST

/* ---------------------------------------------------------------- ADD, MUL, GLU, SOFTCAP, COPY */

static void elementwise_case(exo_op op, int broadcast) {
    enum { H = 24, N = 3 };
    float a[N * H], b[N * H];
    double want[N * H];
    tg_random(a, N * H, -2, 2, 41);
    tg_random(b, N * H, -2, 2, 42);
    for (int i = 0; i < N * H; i++) {
        double bv = b[broadcast ? i % H : i];
        want[i] = op == EXO_OP_ADD ? a[i] + bv : a[i] * bv;
    }
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, 4);
        uint32_t ta = tg_tensor(&g, "a", EXO_DTYPE_F32, EXO_TENSOR_INPUT, H, T, 0, 0);
        uint32_t tb = broadcast ? tg_weight(&g, "b", EXO_DTYPE_F32, b, H, 0)
                                : tg_tensor(&g, "b", EXO_DTYPE_F32, EXO_TENSOR_INPUT, H, T, 0, 0);
        uint32_t out = tg_tensor(&g, "sum", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, H, T, 0, 0);
        uint32_t src[] = {ta, tb};
        tg_node(&g, op, out, 2, src);
        tg_alloc_bound(&g);
        tg_write(&g, ta, a, sizeof a);
        if (!broadcast) tg_write(&g, tb, b, sizeof b);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, N);
        float got[N * H];
        tg_read(&g, out, got, sizeof got);
        check_close(op == EXO_OP_ADD ? "ADD" : "MUL", mode, got, want, N * H, TOL);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
}

START_TEST(add_same_shape) { elementwise_case(EXO_OP_ADD, 0); }
END_TEST
START_TEST(add_row_broadcast) { elementwise_case(EXO_OP_ADD, 1); }
END_TEST
START_TEST(mul_same_shape) { elementwise_case(EXO_OP_MUL, 0); }
END_TEST

static void glu_case(int act) {
    enum { N = 200 };
    float gate[N], up[N];
    double want[N];
    tg_random(gate, N, -6, 6, 51);
    tg_random(up, N, -2, 2, 52);
    for (int i = 0; i < N; i++) {
        double x = gate[i];
        double a = act == EXO_ACT_SILU ? x / (1 + exp(-x))
                                       : 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        want[i] = a * up[i];
    }
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, 4);
        uint32_t tg_ = tg_tensor(&g, "gate", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 50, T, 0, 0);
        uint32_t tu = tg_tensor(&g, "up", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 50, T, 0, 0);
        uint32_t out = tg_tensor(&g, "act", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 50, T, 0, 0);
        uint32_t src[] = {tg_, tu};
        g.nodes[tg_node(&g, EXO_OP_GLU, out, 2, src)].i[EXO_GLU_I_ACT] = act;
        tg_alloc_bound(&g);
        tg_write(&g, tg_, gate, sizeof gate);
        tg_write(&g, tu, up, sizeof up);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, 4);
        float got[N];
        tg_read(&g, out, got, sizeof got);
        check_close(act == EXO_ACT_SILU ? "GLU silu" : "GLU gelu_tanh", mode, got, want, N, TOL);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
}

START_TEST(glu_silu) { glu_case(EXO_ACT_SILU); }
END_TEST
START_TEST(glu_gelu_tanh) { glu_case(EXO_ACT_GELU_TANH); }
END_TEST

START_TEST(softcap_tanh) {
    enum { N = 64 };
    float x[N];
    double want[N];
    tg_random(x, N, -40, 40, 61);
    for (int i = 0; i < N; i++) want[i] = 5.0 * tanh(x[i] / 5.0);
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 1);
        tgraph g;
        tg_init(&g, &fx, 1);
        uint32_t in = tg_tensor(&g, "logits", EXO_DTYPE_F32, EXO_TENSOR_INPUT, N, 0, 0, 0);
        uint32_t out = tg_tensor(&g, "capped", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, N, 0, 0, 0);
        g.nodes[tg_node(&g, EXO_OP_SOFTCAP, out, 1, &in)].f[EXO_SOFTCAP_F_CAP] = 5.0f;
        tg_alloc_bound(&g);
        tg_write(&g, in, x, sizeof x);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, 1);
        float got[N];
        tg_read(&g, out, got, sizeof got);
        check_close("SOFTCAP", mode, got, want, N, TOL);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
}
END_TEST

START_TEST(copy_converts_and_copies) {
    enum { N = 33 };
    float src[N];
    double exact[N];
    tg_random(src, N, -100, 100, 71);
    /* Include the special f16 values: subnormal, infinity, negative zero, largest normal. */
    uint16_t *h = make_weights(EXO_DTYPE_F16, src, N, exact);
    h[0] = 0x0001, exact[0] = ldexp(1, -24);
    h[1] = 0x03ff, exact[1] = ldexp(1023, -24);
    h[2] = 0x8000, exact[2] = -0.0;
    h[3] = 0x7bff, exact[3] = 65504.0;
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 1);
        tgraph g;
        tg_init(&g, &fx, 1);
        uint32_t w = tg_weight(&g, "half", EXO_DTYPE_F16, h, N, 0);
        uint32_t mid = tg_tensor(&g, "wide", EXO_DTYPE_F32, 0, N, 0, 0, 0);
        uint32_t out = tg_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, N, 0, 0, 0);
        tg_node(&g, EXO_OP_COPY, mid, 1, &w);
        tg_node(&g, EXO_OP_COPY, out, 1, &mid);
        tg_alloc_bound(&g);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, 1);
        float got[N];
        tg_read(&g, out, got, sizeof got);
        for (int i = 0; i < N; i++) ck_assert_msg((double)got[i] == exact[i], "COPY f16 %d: %.9g vs %.9g", i, got[i], exact[i]);
        ck_assert(signbit(got[2]));
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
    free(h);
}
END_TEST

/* ---------------------------------------------------------------- ROPE */

static void rope_case(int mode_rope, int n_rot, float factor) {
    enum { D = 16, H = 3, N = 4 };
    int32_t pos[N] = {0, 5, 17, 1000};
    float x[N * H * D], inv_freq[D / 2];
    double want[N * H * D];
    tg_random(x, N * H * D, -1, 1, 81);
    for (int i = 0; i < n_rot / 2; i++) inv_freq[i] = (float)pow(10000.0, -2.0 * i / n_rot);
    int half = n_rot / 2;
    for (int t = 0; t < N; t++)
        for (int h = 0; h < H; h++) {
            const float *xh = x + (t * H + h) * D;
            double *o = want + (t * H + h) * D;
            for (int j = 0; j < D; j++) o[j] = xh[j];
            for (int i = 0; i < half; i++) {
                float angle = (float)pos[t] * inv_freq[i]; /* HF: float32 product */
                double c = cos((double)angle) * factor, s = sin((double)angle) * factor;
                int i0 = mode_rope == EXO_ROPE_NEOX ? i : 2 * i, i1 = mode_rope == EXO_ROPE_NEOX ? i + half : 2 * i + 1;
                o[i0] = xh[i0] * c - xh[i1] * s;
                o[i1] = xh[i1] * c + xh[i0] * s;
            }
        }
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, N);
        uint32_t in = tg_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, D, H, T, 0);
        uint32_t tp = tg_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
        uint32_t tf = tg_weight(&g, "rope_freqs", EXO_DTYPE_F32, inv_freq, n_rot / 2, 0);
        uint32_t out = tg_tensor(&g, "q_rot", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, D, H, T, 0);
        uint32_t src[] = {in, tp, tf};
        exo_node *nd = &g.nodes[tg_node(&g, EXO_OP_ROPE, out, 3, src)];
        nd->i[EXO_ROPE_I_MODE] = mode_rope;
        nd->i[EXO_ROPE_I_N_ROT] = n_rot;
        nd->f[EXO_ROPE_F_ATTN_FACTOR] = factor;
        tg_alloc_bound(&g);
        tg_write(&g, in, x, sizeof x);
        tg_write(&g, tp, pos, sizeof pos);
        exo_compiled *c = compile_ok(&g);
        run_ok(&g, c, N);
        float got[N * H * D];
        tg_read(&g, out, got, sizeof got);
        check_close(mode_rope == EXO_ROPE_NEOX ? "ROPE neox" : "ROPE normal", mode, got, want, N * H * D, 1e-12);
        /* Dimensions past n_rot pass through unchanged. */
        for (int t = 0; t < N; t++)
            for (int j = n_rot; j < D; j++) ck_assert(got[t * H * D + j] == x[t * H * D + j]);
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
}

START_TEST(rope_neox_full) { rope_case(EXO_ROPE_NEOX, 16, 1.0f); }
END_TEST
START_TEST(rope_neox_partial_scaled) { rope_case(EXO_ROPE_NEOX, 12, 1.25f); }
END_TEST
START_TEST(rope_normal) { rope_case(EXO_ROPE_NORMAL, 16, 1.0f); }
END_TEST
START_TEST(rope_normal_partial) { rope_case(EXO_ROPE_NORMAL, 8, 0.5f); }
END_TEST

/* ---------------------------------------------------------------- KV_WRITE + ATTENTION */

typedef struct attn_cfg {
    int heads, kv_heads, dim, ctx, window;
    float softcap;
} attn_cfg;

/* Double-precision attention with the full score row (what the kernels must not materialise). */
static void attention_expected(const attn_cfg *cfg, const float *q, const float *kc, const float *vc,
                               const int32_t *pos, int tokens, double *out) {
    int D = cfg->dim, group = cfg->heads / cfg->kv_heads;
    double scale = 1.0 / sqrt((double)D);
    double *scores = malloc(sizeof(double) * cfg->ctx);
    for (int t = 0; t < tokens; t++)
        for (int h = 0; h < cfg->heads; h++) {
            int kvh = h / group, last = pos[t];
            int first = cfg->window > 0 && last - cfg->window + 1 > 0 ? last - cfg->window + 1 : 0;
            double max = -INFINITY, sum = 0;
            for (int r = first; r <= last; r++) {
                double s = 0;
                for (int j = 0; j < D; j++)
                    s += (double)q[(t * cfg->heads + h) * D + j] * kc[(r * cfg->kv_heads + kvh) * D + j];
                s *= (float)scale;
                if (cfg->softcap > 0) s = cfg->softcap * tanh(s / cfg->softcap);
                scores[r] = s;
                max = fmax(max, s);
            }
            for (int r = first; r <= last; r++) sum += exp(scores[r] - max);
            for (int j = 0; j < D; j++) {
                double acc = 0;
                for (int r = first; r <= last; r++)
                    acc += exp(scores[r] - max) / sum * vc[(r * cfg->kv_heads + kvh) * D + j];
                out[(t * cfg->heads + h) * D + j] = acc;
            }
        }
    free(scores);
}

typedef struct attn_graph {
    tgraph g;
    uint32_t q, k, v, pos, kc, vc, out;
} attn_graph;

static void build_attention(attn_graph *a, cpu_fixture *fx, const attn_cfg *cfg, uint32_t max_tokens) {
    tgraph *g = &a->g;
    tg_init(g, fx, max_tokens);
    a->q = tg_tensor(g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, cfg->dim, cfg->heads, T, 0);
    a->k = tg_tensor(g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, cfg->dim, cfg->kv_heads, T, 0);
    a->v = tg_tensor(g, "v", EXO_DTYPE_F32, EXO_TENSOR_INPUT, cfg->dim, cfg->kv_heads, T, 0);
    a->pos = tg_tensor(g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
    a->kc = tg_tensor(g, "cache_k", EXO_DTYPE_F32, EXO_TENSOR_KV, cfg->dim, cfg->kv_heads, cfg->ctx, 0);
    a->vc = tg_tensor(g, "cache_v", EXO_DTYPE_F32, EXO_TENSOR_KV, cfg->dim, cfg->kv_heads, cfg->ctx, 0);
    a->out = tg_tensor(g, "attn_out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, cfg->dim * cfg->heads, T, 0, 0);
    uint32_t wk[] = {a->k, a->pos}, wv[] = {a->v, a->pos}, at[] = {a->q, a->kc, a->vc, a->pos};
    tg_node(g, EXO_OP_KV_WRITE, a->kc, 2, wk);
    tg_node(g, EXO_OP_KV_WRITE, a->vc, 2, wv);
    exo_node *nd = &g->nodes[tg_node(g, EXO_OP_ATTENTION, a->out, 4, at)];
    nd->i[EXO_ATTENTION_I_N_HEADS] = cfg->heads;
    nd->i[EXO_ATTENTION_I_N_KV_HEADS] = cfg->kv_heads;
    nd->i[EXO_ATTENTION_I_HEAD_DIM] = cfg->dim;
    nd->i[EXO_ATTENTION_I_WINDOW] = cfg->window;
    nd->f[EXO_ATTENTION_F_SCALE] = (float)(1.0 / sqrt((double)cfg->dim));
    nd->f[EXO_ATTENTION_F_SOFTCAP] = cfg->softcap;
    tg_alloc_bound(g);
}

/* Prefill `tokens` positions 0.., then decode steps one token at a time, each a new execution
 * that must see the cache rows the earlier ones wrote. */
static void attention_case(const attn_cfg *cfg, int prefill, int decode_steps) {
    int D = cfg->dim, total = prefill + decode_steps;
    int q_row = cfg->heads * D, kv_row = cfg->kv_heads * D;
    float *q = malloc(sizeof(float) * total * q_row), *k = malloc(sizeof(float) * total * kv_row);
    float *v = malloc(sizeof(float) * total * kv_row), *got = malloc(sizeof(float) * total * q_row);
    double *want = malloc(sizeof(double) * total * q_row);
    int32_t *pos = malloc(sizeof(int32_t) * total);
    tg_random(q, total * q_row, -1, 1, 91);
    tg_random(k, total * kv_row, -1, 1, 92);
    tg_random(v, total * kv_row, -1, 1, 93);
    for (int t = 0; t < total; t++) pos[t] = t;
    attention_expected(cfg, q, k, v, pos, total, want); /* cache row r holds token r */
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        attn_graph a;
        build_attention(&a, &fx, cfg, (uint32_t)prefill);
        exo_compiled *c = compile_ok(&a.g);
        for (int step = 0; step <= decode_steps; step++) {
            int t0 = step == 0 ? 0 : prefill + step - 1, n = step == 0 ? prefill : 1;
            exo_test_host *h = &fx.host;
            (void)h;
            ck_assert_int_eq(fx.api.buffer_write(a.g.bound[a.q], 0, q + t0 * q_row, sizeof(float) * n * q_row), EXO_OK);
            ck_assert_int_eq(fx.api.buffer_write(a.g.bound[a.k], 0, k + t0 * kv_row, sizeof(float) * n * kv_row), EXO_OK);
            ck_assert_int_eq(fx.api.buffer_write(a.g.bound[a.v], 0, v + t0 * kv_row, sizeof(float) * n * kv_row), EXO_OK);
            ck_assert_int_eq(fx.api.buffer_write(a.g.bound[a.pos], 0, pos + t0, sizeof(int32_t) * n), EXO_OK);
            run_ok(&a.g, c, (uint32_t)n);
            ck_assert_int_eq(fx.api.buffer_read(a.g.bound[a.out], 0, got + t0 * q_row, sizeof(float) * n * q_row), EXO_OK);
        }
        check_close("ATTENTION", mode, got, want, (int64_t)total * q_row, 1e-11);
        /* The cache holds exactly what KV_WRITE put there. */
        float *cache = malloc(sizeof(float) * total * kv_row);
        ck_assert_int_eq(fx.api.buffer_read(a.g.bound[a.kc], 0, cache, sizeof(float) * total * kv_row), EXO_OK);
        ck_assert_mem_eq(cache, k, sizeof(float) * total * kv_row);
        free(cache);
        fx.api.compiled_free(c);
        tg_free(&a.g);
        fx_close(&fx);
    }
    free(q), free(k), free(v), free(got), free(want), free(pos);
}

START_TEST(attention_gqa_prefill) {
    attn_cfg cfg = {4, 2, 8, 16, 0, 0};
    attention_case(&cfg, 7, 0);
}
END_TEST
START_TEST(attention_mqa_decode_after_prefill) {
    attn_cfg cfg = {4, 1, 16, 16, 0, 0};
    attention_case(&cfg, 5, 3);
}
END_TEST
START_TEST(attention_sliding_window) {
    attn_cfg cfg = {2, 2, 8, 24, 3, 0};
    attention_case(&cfg, 9, 2);
}
END_TEST
START_TEST(attention_softcap) {
    attn_cfg cfg = {6, 3, 8, 16, 0, 2.5f};
    attention_case(&cfg, 6, 1);
}
END_TEST

START_TEST(attention_uses_positions_not_token_order) {
    /* Tokens at positions {3, 1} in one execution: each query sees rows up to its own position,
     * including rows written by the same execution's other token. */
    attn_cfg cfg = {2, 1, 8, 8, 0, 0};
    int q_row = 16, kv_row = 8;
    float q[2 * 16], k[8 * 8], v[8 * 8];
    tg_random(q, 32, -1, 1, 101);
    tg_random(k, 64, -1, 1, 102);
    tg_random(v, 64, -1, 1, 103);
    int32_t pos[2] = {3, 1};
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 1);
        attn_graph a;
        build_attention(&a, &fx, &cfg, 4);
        exo_compiled *c = compile_ok(&a.g);
        /* Pre-fill the cache rows 0..3 with k/v of "earlier" tokens, then overwrite 3 and 1. */
        ck_assert_int_eq(fx.api.buffer_write(a.g.bound[a.kc], 0, k, sizeof(float) * 4 * kv_row), EXO_OK);
        ck_assert_int_eq(fx.api.buffer_write(a.g.bound[a.vc], 0, v, sizeof(float) * 4 * kv_row), EXO_OK);
        float knew[16], vnew[16];
        memcpy(knew, k + 4 * kv_row, sizeof knew); /* new rows for positions 3 and 1 */
        memcpy(vnew, v + 4 * kv_row, sizeof vnew);
        tg_write(&a.g, a.q, q, sizeof q);
        tg_write(&a.g, a.k, knew, sizeof knew);
        tg_write(&a.g, a.v, vnew, sizeof vnew);
        tg_write(&a.g, a.pos, pos, sizeof pos);
        run_ok(&a.g, c, 2);
        float kc[32], vc[32], got[32];
        memcpy(kc, k, sizeof kc);
        memcpy(vc, v, sizeof vc);
        memcpy(kc + 3 * kv_row, knew, 32), memcpy(kc + 1 * kv_row, knew + 8, 32);
        memcpy(vc + 3 * kv_row, vnew, 32), memcpy(vc + 1 * kv_row, vnew + 8, 32);
        double want[32];
        attention_expected(&cfg, q, kc, vc, pos, 2, want);
        tg_read(&a.g, a.out, got, sizeof got);
        check_close("ATTENTION by position", mode, got, want, 2 * q_row, 1e-11);
        fx.api.compiled_free(c);
        tg_free(&a.g);
        fx_close(&fx);
    }
}
END_TEST

/* ---------------------------------------------------------------- a small chain */

START_TEST(chain_reuses_scratch_correctly) {
    /* x -> norm -> matmul -> glu(self, self) -> add x: intermediates share planned scratch. */
    enum { H = 32, N = 3 };
    float x[N * H], w[H * H], nw[H];
    tg_random(x, N * H, -1, 1, 111);
    tg_random(w, H * H, -0.3f, 0.3f, 112);
    tg_random(nw, H, 0.5f, 1.5f, 113);
    double want[N * H];
    for (int t = 0; t < N; t++) {
        double ss = 0, normed[H], y[H];
        for (int j = 0; j < H; j++) ss += (double)x[t * H + j] * x[t * H + j];
        for (int j = 0; j < H; j++) normed[j] = x[t * H + j] / sqrt(ss / H + 1e-5) * nw[j];
        for (int o = 0; o < H; o++) {
            y[o] = 0;
            for (int j = 0; j < H; j++) y[o] += (double)(float)normed[j] * w[o * H + j];
        }
        for (int o = 0; o < H; o++) want[t * H + o] = y[o] / (1 + exp(-y[o])) * y[o] + x[t * H + o];
    }
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, N);
        uint32_t in = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, H, T, 0, 0);
        uint32_t tnw = tg_weight(&g, "norm", EXO_DTYPE_F32, nw, H, 0);
        uint32_t tw = tg_weight(&g, "proj", EXO_DTYPE_F32, w, H, H);
        uint32_t n1 = tg_tensor(&g, "normed", EXO_DTYPE_F32, 0, H, T, 0, 0);
        uint32_t y = tg_tensor(&g, "y", EXO_DTYPE_F32, 0, H, T, 0, 0);
        uint32_t act = tg_tensor(&g, "act", EXO_DTYPE_F32, 0, H, T, 0, 0);
        uint32_t out = tg_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, H, T, 0, 0);
        uint32_t s1[] = {in, tnw}, s2[] = {n1, tw}, s3[] = {y, y}, s4[] = {act, in};
        g.nodes[tg_node(&g, EXO_OP_RMS_NORM, n1, 2, s1)].f[EXO_RMS_NORM_F_EPS] = 1e-5f;
        tg_node(&g, EXO_OP_MATMUL, y, 2, s2);
        tg_node(&g, EXO_OP_GLU, act, 2, s3);
        tg_node(&g, EXO_OP_ADD, out, 2, s4);
        tg_alloc_bound(&g);
        tg_write(&g, in, x, sizeof x);
        exo_compiled *c = compile_ok(&g);
        for (int rep = 0; rep < 2; rep++) {
            run_ok(&g, c, N);
            float got[N * H];
            tg_read(&g, out, got, sizeof got);
            check_close("chain", mode, got, want, N * H, 1e-11);
        }
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
}
END_TEST

/* ---------------------------------------------------------------- MOE_* (ABI 1.4) */

/* Routing against a straightforward implementation: softmax over all experts in double, the k
 * best by a full scan (ties: the lower expert id), their probabilities, renormalised or not.
 * Tokens 1-3 carry ties: for first place, at the k-th place (the (k+1)-th ties the k-th), and
 * every expert equal. */
static void moe_route_case(int64_t experts, int64_t k, int normalize) {
    enum { TOK = 6 };
    float logits[TOK * 16];
    tg_random(logits, TOK * experts, -2, 2, 71);
    logits[1 * experts + 2] = logits[1 * experts + 4] = 3.0f;          /* tie for first */
    for (int64_t e = 0; e < experts; e++) logits[2 * experts + e] = -1.0f - (float)e;
    logits[2 * experts + k] = logits[2 * experts + k - 1];             /* tie at the k-th place */
    for (int64_t e = 0; e < experts; e++) logits[3 * experts + e] = 0.5f; /* all equal */
    int32_t want_ids[TOK * 16];
    double want_w[TOK * 16];
    for (int t = 0; t < TOK; t++) {
        double p[16], mx = logits[t * experts], sum = 0;
        for (int64_t e = 0; e < experts; e++) mx = fmax(mx, logits[t * experts + e]);
        for (int64_t e = 0; e < experts; e++) sum += p[e] = exp(logits[t * experts + e] - mx);
        for (int64_t e = 0; e < experts; e++) p[e] /= sum;
        int taken[16] = {0};
        double picked = 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t best = -1;
            for (int64_t e = 0; e < experts; e++)
                if (!taken[e] && (best < 0 || logits[t * experts + e] > logits[t * experts + best])) best = e;
            taken[best] = 1;
            want_ids[t * k + j] = (int32_t)best;
            want_w[t * k + j] = p[best];
            picked += p[best];
        }
        if (normalize)
            for (int64_t j = 0; j < k; j++) want_w[t * k + j] /= picked;
    }
    ck_assert_int_eq(want_ids[1 * k + 0], 2); /* the fixture's ties are what they claim */
    ck_assert_int_eq(want_ids[2 * k + k - 1], (int32_t)(k - 1));
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, TOK);
        uint32_t in = tg_tensor(&g, "router_logits", EXO_DTYPE_F32, EXO_TENSOR_INPUT, experts, T, 0, 0);
        uint32_t ids = tg_tensor(&g, "moe_ids", EXO_DTYPE_I32, EXO_TENSOR_OUTPUT, k, T, 0, 0);
        uint32_t w = tg_tensor(&g, "moe_weights", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, k, T, 0, 0);
        uint32_t n1 = tg_node(&g, EXO_OP_MOE_TOPK, ids, 1, &in);
        g.nodes[n1].i[EXO_MOE_TOPK_I_K] = (int32_t)k;
        g.nodes[n1].i[EXO_MOE_TOPK_I_RULE] = EXO_MOE_RULE_SOFTMAX;
        uint32_t n2 = tg_node(&g, EXO_OP_MOE_WEIGHTS, w, 2, (uint32_t[]){in, ids});
        g.nodes[n2].i[EXO_MOE_WEIGHTS_I_RULE] = EXO_MOE_RULE_SOFTMAX;
        g.nodes[n2].i[EXO_MOE_WEIGHTS_I_NORMALIZE] = normalize;
        g.nodes[n2].f[EXO_MOE_WEIGHTS_F_SCALE] = 1.0f;
        tg_alloc_bound(&g);
        tg_write(&g, in, logits, sizeof(float) * TOK * experts);
        exo_compiled *c = compile_ok(&g);
        for (uint32_t tokens = 1; tokens <= TOK; tokens += TOK - 1) {
            int32_t got_ids[TOK * 16];
            float got_w[TOK * 16];
            run_ok(&g, c, tokens);
            tg_read(&g, ids, got_ids, sizeof(int32_t) * tokens * k);
            tg_read(&g, w, got_w, sizeof(float) * tokens * k);
            for (int64_t i = 0; i < (int64_t)tokens * k; i++)
                ck_assert_msg(got_ids[i] == want_ids[i], "MOE_TOPK (%s kernels) token %lld slot %lld: expert %d, want %d",
                              mode_name(mode), (long long)(i / k), (long long)(i % k), got_ids[i], want_ids[i]);
            check_close("MOE_WEIGHTS", mode, got_w, want_w, tokens * k, 1e-11);
        }
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
}

START_TEST(moe_route_top2_renormalised) { moe_route_case(6, 2, 1); }
END_TEST
START_TEST(moe_route_top3_plain) { moe_route_case(8, 3, 0); }
END_TEST

/* The expert-indexed matmul (table and stacked weights, x per token and per slot) and the
 * weighted combine, against per-(token, slot) dot products. Expert 0 takes every token (more
 * rows than the decode kernel's 4: the prefill path); the others a few each. */
static void moe_matmul_case(exo_dtype wtype, int stacked, int per_slot) {
    enum { E = 4, K = 40, N = 24, KS = 2, TOK = 9 };
    float *x = malloc(sizeof(float) * TOK * KS * K), *wsrc = malloc(sizeof(float) * E * N * K);
    double *wexact = malloc(sizeof(double) * E * N * K), *want_y = malloc(sizeof(double) * TOK * KS * N);
    double *want_o = malloc(sizeof(double) * TOK * N);
    float *got = malloc(sizeof(float) * TOK * KS * N), rw[TOK * KS];
    int32_t ids[TOK * KS];
    tg_random(x, TOK * KS * K, -1, 1, 81);
    tg_random(wsrc, E * N * K, -1, 1, 82);
    tg_random(rw, TOK * KS, 0, 1, 83);
    for (int t = 0; t < TOK; t++) ids[t * KS] = 0, ids[t * KS + 1] = 1 + t % (E - 1);
    void *w = make_weights(wtype, wsrc, E * N * K, wexact);
    for (int t = 0; t < TOK; t++)
        for (int j = 0; j < KS; j++)
            for (int o = 0; o < N; o++) {
                const float *xr = x + (per_slot ? t * KS + j : t) * K;
                double acc = 0;
                for (int q = 0; q < K; q++) acc += (double)xr[q] * wexact[((int64_t)ids[t * KS + j] * N + o) * K + q];
                want_y[(t * KS + j) * N + o] = acc;
            }
    for (int t = 0; t < TOK; t++)
        for (int o = 0; o < N; o++)
            want_o[t * N + o] = rw[t * KS] * want_y[(t * KS) * N + o] + rw[t * KS + 1] * want_y[(t * KS + 1) * N + o];
    size_t esize = exo_dtype_size(wtype);
    for (int mode = 0; mode < 2; mode++) {
        set_mode(mode);
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, TOK);
        uint32_t w0;
        if (stacked) {
            w0 = tg_weight(&g, "experts", wtype, w, K, N * E);
            g.tensors[w0].n_dims = 3, g.tensors[w0].ne[1] = N, g.tensors[w0].ne[2] = E;
        } else {
            w0 = tg_weight(&g, "expert.0", wtype, w, K, N);
            for (int e = 1; e < E; e++) tg_weight(&g, "expert.n", wtype, (const char *)w + (size_t)e * N * K * esize, K, N);
        }
        uint32_t in = per_slot ? tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, K, KS, T, 0)
                               : tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, K, T, 0, 0);
        uint32_t ti = tg_tensor(&g, "ids", EXO_DTYPE_I32, EXO_TENSOR_INPUT, KS, T, 0, 0);
        uint32_t tw = tg_tensor(&g, "w", EXO_DTYPE_F32, EXO_TENSOR_INPUT, KS, T, 0, 0);
        uint32_t y = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, N, KS, T, 0);
        uint32_t out = tg_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, N, T, 0, 0);
        uint32_t nm = tg_node(&g, EXO_OP_MOE_MATMUL, y, 3, (uint32_t[]){in, ti, w0});
        g.nodes[nm].i[EXO_MOE_MATMUL_I_N_EXPERTS] = E;
        tg_node(&g, EXO_OP_MOE_COMBINE, out, 2, (uint32_t[]){y, tw});
        tg_alloc_bound(&g);
        tg_write(&g, in, x, sizeof(float) * TOK * (per_slot ? KS : 1) * K);
        tg_write(&g, ti, ids, sizeof ids);
        tg_write(&g, tw, rw, sizeof rw);
        exo_compiled *c = compile_ok(&g);
        for (uint32_t tokens = 1; tokens <= TOK; tokens += TOK - 1) {
            run_ok(&g, c, tokens);
            tg_read(&g, y, got, sizeof(float) * tokens * KS * N);
            check_close("MOE_MATMUL", mode, got, want_y, tokens * KS * N, 1e-11);
            tg_read(&g, out, got, sizeof(float) * tokens * N);
            check_close("MOE_COMBINE", mode, got, want_o, tokens * N, 1e-11);
        }
        /* An expert id out of range is refused at run time, naming it. */
        int32_t bad[TOK * KS];
        memcpy(bad, ids, sizeof bad);
        bad[1] = E;
        tg_write(&g, ti, bad, sizeof bad);
        ck_assert_int_eq(tg_run(&g, c, 1), EXO_ERR_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(fx.host.last_error, "expert id"));
        fx.api.compiled_free(c);
        tg_free(&g);
        fx_close(&fx);
    }
    free(w), free(x), free(wsrc), free(wexact), free(want_y), free(want_o), free(got);
}

START_TEST(moe_matmul_table_f32) { moe_matmul_case(EXO_DTYPE_F32, 0, 0); }
END_TEST
START_TEST(moe_matmul_table_bf16_per_slot) { moe_matmul_case(EXO_DTYPE_BF16, 0, 1); }
END_TEST
START_TEST(moe_matmul_stacked_f16) { moe_matmul_case(EXO_DTYPE_F16, 1, 0); }
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, get_rows_f32);
    tcase_add_test(tc, get_rows_f16);
    tcase_add_test(tc, get_rows_bf16);
    tcase_add_test(tc, get_rows_q8_0);
    tcase_add_test(tc, rms_norm_weight);
    tcase_add_test(tc, rms_norm_one_plus_weight);
    tcase_add_test(tc, rms_norm_bf16_weight);
    tcase_add_test(tc, matmul_f32_bias);
    tcase_add_test(tc, matmul_f16);
    tcase_add_test(tc, matmul_bf16);
    tcase_add_test(tc, matmul_q8_0);
    tcase_add_test(tc, matmul_prefill_bf16);
    tcase_add_test(tc, add_same_shape);
    tcase_add_test(tc, add_row_broadcast);
    tcase_add_test(tc, mul_same_shape);
    tcase_add_test(tc, glu_silu);
    tcase_add_test(tc, glu_gelu_tanh);
    tcase_add_test(tc, softcap_tanh);
    tcase_add_test(tc, copy_converts_and_copies);
    tcase_add_test(tc, rope_neox_full);
    tcase_add_test(tc, rope_neox_partial_scaled);
    tcase_add_test(tc, rope_normal);
    tcase_add_test(tc, rope_normal_partial);
    tcase_add_test(tc, attention_gqa_prefill);
    tcase_add_test(tc, attention_mqa_decode_after_prefill);
    tcase_add_test(tc, attention_sliding_window);
    tcase_add_test(tc, attention_softcap);
    tcase_add_test(tc, attention_uses_positions_not_token_order);
    tcase_add_test(tc, chain_reuses_scratch_correctly);
    tcase_add_test(tc, moe_route_top2_renormalised);
    tcase_add_test(tc, moe_route_top3_plain);
    tcase_add_test(tc, moe_matmul_table_f32);
    tcase_add_test(tc, moe_matmul_table_bf16_per_slot);
    tcase_add_test(tc, moe_matmul_stacked_f16);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
