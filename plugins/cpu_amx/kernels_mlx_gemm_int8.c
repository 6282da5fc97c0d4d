/* Prefill GEMM on MLX affine weights with int8 activations: the prompt half of the opt-in
 * reduced-precision mode EXO_CPU_MLX_INT8=on (the decode half is cpu_mlx_matmul_int8 in
 * kernels_mlx_avx512.c; docs/performance.md 4.4 gives both modes' measured error).
 *
 * Why: the exact prefill GEMM (kernels_gemm_avx512.c) dequantizes weights to float32 and runs
 * at the FMA ports' rate, 16 multiply-adds per instruction. vpdpbusd does 64 (unsigned bytes
 * times signed bytes, summed four at a time into int32 lanes) at the same issue rate, so with
 * the codes as bytes and the activations quantized to int8 the arithmetic is 4x denser. That
 * is what llama.cpp's Q4_0 prefill does, and what the exact path cannot reach.
 *
 * Arithmetic, per group g of a weight row (w = s_g * q + b_g) and a token x:
 *
 *     x_g . w_g  =  s_g * d_g * (q_g . xq_g)  +  b_g * sum(x_g)
 *
 * where xq_g = round(x_g / d_g), d_g = max|x_g| / 127 (the decode mode's quantization, so each
 * element is off by at most d_g / 2). q_g . xq_g is exact in int32; the bias term uses the
 * exact float group sums of x, as the exact kernels do.
 *
 * Layouts. Activations (cpu_mlx_gemm_int8_pack_x, once per matmul or group of matmuls sharing
 * x): per tile of Q8_MR tokens, the codes as dwords [k / 4][Q8_MR] (4 consecutive elements of
 * one token per dword, the tokens of a tile side by side so the micro-kernel broadcasts one
 * dword per token and step), then d [groups][Q8_MR], then the group sums [groups][Q8_MR].
 * Weights (packed per block of Q8_NC rows x Q8_KC inner elements into the thread's workspace,
 * amortised over all tokens): per panel of Q8_NR = 32 rows, the codes as bytes [kc / 4][32][4]
 * (a vector holds 4 consecutive codes of 16 rows, vpdpbusd's layout), then the panel's scales
 * and biases as float [kc / group][32]. Any width (2-8 bits) packs to bytes the same way.
 *
 * Micro-kernel: Q8_MR tokens x 32 rows, 12 int32 sums (reset per group) and 12 float
 * accumulators; per step of 4 elements two weight loads and Q8_MR broadcasts feed 12 vpdpbusd;
 * at each group's end the sums turn into float with the scales, d and the bias term (4
 * instructions per accumulator: 48 per 192 vpdpbusd at group 64). */
#include "kernels_fast.h"

#include "kernels_mlx_codes.h"
#include "kernels_transpose_avx512.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#define Q8_MR 6   /* tokens per micro-tile */
#define Q8_NR 32  /* rows per panel: two vectors of 16 dword lanes */
#define Q8_KC 256 /* inner elements per packed block; a multiple of every group taken (32, 64, 128) */
#define Q8_NC 512 /* rows per packed block: 16 panels, 160 KiB, in L2 */
#define Q8_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))

_Static_assert(Q8_NR == CPU_GEMM_PANEL, "the executor's grain is in whole panels");

/* Bytes of one packed panel of kc inner elements (codes, then scales and biases). */
static size_t panel_bytes(int64_t kc, int64_t group) {
    return (size_t)(kc * Q8_NR) + 2 * (size_t)(kc / group) * Q8_NR * sizeof(float);
}

/* Bytes of one activation tile (Q8_MR tokens) of inner size k. */
static size_t tile_bytes(int64_t k, int64_t group) {
    return (size_t)(Q8_MR * k) + 2 * (size_t)(k / group) * Q8_MR * sizeof(float);
}

size_t cpu_mlx_gemm_int8_workspace(void) {
    return (size_t)(Q8_NC / Q8_NR) * panel_bytes(Q8_KC, 32);
}

