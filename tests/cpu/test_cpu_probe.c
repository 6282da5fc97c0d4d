/* cpu_amx: probe, report, telemetry and buffers. */
#include "cpu_test_graph.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

/* Reads a flag from /proc/cpuinfo independently of the plugin's CPUID code. */
static int cpuinfo_has_flag(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) {
            char pattern[64];
            snprintf(pattern, sizeof pattern, " %s ", flag);
            line[strcspn(line, "\n")] = ' ';
            found = strstr(line, pattern) != NULL;
            break;
        }
    fclose(f);
    return found;
}

START_TEST(probe_reports_one_cpu_device) {
    cpu_fixture fx;
    exo_test_host_init(&fx.host);
    ck_assert_int_eq(exo_test_plugin_load(&fx.host, EXO_TEST_PLUGIN_DIR, "cpu_amx", &fx.api, &fx.ctx), EXO_OK);
    ck_assert_str_eq(fx.api.name, "cpu_amx");
    ck_assert_uint_eq(fx.api.rank, EXO_RANK_CPU);
    ck_assert_ptr_nonnull(strstr(fx.api.build_info, "oneDNN"));
    uint32_t count = 0;
    ck_assert_int_eq(fx.api.probe(fx.ctx, &count), EXO_OK);
    ck_assert_uint_eq(count, 1);
    exo_device_report r;
    memset(&r, 0, sizeof r);
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(fx.api.device_report(fx.ctx, 0, &r), EXO_OK);
    ck_assert_int_eq(r.type, EXO_DEVICE_CPU);
    ck_assert_str_eq(r.fingerprint, "cpu:0");
    ck_assert_uint_gt(r.score, 0);
    ck_assert_uint_gt(r.memory_total, 0);
    ck_assert_uint_gt(r.memory_free, 0);
    ck_assert_uint_le(r.memory_free, r.memory_total);
    ck_assert_uint_ge(r.compute_units, 1);
    ck_assert(r.tflops_fp32 > 0 && r.memory_bandwidth_gbs > 0);
    ck_assert(r.caps & EXO_CAP_UNIFIED_MEMORY);
    ck_assert(strlen(r.reason) > 0);
    ck_assert(strlen(r.isa) > 0);
    ck_assert(strlen(r.name) > 0);
    /* The CPU's brand without CPUID's padding, at either end. */
    ck_assert_msg(r.name[0] != ' ' && r.name[strlen(r.name) - 1] != ' ', "name '%s' is padded", r.name);
    /* Another index does not exist. */
    ck_assert_int_eq(fx.api.device_report(fx.ctx, 1, &r), EXO_ERR_NOT_FOUND);
    exo_test_plugin_unload(&fx.host, &fx.api, fx.ctx);
}
END_TEST

START_TEST(probe_matches_cpu_features) {
    int avx512 = cpuinfo_has_flag("avx512f"), amx = cpuinfo_has_flag("amx_tile");
    int bf16 = cpuinfo_has_flag("avx512_bf16"), vnni = cpuinfo_has_flag("avx512_vnni");
    if (avx512 < 0) exit(77);
    cpu_fixture fx;
    exo_test_host_init(&fx.host);
    ck_assert_int_eq(exo_test_plugin_load(&fx.host, EXO_TEST_PLUGIN_DIR, "cpu_amx", &fx.api, &fx.ctx), EXO_OK);
    uint32_t count;
    ck_assert_int_eq(fx.api.probe(fx.ctx, &count), EXO_OK);
    exo_device_report r;
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(fx.api.device_report(fx.ctx, 0, &r), EXO_OK);
    ck_assert_int_eq(!!(r.caps & EXO_CAP_BF16), bf16);
    ck_assert_int_eq(!!(r.caps & EXO_CAP_INT8_DOT), vnni);
    if (!amx) {
        /* This VM: AMX hidden. Reported absent, with the reason in plain words. */
        ck_assert(!(r.caps & EXO_CAP_MATRIX));
        ck_assert(!(r.caps & EXO_CAP_MATRIX_PRESENT));
        ck_assert_msg(strstr(r.reason, "AMX") != NULL, "reason: %s", r.reason);
        ck_assert_str_ne(r.isa, "avx512_core_amx");
    }
    if (avx512 && !amx) {
        ck_assert_uint_eq(r.score, EXO_SCORE_CAPABLE);
        ck_assert_ptr_nonnull(strstr(r.isa, "avx512"));
    }
    if (amx) ck_assert(r.caps & (EXO_CAP_MATRIX | EXO_CAP_MATRIX_PRESENT));
    exo_test_plugin_unload(&fx.host, &fx.api, fx.ctx);
}
END_TEST

