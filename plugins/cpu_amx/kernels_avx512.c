/* AVX-512 decode matmul (few tokens) and RMS norm (see kernels_fast.h). Activations stay float32
 * for accuracy: bf16 weights are widened by a 16-bit shift (exact), f16 weights by vcvtph2ps
 * (exact), and every product is a float32 FMA. Only the functions of the *_avx512.c files carry
 * the AVX-512 target attribute, so the plugin still loads and runs (with the reference kernels)
 * on CPUs without it. */
#include "kernels_fast.h"

#include "cpu_half.h"
#include "kernels_ref.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

#define TILE_TOKENS 4 /* tokens per micro-tile */
#define TILE_ROWS 4   /* weight rows per micro-tile */

/* CPU_MATMUL_BLOCK rows of k floats, and (the MLX kernel's batched path, kernels_mlx_avx512.c)
 * the group sums and a tile's scales beside up to CPU_MATMUL_BLOCK tokens' activations. */
size_t cpu_avx512_matmul_workspace(int64_t k) { return ((size_t)CPU_MATMUL_BLOCK * (size_t)k + (size_t)k + 64) * sizeof(float); }

/* 16 weights starting at element idx, widened to float; `mask` selects the valid lanes. */
INLINE AVX512 __m512 load_weights(const void *w, int64_t idx, exo_dtype type, __mmask16 mask) {
    if (type == EXO_DTYPE_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + idx);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (type == EXO_DTYPE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)w + idx));
    return _mm512_maskz_loadu_ps(mask, (const float *)w + idx);
}

/* dst[t][col0 + r] = x[t] . w[r] (+ bias) for R weight rows and M tokens; R, M are constants
 * after inlining, so the accumulators live in registers. */
