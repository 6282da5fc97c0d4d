/* The level_zero plugin through Debian's real Level Zero loader and our fake driver
 * (libexo-ze-test-driver.so via ZE_ENABLE_ALT_DRIVERS). Every case runs in its own process
 * (check's fork mode, forced below): the loader and zeInit keep per-process state. */
#include "test_host.h"

#include <check.h>
#include <dlfcn.h>
#include <level_zero/ze_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_run.h"

#define GIB (1024ull * 1024ull * 1024ull)

static exo_test_host host;
static exo_plugin_api api;
static exo_plugin_ctx *ctx;
static void *driver_lib; /* keeps the fake driver mapped and gives its test-only counters */

static void setup(void) {
    /* ctest sets this; a direct run of the binary gets the same driver. */
    setenv("ZE_ENABLE_ALT_DRIVERS", EXO_ZE_TEST_DRIVER, 0);
    unsetenv("ZES_ENABLE_SYSMAN"); /* the plugin is the one to set it */
    exo_test_host_init(&host);
    ctx = NULL;
    driver_lib = NULL;
}

static void teardown(void) { exo_test_plugin_unload(&host, &api, ctx); }

static void load_plugin(void) {
    exo_status st = exo_test_plugin_load(&host, EXO_TEST_PLUGIN_DIR, "level_zero", &api, &ctx);
    ck_assert_msg(st == EXO_OK, "loading the level_zero plugin: %s", host.last_error);
}

/* The loader dlcloses a driver whose zeInit failed; holding our own reference keeps its state
 * (the counters) alive so the test can read them afterwards. */
