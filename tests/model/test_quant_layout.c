/* MLX-quantized checkpoints: config.json's quantization (defaults, per-module overrides, false)
 * and every bad layout an error naming the tensor or field: wrong packed width, scales shape,
 * unsupported bits or group, a quantized module without a quantization config, U32 where a
 * float is expected. The models are copies of tests/data/mlx-tiny/llama-q4-g64 with one thing
 * changed. */
#include <cjson/cJSON.h>

#include "graph/builder.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model_test_util.h"

#define MLX EXO_TEST_DATA "/mlx-tiny"
#define PATH "some/model/config.json"

static char *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc(*n + 1);
    ck_assert_uint_eq(fread(buf, 1, *n, fp), *n);
    buf[*n] = 0;
    fclose(fp);
    return buf;
}

/* A copy of llama-q4-g64 whose config.json's "quantization" gets `key` = `value` (JSON; NULL
 * removes the quantization) and whose safetensors header has `from` replaced by `to` (same
 * length; NULL: unchanged). */
static char *model_copy(const char *key, const char *value, const char *from, const char *to) {
    char *dir = mtu_tmpdir();
    size_t n;
    char *cfg = slurp(MLX "/llama-q4-g64/config.json", &n);
    cJSON *root = cJSON_Parse(cfg);
    free(cfg);
    cJSON_DeleteItemFromObject(root, "quantization_config");
    if (!key) cJSON_DeleteItemFromObject(root, "quantization");
    else if (value) {
        cJSON *q = cJSON_GetObjectItem(root, "quantization");
        cJSON_DeleteItemFromObject(q, key);
        cJSON_AddItemToObject(q, key, cJSON_Parse(value));
    }
    char *text = cJSON_Print(root);
    mtu_write(mtu_path(dir, "config.json"), text, strlen(text));
    free(text);
    cJSON_Delete(root);
    char *st = slurp(MLX "/llama-q4-g64/model.safetensors", &n);
    if (from) {
        char *at = memmem(st, n, from, strlen(from));
        ck_assert_ptr_nonnull(at);
        memcpy(at, to, strlen(to));
    }
    mtu_write(mtu_path(dir, "model.safetensors"), st, n);
    free(st);
    return dir;
}

/* Loads the config and builds the whole graph; returns the status (the message is the thread's). */
static exo_status build(const char *dir) {
    exo_model_config c;
    exo_status st = exo_model_config_load(dir, &c);
    if (st) return st;
    exo_weights *w = NULL;
    st = exo_weights_open(dir, &w);
    ck_assert_msg(st == EXO_OK, "%s", exo_error_message());
    exo_graph_plan plan;
    exo_graph_ends ends = {.embeds = true, .head = true};
    st = exo_graph_plan_build(&c, w, dir, 0, c.n_layers, ends, 8, 64, &plan);
    if (st == EXO_OK) exo_graph_plan_free(&plan);
    exo_weights_close(w);
    return st;
}

START_TEST(fixture_builds_quantized) {
    exo_model_config c;
    ck_assert_int_eq(exo_model_config_load(MLX "/llama-q4-g64", &c), EXO_OK);
    exo_weights *w = NULL;
    ck_assert_int_eq(exo_weights_open(MLX "/llama-q4-g64", &w), EXO_OK);
    exo_graph_plan plan;
    exo_graph_ends ends = {.embeds = true, .head = true};
    ck_assert_int_eq(exo_graph_plan_build(&c, w, MLX "/llama-q4-g64", 0, 4, ends, 8, 64, &plan), EXO_OK);
    uint32_t quantized = 0, down_bf16 = 0;
    for (uint32_t i = 0; i < plan.n_tensors; i++) {
        const exo_tensor *t = &plan.tensors[i];
        if (t->dtype == EXO_DTYPE_MLX_AFFINE) {
            quantized++;
            ck_assert_uint_eq(t->q_bits, 4);
            ck_assert_uint_eq(t->q_group, 64);
            ck_assert_int_eq(plan.tensors[t->q_scales].dtype, EXO_DTYPE_BF16);
            ck_assert_int_eq(plan.tensors[t->q_scales].ne[0], t->ne[0] / 64);
        }
        if (strstr(t->name, "down_proj.weight")) down_bf16 += t->dtype == EXO_DTYPE_BF16;
    }
    /* embed_tokens, lm_head and 6 projections per layer; down_proj (160 wide) stays bf16. */
    ck_assert_uint_eq(quantized, 2 + 6 * 4);
    ck_assert_uint_eq(down_bf16, 4);
    /* A plugin of ABI 1.1 gets the tensors at the 1.0 stride, ids intact. */
    exo_graph g;
    ck_assert_int_eq(exo_graph_plan_view(&plan, NULL, EXO_MAKE_VERSION(1, 1), &g), EXO_OK);
    ck_assert_uint_eq(g.tensor_stride, EXO_TENSOR_SIZE_1_0);
    for (uint32_t i = 0; i < g.n_tensors; i++) ck_assert_uint_eq(exo_graph_tensor(&g, i)->id, i);
    ck_assert_int_eq(exo_graph_plan_view(&plan, NULL, EXO_ABI_VERSION, &g), EXO_OK);
    ck_assert_uint_eq(g.tensor_stride, sizeof(exo_tensor));
    exo_graph_plan_free(&plan);
    exo_weights_close(w);
}
END_TEST