INLINE AVX512 void micro_tile(const float *x, int64_t k, const void *w, exo_dtype type, const int R, const int M,
                              float *dst, int64_t ldd, int64_t col0, const float *bias) {
    __m512 acc[TILE_ROWS][TILE_TOKENS];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < M; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= k; j += 16) {
        __m512 xv[TILE_TOKENS];
#pragma GCC unroll 4
        for (int t = 0; t < M; t++) xv[t] = _mm512_loadu_ps(x + t * k + j);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wv = load_weights(w, r * k + j, type, 0xffff);
#pragma GCC unroll 4
            for (int t = 0; t < M; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    if (j < k) {
        __mmask16 mask = (__mmask16)((1u << (k - j)) - 1);
        __m512 xv[TILE_TOKENS];
#pragma GCC unroll 4
        for (int t = 0; t < M; t++) xv[t] = _mm512_maskz_loadu_ps(mask, x + t * k + j);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wv = load_weights(w, r * k + j, type, mask);
#pragma GCC unroll 4
            for (int t = 0; t < M; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < M; t++)
            dst[t * ldd + col0 + r] = _mm512_reduce_add_ps(acc[r][t]) + (bias ? bias[col0 + r] : 0.0f);
}

/* All tokens against weight rows [0, rows) of block w (row stride k), writing columns col0.. */
INLINE AVX512 void block_product(const cpu_matmul_args *a, const void *w, exo_dtype type, int64_t col0, int64_t rows) {
    for (int64_t t0 = 0; t0 < a->m; t0 += TILE_TOKENS) {
        int64_t m = a->m - t0 < TILE_TOKENS ? a->m - t0 : TILE_TOKENS;
        const float *x = a->x + t0 * a->k;
        float *dst = a->dst + t0 * a->n;
        int64_t r = 0;
        const int elem = type == EXO_DTYPE_F32 ? 4 : 2;
        for (; r + TILE_ROWS <= rows; r += TILE_ROWS) {
            const void *wr = (const uint8_t *)w + (size_t)(r * a->k) * elem;
            switch (m) {
            case 1: micro_tile(x, a->k, wr, type, TILE_ROWS, 1, dst, a->n, col0 + r, a->bias); break;
            case 2: micro_tile(x, a->k, wr, type, TILE_ROWS, 2, dst, a->n, col0 + r, a->bias); break;
            case 3: micro_tile(x, a->k, wr, type, TILE_ROWS, 3, dst, a->n, col0 + r, a->bias); break;
            default: micro_tile(x, a->k, wr, type, TILE_ROWS, 4, dst, a->n, col0 + r, a->bias); break;
            }
        }
        for (; r < rows; r++) {
            const void *wr = (const uint8_t *)w + (size_t)(r * a->k) * elem;
            switch (m) {
            case 1: micro_tile(x, a->k, wr, type, 1, 1, dst, a->n, col0 + r, a->bias); break;
            case 2: micro_tile(x, a->k, wr, type, 1, 2, dst, a->n, col0 + r, a->bias); break;
            case 3: micro_tile(x, a->k, wr, type, 1, 3, dst, a->n, col0 + r, a->bias); break;
            default: micro_tile(x, a->k, wr, type, 1, 4, dst, a->n, col0 + r, a->bias); break;
            }
        }
    }
}

static AVX512 void block_product_f32(const cpu_matmul_args *a, const void *w, int64_t col0, int64_t rows) {
    block_product(a, w, EXO_DTYPE_F32, col0, rows);
}

/* Dequantises Q8_0 weight rows [row0, row0 + rows) to float32 in `out`. */
static void dequantise_rows(const cpu_matmul_args *a, int64_t row0, int64_t rows, float *out) {
    for (int64_t r = 0; r < rows; r++) cpu_ref_load_row(a->w, a->w_type, a->k, row0 + r, out + r * a->k);
}

/* ---- decode: bf16 and f16 matrix-vector products streaming the weights at memory speed.
 * 32 16-bit weights (one 64-byte line) become two float32 vectors with one instruction each:
 * bf16's even-indexed values by a 16-bit left shift of the 32-bit lanes, the odd-indexed ones by
 * masking off the low halves (the activations are re-laid out once per call to match: per block
 * of 32, 16 even then 16 odd values); f16's first and last 16 by vcvtph2ps (exact; AVX-512F, no
 * fp16 arithmetic), the activations in their own order. So the inner loop is one load, two
 * widening instructions and two FMAs per line and row.
 * Prefetches: a tile visited in several passes (a batched step) issues two per line of its first
 * pass - its row GEMV_PREFETCH bytes ahead into L1, and the same line of the next tile (the next
 * R rows, contiguous in memory) into L2, shared out over the passes - so memory stays busy while
 * the later passes run from L1. A one-pass tile (decode) issues none: on a Zen 4 VM they had
 * helped (k=768 22.8 -> 27.7 GB/s, k=2048 28.5 -> 30.1, 1 GiB of bf16 weights, 2 threads), on
 * the Zen 5 VM they cost 8-12 % (docs/performance.md 4.8). The first tile of a chunk is always
 * requested at once (gemv_half). */
#define GEMV_ROWS 8           /* weight rows per tile (1-2 tokens): 8 memory streams, R * M accumulators */
#define GEMV_ROWS_WIDE 4      /* weight rows per tile for 3-4 tokens (16 accumulators) */
/* A batched step (5-16 tokens) loops the tokens 4 at a time per tile: at 8 tokens this runs at
 * ~100 GFLOP/s on one Zen 4 core of the dev VM (k 2048, weights in L3, CPU time), 86% of its
 * FMA peak (116). Measured and dropped: 8 tokens x 3 (or 2) rows with the activations as FMA
 * memory operands, 72 (64) GFLOP/s, as Zen 4 loads one 64-byte vector a cycle and 8 tokens'
 * 16 activation vectors do not fit the registers beside the accumulators; vdpbf16ps (32
 * products an instruction, twice an FMA's 16) needs the activation split into 3 bf16 parts to
 * stay exact (see kernels_mlx_avx512.c), 3 instructions per 32 weights and token against 2 FMAs. */
#define GEMV_PREFETCH 1024    /* bytes ahead in each row stream (16 lines) */

/* x[t][0 .. k32) -> out[t][...] in the layout the tile's widened weights take (k32 a multiple of
 * 32): bf16's even/odd order, or f16's own order (the rows packed at stride k32). */
static AVX512 void lay_out_x(const float *x, int64_t k, int64_t k32, int64_t m, exo_dtype type, float *out) {
    if (type == EXO_DTYPE_F16) {
        for (int64_t t = 0; t < m; t++) memcpy(out + t * k32, x + t * k, (size_t)k32 * sizeof(float));
        return;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t t = 0; t < m; t++)
        for (int64_t j = 0; j < k32; j += 32) {
            __m512 lo = _mm512_loadu_ps(x + t * k + j), hi = _mm512_loadu_ps(x + t * k + j + 16);
            _mm512_storeu_ps(out + t * k32 + j, _mm512_permutex2var_ps(lo, even, hi));
            _mm512_storeu_ps(out + t * k32 + j + 16, _mm512_permutex2var_ps(lo, odd, hi));
        }
}

/* sums[i] = the sum of v[i]'s 16 lanes, for 16 vectors: a transposing tree of 45 instructions
 * where 16 _mm512_reduce_add_ps take ~130 (at k 320, 10 steps of the tile's loop, those were as
 * many instructions as the products). Each vector's lanes are added in _mm512_reduce_add_ps's
 * own tree (lanes i + 8, then i + 4, i + 2, i + 1; bitwise equal on 3.2 M random vectors), so a
 * row's sum is the same in a tile as in a lone row (R 1), and a batched step's rows stay equal
 * to the same rows stepped alone. */
INLINE AVX512 __m512 sum_lanes16(const __m512 v[16]) {
    __m512 c[8], d[4], e[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88), _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xdd));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        e[i] = _mm512_add_ps(_mm512_shuffle_ps(d[2 * i], d[2 * i + 1], 0x44), _mm512_shuffle_ps(d[2 * i], d[2 * i + 1], 0xee));
    __m512 f = _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xdd));
    /* f[4 L + q] holds the sum of v[4 q + L] */
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), f);
}

