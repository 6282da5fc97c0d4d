/* config.json: the real fixtures parse with the expected facts, transformers' per-model
 * defaults fill what is missing, both RoPE dialects agree, and every bad field is an error that
 * names the file and the field. */
#include <cjson/cJSON.h>
#include <math.h>

#include "model/config.h"
#include "model_test_util.h"

#define HF EXO_TEST_DATA "/hf-tiny"
#define LICENSES EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"
#define PATH "some/model/config.json"

static exo_model_config load(const char *dir) {
    exo_model_config c;
    exo_status st = exo_model_config_load(dir, &c);
    ck_assert_msg(st == EXO_OK, "%s: %s", dir, exo_error_message());
    return c;
}

static exo_model_config parse(const char *json) {
    exo_model_config c;
    exo_status st = exo_model_config_parse(json, PATH, &c);
    ck_assert_msg(st == EXO_OK, "%s", exo_error_message());
    return c;
}

/* The fixtures' shared shape (tests/data/hf-tiny/README.md). */
static void assert_tiny_shape(const exo_model_config *c) {
    ck_assert_uint_eq(c->hidden_size, 64);
    ck_assert_uint_eq(c->intermediate_size, 160);
    ck_assert_uint_eq(c->n_layers, 4);
    ck_assert_uint_eq(c->n_heads, 4);
    ck_assert_uint_eq(c->n_kv_heads, 2);
    ck_assert_uint_eq(c->head_dim, 16);
    ck_assert_uint_eq(c->vocab_size, 512);
    ck_assert_uint_eq(c->max_position_embeddings, 512);
    ck_assert_int_eq(c->bos_token_id, 0);
    ck_assert_uint_eq(c->n_eos, 1);
    ck_assert_int_eq(c->eos_token_ids[0], 1);
    ck_assert_int_eq(c->pad_token_id, 2);
    ck_assert_float_eq_tol(c->attn_scale, 0.25f, 1e-7f);
    ck_assert_float_eq(c->partial_rotary_factor, 1.0f);
    ck_assert_uint_eq(c->sliding_window, 0);
}

/* ------------------------------------------------------------------ real configs */

START_TEST(llama_fixture) {
    exo_model_config c = load(HF "/llama");
    assert_tiny_shape(&c);
    ck_assert_int_eq(c.arch, EXO_ARCH_LLAMA);
    ck_assert_str_eq(c.model_type, "llama");
    ck_assert_float_eq_tol(c.rms_norm_eps, 1e-5f, 1e-12f);
    ck_assert(!c.tie_word_embeddings && !c.attention_bias && !c.attention_out_bias && !c.mlp_bias);
    ck_assert(!c.qk_norm && !c.norm_add_one);
    ck_assert_float_eq(c.embedding_scale, 1.0f);
    ck_assert_int_eq(c.activation, EXO_ACT_SILU);
    ck_assert_double_eq(c.rope_theta, 10000.0);
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_NONE);
    ck_assert_int_eq(c.torch_dtype, EXO_DTYPE_F32);
}
END_TEST

START_TEST(reduced_precision_fixtures) {
    ck_assert_int_eq(load(HF "/llama-bf16").torch_dtype, EXO_DTYPE_BF16);
    ck_assert_int_eq(load(HF "/llama-f16").torch_dtype, EXO_DTYPE_F16);
}
END_TEST

START_TEST(llama3_fixture) {
    exo_model_config c = load(HF "/llama3");
    assert_tiny_shape(&c);
    ck_assert(c.tie_word_embeddings);
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_LLAMA3);
    ck_assert_double_eq(c.rope_theta, 500000.0);
    ck_assert_double_eq(c.rope_factor, 32.0);
    ck_assert_double_eq(c.rope_low_freq_factor, 1.0);
    ck_assert_double_eq(c.rope_high_freq_factor, 4.0);
    ck_assert_uint_eq(c.rope_original_max_position, 64);
}
END_TEST

START_TEST(mistral_fixture) {
    exo_model_config c = load(HF "/mistral");
    assert_tiny_shape(&c); /* sliding_window: null -> no window */
    ck_assert_int_eq(c.arch, EXO_ARCH_MISTRAL);
    ck_assert_double_eq(c.rope_theta, 1e6);
    ck_assert(!c.attention_bias && !c.tie_word_embeddings);
}
END_TEST

START_TEST(qwen2_fixture) {
    exo_model_config c = load(HF "/qwen2");
    assert_tiny_shape(&c);
    ck_assert_int_eq(c.arch, EXO_ARCH_QWEN2);
    ck_assert(c.attention_bias);
    ck_assert(!c.attention_out_bias);
    ck_assert(c.tie_word_embeddings);
    ck_assert_float_eq_tol(c.rms_norm_eps, 1e-6f, 1e-13f);
    ck_assert_double_eq(c.rope_theta, 1e6);
}
END_TEST

START_TEST(qwen3_fixture) {
    exo_model_config c = load(HF "/qwen3");
    assert_tiny_shape(&c);
    ck_assert_int_eq(c.arch, EXO_ARCH_QWEN3);
    ck_assert(c.qk_norm);
    ck_assert(!c.attention_bias && !c.tie_word_embeddings);
}
END_TEST

START_TEST(phi3_fixture) {
    exo_model_config c = load(HF "/phi3");
    assert_tiny_shape(&c); /* head_dim derived: 64 / 4 */
    ck_assert_int_eq(c.arch, EXO_ARCH_PHI3);
    ck_assert_uint_eq(exo_rope_n_rot(&c), 16);
    ck_assert(!c.attention_bias && !c.tie_word_embeddings);
}
END_TEST

