/* Model directories: a single model.safetensors, or an index with shards mapped on first use;
 * an untrusted index is checked (paths inside the directory, shards present, claims true). */
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "model/safetensors.h"
#include "model_test_util.h"

#define HF EXO_TEST_DATA "/hf-tiny"
#define LICENSES EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"

static uint64_t file_size(const char *path) {
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* The shard file the index names for `tensor`, read with cJSON independently of the code. */
static char *index_shard_of(const char *dir, const char *tensor) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    const cJSON *file = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "weight_map"), tensor);
    ck_assert(cJSON_IsString(file));
    char *out = malloc(strlen(dir) + strlen(file->valuestring) + 2);
    sprintf(out, "%s/%s", dir, file->valuestring);
    cJSON_Delete(root);
    return out;
}

/* ------------------------------------------------------------------ good directories */

START_TEST(single_file_directory) {
    exo_weights *w;
    ck_assert_int_eq(exo_weights_open(HF "/qwen2", &w), EXO_OK);
    ck_assert(exo_weights_has(w, "model.layers.0.self_attn.q_proj.bias"));
    ck_assert(!exo_weights_has(w, "lm_head.weight")); /* qwen2 fixture ties embeddings */
    const exo_st_tensor *t;
    ck_assert_int_eq(exo_weights_get(w, "model.layers.0.self_attn.q_proj.bias", &t), EXO_OK);
    ck_assert_uint_eq(t->n_dims, 1);
    ck_assert_int_eq(t->shape[0], 64);
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), file_size(HF "/qwen2/model.safetensors"));
    exo_weights_close(w);
}
END_TEST

START_TEST(indexed_directory_maps_only_the_needed_shard) {
    exo_weights *w;
    ck_assert_int_eq(exo_weights_open(LICENSES, &w), EXO_OK);
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), 0);
    ck_assert(exo_weights_has(w, "model.embed_tokens.weight"));
    ck_assert(exo_weights_has(w, "model.layers.5.mlp.down_proj.weight"));
    ck_assert(!exo_weights_has(w, "model.layers.6.mlp.down_proj.weight"));
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), 0); /* has() maps nothing */

    const exo_st_tensor *t;
    ck_assert_int_eq(exo_weights_get(w, "model.embed_tokens.weight", &t), EXO_OK);
    ck_assert_int_eq(t->dtype, EXO_DTYPE_BF16);
    ck_assert_int_eq(t->shape[0], 4096);
    ck_assert_int_eq(t->shape[1], 320);
    char *first = index_shard_of(LICENSES, "model.embed_tokens.weight");
    ck_assert_str_eq(t->file, first);
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), file_size(first));

    /* A tensor of another shard maps that one too, and only it. */
    char *last = index_shard_of(LICENSES, "model.layers.5.mlp.down_proj.weight");
    ck_assert_str_ne(first, last);
    ck_assert_int_eq(exo_weights_get(w, "model.layers.5.mlp.down_proj.weight", &t), EXO_OK);
    ck_assert_int_eq(t->shape[0], 320);
    ck_assert_int_eq(t->shape[1], 768);
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), file_size(first) + file_size(last));
    /* Asking again maps nothing more. */
    ck_assert_int_eq(exo_weights_get(w, "model.embed_tokens.weight", &t), EXO_OK);
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), file_size(first) + file_size(last));
    free(first);
    free(last);
    exo_weights_close(w);
}
END_TEST

START_TEST(missing_tensor_is_not_found) {
    exo_weights *w;
    ck_assert_int_eq(exo_weights_open(LICENSES, &w), EXO_OK);
    const exo_st_tensor *t = (const exo_st_tensor *)1;
    mtu_assert_error(exo_weights_get(w, "model.layers.99.mlp.up_proj.weight", &t),
                     EXO_ERR_NOT_FOUND, LICENSES, "tensor 'model.layers.99.mlp.up_proj.weight'",
                     "not found");
    ck_assert_ptr_null(t);
    exo_weights_close(w);
    ck_assert_int_eq(exo_weights_open(HF "/llama", &w), EXO_OK);
    mtu_assert_error(exo_weights_get(w, "nope", &t), EXO_ERR_NOT_FOUND, HF "/llama",
                     "tensor 'nope'", "not found");
    exo_weights_close(w);
}
END_TEST

/* ------------------------------------------------------------------ bad directories */

static const char *GOOD_SHARD = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

static void write_index(const char *dir, const char *weight_map_json) {
    char text[4096];
    snprintf(text, sizeof text, "{\"metadata\":{},\"weight_map\":%s}", weight_map_json);
    mtu_write(mtu_path(dir, "model.safetensors.index.json"), text, strlen(text));
}

