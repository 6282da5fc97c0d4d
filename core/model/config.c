/* config.json -> exo_model_config, with Hugging Face transformers' per-model defaults.
 *
 * The defaults below are those of transformers' configuration classes (LlamaConfig,
 * MistralConfig, Qwen2Config, Qwen3Config, Phi3Config, GemmaConfig) and of the modeling code that
 * reads them (which projections carry a bias, which layers slide). A key that is absent takes the
 * class default; JSON null counts as absent except where transformers gives null a meaning
 * (sliding_window: null = no window). RoPE comes in two dialects, both read here:
 *   classic: top-level rope_theta + rope_scaling {type|rope_type, factor, ...}
 *   newer:   rope_parameters {rope_theta, rope_type, partial_rotary_factor, factor, ...}
 * and is resolved the way RotaryEmbeddingConfigMixin.standardize_rope_params does. */
#include "model/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "model/json_file.h"

/* Sizes past these are corrupt files, not models (the largest real ones are far below). */
#define CFG_MAX_HIDDEN (1u << 20)
#define CFG_MAX_INTERMEDIATE (1u << 22)
#define CFG_MAX_LAYERS 4096u
#define CFG_MAX_HEADS 16384u
#define CFG_MAX_HEAD_DIM 16384u
#define CFG_MAX_VOCAB (1u << 24)
#define CFG_MAX_POSITIONS (1u << 30)

/* Per model type: what transformers' config class fills in when config.json is silent. */
typedef struct cfg_arch_info {
    const char *model_type;
    const char *architecture; /* architectures[0], the fallback when model_type is missing */
    exo_arch arch;
    uint32_t max_position_embeddings;
    double rms_norm_eps;
    bool tie_word_embeddings;
    uint32_t n_kv_heads;       /* when num_key_value_heads is absent; 0 = n_heads */
    uint32_t head_dim;         /* when head_dim is absent; 0 = hidden_size / n_heads */
} cfg_arch_info;

static const cfg_arch_info cfg_archs[] = {
    /* LlamaConfig: num_key_value_heads=None -> heads, head_dim=None -> hidden // heads */
    {"llama", "LlamaForCausalLM", EXO_ARCH_LLAMA, 2048, 1e-6, false, 0, 0},
    /* MistralConfig: num_key_value_heads=8, max_position_embeddings=4096*32 */
    {"mistral", "MistralForCausalLM", EXO_ARCH_MISTRAL, 4096 * 32, 1e-6, false, 8, 0},
    /* Qwen2Config: num_key_value_heads=32 */
    {"qwen2", "Qwen2ForCausalLM", EXO_ARCH_QWEN2, 32768, 1e-6, false, 32, 0},
    /* Qwen3Config: num_key_value_heads=32, head_dim=128 */
    {"qwen3", "Qwen3ForCausalLM", EXO_ARCH_QWEN3, 32768, 1e-6, false, 32, 128},
    /* Phi3Config: rms_norm_eps=1e-5, num_key_value_heads=None -> heads */
    {"phi3", "Phi3ForCausalLM", EXO_ARCH_PHI3, 4096, 1e-5, false, 0, 0},
    /* GemmaConfig: num_key_value_heads=16, head_dim=256, tie_word_embeddings=True */
    {"gemma", "GemmaForCausalLM", EXO_ARCH_GEMMA, 8192, 1e-6, true, 16, 256},
    /* Qwen3MoeConfig: num_key_value_heads=4, head_dim=None -> hidden // heads */
    {"qwen3_moe", "Qwen3MoeForCausalLM", EXO_ARCH_QWEN3_MOE, 32768, 1e-6, false, 4, 0},
    /* MixtralConfig: num_key_value_heads=8, rms_norm_eps=1e-5, max_position_embeddings=4096*32 */
    {"mixtral", "MixtralForCausalLM", EXO_ARCH_MIXTRAL, 4096 * 32, 1e-5, false, 8, 0},
    /* GptOssConfig: num_key_value_heads=8, head_dim=64, rms_norm_eps=1e-5, max_position_embeddings=131072 */
    {"gpt_oss", "GptOssForCausalLM", EXO_ARCH_GPT_OSS, 131072, 1e-5, false, 8, 64},
    /* Glm4MoeConfig: num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-5, max_position_embeddings=131072 */
    {"glm4_moe", "Glm4MoeForCausalLM", EXO_ARCH_GLM4_MOE, 131072, 1e-5, false, 8, 128},
};

/* Every transformers config class here defaults rope_theta to 10000 (default_theta). */
#define CFG_DEFAULT_ROPE_THETA 10000.0
/* Qwen2/Qwen3: sliding_window=4096, max_window_layers=28; Mistral: sliding_window=4096. */
#define CFG_DEFAULT_SLIDING_WINDOW 4096u
#define CFG_DEFAULT_MAX_WINDOW_LAYERS 28u
/* Phi3Config.original_max_position_embeddings. */
#define CFG_PHI3_ORIGINAL_MAX_POSITIONS 4096u

typedef struct cfg_reader {
    const char *path;
    const cJSON *root;
} cfg_reader;

/* ------------------------------------------------------------------ field helpers */

/* The item, or NULL when the key is absent or null. */
static const cJSON *cfg_get(const cJSON *obj, const char *key) {
    const cJSON *item = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return (item && !cJSON_IsNull(item)) ? item : NULL;
}

static exo_status cfg_uint(const cfg_reader *r, const cJSON *obj, const char *prefix,
                           const char *key, bool required, uint32_t dflt, uint32_t max,
                           uint32_t *out) {
    const cJSON *item = cfg_get(obj, key);
    if (!item) {
        if (required)
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' is missing", r->path, prefix, key);
        *out = dflt;
        return EXO_OK;
    }
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(v) || v != floor(v) || v < 1)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' must be a positive integer", r->path,
                          prefix, key);
    if (v > max)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' = %.0f is absurd (limit %u)", r->path,
                          prefix, key, v, max);
    *out = (uint32_t)v;
    return EXO_OK;
}

/* A finite number; `*present` tells whether the key was there. */
static exo_status cfg_number(const cfg_reader *r, const cJSON *obj, const char *prefix,
                             const char *key, double dflt, double *out, bool *present) {
    const cJSON *item = cfg_get(obj, key);
    if (present) *present = item != NULL;
    if (!item) {
        *out = dflt;
        return EXO_OK;
    }
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' must be a number", r->path, prefix, key);
    *out = item->valuedouble;
    return EXO_OK;
}

