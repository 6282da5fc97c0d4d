/* The plugin ABI layout, frozen: v1.0's offsets, then each minor's appended members. A change
 * here means a plugin built against an earlier header would be misread: such a change needs a
 * major version bump (abi/exo_plugin.h). */
#include <check.h>
#include <stddef.h>
#include <string.h>

#include "check_run.h"

#include "exo_plugin.h"

#define FROZEN(type, member, off) _Static_assert(offsetof(type, member) == (off), #type "." #member " moved")

FROZEN(exo_struct_header, size, 0);
FROZEN(exo_struct_header, version, 4);
_Static_assert(sizeof(exo_struct_header) == 8, "header size");

FROZEN(exo_host_api, host_ctx, 8);
FROZEN(exo_host_api, log, 16);
FROZEN(exo_host_api, set_error, 24);
FROZEN(exo_host_api, get_env, 32);
FROZEN(exo_host_api, alloc, 40);
FROZEN(exo_host_api, free, 48);
FROZEN(exo_host_api, now_ns, 56);
FROZEN(exo_host_api, cpu_threads, 64);
_Static_assert(sizeof(exo_host_api) == 72, "exo_host_api size");

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

FROZEN(exo_device_telemetry, valid, 8);
FROZEN(exo_device_telemetry, memory_used, 16);
FROZEN(exo_device_telemetry, memory_free, 24);
FROZEN(exo_device_telemetry, utilization, 32);
FROZEN(exo_device_telemetry, temperature_c, 36);
FROZEN(exo_device_telemetry, power_w, 40);
FROZEN(exo_device_telemetry, frequency_mhz, 44);
FROZEN(exo_device_telemetry, driver_version, 48);

FROZEN(exo_tensor, id, 0);
FROZEN(exo_tensor, dtype, 4);
FROZEN(exo_tensor, flags, 8);
FROZEN(exo_tensor, n_dims, 12);
FROZEN(exo_tensor, ne, 16);
FROZEN(exo_tensor, nb, 48);
FROZEN(exo_tensor, buffer, 80);
FROZEN(exo_tensor, offset, 88);
FROZEN(exo_tensor, name, 96);
_Static_assert(sizeof(exo_tensor) == 144, "exo_tensor size");

FROZEN(exo_node, op, 0);
FROZEN(exo_node, dst, 4);
FROZEN(exo_node, n_src, 8);
FROZEN(exo_node, src, 12);
FROZEN(exo_node, i, 36);
FROZEN(exo_node, f, 68);
_Static_assert(sizeof(exo_node) == 100, "exo_node size");

FROZEN(exo_graph, n_tensors, 8);
FROZEN(exo_graph, tensors, 16);
FROZEN(exo_graph, n_nodes, 24);
FROZEN(exo_graph, nodes, 32);
FROZEN(exo_graph, n_buffers, 40);
FROZEN(exo_graph, buffers, 48);
FROZEN(exo_graph, max_tokens, 56);

FROZEN(exo_binding, tensor, 0);
FROZEN(exo_binding, buffer, 8);
FROZEN(exo_binding, offset, 16);
FROZEN(exo_exec_args, n_tokens, 8);
FROZEN(exo_exec_args, n_bindings, 12);
FROZEN(exo_exec_args, bindings, 16);

FROZEN(exo_plugin_api, name, 8);
FROZEN(exo_plugin_api, version, 16);
FROZEN(exo_plugin_api, build_info, 24);
FROZEN(exo_plugin_api, rank, 32);
FROZEN(exo_plugin_api, init, 40);
FROZEN(exo_plugin_api, shutdown, 48);
FROZEN(exo_plugin_api, probe, 56);
FROZEN(exo_plugin_api, device_report, 64);
FROZEN(exo_plugin_api, device_telemetry, 72);
FROZEN(exo_plugin_api, device_open, 80);
FROZEN(exo_plugin_api, device_close, 88);
FROZEN(exo_plugin_api, buffer_alloc, 96);
FROZEN(exo_plugin_api, buffer_wrap_host, 104);
FROZEN(exo_plugin_api, buffer_write, 112);
FROZEN(exo_plugin_api, buffer_read, 120);
FROZEN(exo_plugin_api, buffer_free, 128);
FROZEN(exo_plugin_api, supports_graph, 136);
FROZEN(exo_plugin_api, graph_compile, 144);
FROZEN(exo_plugin_api, graph_execute, 152);
FROZEN(exo_plugin_api, compiled_free, 160);
/* 1.0's table ended here (168 bytes); 1.1 appended probe_build_info. */
FROZEN(exo_plugin_api, probe_build_info, 168);
_Static_assert(sizeof(exo_plugin_api) == 176, "exo_plugin_api size (1.1)");
_Static_assert(EXO_ABI_MAJOR == 1 && EXO_ABI_MINOR >= 1, "ABI version");

/* Enum values are part of the ABI too. */
_Static_assert(EXO_OP_GET_ROWS == 0 && EXO_OP_ATTENTION == 8 && EXO_OP_COPY == 10 && EXO_OP_COUNT == 11, "op ids");
_Static_assert(EXO_DTYPE_F32 == 0 && EXO_DTYPE_BF16 == 2 && EXO_DTYPE_Q8_0 == 4, "dtype ids");
_Static_assert(EXO_ERR_NOT_FOUND == -15, "status ids");