size_t cpu_mlx_gemm_int8_packed_bytes(int64_t m, int64_t k, uint32_t group) {
    return (size_t)((m + Q8_MR - 1) / Q8_MR) * tile_bytes(k, group);
}

int64_t cpu_mlx_gemm_int8_pack_items(int64_t m) { return (m + Q8_MR - 1) / Q8_MR; }

bool cpu_mlx_gemm_int8_takes(const cpu_matmul_args *a) {
    const cpu_quant *q = &a->q;
    return a->w_type == EXO_DTYPE_MLX_AFFINE && q->bits >= 2 && q->bits <= 8 && q->bits != 7 && q->group >= 32 &&
           q->group % 32 == 0 && Q8_KC % q->group == 0 && a->k % q->group == 0 &&
           __builtin_cpu_supports("avx512vnni");
}

/* Items: tiles of Q8_MR tokens. Tokens past m are zero (d 0, sums 0). */
Q8_VNNI void cpu_mlx_gemm_int8_pack_x(void *args, int64_t begin, int64_t end, uint32_t thread) {
    (void)thread;
    const cpu_matmul_args *a = args;
    const int64_t k = a->k, group = a->q.group, groups = k / group;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t tile = begin; tile < end; tile++) {
        uint8_t *base = a->x_int8 + (size_t)tile * tile_bytes(k, group);
        int32_t *codes = (int32_t *)base;
        float *d = (float *)(base + Q8_MR * k), *sums = d + groups * Q8_MR;
        for (int i = 0; i < Q8_MR; i++) {
            int64_t t = tile * Q8_MR + i;
            if (t >= a->m) {
                for (int64_t j = 0; j < k / 4; j++) codes[j * Q8_MR + i] = 0;
                for (int64_t g = 0; g < groups; g++) d[g * Q8_MR + i] = sums[g * Q8_MR + i] = 0.0f;
                continue;
            }
            const float *xt = a->x + t * k;
            for (int64_t g = 0; g < groups; g++) {
                __m512 mx = _mm512_setzero_ps(), s = _mm512_setzero_ps();
                for (int64_t j = g * group; j < (g + 1) * group; j += 16) {
                    __m512 v = _mm512_loadu_ps(xt + j);
                    mx = _mm512_max_ps(mx, _mm512_andnot_ps(sign, v));
                    s = _mm512_add_ps(s, v);
                }
                float dg = _mm512_reduce_max_ps(mx) / 127.0f;
                d[g * Q8_MR + i] = dg;
                sums[g * Q8_MR + i] = _mm512_reduce_add_ps(s);
                __m512 inv = _mm512_set1_ps(dg > 0.0f ? 1.0f / dg : 0.0f);
                for (int64_t j = g * group; j < (g + 1) * group; j += 16) {
                    __m512i qv = _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xt + j), inv),
                                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                    int32_t q4[4];
                    _mm_storeu_si128((__m128i *)q4, _mm512_cvtsepi32_epi8(qv));
                    for (int c = 0; c < 4; c++) codes[(j / 4 + c) * Q8_MR + i] = q4[c];
                }
            }
        }
    }
}

/* Codes j .. j + n - 1 (n 32 or 64) of a row as bytes in natural order, zero past n. */
static inline __attribute__((always_inline)) Q8_VNNI __m512i codes_bytes(const uint8_t *row, int64_t j, int64_t n,
                                                                         uint32_t bits) {
    const __mmask64 mask = n == 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1;
    if (bits == 8) return _mm512_maskz_loadu_epi8(mask, row + j);
    if (bits == 4) {
        /* Byte i holds element 2i (low nibble) and 2i + 1 (high): as 16-bit lanes, lo | hi << 8. */
        __m512i v = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(n == 64 ? 0xffffffffu : 0xffffu, row + j / 2));
        __m512i lo = _mm512_and_si512(v, _mm512_set1_epi16(0x0f));
        __m512i hi = _mm512_slli_epi16(_mm512_and_si512(v, _mm512_set1_epi16(0xf0)), 4);
        return _mm512_or_si512(lo, hi);
    }
    uint8_t tmp[64] = {0};
    mlx_codes_to_bytes(row, j, n, bits, tmp);
    return _mm512_loadu_si512(tmp);
}