static exo_status cfg_positive(const cfg_reader *r, const cJSON *obj, const char *prefix,
                               const char *key, double dflt, double *out, bool *present) {
    bool here;
    exo_status st = cfg_number(r, obj, prefix, key, dflt, out, &here);
    if (present) *present = here;
    if (st) return st;
    if (here && !(*out > 0)) /* the default stands in for "absent" and is not checked */
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' must be positive (got %g)", r->path,
                          prefix, key, *out);
    return EXO_OK;
}

static exo_status cfg_bool(const cfg_reader *r, const cJSON *obj, const char *prefix,
                           const char *key, bool dflt, bool *out) {
    const cJSON *item = cfg_get(obj, key);
    if (!item) {
        *out = dflt;
        return EXO_OK;
    }
    if (!cJSON_IsBool(item))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' must be true or false", r->path,
                          prefix, key);
    *out = cJSON_IsTrue(item);
    return EXO_OK;
}

/* A token id: a non-negative integer, or -1 when absent or null. */
static exo_status cfg_token(const cfg_reader *r, const char *key, const cJSON *item, int32_t *out) {
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(v) || v != floor(v) || v < 0 || v > INT32_MAX)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s' must be a non-negative integer token id",
                          r->path, key);
    *out = (int32_t)v;
    return EXO_OK;
}

static exo_status cfg_optional_token(const cfg_reader *r, const char *key, int32_t *out) {
    const cJSON *item = cfg_get(r->root, key);
    *out = -1;
    return item ? cfg_token(r, key, item, out) : EXO_OK;
}

/* ------------------------------------------------------------------ sections */

static exo_status cfg_arch(const cfg_reader *r, exo_model_config *c, const cfg_arch_info **info) {
    const cJSON *mt = cfg_get(r->root, "model_type");
    if (mt && !cJSON_IsString(mt))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'model_type' must be a string", r->path);
    const size_t n = sizeof cfg_archs / sizeof cfg_archs[0];
    if (mt) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(mt->valuestring, cfg_archs[i].model_type) == 0) {
                *info = &cfg_archs[i];
                snprintf(c->model_type, sizeof c->model_type, "%s", mt->valuestring);
                c->arch = cfg_archs[i].arch;
                return EXO_OK;
            }
        }
        return exo_errorf(EXO_ERR_UNSUPPORTED,
                          "%s: field 'model_type': architecture '%.64s' is not supported (llama, "
                          "mistral, qwen2, qwen3, phi3, gemma, qwen3_moe, mixtral, gpt_oss, glm4_moe are)", r->path, mt->valuestring);
    }
    /* No model_type: the first class name in "architectures" is the hint. */
    const cJSON *archs = cfg_get(r->root, "architectures");
    const cJSON *first = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(first))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'model_type' is missing (and no "
                          "'architectures' to infer it from)", r->path);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(first->valuestring, cfg_archs[i].architecture) == 0) {
            *info = &cfg_archs[i];
            snprintf(c->model_type, sizeof c->model_type, "%s", cfg_archs[i].model_type);
            c->arch = cfg_archs[i].arch;
            return EXO_OK;
        }
    }
    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field 'architectures': '%.64s' is not supported "
                      "(and 'model_type' is missing)", r->path, first->valuestring);
}

static exo_status cfg_sizes(const cfg_reader *r, const cfg_arch_info *info, exo_model_config *c) {
    const cJSON *o = r->root;
    exo_status st;
    if ((st = cfg_uint(r, o, "", "hidden_size", true, 0, CFG_MAX_HIDDEN, &c->hidden_size)) ||
        (st = cfg_uint(r, o, "", "intermediate_size", true, 0, CFG_MAX_INTERMEDIATE,
                       &c->intermediate_size)) ||
        (st = cfg_uint(r, o, "", "num_hidden_layers", true, 0, CFG_MAX_LAYERS, &c->n_layers)) ||
        (st = cfg_uint(r, o, "", "num_attention_heads", true, 0, CFG_MAX_HEADS, &c->n_heads)) ||
        (st = cfg_uint(r, o, "", "vocab_size", true, 0, CFG_MAX_VOCAB, &c->vocab_size)) ||
        (st = cfg_uint(r, o, "", "max_position_embeddings", false, info->max_position_embeddings,
                       CFG_MAX_POSITIONS, &c->max_position_embeddings)))
        return st;
    uint32_t kv_default = info->n_kv_heads ? info->n_kv_heads : c->n_heads;
    /* null means "same as heads" in every config class (their __post_init__). */
    if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "num_key_value_heads")))
        kv_default = c->n_heads;
    if ((st = cfg_uint(r, o, "", "num_key_value_heads", false, kv_default, CFG_MAX_HEADS,
                       &c->n_kv_heads)))
        return st;
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'num_key_value_heads' = %u does not divide "
                          "num_attention_heads = %u", r->path, c->n_kv_heads, c->n_heads);

    bool derived_head_dim = !cfg_get(o, "head_dim") && info->head_dim == 0;
    uint32_t head_dim_default = info->head_dim ? info->head_dim : c->hidden_size / c->n_heads;
    /* LlamaConfig.validate_architecture insists on it even with an explicit head_dim. */
    if ((derived_head_dim || c->arch == EXO_ARCH_LLAMA) && c->hidden_size % c->n_heads != 0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'hidden_size' = %u is not a multiple of "
                          "num_attention_heads = %u", r->path, c->hidden_size, c->n_heads);
    if (head_dim_default == 0) head_dim_default = 1; /* hidden < heads: rejected just below */
    if ((st = cfg_uint(r, o, "", "head_dim", false, head_dim_default, CFG_MAX_HEAD_DIM,
                       &c->head_dim)))
        return st;
    if (c->head_dim % 2 != 0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'head_dim' = %u must be even (RoPE rotates "
                          "pairs)", r->path, c->head_dim);
    double eps;
    if ((st = cfg_positive(r, o, "", "rms_norm_eps", info->rms_norm_eps, &eps, NULL))) return st;
    c->rms_norm_eps = (float)eps;
    c->attn_scale = (float)(1.0 / sqrt((double)c->head_dim));
    return cfg_bool(r, o, "", "tie_word_embeddings", info->tie_word_embeddings,
                    &c->tie_word_embeddings);
}