START_TEST(version_macros_round_trip) {
    uint32_t v = EXO_MAKE_VERSION(3, 7);
    ck_assert_uint_eq(EXO_VERSION_MAJOR(v), 3);
    ck_assert_uint_eq(EXO_VERSION_MINOR(v), 7);
    ck_assert_uint_eq(EXO_ABI_VERSION, EXO_MAKE_VERSION(EXO_ABI_MAJOR, EXO_ABI_MINOR));
}
END_TEST

START_TEST(struct_has_checks_the_declared_size) {
    exo_device_report r;
    EXO_STRUCT_INIT(&r);
    ck_assert(EXO_STRUCT_HAS(&r, exo_device_report, isa));
    r.hdr.size = (uint32_t)offsetof(exo_device_report, isa);
    ck_assert(!EXO_STRUCT_HAS(&r, exo_device_report, isa));
    ck_assert(EXO_STRUCT_HAS(&r, exo_device_report, memory_bandwidth_gbs));
}
END_TEST

START_TEST(plugin_fill_writes_only_what_fits) {
    exo_plugin_api mine = {0};
    mine.name = "x";
    mine.rank = 7;
    mine.compiled_free = (void (*)(exo_compiled *))0x1234;
    struct { exo_plugin_api api; unsigned char guard[32]; } core;
    for (size_t i = 0; i < sizeof core; i++) ((unsigned char *)&core)[i] = 0xab;
    core.api.hdr.version = EXO_ABI_VERSION;
    core.api.hdr.size = (uint32_t)offsetof(exo_plugin_api, device_telemetry);
    ck_assert_int_eq(exo_plugin_fill(&core.api, &mine), EXO_OK);
    ck_assert_str_eq(core.api.name, "x");
    ck_assert_uint_eq(core.api.rank, 7);
    const unsigned char *tail = (const unsigned char *)&core.api + offsetof(exo_plugin_api, device_telemetry);
    for (size_t i = 0; i < sizeof(exo_plugin_api) - offsetof(exo_plugin_api, device_telemetry); i++)
        ck_assert_uint_eq(tail[i], 0xab);
}
END_TEST

START_TEST(plugin_fill_refuses_another_major) {
    exo_plugin_api mine = {0}, core;
    core.hdr.size = sizeof core;
    core.hdr.version = EXO_MAKE_VERSION(EXO_ABI_MAJOR + 1, 0);
    ck_assert_int_eq(exo_plugin_fill(&core, &mine), EXO_ERR_ABI_MISMATCH);
    ck_assert_uint_eq(core.hdr.version, EXO_ABI_VERSION);
}
END_TEST

START_TEST(struct_copy_out_fills_only_what_both_layouts_hold) {
    exo_device_report mine;
    memset(&mine, 0x11, sizeof mine);
    EXO_STRUCT_INIT(&mine);
    /* An older reader: its struct ends after `reason`; what lies beyond is not its memory. */
    size_t older = offsetof(exo_device_report, fingerprint);
    unsigned char theirs[sizeof mine];
    memset(theirs, 0xab, sizeof theirs);
    exo_struct_header h = {(uint32_t)older, EXO_MAKE_VERSION(1, 0)};
    memcpy(theirs, &h, sizeof h);
    ck_assert_int_eq(exo_struct_copy_out(theirs, &mine, sizeof mine), EXO_OK);
    exo_struct_header after;
    memcpy(&after, theirs, sizeof after);
    ck_assert_uint_eq(after.size, older); /* the header stays the allocator's */
    ck_assert_uint_eq(after.version, EXO_MAKE_VERSION(1, 0));
    for (size_t k = sizeof h; k < older; k++) ck_assert_uint_eq(theirs[k], 0x11);
    for (size_t k = older; k < sizeof theirs; k++) ck_assert_uint_eq(theirs[k], 0xab);
    /* A newer reader: members past the writer's layout keep the reader's zeroes. */
    struct { exo_device_report r; uint64_t newer_member; } big;
    memset(&big, 0, sizeof big);
    big.r.hdr.size = sizeof big;
    big.r.hdr.version = EXO_ABI_VERSION;
    ck_assert_int_eq(exo_struct_copy_out(&big, &mine, sizeof mine), EXO_OK);
    ck_assert_uint_eq(big.r.score, 0x11111111u);
    ck_assert_uint_eq(big.newer_member, 0);
}
END_TEST

START_TEST(struct_copy_out_refuses_a_headerless_destination) {
    exo_device_report mine = {0}, theirs;
    memset(&theirs, 0xab, sizeof theirs);
    theirs.hdr.size = 4;
    ck_assert_int_eq(exo_struct_copy_out(&theirs, &mine, sizeof mine), EXO_ERR_INVALID_ARG);
    ck_assert_uint_eq(theirs.score, 0xababababu);
    ck_assert_int_eq(exo_struct_copy_out(NULL, &mine, sizeof mine), EXO_ERR_INVALID_ARG);
}
END_TEST

int main(void) {
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, version_macros_round_trip);
    tcase_add_test(tc, struct_has_checks_the_declared_size);
    tcase_add_test(tc, plugin_fill_writes_only_what_fits);
    tcase_add_test(tc, plugin_fill_refuses_another_major);
    tcase_add_test(tc, struct_copy_out_fills_only_what_both_layouts_hold);
    tcase_add_test(tc, struct_copy_out_refuses_a_headerless_destination);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
