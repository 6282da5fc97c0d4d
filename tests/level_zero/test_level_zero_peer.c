/* The level_zero plugin's peer copies (ABI 1.9 peer_copy_supported / buffer_copy_peer) through
 * Debian's real loader and our fake driver, whose two GPUs reach each other's memory unless
 * EXO_ZE_TEST_PEER says otherwise: the pair is offered (both directions), the copy moves the bytes
 * between the two devices' allocations (the driver counts it as a peer copy, and refuses memory of
 * another context, so the shared per-driver context is checked too), bad arguments are named, no
 * peer access is a clear UNSUPPORTED, and a failing copy names the driver's result. Every case
 * runs in its own process: the driver reads EXO_ZE_TEST_PEER at zeInit. */
#include "test_host.h"

#include <check.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define BYTES 4096u

static exo_test_host host;
static exo_plugin_api api;
static exo_plugin_ctx *ctx;

static void setup(void) {
    setenv("ZE_ENABLE_ALT_DRIVERS", EXO_ZE_TEST_DRIVER, 0);
    exo_test_host_init(&host);
    ctx = NULL;
}

static void teardown(void) { exo_test_plugin_unload(&host, &api, ctx); }

/* The plugin with both fake GPUs open, the driver's peer mode set first. */
static void open_pair(const char *peer_mode) {
    if (peer_mode) setenv("EXO_ZE_TEST_PEER", peer_mode, 1);
    else unsetenv("EXO_ZE_TEST_PEER");
    exo_status st = exo_test_plugin_load(&host, EXO_TEST_PLUGIN_DIR, "level_zero", &api, &ctx);
    ck_assert_msg(st == EXO_OK, "loading the level_zero plugin: %s", host.last_error);
    uint32_t n = 0;
    ck_assert_int_eq(api.probe(ctx, &n), EXO_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_nonnull(api.peer_copy_supported);
    ck_assert_ptr_nonnull(api.buffer_copy_peer);
    for (uint32_t i = 0; i < 2; i++) ck_assert_msg(api.device_open(ctx, i) == EXO_OK, "%s", host.last_error);
}

static uint64_t peer_copies(void) {
    void *lib = dlopen(EXO_ZE_TEST_DRIVER, RTLD_NOW | RTLD_NOLOAD);
    ck_assert_msg(lib != NULL, "the test driver is not loaded");
    uint64_t (*fn)(void) = (uint64_t (*)(void))dlsym(lib, "exo_ze_test_driver_peer_copies");
    ck_assert_ptr_nonnull(fn);
    uint64_t n = fn();
    dlclose(lib);
    return n;
}

static exo_buffer *buffer(uint32_t device, const unsigned char *fill) {
    exo_buffer *b = NULL;
    ck_assert_msg(api.buffer_alloc(ctx, device, BYTES, EXO_BUFFER_SCRATCH, &b) == EXO_OK, "%s", host.last_error);
    if (fill) ck_assert_int_eq(api.buffer_write(b, 0, fill, BYTES), EXO_OK);
    return b;
}

START_TEST(peer_copies_move_the_bytes_between_the_gpus) {
    open_pair(NULL);
    ck_assert_msg(api.peer_copy_supported(ctx, 0, 1) == EXO_OK, "%s", host.last_error);
    ck_assert_int_eq(api.peer_copy_supported(ctx, 1, 0), EXO_OK);
    unsigned char pattern[BYTES], zero[BYTES] = {0}, got[BYTES];
    for (uint32_t i = 0; i < BYTES; i++) pattern[i] = (unsigned char)(i * 7 + 3);
    exo_buffer *a = buffer(0, pattern), *b = buffer(1, zero), *a2 = buffer(0, zero);
    uint64_t before = peer_copies();
    ck_assert_msg(api.buffer_copy_peer(b, 64, a, 128, 1024) == EXO_OK, "%s", host.last_error);
    ck_assert_uint_eq(peer_copies(), before + 1);
    ck_assert_int_eq(api.buffer_read(b, 0, got, BYTES), EXO_OK);
    ck_assert_int_eq(memcmp(got + 64, pattern + 128, 1024), 0);
    ck_assert_int_eq(memcmp(got, zero, 64), 0);                      /* nothing around the range */
    ck_assert_int_eq(memcmp(got + 64 + 1024, zero, BYTES - 64 - 1024), 0);
    /* And back the other way, into the source device's second buffer. */
    ck_assert_int_eq(api.buffer_copy_peer(a2, 0, b, 64, 1024), EXO_OK);
    ck_assert_int_eq(api.buffer_read(a2, 0, got, 1024), EXO_OK);
    ck_assert_int_eq(memcmp(got, pattern + 128, 1024), 0);
    ck_assert_uint_eq(peer_copies(), before + 2);
    api.buffer_free(a);
    api.buffer_free(b);
    api.buffer_free(a2);
    for (uint32_t i = 0; i < 2; i++) api.device_close(ctx, i);
}
END_TEST

START_TEST(bad_peer_arguments_are_named) {
    open_pair(NULL);
    ck_assert_int_eq(api.peer_copy_supported(ctx, 0, 0), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(host.last_error, "no peer of itself"), "%s", host.last_error);
    ck_assert_int_eq(api.peer_copy_supported(ctx, 0, 2), EXO_ERR_NOT_FOUND);
    unsigned char zero[BYTES] = {0};
    exo_buffer *a = buffer(0, zero), *b = buffer(1, zero), *a2 = buffer(0, zero);
    uint64_t before = peer_copies();
    ck_assert_int_eq(api.buffer_copy_peer(b, BYTES - 16, a, 0, 32), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(host.last_error, "outside the 4096-byte buffer"), "%s", host.last_error);
    ck_assert_int_eq(api.buffer_copy_peer(b, 0, a, UINT64_MAX - 8, 32), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(api.buffer_copy_peer(a2, 0, a, 0, 32), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(host.last_error, "same device"), "%s", host.last_error);
    ck_assert_int_eq(api.buffer_copy_peer(NULL, 0, a, 0, 32), EXO_ERR_INVALID_ARG);
    ck_assert_uint_eq(peer_copies(), before);
    api.buffer_free(a);
    api.buffer_free(b);
    api.buffer_free(a2);
    for (uint32_t i = 0; i < 2; i++) api.device_close(ctx, i);
}
END_TEST

START_TEST(no_peer_access_is_unsupported_with_the_reason) {
    open_pair("none");
    ck_assert_int_eq(api.peer_copy_supported(ctx, 0, 1), EXO_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(host.last_error, "zeDeviceCanAccessPeer") && strstr(host.last_error, "level_zero:1"), "%s",
                  host.last_error);
    for (uint32_t i = 0; i < 2; i++) api.device_close(ctx, i);
}
END_TEST

START_TEST(a_failing_peer_copy_names_the_result) {
    open_pair("fail");
    ck_assert_int_eq(api.peer_copy_supported(ctx, 0, 1), EXO_OK);
    unsigned char zero[BYTES] = {0};
    exo_buffer *a = buffer(0, zero), *b = buffer(1, zero);
    ck_assert_int_eq(api.buffer_copy_peer(b, 0, a, 0, 256), EXO_ERR_BACKEND);
    ck_assert_msg(strstr(host.last_error, "peer copy to level_zero:1") &&
                      strstr(host.last_error, "ZE_RESULT_ERROR_UNKNOWN"),
                  "%s", host.last_error);
    /* The devices stay usable: a failed copy is no lost device. */
    ck_assert_int_eq(api.buffer_write(b, 0, zero, 256), EXO_OK);
    api.buffer_free(a);
    api.buffer_free(b);
    for (uint32_t i = 0; i < 2; i++) api.device_close(ctx, i);
}
END_TEST

int main(void) {
    Suite *s = suite_create("level_zero_peer");
    TCase *tc = tcase_create("peer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, peer_copies_move_the_bytes_between_the_gpus);
    tcase_add_test(tc, bad_peer_arguments_are_named);
    tcase_add_test(tc, no_peer_access_is_unsupported_with_the_reason);
    tcase_add_test(tc, a_failing_peer_copy_names_the_result);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK); /* one process per case: the driver reads its knobs at zeInit */
}
