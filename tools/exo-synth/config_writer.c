/* config.json in the classic llama dialect (top-level rope_theta, rope_scaling), as
 * transformers 4.4x writes it for Llama 3.2, or in the dialect of Qwen3-30B-A3B's own config.json
 * (qwen3_moe: num_experts, decoder_sparse_step, mlp_only_layers), and generation_config.json. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

int synth_write_text_file(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "exo-synth: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF ? 0 : -1;
    if (fclose(f) != 0) rc = -1;
    if (rc) fprintf(stderr, "exo-synth: %s: write failed: %s\n", path, strerror(errno));
    return rc;
}

static int write_json(const char *dir, const char *name, cJSON *root) {
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "exo-synth: %s/%s: out of memory\n", dir, name);
        return -1;
    }
    int rc = synth_write_text_file(dir, name, text);
    free(text);
    return rc;
}

/* mlx-lm's block: one default for every quantized module, and the routers' overrides (keyed by
 * module path) that qwen3_moe's quant_predicate asks for. */
static void add_quantization(cJSON *c, const char *key, const synth_preset *p, synth_quant q) {
    cJSON *qb = cJSON_AddObjectToObject(c, key);
    cJSON_AddNumberToObject(qb, "group_size", q.group);
    cJSON_AddNumberToObject(qb, "bits", q.bits);
    char module[64];
    for (uint32_t l = 0; l < p->n_layers; l++) {
        if (!synth_layer_is_moe(p, l)) continue;
        snprintf(module, sizeof module, "model.layers.%u.mlp.gate", l);
        cJSON *o = cJSON_AddObjectToObject(qb, module);
        cJSON_AddNumberToObject(o, "group_size", SYNTH_ROUTER_QUANT.group);
        cJSON_AddNumberToObject(o, "bits", SYNTH_ROUTER_QUANT.bits);
    }
}

/* The fields only qwen3_moe has. */
static void add_moe(cJSON *c, const synth_preset *p) {
    cJSON_AddNumberToObject(c, "decoder_sparse_step", 1);
    cJSON_AddNumberToObject(c, "max_window_layers", p->n_layers);
    cJSON *dense = cJSON_AddArrayToObject(c, "mlp_only_layers");
    for (uint32_t l = 0; l < p->n_layers; l++)
        if (!synth_layer_is_moe(p, l)) cJSON_AddItemToArray(dense, cJSON_CreateNumber(l));
    cJSON_AddNumberToObject(c, "moe_intermediate_size", p->moe_intermediate_size);
    cJSON_AddBoolToObject(c, "norm_topk_prob", p->norm_topk_prob);
    cJSON_AddNumberToObject(c, "num_experts", p->n_experts);
    cJSON_AddNumberToObject(c, "num_experts_per_tok", p->n_experts_per_tok);
    cJSON_AddBoolToObject(c, "output_router_logits", false);
    cJSON_AddNumberToObject(c, "router_aux_loss_coef", 0.001);
    cJSON_AddNullToObject(c, "sliding_window");
    cJSON_AddBoolToObject(c, "use_sliding_window", false);
}

int synth_write_config(const char *dir, const synth_preset *p, synth_dtype dtype, synth_quant q) {
    bool moe = p->arch == SYNTH_QWEN3_MOE;
    cJSON *c = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(moe ? "Qwen3MoeForCausalLM" : "LlamaForCausalLM"));
    cJSON_AddBoolToObject(c, "attention_bias", false);
    cJSON_AddNumberToObject(c, "attention_dropout", 0.0);
    cJSON_AddNumberToObject(c, "bos_token_id", SYNTH_BOS_ID);
    cJSON_AddNumberToObject(c, "eos_token_id", SYNTH_EOS_ID);
    cJSON_AddNumberToObject(c, "head_dim", p->head_dim);
    cJSON_AddStringToObject(c, "hidden_act", "silu");
    cJSON_AddNumberToObject(c, "hidden_size", p->hidden_size);
    cJSON_AddNumberToObject(c, "initializer_range", 0.02);
    cJSON_AddNumberToObject(c, "intermediate_size", p->intermediate_size);
    cJSON_AddNumberToObject(c, "max_position_embeddings", p->max_position_embeddings);
    if (moe) add_moe(c, p);
    else cJSON_AddBoolToObject(c, "mlp_bias", false);
    cJSON_AddStringToObject(c, "model_type", moe ? "qwen3_moe" : "llama");
    cJSON_AddNumberToObject(c, "num_attention_heads", p->n_heads);
    cJSON_AddNumberToObject(c, "num_hidden_layers", p->n_layers);
    cJSON_AddNumberToObject(c, "num_key_value_heads", p->n_kv_heads);
    if (!moe) cJSON_AddNumberToObject(c, "pretraining_tp", 1);
    if (q.bits) { /* mlx-lm writes the block twice, the second for transformers */
        add_quantization(c, "quantization", p, q);
        add_quantization(c, "quantization_config", p, q);
    }
    cJSON_AddNumberToObject(c, "rms_norm_eps", p->rms_norm_eps);
    if (p->rope_factor > 0) {
        cJSON *s = cJSON_AddObjectToObject(c, "rope_scaling");
        cJSON_AddNumberToObject(s, "factor", p->rope_factor);
        cJSON_AddNumberToObject(s, "high_freq_factor", p->rope_high_freq_factor);
        cJSON_AddNumberToObject(s, "low_freq_factor", p->rope_low_freq_factor);
        cJSON_AddNumberToObject(s, "original_max_position_embeddings", p->rope_original_max_position);
        cJSON_AddStringToObject(s, "rope_type", "llama3");
    } else {
        cJSON_AddNullToObject(c, "rope_scaling");
    }
    cJSON_AddNumberToObject(c, "rope_theta", p->rope_theta);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", p->tie_word_embeddings);
    cJSON_AddStringToObject(c, "torch_dtype", synth_dtype_torch_name(dtype));
    cJSON_AddStringToObject(c, "transformers_version", "4.45.0");
    cJSON_AddBoolToObject(c, "use_cache", true);
    cJSON_AddNumberToObject(c, "vocab_size", p->vocab_size);
    if (write_json(dir, "config.json", c)) return -1;

    cJSON *g = cJSON_CreateObject();
    cJSON_AddNumberToObject(g, "bos_token_id", SYNTH_BOS_ID);
    cJSON_AddNumberToObject(g, "eos_token_id", SYNTH_EOS_ID);
    cJSON_AddBoolToObject(g, "do_sample", true);
    cJSON_AddNumberToObject(g, "temperature", 0.6);
    cJSON_AddNumberToObject(g, "top_p", 0.9);
    cJSON_AddStringToObject(g, "transformers_version", "4.45.0");
    return write_json(dir, "generation_config.json", g);
}
