/* Bytes and flops per token of a llama-family model (llama, mistral, qwen, phi3, gemma share the
 * layer shape; qwen3_moe and mixtral replace the MLP of their sparse layers by a router and E
 * experts of which k run; biases and q/k norms are a few kB and left out). */
#include "model_cost.h"

#include <stdio.h>
#include <string.h>

static double dtype_bytes(exo_dtype dtype) {
    switch (dtype) {
    case EXO_DTYPE_F32: return 4.0;
    case EXO_DTYPE_F16:
    case EXO_DTYPE_BF16: return 2.0;
    case EXO_DTYPE_Q8_0: return 34.0 / 32.0; /* f16 scale + 32 int8 per block */
    default: return 0.0;
    }
}

/* MLX affine: bits / 8 of packed codes per weight, plus a scale and a bias (of the checkpoint's
 * float dtype, b bytes) per group; bits 0: float. */
static double stored_bytes(uint32_t bits, uint32_t group, double b) {
    return bits ? bits / 8.0 + 2.0 * b / group : b;
}

int model_cost_from_info(const exo_model_info *mi, uint32_t on_load_bits, uint32_t on_load_group, model_cost *out,
                         char *err, size_t cap) {
    double b = dtype_bytes(mi->dtype);
    if (b == 0.0) {
        snprintf(err, cap, "%s: weight dtype %d has no known size", mi->path, (int)mi->dtype);
        return -1;
    }
    memset(out, 0, sizeof *out);
    uint32_t bits = on_load_bits ? on_load_bits : mi->quant_bits;
    uint32_t group = on_load_bits ? on_load_group : mi->quant_group;
    double m = stored_bytes(bits, group, b);
    uint64_t h = mi->hidden_size, q = (uint64_t)mi->n_heads * mi->head_dim;
    uint64_t kv = (uint64_t)mi->n_kv_heads * mi->head_dim, f = mi->intermediate_size;
    uint64_t attention = h * q + 2 * h * kv + q * h, dense_mlp = 3 * h * f;
    uint32_t moe_layers = mi->n_experts ? mi->n_moe_layers : 0;
    uint64_t dense_layers = mi->n_layers - moe_layers;
    /* One expert's gate, up and down; the router is [E, hidden]. */
    uint64_t expert = 3 * h * mi->moe_intermediate_size, router = (uint64_t)mi->n_experts * h;
    out->bytes_per_weight = m;
    out->quant_bits = bits;
    out->quant_group = bits ? group : 0;
    uint64_t dense_matrices = attention * mi->n_layers + dense_mlp * dense_layers; /* stored at m */
    out->norm_params = (2ull * mi->n_layers + 1) * h;
    out->head_params = (uint64_t)mi->vocab_size * h;
    double moe_bytes = 0;
    uint64_t active_params = 0, all_expert_params = 0;
    if (moe_layers) {
        out->n_experts = mi->n_experts;
        out->n_experts_per_tok = mi->n_experts_per_tok;
        out->n_moe_layers = moe_layers;
        /* Quantized on load: experts and routers stay float; as stored: the experts at the
         * checkpoint's default, the router at its own override. */
        out->expert_bytes_per_weight = on_load_bits ? b : m;
        out->router_bytes_per_weight = on_load_bits ? b : stored_bytes(mi->router_quant_bits, mi->router_quant_group, b);
        all_expert_params = expert * mi->n_experts * moe_layers;
        active_params = expert * mi->n_experts_per_tok * moe_layers;
        out->expert_bytes_total = (double)all_expert_params * out->expert_bytes_per_weight;
        out->expert_bytes_per_token = (double)active_params * out->expert_bytes_per_weight;
        out->router_bytes_per_token = (double)(router * moe_layers) * out->router_bytes_per_weight;
        moe_bytes = out->expert_bytes_per_token + out->router_bytes_per_token;
    }
    out->layer_matrix_params = dense_matrices + active_params + router * moe_layers;
    out->total_params = dense_matrices + all_expert_params + router * moe_layers + out->norm_params +
                        out->head_params + (mi->tie_word_embeddings ? 0 : out->head_params);
    out->decode_weight_bytes =
        (double)(dense_matrices + h + out->head_params) * m + moe_bytes + (double)out->norm_params * b;
    out->kv_bytes_per_position = 2.0 * mi->n_layers * (double)kv * MODEL_COST_KV_BYTES;
    out->layer_flops_per_token = 2.0 * (double)out->layer_matrix_params;
    return 0;
}
