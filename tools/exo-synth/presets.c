/* The model shapes exo-synth can write. Dimensions follow the published configs, so that a
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
};

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
