/* safetensors files: the fixtures open with the right tensors, and every malformed header is
 * an error naming the file and the tensor (never a crash or an out-of-bounds read). */
#include <cjson/cJSON.h>

#include "exo.h"
#include "model/safetensors.h"
#include "model_test_util.h"

#define HF EXO_TEST_DATA "/hf-tiny"

/* ------------------------------------------------------------------ fixtures */

/* Reads `name`'s bytes from `path` with stdio and the header parsed by cJSON: an oracle that
 * shares nothing with the code under test. */
static unsigned char *read_tensor_independently(const char *path, const char *name, size_t *n) {
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    unsigned char len8[8];
    ck_assert_uint_eq(fread(len8, 1, 8, fp), 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
    char *header = calloc(1, hl + 1);
    ck_assert_uint_eq(fread(header, 1, hl, fp), hl);
    cJSON *root = cJSON_Parse(header);
    ck_assert_ptr_nonnull(root);
    cJSON *offs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, name), "data_offsets");
    ck_assert_ptr_nonnull(offs);
    long begin = (long)cJSON_GetArrayItem(offs, 0)->valuedouble;
    long end = (long)cJSON_GetArrayItem(offs, 1)->valuedouble;
    *n = (size_t)(end - begin);
    unsigned char *buf = malloc(*n);
    fseek(fp, (long)(8 + hl) + begin, SEEK_SET);
    ck_assert_uint_eq(fread(buf, 1, *n, fp), *n);
    fclose(fp);
    cJSON_Delete(root);
    free(header);
    return buf;
}

START_TEST(llama_fixture_holds_its_tensors) {
    exo_st_file *f;
    ck_assert_int_eq(exo_st_file_open(HF "/llama/model.safetensors", &f), EXO_OK);
    /* 4 layers x 9 tensors (4 attention projections, 3 MLP, 2 norms) + embed, norm, lm_head. */
    ck_assert_uint_eq(exo_st_file_count(f), 4 * 9 + 3);
    const exo_st_tensor *t = exo_st_file_find(f, "model.embed_tokens.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, EXO_DTYPE_F32);
    ck_assert_uint_eq(t->n_dims, 2);
    ck_assert_int_eq(t->shape[0], 512);
    ck_assert_int_eq(t->shape[1], 64);
    ck_assert_uint_eq(t->nbytes, 512 * 64 * 4);
    ck_assert_str_eq(t->file, HF "/llama/model.safetensors");
    const exo_st_tensor *q = exo_st_file_find(f, "model.layers.3.self_attn.q_proj.weight");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(q->shape[0], 64);
    ck_assert_int_eq(q->shape[1], 64);
    const exo_st_tensor *k = exo_st_file_find(f, "model.layers.0.self_attn.k_proj.weight");
    ck_assert_int_eq(k->shape[0], 32); /* 2 KV heads x head_dim 16 */
    ck_assert_ptr_null(exo_st_file_find(f, "model.layers.4.self_attn.q_proj.weight"));
    /* Every tensor is reachable by index and by name. */
    for (uint32_t i = 0; i < exo_st_file_count(f); i++) {
        const exo_st_tensor *by_index = exo_st_file_tensor(f, i);
        ck_assert_ptr_eq(exo_st_file_find(f, by_index->name), by_index);
    }
    ck_assert_ptr_null(exo_st_file_tensor(f, exo_st_file_count(f)));
    exo_st_file_close(f);
}
END_TEST

START_TEST(tensor_data_matches_the_file_bytes) {
    const char *path = HF "/llama/model.safetensors";
    const char *name = "model.layers.2.mlp.down_proj.weight";
    exo_st_file *f;
    ck_assert_int_eq(exo_st_file_open(path, &f), EXO_OK);
    const exo_st_tensor *t = exo_st_file_find(f, name);
    size_t n;
    unsigned char *want = read_tensor_independently(path, name, &n);
    ck_assert_uint_eq(t->nbytes, n);
    ck_assert_int_eq(memcmp(t->data, want, n), 0);
    free(want);
    exo_st_file_close(f);
}
END_TEST

START_TEST(reduced_precision_fixtures_keep_their_dtype) {
    static const struct { const char *path; exo_dtype dtype; } cases[] = {
        {HF "/llama-bf16/model.safetensors", EXO_DTYPE_BF16},
        {HF "/llama-f16/model.safetensors", EXO_DTYPE_F16},
    };
    for (size_t c = 0; c < 2; c++) {
        exo_st_file *f;
        ck_assert_int_eq(exo_st_file_open(cases[c].path, &f), EXO_OK);
        const exo_st_tensor *t = exo_st_file_find(f, "model.embed_tokens.weight");
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->dtype, cases[c].dtype);
        ck_assert_uint_eq(t->nbytes, 512 * 64 * 2);
        ck_assert_uint_eq(exo_dtype_size(t->dtype), 2);
        exo_st_file_close(f);
    }
}
END_TEST

