/* Attention kernels, both with an online softmax (no score row is ever stored whole).
 *
 * Decode (cpu_avx512_attention): one query token; the heads that share a KV head (GQA) and fall
 * in one chunk are processed together, so each K and V row is loaded once for up to ATTN_GROUP
 * heads. Scores come 16 cache rows at a time: per row a vector of partial products, then one
 * transpose-and-add tree turns 16 such vectors into 16 scores in one vector (about 3 shuffles
 * per row instead of a horizontal sum each); softmax weights use the vector exp; the weighted
 * V rows accumulate in registers per 16-float slice of the head.
 *
 * Prefill (cpu_avx512_attention_tiled): a flash-attention style tiled kernel. A work item is
 * one KV head and a block of consecutive query tokens; its query rows (tokens x the heads that
 * share the KV head) walk the cache in tiles of FA_ROWS rows. Per tile, the K rows are
 * transposed once into [dim][row] so that scores come out 16 rows per FMA (a broadcast query
 * element times a K^T vector) with no horizontal sums, then an online softmax per query row
 * (vector exp, running maximum and denominator) and the weighted V rows are accumulated. Each
 * K/V tile is read once for up to FA_QUERIES query rows instead of once per row. Rows outside a
 * query's causal / sliding-window range are masked to -inf, and their weights to exactly 0.
 *
 * The caches may be F32, BF16 or F16 (ABI 1.7): every K and V load goes through kv_load16,
 * which widens 16 elements exactly (bf16 by a 16-bit shift, f16 by vcvtph2ps, which AVX-512F
 * has: no AVX512_FP16 needed); each kernel body is inlined once per dtype, so the F32 path is
 * the code it was. The 16-bit caches halve the bytes a decode step streams per position. */
#include "kernels_fast.h"

#include "kernels_math_avx512.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define AVX512 CPU_AVX512
#define INLINE CPU_INLINE

#define ATTN_GROUP 8    /* query heads sharing one pass over a KV head (decode) */
#define ATTN_ROWS 16    /* cache rows per decode step: one score vector */

#define FA_ROWS 64      /* cache rows per tile (4 score vectors per query row) */
#define FA_QUERIES 32   /* query rows per work item */
#define FA_VECS (FA_ROWS / 16)

int64_t cpu_attention_block_tokens(int64_t group) { return group >= FA_QUERIES ? 1 : FA_QUERIES / group; }
bool cpu_attention_tiled_fits(int64_t group) { return group >= 1 && group <= FA_QUERIES; }

/* K^T tile, scores, accumulators, then per-row maximum and denominator. */
size_t cpu_avx512_attention_tiled_workspace(int64_t head_dim) {
    return ((size_t)head_dim * FA_ROWS + (size_t)FA_QUERIES * FA_ROWS + (size_t)FA_QUERIES * (size_t)head_dim +
            2 * FA_QUERIES) * sizeof(float);
}

/* The factor on a query row's accumulated weighted V rows (kept relative to the running maximum
 * `max`, with denominator `den`): 1 / den, or with a sink logit (gpt_oss) its share of the
 * denominator taken in at the final maximum. */
INLINE float attn_norm(float max, float den, const float *sinks, int64_t h) {
    if (!sinks) return 1.0f / den;
    float m = fmaxf(max, sinks[h]), r = expf(max - m);
    return r / (den * r + expf(sinks[h] - m));
}

size_t cpu_avx512_attention_workspace(int64_t head_dim) {
    return (size_t)ATTN_GROUP * ((size_t)head_dim + ATTN_ROWS) * sizeof(float);
}