/* Which projections carry biases, norms and activation: the modeling code's fixed choices. */
static exo_status cfg_layers(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    exo_status st;
    bool attention_bias = false, mlp_bias = false;
    switch (c->arch) {
    case EXO_ARCH_LLAMA: /* attention_bias: q, k, v and o; mlp_bias: gate, up, down */
        if ((st = cfg_bool(r, o, "", "attention_bias", false, &attention_bias)) ||
            (st = cfg_bool(r, o, "", "mlp_bias", false, &mlp_bias)))
            return st;
        c->attention_bias = c->attention_out_bias = attention_bias;
        c->mlp_bias = mlp_bias;
        break;
    case EXO_ARCH_QWEN2: /* q, k, v always biased, o never (Qwen2Attention) */
        c->attention_bias = true;
        c->attention_out_bias = false;
        break;
    case EXO_ARCH_QWEN3:
    case EXO_ARCH_QWEN3_MOE:
    case EXO_ARCH_GEMMA: /* attention_bias covers q, k, v and o */
        if ((st = cfg_bool(r, o, "", "attention_bias", false, &attention_bias))) return st;
        c->attention_bias = c->attention_out_bias = attention_bias;
        break;
    case EXO_ARCH_GPT_OSS: /* attention_bias (default true) covers q, k, v and o */
        if ((st = cfg_bool(r, o, "", "attention_bias", true, &attention_bias))) return st;
        c->attention_bias = c->attention_out_bias = attention_bias;
        break;
    case EXO_ARCH_GLM4_MOE: /* q, k, v only: Glm4MoeAttention's o_proj never has one */
        if ((st = cfg_bool(r, o, "", "attention_bias", false, &attention_bias))) return st;
        c->attention_bias = attention_bias;
        c->attention_out_bias = false;
        break;
    case EXO_ARCH_MISTRAL:
    case EXO_ARCH_MIXTRAL:
    case EXO_ARCH_PHI3: /* no biases anywhere */
        break;
    }
    c->qk_norm = c->arch == EXO_ARCH_QWEN3 || c->arch == EXO_ARCH_QWEN3_MOE;
    if (c->arch == EXO_ARCH_GLM4_MOE && (st = cfg_bool(r, o, "", "use_qk_norm", false, &c->qk_norm))) return st;
    c->norm_add_one = c->arch == EXO_ARCH_GEMMA;
    c->embedding_scale = c->arch == EXO_ARCH_GEMMA ? (float)sqrt((double)c->hidden_size) : 1.0f;

    /* Gemma names its activation hidden_activation (hidden_act is the older key); its checkpoints
     * say "gelu" but were trained with the tanh approximation, which transformers substitutes. */
    const char *key = "hidden_act";
    const cJSON *act = cfg_get(o, key);
    if (c->arch == EXO_ARCH_GEMMA && cfg_get(o, "hidden_activation")) {
        key = "hidden_activation";
        act = cfg_get(o, key);
    }
    const char *name = c->arch == EXO_ARCH_GEMMA ? "gelu_pytorch_tanh" : "silu";
    if (act) {
        if (!cJSON_IsString(act))
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s' must be a string", r->path, key);
        name = act->valuestring;
    }
    if (strcmp(name, "silu") == 0 || strcmp(name, "swish") == 0)
        c->activation = EXO_ACT_SILU;
    else if (strcmp(name, "gelu_pytorch_tanh") == 0 || strcmp(name, "gelu_new") == 0 ||
             (c->arch == EXO_ARCH_GEMMA && strcmp(name, "gelu") == 0))
        c->activation = EXO_ACT_GELU_TANH;
    else
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s': activation '%.64s' is not "
                          "supported (silu, gelu_pytorch_tanh are)", r->path, key, name);
    return EXO_OK;
}

/* GptOssConfig: sliding_window=128 (null: none); layer_types default to sliding for even layers and
 * full for odd ones; each layer slides or not on its own (GptOssAttention). */
static exo_status cfg_gpt_oss_layer_types(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(o, "sliding_window");
    uint32_t window = 128;
    exo_status st;
    if (sw && cJSON_IsNull(sw)) window = 0;
    else if (sw && (st = cfg_uint(r, o, "", "sliding_window", true, 0, UINT32_MAX, &window))) return st;
    const cJSON *types = cfg_get(o, "layer_types");
    if (types && (!cJSON_IsArray(types) || (uint32_t)cJSON_GetArraySize(types) != c->n_layers))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'layer_types' must list one type per layer (%u)", r->path,
                          c->n_layers);
    memset(c->full_attention, 0, sizeof c->full_attention);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        bool full = (l + 1) % 2 == 0;
        if (types) {
            const cJSON *t = cJSON_GetArrayItem(types, (int)l);
            bool sliding = cJSON_IsString(t) && strcmp(t->valuestring, "sliding_attention") == 0;
            full = cJSON_IsString(t) && strcmp(t->valuestring, "full_attention") == 0;
            if (!sliding && !full)
                return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field 'layer_types'[%u]: unknown layer type (sliding_attention "
                                  "and full_attention are)", r->path, l);
        }
        if (full) c->full_attention[l / 64] |= 1ull << (l % 64);
    }
    c->sliding_window = window;
    c->sliding_window_first_layer = 0;
    return EXO_OK;
}

