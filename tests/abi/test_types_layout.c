/* The plain types both sides share (abi/exo_types.h), frozen: a program built against exo.h and
 * a plugin built against exo_plugin.h read the same bytes, so nothing here may move, change
 * size or change value without a major bump of both versions. This file includes exo_types.h
 * alone, which also proves the header stands on its own. */
#include <check.h>
#include <stddef.h>

#include "check_run.h"

#include "exo_types.h"

#if defined(EXO_ABI_MAJOR) || defined(EXO_API_MAJOR) || defined(EXO_PLUGIN_H) || defined(EXO_H)
#error "exo_types.h must not pull in either side's header or version"
#endif

#define FROZEN(type, member, off) _Static_assert(offsetof(type, member) == (off), #type "." #member " moved")
#define VALUE(name, v) _Static_assert((name) == (v), #name " changed")

FROZEN(exo_struct_header, size, 0);
FROZEN(exo_struct_header, version, 4);
_Static_assert(sizeof(exo_struct_header) == 8, "exo_struct_header size");

VALUE(EXO_MAKE_VERSION(1, 2), 0x00010002u);
VALUE(EXO_VERSION_MAJOR(0x00030004u), 3u);
VALUE(EXO_VERSION_MINOR(0x00030004u), 4u);

VALUE(EXO_OK, 0);
VALUE(EXO_NOT_READY, 1);
VALUE(EXO_ERR_INVALID_ARG, -1);
VALUE(EXO_ERR_NO_MEMORY, -2);
VALUE(EXO_ERR_DEVICE_OOM, -3);
VALUE(EXO_ERR_UNSUPPORTED, -4);
VALUE(EXO_ERR_ABI_MISMATCH, -5);
VALUE(EXO_ERR_PLUGIN_LOAD, -6);
VALUE(EXO_ERR_NO_DEVICE, -7);
VALUE(EXO_ERR_DEVICE_LOST, -8);
VALUE(EXO_ERR_BACKEND, -9);
VALUE(EXO_ERR_TIMEOUT, -10);
VALUE(EXO_ERR_ABORTED, -11);
VALUE(EXO_ERR_INTERNAL, -12);
VALUE(EXO_ERR_IO, -13);
VALUE(EXO_ERR_FORMAT, -14);
VALUE(EXO_ERR_NOT_FOUND, -15);
VALUE(EXO_ERR_BUFFER_TOO_SMALL, -16);
_Static_assert(sizeof(exo_status) == 4, "exo_status size");

VALUE(EXO_LOG_ERROR, 0);
VALUE(EXO_LOG_WARN, 1);
VALUE(EXO_LOG_INFO, 2);
VALUE(EXO_LOG_DEBUG, 3);
VALUE(EXO_LOG_TRACE, 4);

VALUE(EXO_DTYPE_F32, 0);
VALUE(EXO_DTYPE_F16, 1);
VALUE(EXO_DTYPE_BF16, 2);
VALUE(EXO_DTYPE_I32, 3);
VALUE(EXO_DTYPE_Q8_0, 4);
VALUE(EXO_DTYPE_MLX_AFFINE, 5);

VALUE(EXO_DEVICE_UNKNOWN, 0);
VALUE(EXO_DEVICE_DISCRETE_GPU, 1);
VALUE(EXO_DEVICE_INTEGRATED_GPU, 2);
VALUE(EXO_DEVICE_CPU, 3);
VALUE(EXO_DEVICE_ACCELERATOR, 4);
VALUE(EXO_CAP_FP16, 1ull << 0);
VALUE(EXO_CAP_BF16, 1ull << 1);
VALUE(EXO_CAP_INT8_DOT, 1ull << 2);
VALUE(EXO_CAP_MATRIX, 1ull << 3);
VALUE(EXO_CAP_UNIFIED_MEMORY, 1ull << 4);
VALUE(EXO_CAP_SUBGROUPS, 1ull << 5);
VALUE(EXO_CAP_INT4_WEIGHTS, 1ull << 6);
VALUE(EXO_CAP_MATRIX_PRESENT, 1ull << 7);
VALUE(EXO_NAME_MAX, 128);
VALUE(EXO_REASON_MAX, 256);

FROZEN(exo_device_report, hdr, 0);
FROZEN(exo_device_report, score, 8);
FROZEN(exo_device_report, type, 12);
FROZEN(exo_device_report, reason, 16);
FROZEN(exo_device_report, fingerprint, 272);
FROZEN(exo_device_report, name, 336);
FROZEN(exo_device_report, vendor, 464);
FROZEN(exo_device_report, vendor_id, 528);
FROZEN(exo_device_report, device_id, 532);
FROZEN(exo_device_report, driver_version, 536);
FROZEN(exo_device_report, api_version, 600);
FROZEN(exo_device_report, memory_total, 632);
FROZEN(exo_device_report, memory_free, 640);
FROZEN(exo_device_report, max_alloc, 648);
FROZEN(exo_device_report, compute_units, 656);
FROZEN(exo_device_report, clock_mhz, 660);
FROZEN(exo_device_report, caps, 664);
FROZEN(exo_device_report, tflops_fp32, 672);
FROZEN(exo_device_report, tflops_fp16, 676);
FROZEN(exo_device_report, tflops_int8, 680);
FROZEN(exo_device_report, memory_bandwidth_gbs, 684);
FROZEN(exo_device_report, isa, 688);
_Static_assert(sizeof(exo_device_report) == 752, "exo_device_report size");

VALUE(EXO_TELEMETRY_MEMORY, 1u << 0);
VALUE(EXO_TELEMETRY_UTILIZATION, 1u << 1);
VALUE(EXO_TELEMETRY_TEMPERATURE, 1u << 2);
VALUE(EXO_TELEMETRY_POWER, 1u << 3);
VALUE(EXO_TELEMETRY_FREQUENCY, 1u << 4);
VALUE(EXO_TELEMETRY_DRIVER, 1u << 5);
FROZEN(exo_device_telemetry, hdr, 0);
FROZEN(exo_device_telemetry, valid, 8);
FROZEN(exo_device_telemetry, memory_used, 16);
FROZEN(exo_device_telemetry, memory_free, 24);
FROZEN(exo_device_telemetry, utilization, 32);
FROZEN(exo_device_telemetry, temperature_c, 36);
FROZEN(exo_device_telemetry, power_w, 40);
FROZEN(exo_device_telemetry, frequency_mhz, 44);
FROZEN(exo_device_telemetry, driver_version, 48);
_Static_assert(sizeof(exo_device_telemetry) == 112, "exo_device_telemetry size");

/* EXO_STRUCT_HAS reads hdr.size only: a reader of a shared struct never goes past it. */
START_TEST(struct_has_goes_by_the_header_size) {
    exo_device_telemetry t = {.hdr = {offsetof(exo_device_telemetry, memory_free), 0}};
    ck_assert(EXO_STRUCT_HAS(&t, exo_device_telemetry, memory_used));
    ck_assert(!EXO_STRUCT_HAS(&t, exo_device_telemetry, memory_free));
    t.hdr.size = sizeof t;
    ck_assert(EXO_STRUCT_HAS(&t, exo_device_telemetry, driver_version));
}
END_TEST

int main(void) {
    Suite *s = suite_create("types");
    TCase *tc = tcase_create("types");
    tcase_add_test(tc, struct_has_goes_by_the_header_size);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
