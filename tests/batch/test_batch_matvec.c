/* The matmuls of a batched decode step on a GPU plugin (EXO_TEST_GPU_PLUGIN: opencl on PoCL,
 * level_zero on the test driver): at 5, 8, 9, 12 and 16 rows, one per sequence, they take the
 * batched-step matvecs (kernels/matvec_batch.cl: exo_matmul_vecb8* up to 8 rows, vecb16* up to
 * 16; the tensor-core exo_matmul_mmab8* for bf16 up to 8, emulated; plugins/gpu_common/README.md
 * "Batched steps"), and every row must equal the same graph stepped with that row alone (the
 * one-token kernels) to NMSE 1e-10, and the CPU plugin's reference kernels (the oracle) to 1e-9,
 * as the other matmul tests. Per weight storage (f32,
 * f16, bf16, MLX 4- and 8-bit with each scale dtype and group) four graphs: RMS_NORM then q/k/v
 * (the x3 launch, members of row counts that are no multiple of the rows per item), RMS_NORM
 * then gate/up and their GLU (one launch), a matmul and its residual ADD (one launch), a lone
 * matmul with a bias (K 2048 for bf16 and 4-bit, the 1B shape's). Formats the wide loads do not take (MLX 3-bit,
 * bf16 weights 2 elements into their buffer) run those rows in launches of the one-token kernels, up to 4
 * rows each, and must match too. On opencl the per-kernel profile (EXO_OPENCL_PROFILE) must
 * show the batched-step kernels ran. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "op_harness.h"

#define TOKENS_DIM EXO_DIM_TOKENS
#define MAX_ROWS 16
#define NMSE_ALONE 1e-10
#define NMSE_REFERENCE 1e-9

static oh_device gpu, ref;
static const char *gpu_name;
static const uint32_t ROWS[] = {5, 8, 9, 12, 16};
#define N_ROWS (sizeof ROWS / sizeof ROWS[0])

static void open_both(void) {
    char why[1200];
    gpu_name = getenv("EXO_TEST_GPU_PLUGIN");
    ck_assert_msg(gpu_name != NULL, "EXO_TEST_GPU_PLUGIN names the plugin under test");
    setenv("EXO_CPU_KERNELS", "ref", 1);
    setenv("EXO_OPENCL_PROFILE", "1", 1);
    if (oh_open(&gpu, gpu_name, why, sizeof why) != 0) {
        fprintf(stderr, "skip: no %s device: %s\n", gpu_name, why);
        exit(77);
    }
    ck_assert_msg(oh_open(&ref, "cpu_amx", why, sizeof why) == 0, "%s", why);
}

/* Closes both; returns the GPU plugin's log lines from its close (the profile on opencl). */
static char *close_both(void) {
    gpu.host.log[0] = '\0';
    oh_close(&gpu);
    oh_close(&ref);
    return strdup(gpu.host.log);
}

/* A weight storage: a float dtype, or MLX_AFFINE with bits, group and scale dtype; the weight's
 * byte offset in its buffer. */
typedef struct wfmt {
    exo_dtype dtype;
    uint32_t bits, group;
    exo_dtype qt;
    uint64_t offset;
} wfmt;

static const char *dtype_name(exo_dtype t) {
    switch (t) {
    case EXO_DTYPE_F16: return "f16";
    case EXO_DTYPE_BF16: return "bf16";
    case EXO_DTYPE_MLX_AFFINE: return "mlx";
    default: return "f32";
    }
}

/* Allocations of one graph's weights, freed after the case. */
typedef struct pool {
    void *p[24];
    int n;
} pool;
static void *keep(pool *pl, void *p) {
    ck_assert_int_lt(pl->n, 24);
    return pl->p[pl->n++] = p;
}
static void release(pool *pl) {
    for (int i = 0; i < pl->n; i++) free(pl->p[i]);
    pl->n = 0;
}

