/* A Hugging Face config.json read into the facts the graph builder needs. Both dialects:
 * classic (`rope_theta` + `rope_scaling`) and newer (`rope_parameters`). */
#ifndef EXO_MODEL_CONFIG_H
#define EXO_MODEL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "exo_plugin.h"

typedef enum exo_arch {
    EXO_ARCH_LLAMA = 0,
    EXO_ARCH_MISTRAL = 1,
    EXO_ARCH_QWEN2 = 2,
    EXO_ARCH_QWEN3 = 3,
    EXO_ARCH_PHI3 = 4,
    EXO_ARCH_GEMMA = 5,
    EXO_ARCH_QWEN3_MOE = 6, /* qwen3 attention; sparse MoE MLPs (softmax top-k router) */
    EXO_ARCH_MIXTRAL = 7,   /* mistral attention; block_sparse_moe (softmax top-k, renormalised) */
    EXO_ARCH_GPT_OSS = 8,   /* biased attention with sinks, sliding/full layers; biased router (top-k of the
                               logits, softmax over the k), clamped-SwiGLU experts with biases */
    EXO_ARCH_GLM4_MOE = 9,  /* partial RoPE, optional q/k norm; dense first layers; sigmoid router with a
                               selection-only bias, routed scaling, shared experts */
} exo_arch;

typedef enum exo_rope_scaling {
    EXO_ROPE_SCALING_NONE = 0,  /* "default" */
    EXO_ROPE_SCALING_LINEAR = 1,
    EXO_ROPE_SCALING_LLAMA3 = 2,
    EXO_ROPE_SCALING_YARN = 3,
    EXO_ROPE_SCALING_DYNAMIC = 4, /* NTK-dynamic: inv_freq at init equals the default */
} exo_rope_scaling;

#define EXO_MAX_EOS 8

/* MLX affine quantization (config.json `quantization`, or `quantization_config`). A module is
 * quantized iff its `<path>.scales` tensor exists; these say how it must be read. Per-module
 * overrides are kept for the modules the builder uses (the attention and MLP projections of
 * each layer, a MoE layer's router and stacked experts, the embedding and the lm_head), in a
 * compact form. */
#define EXO_QUANT_MAX_OVERRIDES 512
typedef enum exo_quant_module {
    EXO_QM_EMBED_TOKENS = 0, /* model.embed_tokens */
    EXO_QM_LM_HEAD,          /* lm_head */
    EXO_QM_Q_PROJ,           /* model.layers.N.self_attn.q_proj, ... */
    EXO_QM_K_PROJ,
    EXO_QM_V_PROJ,
    EXO_QM_O_PROJ,
    EXO_QM_QKV_PROJ,
    EXO_QM_GATE_PROJ,        /* model.layers.N.mlp.gate_proj, ... */
    EXO_QM_UP_PROJ,
    EXO_QM_DOWN_PROJ,
    EXO_QM_GATE_UP_PROJ,
    EXO_QM_MOE_ROUTER,       /* model.layers.N.mlp.gate (qwen3_moe's router; mlx-lm keeps it 8-bit) */
    EXO_QM_SWITCH_GATE_PROJ, /* model.layers.N.mlp.switch_mlp.gate_proj: mlx-lm's stacked experts */
    EXO_QM_SWITCH_UP_PROJ,
    EXO_QM_SWITCH_DOWN_PROJ,
    EXO_QM_MIXTRAL_ROUTER,   /* model.layers.N.block_sparse_moe.gate, and its switch_mlp */
    EXO_QM_MIXTRAL_SWITCH_GATE_PROJ,
    EXO_QM_MIXTRAL_SWITCH_UP_PROJ,
    EXO_QM_MIXTRAL_SWITCH_DOWN_PROJ,
    EXO_QM_GPT_OSS_ROUTER,       /* model.layers.N.mlp.router (mlx-lm: 8-bit, group 64) */
    EXO_QM_EXPERTS_GATE_PROJ,    /* model.layers.N.mlp.experts.gate_proj: mlx-lm's gpt_oss SwitchGLU */
    EXO_QM_EXPERTS_UP_PROJ,
    EXO_QM_EXPERTS_DOWN_PROJ,
    EXO_QM_SHARED_GATE_PROJ,     /* model.layers.N.mlp.shared_experts.gate_proj (glm4_moe) */
    EXO_QM_SHARED_UP_PROJ,
    EXO_QM_SHARED_DOWN_PROJ,
    EXO_QM_COUNT
} exo_quant_module;

typedef struct exo_quant_override {
    uint32_t layer;   /* UINT32_MAX for modules outside the layers */
    uint8_t module;   /* exo_quant_module */
    uint8_t bits;     /* 0: the override is `false` (the module stays float) */
    uint16_t group;
} exo_quant_override;

typedef struct exo_quant_config {
    uint32_t bits;    /* 0: the checkpoint is not quantized */
    uint32_t group;
    uint32_t n_overrides;
    exo_quant_override overrides[EXO_QUANT_MAX_OVERRIDES];
} exo_quant_config;

