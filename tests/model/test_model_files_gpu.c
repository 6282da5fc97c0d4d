/* A GPU shard (here PoCL through the OpenCL plugin) copies its weights to device memory at load
 * (the plugin has no buffer_wrap_host), so the model files may be truncated in place after the
 * load and generation goes on with the same logits. Skips (77) without an OpenCL device. */
#include <sys/stat.h>

#include "exo.h"
#include "model_test_util.h"

#define LLAMA EXO_TEST_DATA "/hf-tiny/llama"

static float *logits_of(exo_shard *shard, uint32_t vocab) {
    const int32_t ids[] = {1, 45, 499, 173, 170}; /* inside the tiny vocabulary (512) */
    exo_session *s = NULL;
    ck_assert_int_eq(exo_session_create(shard, 0, &s), EXO_OK);
    float *out = malloc(vocab * sizeof *out);
    ck_assert_msg(exo_session_forward_tokens(s, ids, 5, EXO_FORWARD_LAST_ONLY, out, vocab) == EXO_OK, "%s",
                  exo_last_error());
    exo_session_destroy(s);
    return out;
}

static int no_device;

START_TEST(a_gpu_shard_survives_its_file_truncated_in_place) {
    char *dir = mtu_tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -p '%s'/* '%s'/", LLAMA, dir);
    ck_assert_int_eq(system(cmd), 0);
    exo_runtime *rt = NULL;
    exo_model *m = NULL;
    exo_shard *shard = NULL;
    ck_assert_int_eq(exo_runtime_create(NULL, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    exo_model_info mi;
    EXO_STRUCT_INIT(&mi);
    ck_assert_int_eq(exo_model_get_info(m, &mi), EXO_OK);
    o.end_layer = mi.n_layers;
    o.max_ctx = 64;
    o.max_tokens = 16;
    if (exo_shard_load(m, &o, &shard) != EXO_OK) {
        no_device = 1; /* checked by main: PoCL absent or unusable here */
        fprintf(stderr, "skipping: %s\n", exo_last_error());
        exo_model_destroy(m);
        exo_runtime_destroy(rt);
        mtu_rmdir(dir);
        return;
    }
    exo_shard_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(shard, &info), EXO_OK);
    ck_assert_str_eq(info.plugin, "opencl");
    ck_assert_uint_eq(info.end_layer, mi.n_layers);
    ck_assert_uint_gt(mi.n_layers, 0);
    uint32_t vocab = info.output_width;
    float *before = logits_of(shard, vocab);
    /* In place: the same inode, every page of it gone. A CPU shard would fault here. */
    ck_assert_int_eq(truncate(mtu_path(dir, "model.safetensors"), 0), 0);
    float *after = logits_of(shard, vocab);
    ck_assert_int_eq(memcmp(before, after, vocab * sizeof *after), 0);
    /* Loading another shard from the cut file is an error naming it. */
    exo_shard *again = NULL;
    mtu_assert_error(exo_shard_load(m, &o, &again), EXO_ERR_IO, "model.safetensors", "truncated");
    free(before);
    free(after);
    exo_shard_destroy(shard);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    mtu_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model_files_gpu");
    TCase *tc = tcase_create("opencl");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, a_gpu_shard_survives_its_file_truncated_in_place);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    /* No fork: the skip flag must reach main (and PoCL's threads must not straddle a fork). */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed) return EXIT_FAILURE;
    return no_device ? 77 : EXIT_SUCCESS;
}