START_TEST(report_respects_a_smaller_struct) {
    cpu_fixture fx;
    exo_test_host_init(&fx.host);
    ck_assert_int_eq(exo_test_plugin_load(&fx.host, EXO_TEST_PLUGIN_DIR, "cpu_amx", &fx.api, &fx.ctx), EXO_OK);
    uint32_t count;
    ck_assert_int_eq(fx.api.probe(fx.ctx, &count), EXO_OK);
    /* An older core knows only the fields up to `reason`; the rest must stay untouched. */
    exo_device_report r;
    memset(&r, 0xAB, sizeof r);
    r.hdr.size = (uint32_t)(offsetof(exo_device_report, reason) + EXO_REASON_MAX);
    r.hdr.version = EXO_ABI_VERSION;
    ck_assert_int_eq(fx.api.device_report(fx.ctx, 0, &r), EXO_OK);
    ck_assert_uint_eq(r.type, EXO_DEVICE_CPU);
    ck_assert_uint_eq((unsigned char)r.fingerprint[0], 0xAB);
    exo_test_plugin_unload(&fx.host, &fx.api, fx.ctx);
}
END_TEST

START_TEST(telemetry_reads_memory_and_utilization) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    exo_device_telemetry t;
    EXO_STRUCT_INIT(&t);
    ck_assert_int_eq(fx.api.device_telemetry(fx.ctx, 0, &t), EXO_OK);
    ck_assert(t.valid & EXO_TELEMETRY_MEMORY);
    ck_assert_uint_gt(t.memory_free, 0);
    ck_assert_uint_gt(t.memory_used, 0);
    /* Utilization is a rate: it needs a second sample. Burn a little CPU in between. */
    volatile double sink = 0;
    for (int i = 0; i < 20000000; i++) sink += i * 0.5;
    ck_assert_int_eq(fx.api.device_telemetry(fx.ctx, 0, &t), EXO_OK);
    ck_assert(t.valid & EXO_TELEMETRY_UTILIZATION);
    ck_assert(t.utilization >= 0.0f && t.utilization <= 1.0f);
    /* Sensors this VM lacks are reported invalid, not as zeros that look real. */
    if (!(t.valid & EXO_TELEMETRY_TEMPERATURE)) ck_assert(t.temperature_c == 0.0f);
    ck_assert_int_eq(fx.api.device_telemetry(fx.ctx, 3, &t), EXO_ERR_NOT_FOUND);
    fx_close(&fx);
}
END_TEST

START_TEST(buffer_roundtrip_and_alignment) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    exo_buffer *b = NULL;
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 0, 1000, EXO_BUFFER_SCRATCH, &b), EXO_OK);
    char in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = (char)(i * 7);
    ck_assert_int_eq(fx.api.buffer_write(b, 900, in, 100), EXO_OK);
    ck_assert_int_eq(fx.api.buffer_read(b, 900, out, 100), EXO_OK);
    ck_assert_mem_eq(in, out, 100);
    fx.api.buffer_free(b);
    fx_close(&fx);
}
END_TEST