/* out lane i = horizontal sum of v[i], for 16 vectors (a transpose fused with the adds). */
INLINE AVX512 __m512 sum16(__m512 v[16]) {
    __m512 a[8], b[4];
    for (int i = 0; i < 8; i++)
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_ps(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* b[i] lane L, element k: the sum over 128-bit lane L of v[4i + k]. */
    __m512 d01 = _mm512_add_ps(_mm512_shuffle_f32x4(b[0], b[1], 0x88), _mm512_shuffle_f32x4(b[0], b[1], 0xdd));
    __m512 d23 = _mm512_add_ps(_mm512_shuffle_f32x4(b[2], b[3], 0x88), _mm512_shuffle_f32x4(b[2], b[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d01, d23, 0x88), _mm512_shuffle_f32x4(d01, d23, 0xdd));
}

/* Elements idx .. idx + 15 (those in `m`) of a cache of dtype dt, widened to float exactly. */
INLINE AVX512 __m512 kv_load16(const void *cache, int64_t idx, __mmask16 m, exo_dtype dt) {
    if (dt == EXO_DTYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)cache + idx);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)cache + idx);
    if (dt == EXO_DTYPE_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* Scores of one query row against cache rows r0 .. r0 + rows - 1 (rows <= 16; row r's elements
 * start at k_idx + r * kv_row), scaled and soft-capped, -inf in the lanes past `rows`. */
INLINE AVX512 __m512 score16(const float *q, const void *k, int64_t k_idx, int64_t kv_row, int64_t d, int64_t rows,
                             float scale, float softcap, exo_dtype dt) {
    __m512 part[16];
    for (int r = 0; r < 16; r++) part[r] = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j += 16) {
        __mmask16 mk = cpu_tail_mask(d - j);
        __m512 qv = _mm512_maskz_loadu_ps(mk, q + j);
        for (int r = 0; r < 16; r++)
            if (r < rows) part[r] = _mm512_fmadd_ps(qv, kv_load16(k, k_idx + r * kv_row + j, mk, dt), part[r]);
    }
    __m512 s = _mm512_mul_ps(sum16(part), _mm512_set1_ps(scale));
    if (softcap > 0.0f) {
        float tmp[16];
        _mm512_storeu_ps(tmp, s);
        for (int l = 0; l < 16; l++) tmp[l] = softcap * tanhf(tmp[l] / softcap);
        s = _mm512_loadu_ps(tmp);
    }
    return _mm512_mask_blend_ps(cpu_tail_mask(rows), _mm512_set1_ps(-INFINITY), s);
}