static uint64_t driver_counter(const char *symbol) {
    if (!driver_lib) driver_lib = dlopen(getenv("ZE_ENABLE_ALT_DRIVERS"), RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(driver_lib != NULL, "dlopen test driver: %s", dlerror());
    uint64_t (*fn)(void) = (uint64_t(*)(void))dlsym(driver_lib, symbol);
    ck_assert_msg(fn != NULL, "test driver lacks %s", symbol);
    return fn();
}

static uint32_t probe(void) {
    uint32_t n = 99;
    exo_status st = api.probe(ctx, &n);
    ck_assert_msg(st == EXO_OK, "probe: %d %s", st, host.last_error);
    return n;
}

static exo_device_report report(uint32_t index) {
    exo_device_report r;
    memset(&r, 0, sizeof r);
    EXO_STRUCT_INIT(&r);
    exo_status st = api.device_report(ctx, index, &r);
    ck_assert_msg(st == EXO_OK, "device_report(%u): %d %s", index, st, host.last_error);
    return r;
}

static exo_status telemetry(uint32_t index, exo_device_telemetry *t) {
    memset(t, 0, sizeof *t);
    EXO_STRUCT_INIT(t);
    return api.device_telemetry(ctx, index, t);
}

static unsigned count_lines(const char *text, const char *needle) {
    unsigned n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(probe_finds_two_arc_gpus) {
    load_plugin();
    ck_assert_str_eq(api.name, "level_zero");
    ck_assert_uint_eq(api.rank, EXO_RANK_LEVEL_ZERO);
    ck_assert_uint_eq(probe(), 2);
    const char *expected_pci[2] = {"0000:03:00.0", "0000:04:00.0"};
    for (uint32_t i = 0; i < 2; i++) {
        exo_device_report r = report(i);
        ck_assert_str_eq(r.name, "Intel(R) Arc(TM) A770 Graphics");
        ck_assert_str_eq(r.fingerprint, expected_pci[i]);
        ck_assert_int_eq(r.type, EXO_DEVICE_DISCRETE_GPU);
        ck_assert_uint_eq(r.score, EXO_SCORE_PREFERRED);
        ck_assert_uint_gt(r.score, EXO_SCORE_CAPABLE);
        ck_assert_uint_eq(r.vendor_id, 0x8086);
        ck_assert_uint_eq(r.device_id, 0x56a0);
        ck_assert_str_eq(r.api_version, "1.4");
        ck_assert_str_eq(r.driver_version, "1.3.26241");
        ck_assert_uint_eq(r.memory_total, 16 * GIB);
        ck_assert_uint_lt(r.memory_free, r.memory_total); /* Sysman's reading, not the total */
        ck_assert_uint_gt(r.memory_free, 14 * GIB);
        ck_assert_uint_eq(r.max_alloc, 4 * GIB - 8192);
        ck_assert_uint_eq(r.compute_units, 512);
        ck_assert_uint_eq(r.clock_mhz, 2400);
        uint64_t want = EXO_CAP_FP16 | EXO_CAP_INT8_DOT | EXO_CAP_SUBGROUPS | EXO_CAP_MATRIX | EXO_CAP_BF16;
        ck_assert_uint_eq(r.caps, want);
        ck_assert_ptr_nonnull(strstr(r.isa, "Xe-HPG"));
        /* 512 EUs x 8 lanes x 2 x 2.4 GHz; XMX 128 fp16 / 256 int8 per EU per clock */
        ck_assert_float_eq_tol(r.tflops_fp32, 19.66f, 0.01f);
        ck_assert_float_eq_tol(r.tflops_fp16, 157.3f, 0.1f);
        ck_assert_float_eq_tol(r.tflops_int8, 314.6f, 0.1f);
        ck_assert_float_eq_tol(r.memory_bandwidth_gbs, 560.0f, 0.5f); /* zesMemoryGetBandwidth */
        ck_assert_ptr_nonnull(strstr(r.reason, "discrete Intel GPU"));
    }
    ck_assert_ptr_nonnull(strstr(host.log, "set ZES_ENABLE_SYSMAN=1"));
    ck_assert_ptr_nonnull(strstr(api.probe_build_info(ctx), "2 devices"));
}
END_TEST

START_TEST(probe_is_idempotent_and_inits_once) {
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    ck_assert_uint_eq(probe(), 2);
    /* A second context in the same process reuses the process-wide zeInit. */
    exo_plugin_ctx *second = NULL;
    ck_assert_int_eq(api.init(&host.api, &second), EXO_OK);
    uint32_t n = 0;
    ck_assert_int_eq(api.probe(second, &n), EXO_OK);
    ck_assert_uint_eq(n, 2);
    api.shutdown(second);
    /* The plugin logs each zeInit it makes (the driver's own count is no help here: loader 1.8
     * calls a driver's zeInit twice, once to vet it and once for the caller). */
    ck_assert_uint_eq(count_lines(host.log, "zeInit(0) = ZE_RESULT_SUCCESS"), 1);
}
END_TEST

START_TEST(init_failure_reports_reason_and_stops_calling) {
    setenv("EXO_ZE_TEST_FAIL", "init", 1);
    driver_counter("exo_ze_test_driver_init_calls"); /* map the driver before the loader drops it */
    load_plugin();
    ck_assert_uint_eq(probe(), 0);
    const char *reason = "zeInit failed: ZE_RESULT_ERROR_UNINITIALIZED (0x78000001): no Level Zero driver/GPU found";
    ck_assert_msg(strstr(host.log, reason) != NULL, "log: %s", host.log);
    ck_assert_ptr_nonnull(strstr(api.probe_build_info(ctx), reason));
    ck_assert_ptr_nonnull(strstr(host.last_error, reason));
    /* Later calls return the remembered failure instead of touching Level Zero. */
    exo_device_report r;
    memset(&r, 0, sizeof r);
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(api.device_report(ctx, 0, &r), EXO_ERR_NO_DEVICE);
    ck_assert_ptr_nonnull(strstr(host.last_error, reason));
    exo_device_telemetry t;
    ck_assert_int_eq(telemetry(0, &t), EXO_ERR_NO_DEVICE);
    ck_assert_uint_eq(probe(), 0);
    exo_plugin_ctx *second = NULL;
    ck_assert_int_eq(api.init(&host.api, &second), EXO_OK);
    uint32_t n = 7;
    ck_assert_int_eq(api.probe(second, &n), EXO_OK);
    ck_assert_uint_eq(n, 0);
    api.shutdown(second);
    ck_assert_uint_eq(count_lines(host.log, "zeInit(0) = ZE_RESULT_ERROR_UNINITIALIZED"), 1);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_init_calls"), 1);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_calls_after_failed_init"), 0);
}
END_TEST

/* The control for the case above: a caller that does call zeDriverGet after the failed zeInit
 * is seen by the driver's counter, so a zero there means something. */
