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
 * query's causal / sliding-window range are masked to -inf, and their weights to exactly 0. */
#include "kernels_fast.h"

#include "kernels_math_avx512.h"

#include <math.h>
#include <stdbool.h>

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

/* Scores of one query row against cache rows r0 .. r0 + rows - 1 (rows <= 16), scaled and
 * soft-capped, -inf in the lanes past `rows`. */
INLINE AVX512 __m512 score16(const float *q, const float *k, int64_t kv_row, int64_t d, int64_t rows, float scale,
                             float softcap) {
    __m512 part[16];
    for (int r = 0; r < 16; r++) part[r] = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j += 16) {
        __mmask16 mk = cpu_tail_mask(d - j);
        __m512 qv = _mm512_maskz_loadu_ps(mk, q + j);
        for (int r = 0; r < 16; r++)
            if (r < rows) part[r] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k + r * kv_row + j), part[r]);
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
AVX512 void cpu_avx512_attention(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_attention_args *a = args;
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
        int64_t last = a->pos[t], slot = a->slots ? (int64_t)a->slots[t] * a->slot_floats : 0;
        int64_t first = a->window > 0 && last - a->window + 1 > 0 ? last - a->window + 1 : 0;
        float max[ATTN_GROUP], denom[ATTN_GROUP], rescale[ATTN_GROUP];
        for (int64_t j = 0; j < g; j++) max[j] = -INFINITY, denom[j] = 0.0f;
        for (int64_t j = 0; j < g * d; j++) acc[j] = 0.0f;
        for (int64_t r0 = first; r0 <= last; r0 += ATTN_ROWS) {
            int64_t rows = last + 1 - r0 < ATTN_ROWS ? last + 1 - r0 : ATTN_ROWS;
            const float *k = a->k + slot + r0 * kv_row + kvh * d, *v = a->v + slot + r0 * kv_row + kvh * d;
            for (int64_t j = 0; j < g; j++) {
                __m512 s = score16(q + j * d, k, kv_row, d, rows, a->scale, a->softcap);
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
                    __m512 vr = _mm512_maskz_loadu_ps(mk, v + r * kv_row + c);
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
AVX512 void cpu_avx512_attention_tiled(void *args, int64_t begin, int64_t end, uint32_t thread) {
    const cpu_attention_args *a = args;
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
                const float *k = a->k + (r0 + r) * kv_row + kvh * d;
                for (int64_t j = 0; j < d; j++) kt[j * FA_ROWS + r] = k[j];
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
                const float *vt = a->v + r0 * kv_row + kvh * d;
                for (int64_t j = 0; j < d; j += 16) {
                    __mmask16 mk = cpu_tail_mask(d - j);
                    __m512 o = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, ai + j), _mm512_set1_ps(rescale));
                    for (int64_t r = 0; r < rows; r++)
                        o = _mm512_fmadd_ps(_mm512_set1_ps(si[r]), _mm512_maskz_loadu_ps(mk, vt + r * kv_row + j), o);
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
