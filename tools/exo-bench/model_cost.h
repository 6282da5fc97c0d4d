/* What one token costs a llama-family model: bytes read and floating-point work, from the
 * dimensions exo_model_info gives. The basis of the decode bound (bandwidth / bytes per token)
 * and the prefill bound (matrix throughput / flops per token). */
#ifndef EXO_BENCH_MODEL_COST_H
#define EXO_BENCH_MODEL_COST_H

#include <stdint.h>

#include "exo.h"

typedef struct model_cost {
    double bytes_per_weight;       /* of a matrix weight: the checkpoint's dtype (Q8_0: 34 bytes per
                                    * 32), or MLX affine: bits / 8 + 2 float scale/bias per group */
    uint32_t quant_bits, quant_group; /* MLX affine matrices (0: float) */
    uint64_t layer_matrix_params;  /* q, k, v, o, gate, up, down of every layer */
    uint64_t norm_params;          /* two RMSNorms per layer and the final one */
    uint64_t head_params;          /* lm_head: vocab x hidden, tied or not */
    uint64_t total_params;         /* as stored: the embedding once more when untied */
    /* Weights read to decode one token: every layer matrix, every norm, one embedding row, and the
     * whole lm_head (a tied one is the embedding table, read in full for the logits). */
    double decode_weight_bytes;
    /* K and V of one cached position across all layers, as the runtime stores them (float32). */
    double kv_bytes_per_position;
    /* Multiply-adds x 2 of the layer matrices for one token (attention scores excluded). */
    double layer_flops_per_token;
} model_cost;

/* The KV cache holds float32 (core/graph/builder.c); if that changes, this must follow. */
#define MODEL_COST_KV_BYTES 4.0

/* 0 on success; -1 when the dtype has no known size (message in err). quant_bits > 0: the
 * matrices (layers, embedding, lm_head) are MLX affine of that many bits with quant_group
 * weights per scale and bias (of mi->dtype), as a quantized checkpoint (mi->quant_bits) or
 * quantize-on-load stores them; every quantized byte read counts: packed codes, scales, biases. */
int model_cost_from_info(const exo_model_info *mi, uint32_t quant_bits, uint32_t quant_group, model_cost *out,
                         char *err, size_t cap);

#endif