START_TEST(gemma_fixture) {
    exo_model_config c = load(HF "/gemma");
    assert_tiny_shape(&c);
    ck_assert_int_eq(c.arch, EXO_ARCH_GEMMA);
    ck_assert_float_eq_tol(c.embedding_scale, 8.0f, 1e-6f); /* sqrt(64) */
    ck_assert(c.norm_add_one);
    ck_assert_int_eq(c.activation, EXO_ACT_GELU_TANH);
    ck_assert(c.tie_word_embeddings);
}
END_TEST

START_TEST(indexed_model_config) {
    exo_model_config c = load(LICENSES);
    ck_assert_int_eq(c.arch, EXO_ARCH_LLAMA);
    ck_assert_uint_eq(c.hidden_size, 320);
    ck_assert_uint_eq(c.n_heads, 10);
    ck_assert_uint_eq(c.n_kv_heads, 2);
    ck_assert_uint_eq(c.head_dim, 32);
    ck_assert_uint_eq(c.n_layers, 6);
    ck_assert_uint_eq(c.vocab_size, 4096);
    ck_assert_uint_eq(c.max_position_embeddings, 1024);
    ck_assert_int_eq(c.torch_dtype, EXO_DTYPE_BF16);
    ck_assert(c.tie_word_embeddings);
}
END_TEST

/* ------------------------------------------------------------------ dialects */

/* Rewrites the llama3 fixture into the classic dialect (top-level rope_theta, rope_scaling
 * with `key` naming the type) and checks every RoPE fact survives. */
static void check_classic_equals_new(const char *type_key) {
    FILE *fp = fopen(HF "/llama3/config.json", "rb");
    ck_assert_ptr_nonnull(fp);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    exo_model_config fresh = parse(text);

    cJSON *root = cJSON_Parse(text);
    cJSON *params = cJSON_DetachItemFromObject(root, "rope_parameters");
    cJSON *theta = cJSON_DetachItemFromObject(params, "rope_theta");
    cJSON *type = cJSON_DetachItemFromObject(params, "rope_type");
    cJSON_AddItemToObject(params, type_key, type);
    cJSON_AddItemToObject(root, "rope_theta", theta);
    cJSON_AddItemToObject(root, "rope_scaling", params);
    char *classic_text = cJSON_Print(root);
    ck_assert_ptr_null(strstr(classic_text, "rope_parameters"));
    exo_model_config classic = parse(classic_text);
    free(classic_text);
    cJSON_Delete(root);

    ck_assert_int_eq(classic.rope_scaling, fresh.rope_scaling);
    ck_assert_double_eq(classic.rope_theta, fresh.rope_theta);
    ck_assert_double_eq(classic.rope_factor, fresh.rope_factor);
    ck_assert_double_eq(classic.rope_low_freq_factor, fresh.rope_low_freq_factor);
    ck_assert_double_eq(classic.rope_high_freq_factor, fresh.rope_high_freq_factor);
    ck_assert_uint_eq(classic.rope_original_max_position, fresh.rope_original_max_position);
    ck_assert_float_eq(classic.partial_rotary_factor, fresh.partial_rotary_factor);
    float a[8], b[8];
    exo_rope_inv_freq(&classic, a, 16, NULL);
    exo_rope_inv_freq(&fresh, b, 16, NULL);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
}

START_TEST(classic_dialect_with_type_equals_rope_parameters) { check_classic_equals_new("type"); }
END_TEST

START_TEST(classic_dialect_with_rope_type_equals_rope_parameters) {
    check_classic_equals_new("rope_type");
}
END_TEST

START_TEST(partial_rotary_factor_in_rope_parameters_or_top_level) {
    const char *base = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":64,"
                       "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":8,%s}";
    char json[1024];
    snprintf(json, sizeof json, base, "\"partial_rotary_factor\":0.5");
    exo_model_config top = parse(json);
    snprintf(json, sizeof json, base, "\"rope_parameters\":{\"rope_type\":\"default\","
                                      "\"rope_theta\":10000,\"partial_rotary_factor\":0.5}");
    exo_model_config inside = parse(json);
    ck_assert_uint_eq(exo_rope_n_rot(&top), 8);
    ck_assert_uint_eq(exo_rope_n_rot(&inside), 8);
}
END_TEST

/* ------------------------------------------------------------------ transformers defaults */

#define MIN_FIELDS                                                                             \
    "\"hidden_size\":4096,\"intermediate_size\":11008,\"num_hidden_layers\":2,"                \
    "\"num_attention_heads\":32,\"vocab_size\":1000"

START_TEST(llama_defaults) {
    exo_model_config c = parse("{\"model_type\":\"llama\"," MIN_FIELDS "}");
    ck_assert_uint_eq(c.n_kv_heads, 32);
    ck_assert_uint_eq(c.head_dim, 128);
    ck_assert_uint_eq(c.max_position_embeddings, 2048);
    ck_assert_float_eq_tol(c.rms_norm_eps, 1e-6f, 1e-13f);
    ck_assert(!c.tie_word_embeddings);
    ck_assert_double_eq(c.rope_theta, 10000.0);
    ck_assert_int_eq(c.torch_dtype, EXO_DTYPE_F32);
    ck_assert_int_eq(c.bos_token_id, -1);
    ck_assert_uint_eq(c.n_eos, 0);
    ck_assert_int_eq(c.pad_token_id, -1);
}
END_TEST

START_TEST(mistral_defaults) {
    exo_model_config c = parse("{\"model_type\":\"mistral\"," MIN_FIELDS "}");
    ck_assert_uint_eq(c.n_kv_heads, 8);
    ck_assert_uint_eq(c.sliding_window, 4096);
    ck_assert_uint_eq(c.sliding_window_first_layer, 0);
    ck_assert_uint_eq(c.max_position_embeddings, 4096 * 32);
    c = parse("{\"model_type\":\"mistral\",\"sliding_window\":null," MIN_FIELDS "}");
    ck_assert_uint_eq(c.sliding_window, 0);
}
END_TEST