START_TEST(buffer_bounds_are_checked) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    exo_buffer *b = NULL;
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 0, 64, EXO_BUFFER_KV, &b), EXO_OK);
    char data[16] = {0};
    ck_assert_int_eq(fx.api.buffer_write(b, 60, data, 16), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(fx.host.last_error, "60") && strstr(fx.host.last_error, "64"), "%s", fx.host.last_error);
    ck_assert_int_eq(fx.api.buffer_read(b, UINT64_MAX - 4, data, 16), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(fx.api.buffer_read(b, 0, NULL, 16), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(fx.api.buffer_read(b, 48, data, 16), EXO_OK);
    fx.api.buffer_free(b);
    fx_close(&fx);
}
END_TEST

START_TEST(buffer_absurd_sizes_fail_cleanly) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    exo_buffer *b = (exo_buffer *)0x1;
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 0, UINT64_MAX / 2, EXO_BUFFER_WEIGHTS, &b), EXO_ERR_NO_MEMORY);
    ck_assert_ptr_null(b);
    ck_assert(strlen(fx.host.last_error) > 0);
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 0, 0, EXO_BUFFER_WEIGHTS, &b), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 2, 64, EXO_BUFFER_WEIGHTS, &b), EXO_ERR_NOT_FOUND);
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 0, 64, (exo_buffer_usage)42, &b), EXO_ERR_INVALID_ARG);
    fx_close(&fx);
}
END_TEST

START_TEST(buffer_wrap_host_is_zero_copy) {
    cpu_fixture fx;
    fx_open(&fx, 1);
    ck_assert_ptr_nonnull(fx.api.buffer_wrap_host);
    float host_mem[32];
    for (int i = 0; i < 32; i++) host_mem[i] = (float)i;
    exo_buffer *b = NULL;
    ck_assert_int_eq(fx.api.buffer_wrap_host(fx.ctx, 0, host_mem, sizeof host_mem, EXO_BUFFER_WEIGHTS, &b), EXO_OK);
    float v = 99.0f;
    ck_assert_int_eq(fx.api.buffer_write(b, 4 * 5, &v, 4), EXO_OK);
    ck_assert(host_mem[5] == 99.0f); /* the write went to the caller's memory */
    host_mem[7] = -3.0f;
    ck_assert_int_eq(fx.api.buffer_read(b, 4 * 7, &v, 4), EXO_OK);
    ck_assert(v == -3.0f);
    ck_assert_int_eq(fx.api.buffer_write(b, sizeof host_mem, &v, 4), EXO_ERR_INVALID_ARG);
    fx.api.buffer_free(b);
    ck_assert(host_mem[0] == 0.0f); /* freeing a wrapper leaves the memory alone */
    fx_close(&fx);
}
END_TEST

START_TEST(buffers_need_an_open_device) {
    cpu_fixture fx;
    exo_test_host_init(&fx.host);
    ck_assert_int_eq(exo_test_plugin_load(&fx.host, EXO_TEST_PLUGIN_DIR, "cpu_amx", &fx.api, &fx.ctx), EXO_OK);
    exo_buffer *b = NULL;
    ck_assert_int_eq(fx.api.buffer_alloc(fx.ctx, 0, 64, EXO_BUFFER_WEIGHTS, &b), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(fx.host.last_error, "not open"));
    exo_test_plugin_unload(&fx.host, &fx.api, fx.ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_probe");
    TCase *tc = tcase_create("probe");
    tcase_add_test(tc, probe_reports_one_cpu_device);
    tcase_add_test(tc, probe_matches_cpu_features);
    tcase_add_test(tc, report_respects_a_smaller_struct);
    tcase_add_test(tc, telemetry_reads_memory_and_utilization);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("buffers");
    tcase_add_test(tb, buffer_roundtrip_and_alignment);
    tcase_add_test(tb, buffer_bounds_are_checked);
    tcase_add_test(tb, buffer_absurd_sizes_fail_cleanly);
    tcase_add_test(tb, buffer_wrap_host_is_zero_copy);
    tcase_add_test(tb, buffers_need_an_open_device);
    suite_add_tcase(s, tb);
    return exo_check_run(s, CK_FORK_GETENV);
}