START_TEST(directory_without_weights) {
    char *dir = mtu_tmpdir();
    exo_weights *w = (exo_weights *)1;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_IO, dir, "no weights found");
    ck_assert_ptr_null(w);
    mtu_assert_error(exo_weights_open("/nonexistent-model-dir", &w), EXO_ERR_IO,
                     "/nonexistent-model-dir");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(index_with_absolute_path) {
    char *dir = mtu_tmpdir();
    write_index(dir, "{\"a\":\"/etc/passwd\"}");
    exo_weights *w;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, dir, "tensor 'a'", "/etc/passwd",
                     "outside");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(index_with_parent_path) {
    char *dir = mtu_tmpdir();
    write_index(dir, "{\"a\":\"../other/model.safetensors\"}");
    exo_weights *w;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, dir, "tensor 'a'",
                     "../other/model.safetensors", "outside");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(index_with_symlink_leaving_the_directory) {
    char *dir = mtu_tmpdir();
    char *outside = mtu_tmpdir();
    char target[4096];
    snprintf(target, sizeof target, "%s", mtu_path(outside, "s.safetensors"));
    mtu_write_st(target, GOOD_SHARD, 8);
    ck_assert_int_eq(symlink(target, mtu_path(dir, "link.safetensors")), 0);
    write_index(dir, "{\"a\":\"link.safetensors\"}");
    exo_weights *w;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, dir, "link.safetensors",
                     "outside");
    mtu_rmdir(dir);
    mtu_rmdir(outside);
}
END_TEST

START_TEST(index_with_missing_shard) {
    char *dir = mtu_tmpdir();
    mtu_write_st(mtu_path(dir, "one.safetensors"), GOOD_SHARD, 8);
    write_index(dir, "{\"a\":\"one.safetensors\",\"b\":\"two.safetensors\"}");
    exo_weights *w;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_IO, dir, "two.safetensors", "missing");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(index_claim_is_checked) {
    char *dir = mtu_tmpdir();
    mtu_write_st(mtu_path(dir, "one.safetensors"), GOOD_SHARD, 8);
    write_index(dir, "{\"a\":\"one.safetensors\",\"b\":\"one.safetensors\"}");
    exo_weights *w;
    ck_assert_int_eq(exo_weights_open(dir, &w), EXO_OK);
    ck_assert(exo_weights_has(w, "b")); /* the index says so; has() does not map to check */
    const exo_st_tensor *t;
    ck_assert_int_eq(exo_weights_get(w, "a", &t), EXO_OK);
    mtu_assert_error(exo_weights_get(w, "b", &t), EXO_ERR_FORMAT,
                     "model.safetensors.index.json", "tensor 'b'", "one.safetensors");
    exo_weights_close(w);
    mtu_rmdir(dir);
}
END_TEST

START_TEST(corrupt_shard_is_parsed_only_when_needed) {
    char *dir = mtu_tmpdir();
    mtu_write_st(mtu_path(dir, "good.safetensors"), GOOD_SHARD, 8);
    mtu_write(mtu_path(dir, "bad.safetensors"), "garbage!garbage!", 16);
    write_index(dir, "{\"a\":\"good.safetensors\",\"z\":\"bad.safetensors\"}");
    exo_weights *w;
    ck_assert_int_eq(exo_weights_open(dir, &w), EXO_OK);
    const exo_st_tensor *t;
    ck_assert_int_eq(exo_weights_get(w, "a", &t), EXO_OK);
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), 8 + strlen(GOOD_SHARD) + 8);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", mtu_path(dir, "bad.safetensors"));
    exo_status st = exo_weights_get(w, "z", &t);
    ck_assert(st == EXO_ERR_FORMAT || st == EXO_ERR_IO);
    ck_assert_msg(strstr(exo_error_message(), bad), "%s", exo_error_message());
    ck_assert_uint_eq(exo_weights_mapped_bytes(w), 8 + strlen(GOOD_SHARD) + 8);
    exo_weights_close(w);
    mtu_rmdir(dir);
}
END_TEST

START_TEST(index_not_json_or_without_weight_map) {
    char *dir = mtu_tmpdir();
    const char *index = mtu_path(dir, "model.safetensors.index.json");
    char index_path[4096];
    snprintf(index_path, sizeof index_path, "%s", index);
    mtu_write(index_path, "{\"weight_map\": {", 16);
    exo_weights *w;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, index_path, "malformed JSON");
    mtu_write(index_path, "{\"metadata\": {}}", 16);
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, index_path, "weight_map");
    write_index(dir, "{\"a\": 3}");
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, index_path, "tensor 'a'");
    write_index(dir, "{\"a\":\"x.safetensors\",\"a\":\"x.safetensors\"}");
    mtu_write_st(mtu_path(dir, "x.safetensors"), GOOD_SHARD, 8);
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, index_path, "tensor 'a'", "twice");
    mtu_rmdir(dir);
}
END_TEST

static Suite *weights_suite(void) {
    Suite *s = suite_create("weights");
    TCase *good = tcase_create("directories");
    tcase_add_test(good, single_file_directory);
    tcase_add_test(good, indexed_directory_maps_only_the_needed_shard);
    tcase_add_test(good, missing_tensor_is_not_found);
    suite_add_tcase(s, good);
    TCase *bad = tcase_create("bad_directories");
    tcase_add_test(bad, directory_without_weights);
    tcase_add_test(bad, index_with_absolute_path);
    tcase_add_test(bad, index_with_parent_path);
    tcase_add_test(bad, index_with_symlink_leaving_the_directory);
    tcase_add_test(bad, index_with_missing_shard);
    tcase_add_test(bad, index_claim_is_checked);
    tcase_add_test(bad, corrupt_shard_is_parsed_only_when_needed);
    tcase_add_test(bad, index_not_json_or_without_weight_map);
    suite_add_tcase(s, bad);
    return s;
}

MTU_MAIN(weights_suite)