START_TEST(overrides) {
    exo_model_config c;
    ck_assert_int_eq(exo_model_config_load(MLX "/llama-mixed-q4-g32", &c), EXO_OK);
    uint32_t bits, group;
    exo_quant_for(&c, "model.layers.0.self_attn.q_proj", &bits, &group);
    ck_assert_uint_eq(bits, 8);
    ck_assert_uint_eq(group, 64);
    exo_quant_for(&c, "model.layers.1.mlp.down_proj", &bits, &group);
    ck_assert_uint_eq(bits, 6);
    ck_assert_uint_eq(group, 32);
    exo_quant_for(&c, "model.layers.1.self_attn.q_proj", &bits, &group);
    ck_assert_uint_eq(bits, 4);
    exo_quant_for(&c, "model.embed_tokens", &bits, &group);
    ck_assert_uint_eq(bits, 4);
    ck_assert_int_eq(exo_model_config_parse("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": "
                                            "128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                                            "\"vocab_size\": 32, \"quantization\": {\"group_size\": 64, \"bits\": 4, "
                                            "\"lm_head\": false, \"model.layers.1.mlp.up_proj\": {\"bits\": 8}}}",
                                            PATH, &c),
                     EXO_OK);
    exo_quant_for(&c, "lm_head", &bits, &group);
    ck_assert_uint_eq(bits, 0);
    exo_quant_for(&c, "model.layers.1.mlp.up_proj", &bits, &group);
    ck_assert_uint_eq(bits, 8);
    ck_assert_uint_eq(group, 64);
    exo_model_config none;
    ck_assert_int_eq(exo_model_config_load(EXO_TEST_DATA "/hf-tiny/llama", &none), EXO_OK);
    ck_assert_uint_eq(none.quant.bits, 0);
}
END_TEST

START_TEST(bad_config) {
    char *dir = model_copy("bits", "7", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_UNSUPPORTED, "quantization.bits' = 7", "2, 3, 4, 5, 6, 8");
    mtu_rmdir(dir);
    dir = model_copy("group_size", "16", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_UNSUPPORTED, "quantization.group_size' = 16");
    mtu_rmdir(dir);
    dir = model_copy("mode", "\"mxfp4\"", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_UNSUPPORTED, "quantization.mode' = 'mxfp4'");
    mtu_rmdir(dir);
    dir = model_copy("model.layers.2.mlp.up_proj", "{\"bits\": 9}", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_UNSUPPORTED, "quantization.model.layers.2.mlp.up_proj.bits' = 9");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(bad_layouts) {
    /* The config says 8 bits: the 4-bit words are half the width it implies. */
    char *dir = model_copy("bits", "8", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_FORMAT, "tensor 'model.embed_tokens.weight' has shape [512, 8]",
                     "needs [512, 16] U32 words");
    mtu_rmdir(dir);
    /* Group 32: the scales (one per 64) have half the columns it implies. */
    dir = model_copy("group_size", "32", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_FORMAT, "tensor 'model.embed_tokens.scales' has shape [512, 1]",
                     "needs [512, 2]");
    mtu_rmdir(dir);
    /* No quantization in config.json, yet the scales exist. */
    dir = model_copy(NULL, NULL, NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_FORMAT, "'model.embed_tokens.scales' exists but config.json has no "
                                                 "'quantization'");
    mtu_rmdir(dir);
    /* An override says false, yet the scales exist. */
    dir = model_copy("model.layers.0.self_attn.k_proj", "false", NULL, NULL);
    mtu_assert_error(build(dir), EXO_ERR_FORMAT, "'model.layers.0.self_attn.k_proj.scales' exists",
                     "override false");
    mtu_rmdir(dir);
    /* q_proj of layer 0 loses its scales (renamed): its U32 weight is where a float is expected. */
    dir = model_copy("bits", "4", "model.layers.0.self_attn.q_proj.scales", "model.layers.0.self_attn.q_proj.scalez");
    mtu_assert_error(build(dir), EXO_ERR_FORMAT, "tensor 'model.layers.0.self_attn.q_proj.weight' has dtype U32",
                     "weights must be F32, F16 or BF16");
    mtu_rmdir(dir);
    /* The biases of k_proj renamed: missing, named. */
    dir = model_copy("bits", "4", "model.layers.0.self_attn.k_proj.biases", "model.layers.0.self_attn.k_proj.biasez");
    mtu_assert_error(build(dir), EXO_ERR_NOT_FOUND, "'model.layers.0.self_attn.k_proj.biases' not found");
    mtu_rmdir(dir);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("quant_layout");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fixture_builds_quantized);
    tcase_add_test(tc, overrides);
    tcase_add_test(tc, bad_config);
    tcase_add_test(tc, bad_layouts);
    suite_add_tcase(s, tc);
    return s;
}

MTU_MAIN(suite)