/* Weight [K, rows] of format f with random values (MLX: random codes, a little-endian bit
 * stream per row, and random scales and biases, some biases zero), placed at f->offset in its
 * buffer by the harness. */
static uint32_t weight(oh_graph *g, pool *pl, const char *name, const wfmt *f, int64_t K, int64_t rows, uint32_t seed) {
    if (f->dtype != EXO_DTYPE_MLX_AFFINE) {
        float *v = malloc((size_t)(K * rows) * 4);
        oh_random(v, K * rows, -1.0f, 1.0f, seed);
        void *bytes = keep(pl, oh_float_bytes(f->dtype, v, K * rows));
        free(v);
        return oh_weight(g, name, f->dtype, bytes, f->offset, 2, K, rows);
    }
    int64_t wpr = K * f->bits / 32, groups = K / f->group;
    uint32_t *words = keep(pl, calloc((size_t)(wpr * rows), 4));
    uint32_t state = seed * 2654435761u + 1u;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < K; j++) {
            state = state * 1664525u + 1013904223u;
            uint32_t q = (state >> 8) & ((1u << f->bits) - 1u);
            uint64_t p = (uint64_t)j * f->bits;
            uint32_t *row = words + r * wpr, sh = (uint32_t)(p % 32);
            row[p / 32] |= q << sh;
            if (sh + f->bits > 32) row[p / 32 + 1] |= q >> (32 - sh);
        }
    float *sv = malloc((size_t)(groups * rows) * 4), *bv = malloc((size_t)(groups * rows) * 4);
    oh_random(sv, groups * rows, -0.2f, 0.2f, seed + 1);
    oh_random(bv, groups * rows, -0.5f, 0.5f, seed + 2);
    for (int64_t i = 0; i < groups * rows; i += 7) bv[i] = 0.0f;
    void *sb = keep(pl, oh_float_bytes(f->qt, sv, groups * rows)), *bb = keep(pl, oh_float_bytes(f->qt, bv, groups * rows));
    free(sv);
    free(bv);
    char sname[48], bname[48];
    snprintf(sname, sizeof sname, "%s.scales", name);
    snprintf(bname, sizeof bname, "%s.biases", name);
    uint32_t st = oh_weight(g, sname, f->qt, sb, 0, 2, groups, rows);
    uint32_t bt = oh_weight(g, bname, f->qt, bb, 0, 2, groups, rows);
    uint32_t wt = oh_weight(g, name, EXO_DTYPE_MLX_AFFINE, words, f->offset, 2, K, rows);
    g->tensors[wt].q_bits = f->bits;
    g->tensors[wt].q_group = f->group;
    g->tensors[wt].q_scales = st;
    g->tensors[wt].q_biases = bt;
    return wt;
}

/* Inputs (tensor, values per row) and outputs of one graph. */
typedef struct io {
    uint32_t in[2], n_in, out[3], n_out;
    int64_t in_row[2]; /* floats per row */
} io;

static double nmse_rows(const float *a, const float *b, int64_t n) { return oh_nmse(a, b, n); }

/* Runs g at each row count of ROWS on the GPU and on the reference, then every row alone on
 * the GPU, and checks both distances for every output. */