static exo_status cfg_sliding_window(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(o, "sliding_window");
    uint32_t window = 0;
    exo_status st;
    switch (c->arch) {
    case EXO_ARCH_MISTRAL: /* absent: 4096; null: none */
    case EXO_ARCH_MIXTRAL: /* absent or null: none */
    case EXO_ARCH_PHI3:    /* absent or null: none */
        if (!sw) window = c->arch == EXO_ARCH_MISTRAL ? CFG_DEFAULT_SLIDING_WINDOW : 0;
        else if (!cJSON_IsNull(sw) &&
                 (st = cfg_uint(r, o, "", "sliding_window", true, 0, UINT32_MAX, &window)))
            return st;
        c->sliding_window = window;
        c->sliding_window_first_layer = 0;
        return EXO_OK;
    case EXO_ARCH_QWEN2:
    case EXO_ARCH_QWEN3:
    case EXO_ARCH_QWEN3_MOE: {
        /* The window exists only with use_sliding_window, and then only for layers at or past
         * max_window_layers (or those layer_types marks "sliding_attention"). */
        bool use = false;
        if ((st = cfg_bool(r, o, "", "use_sliding_window", false, &use))) return st;
        if (!use) return EXO_OK;
        if (!sw) window = CFG_DEFAULT_SLIDING_WINDOW;
        else if (!cJSON_IsNull(sw) &&
                 (st = cfg_uint(r, o, "", "sliding_window", true, 0, UINT32_MAX, &window)))
            return st;
        if (window == 0) return EXO_OK;
        uint32_t first;
        const cJSON *types = cfg_get(o, "layer_types");
        if (types) {
            if (!cJSON_IsArray(types) || (uint32_t)cJSON_GetArraySize(types) != c->n_layers)
                return exo_errorf(EXO_ERR_FORMAT, "%s: field 'layer_types' must list one type per "
                                  "layer (%u)", r->path, c->n_layers);
            first = c->n_layers;
            uint32_t i = 0;
            const cJSON *t;
            cJSON_ArrayForEach(t, types) {
                bool sliding = cJSON_IsString(t) && strcmp(t->valuestring, "sliding_attention") == 0;
                bool full = cJSON_IsString(t) && strcmp(t->valuestring, "full_attention") == 0;
                if (!sliding && !full)
                    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field 'layer_types'[%u]: unknown "
                                      "layer type", r->path, i);
                if (sliding && first == c->n_layers) first = i;
                if (full && first != c->n_layers)
                    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field 'layer_types': full "
                                      "attention after sliding layers is not supported", r->path);
                i++;
            }
        } else if ((st = cfg_uint(r, o, "", "max_window_layers", false,
                                  CFG_DEFAULT_MAX_WINDOW_LAYERS, CFG_MAX_LAYERS, &first))) {
            return st;
        }
        if (first >= c->n_layers) return EXO_OK; /* no layer slides */
        c->sliding_window = window;
        c->sliding_window_first_layer = first;
        return EXO_OK;
    }
    case EXO_ARCH_GPT_OSS:
        return cfg_gpt_oss_layer_types(r, c);
    case EXO_ARCH_LLAMA:
    case EXO_ARCH_GEMMA:
    case EXO_ARCH_GLM4_MOE: /* Glm4MoeAttention has no window */
        return EXO_OK;
    }
    return EXO_OK;
}

/* RoPE, resolved like RotaryEmbeddingConfigMixin: rope_scaling (classic) wins over
 * rope_parameters when non-empty; rope_theta inside the dict wins over the top-level one. */
static exo_status cfg_rope(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    const cJSON *scaling = cfg_get(o, "rope_scaling");
    const cJSON *params = cfg_get(o, "rope_parameters");
    if (scaling && !cJSON_IsObject(scaling))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'rope_scaling' must be an object", r->path);
    if (params && !cJSON_IsObject(params))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'rope_parameters' must be an object", r->path);
    const cJSON *d = NULL;
    const char *prefix = "";
    if (scaling && cJSON_GetArraySize(scaling) > 0) { d = scaling; prefix = "rope_scaling."; }
    else if (params) { d = params; prefix = "rope_parameters."; }
    const cJSON *e;
    cJSON_ArrayForEach(e, d) {
        if (cJSON_IsObject(e))
            return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s%s': per-layer-type RoPE "
                              "parameters are not supported", r->path, prefix, e->string);
    }

    exo_status st;
    double theta;
    /* MixtralConfig 1e6, GptOssConfig 150000 */
    double theta_default = c->arch == EXO_ARCH_MIXTRAL ? 1e6 : c->arch == EXO_ARCH_GPT_OSS ? 150000.0
                                                                                            : CFG_DEFAULT_ROPE_THETA;
    if ((st = cfg_positive(r, o, "", "rope_theta", theta_default, &theta, NULL)) ||
        (st = cfg_positive(r, d, prefix, "rope_theta", theta, &theta, NULL)))
        return st;
    c->rope_theta = theta;

    /* standardize_rope_params copies a top-level partial_rotary_factor over the dict's. */
    double prf;
    bool top_prf;
    double prf_default = c->arch == EXO_ARCH_GLM4_MOE ? 0.5 : 1.0; /* Glm4MoeConfig.partial_rotary_factor */
    if ((st = cfg_positive(r, d, prefix, "partial_rotary_factor", prf_default, &prf, NULL)) ||
        (st = cfg_positive(r, o, "", "partial_rotary_factor", prf, &prf, &top_prf)))
        return st;
    if (prf > 1.0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%spartial_rotary_factor' = %g must be in "
                          "(0, 1]", r->path, top_prf ? "" : prefix, prf);
    c->partial_rotary_factor = (float)prf;
    /* transformers rotates int(head_dim * factor) dims; an odd or zero count cannot be paired. */
    uint32_t n_rot = (uint32_t)floor(c->head_dim * (double)c->partial_rotary_factor + 1e-3);
    if (n_rot == 0 || n_rot % 2 != 0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%spartial_rotary_factor' = %g gives %u "
                          "rotary dims of head_dim %u; it must be a positive even number", r->path,
                          top_prf ? "" : prefix, prf, n_rot, c->head_dim);

    const char *type = "default";
    const char *type_key = "rope_type";
    const cJSON *t = cfg_get(d, "rope_type");
    if (!t) { t = cfg_get(d, "type"); type_key = "type"; }
    if (t) {
        if (!cJSON_IsString(t))
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' must be a string", r->path, prefix,
                              type_key);
        type = t->valuestring;
    }
    c->rope_scaling = EXO_ROPE_SCALING_NONE;
    c->rope_factor = 1.0;
    c->yarn_truncate = true;
    if (c->arch == EXO_ARCH_GPT_OSS && !d) {
        /* GptOssConfig.__post_init__ without rope parameters: yarn, factor 32, beta_fast 32,
         * beta_slow 1, truncate false, original_max_position_embeddings 4096. */
        c->rope_scaling = EXO_ROPE_SCALING_YARN;
        c->rope_factor = 32.0;
        c->rope_original_max_position = 4096;
        c->yarn_beta_fast = 32.0;
        c->yarn_beta_slow = 1.0;
        c->yarn_attention_factor = 0.0;
        c->yarn_truncate = false;
        return EXO_OK;
    }
    if (strcmp(type, "default") == 0) return EXO_OK;
    if (c->arch == EXO_ARCH_PHI3) /* Phi3Config accepts only default and longrope */
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s%s': rope type '%.64s' is not "
                          "supported for phi3", r->path, prefix, type_key, type);

    /* original_max_position_embeddings: a top-level value (Phi3 style) wins, then the dict's,
     * then max_position_embeddings. */
    uint32_t orig;
    if ((st = cfg_uint(r, d, prefix, "original_max_position_embeddings", false,
                       c->max_position_embeddings, CFG_MAX_POSITIONS, &orig)) ||
        (st = cfg_uint(r, o, "", "original_max_position_embeddings", false, orig,
                       CFG_MAX_POSITIONS, &orig)))
        return st;

    bool has_factor;
    double factor;
    if ((st = cfg_positive(r, d, prefix, "factor", 1.0, &factor, &has_factor))) return st;

    if (strcmp(type, "linear") == 0 || strcmp(type, "dynamic") == 0) {
        if (!has_factor)
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%sfactor' is missing (rope type %s)",
                              r->path, prefix, type);
        c->rope_scaling = type[0] == 'l' ? EXO_ROPE_SCALING_LINEAR : EXO_ROPE_SCALING_DYNAMIC;
        c->rope_factor = factor;
        return EXO_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        double low, high;
        bool has_low, has_high;
        if ((st = cfg_positive(r, d, prefix, "low_freq_factor", 0, &low, &has_low)) ||
            (st = cfg_positive(r, d, prefix, "high_freq_factor", 0, &high, &has_high)))
            return st;
        if (!has_factor || !has_low || !has_high)
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s' is missing (rope type llama3)",
                              r->path, prefix,
                              !has_factor ? "factor" : !has_low ? "low_freq_factor"
                                                                : "high_freq_factor");
        if (high <= low)
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%shigh_freq_factor' = %g must exceed "
                              "low_freq_factor = %g", r->path, prefix, high, low);
        c->rope_scaling = EXO_ROPE_SCALING_LLAMA3;
        c->rope_factor = factor;
        c->rope_low_freq_factor = low;
        c->rope_high_freq_factor = high;
        c->rope_original_max_position = orig;
        return EXO_OK;
    }
    if (strcmp(type, "yarn") == 0) {
        if (!has_factor) factor = (double)c->max_position_embeddings / orig;
        double attention, mscale, mscale_all_dim, beta_fast, beta_slow;
        bool has_attention;
        if ((st = cfg_positive(r, d, prefix, "attention_factor", 0, &attention, &has_attention)) ||
            (st = cfg_number(r, d, prefix, "mscale", 0, &mscale, NULL)) ||
            (st = cfg_number(r, d, prefix, "mscale_all_dim", 0, &mscale_all_dim, NULL)) ||
            (st = cfg_number(r, d, prefix, "beta_fast", 0, &beta_fast, NULL)) ||
            (st = cfg_number(r, d, prefix, "beta_slow", 0, &beta_slow, NULL)) ||
            (st = cfg_bool(r, d, prefix, "truncate", true, &c->yarn_truncate)))
            return st;
        /* `beta_fast or 32`, `beta_slow or 1`: zero falls back like absent. */
        if (beta_fast == 0) beta_fast = 32;
        if (beta_slow == 0) beta_slow = 1;
        if (beta_fast <= 0 || beta_slow <= 0)
            return exo_errorf(EXO_ERR_FORMAT, "%s: field '%sbeta_fast'/'beta_slow' must be "
                              "positive", r->path, prefix);
        /* DeepSeek-style mscale pair: the ratio of the two yarn mscales (else derived later). */
        if (!has_attention && mscale != 0 && mscale_all_dim != 0 && factor > 1)
            attention = (0.1 * mscale * log(factor) + 1.0) / (0.1 * mscale_all_dim * log(factor) + 1.0);
        else if (!has_attention && mscale != 0 && mscale_all_dim != 0)
            attention = 1.0;
        c->rope_scaling = EXO_ROPE_SCALING_YARN;
        c->rope_factor = factor;
        c->rope_original_max_position = orig;
        c->yarn_beta_fast = beta_fast;
        c->yarn_beta_slow = beta_slow;
        c->yarn_attention_factor = attention;
        return EXO_OK;
    }
    return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s%s': rope type '%.64s' is not supported "
                      "(default, linear, dynamic, llama3, yarn are)", r->path, prefix, type_key,
                      type);
}