START_TEST(golden_file_holds_int32_ids) {
    exo_st_file *f;
    ck_assert_int_eq(exo_st_file_open(HF "/llama/golden.safetensors", &f), EXO_OK);
    const exo_st_tensor *ids = exo_st_file_find(f, "p0.ids");
    ck_assert_ptr_nonnull(ids);
    ck_assert_int_eq(ids->dtype, EXO_DTYPE_I32);
    ck_assert_uint_eq(ids->n_dims, 1);
    ck_assert_int_eq(((const int32_t *)ids->data)[0], 0); /* BOS first (fixtures README) */
    exo_st_file_close(f);
}
END_TEST

START_TEST(dtype_names_and_sizes) {
    ck_assert_str_eq(exo_dtype_name(EXO_DTYPE_BF16), "BF16");
    ck_assert_str_eq(exo_dtype_name(EXO_DTYPE_I32), "I32");
    ck_assert_uint_eq(exo_dtype_size(EXO_DTYPE_F32), 4);
    ck_assert_uint_eq(exo_dtype_size(EXO_DTYPE_Q8_0), 0);
    ck_assert_uint_eq(exo_dtype_size((exo_dtype)999), 0);
}
END_TEST

/* ------------------------------------------------------------------ hand-made good files */

START_TEST(metadata_is_ignored_and_padding_accepted) {
    char *dir = mtu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s", mtu_path(dir, "m.safetensors"));
    mtu_write_st(path, "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[16,16]},"
                       "\"scalar\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[16,20]}}    ",
                 20);
    exo_st_file *f;
    ck_assert_int_eq(exo_st_file_open(path, &f), EXO_OK);
    ck_assert_uint_eq(exo_st_file_count(f), 4);
    ck_assert_ptr_null(exo_st_file_find(f, "__metadata__"));
    const exo_st_tensor *b = exo_st_file_find(f, "b");
    ck_assert_uint_eq(((const unsigned char *)b->data)[0], 8);
    ck_assert_uint_eq(exo_st_file_find(f, "scalar")->n_dims, 0);
    ck_assert_uint_eq(exo_st_file_find(f, "empty")->nbytes, 0);
    ck_assert_uint_eq(exo_st_file_mapped_bytes(f), 8 + strlen(
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[16,16]},"
        "\"scalar\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[16,20]}}    ") + 20);
    exo_st_file_close(f);
    mtu_rmdir(dir);
}
END_TEST

/* The public reader hands out typed data only where it is aligned to its elements: a header not
 * padded to 8 bytes leaves an F32 tensor at an odd address, which is refused, not returned. */
