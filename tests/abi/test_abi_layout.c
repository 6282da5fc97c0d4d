/* The plugin ABI layout, frozen: v1.0's offsets, then each minor's appended members. A change
 * here means a plugin built against an earlier header would be misread: such a change needs a
 * major version bump (abi/exo_plugin.h). */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "argmax_oracle.h"
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

/* exo_device_report and exo_device_telemetry live in exo_types.h: frozen in test_types_layout.c. */

FROZEN(exo_tensor, id, 0);
FROZEN(exo_tensor, dtype, 4);
FROZEN(exo_tensor, flags, 8);
FROZEN(exo_tensor, n_dims, 12);
FROZEN(exo_tensor, ne, 16);
FROZEN(exo_tensor, nb, 48);
FROZEN(exo_tensor, buffer, 80);
FROZEN(exo_tensor, offset, 88);
FROZEN(exo_tensor, name, 96);
/* 1.0's tensor ended here (144 bytes); 1.3 appended the quantization descriptor. */
FROZEN(exo_tensor, q_bits, 144);
FROZEN(exo_tensor, q_group, 148);
FROZEN(exo_tensor, q_scales, 152);
FROZEN(exo_tensor, q_biases, 156);
_Static_assert(sizeof(exo_tensor) == 160, "exo_tensor size (1.3)");
_Static_assert(EXO_DTYPE_MLX_AFFINE == 5 && EXO_DTYPE_COUNT == 6, "dtype values");

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
FROZEN(exo_graph, reserved, 60);
/* 1.0's graph ended here (64 bytes); 1.2 appended the element strides. */
FROZEN(exo_graph, tensor_stride, 64);
FROZEN(exo_graph, node_stride, 68);
_Static_assert(sizeof(exo_graph) == 72, "exo_graph size (1.2)");

FROZEN(exo_binding, tensor, 0);
FROZEN(exo_binding, buffer, 8);
FROZEN(exo_binding, offset, 16);
FROZEN(exo_exec_args, n_tokens, 8);
FROZEN(exo_exec_args, n_bindings, 12);
FROZEN(exo_exec_args, bindings, 16);
/* 1.0's args ended here (24 bytes); 1.2 appended binding_stride. */
FROZEN(exo_exec_args, binding_stride, 24);
_Static_assert(sizeof(exo_exec_args) == 32, "exo_exec_args size (1.2)");
_Static_assert(sizeof(exo_binding) == 24, "exo_binding size");
/* The strides an older writer's arrays have: 1.0's element sizes, forever. */
_Static_assert(EXO_TENSOR_SIZE_1_0 == 144 && EXO_NODE_SIZE_1_0 == 100 && EXO_BINDING_SIZE_1_0 == 24, "1.0 sizes");

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
/* 1.8 appended device_read_bandwidth. */
FROZEN(exo_plugin_api, device_read_bandwidth, 176);
/* 1.9 appended peer_copy_supported and buffer_copy_peer. */
FROZEN(exo_plugin_api, peer_copy_supported, 184);
FROZEN(exo_plugin_api, buffer_copy_peer, 192);
_Static_assert(sizeof(exo_plugin_api) == 200, "exo_plugin_api size (1.9)");
_Static_assert(EXO_ABI_MAJOR == 1 && EXO_ABI_MINOR >= 1, "ABI version");

/* Enum values are part of the ABI too. */
_Static_assert(EXO_OP_GET_ROWS == 0 && EXO_OP_ATTENTION == 8 && EXO_OP_COPY == 10, "op ids");
/* 1.4 appended the mixture-of-experts ops, their slots and the routing rule. */
_Static_assert(EXO_ABI_MINOR >= 4 && EXO_OP_MOE_TOPK == 11 && EXO_OP_MOE_WEIGHTS == 12 && EXO_OP_MOE_MATMUL == 13 &&
                   EXO_OP_MOE_COMBINE == 14,
               "op ids (1.4)");
/* 1.10 appended ARGMAX. */
_Static_assert(EXO_ABI_MINOR >= 10 && EXO_OP_ARGMAX == 15 && EXO_OP_COUNT == 16, "op ids (1.10)");
_Static_assert(EXO_MOE_TOPK_I_K == 0 && EXO_MOE_TOPK_I_RULE == 1 && EXO_MOE_WEIGHTS_I_RULE == 0 &&
                   EXO_MOE_WEIGHTS_I_NORMALIZE == 1 && EXO_MOE_WEIGHTS_F_SCALE == 0 && EXO_MOE_MATMUL_I_N_EXPERTS == 0 &&
                   EXO_MOE_RULE_SOFTMAX == 0,
               "mixture-of-experts slots and rule (1.4)");
/* 1.5 appended two routing rules, an activation and the GLU's two float slots. */
_Static_assert(EXO_ABI_MINOR >= 5 && EXO_MOE_RULE_SIGMOID_BIAS == 1 && EXO_MOE_RULE_TOPK_SOFTMAX == 2 &&
                   EXO_ACT_SWIGLU_CLAMP == 2 && EXO_GLU_F_ALPHA == 0 && EXO_GLU_F_LIMIT == 1,
               "gpt_oss / glm4_moe rules, activation and slots (1.5)");
