/* exo-synth: writes a Hugging Face model directory (llama, or the qwen3_moe mixture of experts)
 * with deterministic random weights, for benchmarks at real model sizes without downloading
 * checkpoints.
 *
 *   presets.c          the model shapes (llama-3.2-1b, small-110m, tiny, qwen3-30b-a3b-8l, tiny-moe)
 *   random_fill.c      counter-based PRNG -> normal-ish values -> bf16/f16/f32 bytes
 *   weights_writer.c   the tensor plan, safetensors files (sharded + index above 2 GB), streamed
 *   config_writer.c    config.json and generation_config.json
 *   tokenizer_writer.c a small byte-level BPE tokenizer.json (+ tokenizer_config.json)
 */
#ifndef EXO_SYNTH_H
#define EXO_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum synth_arch { SYNTH_LLAMA, SYNTH_QWEN3_MOE } synth_arch;

/* The shape of a model, as config.json spells it. */
typedef struct synth_preset {
    const char *name;
    const char *description;
    synth_arch arch;
    uint32_t hidden_size, n_layers, n_heads, n_kv_heads, head_dim, intermediate_size, vocab_size;
    uint32_t max_position_embeddings;
    bool tie_word_embeddings;
    double rms_norm_eps;
    double rope_theta;
    /* llama3 RoPE scaling; factor 0 means none. */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    uint32_t rope_original_max_position;
    /* qwen3_moe: q/k RMSNorms (always), and the mixture of experts: a router [n_experts, hidden]
     * and n_experts SwiGLU experts of width moe_intermediate_size per sparse layer, top
     * n_experts_per_tok, renormalised when norm_topk_prob; the first n_dense_layers layers are
     * dense (mlp_only_layers) with intermediate_size. */
    uint32_t n_experts, n_experts_per_tok, moe_intermediate_size, n_dense_layers;
    bool norm_topk_prob;
} synth_preset;

const synth_preset *synth_preset_find(const char *name);
/* Names of every preset, for usage messages, "a, b, c". */
void synth_preset_list(char *out, size_t cap);

typedef enum synth_dtype { SYNTH_BF16, SYNTH_F16, SYNTH_F32 } synth_dtype;

bool synth_dtype_parse(const char *text, synth_dtype *out);
uint32_t synth_dtype_size(synth_dtype dtype);
const char *synth_dtype_safetensors_name(synth_dtype dtype); /* "BF16" */
const char *synth_dtype_torch_name(synth_dtype dtype);       /* "bfloat16" */

/* Fills out[0, count) with the values of elements [first, first + count) of the stream `seed`:
 * mean + std * (approximately standard normal). Element i depends only on (seed, i), so a tensor
 * can be written in chunks and its bytes do not depend on how it was split. */
void synth_fill(synth_dtype dtype, uint64_t seed, uint64_t first, size_t count, float mean, float std,
                void *out);
/* The stream of one tensor: mixes the user's seed with the tensor's name. */
uint64_t synth_tensor_seed(uint64_t seed, const char *name);

/* Fills out[0, count) with uniformly random 32-bit words [first, first + count) of the stream
 * `seed` (the packed codes of a quantized weight), chunk-independent like synth_fill. */
void synth_fill_words(uint64_t seed, uint64_t first, size_t count, uint32_t *out);

/* MLX affine quantization of the written model: bits 0 = none (float weights). */
typedef struct synth_quant {
    uint32_t bits, group;
} synth_quant;

/* mlx-lm's quant_predicate for qwen3_moe keeps every router (`mlp.gate`) at 8 bits, group 64,
 * whatever the default; convert writes that as a per-module override in config.json. */
#define SYNTH_ROUTER_QUANT ((synth_quant){8, 64})

/* True when layer l of the preset has a sparse (mixture-of-experts) MLP. */
bool synth_layer_is_moe(const synth_preset *p, uint32_t l);

/* Each writer returns 0 on success, or prints "exo-synth: <path>: <problem>" and returns -1. */
/* With q.bits > 0 every linear weight and the embedding (and an untied lm_head), as mlx-lm's
 * nn.quantize does, is written in MLX's layout: <module>.weight U32 [rows, K * bits / 32] of
 * random codes, <module>.scales and .biases [rows, K / group] in `dtype` (scales near s, biases
 * near -s * (2^bits - 1) / 2, so the weights have mean ~0 and std ~0.02); norms stay `dtype`.
 * Experts: float ones per expert as on the hub (mlp.experts.E.{gate,up,down}_proj.weight),
 * quantized ones stacked as mlx-lm's sanitize and SwitchGLU store them
 * (mlp.switch_mlp.{gate,up,down}_proj.{weight,scales,biases} [E, rows, ...]); routers at
 * SYNTH_ROUTER_QUANT. *total_bytes (may be NULL) gets the bytes of all tensors written. */
int synth_write_weights(const char *dir, const synth_preset *p, synth_dtype dtype, synth_quant q, uint64_t seed,
                        uint64_t shard_limit_bytes, bool verbose, uint64_t *total_bytes);
/* config.json (with a `quantization` block {group_size, bits} when q.bits > 0, plus the routers'
 * overrides, and the same block as `quantization_config`, as mlx-lm writes them) and
 * generation_config.json. */
int synth_write_config(const char *dir, const synth_preset *p, synth_dtype dtype, synth_quant q);
int synth_write_tokenizer(const char *dir, const synth_preset *p);

/* Token ids every preset uses (the tokenizer puts the specials first). */
enum { SYNTH_BOS_ID = 0, SYNTH_EOS_ID = 1, SYNTH_PAD_ID = 2, SYNTH_N_SPECIAL = 3 };

/* Writes text to dir/name; 0 or -1 with a message. */
int synth_write_text_file(const char *dir, const char *name, const char *text);

#endif