/* Packs weight rows [n0, n0 + nc) x inner [p0, p0 + kc) as panels (see the top); rows past nc
 * are zero codes with zero scales and biases. */
static Q8_VNNI void pack_block(const cpu_matmul_args *a, int64_t n0, int64_t nc, int64_t p0, int64_t kc, uint8_t *out) {
    const cpu_quant *q = &a->q;
    const int64_t group = q->group, groups = a->k / group, row_bytes = a->k * q->bits / 8, kg = kc / group;
    for (int64_t p = 0; p * Q8_NR < nc; p++) {
        uint8_t *panel = out + (size_t)p * panel_bytes(kc, group);
        float *scales = (float *)(panel + kc * Q8_NR), *biases = scales + kg * Q8_NR;
        for (int half = 0; half < 2; half++) {
            int64_t r0 = p * Q8_NR + half * 16;
            for (int64_t kk = 0; kk < kc; kk += 64) {
                int64_t n = kc - kk < 64 ? kc - kk : 64;
                __m512 r[16]; /* dwords of 4 codes, as floats for the transpose */
                for (int i = 0; i < 16; i++)
                    r[i] = _mm512_castsi512_ps(
                        r0 + i < nc ? codes_bytes((const uint8_t *)a->w + (n0 + r0 + i) * row_bytes, p0 + kk, n, q->bits)
                                    : _mm512_setzero_si512());
                cpu_transpose16(r);
                for (int64_t dw = 0; dw < n / 4; dw++)
                    _mm512_storeu_ps((float *)(panel + ((kk / 4 + dw) * Q8_NR + half * 16) * 4), r[dw]);
            }
        }
        for (int64_t c = 0; c < Q8_NR; c++) {
            int64_t row = n0 + p * Q8_NR + c;
            for (int64_t g = 0; g < kg; g++) {
                bool real = p * Q8_NR + c < nc;
                int64_t i = row * groups + p0 / group + g;
                scales[g * Q8_NR + c] = real ? mlx_param(q->scales, q->type, i) : 0.0f;
                biases[g * Q8_NR + c] = real ? mlx_param(q->biases, q->type, i) : 0.0f;
            }
        }
    }
}

/* C[MR][32] (+)= the tile's tokens against one panel over inner [p0, p0 + kc). `first`: start
 * from the bias (or zero) instead of C. m0/m1 mask the rows that exist. MR is a constant after
 * inlining. */
static inline __attribute__((always_inline)) Q8_VNNI void micro_kernel(const uint8_t *tile, int64_t k, int64_t group,
                                                                       int64_t p0, const uint8_t *panel, int64_t kc,
                                                                       float *c, int64_t ldc, const int MR, bool first,
                                                                       const float *bias, __mmask16 m0, __mmask16 m1) {
    const int64_t groups = k / group, kg = kc / group;
    const int32_t *xa = (const int32_t *)tile + p0 / 4 * Q8_MR;
    const float *d = (const float *)(tile + Q8_MR * k) + p0 / group * Q8_MR;
    const float *sums = d + groups * Q8_MR;
    const float *scales = (const float *)(panel + kc * Q8_NR), *biases = scales + kg * Q8_NR;
    __m512 acc[Q8_MR][2];
    __m512 init0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 init1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        acc[i][0] = first ? init0 : _mm512_maskz_loadu_ps(m0, c + i * ldc);
        acc[i][1] = first ? init1 : _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    }
    for (int64_t g = 0; g < kg; g++) {
        __m512i s[Q8_MR][2];
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) s[i][0] = s[i][1] = _mm512_setzero_si512();
        for (int64_t step = g * group / 4; step < (g + 1) * group / 4; step++) {
            __m512i b0 = _mm512_loadu_si512(panel + step * Q8_NR * 4);
            __m512i b1 = _mm512_loadu_si512(panel + step * Q8_NR * 4 + 64);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                __m512i xv = _mm512_set1_epi32(xa[step * Q8_MR + i]);
                s[i][0] = _mm512_dpbusd_epi32(s[i][0], b0, xv);
                s[i][1] = _mm512_dpbusd_epi32(s[i][1], b1, xv);
            }
        }
        __m512 sc0 = _mm512_loadu_ps(scales + g * Q8_NR), sc1 = _mm512_loadu_ps(scales + g * Q8_NR + 16);
        __m512 bi0 = _mm512_loadu_ps(biases + g * Q8_NR), bi1 = _mm512_loadu_ps(biases + g * Q8_NR + 16);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m512 dg = _mm512_set1_ps(d[g * Q8_MR + i]), sg = _mm512_set1_ps(sums[g * Q8_MR + i]);
            acc[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i][0]), _mm512_mul_ps(sc0, dg), acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i][1]), _mm512_mul_ps(sc1, dg), acc[i][1]);
            acc[i][0] = _mm512_fmadd_ps(bi0, sg, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(bi1, sg, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
    }
}