_Static_assert(EXO_DTYPE_F32 == 0 && EXO_DTYPE_BF16 == 2 && EXO_DTYPE_Q8_0 == 4, "dtype ids");
/* The named parameter slots are the positions the op comments of 1.0 gave. */
_Static_assert(EXO_GET_ROWS_F_SCALE == 0 && EXO_RMS_NORM_F_EPS == 0 && EXO_RMS_NORM_I_ADD_ONE == 0 &&
                   EXO_GLU_I_ACT == 0 && EXO_SOFTCAP_F_CAP == 0,
               "one-parameter slots");
_Static_assert(EXO_ROPE_I_MODE == 0 && EXO_ROPE_I_N_ROT == 1 && EXO_ROPE_F_ATTN_FACTOR == 0, "rope slots");
_Static_assert(EXO_ATTENTION_I_N_HEADS == 0 && EXO_ATTENTION_I_N_KV_HEADS == 1 && EXO_ATTENTION_I_HEAD_DIM == 2 &&
                   EXO_ATTENTION_I_WINDOW == 3 && EXO_ATTENTION_F_SCALE == 0 && EXO_ATTENTION_F_SOFTCAP == 1,
               "attention slots");
_Static_assert(EXO_ERR_NOT_FOUND == -15, "status ids");

/* A graph whose header ends before the strides (an ABI 1.0/1.1 core), or whose strides are 0,
 * is read at 1.0's element sizes; a set stride is honoured, so elements may grow. */
START_TEST(ir_accessors_apply_the_strides) {
    exo_graph g;
    memset(&g, 0, sizeof g);
    EXO_STRUCT_INIT(&g);
    static unsigned char table[4 * 256];
    g.tensors = (const exo_tensor *)(const void *)table;
    g.nodes = (const exo_node *)(const void *)table;
    ck_assert_ptr_eq(exo_graph_tensor(&g, 2), table + 2 * 144);
    ck_assert_ptr_eq(exo_graph_node(&g, 2), table + 2 * 100);
    g.tensor_stride = 208;
    g.node_stride = 128;
    ck_assert_ptr_eq(exo_graph_tensor(&g, 3), table + 3 * 208);
    ck_assert_ptr_eq(exo_graph_node(&g, 3), table + 3 * 128);
    g.hdr.size = (uint32_t)offsetof(exo_graph, tensor_stride); /* an older core's graph */
    ck_assert_ptr_eq(exo_graph_tensor(&g, 3), table + 3 * 144);
    ck_assert_ptr_eq(exo_graph_node(&g, 3), table + 3 * 100);

    exo_exec_args a;
    memset(&a, 0, sizeof a);
    EXO_STRUCT_INIT(&a);
    a.bindings = (const exo_binding *)(const void *)table;
    ck_assert_ptr_eq(exo_exec_binding(&a, 1), table + 24);
    a.binding_stride = 40;
    ck_assert_ptr_eq(exo_exec_binding(&a, 2), table + 80);
    a.hdr.size = (uint32_t)offsetof(exo_exec_args, binding_stride);
    ck_assert_ptr_eq(exo_exec_binding(&a, 2), table + 48);
    ck_assert(EXO_ELEMENT_HAS(144u, exo_tensor, name));
    ck_assert(!EXO_ELEMENT_HAS(143u, exo_tensor, name));
}
END_TEST

/* exo_argmax_row (two passes) picks what the one-pass loop picks: ties (first wins), signed zeros, NaN
 * (never picked unless first), infinities, lengths around the 16-lane blocks. */
START_TEST(argmax_row_matches_the_one_pass_loop) {
    static float v[300];
    uint32_t seed = 1;
    for (int it = 0; it < 20000; it++) {
        uint32_t n = (uint32_t)(it % 300);
        for (uint32_t i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            uint32_t r = seed >> 8, kind = (uint32_t)it % 5;
            v[i] = kind == 0   ? (float)(r % 5) - 2.0f
                   : kind == 1 ? (r % 3 == 0 ? NAN : (float)(r % 7))
                   : kind == 2 ? (r % 2 ? 0.0f : -0.0f)
                   : kind == 3 ? (r % 4 == 0 ? INFINITY : r % 4 == 1 ? -INFINITY : r % 4 == 2 ? NAN : (float)r)
                               : (float)r / 16777216.0f;
        }
        ck_assert_msg((int32_t)exo_argmax_row(v, n) == argmax_one_pass(v, n), "n %u case %d: %u vs %d", n, it % 5, exo_argmax_row(v, n),
                      argmax_one_pass(v, n));
    }
}
END_TEST

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
    tcase_add_test(tc, argmax_row_matches_the_one_pass_loop);
    tcase_add_test(tc, ir_accessors_apply_the_strides);
    tcase_add_test(tc, struct_has_checks_the_declared_size);
    tcase_add_test(tc, plugin_fill_writes_only_what_fits);
    tcase_add_test(tc, plugin_fill_refuses_another_major);
    tcase_add_test(tc, struct_copy_out_fills_only_what_both_layouts_hold);
    tcase_add_test(tc, struct_copy_out_refuses_a_headerless_destination);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