static exo_status cfg_tokens_and_dtype(const cfg_reader *r, exo_model_config *c) {
    exo_status st;
    if ((st = cfg_optional_token(r, "bos_token_id", &c->bos_token_id)) ||
        (st = cfg_optional_token(r, "pad_token_id", &c->pad_token_id)))
        return st;
    const cJSON *eos = cfg_get(r->root, "eos_token_id");
    c->n_eos = 0;
    if (cJSON_IsArray(eos)) {
        int n = cJSON_GetArraySize(eos);
        if (n > EXO_MAX_EOS)
            return exo_errorf(EXO_ERR_FORMAT, "%s: field 'eos_token_id' lists %d ids (at most %d)",
                              r->path, n, EXO_MAX_EOS);
        const cJSON *id;
        cJSON_ArrayForEach(id, eos) {
            if ((st = cfg_token(r, "eos_token_id", id, &c->eos_token_ids[c->n_eos]))) return st;
            c->n_eos++;
        }
    } else if (eos) {
        if ((st = cfg_token(r, "eos_token_id", eos, &c->eos_token_ids[0]))) return st;
        c->n_eos = 1;
    }

    /* "dtype" since transformers 4.56; "torch_dtype" before. */
    const char *key = "dtype";
    const cJSON *dt = cfg_get(r->root, key);
    if (!dt) { key = "torch_dtype"; dt = cfg_get(r->root, key); }
    c->torch_dtype = EXO_DTYPE_F32;
    if (!dt) return EXO_OK;
    if (!cJSON_IsString(dt))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s' must be a string", r->path, key);
    const char *s = dt->valuestring;
    if (strcmp(s, "float32") == 0 || strcmp(s, "float") == 0) c->torch_dtype = EXO_DTYPE_F32;
    else if (strcmp(s, "float16") == 0 || strcmp(s, "half") == 0) c->torch_dtype = EXO_DTYPE_F16;
    else if (strcmp(s, "bfloat16") == 0) c->torch_dtype = EXO_DTYPE_BF16;
    else
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s': dtype '%.64s' is not supported "
                          "(float32, float16, bfloat16 are)", r->path, key, s);
    return EXO_OK;
}

/* ------------------------------------------------------------------ quantization */

static const char *const cfg_quant_modules[EXO_QM_COUNT] = {
    "model.embed_tokens", "lm_head",       "self_attn.q_proj", "self_attn.k_proj",
    "self_attn.v_proj",   "self_attn.o_proj", "self_attn.qkv_proj", "mlp.gate_proj",
    "mlp.up_proj",        "mlp.down_proj", "mlp.gate_up_proj",
    "mlp.gate",           "mlp.switch_mlp.gate_proj", "mlp.switch_mlp.up_proj", "mlp.switch_mlp.down_proj",
    "block_sparse_moe.gate", "block_sparse_moe.switch_mlp.gate_proj", "block_sparse_moe.switch_mlp.up_proj",
    "block_sparse_moe.switch_mlp.down_proj",
    "mlp.router", "mlp.experts.gate_proj", "mlp.experts.up_proj", "mlp.experts.down_proj",
    "mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj", "mlp.shared_experts.down_proj",
};