START_TEST(qwen2_defaults) {
    exo_model_config c = parse("{\"model_type\":\"qwen2\"," MIN_FIELDS "}");
    ck_assert_uint_eq(c.n_kv_heads, 32);
    ck_assert(c.attention_bias && !c.attention_out_bias);
    ck_assert(!c.tie_word_embeddings); /* Qwen2Config: tie_word_embeddings=False */
    ck_assert_uint_eq(c.sliding_window, 0); /* use_sliding_window defaults to false */
    ck_assert_uint_eq(c.max_position_embeddings, 32768);
}
END_TEST

START_TEST(qwen2_sliding_window_only_when_enabled) {
    exo_model_config c = parse("{\"model_type\":\"qwen2\",\"use_sliding_window\":true,"
                               "\"sliding_window\":1024,\"max_window_layers\":1," MIN_FIELDS "}");
    ck_assert_uint_eq(c.sliding_window, 1024);
    ck_assert_uint_eq(c.sliding_window_first_layer, 1);
    /* max_window_layers past the last layer: no layer slides. */
    c = parse("{\"model_type\":\"qwen2\",\"use_sliding_window\":true,\"sliding_window\":1024,"
              MIN_FIELDS "}");
    ck_assert_uint_eq(c.sliding_window, 0);
    c = parse("{\"model_type\":\"qwen2\",\"use_sliding_window\":false,\"sliding_window\":1024,"
              "\"max_window_layers\":0," MIN_FIELDS "}");
    ck_assert_uint_eq(c.sliding_window, 0);
    c = parse("{\"model_type\":\"qwen2\",\"use_sliding_window\":true,\"sliding_window\":null,"
              "\"max_window_layers\":0," MIN_FIELDS "}");
    ck_assert_uint_eq(c.sliding_window, 0);
}
END_TEST

START_TEST(qwen3_defaults) {
    exo_model_config c = parse("{\"model_type\":\"qwen3\"," MIN_FIELDS "}");
    ck_assert_uint_eq(c.head_dim, 128);
    ck_assert_uint_eq(c.n_kv_heads, 32);
    ck_assert(c.qk_norm);
    ck_assert(!c.attention_bias);
    c = parse("{\"model_type\":\"qwen3\",\"attention_bias\":true," MIN_FIELDS "}");
    ck_assert(c.attention_bias && c.attention_out_bias);
}
END_TEST

START_TEST(gemma_defaults) {
    exo_model_config c = parse("{\"model_type\":\"gemma\"," MIN_FIELDS "}");
    ck_assert_uint_eq(c.head_dim, 256);
    ck_assert_uint_eq(c.n_kv_heads, 16);
    ck_assert(c.tie_word_embeddings);
    ck_assert_int_eq(c.activation, EXO_ACT_GELU_TANH);
    ck_assert_float_eq_tol(c.embedding_scale, 64.0f, 1e-4f);
    ck_assert_uint_eq(c.max_position_embeddings, 8192);
    ck_assert_float_eq_tol(c.attn_scale, 0.0625f, 1e-8f); /* 256^-0.5 */
}
END_TEST

START_TEST(gemma_gelu_means_tanh_approximation) {
    exo_model_config c = parse("{\"model_type\":\"gemma\",\"hidden_act\":\"gelu\"," MIN_FIELDS "}");
    ck_assert_int_eq(c.activation, EXO_ACT_GELU_TANH);
    c = parse("{\"model_type\":\"gemma\",\"hidden_act\":\"gelu\",\"hidden_activation\":"
              "\"gelu_pytorch_tanh\"," MIN_FIELDS "}");
    ck_assert_int_eq(c.activation, EXO_ACT_GELU_TANH);
}
END_TEST

START_TEST(phi3_defaults) {
    exo_model_config c = parse("{\"model_type\":\"phi3\"," MIN_FIELDS "}");
    ck_assert_float_eq_tol(c.rms_norm_eps, 1e-5f, 1e-12f);
    ck_assert_uint_eq(c.n_kv_heads, 32);
    ck_assert_uint_eq(c.max_position_embeddings, 4096);
    ck_assert_uint_eq(c.sliding_window, 0);
}
END_TEST

START_TEST(llama_attention_bias_covers_output_projection) {
    exo_model_config c = parse("{\"model_type\":\"llama\",\"attention_bias\":true,"
                               "\"mlp_bias\":true," MIN_FIELDS "}");
    ck_assert(c.attention_bias && c.attention_out_bias && c.mlp_bias);
}
END_TEST

START_TEST(architectures_is_the_fallback) {
    exo_model_config c = parse("{\"architectures\":[\"Qwen2ForCausalLM\"]," MIN_FIELDS "}");
    ck_assert_int_eq(c.arch, EXO_ARCH_QWEN2);
    ck_assert_str_eq(c.model_type, "qwen2");
}
END_TEST

START_TEST(token_ids_and_legacy_dtype) {
    exo_model_config c = parse("{\"model_type\":\"llama\",\"eos_token_id\":[128001,128008,128009],"
                               "\"bos_token_id\":128000,\"pad_token_id\":null,"
                               "\"torch_dtype\":\"bfloat16\"," MIN_FIELDS "}");
    ck_assert_uint_eq(c.n_eos, 3);
    ck_assert_int_eq(c.eos_token_ids[2], 128009);
    ck_assert_int_eq(c.bos_token_id, 128000);
    ck_assert_int_eq(c.pad_token_id, -1);
    ck_assert_int_eq(c.torch_dtype, EXO_DTYPE_BF16);
}
END_TEST

