/* The level_zero plugin running whole models through the public API (exo_runtime_create,
 * exo_model_open, exo_shard_load, sessions), on Debian's loader and the fake driver, which
 * executes the plugin's SPIR-V on PoCL. Covers placement on several GPUs, agreement with the
 * CPU plugin, command-list replay, telemetry, and every driver failure the core must survive:
 * out of device memory and module build failure (fallback before any state), a weight larger
 * than the device's largest allocation, and a device lost after a session holds state.
 * Each case runs in its own process (check's fork mode): the loader and zeInit are per process,
 * and the driver reads its EXO_ZE_TEST_* knobs at zeInit. */
#include "exo.h"

#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#define MODEL EXO_TEST_DATA "/hf-tiny/llama"

static char logbuf[1 << 16];

static void capture_log(void *user, exo_log_level level, const char *component, const char *message) {
    (void)user;
    size_t used = strlen(logbuf);
    snprintf(logbuf + used, sizeof logbuf - used, "%d %s %s\n", (int)level, component, message);
}

static exo_runtime *runtime(void) {
    setenv("ZE_ENABLE_ALT_DRIVERS", EXO_ZE_TEST_DRIVER, 0);
    logbuf[0] = '\0';
    exo_runtime_options o = EXO_RUNTIME_OPTIONS_INIT;
    o.log = capture_log;
    o.log_level = EXO_LOG_DEBUG;
    exo_runtime *rt = NULL;
    exo_status st = exo_runtime_create(&o, &rt);
    ck_assert_msg(st == EXO_OK, "exo_runtime_create: %s", exo_status_name(st));
    return rt;
}

static exo_model *model(exo_runtime *rt) {
    exo_model *m = NULL;
    exo_status st = exo_model_open(rt, MODEL, &m);
    ck_assert_msg(st == EXO_OK, "exo_model_open: %s", exo_runtime_last_error(rt));
    return m;
}

static exo_status load(exo_model *m, const char *device, exo_shard **out) {
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    exo_model_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_model_get_info(m, &info), EXO_OK);
    o.end_layer = info.n_layers;
    o.device = device;
    o.max_tokens = 16;
    o.max_ctx = 64;
    /* float32 caches on both sides: these tests compare the GPU with the CPU at 1e-4, and the
     * CPU's default (bf16) cache alone moves logits by ~1e-3. */
    o.kv_dtype = EXO_KV_DTYPE_F32;
    return exo_shard_load(m, &o, out);
}

static exo_shard_info shard_info(const exo_shard *s) {
    exo_shard_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(s, &info), EXO_OK);
    return info;
}

static uint64_t driver_counter(const char *symbol) {
    void *lib = dlopen(EXO_ZE_TEST_DRIVER, RTLD_NOW | RTLD_NOLOAD);
    ck_assert_msg(lib != NULL, "the test driver is not loaded");
    uint64_t (*fn)(void) = (uint64_t(*)(void))dlsym(lib, symbol);
    ck_assert_ptr_nonnull(fn);
    uint64_t v = fn();
    dlclose(lib);
    return v;
}

static const int32_t prompt[] = {1, 15, 27, 3, 99, 42, 7, 64};
#define N_PROMPT (sizeof prompt / sizeof prompt[0])

/* Prefill the prompt, then `decode` single-token steps; fills logits of the last step. */
static exo_status run(exo_shard *s, uint32_t decode, float *logits, uint32_t vocab) {
    exo_session *ss = NULL;
    exo_status st = exo_session_create(s, 0, &ss);
    ck_assert_msg(st == EXO_OK, "exo_session_create: %s", exo_shard_last_error(s));
    st = exo_session_forward_tokens(ss, prompt, N_PROMPT, EXO_FORWARD_LAST_ONLY, logits, vocab);
    for (uint32_t i = 0; st == EXO_OK && i < decode; i++) {
        int32_t tok = (int32_t)((i * 37 + 5) % vocab);
        st = exo_session_forward_tokens(ss, &tok, 1, EXO_FORWARD_LAST_ONLY, logits, vocab);
    }
    exo_session_destroy(ss);
    return st;
}

