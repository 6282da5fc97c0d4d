/* The OpenCL plugin's probe: PoCL's CPU device as the report describes it (cross-checked with
 * direct OpenCL queries), the "0 devices because ..." paths (no ICD loader, no platform), and
 * the table's ABI manners (caller-sized structs, index checks).
 *
 * Every test loads the plugin and probes inside its own forked child: PoCL starts worker threads
 * on first use, and ocl-icd reads OCL_ICD_VENDORS once per process, so nothing OpenCL may run in
 * the parent (the suite forces fork mode for that reason). */
#include "ocl_api.h" /* cl_error_name and CL headers (CL_TARGET_OPENCL_VERSION 300) */
#include "test_host.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"

typedef struct loaded {
    exo_test_host host;
    exo_plugin_api api;
    exo_plugin_ctx *ctx;
} loaded;

static void load(loaded *l) {
    exo_test_host_init(&l->host);
    exo_status st = exo_test_plugin_load(&l->host, EXO_TEST_PLUGIN_DIR, "opencl", &l->api, &l->ctx);
    ck_assert_msg(st == EXO_OK, "loading the opencl plugin: %d %s", st, l->host.last_error);
}

static uint32_t probe_ok(loaded *l) {
    uint32_t count = 99;
    exo_status st = l->api.probe(l->ctx, &count);
    ck_assert_msg(st == EXO_OK, "probe: %d %s\nlog:\n%s", st, l->host.last_error, l->host.log);
    ck_assert_uint_ge(count, 1);
    return count;
}

static void report_of(loaded *l, uint32_t index, exo_device_report *r) {
    memset(r, 0, sizeof *r);
    EXO_STRUCT_INIT(r);
    exo_status st = l->api.device_report(l->ctx, index, r);
    ck_assert_msg(st == EXO_OK, "device_report(%u): %d %s", index, st, l->host.last_error);
}

/* Index of the first CPU device, after checking there is one. */
static uint32_t find_cpu(loaded *l, uint32_t count, exo_device_report *r) {
    for (uint32_t k = 0; k < count; k++) {
        report_of(l, k, r);
        if (r->type == EXO_DEVICE_CPU) return k;
    }
    ck_abort_msg("no CPU device among %u OpenCL devices (PoCL expected)", count);
    return 0;
}