START_TEST(public_reader_refuses_misaligned_tensor_data) {
    char *dir = mtu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s", mtu_path(dir, "odd.safetensors"));
    const char *header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    ck_assert_uint_ne((8 + strlen(header)) % 4, 0); /* the premise: data lands misaligned */
    mtu_write_st(path, header, 4);
    exo_tensor_file *f = NULL;
    ck_assert_int_eq(exo_tensor_file_open(path, &f), EXO_OK);
    exo_tensor_view v;
    mtu_assert_error(exo_tensor_file_get(f, "a", &v), EXO_ERR_FORMAT, "'a'", "aligned");
    exo_tensor_file_destroy(f);
    mtu_rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------------ malformed files */

/* Writes `header` (+ data_len bytes) to a temp file, opens it and checks the error names the
 * file and every given string. */
#define EXPECT_BAD_HEADER(header, data_len, want, ...)                                         \
    do {                                                                                       \
        char *dir_ = mtu_tmpdir();                                                             \
        char path_[4096];                                                                      \
        snprintf(path_, sizeof path_, "%s", mtu_path(dir_, "bad.safetensors"));                \
        mtu_write_st(path_, header, data_len);                                                 \
        exo_st_file *f_ = (exo_st_file *)1;                                                    \
        mtu_assert_error(exo_st_file_open(path_, &f_), want, path_, __VA_ARGS__);              \
        ck_assert_ptr_null(f_);                                                                \
        mtu_rmdir(dir_);                                                                       \
    } while (0)

#define T(name, dtype, shape, offs) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

START_TEST(file_shorter_than_8_bytes) {
    char *dir = mtu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s", mtu_path(dir, "short.safetensors"));
    mtu_write(path, "\x02\x00\x00", 3);
    exo_st_file *f;
    mtu_assert_error(exo_st_file_open(path, &f), EXO_ERR_IO, path, "shorter than");
    mtu_write(path, "", 0);
    mtu_assert_error(exo_st_file_open(path, &f), EXO_ERR_IO, path, "shorter than");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(missing_file) {
    exo_st_file *f;
    mtu_assert_error(exo_st_file_open("/nonexistent/x.safetensors", &f), EXO_ERR_IO,
                     "/nonexistent/x.safetensors", "cannot open");
}
END_TEST

START_TEST(header_length_past_end_of_file) {
    char *dir = mtu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s", mtu_path(dir, "trunc.safetensors"));
    mtu_write_st_raw(path, 1000, "{}", 0);
    exo_st_file *f;
    mtu_assert_error(exo_st_file_open(path, &f), EXO_ERR_IO, path, "past the end");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(header_length_absurd) {
    char *dir = mtu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s", mtu_path(dir, "huge.safetensors"));
    mtu_write_st_raw(path, UINT64_MAX - 3, "{}", 0);
    exo_st_file *f;
    mtu_assert_error(exo_st_file_open(path, &f), EXO_ERR_FORMAT, path, "absurd");
    mtu_write_st_raw(path, 200u * 1024 * 1024, "{}", 0);
    mtu_assert_error(exo_st_file_open(path, &f), EXO_ERR_FORMAT, path, "absurd");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(header_not_json) {
    EXPECT_BAD_HEADER("{\"a\": {\"dtype\": ", 0, EXO_ERR_FORMAT, "not valid JSON");
    EXPECT_BAD_HEADER("{\"a\":{}} trailing", 0, EXO_ERR_FORMAT, "trailing");
}
END_TEST

START_TEST(header_not_an_object) {
    EXPECT_BAD_HEADER("[1, 2, 3]", 0, EXO_ERR_FORMAT, "not a JSON object");
    EXPECT_BAD_HEADER("\"text\"", 0, EXO_ERR_FORMAT, "not a JSON object");
}
END_TEST

START_TEST(header_not_utf8) {
    EXPECT_BAD_HEADER("{\"bad\xff\xfe\":{}}", 0, EXO_ERR_FORMAT, "UTF-8");
    EXPECT_BAD_HEADER("{\"over\xc0\xaf\":{}}", 0, EXO_ERR_FORMAT, "UTF-8");
}
END_TEST

START_TEST(entry_not_an_object) {
    EXPECT_BAD_HEADER("{\"w\": 5}", 0, EXO_ERR_FORMAT, "tensor 'w'", "not a JSON object");
    EXPECT_BAD_HEADER("{\"w\": [0, 4]}", 0, EXO_ERR_FORMAT, "tensor 'w'", "not a JSON object");
}
END_TEST

START_TEST(unsupported_dtype_names_tensor_and_dtype) {
    EXPECT_BAD_HEADER("{" T("w", "F8_E4M3", "[4]", "[0,4]") "}", 4, EXO_ERR_UNSUPPORTED,
                      "tensor 'w'", "F8_E4M3");
    EXPECT_BAD_HEADER("{" T("ids", "I64", "[1]", "[0,8]") "}", 8, EXO_ERR_UNSUPPORTED,
                      "tensor 'ids'", "I64");
}
END_TEST

START_TEST(garbage_dtype) {
    EXPECT_BAD_HEADER("{" T("w", "F33", "[1]", "[0,4]") "}", 4, EXO_ERR_FORMAT, "tensor 'w'",
                      "unknown dtype 'F33'");
    EXPECT_BAD_HEADER("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      EXO_ERR_FORMAT, "tensor 'w'", "dtype");
    EXPECT_BAD_HEADER("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, EXO_ERR_FORMAT,
                      "tensor 'w'", "dtype");
}
END_TEST

START_TEST(shape_not_an_array) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "4", "[0,16]") "}", 16, EXO_ERR_FORMAT, "tensor 'w'",
                      "'shape'");
    EXPECT_BAD_HEADER("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, EXO_ERR_FORMAT,
                      "tensor 'w'", "'shape'");
}
END_TEST

START_TEST(shape_with_negative_or_fractional_dims) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[-1,4]", "[0,16]") "}", 16, EXO_ERR_FORMAT,
                      "tensor 'w'", "shape[0]");
    EXPECT_BAD_HEADER("{" T("w", "F32", "[2,1.5]", "[0,12]") "}", 16, EXO_ERR_FORMAT,
                      "tensor 'w'", "shape[1]");
    EXPECT_BAD_HEADER("{" T("w", "F32", "[\"4\"]", "[0,16]") "}", 16, EXO_ERR_FORMAT,
                      "tensor 'w'", "shape[0]");
}
END_TEST

START_TEST(shape_with_too_many_dims) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1,1,1,1,1]", "[0,4]") "}", 4, EXO_ERR_FORMAT,
                      "tensor 'w'", "5 dimensions");
}
END_TEST