static void check_graph(const oh_graph *g, const io *x, const char *what, uint32_t seed) {
    oh_run a, b;
    ck_assert_msg(oh_start(&a, &gpu, g) == EXO_OK, "%s %s: %s", gpu_name, what, gpu.host.last_error);
    ck_assert_msg(oh_start(&b, &ref, g) == EXO_OK, "cpu %s: %s", what, ref.host.last_error);
    float *data[2];
    for (uint32_t i = 0; i < x->n_in; i++) {
        data[i] = malloc((size_t)(MAX_ROWS * x->in_row[i]) * 4);
        oh_random(data[i], MAX_ROWS * x->in_row[i], -1.0f, 1.0f, seed + i);
    }
    double worst_alone = 0.0, worst_ref = 0.0;
    for (uint32_t ri = 0; ri < N_ROWS; ri++) {
        uint32_t T = ROWS[ri];
        for (uint32_t i = 0; i < x->n_in; i++) {
            /* Each row count its own rows: shift the window so the steps differ. */
            const float *rows = data[i] + (ri % 2) * x->in_row[i] * (MAX_ROWS - T);
            uint64_t bytes = (uint64_t)(T * x->in_row[i]) * 4;
            ck_assert_int_eq(oh_write(&a, x->in[i], rows, bytes), EXO_OK);
            ck_assert_int_eq(oh_write(&b, x->in[i], rows, bytes), EXO_OK);
        }
        ck_assert_msg(oh_exec(&a, T) == EXO_OK, "%s %s, %u rows: %s", gpu_name, what, T, gpu.host.last_error);
        ck_assert_msg(oh_exec(&b, T) == EXO_OK, "cpu %s, %u rows: %s", what, T, ref.host.last_error);
        float *batched[3], *alone[3];
        for (uint32_t o = 0; o < x->n_out; o++) {
            uint64_t bytes = oh_bytes(g, x->out[o], T);
            batched[o] = malloc(bytes);
            alone[o] = malloc(bytes);
            float *r = malloc(bytes);
            ck_assert_int_eq(oh_read(&a, x->out[o], batched[o], bytes), EXO_OK);
            ck_assert_int_eq(oh_read(&b, x->out[o], r, bytes), EXO_OK);
            double e = nmse_rows(batched[o], r, (int64_t)(bytes / 4));
            if (!(e <= worst_ref)) worst_ref = e;
            free(r);
        }
        for (uint32_t t = 0; t < T; t++) {
            for (uint32_t i = 0; i < x->n_in; i++) {
                const float *rows = data[i] + (ri % 2) * x->in_row[i] * (MAX_ROWS - T);
                ck_assert_int_eq(oh_write(&a, x->in[i], rows + t * x->in_row[i], (uint64_t)x->in_row[i] * 4), EXO_OK);
            }
            ck_assert_msg(oh_exec(&a, 1) == EXO_OK, "%s %s, row %u alone: %s", gpu_name, what, t, gpu.host.last_error);
            for (uint32_t o = 0; o < x->n_out; o++) {
                uint64_t row_bytes = oh_bytes(g, x->out[o], 1);
                ck_assert_int_eq(oh_read(&a, x->out[o], (uint8_t *)alone[o] + t * row_bytes, row_bytes), EXO_OK);
            }
        }
        for (uint32_t o = 0; o < x->n_out; o++) {
            double e = nmse_rows(batched[o], alone[o], (int64_t)(oh_bytes(g, x->out[o], T) / 4));
            if (!(e <= worst_alone)) worst_alone = e;
            free(batched[o]);
            free(alone[o]);
        }
    }
    for (uint32_t i = 0; i < x->n_in; i++) free(data[i]);
    oh_stop(&a);
    oh_stop(&b);
    printf("nmse %-44s vs alone %.3e, vs reference %.3e\n", what, worst_alone, worst_ref);
    fflush(stdout);
    ck_assert_msg(worst_alone <= NMSE_ALONE, "%s: batched rows vs alone NMSE %.3e exceeds %.1e", what, worst_alone, NMSE_ALONE);
    ck_assert_msg(worst_ref <= NMSE_REFERENCE, "%s: vs reference NMSE %.3e exceeds %.1e", what, worst_ref, NMSE_REFERENCE);
}