/* A module path as (layer, module); false for paths the dense builder never reads. */
static bool cfg_quant_module(const char *path, uint32_t *layer, uint8_t *module) {
    for (uint8_t m = 0; m <= EXO_QM_LM_HEAD; m++)
        if (strcmp(path, cfg_quant_modules[m]) == 0) {
            *layer = UINT32_MAX;
            *module = m;
            return true;
        }
    static const char prefix[] = "model.layers.";
    if (strncmp(path, prefix, sizeof prefix - 1) != 0) return false;
    const char *p = path + sizeof prefix - 1;
    if (*p < '0' || *p > '9') return false;
    char *end = NULL;
    unsigned long l = strtoul(p, &end, 10);
    if (*end != '.' || l >= CFG_MAX_LAYERS) return false;
    for (uint8_t m = EXO_QM_Q_PROJ; m < EXO_QM_COUNT; m++)
        if (strcmp(end + 1, cfg_quant_modules[m]) == 0) {
            *layer = (uint32_t)l;
            *module = m;
            return true;
        }
    return false;
}

static bool cfg_quant_bits_ok(double v) { return v == 2 || v == 3 || v == 4 || v == 5 || v == 6 || v == 8; }
static bool cfg_quant_group_ok(double v) { return v == 32 || v == 64 || v == 128; }

/* {group_size, bits} of `obj` (the defaults where absent), checked. */
static exo_status cfg_quant_pair(const cfg_reader *r, const char *key, const char *prefix, const cJSON *obj,
                                 uint32_t dflt_bits, uint32_t dflt_group, uint32_t *bits, uint32_t *group) {
    const cJSON *b = cfg_get(obj, "bits"), *g = cfg_get(obj, "group_size");
    if ((b && !cJSON_IsNumber(b)) || (g && !cJSON_IsNumber(g)))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s%s': bits and group_size must be numbers", r->path, key,
                          prefix);
    double bv = b ? b->valuedouble : dflt_bits, gv = g ? g->valuedouble : dflt_group;
    if (!cfg_quant_bits_ok(bv))
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s%s.bits' = %g is not supported (2, 3, 4, 5, 6, 8 are)",
                          r->path, key, prefix, bv);
    if (!cfg_quant_group_ok(gv))
        return exo_errorf(EXO_ERR_UNSUPPORTED,
                          "%s: field '%s%s.group_size' = %g is not supported (32, 64, 128 are)", r->path, key, prefix,
                          gv);
    *bits = (uint32_t)bv;
    *group = (uint32_t)gv;
    return EXO_OK;
}

/* mlx-lm writes `quantization` (and a copy as `quantization_config`): {group_size, bits, [mode],
 * per-module overrides keyed by module path: {group_size, bits} or false}. */
static exo_status cfg_quantization(const cfg_reader *r, exo_model_config *c) {
    const char *key = "quantization";
    const cJSON *q = cfg_get(r->root, key);
    if (!q) {
        key = "quantization_config";
        q = cfg_get(r->root, key);
    }
    memset(&c->quant, 0, sizeof c->quant);
    if (!q) return EXO_OK;
    if (!cJSON_IsObject(q)) return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s' must be an object", r->path, key);
    const cJSON *method = cfg_get(q, "quant_method");
    if (method && !cfg_get(q, "bits"))
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s.quant_method' = '%.32s' is not supported (MLX affine "
                          "checkpoints are)", r->path, key, cJSON_IsString(method) ? method->valuestring : "?");
    const cJSON *mode = cfg_get(q, "mode");
    if (mode && !(cJSON_IsString(mode) && strcmp(mode->valuestring, "affine") == 0))
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s.mode' = '%.32s' is not supported (affine is)", r->path,
                          key, cJSON_IsString(mode) ? mode->valuestring : "?");
    if (!cfg_get(q, "bits") || !cfg_get(q, "group_size"))
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s' needs 'bits' and 'group_size'", r->path, key);
    exo_status st = cfg_quant_pair(r, key, "", q, 0, 0, &c->quant.bits, &c->quant.group);
    if (st) return st;
    const cJSON *item;
    cJSON_ArrayForEach(item, q) {
        if (!item->string || (!cJSON_IsObject(item) && !cJSON_IsFalse(item))) continue;
        uint32_t layer;
        uint8_t module;
        char prefix[160];
        snprintf(prefix, sizeof prefix, ".%.120s", item->string);
        uint32_t bits = 0, group = 0;
        if (cJSON_IsObject(item) &&
            (st = cfg_quant_pair(r, key, prefix, item, c->quant.bits, c->quant.group, &bits, &group)))
            return st;
        if (!cfg_quant_module(item->string, &layer, &module)) continue; /* not a module a dense graph reads */
        if (c->quant.n_overrides == EXO_QUANT_MAX_OVERRIDES)
            return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: field '%s' has more than %u per-module overrides", r->path,
                              key, EXO_QUANT_MAX_OVERRIDES);
        c->quant.overrides[c->quant.n_overrides++] =
            (exo_quant_override){layer, module, (uint8_t)bits, (uint16_t)group};
    }
    return EXO_OK;
}

void exo_quant_for(const exo_model_config *cfg, const char *module_path, uint32_t *bits, uint32_t *group) {
    *bits = cfg->quant.bits;
    *group = cfg->quant.group;
    uint32_t layer;
    uint8_t module;
    if (!cfg->quant.bits || !cfg_quant_module(module_path, &layer, &module)) return;
    for (uint32_t i = 0; i < cfg->quant.n_overrides; i++) {
        const exo_quant_override *o = &cfg->quant.overrides[i];
        if (o->layer == layer && o->module == module) {
            *bits = o->bits;
            *group = o->group;
            return;
        }
    }
}

/* The expert count, which transformers reads under more than one name: each config class's
 * attribute_map aliases one key to another (transformers 5.x: Qwen3MoeConfig, MixtralConfig,
 * GptOssConfig map num_experts -> num_local_experts, Glm4MoeConfig num_local_experts ->
 * n_routed_experts), and transformers 4.x and 5.x save_pretrained write different ones (Qwen3-30B-A3B's
 * own config says num_experts, a 5.x save num_local_experts). Any of `keys` is read; two that
 * disagree are an error. It is required although the config classes default it (128 or 8): the
 * checkpoint's expert tensors fix it, and a default would only surface later as a confusing shape
 * mismatch on some expert tensor. zero_ok: 0 is meaningful (qwen3_moe: every layer dense). */