START_TEST(shape_element_count_overflows) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[4294967296,4294967296,4294967296]", "[0,4]") "}", 4,
                      EXO_ERR_FORMAT, "tensor 'w'", "overflow");
    /* 2^62 elements of 4 bytes: the product in bytes overflows although the count does not. */
    EXPECT_BAD_HEADER("{" T("w", "F32", "[2147483648,2147483648]", "[0,4]") "}", 4,
                      EXO_ERR_FORMAT, "tensor 'w'", "overflow");
}
END_TEST

START_TEST(data_offsets_malformed) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "[0]") "}", 4, EXO_ERR_FORMAT, "tensor 'w'",
                      "data_offsets");
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "[0,4,8]") "}", 8, EXO_ERR_FORMAT, "tensor 'w'",
                      "data_offsets");
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "{\"b\":0}") "}", 4, EXO_ERR_FORMAT,
                      "tensor 'w'", "data_offsets");
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "[-4,0]") "}", 4, EXO_ERR_FORMAT, "tensor 'w'",
                      "data_offsets");
}
END_TEST

START_TEST(data_offsets_begin_after_end) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "[8,4]") "}", 8, EXO_ERR_FORMAT, "tensor 'w'",
                      "begin 8 > end 4");
}
END_TEST

START_TEST(data_past_end_of_file) {
    EXPECT_BAD_HEADER("{" T("a", "F32", "[2]", "[0,8]") "," T("w", "F32", "[4]", "[8,24]") "}",
                      12, EXO_ERR_IO, "tensor 'w'", "truncated");
    /* Offsets near 2^53 must not wrap around when added to the mapping. */
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "[9007199254740980,9007199254740984]") "}", 4,
                      EXO_ERR_IO, "tensor 'w'", "truncated");
}
END_TEST

START_TEST(byte_count_does_not_match_shape) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[2,3]", "[0,12]") "}", 24, EXO_ERR_FORMAT,
                      "tensor 'w'", "holds 12 bytes", "needs 24");
    EXPECT_BAD_HEADER("{" T("w", "BF16", "[4]", "[0,16]") "}", 16, EXO_ERR_FORMAT, "tensor 'w'",
                      "needs 8");
}
END_TEST

START_TEST(overlapping_tensors) {
    EXPECT_BAD_HEADER("{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}",
                      12, EXO_ERR_FORMAT, "tensor 'b'", "overlaps tensor 'a'");
    /* One inside another, listed first. */
    EXPECT_BAD_HEADER("{" T("inner", "F32", "[1]", "[4,8]") "," T("outer", "F32", "[4]", "[0,16]") "}",
                      16, EXO_ERR_FORMAT, "overlaps");
}
END_TEST

START_TEST(duplicate_names) {
    EXPECT_BAD_HEADER("{" T("w", "F32", "[1]", "[0,4]") "," T("w", "F32", "[1]", "[4,8]") "}",
                      8, EXO_ERR_FORMAT, "tensor 'w'", "twice");
}
END_TEST

static Suite *safetensors_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *fx = tcase_create("fixtures");
    tcase_add_test(fx, llama_fixture_holds_its_tensors);
    tcase_add_test(fx, tensor_data_matches_the_file_bytes);
    tcase_add_test(fx, reduced_precision_fixtures_keep_their_dtype);
    tcase_add_test(fx, golden_file_holds_int32_ids);
    tcase_add_test(fx, dtype_names_and_sizes);
    tcase_add_test(fx, metadata_is_ignored_and_padding_accepted);
    tcase_add_test(fx, public_reader_refuses_misaligned_tensor_data);
    suite_add_tcase(s, fx);
    TCase *bad = tcase_create("malformed");
    tcase_add_test(bad, file_shorter_than_8_bytes);
    tcase_add_test(bad, missing_file);
    tcase_add_test(bad, header_length_past_end_of_file);
    tcase_add_test(bad, header_length_absurd);
    tcase_add_test(bad, header_not_json);
    tcase_add_test(bad, header_not_an_object);
    tcase_add_test(bad, header_not_utf8);
    tcase_add_test(bad, entry_not_an_object);
    tcase_add_test(bad, unsupported_dtype_names_tensor_and_dtype);
    tcase_add_test(bad, garbage_dtype);
    tcase_add_test(bad, shape_not_an_array);
    tcase_add_test(bad, shape_with_negative_or_fractional_dims);
    tcase_add_test(bad, shape_with_too_many_dims);
    tcase_add_test(bad, shape_element_count_overflows);
    tcase_add_test(bad, data_offsets_malformed);
    tcase_add_test(bad, data_offsets_begin_after_end);
    tcase_add_test(bad, data_past_end_of_file);
    tcase_add_test(bad, byte_count_does_not_match_shape);
    tcase_add_test(bad, overlapping_tensors);
    tcase_add_test(bad, duplicate_names);
    suite_add_tcase(s, bad);
    return s;
}

MTU_MAIN(safetensors_suite)