/* The four graphs of one format at inner size K and N output rows. */
static void check_format(const wfmt *f, int64_t K, int64_t N, uint32_t seed) {
    char what[96], name[64];
    if (f->dtype == EXO_DTYPE_MLX_AFFINE)
        snprintf(name, sizeof name, "q%u g%u %s%s", f->bits, f->group, dtype_name(f->qt), f->offset ? " @offset" : "");
    else
        snprintf(name, sizeof name, "%s%s", dtype_name(f->dtype), f->offset ? " @offset" : "");
    float *nw = malloc((size_t)K * 4), *b = malloc((size_t)(4 * N) * 4);
    oh_random(nw, K, 0.5f, 1.5f, seed);
    oh_random(b, 4 * N, -0.5f, 0.5f, seed + 1);
    const float eps = 1e-5f;
    const int32_t no_add_one = 0, add_one = 1, act = EXO_ACT_SILU;
    pool pl = {.n = 0};
    { /* RMS_NORM, then q/k/v (q with a bias), rows N, N - 5, N - 3 */
        oh_graph g;
        oh_init(&g, MAX_ROWS);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t nwt = oh_weight(&g, "norm", EXO_DTYPE_F32, nw, 0, 1, K, 0);
        uint32_t h = oh_tensor(&g, "h", EXO_DTYPE_F32, 0, 2, K, TOKENS_DIM, 0);
        uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, N, 0);
        oh_node(&g, EXO_OP_RMS_NORM, h, 2, (uint32_t[]){in, nwt}, &no_add_one, 1, &eps, 1);
        io x = {.in = {in}, .n_in = 1, .n_out = 3, .in_row = {K}};
        static const int64_t less[3] = {0, 5, 3};
        for (int i = 0; i < 3; i++) {
            char wn[8] = {'W', "qkv"[i], 0}, on[8] = {'y', "qkv"[i], 0};
            uint32_t wt = weight(&g, &pl, wn, f, K, N - less[i], seed + 10 + (uint32_t)i);
            x.out[i] = oh_tensor(&g, on, EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N - less[i], TOKENS_DIM, 0);
            oh_node(&g, EXO_OP_MATMUL, x.out[i], i == 0 ? 3 : 2, (uint32_t[]){h, wt, bt}, NULL, 0, NULL, 0);
        }
        snprintf(what, sizeof what, "NORM+QKV K %lld N %lld %s", (long long)K, (long long)N, name);
        check_graph(&g, &x, what, seed + 20);
        release(&pl);
    }
    { /* RMS_NORM (1 + w), gate and up, their GLU */
        oh_graph g;
        oh_init(&g, MAX_ROWS);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t nwt = oh_weight(&g, "norm", EXO_DTYPE_F32, nw, 0, 1, K, 0);
        uint32_t h = oh_tensor(&g, "h", EXO_DTYPE_F32, 0, 2, K, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_RMS_NORM, h, 2, (uint32_t[]){in, nwt}, &add_one, 1, &eps, 1);
        uint32_t wg = weight(&g, &pl, "Wg", f, K, N, seed + 30), wu = weight(&g, &pl, "Wu", f, K, N, seed + 31);
        uint32_t gt = oh_tensor(&g, "g", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
        uint32_t ut = oh_tensor(&g, "u", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
        uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_MATMUL, gt, 2, (uint32_t[]){h, wg}, NULL, 0, NULL, 0);
        oh_node(&g, EXO_OP_MATMUL, ut, 2, (uint32_t[]){h, wu}, NULL, 0, NULL, 0);
        oh_node(&g, EXO_OP_GLU, out, 2, (uint32_t[]){gt, ut}, &act, 1, NULL, 0);
        io x = {.in = {in}, .n_in = 1, .out = {out}, .n_out = 1, .in_row = {K}};
        snprintf(what, sizeof what, "NORM+GLU K %lld N %lld %s", (long long)K, (long long)N, name);
        check_graph(&g, &x, what, seed + 40);
        release(&pl);
    }
    { /* o_proj and the residual ADD */
        oh_graph g;
        oh_init(&g, MAX_ROWS);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t res = oh_tensor(&g, "r", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, N, TOKENS_DIM, 0);
        uint32_t wo = weight(&g, &pl, "Wo", f, K, N, seed + 50);
        uint32_t y = oh_tensor(&g, "y", EXO_DTYPE_F32, 0, 2, N, TOKENS_DIM, 0);
        uint32_t out = oh_tensor(&g, "out", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_MATMUL, y, 2, (uint32_t[]){in, wo}, NULL, 0, NULL, 0);
        oh_node(&g, EXO_OP_ADD, out, 2, (uint32_t[]){y, res}, NULL, 0, NULL, 0);
        io x = {.in = {in, res}, .n_in = 2, .out = {out}, .n_out = 1, .in_row = {K, N}};
        snprintf(what, sizeof what, "MATMUL+ADD K %lld N %lld %s", (long long)K, (long long)N, name);
        check_graph(&g, &x, what, seed + 60);
        release(&pl);
    }
    { /* a lone matmul with a bias, 3N rows (the lm_head's place) */
        oh_graph g;
        oh_init(&g, MAX_ROWS);
        uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, TOKENS_DIM, 0);
        uint32_t wt = weight(&g, &pl, "W", f, K, 3 * N + 1, seed + 70);
        uint32_t bt = oh_weight(&g, "bias", EXO_DTYPE_F32, b, 0, 1, 3 * N + 1, 0);
        uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, 3 * N + 1, TOKENS_DIM, 0);
        oh_node(&g, EXO_OP_MATMUL, out, 3, (uint32_t[]){in, wt, bt}, NULL, 0, NULL, 0);
        io x = {.in = {in}, .n_in = 1, .out = {out}, .n_out = 1, .in_row = {K}};
        snprintf(what, sizeof what, "MATMUL K %lld N %lld %s", (long long)K, (long long)(3 * N + 1), name);
        check_graph(&g, &x, what, seed + 80);
        release(&pl);
    }
    free(nw);
    free(b);
}