START_TEST(driver_counts_calls_after_failed_init) {
    setenv("EXO_ZE_TEST_FAIL", "init", 1);
    driver_counter("exo_ze_test_driver_init_calls");
    void *loader = dlopen("libze_loader.so.1", RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(loader != NULL, "%s", dlerror());
    ze_result_t (*init)(ze_init_flags_t) = (ze_result_t(*)(ze_init_flags_t))dlsym(loader, "zeInit");
    ze_result_t (*driver_get)(uint32_t *, ze_driver_handle_t *) =
        (ze_result_t(*)(uint32_t *, ze_driver_handle_t *))dlsym(loader, "zeDriverGet");
    ck_assert_ptr_nonnull(init);
    ck_assert_ptr_nonnull(driver_get);
    ck_assert_int_eq(init(0), ZE_RESULT_ERROR_UNINITIALIZED);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_calls_after_failed_init"), 0);
    uint32_t n = 0;
    driver_get(&n, NULL);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_calls_after_failed_init"), 1);
}
END_TEST

START_TEST(without_sysman_devices_use_uuid_fingerprints) {
    setenv("EXO_ZE_TEST_NO_SYSMAN", "1", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    exo_device_report a = report(0), b = report(1);
    ck_assert_str_eq(a.fingerprint, "uuid:8680a0560800000000030000010000e0");
    ck_assert_str_eq(b.fingerprint, "uuid:8680a0560800000000040000010000e1");
    ck_assert_uint_eq(a.memory_free, a.memory_total); /* no reading: free = total */
    ck_assert_float_eq_tol(a.memory_bandwidth_gbs, 560.0f, 0.5f); /* board table */
    ck_assert_uint_eq(a.score, EXO_SCORE_PREFERRED);
    exo_device_telemetry t;
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(telemetry(0, &t), EXO_OK);
        ck_assert_uint_eq(t.valid, EXO_TELEMETRY_DRIVER);
        ck_assert_str_eq(t.driver_version, "1.3.26241");
    }
}
END_TEST

START_TEST(sysman_opt_out_leaves_it_disabled) {
    setenv("EXO_ZE_NO_SYSMAN", "1", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    ck_assert_ptr_null(getenv("ZES_ENABLE_SYSMAN"));
    ck_assert_ptr_nonnull(strstr(host.log, "EXO_ZE_NO_SYSMAN is set"));
    exo_device_report r = report(0);
    ck_assert_int_eq(strncmp(r.fingerprint, "uuid:", 5), 0);
}
END_TEST

START_TEST(telemetry_reads_sysman_sensors) {
    setenv("EXO_ZE_TEST_UTILIZATION", "0.25", 1);
    setenv("EXO_ZE_TEST_POWER_W", "150", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    uint32_t all = EXO_TELEMETRY_MEMORY | EXO_TELEMETRY_UTILIZATION | EXO_TELEMETRY_TEMPERATURE |
                   EXO_TELEMETRY_POWER | EXO_TELEMETRY_FREQUENCY | EXO_TELEMETRY_DRIVER;
    /* The probe took the first utilization/energy sample; each reading is a second one. */
    for (int round = 0; round < 2; round++) {
        sleep_ms(30);
        exo_device_telemetry t;
        ck_assert_int_eq(telemetry(1, &t), EXO_OK);
        ck_assert_uint_eq(t.valid, all);
        ck_assert_uint_eq(t.memory_used + t.memory_free, 16 * GIB);
        ck_assert_uint_ge(t.memory_used, GIB);
        ck_assert(t.utilization >= 0.0f && t.utilization <= 1.0f);
        ck_assert_float_eq_tol(t.utilization, 0.25f, 0.01f);
        ck_assert_float_eq_tol(t.power_w, 150.0f, 1.0f);
        ck_assert(t.temperature_c > 20.0f && t.temperature_c < 110.0f);
        ck_assert(t.frequency_mhz > 300.0f && t.frequency_mhz <= 2400.0f);
        ck_assert_str_eq(t.driver_version, "1.3.26241");
    }
}
END_TEST

/* A fully busy engine reads as 1 on every reading (each one a fresh interval), never above. */
START_TEST(telemetry_full_load_reads_one) {
    setenv("EXO_ZE_TEST_UTILIZATION", "1.0", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    exo_device_telemetry t;
    for (int round = 0; round < 3; round++) {
        sleep_ms(5);
        ck_assert_int_eq(telemetry(0, &t), EXO_OK);
        ck_assert(t.valid & EXO_TELEMETRY_UTILIZATION);
        ck_assert(t.utilization >= 0.0f && t.utilization <= 1.0f);
        ck_assert_float_eq_tol(t.utilization, 1.0f, 0.01f);
    }
}
END_TEST

START_TEST(missing_loader_gives_clean_reason) {
    setenv("EXO_ZE_LOADER", "libdoesnotexist.so", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 0);
    const char *reason = "Level Zero loader libdoesnotexist.so not found: libdoesnotexist.so: cannot open shared object file";
    ck_assert_msg(strstr(host.log, reason) != NULL, "log: %s", host.log);
    ck_assert_ptr_nonnull(strstr(api.probe_build_info(ctx), reason));
    exo_device_report r;
    memset(&r, 0, sizeof r);
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(api.device_report(ctx, 0, &r), EXO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(host.last_error, reason));
}
END_TEST

START_TEST(integrated_gpu_is_capable_with_unified_memory) {
    setenv("EXO_ZE_TEST_INTEGRATED", "1", 1);
    setenv("EXO_ZE_TEST_DEVICES", "1", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 1);
    exo_device_report r = report(0);
    ck_assert_str_eq(r.name, "Intel(R) Iris(R) Xe Graphics");
    ck_assert_int_eq(r.type, EXO_DEVICE_INTEGRATED_GPU);
    ck_assert_uint_eq(r.score, EXO_SCORE_CAPABLE);
    ck_assert_uint_eq(r.caps, EXO_CAP_FP16 | EXO_CAP_INT8_DOT | EXO_CAP_SUBGROUPS | EXO_CAP_UNIFIED_MEMORY);
    ck_assert_uint_eq(r.compute_units, 96);
    ck_assert_str_eq(r.isa, "Xe-LP (Tiger Lake)");
    ck_assert_str_eq(r.fingerprint, "0000:00:02.0");
    /* no XMX: fp16 = 2 x fp32, int8 = 4 x fp32 (DP4A) */
    ck_assert_float_eq_tol(r.tflops_fp32, 96 * 8 * 2 * 1.3f / 1000.0f, 0.001f);
    ck_assert_float_eq_tol(r.tflops_fp16, 2 * r.tflops_fp32, 0.001f);
    ck_assert_float_eq_tol(r.tflops_int8, 4 * r.tflops_fp32, 0.001f);
}
END_TEST

START_TEST(no_devices_is_not_an_error) {
    setenv("EXO_ZE_TEST_DEVICES", "0", 1);
    load_plugin();
    ck_assert_uint_eq(probe(), 0);
    ck_assert_ptr_nonnull(strstr(host.log, "0 devices: the Level Zero drivers report no usable device"));
}
END_TEST

START_TEST(out_of_range_device_is_named) {
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    exo_device_report r;
    memset(&r, 0, sizeof r);
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(api.device_report(ctx, 2, &r), EXO_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(host.last_error, "device 2: only 2 devices found"));
}
END_TEST

/* An older core with a shorter report struct gets only the members it knows. */
START_TEST(report_fills_only_what_the_core_allocated) {
    load_plugin();
    ck_assert_uint_eq(probe(), 2);
    exo_device_report r;
    memset(&r, 0xab, sizeof r);
    r.hdr.size = (uint32_t)offsetof(exo_device_report, memory_total);
    r.hdr.version = EXO_ABI_VERSION;
    ck_assert_int_eq(api.device_report(ctx, 0, &r), EXO_OK);
    ck_assert_str_eq(r.name, "Intel(R) Arc(TM) A770 Graphics");
    ck_assert_uint_eq(r.hdr.size, offsetof(exo_device_report, memory_total));
    const unsigned char *tail = (const unsigned char *)&r + offsetof(exo_device_report, memory_total);
    for (size_t i = 0; i < sizeof r - offsetof(exo_device_report, memory_total); i++) ck_assert_uint_eq(tail[i], 0xab);
}
END_TEST

int main(void) {
    Suite *s = suite_create("level_zero_probe");
    TCase *tc = tcase_create("probe");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, probe_finds_two_arc_gpus);
    tcase_add_test(tc, probe_is_idempotent_and_inits_once);
    tcase_add_test(tc, init_failure_reports_reason_and_stops_calling);
    tcase_add_test(tc, driver_counts_calls_after_failed_init);
    tcase_add_test(tc, without_sysman_devices_use_uuid_fingerprints);
    tcase_add_test(tc, sysman_opt_out_leaves_it_disabled);
    tcase_add_test(tc, telemetry_reads_sysman_sensors);
    tcase_add_test(tc, telemetry_full_load_reads_one);
    tcase_add_test(tc, missing_loader_gives_clean_reason);
    tcase_add_test(tc, integrated_gpu_is_capable_with_unified_memory);
    tcase_add_test(tc, no_devices_is_not_an_error);
    tcase_add_test(tc, out_of_range_device_is_named);
    tcase_add_test(tc, report_fills_only_what_the_core_allocated);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK); /* one process per case: the loader's state is global */
}