static double max_rel_err(const float *a, const float *b, uint32_t n) {
    double maxabs = 0, err = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (fabs(b[i]) > maxabs) maxabs = fabs(b[i]);
        if (fabs(a[i] - b[i]) > err) err = fabs(a[i] - b[i]);
    }
    return err / (maxabs > 0 ? maxabs : 1);
}

START_TEST(gpus_are_enumerated_ranked_and_selected) {
    setenv("EXO_ZE_TEST_DEVICES", "3", 1);
    exo_runtime *rt = runtime();
    uint32_t found = 0;
    for (uint32_t i = 0; i < exo_device_count(rt); i++) {
        exo_device_info d;
        memset(&d, 0, sizeof d);
        EXO_STRUCT_INIT(&d);
        ck_assert_int_eq(exo_device_get_info(rt, i, &d), EXO_OK);
        if (strcmp(d.plugin, "level_zero") != 0) continue;
        ck_assert_uint_eq(d.position, found); /* Level Zero GPUs rank above everything else */
        ck_assert_uint_eq(d.plugin_index, found);
        ck_assert(d.usable);
        ck_assert_uint_eq(d.selected, found == 0);
        found++;
    }
    ck_assert_uint_eq(found, 3);
    uint32_t index = 99;
    ck_assert_int_eq(exo_device_find(rt, "level_zero:2", &index), EXO_OK);
    ck_assert_uint_eq(index, 2);
    ck_assert_int_ne(exo_device_find(rt, "level_zero:3", &index), EXO_OK);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(exo_device_selects_the_second_gpu_for_default_placement) {
    setenv("EXO_DEVICE", "level_zero:1", 1);
    exo_runtime *rt = runtime();
    uint32_t selected = 99, second = 98;
    const char *reason = NULL;
    ck_assert_int_eq(exo_device_selected(rt, &selected, &reason), EXO_OK);
    ck_assert_int_eq(exo_device_find(rt, "level_zero:1", &second), EXO_OK);
    ck_assert_uint_eq(selected, second);
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_int_eq(load(m, NULL, &s), EXO_OK);
    exo_shard_info info = shard_info(s);
    ck_assert_str_eq(info.plugin, "level_zero");
    ck_assert_uint_eq(info.device, second);
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(a_shard_on_the_second_gpu_matches_the_cpu) {
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *gpu = NULL, *cpu = NULL;
    ck_assert_msg(load(m, "level_zero:1", &gpu) == EXO_OK, "%s", exo_model_last_error(m));
    exo_shard_info info = shard_info(gpu);
    ck_assert_str_eq(info.plugin, "level_zero");
    ck_assert_uint_eq(info.device, 1);
    ck_assert_int_eq(load(m, "cpu_amx", &cpu), EXO_OK);
    uint32_t vocab = info.output_width;
    float *a = calloc(vocab, sizeof *a), *b = calloc(vocab, sizeof *b);
    uint64_t launches = driver_counter("exo_ze_test_driver_launches");
    ck_assert_int_eq(run(gpu, 6, a, vocab), EXO_OK);
    ck_assert_uint_gt(driver_counter("exo_ze_test_driver_launches"), launches); /* kernels really ran */
    ck_assert_int_eq(run(cpu, 6, b, vocab), EXO_OK);
    double err = max_rel_err(a, b, vocab);
    ck_assert_msg(err < 1e-4, "level_zero vs cpu_amx logits: max rel err %g", err);
    exo_shard_destroy(gpu);
    /* Decode steps of one token repeat the same launches: the recorded list is replayed. */
    const char *stats = strstr(logbuf, "graph ran ");
    ck_assert_msg(stats != NULL, "no replay statistics in the log");
    unsigned long long runs = 0, recorded = 0, replayed = 0;
    ck_assert_int_eq(sscanf(stats, "graph ran %llu times: recorded %llu, replayed %llu", &runs, &recorded, &replayed), 3);
    ck_assert_uint_ge(replayed, 4);
    ck_assert_uint_eq(runs, recorded + replayed);
    exo_shard_destroy(cpu);
    free(a);
    free(b);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(telemetry_is_valid_and_sees_allocations) {
    exo_runtime *rt = runtime();
    uint32_t dev = 99;
    ck_assert_int_eq(exo_device_find(rt, "level_zero:0", &dev), EXO_OK);
    exo_device_telemetry t0, t1;
    memset(&t0, 0, sizeof t0);
    EXO_STRUCT_INIT(&t0);
    t1 = t0;
    ck_assert_int_eq(exo_device_telemetry_read(rt, dev, &t0), EXO_OK);
    uint32_t all = EXO_TELEMETRY_MEMORY | EXO_TELEMETRY_UTILIZATION | EXO_TELEMETRY_TEMPERATURE |
                   EXO_TELEMETRY_POWER | EXO_TELEMETRY_FREQUENCY | EXO_TELEMETRY_DRIVER;
    ck_assert_uint_eq(t0.valid & all, all);
    ck_assert(t0.utilization >= 0.0f && t0.utilization <= 1.0f);
    ck_assert(t0.temperature_c > 0.0f && t0.temperature_c < 110.0f);
    ck_assert(t0.power_w > 0.0f && t0.power_w < 1000.0f);
    ck_assert(t0.frequency_mhz > 0.0f);
    ck_assert_uint_gt(t0.memory_used + t0.memory_free, 0);
    ck_assert_str_eq(t0.driver_version, "1.3.26241");
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_int_eq(load(m, "level_zero:0", &s), EXO_OK);
    uint64_t held = driver_counter("exo_ze_test_driver_live_device_bytes");
    ck_assert_uint_ge(held, shard_info(s).weight_bytes);
    ck_assert_int_eq(exo_device_telemetry_read(rt, dev, &t1), EXO_OK);
    /* Sysman's used memory includes the shard (the driver's reading also drifts by up to
     * 112 MiB over time, so compare against the weights rather than exact numbers). */
    ck_assert_uint_eq(t1.memory_used + t1.memory_free, t0.memory_used + t0.memory_free);
    ck_assert_uint_ge(t1.memory_used + 112ull * 1024 * 1024, t0.memory_used + held);
    exo_shard_destroy(s);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_live_device_bytes"), 0);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

/* Loads with no device named, so the core may fall back; returns the plugin it chose. */
static const char *load_default(exo_model *m, exo_shard **s) {
    exo_status st = load(m, NULL, s);
    ck_assert_msg(st == EXO_OK, "%s", exo_model_last_error(m));
    return shard_info(*s).plugin;
}

START_TEST(out_of_device_memory_falls_back_to_the_cpu) {
    setenv("EXO_ZE_TEST_DEVICES", "1", 1);
    setenv("EXO_ZE_TEST_ALLOC_FAIL_AFTER_BYTES", "200000", 1);
    setenv("EXO_PLUGINS_DISABLE", "opencl", 1);
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_str_eq(load_default(m, &s), "cpu_amx");
    ck_assert_msg(strstr(logbuf, "ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY") != NULL, "log:\n%s", logbuf);
    ck_assert_msg(strstr(logbuf, "zeMemAllocDevice") != NULL, "log:\n%s", logbuf);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_live_device_bytes"), 0); /* nothing leaked */
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(the_nth_allocation_failing_falls_back_too) {
    setenv("EXO_ZE_TEST_DEVICES", "1", 1);
    setenv("EXO_ZE_TEST_ALLOC_FAIL_AT", "5", 1);
    setenv("EXO_PLUGINS_DISABLE", "opencl", 1);
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_str_eq(load_default(m, &s), "cpu_amx");
    ck_assert_msg(strstr(logbuf, "EXO_ERR_DEVICE_OOM") || strstr(logbuf, "OUT_OF_DEVICE_MEMORY"), "log:\n%s", logbuf);
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(module_build_failure_falls_back_with_the_build_log) {
    setenv("EXO_ZE_TEST_DEVICES", "1", 1);
    setenv("EXO_ZE_TEST_FAIL", "module_build", 1);
    setenv("EXO_PLUGINS_DISABLE", "opencl", 1);
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_str_eq(load_default(m, &s), "cpu_amx");
    ck_assert_msg(strstr(logbuf, "ZE_RESULT_ERROR_MODULE_BUILD_FAILURE") != NULL, "log:\n%s", logbuf);
    ck_assert_msg(strstr(logbuf, "build log: exo-ze-test-driver: injected failure") != NULL, "log:\n%s", logbuf);
    ck_assert_uint_eq(driver_counter("exo_ze_test_driver_live_device_bytes"), 0);
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(device_lost_after_state_is_reported_as_lost) {
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_int_eq(load(m, "level_zero:0", &s), EXO_OK);
    uint32_t vocab = shard_info(s).output_width;
    float *logits = calloc(vocab, sizeof *logits);
    exo_session *ss = NULL;
    ck_assert_int_eq(exo_session_create(s, 0, &ss), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(ss, prompt, N_PROMPT, EXO_FORWARD_LAST_ONLY, logits, vocab), EXO_OK);
    /* Lose the device at the next submission, whichever it is (an input copy or the graph). */
    void *lib = dlopen(EXO_ZE_TEST_DRIVER, RTLD_NOW | RTLD_NOLOAD);
    void (*lose_at)(uint64_t) = (void (*)(uint64_t))dlsym(lib, "exo_ze_test_driver_set_device_lost_at_submit");
    ck_assert_ptr_nonnull(lose_at);
    lose_at(driver_counter("exo_ze_test_driver_submits") + 1);
    int32_t tok = 5;
    exo_status st = exo_session_forward_tokens(ss, &tok, 1, EXO_FORWARD_LAST_ONLY, logits, vocab);
    ck_assert_int_eq(st, EXO_ERR_DEVICE_LOST);
    ck_assert_msg(strstr(exo_session_last_error(ss), "ZE_RESULT_ERROR_DEVICE_LOST") != NULL, "%s",
                  exo_session_last_error(ss));
    /* It stays lost. */
    ck_assert_int_eq(exo_session_forward_tokens(ss, &tok, 1, EXO_FORWARD_LAST_ONLY, logits, vocab),
                     EXO_ERR_DEVICE_LOST);
    dlclose(lib);
    exo_session_destroy(ss);
    /* A new session on the lost device fails too (before holding state: the caller re-places). */
    ck_assert_int_ne(exo_session_create(s, 0, &ss), EXO_OK);
    exo_shard_destroy(s);
    free(logits);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(device_lost_while_running_the_graph_is_reported_as_lost) {
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    ck_assert_int_eq(load(m, "level_zero:1", &s), EXO_OK);
    uint32_t vocab = shard_info(s).output_width;
    float *logits = calloc(vocab, sizeof *logits);
    exo_session *ss = NULL;
    ck_assert_int_eq(exo_session_create(s, 0, &ss), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(ss, prompt, N_PROMPT, EXO_FORWARD_LAST_ONLY, logits, vocab), EXO_OK);
    void *lib = dlopen(EXO_ZE_TEST_DRIVER, RTLD_NOW | RTLD_NOLOAD);
    void (*lose_at)(uint64_t) = (void (*)(uint64_t))dlsym(lib, "exo_ze_test_driver_set_device_lost_at_execute");
    ck_assert_ptr_nonnull(lose_at);
    lose_at(driver_counter("exo_ze_test_driver_executes") + 1); /* the next graph run */
    int32_t tok = 5;
    ck_assert_int_eq(exo_session_forward_tokens(ss, &tok, 1, EXO_FORWARD_LAST_ONLY, logits, vocab),
                     EXO_ERR_DEVICE_LOST);
    const char *why = exo_session_last_error(ss);
    ck_assert_msg(strstr(why, "zeCommandQueueExecuteCommandLists failed: ZE_RESULT_ERROR_DEVICE_LOST") != NULL, "%s",
                  why);
    ck_assert_msg(strstr(why, "level_zero:1") != NULL, "%s", why);
    dlclose(lib);
    exo_session_destroy(ss);
    exo_shard_destroy(s);
    free(logits);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(weights_above_max_alloc_use_relaxed_limits) {
    setenv("EXO_ZE_TEST_MAX_ALLOC", "65536", 1); /* the embedding table and lm_head are larger */
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *gpu = NULL, *cpu = NULL;
    ck_assert_msg(load(m, "level_zero:0", &gpu) == EXO_OK, "%s", exo_model_last_error(m));
    ck_assert_msg(strstr(logbuf, "-ze-opt-greater-than-4GB-buffer-required") != NULL, "log:\n%s", logbuf);
    ck_assert_int_eq(load(m, "cpu_amx", &cpu), EXO_OK);
    uint32_t vocab = shard_info(gpu).output_width;
    float *a = calloc(vocab, sizeof *a), *b = calloc(vocab, sizeof *b);
    ck_assert_int_eq(run(gpu, 2, a, vocab), EXO_OK);
    ck_assert_int_eq(run(cpu, 2, b, vocab), EXO_OK);
    ck_assert_double_lt(max_rel_err(a, b, vocab), 1e-4);
    free(a);
    free(b);
    exo_shard_destroy(gpu);
    exo_shard_destroy(cpu);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(weights_above_max_alloc_without_relaxed_limits_fall_back) {
    setenv("EXO_ZE_TEST_DEVICES", "1", 1);
    setenv("EXO_ZE_TEST_MAX_ALLOC", "65536", 1);
    setenv("EXO_ZE_TEST_NO_RELAXED_ALLOC", "1", 1);
    setenv("EXO_PLUGINS_DISABLE", "opencl", 1);
    exo_runtime *rt = runtime();
    exo_model *m = model(rt);
    exo_shard *s = NULL;
    exo_status st = load(m, "level_zero:0", &s); /* named: no fallback, the error says why */
    ck_assert_int_eq(st, EXO_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(exo_model_last_error(m), "ZE_experimental_relaxed_allocation_limits") != NULL, "%s",
                  exo_model_last_error(m));
    ck_assert_msg(strstr(exo_model_last_error(m), "65536") != NULL, "%s", exo_model_last_error(m));
    ck_assert_str_eq(load_default(m, &s), "cpu_amx");
    exo_shard_destroy(s);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
}
END_TEST

START_TEST(failed_zeinit_lists_no_level_zero_devices_with_a_hint) {
    setenv("EXO_ZE_TEST_FAIL", "init", 1);
    exo_runtime *rt = runtime();
    for (uint32_t i = 0; i < exo_device_count(rt); i++) {
        exo_device_info d;
        memset(&d, 0, sizeof d);
        EXO_STRUCT_INIT(&d);
        ck_assert_int_eq(exo_device_get_info(rt, i, &d), EXO_OK);
        ck_assert_str_ne(d.plugin, "level_zero");
    }
    ck_assert_msg(strstr(logbuf, "zeInit failed: ZE_RESULT_ERROR_UNINITIALIZED") != NULL, "log:\n%s", logbuf);
    ck_assert_msg(strstr(logbuf, "EXO_ZE_NO_SYSMAN=1") != NULL, "log:\n%s", logbuf);
    exo_runtime_destroy(rt);
}
END_TEST

int main(void) {
    Suite *s = suite_create("level_zero_run");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, gpus_are_enumerated_ranked_and_selected);
    tcase_add_test(tc, exo_device_selects_the_second_gpu_for_default_placement);
    tcase_add_test(tc, a_shard_on_the_second_gpu_matches_the_cpu);
    tcase_add_test(tc, telemetry_is_valid_and_sees_allocations);
    tcase_add_test(tc, out_of_device_memory_falls_back_to_the_cpu);
    tcase_add_test(tc, the_nth_allocation_failing_falls_back_too);
    tcase_add_test(tc, module_build_failure_falls_back_with_the_build_log);
    tcase_add_test(tc, device_lost_after_state_is_reported_as_lost);
    tcase_add_test(tc, device_lost_while_running_the_graph_is_reported_as_lost);
    tcase_add_test(tc, weights_above_max_alloc_use_relaxed_limits);
    tcase_add_test(tc, weights_above_max_alloc_without_relaxed_limits_fall_back);
    tcase_add_test(tc, failed_zeinit_lists_no_level_zero_devices_with_a_hint);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK);
}