/* On opencl, whether the profile in `log` lists kernel `name`. */
static void ran(const char *log, const char *name) {
    if (strcmp(gpu_name, "opencl") != 0) return;
    char needle[80];
    snprintf(needle, sizeof needle, "profile:   %s ", name);
    ck_assert_msg(strstr(log, needle) != NULL, "kernel %s never ran; the profile:\n%s", name, log);
}

START_TEST(float_weights_match_rows_alone) {
    open_both();
    static const wfmt fmts[] = {{EXO_DTYPE_F32, 0, 0, 0, 0}, {EXO_DTYPE_F16, 0, 0, 0, 16}, {EXO_DTYPE_BF16, 0, 0, 0, 0}};
    for (int i = 0; i < 3; i++) check_format(&fmts[i], i == 2 ? 2048 : 384, 37, 100 + 100 * (uint32_t)i);
    /* bf16 at a 2-element offset: no wide loads, launches of the one-token kernels. */
    check_format(&(wfmt){EXO_DTYPE_BF16, 0, 0, 0, 4}, 264, 21, 500);
    char *log = close_both();
    static const char *const kernels[] = {"exo_matmul_vecb8_f32",   "exo_matmul_vecb16x3_f16", "exo_matmul_vecb8x3_bf16",
                                          "exo_matmul_vecb16_bf16", "exo_matmul_vecb8_glu_f16", "exo_matmul_vecb16_glu_bf16",
                                          "exo_matmul_vec_bf16"};
    for (int i = 0; i < 7; i++) ran(log, kernels[i]);
    free(log);
}
END_TEST

