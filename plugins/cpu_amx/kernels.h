/* The kernels' argument blocks. Every kernel has the thread pool's task signature: it processes
 * items [begin, end) of its op's parallel dimension (named at each struct) on worker `thread`,
 * which indexes the per-thread workspace. Reference (kernels_ref.c) and fast kernels
 * (kernels_avx512.c) share these blocks, so the graph executor can swap one for the other. */
#ifndef EXO_CPU_KERNELS_H
#define EXO_CPU_KERNELS_H

#include "exo_plugin.h"

#include <stddef.h>
#include <stdint.h>

typedef void (*cpu_kernel_fn)(void *args, int64_t begin, int64_t end, uint32_t thread);

/* How an EXO_DTYPE_MLX_AFFINE weight is read (abi/exo_plugin.h, "Quantized weights"): rows of
 * k * bits / 32 little-endian words holding a bit stream of k codes q; w = scale * q + bias with
 * one scale and bias (of `type`, [rows][k / group]) per group of `group` elements. */
typedef struct cpu_quant {
    const void *scales, *biases;
    exo_dtype type;
    uint32_t bits, group;
} cpu_quant;

/* Items: tokens. dst[t, :] = table[ids[t], :] * scale. ids are checked before the call. */
typedef struct cpu_get_rows_args {
    const void *table;
    exo_dtype table_type;
    int64_t width;
    const int32_t *ids;
    float scale;
    float *dst;
    cpu_quant q;      /* table_type MLX_AFFINE only */
} cpu_get_rows_args;

/* Items: rows of `width`. dst = x / sqrt(mean(x^2) + eps) * (w or 1 + w). */
typedef struct cpu_rms_norm_args {
    const float *x;
    const void *w;
    exo_dtype w_type;
    int64_t width;
    float eps;
    int one_plus;
    float *dst;
} cpu_rms_norm_args;

/* Items: output columns n (weight rows). dst[m, n] = sum_k x[m, k] * W[n, k] + bias[n]. */
typedef struct cpu_matmul_args {
    const float *x;
    int64_t m, k, n;
    const void *w;
    exo_dtype w_type;
    const float *bias; /* NULL: none */
    float *dst;
    uint8_t *workspace; /* n_threads slices of workspace_stride bytes */
    size_t workspace_stride;
    float *x_packed;    /* fast GEMM only: x re-laid out by cpu_avx512_gemm_pack_x, or NULL */
    cpu_quant q;        /* w_type MLX_AFFINE only */
    uint8_t *x_int8;    /* cpu_mlx_gemm_int8 only: x as cpu_mlx_gemm_int8_pack_x lays it out, or NULL */
} cpu_matmul_args;

/* Mixture of experts (EXO_OP_MOE_*). Items: tokens. TOPK ranks a token's E experts by the rule's
 * scores, in float (SOFTMAX: the router softmax; SIGMOID_BIAS: sigmoid(logit) + bias[e];
 * TOPK_SOFTMAX: the logits) and writes ids[t, :] = the k best, best first, ties to the lower id.
 * WEIGHTS: SOFTMAX w[t, j] = probs[ids[t, j]] (divided by their sum when normalize);
 * SIGMOID_BIAS sigmoid(logit[ids[t, j]]) (divided by their sum + 1e-20 when normalize);
 * TOPK_SOFTMAX the softmax over the k selected logits; then times scale. ids are checked before
 * the WEIGHTS call. */
#define CPU_MOE_MAX_EXPERTS 1024 /* the routing kernels' per-token stack arrays */
typedef struct cpu_moe_route_args {
    const float *scores;
    int64_t experts, k;
    int32_t *ids;         /* TOPK: written; WEIGHTS: read */
    float *weights;       /* WEIGHTS: written */
    int normalize;
    float scale;
    int32_t rule;         /* EXO_MOE_RULE_* */
    const float *bias;    /* TOPK with SIGMOID_BIAS: the selection bias [E]; else NULL */
} cpu_moe_route_args;

/* Items: tokens. dst[t, :] = sum_j w[t, j] * y[t, j, :]. */
typedef struct cpu_moe_combine_args {
    const float *y, *w;
    int64_t k, n;
    float *dst;
} cpu_moe_combine_args;

/* Items: elements of a. b repeats every b_count elements (b_count == count or a row). */
typedef struct cpu_binary_args {
    const float *a;
    const void *b;
    exo_dtype b_type;
    int64_t b_count;
    float *dst;
} cpu_binary_args;

/* Items: elements. dst = act(gate) * up; EXO_ACT_SWIGLU_CLAMP: g = min(gate, limit),
 * u = clamp(up, -limit, limit), dst = (u + 1) * g * sigmoid(alpha * g). */
typedef struct cpu_glu_args {
    const float *gate, *up;
    int32_t act;
    float *dst;
    float alpha, limit; /* EXO_ACT_SWIGLU_CLAMP only */
} cpu_glu_args;

/* Items: tokens. x is [T][n_heads][head_dim]; the first n_rot dims of each head rotate. */
typedef struct cpu_rope_args {
    const float *x;
    const int32_t *pos;
    const float *inv_freq;
    int64_t head_dim, n_heads;
    int32_t n_rot, mode;
    float attn_factor;
    float *dst;
} cpu_rope_args;

/* Items: tokens. cache[pos[t]] = src[t] (rows of row_size floats, rounded to nearest even into
 * a BF16 or F16 cache: ABI 1.7); positions checked before. Pooled caches (ABI 1.6):
 * cache[slots[t]][pos[t]], slot_elems apart; slots NULL: one cache. */
typedef struct cpu_kv_write_args {
    const float *src;
    const int32_t *pos;
    int64_t row_size;
    void *cache;
    const int32_t *slots;
    int64_t slot_elems; /* elements of the cache's dtype */
    exo_dtype dtype;    /* the cache's: F32, BF16 or F16 */
} cpu_kv_write_args;

/* Items: t * n_heads + h. See EXO_OP_ATTENTION; positions are checked before the call. */
typedef struct cpu_attention_args {
    const float *q;
    const void *k, *v;  /* caches of kv_dtype (ABI 1.7: F32, BF16 or F16), read as float */
    const int32_t *pos;
    int64_t n_heads, n_kv_heads, head_dim;
    int64_t window; /* 0: none */
    float scale, softcap;
    float *dst;
    uint8_t *workspace; /* needs head_dim doubles per thread */
    size_t workspace_stride;
    int64_t n_tokens;   /* query tokens (the tiled fast kernel's items are token blocks) */
    const float *sinks; /* [n_heads]: one more logit per head in the softmax's denominator, or NULL */
    /* Pooled caches (ABI 1.6): token t reads the caches slots[t] * slot_elems elements past k/v;
     * NULL: one cache. The per-row kernels take it; the tiled one is handed one slot's run of
     * tokens with k/v already offset (graph.c), so it never reads it. */
    const int32_t *slots;
    int64_t slot_elems;
    exo_dtype kv_dtype;
} cpu_attention_args;

/* Items: elements. */
typedef struct cpu_softcap_args {
    const float *x;
    float cap;
    float *dst;
} cpu_softcap_args;

/* Items: rows of n floats; dst gets each row's EXO_OP_ARGMAX index. */
typedef struct cpu_argmax_args {
    const float *x;
    int64_t n;
    int32_t *dst;
} cpu_argmax_args;

/* Same dtype: items are bytes (a byte copy). Otherwise items are elements, src (f16/bf16) -> f32. */
typedef struct cpu_copy_args {
    const void *src;
    exo_dtype src_type, dst_type;
    void *dst;
} cpu_copy_args;

#endif