typedef struct exo_model_config {
    exo_arch arch;
    char model_type[32];       /* as written in config.json */
    uint32_t hidden_size;
    uint32_t intermediate_size;
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads;       /* defaults to n_heads */
    uint32_t head_dim;         /* defaults to hidden_size / n_heads */
    uint32_t vocab_size;
    uint32_t max_position_embeddings;
    float rms_norm_eps;
    bool tie_word_embeddings;
    bool attention_bias;       /* q/k/v (and o for llama's attention_bias) biases present */
    bool mlp_bias;
    bool qk_norm;              /* qwen3 */
    bool norm_add_one;         /* gemma: x * (1 + w) */
    float embedding_scale;     /* gemma: sqrt(hidden_size); else 1 */
    int32_t activation;        /* EXO_ACT_SILU or EXO_ACT_GELU_TANH */
    uint32_t sliding_window;   /* 0 = none */
    float final_logit_softcap; /* 0 = none */
    float attn_logit_softcap;  /* 0 = none */
    float attn_scale;          /* 1/sqrt(head_dim) unless query_pre_attn_scalar says otherwise */

    /* RoPE */
    double rope_theta;
    float partial_rotary_factor; /* 1 = rotate the whole head */
    exo_rope_scaling rope_scaling;
    double rope_factor;
    double rope_low_freq_factor;   /* llama3 */
    double rope_high_freq_factor;  /* llama3 */
    uint32_t rope_original_max_position; /* llama3 / yarn */
    double yarn_beta_fast, yarn_beta_slow, yarn_attention_factor; /* attention_factor 0 = derived */

    exo_dtype torch_dtype;     /* dtype field ("dtype" or "torch_dtype"); F32 when absent */
    int32_t bos_token_id;      /* -1 when absent */
    int32_t eos_token_ids[EXO_MAX_EOS];
    uint32_t n_eos;
    int32_t pad_token_id;      /* -1 when absent */

    /* Added with the config parser (details the fields above cannot carry). */
    bool attention_out_bias;   /* o_proj has a bias (llama/qwen3/gemma attention_bias; never qwen2) */
    uint32_t sliding_window_first_layer; /* layers >= this use sliding_window (qwen2/qwen3
                                            max_window_layers); 0 with mistral/phi3: every layer */
    bool yarn_truncate;        /* yarn: round the correction range to whole dims (default true) */
    exo_quant_config quant;    /* MLX affine quantization; quant.bits 0 = none */

    /* Mixture of experts (qwen3_moe, mixtral); n_experts 0 = a dense model. */
    uint32_t n_experts;            /* num_experts / num_local_experts / n_routed_experts */
    uint32_t n_experts_per_tok;    /* k */
    uint32_t moe_intermediate_size;/* an expert's width (mixtral: intermediate_size) */
    bool norm_topk_prob;           /* renormalise the k weights (mixtral: always) */
    uint32_t decoder_sparse_step;  /* qwen3_moe: layer l is sparse iff (l + 1) % step == 0 ... */
    uint64_t mlp_only[64];         /* ... and l is not in mlp_only_layers (a bitmap, layers < 4096) */

    /* gpt_oss and glm4_moe (ABI 1.5). */
    int32_t moe_rule;              /* EXO_MOE_RULE_*: how the router's logits select and weigh experts */
    float routed_scaling_factor;   /* glm4_moe: a factor on the routed weights; 1 = none */
    uint32_t first_k_dense_replace;/* glm4_moe: layers below this have a dense MLP */
    uint32_t n_shared_experts;     /* glm4_moe: a dense SwiGLU of moe_intermediate_size * this, added to
                                      the routed output; 0 = none */
    bool moe_bias;                 /* gpt_oss: the router and the experts carry biases */
    int32_t expert_activation;     /* the experts' GLU: EXO_ACT_SILU, or EXO_ACT_SWIGLU_CLAMP (gpt_oss) */
    float swiglu_alpha, swiglu_limit; /* EXO_ACT_SWIGLU_CLAMP's alpha and limit */
    bool attention_sinks;          /* gpt_oss: self_attn.sinks, one extra softmax logit per head */
    uint64_t full_attention[64];   /* gpt_oss layer_types: layers that attend fully (a bitmap); the
                                      others slide with sliding_window */
} exo_model_config;

/* True when layer l's MLP is a sparse mixture of experts (Qwen3MoeDecoderLayer's rule;
 * glm4_moe: l >= first_k_dense_replace). */
bool exo_layer_is_moe(const exo_model_config *cfg, uint32_t l);

/* Layer l's attention window (EXO_ATTENTION_I_WINDOW): 0 = the whole context. */
uint32_t exo_layer_window(const exo_model_config *cfg, uint32_t l);

/* Reads DIR/config.json. Errors name the file and the field: EXO_ERR_IO (missing/unreadable),
 * EXO_ERR_FORMAT (bad JSON, missing or absurd fields), EXO_ERR_UNSUPPORTED (architecture). */
exo_status exo_model_config_load(const char *dir, exo_model_config *out);

/* Parses config.json text (path is used only in error messages). */
exo_status exo_model_config_parse(const char *json, const char *path, exo_model_config *out);

/* The (bits, group) config.json gives the module `module_path` (a weight's name without
 * ".weight", e.g. "model.layers.3.mlp.down_proj"): its override, else the defaults. *bits = 0
 * when the checkpoint is not quantized or an override says `false`. */
void exo_quant_for(const exo_model_config *cfg, const char *module_path, uint32_t *bits, uint32_t *group);

/* RoPE inverse frequencies as Hugging Face's rope init functions compute them for this config:
 * out[i] for i in [0, n_rot/2), n_rot = head_dim * partial_rotary_factor rounded down to even.
 * *attention_factor receives the factor multiplying cos/sin (yarn; 1 otherwise). */
void exo_rope_inv_freq(const exo_model_config *cfg, float *out, uint32_t n_rot, float *attention_factor);

/* n_rot for this config. */
uint32_t exo_rope_n_rot(const exo_model_config *cfg);

#endif