START_TEST(mlx_weights_match_rows_alone) {
    open_both();
    static const wfmt fmts[] = {
        {EXO_DTYPE_MLX_AFFINE, 4, 64, EXO_DTYPE_BF16, 0},  {EXO_DTYPE_MLX_AFFINE, 8, 32, EXO_DTYPE_F16, 8},
        {EXO_DTYPE_MLX_AFFINE, 4, 128, EXO_DTYPE_F32, 4}, {EXO_DTYPE_MLX_AFFINE, 8, 128, EXO_DTYPE_BF16, 0},
        {EXO_DTYPE_MLX_AFFINE, 3, 32, EXO_DTYPE_BF16, 0}, /* codes straddle words: one-token launches */
    };
    for (int i = 0; i < 5; i++) check_format(&fmts[i], i == 0 ? 2048 : 384, 29, 1000 + 100 * (uint32_t)i);
    char *log = close_both();
    static const char *const kernels[] = {"exo_matmul_vecb8_mlx4",    "exo_matmul_vecb16x3_mlx4", "exo_matmul_vecb8_glu_mlx4",
                                          "exo_matmul_vecb8_mlx8",    "exo_matmul_vecb16x3_mlx8", "exo_matmul_vecb16_glu_mlx8",
                                          "exo_matmul_vec_mlx"};
    for (int i = 0; i < 7; i++) ran(log, kernels[i]);
    free(log);
}
END_TEST

/* The tensor-core kernels of a batched step (kernels/matvec_batch_mma.cl, exo_matmul_mmab8*: bf16
 * weights, up to 8 rows), their warp products emulated through local memory unless EXO_GPU_MMA
 * says otherwise (EXO_GPU_MMA=1 on an NVIDIA GPU: the real ones; CK_RUN_CASE=tensor_cores runs
 * this case alone; the level_zero rerun runs the FMA kernels again). Both work-group shapes: 16
 * rows (chosen for these weights of few rows: the "r16" kernels) and 32 (EXO_GPU_MMA_BATCH_ROWS).
 * K 2048 splits into more steps than the work-group has warps, K 96 into fewer (idle warps), row
 * counts no multiple of the 16-row tiles, a weight 8 elements into its buffer. */
START_TEST(bf16_tensor_core_rows_match_rows_alone) {
    const char *mode = getenv("EXO_GPU_MMA");
    int emulated = mode == NULL;
    if (emulated) setenv("EXO_GPU_MMA", "emulate", 1);
    setenv("EXO_GPU_MMA_BATCH", "1", 1);
    for (int shape = 0; shape < 2; shape++) {
        if (shape == 1) setenv("EXO_GPU_MMA_BATCH_ROWS", "32", 1);
        open_both();
        check_format(&(wfmt){EXO_DTYPE_BF16, 0, 0, 0, 0}, 2048, 37, 300);
        check_format(&(wfmt){EXO_DTYPE_BF16, 0, 0, 0, 16}, 96, 11, 700);
        char *log = close_both();
        static const char *const kernels[2][4] = {
            {"exo_matmul_mmab8r16x3_bf16", "exo_matmul_mmab8r16_glu_bf16", "exo_matmul_mmab8r16_bf16", "exo_matmul_vecb16x3_bf16"},
            {"exo_matmul_mmab8x3_bf16", "exo_matmul_mmab8_glu_bf16", "exo_matmul_mmab8_bf16", "exo_matmul_vecb16x3_bf16"}};
        for (int i = 0; i < 4; i++) ran(log, kernels[shape][i]);
        free(log);
    }
    if (emulated) unsetenv("EXO_GPU_MMA");
    unsetenv("EXO_GPU_MMA_BATCH");
    unsetenv("EXO_GPU_MMA_BATCH_ROWS");
}
END_TEST

int main(void) {
    Suite *s = suite_create("batch_matvec");
    TCase *tc = tcase_create("rows");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, float_weights_match_rows_alone);
    tcase_add_test(tc, mlx_weights_match_rows_alone);
    suite_add_tcase(s, tc);
    TCase *mma = tcase_create("tensor_cores");
    tcase_set_timeout(mma, 900);
    tcase_add_test(mma, bf16_tensor_core_rows_match_rows_alone);
    suite_add_tcase(s, mma);
    /* One process: a fork after PoCL's or the Level Zero loader's start-up hangs or corrupts
     * their state, and a missing device exits 77 (skip) from open_both. */
    return exo_check_run(s, CK_NOFORK);
}
