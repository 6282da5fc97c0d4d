/* Prefill matmul (many tokens): a GotoBLAS-style blocked GEMM in float32. dst[m][n] = x[m][k] .
 * W[n][k]^T: each thread takes a range of weight rows (output columns), and for every block of
 * GEMM_NC rows x GEMM_KC inner elements packs the weights once (widened to float32 and
 * transposed to [kk][32 columns], the layout the micro-kernel streams) into its workspace while
 * they sit in L2. The micro-kernel then computes GEMM_MR tokens x 32 columns with 2 * GEMM_MR
 * vector accumulators: per inner step two weight loads and GEMM_MR activation broadcasts feed
 * 2 * GEMM_MR FMAs, so it runs at the FMA ports' rate rather than the loads'. The activations
 * are re-laid out once per matmul (cpu_avx512_gemm_pack_x, a separate pool pass) into tiles of
 * GEMM_MR x GEMM_KC contiguous floats, which stay in L1 across a block's panels.
 * The widening cost is paid once per weight element per matmul, amortised over all m tokens;
 * MLX affine weights are dequantized at the same place (scale * q + bias, as the reference). */
#include "kernels_fast.h"

#include "cpu_half.h"
#include "kernels_mlx_codes.h"
#include "kernels_transpose_avx512.h"

#include <immintrin.h>
#include <stdbool.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

#define GEMM_MR 12  /* tokens per micro-tile: 24 accumulators + 2 weight vectors + 1 broadcast */
#define GEMM_NR 32  /* columns per micro-tile and per packed panel (two vectors) */
#define GEMM_KC 256 /* inner elements per packed block: a 32 KiB panel slice fits L1 */
#define GEMM_NC 512 /* columns per packed block: GEMM_NC x GEMM_KC floats = 512 KiB in L2; the
                     * activation tile packed for a block is reused across its 16 panels */

size_t cpu_avx512_gemm_workspace(void) { return (size_t)GEMM_NC * GEMM_KC * sizeof(float); }

/* 16 consecutive weights of row `row` starting at inner index j, as float32 (masked tail). */
INLINE AVX512 __m512 load_row16(const cpu_matmul_args *a, int64_t row, int64_t j, __mmask16 mask) {
    const void *w = a->w;
    const int64_t k = a->k;
    switch (a->w_type) {
    case EXO_DTYPE_BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + row * k + j);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case EXO_DTYPE_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + row * k + j));
    case EXO_DTYPE_Q8_0: {
        /* k is a multiple of 32 and j of 16 here, so the 16 values lie in one block. */
        const uint8_t *blk = (const uint8_t *)w + (row * (k / CPU_Q8_0_BLOCK) + j / CPU_Q8_0_BLOCK) * CPU_Q8_0_BYTES;
        float d = cpu_f16_to_f32(cpu_load_u16(blk));
        __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2 + j % CPU_Q8_0_BLOCK));
        return _mm512_mul_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
    }
    case EXO_DTYPE_MLX_AFFINE: {
        /* k is a multiple of the group (>= 32) and j of 16, so the 16 values share one scale and
         * bias. Dequantized exactly as the reference does, scale * q + bias as a product then a
         * sum (not fused), so the packed panel holds the reference's float weights. */
        const cpu_quant *q = &a->q;
        int64_t g = row * (k / q->group) + j / q->group;
        __m512 s = _mm512_set1_ps(mlx_param(q->scales, q->type, g)), b = _mm512_set1_ps(mlx_param(q->biases, q->type, g));
        __m512 codes = mlx_codes16((const uint8_t *)w + row * (k * q->bits / 8), j, q->bits);
        return _mm512_add_ps(_mm512_mul_ps(s, codes), b);
    }
    default: return _mm512_maskz_loadu_ps(mask, (const float *)w + row * k + j);
    }
}

/* Packs weight rows [n0, n0 + nc) x inner [p0, p0 + kc) into panels of GEMM_NR columns laid out
 * [panel][kk][GEMM_NR]; rows past nc are zero so the micro-kernel never branches on them. */
static AVX512 void pack_block(const cpu_matmul_args *a, int64_t n0, int64_t nc, int64_t p0, int64_t kc, float *out) {
    for (int64_t p = 0; p * GEMM_NR < nc; p++) {
        float *panel = out + p * kc * GEMM_NR;
        for (int half = 0; half < 2; half++) {
            int64_t r0 = p * GEMM_NR + half * 16;
            for (int64_t kk = 0; kk < kc; kk += 16) {
                int64_t width = kc - kk < 16 ? kc - kk : 16;
                __mmask16 mask = (__mmask16)((1u << width) - 1);
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = r0 + i < nc ? load_row16(a, n0 + r0 + i, p0 + kk, mask) : _mm512_setzero_ps();
                cpu_transpose16(r);
                for (int i = 0; i < width; i++) _mm512_storeu_ps(panel + (kk + i) * GEMM_NR + half * 16, r[i]);
            }
        }
    }
}

/* Copies the activation tile x[t0 .. t0 + mr)[p0 .. p0 + kc) to [kk][GEMM_MR]: the micro-kernel's
 * broadcasts then walk one contiguous stream instead of mr rows a power-of-two stride apart,
 * which would all map to the same L1 sets. */
