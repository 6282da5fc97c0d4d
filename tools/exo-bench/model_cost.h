/* What one token costs a llama-family model: bytes read and floating-point work, from the
 * dimensions exo_model_info gives. The basis of the decode bound (bandwidth / bytes per token)
 * and the prefill bound (matrix throughput / flops per token).
 *
 * Mixtures of experts (qwen3_moe, mixtral): a sparse layer reads its router and only the k experts
 * its token selected, so a token's bytes and flops count k of the E experts; the parameter and
 * total-expert figures count all E. */
#ifndef EXO_BENCH_MODEL_COST_H
#define EXO_BENCH_MODEL_COST_H

#include <stdint.h>

#include "exo.h"

typedef struct model_cost {
    double bytes_per_weight;       /* of a matrix weight of width hidden: the checkpoint's dtype
                                    * (Q8_0: 34 bytes per 32), or MLX affine: bits / 8 + 2 float
                                    * scale/bias per group (a matrix whose width holds no whole
                                    * group counts float, as mlx-lm leaves it) */
    uint32_t quant_bits, quant_group; /* MLX affine matrices (0: float) */
    uint64_t layer_matrix_params;  /* per token: q, k, v, o of every layer, gate/up/down of the dense
                                    * MLPs and of the k active experts of the sparse ones, routers */
    uint64_t norm_params;          /* two RMSNorms per layer and the final one */
    uint64_t head_params;          /* lm_head: vocab x hidden, tied or not */
    uint64_t total_params;         /* as stored: every expert, the embedding once more when untied */
    /* Weights read to decode one token: every layer matrix (active experts only), every norm, one
     * embedding row, and the whole lm_head (a tied one is the embedding table, read in full for
     * the logits). */
    double decode_weight_bytes;
    /* K and V of one cached position across all layers, at 4 bytes an element (float32) until
     * the shard says which dtype it holds: main.c sets it from exo_session_kv_bytes. */
    double kv_bytes_per_position;
    /* Multiply-adds x 2 of the layer matrices for one token (attention scores excluded). */
    double layer_flops_per_token;

    /* Mixture of experts (n_experts 0: dense; the fields below are then 0). */
    uint32_t n_experts, n_experts_per_tok, n_moe_layers;
    double expert_bytes_per_weight;  /* experts' storage, gate/up/down averaged (quantize-on-load
                                      * leaves them float) */
    double router_bytes_per_weight;  /* routers' storage (mlx-lm: 8-bit by override) */
    double expert_bytes_total;       /* all E experts of every sparse layer, as stored */
    double expert_bytes_per_token;   /* the k active ones, counted in decode_weight_bytes */
    double router_bytes_per_token;   /* every sparse layer's router, counted in decode_weight_bytes */
} model_cost;

/* Bytes of a float32 KV element, the figure before the shard's KV dtype is known. */
#define MODEL_COST_KV_BYTES 4.0

/* 0 on success; -1 when the dtype has no known size (message in err). on_load_bits > 0: the
 * float checkpoint is quantized on load (exo_shard_options.quantize_bits) to MLX affine of that
 * many bits with on_load_group weights per scale and bias (of mi->dtype): layers, embedding and
 * lm_head, while MoE experts and routers stay float as the loader leaves them. on_load_bits 0:
 * as stored, mi->quant_bits/quant_group for the matrices and experts, mi->router_quant_* for the
 * routers. Every quantized byte read counts: packed codes, scales, biases. */
int model_cost_from_info(const exo_model_info *mi, uint32_t on_load_bits, uint32_t on_load_group, model_cost *out,
                         char *err, size_t cap);

#endif
