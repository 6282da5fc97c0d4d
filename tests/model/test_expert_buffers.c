/* Per-expert checkpoint tensors (the hub's qwen3_moe, mixtral and glm4_moe: 3 x E tensors per
 * layer) share weight buffers over their byte ranges in the file (core/graph/expert_spans.c):
 * the grouping rule itself, the fixtures' layers landing in one buffer each with every tensor at
 * its own bytes, the size cap, experts scattered in the file falling back to buffers of their
 * own, and a GPU (PoCL through the OpenCL plugin) running each expert table as one launch group. */
#include "exo.h"
#include "graph/builder_internal.h"
#include "model_test_util.h"

#define MOE EXO_TEST_DATA "/moe-tiny"

/* ---------------------------------------------------------------- the grouping rule */

static gb_span_item item(const char *file, const uint8_t *data, uint64_t nbytes) {
    return (gb_span_item){.file = file, .data = data, .nbytes = nbytes, .align = 4};
}

START_TEST(spans_join_side_by_side_tensors_only) {
    static uint8_t file[4096];
    gb_span spans[8];
    uint32_t n = 0;
    /* Given in any order, three adjacent tensors and one 4 bytes of padding further: one span. */
    gb_span_item a[4] = {item("f", file + 200, 100), item("f", file + 0, 100), item("f", file + 304, 100),
                         item("f", file + 100, 100)};
    ck_assert_int_eq(gb_expert_spans(a, 4, 1 << 20, spans, &n), EXO_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_eq(spans[0].data, file);
    ck_assert_uint_eq(spans[0].size, 404);
    ck_assert_uint_eq(spans[0].n_items, 4);
    uint64_t want[4] = {200, 0, 304, 100};
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(a[i].span, 0);
        ck_assert_uint_eq(a[i].offset, want[i]);
    }
    /* A gap that would make a quarter of the span waste ends it; the far tensor stands alone. */
    gb_span_item b[3] = {item("f", file, 100), item("f", file + 100, 100), item("f", file + 1000, 100)};
    ck_assert_int_eq(gb_expert_spans(b, 3, 1 << 20, spans, &n), EXO_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(spans[0].size, 200);
    ck_assert_uint_eq(b[2].span, 1);
    ck_assert_uint_eq(b[2].offset, 0);
    ck_assert_uint_eq(spans[1].size, 100);
    /* Another file never joins, whatever the addresses. */
    gb_span_item c[2] = {item("f", file, 100), item("g", file + 100, 100)};
    ck_assert_int_eq(gb_expert_spans(c, 2, 1 << 20, spans, &n), EXO_OK);
    ck_assert_uint_eq(n, 2);
    /* The cap: at most 250 bytes a span, so spans of two tensors. */
    gb_span_item d[4] = {item("f", file, 100), item("f", file + 100, 100), item("f", file + 200, 100),
                         item("f", file + 300, 100)};
    ck_assert_int_eq(gb_expert_spans(d, 4, 250, spans, &n), EXO_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(spans[0].size, 200);
    ck_assert_uint_eq(spans[1].size, 200);
    ck_assert_uint_eq(d[3].offset, 100);
    /* A tensor that would sit off its element alignment inside the span does not join. */
    gb_span_item e[2] = {item("f", file, 102), item("f", file + 102, 100)};
    ck_assert_int_eq(gb_expert_spans(e, 2, 1 << 20, spans, &n), EXO_OK);
    ck_assert_uint_eq(n, 2);
}
END_TEST

/* ---------------------------------------------------------------- the graphs */

typedef struct built {
    exo_model_config cfg;
    exo_weights *w;
    exo_graph_plan plan;
} built;

static void build(const char *dir, uint64_t max_buffer, built *out) {
    ck_assert_int_eq(exo_model_config_load(dir, &out->cfg), EXO_OK);
    ck_assert_msg(exo_weights_open(dir, &out->w) == EXO_OK, "%s", exo_error_message());
    ck_assert_int_eq(exo_weights_load_begin(out->w), EXO_OK);
    exo_graph_ends ends = {.embeds = true, .head = true};
    exo_status st = exo_graph_plan_build_quantized(&out->cfg, out->w, dir, 0, out->cfg.n_layers, ends, 8, 64, NULL,
                                                   max_buffer, &out->plan);
    ck_assert_msg(st == EXO_OK, "%s", exo_error_message());
}

static void unbuild(built *b) {
    exo_graph_plan_free(&b->plan);
    exo_weights_close(b->w);
}

/* Every expert tensor of the plan's tables reads the checkpoint's own bytes through its buffer
 * (the graph's names are cut at EXO_TENSOR_NAME_MAX: the checkpoint's are rebuilt here). */
static void check_tables_point_at_their_bytes(built *b) {
    bool mixtral = b->cfg.arch == EXO_ARCH_MIXTRAL;
    static const char *const parts[3] = {"gate_proj", "up_proj", "down_proj"};
    static const char *const mixtral_parts[3] = {"w1", "w3", "w2"};
    uint32_t tables = 0;
    for (uint32_t i = 0; i < b->plan.n_nodes; i++) {
        const exo_node *nd = &b->plan.nodes[i];
        if (nd->op != EXO_OP_MOE_MATMUL) continue;
        uint32_t proj = tables++ % 3;
        for (uint32_t e = 0; e < b->cfg.n_experts; e++) {
            const exo_tensor *t = &b->plan.tensors[nd->src[2] + e];
            const exo_plan_buffer *buf = &b->plan.buffers[t->buffer];
            char name[160];
            snprintf(name, sizeof name, "model.layers.%d.%s.experts.%u.%s.weight", buf->layer,
                     mixtral ? "block_sparse_moe" : "mlp", e, mixtral ? mixtral_parts[proj] : parts[proj]);
            const exo_st_tensor *ck = NULL;
            ck_assert_msg(exo_weights_get(b->w, name, &ck) == EXO_OK, "%s", exo_error_message());
            ck_assert_ptr_eq((const uint8_t *)buf->data + t->offset, ck->data);
            ck_assert_uint_le(t->offset + ck->nbytes, buf->size);
        }
    }
}

/* The fixtures lay each layer's experts out side by side: every MOE_MATMUL table of a layer (its
 * gate, up and down) lies in one buffer, exactly the experts' bytes. */
START_TEST(a_layers_tables_share_one_buffer) {
    static const char *const models[] = {MOE "/qwen3_moe", MOE "/mixtral", MOE "/glm4_moe"};
    built b;
    build(models[_i], 0, &b);
    check_tables_point_at_their_bytes(&b);
    uint32_t tables = 0, layer_buffer = UINT32_MAX;
    for (uint32_t i = 0; i < b.plan.n_nodes; i++) {
        const exo_node *nd = &b.plan.nodes[i];
        if (nd->op != EXO_OP_MOE_MATMUL) continue;
        const exo_tensor *w0 = &b.plan.tensors[nd->src[2]];
        ck_assert_uint_eq(w0->n_dims, 2); /* a table, not a stacked weight */
        for (uint32_t e = 1; e < b.cfg.n_experts; e++)
            ck_assert_int_eq(b.plan.tensors[nd->src[2] + e].buffer, w0->buffer);
        if (tables++ % 3 == 0) {
            layer_buffer = (uint32_t)w0->buffer;
            uint64_t per_expert = (uint64_t)w0->ne[0] * (uint64_t)w0->ne[1] * exo_dtype_size(w0->dtype);
            ck_assert_uint_eq(b.plan.buffers[layer_buffer].size, 3 * b.cfg.n_experts * per_expert);
        }
        ck_assert_uint_eq((uint32_t)w0->buffer, layer_buffer); /* gate, up and down of the layer */
    }
    ck_assert_uint_gt(tables, 0);
    unbuild(&b);
}
END_TEST

/* A cap of two experts' three tensors gives each layer buffers of at most that size. */
START_TEST(the_cap_splits_a_layer) {
    built b;
    build(MOE "/qwen3_moe", 0, &b);
    const exo_st_tensor *ck = NULL;
    ck_assert_int_eq(exo_weights_get(b.w, "model.layers.0.mlp.experts.0.gate_proj.weight", &ck), EXO_OK);
    uint64_t cap = 6 * ck->nbytes;
    uint32_t before = b.plan.n_buffers;
    unbuild(&b);
    build(MOE "/qwen3_moe", cap, &b);
    check_tables_point_at_their_bytes(&b);
    /* 8 experts x 3 tensors a layer: 4 buffers of 6 tensors instead of 1, in each of 3 layers. */
    ck_assert_uint_eq(b.plan.n_buffers, before + 3 * 3);
    for (uint32_t i = 0; i < b.plan.n_buffers; i++)
        if (strstr(b.plan.buffers[i].name, "experts")) ck_assert_uint_le(b.plan.buffers[i].size, cap);
    unbuild(&b);
}
END_TEST

/* qwen3_moe with the names of layer 0's expert 3 up_proj and layer 2's swapped in the header
 * (same shapes): each of those layers has one expert far from the others. */
static char *scattered_copy(void) {
    char *dir = mtu_tmpdir();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -p '%s'/* '%s'/", MOE "/qwen3_moe", dir);
    ck_assert_int_eq(system(cmd), 0);
    FILE *fp = fopen(mtu_path(dir, "model.safetensors"), "r+b");
    ck_assert_ptr_nonnull(fp);
    uint8_t len[8];
    ck_assert_uint_eq(fread(len, 1, 8, fp), 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len[i];
    char *header = malloc(n);
    ck_assert_uint_eq(fread(header, 1, n, fp), n);
    char *x = memmem(header, n, "model.layers.0.mlp.experts.3.up_proj", 36);
    char *y = memmem(header, n, "model.layers.2.mlp.experts.3.up_proj", 36);
    ck_assert(x && y);
    x[13] = '2';
    y[13] = '0';
    fseek(fp, 8, SEEK_SET);
    ck_assert_uint_eq(fwrite(header, 1, n, fp), n);
    fclose(fp);
    free(header);
    return dir;
}

START_TEST(scattered_experts_fall_back_to_their_own_buffers) {
    char *dir = scattered_copy();
    built b;
    build(dir, 0, &b);
    check_tables_point_at_their_bytes(&b);
    uint32_t node = 0;
    for (uint32_t i = 0; i < b.plan.n_nodes; i++) {
        const exo_node *nd = &b.plan.nodes[i];
        if (nd->op != EXO_OP_MOE_MATMUL) continue;
        const exo_tensor *w = &b.plan.tensors[nd->src[2]];
        uint32_t layer = node / 3, proj = node % 3; /* gate, up, down */
        node++;
        for (uint32_t e = 1; e < b.cfg.n_experts; e++) {
            bool apart = proj == 1 && e == 3 && layer != 1;
            if (apart) ck_assert_int_ne(w[e].buffer, w[0].buffer);
            else ck_assert_int_eq(w[e].buffer, w[0].buffer);
        }
    }
    ck_assert_uint_eq(node, 9);
    unbuild(&b);
    mtu_rmdir(dir);
}
END_TEST

/* ---------------------------------------------------------------- on a GPU */

static char logbuf[1 << 16];

static void capture_log(void *user, exo_log_level level, const char *component, const char *message) {
    (void)user;
    (void)level;
    (void)component;
    size_t used = strlen(logbuf);
    snprintf(logbuf + used, sizeof logbuf - used, "%s\n", message);
}

static int no_device;

/* The launch groups the GPU executor made for the last graph compiled ("expert tables: N launch
 * groups" at debug level, plugins/gpu_common/gpu_moe.c), on the OpenCL plugin; -1 without a device. */
static int launch_groups(const char *dir) {
    logbuf[0] = 0;
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    ro.log = capture_log;
    ro.log_level = EXO_LOG_DEBUG;
    exo_runtime *rt = NULL;
    exo_model *m = NULL;
    exo_shard *shard = NULL;
    ck_assert_int_eq(exo_runtime_create(&ro, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.device = "opencl";
    o.max_ctx = 64;
    o.max_tokens = 16;
    int groups = -1;
    if (exo_shard_load(m, &o, &shard) != EXO_OK) {
        no_device = 1; /* checked by main: PoCL absent or unusable here */
        fprintf(stderr, "skipping: %s\n", exo_last_error());
    } else {
        const char *at = strstr(logbuf, "expert tables: ");
        ck_assert_ptr_nonnull(at);
        ck_assert_int_eq(sscanf(at, "expert tables: %d launch groups", &groups), 1);
        /* One decode step runs. */
        exo_session *s = NULL;
        ck_assert_int_eq(exo_session_create(shard, 0, &s), EXO_OK);
        exo_shard_info info;
        EXO_STRUCT_INIT(&info);
        ck_assert_int_eq(exo_shard_get_info(shard, &info), EXO_OK);
        ck_assert_str_eq(info.plugin, "opencl");
        int32_t token = 1;
        float *out = malloc(info.output_width * sizeof *out);
        ck_assert_msg(exo_session_forward_tokens(s, &token, 1, 0, out, info.output_width) == EXO_OK, "%s",
                      exo_last_error());
        free(out);
        exo_session_destroy(s);
        exo_shard_destroy(shard);
    }
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    return groups;
}

/* One launch group per MOE_MATMUL (3 layers x gate, up, down), where it was one per expert. */
START_TEST(a_gpu_runs_each_table_as_one_launch) {
    int groups = launch_groups(MOE "/qwen3_moe");
    if (groups < 0) return;
    ck_assert_int_eq(groups, 9);
    /* An expert apart from its layer's buffer costs its table one more launch: two tables here. */
    char *dir = scattered_copy();
    groups = launch_groups(dir);
    mtu_rmdir(dir);
    ck_assert_int_eq(groups, 11);
}
END_TEST

/* No argument: the grouping and the graphs. "gpu": the OpenCL device (77 without one). */
int main(int argc, char **argv) {
    bool gpu = argc > 1 && strcmp(argv[1], "gpu") == 0;
    Suite *s = suite_create("expert_buffers");
    TCase *tc = tcase_create(gpu ? "gpu" : "graphs");
    tcase_set_timeout(tc, 300);
    if (gpu) {
        tcase_add_test(tc, a_gpu_runs_each_table_as_one_launch);
    } else {
        tcase_add_test(tc, spans_join_side_by_side_tensors_only);
        tcase_add_loop_test(tc, a_layers_tables_share_one_buffer, 0, 3);
        tcase_add_test(tc, the_cap_splits_a_layer);
        tcase_add_test(tc, scattered_experts_fall_back_to_their_own_buffers);
    }
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed) return 1;
    return no_device ? 77 : 0;
}