static exo_status cfg_expert_count(const cfg_reader *r, const char *const *keys, size_t n_keys, bool zero_ok,
                                   uint32_t *out) {
    const char *found = NULL;
    uint32_t value = 0;
    for (size_t i = 0; i < n_keys; i++) {
        const cJSON *item = cfg_get(r->root, keys[i]);
        if (!item) continue;
        uint32_t v = 0;
        exo_status st = EXO_OK;
        if (!(zero_ok && cJSON_IsNumber(item) && item->valuedouble == 0) &&
            (st = cfg_uint(r, r->root, "", keys[i], true, 0, 1024, &v)))
            return st;
        if (found && v != value)
            return exo_errorf(EXO_ERR_FORMAT, "%s: fields '%s' = %u and '%s' = %u disagree (transformers reads them "
                              "as one: the number of experts)", r->path, found, value, keys[i], v);
        found = keys[i];
        value = v;
    }
    if (!found) {
        char names[160] = "";
        for (size_t i = 1; i < n_keys; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", i > 1 ? ", " : "", keys[i]);
        return exo_errorf(EXO_ERR_FORMAT, "%s: field '%s' (the number of experts; or its alias %s) is missing",
                          r->path, keys[0], names);
    }
    *out = value;
    return EXO_OK;
}

/* moe_intermediate_size fixes the expert tensors' shapes: required, like the expert count. */
static exo_status cfg_moe_width(const cfg_reader *r, uint32_t *out) {
    return cfg_uint(r, r->root, "", "moe_intermediate_size", true, 0, CFG_MAX_INTERMEDIATE, out);
}

/* GptOssConfig: num_local_experts (alias num_experts; required here), num_experts_per_tok=4, experts as wide as intermediate_size,
 * every layer sparse; swiglu_alpha=1.702, swiglu_limit=7.0 (GptOssExperts). The router has a bias
 * and ranks the raw logits; the k chosen are softmaxed among themselves (GptOssTopKRouter). */
static exo_status cfg_gpt_oss_moe(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    exo_status st;
    double alpha, limit;
    static const char *const experts[] = {"num_local_experts", "num_experts"};
    if ((st = cfg_expert_count(r, experts, 2, false, &c->n_experts)) ||
        (st = cfg_uint(r, o, "", "num_experts_per_tok", false, 4, 1024, &c->n_experts_per_tok)) ||
        (st = cfg_positive(r, o, "", "swiglu_alpha", 1.702, &alpha, NULL)) ||
        (st = cfg_positive(r, o, "", "swiglu_limit", 7.0, &limit, NULL)))
        return st;
    c->moe_intermediate_size = c->intermediate_size;
    c->moe_rule = EXO_MOE_RULE_TOPK_SOFTMAX;
    c->norm_topk_prob = false;
    c->decoder_sparse_step = 1;
    c->moe_bias = true;
    c->expert_activation = EXO_ACT_SWIGLU_CLAMP;
    c->swiglu_alpha = (float)alpha;
    c->swiglu_limit = (float)limit;
    c->attention_sinks = true;
    return EXO_OK;
}

/* Glm4MoeConfig: n_routed_experts (alias num_local_experts) and moe_intermediate_size (both
 * required here, see cfg_expert_count), num_experts_per_tok=8,
 * n_shared_experts=1, first_k_dense_replace=1, routed_scaling_factor=1.0, norm_topk_prob=True,
 * n_group=1, topk_group=1. num_nextn_predict_layers (the multi-token-prediction layer, stored as
 * layer index num_hidden_layers) is checked and otherwise ignored: no layer past n_layers loads. */
static exo_status cfg_glm4_moe(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    exo_status st;
    double scale;
    uint32_t n_group, topk_group, nextn;
    static const char *const experts[] = {"n_routed_experts", "num_local_experts"};
    if ((st = cfg_expert_count(r, experts, 2, false, &c->n_experts)) ||
        (st = cfg_uint(r, o, "", "num_experts_per_tok", false, 8, 1024, &c->n_experts_per_tok)) ||
        (st = cfg_moe_width(r, &c->moe_intermediate_size)) ||
        (st = cfg_positive(r, o, "", "routed_scaling_factor", 1.0, &scale, NULL)) ||
        (st = cfg_bool(r, o, "", "norm_topk_prob", true, &c->norm_topk_prob)) ||
        (st = cfg_uint(r, o, "", "n_group", false, 1, 1024, &n_group)) ||
        (st = cfg_uint(r, o, "", "topk_group", false, 1, 1024, &topk_group)))
        return st;
    /* 0 is meaningful for these two (no shared expert, no dense layer); cfg_uint takes positives. */
    const char *zero_ok[3] = {"n_shared_experts", "first_k_dense_replace", "num_nextn_predict_layers"};
    uint32_t *dest[3] = {&c->n_shared_experts, &c->first_k_dense_replace, &nextn};
    uint32_t dflt[3] = {1, 1, 0};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cfg_get(o, zero_ok[i]);
        if (v && cJSON_IsNumber(v) && v->valuedouble == 0) *dest[i] = 0;
        else if ((st = cfg_uint(r, o, "", zero_ok[i], false, dflt[i], CFG_MAX_LAYERS, dest[i]))) return st;
    }
    if (c->n_shared_experts > 64)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'n_shared_experts' = %u is absurd (limit 64)", r->path,
                          c->n_shared_experts);
    if ((uint64_t)c->moe_intermediate_size * c->n_shared_experts > CFG_MAX_INTERMEDIATE)
        return exo_errorf(EXO_ERR_FORMAT, "%s: fields 'moe_intermediate_size' x 'n_shared_experts' = %llu is absurd "
                          "(limit %u)", r->path, (unsigned long long)c->moe_intermediate_size * c->n_shared_experts,
                          CFG_MAX_INTERMEDIATE);
    /* Glm4MoeMoE.route_tokens_to_experts keeps the topk_group best of n_group groups (ranked by the
     * sum of each group's two best scores) before the top-k; with every group kept the mask is a
     * no-op, else it changes which experts can win, which the routing op does not model. */
    if (n_group > 1 && topk_group < n_group)
        return exo_errorf(EXO_ERR_UNSUPPORTED, "%s: fields 'n_group' = %u, 'topk_group' = %u: group-limited routing "
                          "(topk_group < n_group) is not supported", r->path, n_group, topk_group);
    if (n_group > 1 && c->n_experts % n_group != 0)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'n_group' = %u does not divide n_routed_experts = %u", r->path,
                          n_group, c->n_experts);
    c->routed_scaling_factor = (float)scale;
    c->moe_rule = EXO_MOE_RULE_SIGMOID_BIAS;
    c->decoder_sparse_step = 1;
    return EXO_OK;
}

