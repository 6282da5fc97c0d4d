/* MLX affine kernels against an independent packer: random codes written bit by bit with a plain
 * bit writer (the layout of abi/exo_plugin.h, "Quantized weights": a little-endian bit stream per
 * row), random bf16 scales (negative too) and biases (zero too). The reference row dequantizer,
 * the reference matmul and, where the CPU has AVX-512, the fused decode kernel and the prefill
 * GEMM must give scale * q + bias for every bits value and group size, at any row count. Compiled with the plugin's kernel
 * sources, so it checks exactly what the plugin runs. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_fast.h"
#include "kernels_ref.h"

static uint32_t rng = 12345;
static uint32_t next_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Writes value v (bits wide) at bit position pos of words, one bit at a time. */
static void put_bits(uint32_t *words, uint64_t pos, uint32_t v, uint32_t bits) {
    for (uint32_t b = 0; b < bits; b++, pos++)
        if (v >> b & 1u) words[pos / 32] |= 1u << (pos % 32);
}

static uint16_t bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16); /* truncation: any bf16 will do */
}
static float f32_of_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

/* The largest error of an activation, relative to its group's largest |x|, in the int8 mode
 * (x quantized per group with d = max|x_g| / 127: off by at most d / 2) and on the exact 4-bit
 * VNNI path (x rounded to 24 bits against max|x_g|: at most 2^-23 * 64 / 63 of it). */
#define INT8_STEP (1.0 / 127.0 / 2.0)
#define VNNI_STEP (64.0 / 63.0 / 8388608.0)

/* got against want within the bound of activations off by at most step * max|x_g|: each output
 * is then off by at most sum_j |s_g(j) q_j| step max|x_g(j)| (plus float rounding); computed here
 * independently of the kernels. `quantized` 0: the kernel kept x as it is, so the bound is float
 * rounding alone. */
static void check_x_bound(const char *what, double step, const cpu_quant *q, const uint32_t *codes, const float *x,
                          int64_t k, int64_t m, int64_t rows, int quantized, const float *got, const float *want,
                          const float *mag) {
    const int64_t group = q->group, groups = k / group;
    for (int64_t mm = 0; mm < m; mm++)
        for (int64_t r = 0; r < rows; r++) {
            double bound = 0;
            for (int64_t g = 0; g < groups && quantized; g++) {
                double mx = 0;
                for (int64_t j = g * group; j < (g + 1) * group; j++) mx = fmax(mx, fabs(x[mm * k + j]));
                double sw = 0, s = f32_of_bf16(((const uint16_t *)q->scales)[r * groups + g]);
                for (int64_t j = g * group; j < (g + 1) * group; j++) sw += fabs(s * codes[r * k + j]);
                bound += sw * mx * step;
            }
            int64_t i = mm * rows + r;
            ck_assert_msg(fabsf(got[i] - want[i]) <= bound * 1.0001 + 1e-6f * mag[i] + 1e-7f,
                          "%s bits %u group %u k %lld m %lld [%lld]: %g != %g (bound %g)", what, q->bits, q->group,
                          (long long)k, (long long)m, (long long)i, (double)got[i], (double)want[i], bound);
        }
}