/* Items: t * n_heads + h; see the top of the file. */
INLINE AVX512 void attention_rows(const cpu_attention_args *a, int64_t begin, int64_t end, uint32_t thread,
                                  const exo_dtype dt) {
    int64_t d = a->head_dim, group = a->n_heads / a->n_kv_heads, kv_row = a->n_kv_heads * d;
    float *acc = (float *)(a->workspace + (size_t)thread * a->workspace_stride);
    float *p = acc + ATTN_GROUP * d; /* [ATTN_GROUP][ATTN_ROWS] softmax weights of the step */
    for (int64_t item = begin; item < end;) {
        int64_t t = item / a->n_heads, h0 = item % a->n_heads, kvh = h0 / group;
        /* Heads h0 .. h0 + g - 1: same token, same KV head, inside this chunk. */
        int64_t g = (kvh + 1) * group - h0;
        if (g > end - item) g = end - item;
        if (g > ATTN_GROUP) g = ATTN_GROUP;
        const float *q = a->q + (t * a->n_heads + h0) * d;
        int64_t last = a->pos[t], slot = a->slots ? (int64_t)a->slots[t] * a->slot_elems : 0;
        int64_t first = a->window > 0 && last - a->window + 1 > 0 ? last - a->window + 1 : 0;
        float max[ATTN_GROUP], denom[ATTN_GROUP], rescale[ATTN_GROUP];
        for (int64_t j = 0; j < g; j++) max[j] = -INFINITY, denom[j] = 0.0f;
        for (int64_t j = 0; j < g * d; j++) acc[j] = 0.0f;
        for (int64_t r0 = first; r0 <= last; r0 += ATTN_ROWS) {
            int64_t rows = last + 1 - r0 < ATTN_ROWS ? last + 1 - r0 : ATTN_ROWS;
            int64_t kv0 = slot + r0 * kv_row + kvh * d; /* element of row r0 in both caches */
            for (int64_t j = 0; j < g; j++) {
                __m512 s = score16(q + j * d, a->k, kv0, kv_row, d, rows, a->scale, a->softcap, dt);
                float new_max = fmaxf(max[j], _mm512_reduce_max_ps(s));
                rescale[j] = expf(max[j] - new_max); /* 0 on the first step */
                __m512 e = _mm512_maskz_mov_ps(cpu_tail_mask(rows), cpu_exp_ps(_mm512_sub_ps(s, _mm512_set1_ps(new_max))));
                denom[j] = denom[j] * rescale[j] + _mm512_reduce_add_ps(e);
                max[j] = new_max;
                _mm512_storeu_ps(p + j * ATTN_ROWS, e);
            }
            for (int64_t c = 0; c < d; c += 16) {
                __mmask16 mk = cpu_tail_mask(d - c);
                __m512 o[ATTN_GROUP];
                for (int64_t j = 0; j < g; j++)
                    o[j] = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, acc + j * d + c), _mm512_set1_ps(rescale[j]));
                for (int64_t r = 0; r < rows; r++) {
                    __m512 vr = kv_load16(a->v, kv0 + r * kv_row + c, mk, dt);
                    for (int64_t j = 0; j < g; j++) o[j] = _mm512_fmadd_ps(_mm512_set1_ps(p[j * ATTN_ROWS + r]), vr, o[j]);
                }
                for (int64_t j = 0; j < g; j++) _mm512_mask_storeu_ps(acc + j * d + c, mk, o[j]);
            }
        }
        for (int64_t j = 0; j < g; j++) {
            float *out = a->dst + (t * a->n_heads + h0 + j) * d;
            float inv = attn_norm(max[j], denom[j], a->sinks, h0 + j);
            for (int64_t e = 0; e < d; e++) out[e] = acc[j * d + e] * inv;
        }
        item += g;
    }
}

AVX512 void cpu_avx512_attention(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_attention_args *a = args;
    switch (a->kv_dtype) {
    case EXO_DTYPE_BF16: attention_rows(a, begin, end, thread, EXO_DTYPE_BF16); return;
    case EXO_DTYPE_F16: attention_rows(a, begin, end, thread, EXO_DTYPE_F16); return;
    default: attention_rows(a, begin, end, thread, EXO_DTYPE_F32); return;
    }
}

/* Scores of NQ query rows against the K^T tile: s[i][r] = scale * q_i . k_r, then the softcap,
 * then -inf outside [first_i, last_i] or past the tile. NQ is a constant after inlining. */
INLINE AVX512 void score_rows(const float *const *q, const int NQ, const float *kt, int64_t d, int64_t r0,
                              int64_t rows, const int64_t *first, const int64_t *last, float scale, float softcap,
                              float *s) {
    __m512 acc[4][FA_VECS];
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
        for (int v = 0; v < FA_VECS; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j++) {
        __m512 k[FA_VECS];
#pragma GCC unroll 4
        for (int v = 0; v < FA_VECS; v++) k[v] = _mm512_load_ps(kt + j * FA_ROWS + v * 16);
#pragma GCC unroll 4
        for (int i = 0; i < NQ; i++) {
            __m512 qb = _mm512_set1_ps(q[i][j]);
#pragma GCC unroll 4
            for (int v = 0; v < FA_VECS; v++) acc[i][v] = _mm512_fmadd_ps(qb, k[v], acc[i][v]);
        }
    }
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma GCC unroll 4
    for (int i = 0; i < NQ; i++)
#pragma GCC unroll 4
        for (int v = 0; v < FA_VECS; v++) {
            __m512 sv = _mm512_mul_ps(acc[i][v], _mm512_set1_ps(scale));
            if (softcap > 0.0f) {
                float tmp[16];
                _mm512_storeu_ps(tmp, sv);
                for (int l = 0; l < 16; l++) tmp[l] = softcap * tanhf(tmp[l] / softcap);
                sv = _mm512_loadu_ps(tmp);
            }
            __m512i r = _mm512_add_epi32(_mm512_set1_epi32((int)(r0 + v * 16)), lane);
            __mmask16 ok = _mm512_cmp_epi32_mask(r, _mm512_set1_epi32((int)first[i]), _MM_CMPINT_NLT) &
                           _mm512_cmp_epi32_mask(r, _mm512_set1_epi32((int)last[i]), _MM_CMPINT_LE) &
                           _mm512_cmp_epi32_mask(r, _mm512_set1_epi32((int)(r0 + rows)), _MM_CMPINT_LT);
            _mm512_store_ps(s + i * FA_ROWS + v * 16, _mm512_mask_blend_ps(ok, _mm512_set1_ps(-INFINITY), sv));
        }
}

