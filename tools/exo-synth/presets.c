/* The model shapes exo-synth can write (llama and qwen3_moe). Dimensions follow the published configs, so that a
 * benchmark on a synthetic model reads exactly the bytes the real one would. */
#include <stdio.h>
#include <string.h>

#include "synth.h"

static const synth_preset presets[] = {
    {
        .name = "llama-3.2-1b",
        .description = "Llama 3.2 1B: 1.24 B parameters, tied embeddings, llama3 RoPE scaling",
        .hidden_size = 2048, .n_layers = 16, .n_heads = 32, .n_kv_heads = 8, .head_dim = 64,
        .intermediate_size = 8192, .vocab_size = 128256, .max_position_embeddings = 131072,
        .tie_word_embeddings = true, .rms_norm_eps = 1e-5, .rope_theta = 500000.0,
        .rope_factor = 32.0, .rope_low_freq_factor = 1.0, .rope_high_freq_factor = 4.0,
        .rope_original_max_position = 8192,
    },
    {
        .name = "small-110m",
        .description = "a small llama (hidden 768, 12 layers, GQA 12/4, vocab 32000, untied)",
        .hidden_size = 768, .n_layers = 12, .n_heads = 12, .n_kv_heads = 4, .head_dim = 64,
        .intermediate_size = 2048, .vocab_size = 32000, .max_position_embeddings = 2048,
        .tie_word_embeddings = false, .rms_norm_eps = 1e-5, .rope_theta = 10000.0,
    },
    {
        .name = "tiny",
        .description = "a tiny llama for tests (hidden 64, 2 layers, GQA 4/2, vocab 512, untied)",
        .hidden_size = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16,
        .intermediate_size = 128, .vocab_size = 512, .max_position_embeddings = 1024,
        .tie_word_embeddings = false, .rms_norm_eps = 1e-5, .rope_theta = 500000.0,
        .rope_factor = 8.0, .rope_low_freq_factor = 1.0, .rope_high_freq_factor = 4.0,
        .rope_original_max_position = 128,
    },
    {
        /* Qwen3-30B-A3B's config.json with 8 of its 48 layers: 8 layers are 11.2 GB in bf16 and
         * 3.2 GB at MLX 4-bit g64, so both fit this 24 GiB machine with room for a dense comparison
         * model and the neighbours; the experts still dominate the file (9.7 of 11.2 GB), and a
         * token reads 8 of 128 of them per layer, like the full model. */
        .name = "qwen3-30b-a3b-8l",
        .description = "Qwen3-30B-A3B with 8 of its 48 layers (qwen3_moe: 128 experts, top-8, width 768, "
                       "GQA 32/4, head_dim 128, vocab 151936, untied)",
        .arch = SYNTH_QWEN3_MOE,
        .hidden_size = 2048, .n_layers = 8, .n_heads = 32, .n_kv_heads = 4, .head_dim = 128,
        .intermediate_size = 6144, .vocab_size = 151936, .max_position_embeddings = 40960,
        .tie_word_embeddings = false, .rms_norm_eps = 1e-6, .rope_theta = 1000000.0,
        .n_experts = 128, .n_experts_per_tok = 8, .moe_intermediate_size = 768, .norm_topk_prob = true,
    },
    {
        /* The dense model a token of qwen3-30b-a3b-8l reads like: the same attention, embedding
         * and lm_head, and a dense MLP of 6144 = 8 x 768 (Qwen3-30B-A3B's own intermediate_size),
         * i.e. the k active experts' bytes; only the routers (0.5 MB a layer in bf16) are missing.
         * MoE decode against this model shows what the routing and gathering cost. */
        .name = "qwen3-30b-a3b-8l-dense",
        .description = "the dense twin of qwen3-30b-a3b-8l (llama layout, MLP width 6144 = top-8 x 768)",
        .hidden_size = 2048, .n_layers = 8, .n_heads = 32, .n_kv_heads = 4, .head_dim = 128,
        .intermediate_size = 6144, .vocab_size = 151936, .max_position_embeddings = 40960,
        .tie_word_embeddings = false, .rms_norm_eps = 1e-6, .rope_theta = 1000000.0,
    },
    {
        /* Layer 0 dense (mlp_only_layers), so the dense-among-sparse path is exercised too. */
        .name = "tiny-moe",
        .description = "a tiny qwen3_moe for tests (hidden 64, 3 layers of which layer 0 dense, 8 experts, "
                       "top-2, width 64, GQA 4/2, vocab 512)",
        .arch = SYNTH_QWEN3_MOE,
        .hidden_size = 64, .n_layers = 3, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16,
        .intermediate_size = 128, .vocab_size = 512, .max_position_embeddings = 1024,
        .tie_word_embeddings = false, .rms_norm_eps = 1e-6, .rope_theta = 1000000.0,
        .n_experts = 8, .n_experts_per_tok = 2, .moe_intermediate_size = 64, .n_dense_layers = 1,
        .norm_topk_prob = true,
    },
};

bool synth_layer_is_moe(const synth_preset *p, uint32_t l) { return p->n_experts > 0 && l >= p->n_dense_layers; }

const synth_preset *synth_preset_find(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

void synth_preset_list(char *out, size_t cap) {
    size_t used = 0;
    if (cap) out[0] = '\0';
    for (size_t i = 0; i < sizeof presets / sizeof presets[0] && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", presets[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
}