/* x_given: m x k activations, or NULL for random ones in [-1, 1]. */
static void check_case_x(uint32_t bits, uint32_t group, int64_t rows, int64_t k, int64_t m, const float *x_given) {
    int64_t words_per_row = k * bits / 32, groups = k / group;
    uint32_t *w = calloc((size_t)(rows * words_per_row), 4);
    uint32_t *codes = malloc((size_t)(rows * k) * 4);
    uint16_t *sc = malloc((size_t)(rows * groups) * 2), *bi = malloc((size_t)(rows * groups) * 2);
    float *x = malloc((size_t)(m * k) * 4), *want = malloc((size_t)(m * rows) * 4);
    float *got = malloc((size_t)(m * rows) * 4), *row = malloc((size_t)k * 4);
    /* sum |x_j w_j| of each output: float32 sums of k terms in any order stay within a small
     * multiple of eps times it (the results themselves may cancel to much less). */
    float *mag = malloc((size_t)(m * rows) * 4);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++) {
            uint32_t q = next_u32() & ((1u << bits) - 1u);
            if (j == 0) q = (1u << bits) - 1u; /* the largest code */
            codes[r * k + j] = q;
            put_bits(w + r * words_per_row, (uint64_t)j * bits, q, bits);
        }
    for (int64_t i = 0; i < rows * groups; i++) {
        sc[i] = bf16_of(((float)(next_u32() % 2001) - 1000.0f) / 16000.0f);
        bi[i] = i % 5 == 0 ? 0 : bf16_of(((float)(next_u32() % 2001) - 1000.0f) / 8000.0f);
    }
    for (int64_t i = 0; i < m * k; i++) x[i] = x_given ? x_given[i] : ((float)(next_u32() % 2001) - 1000.0f) / 1000.0f;
    cpu_quant q = {sc, bi, EXO_DTYPE_BF16, bits, group};
    for (int64_t r = 0; r < rows; r++) {
        cpu_ref_mlx_row(w, &q, k, r, row);
        for (int64_t j = 0; j < k; j++) {
            float s = f32_of_bf16(sc[r * groups + j / group]), b = f32_of_bf16(bi[r * groups + j / group]);
            float expect = s * (float)codes[r * k + j] + b;
            ck_assert_msg(row[j] == expect, "bits %u group %u row %lld elem %lld: %g != %g", bits, group, (long long)r,
                          (long long)j, (double)row[j], (double)expect);
        }
        for (int64_t mm = 0; mm < m; mm++) {
            double acc = 0, size = 0;
            for (int64_t j = 0; j < k; j++) {
                acc += (double)x[mm * k + j] * row[j];
                size += fabs((double)x[mm * k + j] * row[j]);
            }
            want[mm * rows + r] = (float)acc;
            mag[mm * rows + r] = (float)size;
        }
    }
    size_t ws_bytes = cpu_avx512_matmul_workspace(k);
    uint8_t *ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64);
    cpu_matmul_args a = {x, m, k, rows, w, EXO_DTYPE_MLX_AFFINE, NULL, got, ws, ws_bytes, NULL, q, NULL};
    cpu_ref_matmul(&a, 0, rows, 0);
    for (int64_t i = 0; i < m * rows; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f * (1 + fabsf(want[i])), "ref matmul bits %u: %g != %g", bits,
                      (double)got[i], (double)want[i]);
    if (has_avx512()) {
        /* The fused decode kernel, over two ranges of rows as two pool chunks would split them. */
        memset(got, 0, (size_t)(m * rows) * 4);
        cpu_mlx_matmul(&a, 0, rows / 3, 0);
        cpu_mlx_matmul(&a, rows / 3, rows, 0);
        /* 1-2 tokens of 4-bit codes, k a multiple of 64, take the VNNI path where the CPU has it. */
        int vnni = bits == 4 && k % 64 == 0 && m <= 2 && __builtin_cpu_supports("avx512vnni");
        check_x_bound("avx512 decode", VNNI_STEP, &q, codes, x, k, m, rows, vnni, got, want, mag);
        /* The prefill GEMM, which dequantizes panels of the weight while packing them. */
        float *packed = aligned_alloc(64, (cpu_avx512_gemm_packed_floats(m, k) * 4 + 63) / 64 * 64);
        uint8_t *gws = aligned_alloc(64, (cpu_avx512_gemm_workspace() + 63) / 64 * 64);
        cpu_matmul_args ga = a;
        ga.x_packed = packed;
        ga.workspace = gws;
        ga.workspace_stride = cpu_avx512_gemm_workspace();
        cpu_avx512_gemm_pack_x(&ga, 0, cpu_avx512_gemm_pack_items(m, k), 0);
        memset(got, 0, (size_t)(m * rows) * 4);
        cpu_avx512_gemm(&ga, 0, rows, 0);
        for (int64_t i = 0; i < m * rows; i++)
            ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-6f * mag[i] + 1e-7f,
                          "avx512 gemm bits %u group %u k %lld m %lld [%lld]: %g != %g", bits, group, (long long)k,
                          (long long)m, (long long)i, (double)got[i], (double)want[i]);
        free(packed);
        free(gws);
        /* The int8-activation mode: x quantized per group with d = max|x_g| / 127, so each
         * element is off by at most d / 2 and each output by at most sum_j |w_j| d_g(j) / 2 (plus
         * float rounding); computed here independently of the kernel. */
        memset(got, 0, (size_t)(m * rows) * 4);
        cpu_mlx_matmul_int8(&a, 0, rows / 3, 0);
        cpu_mlx_matmul_int8(&a, rows / 3, rows, 0);
        check_x_bound("int8 decode", INT8_STEP, &q, codes, x, k, m, rows, cpu_mlx_int8_takes(&a), got, want, mag);
        /* The int8 prefill GEMM (same quantization of x), over two chunks of whole panels. */
        ck_assert(cpu_mlx_gemm_int8_takes(&a) == !!__builtin_cpu_supports("avx512vnni"));
        if (cpu_mlx_gemm_int8_takes(&a)) {
            uint8_t *xq = aligned_alloc(64, (cpu_mlx_gemm_int8_packed_bytes(m, k, group) + 63) / 64 * 64);
            uint8_t *qws = aligned_alloc(64, (cpu_mlx_gemm_int8_workspace() + 63) / 64 * 64);
            cpu_matmul_args qa = a;
            qa.x_int8 = xq;
            qa.workspace = qws;
            qa.workspace_stride = cpu_mlx_gemm_int8_workspace();
            cpu_mlx_gemm_int8_pack_x(&qa, 0, cpu_mlx_gemm_int8_pack_items(m), 0);
            memset(got, 0, (size_t)(m * rows) * 4);
            int64_t split = rows > 32 ? 32 : rows;
            cpu_mlx_gemm_int8(&qa, 0, split, 0);
            cpu_mlx_gemm_int8(&qa, split, rows, 0);
            check_x_bound("int8 gemm", INT8_STEP, &q, codes, x, k, m, rows, 1, got, want, mag);
            free(xq);
            free(qws);
        }
    }
    int32_t ids[3] = {(int32_t)(rows - 1), 0, (int32_t)(rows / 2)};
    float *rows_out = malloc((size_t)(3 * k) * 4);
    cpu_get_rows_args g = {w, EXO_DTYPE_MLX_AFFINE, k, ids, 1.0f, rows_out, q};
    cpu_ref_get_rows(&g, 0, 3, 0);
    for (int t = 0; t < 3; t++) {
        cpu_ref_mlx_row(w, &q, k, ids[t], row);
        ck_assert(memcmp(row, rows_out + t * k, (size_t)k * 4) == 0);
    }
    free(rows_out);
    free(ws);
    free(w);
    free(codes);
    free(sc);
    free(bi);
    free(x);
    free(want);
    free(got);
    free(row);
    free(mag);
}