/* Items: kv_head + n_kv_heads * token_block, token blocks of cpu_attention_block_tokens(group). */
INLINE AVX512 void attention_tiles(const cpu_attention_args *a, int64_t begin, int64_t end, uint32_t thread,
                                   const exo_dtype dt) {
    int64_t d = a->head_dim, group = a->n_heads / a->n_kv_heads, kv_row = a->n_kv_heads * d;
    int64_t block = cpu_attention_block_tokens(group);
    float *kt = (float *)(a->workspace + (size_t)thread * a->workspace_stride);
    float *s = kt + d * FA_ROWS, *acc = s + FA_QUERIES * FA_ROWS, *mx = acc + FA_QUERIES * d, *den = mx + FA_QUERIES;
    const float *q[FA_QUERIES];
    int64_t first[FA_QUERIES], last[FA_QUERIES];
    for (int64_t item = begin; item < end; item++) {
        int64_t kvh = item % a->n_kv_heads, t0 = item / a->n_kv_heads * block;
        int64_t nt = a->n_tokens - t0 < block ? a->n_tokens - t0 : block;
        int64_t nq = nt * group, lo = INT64_MAX, hi = -1;
        for (int64_t i = 0; i < nq; i++) {
            int64_t t = t0 + i / group, h = kvh * group + i % group;
            q[i] = a->q + (t * a->n_heads + h) * d;
            last[i] = a->pos[t];
            first[i] = a->window > 0 && last[i] - a->window + 1 > 0 ? last[i] - a->window + 1 : 0;
            lo = first[i] < lo ? first[i] : lo;
            hi = last[i] > hi ? last[i] : hi;
            mx[i] = -INFINITY;
            den[i] = 0.0f;
        }
        for (int64_t j = 0; j < nq * d; j++) acc[j] = 0.0f;
        for (int64_t r0 = lo; r0 <= hi; r0 += FA_ROWS) {
            int64_t rows = hi + 1 - r0 < FA_ROWS ? hi + 1 - r0 : FA_ROWS;
            /* K^T tile; columns past `rows` are zero (their scores are masked anyway). */
            for (int64_t r = 0; r < FA_ROWS; r++) {
                if (r >= rows) {
                    for (int64_t j = 0; j < d; j++) kt[j * FA_ROWS + r] = 0.0f;
                    continue;
                }
                int64_t k0 = (r0 + r) * kv_row + kvh * d;
                if (dt == EXO_DTYPE_F32) {
                    const float *k = (const float *)a->k + k0;
                    for (int64_t j = 0; j < d; j++) kt[j * FA_ROWS + r] = k[j];
                    continue;
                }
                float wide[16];
                for (int64_t j = 0; j < d; j += 16) {
                    _mm512_storeu_ps(wide, kv_load16(a->k, k0 + j, cpu_tail_mask(d - j), dt));
                    for (int64_t l = 0; l < 16 && j + l < d; l++) kt[(j + l) * FA_ROWS + r] = wide[l];
                }
            }
            int64_t i = 0;
            for (; i + 4 <= nq; i += 4)
                score_rows(q + i, 4, kt, d, r0, rows, first + i, last + i, a->scale, a->softcap, s + i * FA_ROWS);
            for (; i < nq; i++)
                score_rows(q + i, 1, kt, d, r0, rows, first + i, last + i, a->scale, a->softcap, s + i * FA_ROWS);
            for (i = 0; i < nq; i++) {
                float *si = s + i * FA_ROWS;
                __m512 m = _mm512_load_ps(si);
                for (int v = 1; v < FA_VECS; v++) m = _mm512_max_ps(m, _mm512_load_ps(si + v * 16));
                float tile_max = _mm512_reduce_max_ps(m);
                if (tile_max == -INFINITY) continue; /* no visible row of this tile */
                float new_max = fmaxf(mx[i], tile_max);
                float rescale = expf(mx[i] - new_max); /* 0 on the first visible tile */
                __m512 sum = _mm512_setzero_ps(), nm = _mm512_set1_ps(new_max);
                for (int v = 0; v < FA_VECS; v++) {
                    __m512 sv = _mm512_load_ps(si + v * 16);
                    __mmask16 seen = _mm512_cmp_ps_mask(sv, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
                    __m512 p = _mm512_maskz_mov_ps(seen, cpu_exp_ps(_mm512_sub_ps(sv, nm)));
                    _mm512_store_ps(si + v * 16, p);
                    sum = _mm512_add_ps(sum, p);
                }
                den[i] = den[i] * rescale + _mm512_reduce_add_ps(sum);
                mx[i] = new_max;
                float *ai = acc + i * d;
                int64_t v0 = r0 * kv_row + kvh * d;
                for (int64_t j = 0; j < d; j += 16) {
                    __mmask16 mk = cpu_tail_mask(d - j);
                    __m512 o = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, ai + j), _mm512_set1_ps(rescale));
                    for (int64_t r = 0; r < rows; r++)
                        o = _mm512_fmadd_ps(_mm512_set1_ps(si[r]), kv_load16(a->v, v0 + r * kv_row + j, mk, dt), o);
                    _mm512_mask_storeu_ps(ai + j, mk, o);
                }
            }
        }
        for (int64_t i = 0; i < nq; i++) {
            int64_t t = t0 + i / group, h = kvh * group + i % group;
            float *out = a->dst + (t * a->n_heads + h) * d;
            float inv = attn_norm(mx[i], den[i], a->sinks, h);
            for (int64_t j = 0; j < d; j++) out[j] = acc[i * d + j] * inv;
        }
    }
}