#define Q8_KERNEL_CASE(R) \
    case R: micro_kernel(tile, k, group, p0, panel, kc, c, ldc, R, first, bias, m0, m1); break;

static Q8_VNNI void micro_kernel_any(int mr, const uint8_t *tile, int64_t k, int64_t group, int64_t p0,
                                     const uint8_t *panel, int64_t kc, float *c, int64_t ldc, bool first,
                                     const float *bias, __mmask16 m0, __mmask16 m1) {
    switch (mr) {
        Q8_KERNEL_CASE(1) Q8_KERNEL_CASE(2) Q8_KERNEL_CASE(3) Q8_KERNEL_CASE(4) Q8_KERNEL_CASE(5)
    default: micro_kernel(tile, k, group, p0, panel, kc, c, ldc, Q8_MR, first, bias, m0, m1); break;
    }
}

/* Items are weight rows (output columns), in chunks of whole panels for full vectors. Without
 * args->x_int8 (weights this kernel does not take, in a group of matmuls that share x), the
 * exact GEMM runs instead, so the executor can hand a whole group this function. */
Q8_VNNI void cpu_mlx_gemm_int8(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_matmul_args *a = args;
    if (!a->x_int8) {
        cpu_avx512_gemm(args, begin, end, thread);
        return;
    }
    const int64_t k = a->k, group = a->q.group;
    uint8_t *packed = a->workspace + (size_t)thread * a->workspace_stride;
    for (int64_t n0 = begin; n0 < end; n0 += Q8_NC) {
        int64_t nc = end - n0 < Q8_NC ? end - n0 : Q8_NC;
        for (int64_t p0 = 0; p0 < k; p0 += Q8_KC) {
            int64_t kc = k - p0 < Q8_KC ? k - p0 : Q8_KC;
            pack_block(a, n0, nc, p0, kc, packed);
            for (int64_t t0 = 0; t0 < a->m; t0 += Q8_MR) {
                int mr = a->m - t0 < Q8_MR ? (int)(a->m - t0) : Q8_MR;
                const uint8_t *tile = a->x_int8 + (size_t)(t0 / Q8_MR) * tile_bytes(k, group);
                for (int64_t p = 0; p * Q8_NR < nc; p++) {
                    int64_t cols = nc - p * Q8_NR < Q8_NR ? nc - p * Q8_NR : Q8_NR;
                    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
                    __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
                    int64_t col = n0 + p * Q8_NR;
                    micro_kernel_any(mr, tile, k, group, p0, packed + (size_t)p * panel_bytes(kc, group), kc,
                                     a->dst + t0 * a->n + col, a->n, p0 == 0, a->bias ? a->bias + col : NULL, m0, m1);
                }
            }
        }
    }
}
