/* The OpenCL plugin's program-binary cache: a second open of the device loads the kernels from
 * the cache, and a corrupt, truncated or foreign entry is ignored, rebuilt and replaced — the
 * results stay right in every case (checked against the CPU plugin's reference kernels). */
#include "op_harness.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"

static oh_device cl_dev, ref_dev;
static char cache_root[512], entry_dir[600];

/* A fresh cache directory per test; the plugin reads XDG_CACHE_HOME through the host. */
static void use_fresh_cache(void) {
    snprintf(cache_root, sizeof cache_root, "%s/opencl-cache-test-XXXXXX", EXO_TEST_BINARY_DIR);
    ck_assert_ptr_nonnull(mkdtemp(cache_root));
    setenv("XDG_CACHE_HOME", cache_root, 1);
    setenv("EXO_CPU_KERNELS", "ref", 1);
    snprintf(entry_dir, sizeof entry_dir, "%s/exo-ipex/opencl", cache_root);
}

static void open_cl(void) {
    char why[1200];
    if (oh_open(&cl_dev, "opencl", why, sizeof why) != 0) {
        fprintf(stderr, "skip: no OpenCL device: %s\n", why);
        exit(77);
    }
}

/* The one entry file in the cache directory ("" when there is none). */
static void entry_path(char *out, size_t size) {
    out[0] = 0;
    DIR *d = opendir(entry_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp")) snprintf(out, size, "%s/%s", entry_dir, e->d_name);
    closedir(d);
}

/* A matmul + rms_norm graph: compiles the program and checks one result against the reference. */
static void run_and_check(void) {
    enum { K = 96, N = 40, T = 3 };
    static float w[N * K], x[T * K], nw[N];
    oh_random(w, N * K, -1, 1, 1);
    oh_random(x, T * K, -1, 1, 2);
    oh_random(nw, N, 0.5f, 1.5f, 3);
    oh_graph g;
    oh_init(&g, T);
    uint32_t in = oh_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 2, K, EXO_DIM_TOKENS, 0);
    uint32_t wt = oh_weight(&g, "W", EXO_DTYPE_F32, w, 0, 2, K, N);
    uint32_t nt = oh_weight(&g, "norm", EXO_DTYPE_F32, nw, 0, 1, N, 0);
    uint32_t mid = oh_tensor(&g, "mid", EXO_DTYPE_F32, 0, 2, N, EXO_DIM_TOKENS, 0);
    uint32_t out = oh_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, N, EXO_DIM_TOKENS, 0);
    float eps = 1e-5f;
    oh_node(&g, EXO_OP_MATMUL, mid, 2, (uint32_t[]){in, wt}, NULL, 0, NULL, 0);
    oh_node(&g, EXO_OP_RMS_NORM, out, 2, (uint32_t[]){mid, nt}, NULL, 0, &eps, 1);
    float a[T * N], b[T * N];
    oh_device *devs[2] = {&cl_dev, &ref_dev};
    float *outs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        oh_run r;
        ck_assert_msg(oh_start(&r, devs[k], &g) == EXO_OK, "compile: %s", devs[k]->host.last_error);
        ck_assert_int_eq(oh_write(&r, in, x, sizeof x), EXO_OK);
        ck_assert_msg(oh_exec(&r, T) == EXO_OK, "execute: %s", devs[k]->host.last_error);
        ck_assert_int_eq(oh_read(&r, out, outs[k], sizeof a), EXO_OK);
        oh_stop(&r);
    }
    double e = oh_nmse(a, b, T * N);
    ck_assert_msg(e < 1e-10, "NMSE %.3e", e);
}

/* Opens the OpenCL device, runs the graph, and returns with the plugin's log in cl_dev.host.log. */
static void session(void) {
    open_cl();
    run_and_check();
    oh_close(&cl_dev);
}

static void setup_first_run(char *path, size_t size) {
    char why[1200];
    use_fresh_cache();
    ck_assert_msg(oh_open(&ref_dev, "cpu_amx", why, sizeof why) == 0, "%s", why);
    session();
    entry_path(path, size);
    ck_assert_msg(path[0], "no cache entry written under %s; log:\n%s", entry_dir, cl_dev.host.log);
}

START_TEST(second_open_loads_the_cached_program) {
    char path[1024];
    setup_first_run(path, sizeof path);
    ck_assert_ptr_nonnull(strstr(cl_dev.host.log, "built the kernels from source"));
    session();
    ck_assert_msg(strstr(cl_dev.host.log, "kernels loaded from the program cache"), "log:\n%s", cl_dev.host.log);
    ck_assert_ptr_null(strstr(cl_dev.host.log, "built the kernels from source"));
    oh_close(&ref_dev);
}
END_TEST

/* Damages the entry with `damage`, reopens, and expects `reason` in the log, right results, and
 * a good entry again afterwards. */
static void expect_rebuild(void (*damage)(const char *path), const char *reason) {
    char path[1024];
    setup_first_run(path, sizeof path);
    damage(path);
    session();
    ck_assert_msg(strstr(cl_dev.host.log, reason), "expected '%s' in the log:\n%s", reason, cl_dev.host.log);
    ck_assert_ptr_nonnull(strstr(cl_dev.host.log, "built the kernels from source"));
    session(); /* the rebuilt entry replaced the damaged one */
    ck_assert_msg(strstr(cl_dev.host.log, "kernels loaded from the program cache"), "log:\n%s", cl_dev.host.log);
    oh_close(&ref_dev);
}

static void flip_payload_bytes(const char *path) {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    for (long at = 48 + (size - 48) / 3; at < size; at += (size - 48) / 7 + 1) {
        fseek(f, at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x5a, f);
    }
    fclose(f);
}

static void truncate_entry(const char *path) { ck_assert_int_eq(truncate(path, 40), 0); }
static void truncate_payload(const char *path) {
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_int_eq(truncate(path, size / 2), 0);
}
static void change_key(const char *path) {
    FILE *f = fopen(path, "r+b");
    fseek(f, 20, SEEK_SET);
    fputc(0xee, f);
    fclose(f);
}

START_TEST(corrupt_entry_is_rebuilt) { expect_rebuild(flip_payload_bytes, "payload checksum mismatch"); }
END_TEST
START_TEST(entry_shorter_than_its_header_is_rebuilt) { expect_rebuild(truncate_entry, "shorter than its header"); }
END_TEST
START_TEST(truncated_payload_is_rebuilt) { expect_rebuild(truncate_payload, "truncated"); }
END_TEST
START_TEST(entry_for_another_key_is_rebuilt) { expect_rebuild(change_key, "written for another key"); }
END_TEST

int main(void) {
    Suite *s = suite_create("opencl_cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, second_open_loads_the_cached_program);
    tcase_add_test(tc, corrupt_entry_is_rebuilt);
    tcase_add_test(tc, entry_shorter_than_its_header_is_rebuilt);
    tcase_add_test(tc, truncated_payload_is_rebuilt);
    tcase_add_test(tc, entry_for_another_key_is_rebuilt);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
