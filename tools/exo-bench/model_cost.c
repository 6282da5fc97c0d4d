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

/* Bytes per weight of a matrix whose rows are `width` long. MLX affine: bits / 8 of packed codes,
 * plus a scale and a bias (of the checkpoint's float dtype, b bytes) per group. Float (b) when
 * bits is 0, or when the width holds no whole number of groups: mlx-lm's quantize leaves such a
 * module float, and so does quantize-on-load. */
static double stored_bytes(uint32_t bits, uint32_t group, double b, uint64_t width) {
    return bits && group && width % group == 0 ? bits / 8.0 + 2.0 * b / group : b;
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
    uint64_t h = mi->hidden_size, q = (uint64_t)mi->n_heads * mi->head_dim;
    uint64_t kv = (uint64_t)mi->n_kv_heads * mi->head_dim, f = mi->intermediate_size;
    uint64_t fe = mi->moe_intermediate_size;
    /* Per-module overrides other than the routers' are not in exo_model_info: the matrices count
     * at the default, or float where their width holds no whole group (see stored_bytes). */
    double m = stored_bytes(bits, group, b, h);
    uint32_t moe_layers = mi->n_experts ? mi->n_moe_layers : 0;
    uint64_t dense_layers = mi->n_layers - moe_layers;
    /* q, k, v and a dense MLP's gate and up read rows of width hidden; o_proj of q_dim; down of
     * the MLP's width. */
    uint64_t attention = h * q + 2 * h * kv + q * h, dense_mlp = 3 * h * f;
    double attention_bytes = (double)(h * q + 2 * h * kv) * m + (double)(q * h) * stored_bytes(bits, group, b, q);
    double dense_mlp_bytes = (double)(2 * h * f) * m + (double)(h * f) * stored_bytes(bits, group, b, f);
    /* One expert's gate, up and down; the router is [E, hidden]. */
    uint64_t expert = 3 * h * fe, router = (uint64_t)mi->n_experts * h;
    out->bytes_per_weight = m;
    out->quant_bits = bits;
    out->quant_group = bits ? group : 0;
    uint64_t dense_matrices = attention * mi->n_layers + dense_mlp * dense_layers;
    double dense_matrix_bytes = attention_bytes * mi->n_layers + dense_mlp_bytes * (double)dense_layers;
    out->norm_params = (2ull * mi->n_layers + 1) * h;
    out->head_params = (uint64_t)mi->vocab_size * h;
    double moe_bytes = 0;
    uint64_t active_params = 0, all_expert_params = 0;
    if (moe_layers) {
        out->n_experts = mi->n_experts;
        out->n_experts_per_tok = mi->n_experts_per_tok;
        out->n_moe_layers = moe_layers;
        /* Quantized on load: experts and routers stay float; as stored: the experts at the
         * checkpoint's default (down_proj float where moe_intermediate_size holds no whole
         * group), the routers at their own override. */
        double gate_up = on_load_bits ? b : m, down = on_load_bits ? b : stored_bytes(bits, group, b, fe);
        double one_expert = (double)(2 * h * fe) * gate_up + (double)(h * fe) * down;
        out->expert_bytes_per_weight = one_expert / (double)expert;
        out->router_bytes_per_weight =
            on_load_bits ? b : stored_bytes(mi->router_quant_bits, mi->router_quant_group, b, h);
        all_expert_params = expert * mi->n_experts * moe_layers;
        active_params = expert * mi->n_experts_per_tok * moe_layers;
        out->expert_bytes_total = one_expert * mi->n_experts * moe_layers;
        out->expert_bytes_per_token = one_expert * mi->n_experts_per_tok * moe_layers;
        out->router_bytes_per_token = (double)(router * moe_layers) * out->router_bytes_per_weight;
        moe_bytes = out->expert_bytes_per_token + out->router_bytes_per_token;
    }
    out->layer_matrix_params = dense_matrices + active_params + router * moe_layers;
    out->total_params = dense_matrices + all_expert_params + router * moe_layers + out->norm_params +
                        out->head_params + (mi->tie_word_embeddings ? 0 : out->head_params);
    out->decode_weight_bytes = dense_matrix_bytes + (double)(h + out->head_params) * m + moe_bytes +
                               (double)out->norm_params * b;
    out->kv_bytes_per_position = 2.0 * mi->n_layers * (double)kv * MODEL_COST_KV_BYTES;
    out->layer_flops_per_token = 2.0 * (double)out->layer_matrix_params;
    return 0;
}