START_TEST(yarn_classic_parameters) {
    exo_model_config c = parse("{\"model_type\":\"qwen2\",\"rope_theta\":1000000,"
                               "\"max_position_embeddings\":131072,\"rope_scaling\":"
                               "{\"type\":\"yarn\",\"factor\":4.0,\"original_max_position_embeddings\":32768}"
                               "," MIN_FIELDS "}");
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_YARN);
    ck_assert_double_eq(c.rope_factor, 4.0);
    ck_assert_uint_eq(c.rope_original_max_position, 32768);
    ck_assert_double_eq(c.yarn_beta_fast, 32.0);
    ck_assert_double_eq(c.yarn_beta_slow, 1.0);
    ck_assert(c.yarn_truncate);
    ck_assert_double_eq(c.rope_theta, 1e6);
}
END_TEST

START_TEST(yarn_derived_values) {
    /* No factor: max_position_embeddings / original; mscale pair: ratio of the two mscales. */
    exo_model_config c = parse("{\"model_type\":\"llama\",\"max_position_embeddings\":16384,"
                               "\"rope_parameters\":{\"rope_type\":\"yarn\",\"rope_theta\":10000,"
                               "\"original_max_position_embeddings\":4096,\"mscale\":1.0,"
                               "\"mscale_all_dim\":0.5,\"beta_fast\":16}," MIN_FIELDS "}");
    ck_assert_double_eq(c.rope_factor, 4.0);
    ck_assert_double_eq_tol(c.yarn_attention_factor,
                            (0.1 * log(4.0) + 1.0) / (0.05 * log(4.0) + 1.0), 1e-12);
    ck_assert_double_eq(c.yarn_beta_fast, 16.0);
    ck_assert_double_eq(c.yarn_beta_slow, 1.0);
    /* A top-level original_max_position_embeddings wins over the dict's (Phi3 style). */
    c = parse("{\"model_type\":\"llama\",\"original_max_position_embeddings\":1024,"
              "\"rope_parameters\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,"
              "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}," MIN_FIELDS "}");
    ck_assert_uint_eq(c.rope_original_max_position, 1024);
}
END_TEST

START_TEST(phi3_accepts_only_default_rope) {
    mtu_assert_error(exo_model_config_parse("{\"model_type\":\"phi3\",\"rope_scaling\":{\"type\":"
                                            "\"linear\",\"factor\":2}," MIN_FIELDS "}", PATH,
                                            &(exo_model_config){0}),
                     EXO_ERR_UNSUPPORTED, PATH, "'rope_scaling.type'", "linear");
}
END_TEST

/* ------------------------------------------------------------------ bad configs */

#define EXPECT_BAD(json, want, ...) \
    mtu_assert_error(exo_model_config_parse(json, PATH, &(exo_model_config){0}), want, PATH, __VA_ARGS__)

/* ------------------------------------------------------------------ gpt_oss, glm4_moe */

#define MOE EXO_TEST_DATA "/moe-tiny"

START_TEST(gpt_oss_fixture) {
    exo_model_config c = load(MOE "/gpt_oss");
    ck_assert_int_eq(c.arch, EXO_ARCH_GPT_OSS);
    ck_assert_uint_eq(c.n_experts, 8);
    ck_assert_uint_eq(c.n_experts_per_tok, 2);
    ck_assert_uint_eq(c.moe_intermediate_size, 48);
    ck_assert_int_eq(c.moe_rule, EXO_MOE_RULE_TOPK_SOFTMAX);
    ck_assert(c.moe_bias && c.attention_sinks && !c.norm_topk_prob);
    ck_assert(c.attention_bias && c.attention_out_bias); /* o_proj too */
    ck_assert_int_eq(c.expert_activation, EXO_ACT_SWIGLU_CLAMP);
    ck_assert_float_eq_tol(c.swiglu_alpha, 1.702f, 1e-7f);
    ck_assert_float_eq(c.swiglu_limit, 7.0f);
    for (uint32_t l = 0; l < 3; l++) ck_assert(exo_layer_is_moe(&c, l));
    /* layer_types: sliding, full, sliding with sliding_window 8 */
    ck_assert_uint_eq(exo_layer_window(&c, 0), 8);
    ck_assert_uint_eq(exo_layer_window(&c, 1), 0);
    ck_assert_uint_eq(exo_layer_window(&c, 2), 8);
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_YARN);
    ck_assert(!c.yarn_truncate);
    ck_assert_double_eq(c.rope_factor, 4.0);
    ck_assert_double_eq(c.rope_theta, 150000.0);
    ck_assert_uint_eq(c.rope_original_max_position, 128);
}
END_TEST

/* GptOssConfig's defaults: without rope parameters yarn factor 32 (truncate false), layer_types
 * alternating from sliding, sliding_window 128; the classic dialect as the hub writes it. */
START_TEST(gpt_oss_default_rope_and_windows) {
    exo_model_config c = parse("{\"model_type\":\"gpt_oss\",\"hidden_size\":64,\"intermediate_size\":32,"
                               "\"num_hidden_layers\":4,\"num_attention_heads\":8,\"vocab_size\":8,"
                               "\"num_local_experts\":16,\"swiglu_limit\":5.5,\"attention_bias\":false}");
    ck_assert_uint_eq(c.n_experts, 16);
    ck_assert_uint_eq(c.n_experts_per_tok, 4);
    ck_assert_uint_eq(c.head_dim, 64);
    ck_assert_uint_eq(c.n_kv_heads, 8);
    ck_assert_float_eq(c.swiglu_limit, 5.5f);
    ck_assert(!c.attention_bias && !c.attention_out_bias);
    ck_assert_uint_eq(exo_layer_window(&c, 0), 128);
    ck_assert_uint_eq(exo_layer_window(&c, 1), 0);
    ck_assert_uint_eq(exo_layer_window(&c, 2), 128);
    ck_assert_uint_eq(exo_layer_window(&c, 3), 0);
    ck_assert_int_eq(c.rope_scaling, EXO_ROPE_SCALING_YARN);
    ck_assert_double_eq(c.rope_factor, 32.0);
    ck_assert_uint_eq(c.rope_original_max_position, 4096);
    ck_assert(!c.yarn_truncate);
    ck_assert_double_eq(c.rope_theta, 150000.0);
    /* The classic dialect as the hub's gpt-oss configs write it. */
    c = parse("{\"model_type\":\"gpt_oss\",\"hidden_size\":64,\"intermediate_size\":32,\"num_hidden_layers\":2,"
              "\"num_attention_heads\":8,\"vocab_size\":8,\"num_local_experts\":4,\"rope_theta\":150000,\"rope_scaling\":{\"rope_type\":"
              "\"yarn\",\"factor\":32.0,\"beta_fast\":32.0,\"beta_slow\":1.0,\"truncate\":false,"
              "\"original_max_position_embeddings\":4096},\"sliding_window\":null,"
              "\"layer_types\":[\"sliding_attention\",\"full_attention\"]}");
    ck_assert(!c.yarn_truncate);
    ck_assert_double_eq(c.rope_factor, 32.0);
    ck_assert_uint_eq(exo_layer_window(&c, 0), 0); /* no window at all */
}
END_TEST

