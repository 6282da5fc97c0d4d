/* Bytes and flops per token of a llama-family model (llama, mistral, qwen, phi3, gemma share the
 * layer shape; biases and q/k norms are a few kB and left out). */
#include "model_cost.h"

#include <stdio.h>

static double dtype_bytes(exo_dtype dtype) {
    switch (dtype) {
    case EXO_DTYPE_F32: return 4.0;
    case EXO_DTYPE_F16:
    case EXO_DTYPE_BF16: return 2.0;
    case EXO_DTYPE_Q8_0: return 34.0 / 32.0; /* f16 scale + 32 int8 per block */
    default: return 0.0;
    }
}

int model_cost_from_info(const exo_model_info *mi, uint32_t quant_bits, uint32_t quant_group, model_cost *out,
                         char *err, size_t cap) {
    double b = dtype_bytes(mi->dtype);
    if (b == 0.0) {
        snprintf(err, cap, "%s: weight dtype %d has no known size", mi->path, (int)mi->dtype);
        return -1;
    }
    /* MLX affine: bits / 8 of packed codes per weight, plus a scale and a bias (of the
     * checkpoint's float dtype) per group; the norms stay float. */
    double m = quant_bits ? quant_bits / 8.0 + 2.0 * b / quant_group : b;
    uint64_t h = mi->hidden_size, q = (uint64_t)mi->n_heads * mi->head_dim;
    uint64_t kv = (uint64_t)mi->n_kv_heads * mi->head_dim, f = mi->intermediate_size;
    uint64_t per_layer = h * q + 2 * h * kv + q * h + 3 * h * f;
    out->bytes_per_weight = m;
    out->quant_bits = quant_bits;
    out->quant_group = quant_bits ? quant_group : 0;
    out->layer_matrix_params = per_layer * mi->n_layers;
    out->norm_params = (2ull * mi->n_layers + 1) * h;
    out->head_params = (uint64_t)mi->vocab_size * h;
    out->total_params = out->layer_matrix_params + out->norm_params + out->head_params +
                        (mi->tie_word_embeddings ? 0 : out->head_params);
    out->decode_weight_bytes =
        (double)(out->layer_matrix_params + h + out->head_params) * m + (double)out->norm_params * b;
    out->kv_bytes_per_position = 2.0 * mi->n_layers * (double)kv * MODEL_COST_KV_BYTES;
    out->layer_flops_per_token = 2.0 * (double)out->layer_matrix_params;
    return 0;
}