/* dst[t][col0 + r] = x[t] . w[r] (+ bias) for R rows (1, 4 or 8) of 16-bit weights of `type`
 * (BF16 or F16, a constant) and M <= 4 tokens (R * M <= 16). With prefetch (a constant): rows
 * [next_lo, next_hi) prefetch their line of the next tile into L2; ahead: every row prefetches
 * GEMV_PREFETCH bytes ahead into L1 (the first pass over a tile's rows). */
INLINE AVX512 void gemv_half_tile(const uint16_t *w, const exo_dtype type, int64_t k, int64_t k32, const float *xs,
                                  const float *x, const int R, const int M, float *dst, int64_t ldd, int64_t col0,
                                  const float *bias, const bool prefetch, int next_lo, int next_hi, bool ahead) {
    __m512 acc[GEMV_ROWS][TILE_TOKENS]; /* R * M of them are used */
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < M; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t j = 0; j < k32; j += 32) {
        __m512 xe[TILE_TOKENS], xo[TILE_TOKENS];
#pragma GCC unroll 4
        for (int t = 0; t < M; t++) {
            xe[t] = _mm512_loadu_ps(xs + t * k32 + j);
            xo[t] = _mm512_loadu_ps(xs + t * k32 + j + 16);
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const uint16_t *row = w + r * k + j;
            if (prefetch && ahead) _mm_prefetch((const char *)row + GEMV_PREFETCH, _MM_HINT_T0);
            if (prefetch && r >= next_lo && r < next_hi) _mm_prefetch((const char *)(row + R * k), _MM_HINT_T1);
            __m512i v = _mm512_loadu_si512(row);
            __m512 we, wo; /* the weights of xs's first and second 16 lanes */
            if (type == EXO_DTYPE_F16) {
                we = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
                wo = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(v, 1));
            } else {
                we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
                wo = _mm512_castsi512_ps(_mm512_and_si512(v, high));
            }
#pragma GCC unroll 4
            for (int t = 0; t < M; t++) {
                acc[r][t] = _mm512_fmadd_ps(we, xe[t], acc[r][t]);
                acc[r][t] = _mm512_fmadd_ps(wo, xo[t], acc[r][t]);
            }
        }
    }
    for (int64_t j = k32; j < k; j += 16) {
        __mmask16 mask = k - j >= 16 ? 0xffff : (__mmask16)((1u << (k - j)) - 1);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512 wv = load_weights(w + r * k, j, type, mask);
#pragma GCC unroll 4
            for (int t = 0; t < M; t++)
                acc[r][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mask, x + t * k + j), acc[r][t]);
        }
    }
    if (R == 1) {
#pragma GCC unroll 4
        for (int t = 0; t < M; t++)
            dst[t * ldd + col0] = _mm512_reduce_add_ps(acc[0][t]) + (bias ? bias[col0] : 0.0f);
        return;
    }
    __m512 v[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) v[i] = i < R * M ? acc[i % R][i / R] : _mm512_setzero_ps();
    /* Token t's rows at lanes [t R, t R + R), through memory: the extract intrinsics need the
     * lane as an immediate, which t is not in an unoptimised (sanitizer) build. */
    float sums[16];
    _mm512_storeu_ps(sums, sum_lanes16(v));
    if (R == 4) {
        __m128 b = bias ? _mm_loadu_ps(bias + col0) : _mm_setzero_ps();
#pragma GCC unroll 4
        for (int t = 0; t < M; t++) _mm_storeu_ps(dst + t * ldd + col0, _mm_add_ps(_mm_loadu_ps(sums + 4 * t), b));
    } else {
        __m256 b = bias ? _mm256_loadu_ps(bias + col0) : _mm256_setzero_ps();
#pragma GCC unroll 2
        for (int t = 0; t < M; t++) _mm256_storeu_ps(dst + t * ldd + col0, _mm256_add_ps(_mm256_loadu_ps(sums + 8 * t), b));
    }
}