/* Mixture of experts: Qwen3MoeConfig (num_experts, alias num_local_experts, and
 * moe_intermediate_size required here; num_experts_per_tok=8, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[]) and
 * MixtralConfig (num_local_experts, alias num_experts, required here; num_experts_per_tok=2; every layer sparse, experts as wide
 * as intermediate_size, the k weights always renormalised). */
static exo_status cfg_moe(const cfg_reader *r, exo_model_config *c) {
    const cJSON *o = r->root;
    exo_status st;
    c->moe_rule = EXO_MOE_RULE_SOFTMAX;
    c->routed_scaling_factor = 1.0f;
    c->expert_activation = c->activation;
    if (c->arch == EXO_ARCH_GPT_OSS) {
        if ((st = cfg_gpt_oss_moe(r, c))) return st;
    } else if (c->arch == EXO_ARCH_GLM4_MOE) {
        if ((st = cfg_glm4_moe(r, c))) return st;
    } else if (c->arch == EXO_ARCH_MIXTRAL) {
        static const char *const experts[] = {"num_local_experts", "num_experts"};
        if ((st = cfg_expert_count(r, experts, 2, false, &c->n_experts)) ||
            (st = cfg_uint(r, o, "", "num_experts_per_tok", false, 2, 1024, &c->n_experts_per_tok)))
            return st;
        c->moe_intermediate_size = c->intermediate_size;
        c->norm_topk_prob = true;
        c->decoder_sparse_step = 1;
    } else if (c->arch == EXO_ARCH_QWEN3_MOE) {
        /* num_experts 0 makes every layer dense. */
        static const char *const experts[] = {"num_experts", "num_local_experts"};
        if ((st = cfg_expert_count(r, experts, 2, true, &c->n_experts))) return st;
        if ((st = cfg_uint(r, o, "", "num_experts_per_tok", false, 8, 1024, &c->n_experts_per_tok)) ||
            (st = cfg_moe_width(r, &c->moe_intermediate_size)) ||
            (st = cfg_bool(r, o, "", "norm_topk_prob", false, &c->norm_topk_prob)) ||
            (st = cfg_uint(r, o, "", "decoder_sparse_step", false, 1, CFG_MAX_LAYERS, &c->decoder_sparse_step)))
            return st;
        const cJSON *only = cfg_get(o, "mlp_only_layers"), *e;
        if (only && !cJSON_IsArray(only))
            return exo_errorf(EXO_ERR_FORMAT, "%s: field 'mlp_only_layers' must be a list of layer indices", r->path);
        cJSON_ArrayForEach(e, only) {
            double v = cJSON_IsNumber(e) ? e->valuedouble : NAN;
            if (!isfinite(v) || v != floor(v) || v < 0 || v >= c->n_layers)
                return exo_errorf(EXO_ERR_FORMAT, "%s: field 'mlp_only_layers' holds %s, not a layer index in [0, %u)",
                                  r->path, cJSON_IsNumber(e) ? "a number out of range" : "a non-number", c->n_layers);
            c->mlp_only[(uint32_t)v / 64] |= 1ull << ((uint32_t)v % 64);
        }
    } else {
        return EXO_OK;
    }
    if (c->n_experts > 0 && c->n_experts_per_tok > c->n_experts)
        return exo_errorf(EXO_ERR_FORMAT, "%s: field 'num_experts_per_tok' = %u exceeds the %u experts", r->path,
                          c->n_experts_per_tok, c->n_experts);
    return EXO_OK;
}

bool exo_layer_is_moe(const exo_model_config *cfg, uint32_t l) {
    if (cfg->n_experts == 0 || l >= CFG_MAX_LAYERS || l < cfg->first_k_dense_replace) return false;
    if (cfg->mlp_only[l / 64] >> (l % 64) & 1) return false;
    return cfg->decoder_sparse_step > 0 && (l + 1) % cfg->decoder_sparse_step == 0;
}

uint32_t exo_layer_window(const exo_model_config *cfg, uint32_t l) {
    if (l < cfg->sliding_window_first_layer || l >= CFG_MAX_LAYERS) return 0;
    if (cfg->full_attention[l / 64] >> (l % 64) & 1) return 0;
    return cfg->sliding_window;
}

/* ------------------------------------------------------------------ entry points */

/* The fields of a parsed config.json (root is not freed here). */
static exo_status cfg_from_root(const cJSON *root, const char *path, exo_model_config *out) {
    if (!cJSON_IsObject(root)) return exo_errorf(EXO_ERR_FORMAT, "%s: not a JSON object", path);
    cfg_reader r = {path, root};
    const cfg_arch_info *info = NULL;
    exo_model_config c;
    memset(&c, 0, sizeof c);
    exo_status st;
    if (!(st = cfg_arch(&r, &c, &info)) && !(st = cfg_sizes(&r, info, &c)) && !(st = cfg_layers(&r, &c)) &&
        !(st = cfg_sliding_window(&r, &c)) && !(st = cfg_rope(&r, &c)) && !(st = cfg_tokens_and_dtype(&r, &c)) &&
        !(st = cfg_quantization(&r, &c)) && !(st = cfg_moe(&r, &c)))
        *out = c;
    return st;
}

exo_status exo_model_config_parse(const char *json, const char *path, exo_model_config *out) {
    if (!json || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_config_parse: NULL argument");
    if (!path) path = "config.json";
    memset(out, 0, sizeof *out);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, true);
    if (!root)
        return exo_errorf(EXO_ERR_FORMAT, "%s: not valid JSON (near byte %lld)", path,
                          end ? (long long)(end - json) : -1LL);
    exo_status st = cfg_from_root(root, path, out);
    cJSON_Delete(root);
    return st;
}

/* Read through the core's bounded JSON reader: the model-file path rule and a size limit. */
exo_status exo_model_config_load(const char *dir, exo_model_config *out) {
    if (!dir || !out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_model_config_load: NULL argument");
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    exo_status st = exo_json_file_load(dir, "config.json", &root);
    if (st == EXO_ERR_NOT_FOUND) return exo_errorf(EXO_ERR_IO, "%s/config.json: cannot open: no such file", dir);
    if (st) return st;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    st = cfg_from_root(root, path, out);
    cJSON_Delete(root);
    return st;
}