AVX512 void cpu_avx512_attention_tiled(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_attention_args *a = args;
    switch (a->kv_dtype) {
    case EXO_DTYPE_BF16: attention_tiles(a, begin, end, thread, EXO_DTYPE_BF16); return;
    case EXO_DTYPE_F16: attention_tiles(a, begin, end, thread, EXO_DTYPE_F16); return;
    default: attention_tiles(a, begin, end, thread, EXO_DTYPE_F32); return;
    }
}

/* bf16 of 16 floats, rounding to nearest even (cpu_f32_to_bf16 lane by lane). */
INLINE AVX512 __m256i bf16_round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

AVX512 void cpu_avx512_kv_write(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_kv_write_args *a = args;
    size_t elem = exo_dtype_size(a->dtype);
    for (int64_t t = begin; t < end; t++) {
        int64_t first = (a->slots ? (int64_t)a->slots[t] * a->slot_elems : 0) + (int64_t)a->pos[t] * a->row_size;
        const float *src = a->src + t * a->row_size;
        if (a->dtype == EXO_DTYPE_F32) {
            memcpy((float *)a->cache + first, src, (size_t)a->row_size * elem);
            continue;
        }
        uint16_t *row = (uint16_t *)a->cache + first;
        for (int64_t i = 0; i < a->row_size; i += 16) {
            __mmask16 m = cpu_tail_mask(a->row_size - i);
            __m512 x = _mm512_maskz_loadu_ps(m, src + i);
            __m256i h = a->dtype == EXO_DTYPE_BF16 ? bf16_round16(x)
                                                   : _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_mask_storeu_epi16(row + i, m, h);
        }
    }
}