static AVX512 void pack_tokens(const float *x, int64_t k, int mr, int64_t kc, float *out) {
    const __mmask16 lanes = (__mmask16)((1u << GEMM_MR) - 1);
    int64_t kk = 0;
    for (; kk + 16 <= kc; kk += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < mr ? _mm512_loadu_ps(x + i * k + kk) : _mm512_setzero_ps();
        cpu_transpose16(r);
        for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(out + (kk + i) * GEMM_MR, lanes, r[i]);
    }
    for (; kk < kc; kk++)
        for (int i = 0; i < GEMM_MR; i++) out[kk * GEMM_MR + i] = i < mr ? x[i * k + kk] : 0.0f;
}

/* The packed activations: for each tile of GEMM_MR tokens, GEMM_MR x k floats, in which inner
 * block p0 (of GEMM_KC) starts at GEMM_MR * p0, laid out [kk][GEMM_MR]. */
size_t cpu_avx512_gemm_packed_floats(int64_t m, int64_t k) {
    return (size_t)((m + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * (size_t)k;
}
int64_t cpu_avx512_gemm_pack_items(int64_t m, int64_t k) {
    return (m + GEMM_MR - 1) / GEMM_MR * ((k + GEMM_KC - 1) / GEMM_KC);
}

/* Items: token tile * inner blocks + inner block. */
AVX512 void cpu_avx512_gemm_pack_x(void *args, int64_t begin, int64_t end, uint32_t thread) {
    (void)thread;
    const cpu_matmul_args *a = args;
    int64_t blocks = (a->k + GEMM_KC - 1) / GEMM_KC;
    for (int64_t item = begin; item < end; item++) {
        int64_t t0 = item / blocks * GEMM_MR, p0 = item % blocks * GEMM_KC;
        int mr = a->m - t0 < GEMM_MR ? (int)(a->m - t0) : GEMM_MR;
        int64_t kc = a->k - p0 < GEMM_KC ? a->k - p0 : GEMM_KC;
        pack_tokens(a->x + t0 * a->k + p0, a->k, mr, kc, a->x_packed + t0 * a->k + GEMM_MR * p0);
    }
}

/* C[MR][32] (+)= A[MR][kc] . B[kc][32]. `first`: start from the bias (or zero) instead of C.
 * m0/m1 mask the columns that exist. MR is a constant after inlining. */
INLINE AVX512 void micro_kernel(const float *a, const float *b, int64_t kc, float *c, int64_t ldc,
                                const int MR, bool first, const float *bias, __mmask16 m0, __mmask16 m1) {
    __m512 acc[GEMM_MR][2];
    __m512 init0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 init1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        acc[i][0] = first ? init0 : _mm512_maskz_loadu_ps(m0, c + i * ldc);
        acc[i][1] = first ? init1 : _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    }
    for (int64_t kk = 0; kk < kc; kk++) {
        __m512 b0 = _mm512_loadu_ps(b + kk * GEMM_NR), b1 = _mm512_loadu_ps(b + kk * GEMM_NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 av = _mm512_set1_ps(a[kk * GEMM_MR + i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
        _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
    }
}

#define KERNEL_CASE(R) \
    case R: micro_kernel(a, b, kc, c, ldc, R, first, bias, m0, m1); break;

static AVX512 void micro_kernel_any(int mr, const float *a, const float *b, int64_t kc, float *c,
                                    int64_t ldc, bool first, const float *bias, __mmask16 m0, __mmask16 m1) {
    switch (mr) {
        KERNEL_CASE(1) KERNEL_CASE(2) KERNEL_CASE(3) KERNEL_CASE(4) KERNEL_CASE(5) KERNEL_CASE(6)
        KERNEL_CASE(7) KERNEL_CASE(8) KERNEL_CASE(9) KERNEL_CASE(10) KERNEL_CASE(11)
    default: micro_kernel(a, b, kc, c, ldc, GEMM_MR, first, bias, m0, m1); break;
    }
}

/* Items are weight rows (output columns); chunks should be multiples of GEMM_NR for full panels.
 * args->x_packed must hold x as cpu_avx512_gemm_pack_x lays it out. */
AVX512 void cpu_avx512_gemm(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_matmul_args *a = args;
    float *packed = (float *)(a->workspace + (size_t)thread * a->workspace_stride);
    for (int64_t n0 = begin; n0 < end; n0 += GEMM_NC) {
        int64_t nc = end - n0 < GEMM_NC ? end - n0 : GEMM_NC;
        for (int64_t p0 = 0; p0 < a->k; p0 += GEMM_KC) {
            int64_t kc = a->k - p0 < GEMM_KC ? a->k - p0 : GEMM_KC;
            pack_block(a, n0, nc, p0, kc, packed);
            for (int64_t t0 = 0; t0 < a->m; t0 += GEMM_MR) {
                int mr = a->m - t0 < GEMM_MR ? (int)(a->m - t0) : GEMM_MR;
                const float *tile = a->x_packed + t0 * a->k + GEMM_MR * p0;
                for (int64_t p = 0; p * GEMM_NR < nc; p++) {
                    int64_t cols = nc - p * GEMM_NR < GEMM_NR ? nc - p * GEMM_NR : GEMM_NR;
                    __mmask16 m0 = cols >= 16 ? 0xffff : (__mmask16)((1u << cols) - 1);
                    __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
                    int64_t col = n0 + p * GEMM_NR;
                    micro_kernel_any(mr, tile, packed + p * kc * GEMM_NR, kc,
                                     a->dst + t0 * a->n + col, a->n, p0 == 0, a->bias ? a->bias + col : NULL, m0, m1);
                }
            }
        }
    }
}