START_TEST(glm4_moe_fixture) {
    exo_model_config c = load(MOE "/glm4_moe");
    ck_assert_int_eq(c.arch, EXO_ARCH_GLM4_MOE);
    ck_assert_uint_eq(c.n_experts, 8);
    ck_assert_uint_eq(c.n_experts_per_tok, 2);
    ck_assert_uint_eq(c.moe_intermediate_size, 48);
    ck_assert_uint_eq(c.intermediate_size, 128);
    ck_assert_uint_eq(c.n_shared_experts, 1);
    ck_assert_int_eq(c.moe_rule, EXO_MOE_RULE_SIGMOID_BIAS);
    ck_assert(c.norm_topk_prob && !c.moe_bias && !c.attention_sinks);
    ck_assert_float_eq(c.routed_scaling_factor, 2.5f);
    ck_assert(!exo_layer_is_moe(&c, 0) && exo_layer_is_moe(&c, 1) && exo_layer_is_moe(&c, 2));
    ck_assert(c.qk_norm);
    ck_assert(c.attention_bias && !c.attention_out_bias); /* q/k/v only */
    ck_assert_float_eq(c.partial_rotary_factor, 0.5f);
    ck_assert_uint_eq(exo_rope_n_rot(&c), 8);
    ck_assert_double_eq(c.rope_theta, 1e6);
    ck_assert_uint_eq(exo_layer_window(&c, 1), 0);
}
END_TEST

/* Both dialects give the same facts; Glm4MoeConfig's partial_rotary_factor defaults to 0.5. */
START_TEST(glm4_moe_dialects_and_defaults) {
    const char *base = "{\"model_type\":\"glm4_moe\",\"hidden_size\":64,\"intermediate_size\":128,"
                       "\"num_hidden_layers\":3,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,"
                       "\"vocab_size\":8,\"n_routed_experts\":16,\"moe_intermediate_size\":32,";
    char json[1024];
    snprintf(json, sizeof json, "%s\"partial_rotary_factor\":0.25,\"rope_theta\":500000}", base);
    exo_model_config a = parse(json);
    snprintf(json, sizeof json, "%s\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000,"
             "\"partial_rotary_factor\":0.25}}", base);
    exo_model_config b = parse(json);
    ck_assert_float_eq(a.partial_rotary_factor, 0.25f);
    ck_assert_float_eq(b.partial_rotary_factor, 0.25f);
    ck_assert_double_eq(a.rope_theta, b.rope_theta);
    snprintf(json, sizeof json, "%s\"n_shared_experts\":0,\"first_k_dense_replace\":0,\"n_group\":4,"
             "\"topk_group\":4,\"num_nextn_predict_layers\":1}", base);
    exo_model_config c = parse(json);
    ck_assert_float_eq(c.partial_rotary_factor, 0.5f);
    ck_assert_uint_eq(c.n_experts, 16);
    ck_assert_uint_eq(c.n_experts_per_tok, 8);
    ck_assert_uint_eq(c.moe_intermediate_size, 32);
    ck_assert_uint_eq(c.n_shared_experts, 0);
    ck_assert(exo_layer_is_moe(&c, 0));
    ck_assert(!c.qk_norm && !c.attention_bias);
    ck_assert(c.norm_topk_prob);
    ck_assert_float_eq(c.routed_scaling_factor, 1.0f);
}
END_TEST