/* prefetch is a constant of each inlined copy, so a one-pass tile's loop holds no prefetch code
 * at all (with a run-time flag instead, the one-token matvec kept most of its cost). */
#define GEMV_CASE(R, M)                                                                                                \
    do {                                                                                                               \
        if (prefetch)                                                                                                  \
            gemv_half_tile(w, type, a->k, k32, xs_t, x_t, R, M, dst_t, a->n, n, a->bias, true, next_lo, next_hi,     \
                           t0 == 0);                                                                                   \
        else                                                                                                           \
            gemv_half_tile(w, type, a->k, k32, xs_t, x_t, R, M, dst_t, a->n, n, a->bias, false, 0, 0, false);         \
    } while (0)

/* type: BF16 or F16 (a constant of each copy, gemv_bf16 and gemv_f16). */
INLINE AVX512 void gemv_half(const cpu_matmul_args *a, const exo_dtype type, int64_t begin, int64_t end, float *xs) {
    int64_t k32 = a->k & ~(int64_t)31;
    lay_out_x(a->x, a->k, k32, a->m, type, xs);
    int64_t tile = a->m <= 2 ? GEMV_ROWS : GEMV_ROWS_WIDE;
    /* Cold start of the chunk: request the first prefetch distance of each row of the first
     * tile at once, instead of waiting out one demand miss after another. */
    for (int64_t r = 0; r < tile && begin + r < end; r++) {
        const char *row = (const char *)((const uint16_t *)a->w + (begin + r) * a->k);
        int64_t bytes = a->k * 2 < GEMV_PREFETCH ? a->k * 2 : GEMV_PREFETCH;
        for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(row + o, _MM_HINT_T0);
    }
    /* More than TILE_TOKENS tokens (a batched decode step): each tile of rows takes the tokens
     * TILE_TOKENS at a time while its rows are still in L1/L2, so the weights stream from memory
     * once per step whatever the batch. */
    for (int64_t n = begin, step; n < end; n += step) {
        const uint16_t *w = (const uint16_t *)a->w + n * a->k;
        bool full = end - n >= tile;
        step = full ? tile : 1;
        for (int64_t t0 = 0; t0 < a->m; t0 += TILE_TOKENS) {
            const float *xs_t = xs + t0 * k32, *x_t = a->x + t0 * a->k;
            float *dst_t = a->dst + t0 * a->n;
            /* The passes over a tile share out its rows' prefetches of the next tile, so that
             * memory is read through all of them rather than in the first only (the later passes
             * run from L1): 1B-shaped matrices held in L3, 8 tokens, one core 158-162 -> 173-179
             * GFLOP/s. */
            int pass = (int)(t0 / TILE_TOKENS), passes = (int)((a->m + TILE_TOKENS - 1) / TILE_TOKENS);
            int next_lo = (int)(tile * pass / passes), next_hi = (int)(tile * (pass + 1) / passes);
            /* One pass (up to TILE_TOKENS tokens: a decode step) leaves the streams to the
             * hardware prefetchers (Zen 5 VM, 1B-shaped layers, 2 threads: 36.5-38.0 -> 40.9-43.0
             * GB/s against a plain read's 43.6-50.3, four interleaved rounds); a batched step's
             * later passes run from L1 and need them to keep memory busy (8 tokens without them:
             * 19-26 GB/s against 36-38). */
            bool prefetch = passes > 1;
            switch (a->m - t0 < TILE_TOKENS ? a->m - t0 : TILE_TOKENS) {
            /* The last group of a batch may have 1-2 tokens in a tile of GEMV_ROWS_WIDE rows. */
            case 1: if (!full) GEMV_CASE(1, 1); else if (tile == GEMV_ROWS) GEMV_CASE(GEMV_ROWS, 1); else GEMV_CASE(GEMV_ROWS_WIDE, 1); break;
            case 2: if (!full) GEMV_CASE(1, 2); else if (tile == GEMV_ROWS) GEMV_CASE(GEMV_ROWS, 2); else GEMV_CASE(GEMV_ROWS_WIDE, 2); break;
            case 3: if (full) GEMV_CASE(GEMV_ROWS_WIDE, 3); else GEMV_CASE(1, 3); break;
            default: if (full) GEMV_CASE(GEMV_ROWS_WIDE, 4); else GEMV_CASE(1, 4); break;
            }
        }
    }
}