static void check_case(uint32_t bits, uint32_t group, int64_t rows, int64_t k, int64_t m) {
    check_case_x(bits, group, rows, k, m, NULL);
}

START_TEST(every_bits_and_group) {
    /* 19 rows: full tiles of every tile height the decode kernel uses, and single-row tails;
     * m 1-2 the one-token paths, 3-16 (4 and 8 bits) the batched path (scaled codes) with 1-4
     * tokens in its last token tile (and the GEMM's partial micro-tiles). */
    static const uint32_t bits[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    static const int64_t ms[] = {1, 2, 3, 4, 5, 8, 13, 16};
    for (size_t b = 0; b < 6; b++)
        for (size_t g = 0; g < 3; g++)
            for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) check_case(bits[b], groups[g], 19, 256, ms[i]);
}
END_TEST

/* More groups per row than one vector of scales holds (16), with a partial last vector. */
START_TEST(many_groups) {
    check_case(4, 64, 19, 21 * 64, 1);
    check_case(4, 64, 19, 3 * 64, 2); /* the VNNI path's last 64 codes on their own */
    check_case(4, 32, 19, 5 * 64, 1);
    check_case(4, 32, 9, 3 * 32, 1); /* k not a multiple of 64: the float path */
    check_case(8, 32, 19, 48 * 32, 2);
    check_case(5, 32, 9, 37 * 32, 1);
    check_case(4, 128, 9, 3 * 128 * 7, 5);
    check_case(4, 32, 19, 12 * 128, 3); /* the int8 mode: k a multiple of 128, four groups per chunk */
    check_case(8, 128, 19, 6 * 128, 1);
    /* The GEMMs past one panel and one block: 2 panels and a partial third, 3 inner blocks with a
     * partial last (k 608 = 2 x 256 + 96), token tiles of 6 (int8) and 12 with partial tails. */
    check_case(4, 32, 70, 19 * 32, 17);
    check_case(8, 64, 70, 10 * 64, 40);
    check_case(3, 32, 37, 19 * 32, 23);
}
END_TEST