START_TEST(moe_config_errors) {
#define GLM "{\"model_type\":\"glm4_moe\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":3," \
            "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":8," \
            "\"moe_intermediate_size\":32,"
#define OSS "{\"model_type\":\"gpt_oss\",\"hidden_size\":64,\"intermediate_size\":32,\"num_hidden_layers\":2," \
            "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":8,"
    /* Group-limited routing would change the selection: refused rather than mis-routed. */
    EXPECT_BAD(GLM "\"n_routed_experts\":16,\"n_group\":4,\"topk_group\":2}", EXO_ERR_UNSUPPORTED, "'n_group' = 4",
               "'topk_group' = 2", "group-limited");
    EXPECT_BAD(GLM "\"n_routed_experts\":10,\"n_group\":4,\"topk_group\":4}", EXO_ERR_FORMAT, "'n_group' = 4",
               "does not divide");
    EXPECT_BAD(GLM "\"n_routed_experts\":4,\"num_experts_per_tok\":5}", EXO_ERR_FORMAT, "'num_experts_per_tok' = 5",
               "exceeds the 4 experts");
    EXPECT_BAD(GLM "\"n_routed_experts\":5000}", EXO_ERR_FORMAT, "'n_routed_experts'", "absurd");
    EXPECT_BAD(GLM "\"n_routed_experts\":8,\"n_shared_experts\":100}", EXO_ERR_FORMAT, "'n_shared_experts' = 100", "absurd");
    EXPECT_BAD(GLM "\"n_routed_experts\":8,\"n_shared_experts\":-1}", EXO_ERR_FORMAT, "'n_shared_experts'", "positive integer");
    EXPECT_BAD(GLM "\"n_routed_experts\":8,\"routed_scaling_factor\":0}", EXO_ERR_FORMAT, "'routed_scaling_factor'", "positive");
    EXPECT_BAD(GLM "\"n_routed_experts\":8,\"norm_topk_prob\":1}", EXO_ERR_FORMAT, "'norm_topk_prob'", "true or false");
    EXPECT_BAD(GLM "\"n_routed_experts\":8,\"first_k_dense_replace\":\"one\"}", EXO_ERR_FORMAT, "'first_k_dense_replace'");
    EXPECT_BAD(GLM "\"use_qk_norm\":\"yes\"}", EXO_ERR_FORMAT, "'use_qk_norm'");
    EXPECT_BAD(OSS "\"num_local_experts\":2048}", EXO_ERR_FORMAT, "'num_local_experts'", "absurd");
    EXPECT_BAD(OSS "\"num_local_experts\":4,\"num_experts_per_tok\":8}", EXO_ERR_FORMAT,
               "'num_experts_per_tok' = 8", "exceeds the 4 experts");
    EXPECT_BAD(OSS "\"num_local_experts\":0}", EXO_ERR_FORMAT, "'num_local_experts'", "positive integer");
    EXPECT_BAD(OSS "\"num_local_experts\":8,\"swiglu_limit\":-7}", EXO_ERR_FORMAT, "'swiglu_limit'", "positive");
    EXPECT_BAD(OSS "\"num_local_experts\":8,\"layer_types\":[\"sliding_attention\"]}", EXO_ERR_FORMAT, "'layer_types'", "one type per layer");
    EXPECT_BAD(OSS "\"num_local_experts\":8,\"layer_types\":[\"sliding_attention\",\"chunked_attention\"]}", EXO_ERR_UNSUPPORTED,
               "'layer_types'[1]", "unknown layer type");
    EXPECT_BAD(OSS "\"num_local_experts\":8,\"sliding_window\":-1}", EXO_ERR_FORMAT, "'sliding_window'");
    /* The hub's own gpt-oss checkpoints are MXFP4: refused with the reason. */
    EXPECT_BAD(OSS "\"num_local_experts\":8,\"quantization_config\":{\"quant_method\":\"mxfp4\"}}", EXO_ERR_UNSUPPORTED,
               "'quantization_config.quant_method' = 'mxfp4'", "MLX affine");
#undef GLM
#undef OSS
}
END_TEST

/* The expert count under every name transformers reads it by: the keys 4.x and 5.x write, and
 * the aliases each config class's attribute_map adds (5.x: Qwen3MoeConfig, MixtralConfig,
 * GptOssConfig num_experts -> num_local_experts; Glm4MoeConfig num_local_experts ->
 * n_routed_experts). Each alias alone gives the same config as the canonical key. */
START_TEST(moe_expert_count_aliases) {
    static const struct {
        const char *head; /* the config without its expert count */
        const char *keys[2];
    } archs[] = {
        {"{\"model_type\":\"qwen3_moe\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":8,\"moe_intermediate_size\":32,\"num_experts_per_tok\":3,",
         {"num_experts", "num_local_experts"}},
        {"{\"model_type\":\"mixtral\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":8,\"num_experts_per_tok\":3,",
         {"num_local_experts", "num_experts"}},
        {"{\"model_type\":\"gpt_oss\",\"hidden_size\":64,\"intermediate_size\":32,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":8,\"num_experts_per_tok\":3,",
         {"num_local_experts", "num_experts"}},
        {"{\"model_type\":\"glm4_moe\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":8,\"moe_intermediate_size\":32,\"num_experts_per_tok\":3,",
         {"n_routed_experts", "num_local_experts"}},
    };
    char json[1024], want[160];
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        for (int k = 0; k < 2; k++) {
            snprintf(json, sizeof json, "%s\"%s\":12}", archs[i].head, archs[i].keys[k]);
            exo_model_config c = parse(json);
            ck_assert_msg(c.n_experts == 12, "%s via '%s': %u experts", c.model_type, archs[i].keys[k], c.n_experts);
            ck_assert_uint_eq(c.n_experts_per_tok, 3);
            ck_assert(exo_layer_is_moe(&c, 1));
        }
        /* both, agreeing: accepted; disagreeing: an error naming both */
        snprintf(json, sizeof json, "%s\"%s\":12,\"%s\":12}", archs[i].head, archs[i].keys[0], archs[i].keys[1]);
        ck_assert_uint_eq(parse(json).n_experts, 12);
        snprintf(json, sizeof json, "%s\"%s\":12,\"%s\":128}", archs[i].head, archs[i].keys[0], archs[i].keys[1]);
        EXPECT_BAD(json, EXO_ERR_FORMAT, "disagree", archs[i].keys[0], archs[i].keys[1]);
        /* neither: an error naming the key and its alias, not the class default (128 or 8) */
        snprintf(json, sizeof json, "%s\"rms_norm_eps\":1e-6}", archs[i].head);
        snprintf(want, sizeof want, "field '%s'", archs[i].keys[0]);
        EXPECT_BAD(json, EXO_ERR_FORMAT, want, archs[i].keys[1], "missing");
        /* an alias is checked like the key itself */
        snprintf(json, sizeof json, "%s\"%s\":2048}", archs[i].head, archs[i].keys[1]);
        EXPECT_BAD(json, EXO_ERR_FORMAT, archs[i].keys[1], "absurd");
        snprintf(json, sizeof json, "%s\"%s\":\"12\"}", archs[i].head, archs[i].keys[1]);
        EXPECT_BAD(json, EXO_ERR_FORMAT, archs[i].keys[1], "positive integer");
    }
    /* qwen3_moe: 0 experts (every layer dense) under either name */
    snprintf(json, sizeof json, "%s\"num_local_experts\":0}", archs[0].head);
    exo_model_config c = parse(json);
    ck_assert(c.n_experts == 0 && !exo_layer_is_moe(&c, 0) && !exo_layer_is_moe(&c, 1));
    snprintf(json, sizeof json, "%s\"num_local_experts\":0}", archs[1].head);
    EXPECT_BAD(json, EXO_ERR_FORMAT, "'num_local_experts'", "positive integer");
}
END_TEST