static AVX512 void gemv_bf16(const cpu_matmul_args *a, int64_t begin, int64_t end, float *xs) {
    gemv_half(a, EXO_DTYPE_BF16, begin, end, xs);
}
/* f16 weights took block_product's micro-tiles before: 54-57 ms a 1B decode step against bf16's
 * 39-40 on the same bytes (Zen 5 dev VM, 2 threads), and a batched step read them once per 4
 * tokens. */
static AVX512 void gemv_f16(const cpu_matmul_args *a, int64_t begin, int64_t end, float *xs) {
    gemv_half(a, EXO_DTYPE_F16, begin, end, xs);
}

/* Items are weight rows; up to CPU_MATMUL_BLOCK tokens (the executor sends prefill to
 * cpu_avx512_gemm), taken TILE_TOKENS at a time per tile of rows. The weights stream once from
 * memory, widened in registers; Q8_0 rows are dequantised a block of CPU_MATMUL_BLOCK rows at a
 * time into the thread's workspace. The bf16 path re-lays out the tokens into the workspace,
 * which holds CPU_MATMUL_BLOCK rows of k floats. */
_Static_assert(CPU_GEMV_MAX_TOKENS <= TILE_TOKENS, "the decode kernels take up to TILE_TOKENS tokens");

AVX512 void cpu_avx512_matmul(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_matmul_args *a = args;
    if (a->w_type == EXO_DTYPE_MLX_AFFINE) {
        cpu_mlx_matmul(args, begin, end, thread);
        return;
    }
    float *ws = (float *)(a->workspace + (size_t)thread * a->workspace_stride);
    switch (a->w_type) {
    case EXO_DTYPE_BF16: gemv_bf16(a, begin, end, ws); return;
    case EXO_DTYPE_F32: block_product_f32(a, (const float *)a->w + begin * a->k, begin, end - begin); return;
    case EXO_DTYPE_F16: gemv_f16(a, begin, end, ws); return;
    default:
        for (int64_t n0 = begin; n0 < end; n0 += CPU_MATMUL_BLOCK) {
            int64_t rows = end - n0 < CPU_MATMUL_BLOCK ? end - n0 : CPU_MATMUL_BLOCK;
            dequantise_rows(a, n0, rows, ws);
            block_product_f32(a, ws, n0, rows);
        }
    }
}

/* Sum of squares in double (like the reference), scaling in float32 vectors. */
AVX512 void cpu_avx512_rms_norm(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_rms_norm_args *a = args;
    int64_t n = a->width;
    for (int64_t row = begin; row < end; row++) {
        const float *x = a->x + row * n;
        float *out = a->dst + row * n;
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            __m512 v = _mm512_loadu_ps(x + j);
            __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
            s0 = _mm512_fmadd_pd(lo, lo, s0);
            s1 = _mm512_fmadd_pd(hi, hi, s1);
        }
        double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
        for (; j < n; j++) sum += (double)x[j] * x[j];
        double inv = 1.0 / sqrt(sum / (double)n + (double)a->eps);
        __m512d vinv = _mm512_set1_pd(inv);
        __m512d one = _mm512_set1_pd(a->one_plus ? 1.0 : 0.0);
        for (j = 0; j + 8 <= n; j += 8) {
            __m512d xv = _mm512_cvtps_pd(_mm256_loadu_ps(x + j));
            __m512d wv;
            if (a->w_type == EXO_DTYPE_F32) {
                wv = _mm512_cvtps_pd(_mm256_loadu_ps((const float *)a->w + j));
            } else {
                __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)a->w + j));
                __m256 wf = a->w_type == EXO_DTYPE_F16
                                ? _mm256_cvtph_ps(h)
                                : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
                wv = _mm512_cvtps_pd(wf);
            }
            __m512d r = _mm512_mul_pd(_mm512_mul_pd(xv, vinv), _mm512_add_pd(wv, one));
            _mm256_storeu_ps(out + j, _mm512_cvtpd_ps(r));
        }
        for (; j < n; j++) {
            double w = cpu_ref_load(a->w, a->w_type, j) + (a->one_plus ? 1.0 : 0.0);
            out[j] = (float)((double)x[j] * inv * w);
        }
    }
}