static void cpu_model_name(char *out, size_t size) {
    out[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(out, size, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
}

START_TEST(pocl_cpu_device_is_servable_cpu0) {
    loaded l;
    load(&l);
    uint32_t count = probe_ok(&l);
    exo_device_report r;
    find_cpu(&l, count, &r);
    char model[256];
    cpu_model_name(model, sizeof model);
    ck_assert_msg(strstr(r.name, "pthread") || (model[0] && strstr(r.name, model)),
                  "name '%s' names neither the CPU ('%s') nor PoCL's pthread device", r.name, model);
    ck_assert_uint_eq(r.score, EXO_SCORE_SERVABLE);
    ck_assert_str_eq(r.reason, "CPU OpenCL device (PoCL): usable, but the cpu_amx plugin serves this CPU better");
    ck_assert_str_eq(r.fingerprint, "cpu:0");
    ck_assert_uint_gt(r.memory_total, 0);
    ck_assert_uint_eq(r.memory_free, r.memory_total);
    ck_assert_uint_gt(r.max_alloc, 0);
    ck_assert_uint_le(r.max_alloc, r.memory_total);
    ck_assert_msg(strncmp(r.api_version, "OpenCL", 6) == 0, "api_version '%s'", r.api_version);
    ck_assert_msg(r.driver_version[0] != '\0', "driver_version is empty");
    ck_assert_uint_ge(r.compute_units, 1);
    ck_assert(r.caps & EXO_CAP_UNIFIED_MEMORY);
    ck_assert_uint_eq(r.hdr.size, sizeof r);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

/* The report against the same queries made directly through libOpenCL. */
START_TEST(report_matches_direct_queries) {
    loaded l;
    load(&l);
    uint32_t count = probe_ok(&l);
    exo_device_report r;
    find_cpu(&l, count, &r);

    cl_platform_id platforms[8];
    cl_uint n_platforms = 0;
    ck_assert_int_eq(clGetPlatformIDs(8, platforms, &n_platforms), CL_SUCCESS);
    cl_device_id dev = NULL;
    for (cl_uint p = 0; p < n_platforms && !dev; p++) {
        cl_uint n = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_CPU, 1, &dev, &n) != CL_SUCCESS) dev = NULL;
    }
    ck_assert_msg(dev != NULL, "no CPU device through libOpenCL directly");
    char name[256], version[256], extensions[8192];
    cl_ulong mem = 0, alloc = 0;
    cl_uint units = 0, clock = 0;
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL), CL_SUCCESS);
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof version, version, NULL), CL_SUCCESS);
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, sizeof extensions, extensions, NULL), CL_SUCCESS);
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL), CL_SUCCESS);
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof alloc, &alloc, NULL), CL_SUCCESS);
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL), CL_SUCCESS);
    ck_assert_int_eq(clGetDeviceInfo(dev, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof clock, &clock, NULL), CL_SUCCESS);

    ck_assert_str_eq(r.name, name);
    ck_assert_uint_eq(r.memory_total, mem);
    ck_assert_uint_eq(r.max_alloc, alloc);
    ck_assert_uint_eq(r.compute_units, units);
    ck_assert_uint_eq(r.clock_mhz, clock);
    ck_assert_msg(strncmp(version, r.api_version, strlen(r.api_version)) == 0,
                  "api_version '%s' is not the start of CL_DEVICE_VERSION '%s'", r.api_version, version);
    ck_assert_msg(strstr(version, r.isa) != NULL, "isa '%s' is not from '%s'", r.isa, version);
    int fp16 = strstr(extensions, "cl_khr_fp16") != NULL;
    int subgroups = strstr(extensions, "cl_khr_subgroups") || strstr(extensions, "cl_intel_subgroups");
    ck_assert_int_eq((r.caps & EXO_CAP_FP16) != 0, fp16);
    ck_assert_int_eq((r.caps & EXO_CAP_SUBGROUPS) != 0, subgroups);
    /* Estimates follow from the counts; with a known clock they are positive. */
    if (clock > 0) {
        ck_assert_float_gt(r.tflops_fp32, 0.0f);
        ck_assert_float_ge(r.tflops_int8, r.tflops_fp32);
        ck_assert_float_gt(r.memory_bandwidth_gbs, 0.0f);
    }
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(missing_loader_gives_zero_devices_and_reason) {
    ck_assert_int_eq(setenv("EXO_OPENCL_LIBRARY", "libdoesnotexist.so", 1), 0);
    loaded l;
    load(&l);
    uint32_t count = 99;
    exo_status st = l.api.probe(l.ctx, &count);
    ck_assert_int_eq(st, EXO_ERR_NO_DEVICE);
    ck_assert_uint_eq(count, 0);
    const char *want = "OpenCL ICD loader libdoesnotexist.so not found: ";
    ck_assert_msg(strncmp(l.host.last_error, want, strlen(want)) == 0, "reason: '%s'", l.host.last_error);
    ck_assert_msg(strstr(l.host.last_error + strlen(want), "libdoesnotexist.so"),
                  "reason lacks the dlerror text: '%s'", l.host.last_error);
    ck_assert_msg(strstr(l.host.log, "libdoesnotexist.so not found"), "not logged:\n%s", l.host.log);
    exo_device_report r;
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(l.api.device_report(l.ctx, 0, &r), EXO_ERR_NOT_FOUND);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(no_icd_vendor_gives_platform_not_found) {
    char dir[] = "/tmp/exo-ocl-empty-vendors-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(setenv("OCL_ICD_VENDORS", dir, 1), 0);
    loaded l;
    load(&l);
    uint32_t count = 99;
    exo_status st = l.api.probe(l.ctx, &count);
    rmdir(dir);
    ck_assert_int_eq(st, EXO_ERR_NO_DEVICE);
    ck_assert_uint_eq(count, 0);
    ck_assert_msg(strstr(l.host.last_error, "CL_PLATFORM_NOT_FOUND_KHR (-1001)"), "reason: '%s'", l.host.last_error);
    ck_assert_msg(strncmp(l.host.last_error, "no OpenCL platform", 18) == 0, "reason: '%s'", l.host.last_error);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(probe_twice_gives_the_same_devices) {
    loaded l;
    load(&l);
    uint32_t first = probe_ok(&l);
    exo_device_report a, b;
    report_of(&l, 0, &a);
    uint32_t second = probe_ok(&l);
    report_of(&l, 0, &b);
    ck_assert_uint_eq(first, second);
    ck_assert_str_eq(a.name, b.name);
    ck_assert_str_eq(a.fingerprint, b.fingerprint);
    ck_assert_uint_eq(a.memory_total, b.memory_total);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(report_index_out_of_range_is_not_found) {
    loaded l;
    load(&l);
    uint32_t count = probe_ok(&l);
    exo_device_report r;
    EXO_STRUCT_INIT(&r);
    ck_assert_int_eq(l.api.device_report(l.ctx, count, &r), EXO_ERR_NOT_FOUND);
    ck_assert_msg(strstr(l.host.last_error, "no device"), "detail: '%s'", l.host.last_error);
    exo_device_telemetry t;
    EXO_STRUCT_INIT(&t);
    ck_assert_int_eq(l.api.device_telemetry(l.ctx, count, &t), EXO_ERR_NOT_FOUND);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

/* An older core's smaller report struct: the plugin writes only the members it holds. */
START_TEST(report_writes_only_what_the_caller_holds) {
    loaded l;
    load(&l);
    probe_ok(&l);
    unsigned char buffer[sizeof(exo_device_report)];
    memset(buffer, 0xA5, sizeof buffer);
    exo_device_report *r = (exo_device_report *)buffer;
    uint32_t small = (uint32_t)offsetof(exo_device_report, fingerprint);
    r->hdr.size = small;
    r->hdr.version = EXO_ABI_VERSION;
    ck_assert_int_eq(l.api.device_report(l.ctx, 0, r), EXO_OK);
    ck_assert_uint_eq(r->hdr.size, small);
    ck_assert_uint_ne(r->score, 0xA5A5A5A5u);
    for (size_t k = small; k < sizeof buffer; k++) ck_assert_uint_eq(buffer[k], 0xA5);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(telemetry_reports_the_driver) {
    loaded l;
    load(&l);
    probe_ok(&l);
    exo_device_report r;
    report_of(&l, 0, &r);
    exo_device_telemetry t;
    memset(&t, 0, sizeof t);
    EXO_STRUCT_INIT(&t);
    ck_assert_int_eq(l.api.device_telemetry(l.ctx, 0, &t), EXO_OK);
    ck_assert(t.valid & EXO_TELEMETRY_DRIVER);
    ck_assert_str_eq(t.driver_version, r.driver_version);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

/* The table as the core sees it: named, ranked, able to run graphs, and without
 * buffer_wrap_host (weights are copied to device memory). */
START_TEST(table_is_opencl_ranked_with_work_entries) {
    loaded l;
    load(&l);
    ck_assert_str_eq(l.api.name, "opencl");
    ck_assert_uint_eq(l.api.rank, EXO_RANK_OPENCL);
    ck_assert_ptr_nonnull(l.api.probe);
    ck_assert_ptr_nonnull(l.api.device_report);
    ck_assert_ptr_nonnull(l.api.device_open);
    ck_assert_ptr_nonnull(l.api.buffer_alloc);
    ck_assert_ptr_nonnull(l.api.supports_graph);
    ck_assert_ptr_nonnull(l.api.graph_compile);
    ck_assert_ptr_nonnull(l.api.graph_execute);
    ck_assert_ptr_null(l.api.buffer_wrap_host);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(loader_without_entry_points_is_unusable) {
    ck_assert_int_eq(setenv("EXO_OPENCL_LIBRARY", "libc.so.6", 1), 0);
    loaded l;
    load(&l);
    uint32_t count = 99;
    ck_assert_int_eq(l.api.probe(l.ctx, &count), EXO_ERR_NO_DEVICE);
    ck_assert_uint_eq(count, 0);
    ck_assert_str_eq(l.host.last_error, "OpenCL ICD loader libc.so.6 is unusable: libc.so.6 does not export clGetPlatformIDs");
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

/* ---- the stand-in loader (fake_opencl.c): devices this machine does not have */

static uint32_t probe_fake(loaded *l) {
    ck_assert_int_eq(setenv("EXO_OPENCL_LIBRARY", EXO_FAKE_OPENCL, 1), 0);
    load(l);
    return probe_ok(l);
}

START_TEST(fake_platform_without_devices_is_skipped) {
    loaded l;
    ck_assert_uint_eq(probe_fake(&l), 6); /* six devices on platform 0, none on platform 1 */
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(fake_intel_discrete_gpu) {
    loaded l;
    probe_fake(&l);
    exo_device_report r;
    report_of(&l, 0, &r);
    ck_assert_int_eq(r.type, EXO_DEVICE_DISCRETE_GPU);
    ck_assert_uint_eq(r.score, EXO_SCORE_PREFERRED);
    ck_assert_str_eq(r.fingerprint, "0000:03:00.0"); /* PCI wins over the UUID it also has */
    ck_assert_uint_eq(r.caps, EXO_CAP_FP16 | EXO_CAP_SUBGROUPS | EXO_CAP_INT8_DOT | EXO_CAP_MATRIX);
    ck_assert_str_eq(r.isa, "ip 12.55.8");
    ck_assert_uint_eq(r.vendor_id, 0x8086);
    ck_assert_uint_eq(r.device_id, 0x56a0);
    ck_assert_uint_eq(r.compute_units, 512);
    ck_assert_str_eq(r.api_version, "OpenCL 3.0");
    ck_assert_str_eq(r.driver_version, "1.2.3-fake");
    ck_assert_uint_eq(r.memory_total, 16ull << 30);
    ck_assert_uint_eq(r.max_alloc, 4ull << 30);
    ck_assert_float_gt(r.tflops_fp32, 0.0f);
    ck_assert_float_gt(r.tflops_fp16, r.tflops_fp32);
    ck_assert_float_gt(r.tflops_int8, r.tflops_fp16);
    ck_assert_float_gt(r.memory_bandwidth_gbs, 100.0f);
    ck_assert_msg(strstr(r.reason, "estimates"), "reason '%s'", r.reason);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(fake_intel_integrated_gpu) {
    loaded l;
    probe_fake(&l);
    exo_device_report r;
    report_of(&l, 1, &r);
    ck_assert_int_eq(r.type, EXO_DEVICE_INTEGRATED_GPU);
    ck_assert_uint_eq(r.score, EXO_SCORE_CAPABLE);
    ck_assert_str_eq(r.fingerprint, "uuid:000102030405060708090a0b0c0d0e0f");
    /* DPAS without cl_intel_subgroup_matrix_multiply_accumulate: present, not usable. */
    ck_assert_uint_eq(r.caps, EXO_CAP_FP16 | EXO_CAP_SUBGROUPS | EXO_CAP_INT8_DOT | EXO_CAP_UNIFIED_MEMORY |
                                  EXO_CAP_MATRIX_PRESENT);
    ck_assert_float_le(r.memory_bandwidth_gbs, 100.0f);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(fake_nvidia_gpu_fingerprint_from_bus_and_slot) {
    loaded l;
    probe_fake(&l);
    exo_device_report r;
    report_of(&l, 2, &r);
    ck_assert_int_eq(r.type, EXO_DEVICE_DISCRETE_GPU);
    ck_assert_uint_eq(r.score, EXO_SCORE_PREFERRED);
    ck_assert_str_eq(r.fingerprint, "0001:41:02.0");
    ck_assert_str_eq(r.isa, "sm_86");
    ck_assert_uint_eq(r.caps, 0);
    /* 84 SMs x 128 lanes x 2 x 1.7 GHz */
    ck_assert_float_eq_tol(r.tflops_fp32, 84 * 128 * 2 * 1.7f / 1000.0f, 0.01f);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(fake_unusable_devices_say_why) {
    loaded l;
    probe_fake(&l);
    exo_device_report r;
    report_of(&l, 3, &r);
    ck_assert_uint_eq(r.score, EXO_SCORE_UNUSABLE);
    ck_assert_msg(strstr(r.reason, "CL_DEVICE_AVAILABLE = false"), "reason '%s'", r.reason);
    report_of(&l, 4, &r);
    ck_assert_uint_eq(r.score, EXO_SCORE_UNUSABLE);
    ck_assert_msg(strstr(r.reason, "OpenCL C 1.1"), "reason '%s'", r.reason);
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(fake_non_pci_accelerator) {
    loaded l;
    probe_fake(&l);
    exo_device_report r;
    report_of(&l, 5, &r);
    ck_assert_int_eq(r.type, EXO_DEVICE_ACCELERATOR);
    ck_assert_uint_eq(r.score, EXO_SCORE_SERVABLE);
    ck_assert_uint_eq(r.vendor_id, 0); /* 0x10006 is a Khronos vendor id, not a PCI one */
    ck_assert_str_eq(r.fingerprint, "opencl:0.5");
    exo_test_plugin_unload(&l.host, &l.api, l.ctx);
}
END_TEST

START_TEST(cl_error_names) {
    ck_assert_str_eq(cl_error_name(CL_SUCCESS), "CL_SUCCESS");
    ck_assert_str_eq(cl_error_name(CL_DEVICE_NOT_FOUND), "CL_DEVICE_NOT_FOUND");
    ck_assert_str_eq(cl_error_name(CL_INVALID_VALUE), "CL_INVALID_VALUE");
    ck_assert_str_eq(cl_error_name(CL_MAX_SIZE_RESTRICTION_EXCEEDED), "CL_MAX_SIZE_RESTRICTION_EXCEEDED");
    ck_assert_str_eq(cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    ck_assert_str_eq(cl_error_name(-424242), "CL_UNKNOWN_ERROR");
}
END_TEST

int main(void) {
    Suite *s = suite_create("opencl_probe");
    TCase *pocl = tcase_create("pocl");
    tcase_set_timeout(pocl, 120); /* PoCL's first initialisation can take a few seconds under ASan */
    tcase_add_test(pocl, pocl_cpu_device_is_servable_cpu0);
    tcase_add_test(pocl, report_matches_direct_queries);
    tcase_add_test(pocl, probe_twice_gives_the_same_devices);
    tcase_add_test(pocl, report_index_out_of_range_is_not_found);
    tcase_add_test(pocl, report_writes_only_what_the_caller_holds);
    tcase_add_test(pocl, telemetry_reports_the_driver);
    suite_add_tcase(s, pocl);
    TCase *none = tcase_create("no_device");
    tcase_set_timeout(none, 60);
    tcase_add_test(none, missing_loader_gives_zero_devices_and_reason);
    tcase_add_test(none, no_icd_vendor_gives_platform_not_found);
    suite_add_tcase(s, none);
    tcase_add_test(none, loader_without_entry_points_is_unusable);
    TCase *fake = tcase_create("fake_icd");
    tcase_add_test(fake, fake_platform_without_devices_is_skipped);
    tcase_add_test(fake, fake_intel_discrete_gpu);
    tcase_add_test(fake, fake_intel_integrated_gpu);
    tcase_add_test(fake, fake_nvidia_gpu_fingerprint_from_bus_and_slot);
    tcase_add_test(fake, fake_unusable_devices_say_why);
    tcase_add_test(fake, fake_non_pci_accelerator);
    suite_add_tcase(s, fake);
    TCase *table = tcase_create("table");
    tcase_add_test(table, table_is_opencl_ranked_with_work_entries);
    tcase_add_test(table, cl_error_names);
    suite_add_tcase(s, table);

    /* Each test needs a fresh process (see the top comment); CK_FORK=no would make them lie. */
    return exo_check_run(s, CK_FORK);
}