/* qwen3_moe's two dialects, whole: the hub's (Qwen3-30B-A3B: num_experts, top-level rope_theta)
 * and transformers 5.x's save (num_local_experts, rope_parameters) give the same config. */
START_TEST(qwen3_moe_dialects) {
    const char *common = "{\"model_type\":\"qwen3_moe\",\"hidden_size\":64,\"intermediate_size\":96,"
                         "\"num_hidden_layers\":5,\"num_attention_heads\":4,\"num_key_value_heads\":1,\"head_dim\":32,"
                         "\"vocab_size\":600,\"moe_intermediate_size\":40,\"num_experts_per_tok\":3,"
                         "\"mlp_only_layers\":[1,3],\"norm_topk_prob\":false,";
    char json[1024];
    snprintf(json, sizeof json, "%s\"num_experts\":12,\"rope_theta\":1000000.0}", common);
    exo_model_config a = parse(json);
    snprintf(json, sizeof json, "%s\"num_local_experts\":12,\"rope_parameters\":{\"rope_theta\":1000000.0,"
             "\"rope_type\":\"default\"}}", common);
    exo_model_config b = parse(json);
    ck_assert_uint_eq(a.n_experts, 12);
    ck_assert_mem_eq(&a, &b, sizeof a);
    ck_assert(exo_layer_is_moe(&b, 0) && !exo_layer_is_moe(&b, 1) && exo_layer_is_moe(&b, 2));
    ck_assert_double_eq(b.rope_theta, 1e6);
    /* moe_intermediate_size fixes the experts' shapes: required, not the class default 768 */
    EXPECT_BAD("{\"model_type\":\"qwen3_moe\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":8,\"num_experts\":12}",
               EXO_ERR_FORMAT, "'moe_intermediate_size'", "missing");
    EXPECT_BAD("{\"model_type\":\"glm4_moe\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
               "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"vocab_size\":8,\"n_routed_experts\":12}",
               EXO_ERR_FORMAT, "'moe_intermediate_size'", "missing");
}
END_TEST

START_TEST(not_json_or_not_object) {
    EXPECT_BAD("{\"model_type\": \"llama\",", EXO_ERR_FORMAT, "not valid JSON");
    EXPECT_BAD("[1]", EXO_ERR_FORMAT, "not a JSON object");
    EXPECT_BAD("{\"model_type\":\"llama\"} extra", EXO_ERR_FORMAT, "not valid JSON");
}
END_TEST

START_TEST(missing_required_field) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"intermediate_size\":8,\"num_hidden_layers\":1,"
               "\"num_attention_heads\":1,\"vocab_size\":8}", EXO_ERR_FORMAT, "'hidden_size'",
               "missing");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":1}", EXO_ERR_FORMAT,
               "'vocab_size'", "missing");
}
END_TEST

START_TEST(non_positive_or_non_integer_field) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":-64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'hidden_size'", "positive integer");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1.5,\"num_attention_heads\":1,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'num_hidden_layers'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'hidden_size'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":0,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'num_attention_heads'");
}
END_TEST

START_TEST(absurd_sizes) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":2097152,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'hidden_size'", "absurd");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":5000,\"num_attention_heads\":1,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'num_hidden_layers'", "absurd");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":33554432}",
               EXO_ERR_FORMAT, "'vocab_size'", "absurd");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":1e300}",
               EXO_ERR_FORMAT, "'vocab_size'");
}
END_TEST

START_TEST(heads_do_not_divide) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"num_key_value_heads\":3,"
               "\"vocab_size\":8}", EXO_ERR_FORMAT, "'num_key_value_heads'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"num_key_value_heads\":8,"
               "\"vocab_size\":8}", EXO_ERR_FORMAT, "'num_key_value_heads'");
    EXPECT_BAD("{\"model_type\":\"mistral\",\"hidden_size\":60,\"intermediate_size\":8,"
               "\"num_hidden_layers\":1,\"num_attention_heads\":8,\"vocab_size\":8}",
               EXO_ERR_FORMAT, "'hidden_size'", "multiple");
}
END_TEST

START_TEST(unknown_architecture) {
    EXPECT_BAD("{\"model_type\":\"gpt2\"," MIN_FIELDS "}", EXO_ERR_UNSUPPORTED, "'model_type'",
               "gpt2");
    EXPECT_BAD("{\"architectures\":[\"GPT2LMHeadModel\"]," MIN_FIELDS "}", EXO_ERR_UNSUPPORTED,
               "'architectures'", "GPT2LMHeadModel");
    EXPECT_BAD("{" MIN_FIELDS "}", EXO_ERR_FORMAT, "'model_type'", "missing");
}
END_TEST

START_TEST(unknown_rope_type) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"longrope\","
               "\"short_factor\":[1],\"long_factor\":[1]}," MIN_FIELDS "}",
               EXO_ERR_UNSUPPORTED, "'rope_scaling.type'", "longrope");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_parameters\":{\"rope_type\":\"su\"}," MIN_FIELDS "}",
               EXO_ERR_UNSUPPORTED, "'rope_parameters.rope_type'", "su");
}
END_TEST