/* Activations the VNNI path's integer rounding must take (groups of 32, 64 and 128, 1-2 tokens): a
 * group of zeros, magnitudes from denormals to 1e30, a group whose largest value is a power of
 * two or just below one (the top part's limit), negative extremes, mixed magnitudes. */
START_TEST(vnni_activation_extremes) {
    enum { K = 1024 };
    static float x[2 * K];
    for (int t = 0; t < 2; t++)
        for (int j = 0; j < K; j++) {
            float r = ((float)(next_u32() % 2001) - 1000.0f) / 1000.0f, v;
            switch (j / 64 + t) {
            case 0: v = 0.0f; break;
            case 1: v = j % 64 == 5 ? 1e30f : r * 1e20f; break;
            case 2: v = r * 1e-40f; break;
            case 3: v = j % 2 ? r * 1e4f : r * 1e-4f; break;
            case 4: v = j % 64 == 0 ? 8.0f : r; break;
            case 5: v = j % 3 ? -nextafterf(16.0f, 0.0f) : r * 16.0f; break;
            case 6: v = -nextafterf(1.0f, 0.0f); break;
            case 7: v = j % 64 == 63 ? -0.0f : r * 1e-30f; break;
            default: v = r; break;
            }
            x[t * K + j] = v;
        }
    for (int m = 1; m <= 2; m++) {
        check_case_x(4, 32, 19, K, m, x);
        check_case_x(4, 64, 19, K, m, x);
        check_case_x(4, 128, 19, K, m, x);
    }
}
END_TEST

/* A NaN or an infinity among the activations reaches every output, as dequantizing would carry
 * it (the VNNI path hands such a call to the float path). */
START_TEST(non_finite_activations_propagate) {
    enum { K = 256, ROWS = 9 };
    static const uint32_t groups[] = {32, 64, 128};
    for (size_t gi = 0; gi < 3; gi++)
        for (int kind = 0; kind < 2; kind++) {
            uint32_t group = groups[gi];
            uint32_t w[ROWS * K / 8];
            uint16_t sc[ROWS * K / 32], bi[ROWS * K / 32];
            float x[2 * K], got[2 * ROWS];
            for (size_t i = 0; i < sizeof w / 4; i++) w[i] = next_u32();
            for (size_t i = 0; i < ROWS * K / group; i++) {
                sc[i] = bf16_of(0.01f);
                bi[i] = bf16_of(-0.02f);
            }
            for (int i = 0; i < 2 * K; i++) x[i] = 0.5f;
            x[K + 77] = kind ? INFINITY : NAN;
            cpu_quant q = {sc, bi, EXO_DTYPE_BF16, 4, group};
            size_t ws_bytes = cpu_avx512_matmul_workspace(K);
            uint8_t *ws = aligned_alloc(64, (ws_bytes + 63) / 64 * 64);
            cpu_matmul_args a = {x, 2, K, ROWS, w, EXO_DTYPE_MLX_AFFINE, NULL, got, ws, ws_bytes, NULL, q, NULL};
            if (has_avx512()) {
                cpu_mlx_matmul(&a, 0, ROWS, 0);
                for (int r = 0; r < ROWS; r++) {
                    ck_assert_msg(isfinite(got[r]), "group %u row %d: the finite token got %g", group, r, (double)got[r]);
                    ck_assert_msg(!isfinite(got[ROWS + r]), "group %u row %d: %g from a %s", group, r,
                                  (double)got[ROWS + r], kind ? "inf" : "NaN");
                }
            }
            free(ws);
        }
}
END_TEST

/* The straddling codes: at 3, 5 and 6 bits, code 10 (3-bit: bits 30..32) crosses a word. */
START_TEST(codes_straddle_words) {
    uint32_t words[2] = {0, 0};
    put_bits(words, 30, 5, 3);
    ck_assert_uint_eq(words[0] >> 30, 1);
    ck_assert_uint_eq(words[1] & 1u, 1);
    ck_assert_uint_eq(cpu_mlx_code(words, 10, 3), 5);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cpu_mlx");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_bits_and_group);
    tcase_add_test(tc, many_groups);
    tcase_add_test(tc, codes_straddle_words);
    tcase_add_test(tc, vnni_activation_extremes);
    tcase_add_test(tc, non_finite_activations_propagate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