START_TEST(rope_parameters_incomplete_or_wrong) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_parameters\":{\"rope_type\":\"llama3\","
               "\"factor\":8,\"high_freq_factor\":4}," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rope_parameters.low_freq_factor'", "missing");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\"}," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rope_scaling.factor'", "missing");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\",\"factor\":0},"
               MIN_FIELDS "}", EXO_ERR_FORMAT, "'rope_scaling.factor'", "positive");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_theta\":\"big\"," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rope_theta'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_scaling\":[1]," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rope_scaling'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"partial_rotary_factor\":1.5," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'partial_rotary_factor'");
    /* head_dim 128: 5 rotary dims (odd), then 0. */
    EXPECT_BAD("{\"model_type\":\"llama\",\"partial_rotary_factor\":0.0390625," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'partial_rotary_factor'", "even");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rope_parameters\":{\"partial_rotary_factor\":0.001}," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rope_parameters.partial_rotary_factor'", "even");
}
END_TEST

START_TEST(wrongly_typed_fields) {
    EXPECT_BAD("{\"model_type\":\"llama\",\"tie_word_embeddings\":\"yes\"," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'tie_word_embeddings'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rms_norm_eps\":\"1e-5\"," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rms_norm_eps'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"rms_norm_eps\":-1," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'rms_norm_eps'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"eos_token_id\":[1,\"2\"]," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'eos_token_id'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"eos_token_id\":[1,2,3,4,5,6,7,8,9]," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'eos_token_id'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"bos_token_id\":-3," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'bos_token_id'");
    EXPECT_BAD("{\"model_type\":\"llama\",\"dtype\":\"int8\"," MIN_FIELDS "}",
               EXO_ERR_UNSUPPORTED, "'dtype'", "int8");
    EXPECT_BAD("{\"model_type\":\"llama\",\"hidden_act\":\"gelu\"," MIN_FIELDS "}",
               EXO_ERR_UNSUPPORTED, "'hidden_act'", "gelu");
    EXPECT_BAD("{\"model_type\":\"llama\",\"head_dim\":15," MIN_FIELDS "}",
               EXO_ERR_FORMAT, "'head_dim'", "even");
}
END_TEST

START_TEST(load_names_the_file) {
    exo_model_config c;
    mtu_assert_error(exo_model_config_load("/nonexistent-dir", &c), EXO_ERR_IO,
                     "/nonexistent-dir/config.json");
    char *dir = mtu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s", mtu_path(dir, "config.json"));
    mtu_write(path, "{\"model_type\":", 14);
    mtu_assert_error(exo_model_config_load(dir, &c), EXO_ERR_FORMAT, path, "malformed JSON");
    const char *no_layers = "{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":8,"
                            "\"num_attention_heads\":1,\"vocab_size\":8}";
    mtu_write(path, no_layers, strlen(no_layers));
    mtu_assert_error(exo_model_config_load(dir, &c), EXO_ERR_FORMAT, path, "'num_hidden_layers'");
    mtu_rmdir(dir);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *real = tcase_create("fixtures");
    tcase_add_test(real, llama_fixture);
    tcase_add_test(real, reduced_precision_fixtures);
    tcase_add_test(real, llama3_fixture);
    tcase_add_test(real, mistral_fixture);
    tcase_add_test(real, qwen2_fixture);
    tcase_add_test(real, qwen3_fixture);
    tcase_add_test(real, phi3_fixture);
    tcase_add_test(real, gemma_fixture);
    tcase_add_test(real, indexed_model_config);
    suite_add_tcase(s, real);
    TCase *dialects = tcase_create("dialects");
    tcase_add_test(dialects, classic_dialect_with_type_equals_rope_parameters);
    tcase_add_test(dialects, classic_dialect_with_rope_type_equals_rope_parameters);
    tcase_add_test(dialects, partial_rotary_factor_in_rope_parameters_or_top_level);
    tcase_add_test(dialects, yarn_classic_parameters);
    tcase_add_test(dialects, yarn_derived_values);
    tcase_add_test(dialects, phi3_accepts_only_default_rope);
    suite_add_tcase(s, dialects);
    TCase *defaults = tcase_create("defaults");
    tcase_add_test(defaults, llama_defaults);
    tcase_add_test(defaults, mistral_defaults);
    tcase_add_test(defaults, qwen2_defaults);
    tcase_add_test(defaults, qwen2_sliding_window_only_when_enabled);
    tcase_add_test(defaults, qwen3_defaults);
    tcase_add_test(defaults, gemma_defaults);
    tcase_add_test(defaults, gemma_gelu_means_tanh_approximation);
    tcase_add_test(defaults, phi3_defaults);
    tcase_add_test(defaults, llama_attention_bias_covers_output_projection);
    tcase_add_test(defaults, architectures_is_the_fallback);
    tcase_add_test(defaults, token_ids_and_legacy_dtype);
    suite_add_tcase(s, defaults);
    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, not_json_or_not_object);
    tcase_add_test(bad, missing_required_field);
    tcase_add_test(bad, non_positive_or_non_integer_field);
    tcase_add_test(bad, absurd_sizes);
    tcase_add_test(bad, heads_do_not_divide);
    tcase_add_test(bad, unknown_architecture);
    tcase_add_test(bad, unknown_rope_type);
    tcase_add_test(bad, rope_parameters_incomplete_or_wrong);
    tcase_add_test(bad, wrongly_typed_fields);
    tcase_add_test(bad, load_names_the_file);
    tcase_add_test(bad, moe_config_errors);
    tcase_add_test(defaults, moe_expert_count_aliases);
    tcase_add_test(dialects, qwen3_moe_dialects);
    tcase_add_test(defaults, gpt_oss_fixture);
    tcase_add_test(defaults, gpt_oss_default_rope_and_windows);
    tcase_add_test(defaults, glm4_moe_fixture);
    tcase_add_test(defaults, glm4_moe_dialects_and_defaults);
    suite_add_tcase(s, bad);
    return s;
}

MTU_MAIN(config_suite)
