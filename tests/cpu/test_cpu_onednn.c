/* cpu_amx: the oneDNN bf16 prefill matmul path (plugins/cpu_amx/matmul_onednn.c) against the
 * reference kernels. Rounding the activations to bf16 is what the path costs, so results are
 * held to the reduced-precision tolerance of tests/data/hf-tiny/README.md (relative error per
 * output row <= 2e-2) and must differ from the exact result (proof that the bf16 path ran);
 * row counts below the threshold must stay exact. CTest runs this with EXO_CPU_ONEDNN=on, so on
 * a CPU without AMX the path runs as oneDNN's avx512_core_bf16; tests that need another mode
 * set it themselves. Skips (77) without AVX-512: oneDNN's bf16 matmul needs it.
 * oneDNN (and its OpenMP pool) is only ever used inside the forked tests, never in this parent. */
#include "cpu_test_graph.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check_run.h"

#define T EXO_DIM_TOKENS
#define REDUCED_TOLERANCE 2e-2 /* relative error per row, bf16 activations */
#define BF16_MIN_ERROR 1e-6    /* below this the bf16 path did not run */
#define EXACT_NMSE 1e-10       /* the own f32-accumulating kernels */
#define MIN_ROWS 32            /* CPU_ONEDNN_MIN_ROWS */
#define ONEDNN_LOG "rows): oneDNN bf16" /* the compile log line of the chosen path */

static int cpu_has_avx512(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) found = strstr(line, " avx512f ") && strstr(line, " avx512bw ") && strstr(line, " avx512vl ");
    fclose(f);
    return found;
}

/* Largest per-row ||got - want|| / ||want|| over `rows` rows of n. */
static double max_row_error(const float *got, const float *want, int64_t rows, int64_t n) {
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        double diff = 0, norm = 0;
        for (int64_t j = 0; j < n; j++) {
            double d = (double)got[r * n + j] - want[r * n + j];
            diff += d * d;
            norm += (double)want[r * n + j] * want[r * n + j];
        }
        double e = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
        if (!(e <= worst)) worst = e; /* NaN wins */
    }
    return worst;
}

/* A graph of one MATMUL y = x . W^T [+ b] with x [k, T] and W [k, n] (weights of `type`). */
typedef struct mm_graph {
    cpu_fixture fx;
    tgraph g;
    uint32_t x, y;
    int64_t k, n;
    void *w;
    float *bias;
} mm_graph;

static void mm_open(mm_graph *m, exo_dtype type, int64_t k, int64_t n, uint32_t max_tokens, uint32_t threads, int bias) {
    fx_open(&m->fx, threads);
    tg_init(&m->g, &m->fx, max_tokens);
    m->k = k, m->n = n;
    m->w = tg_weights_of(type, n * k, 7);
    m->bias = tg_weights_of(EXO_DTYPE_F32, n, 8);
    uint32_t tw = tg_weight(&m->g, "w", type, m->w, k, n);
    uint32_t tb = tg_weight(&m->g, "b", EXO_DTYPE_F32, m->bias, n, 0);
    m->x = tg_tensor(&m->g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, k, T, 0, 0);
    m->y = tg_tensor(&m->g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, n, T, 0, 0);
    uint32_t src[] = {m->x, tw, tb};
    tg_node(&m->g, EXO_OP_MATMUL, m->y, bias ? 3 : 2, src);
    tg_alloc_bound(&m->g);
}

static void mm_close(mm_graph *m) {
    tg_free(&m->g);
    fx_close(&m->fx);
    free(m->w), free(m->bias);
}

/* Compiles the graph with the reference kernels forced (the oracle). */
static exo_compiled *compile_ref(tgraph *g) {
    exo_graph graph = tg_graph(g);
    exo_compiled *c = NULL;
    setenv("EXO_CPU_KERNELS", "ref", 1);
    exo_status st = g->fx->api.graph_compile(g->fx->ctx, 0, &graph, &c);
    unsetenv("EXO_CPU_KERNELS");
    ck_assert_msg(st == EXO_OK, "reference compile: %s", g->fx->host.last_error);
    return c;
}

/* Compiles with the environment's EXO_CPU_ONEDNN; the log must (or must not) name the path. */
static exo_compiled *compile_checked(tgraph *g, int want_onednn) {
    exo_graph graph = tg_graph(g);
    exo_compiled *c = NULL;
    g->fx->host.log[0] = 0;
    exo_status st = g->fx->api.graph_compile(g->fx->ctx, 0, &graph, &c);
    ck_assert_msg(st == EXO_OK, "compile: %s", g->fx->host.last_error);
    if (want_onednn) ck_assert_msg(strstr(g->fx->host.log, ONEDNN_LOG), "oneDNN path not chosen: %s", g->fx->host.log);
    else ck_assert_msg(!strstr(g->fx->host.log, ONEDNN_LOG), "oneDNN path chosen: %s", g->fx->host.log);
    return c;
}

/* Runs `tokens` rows of fresh inputs through both compiled graphs and compares output `out`
 * (n per row): the bf16 tolerance where the oneDNN path takes the rows, exactness elsewhere. */
static void compare_run(tgraph *g, exo_compiled *ref, exo_compiled *test, uint32_t x, int64_t k, uint32_t out,
                        int64_t n, uint32_t tokens, int via_onednn, const char *what) {
    float *xv = tg_weights_of(EXO_DTYPE_F32, k * tokens, 9 + tokens);
    tg_write(g, x, xv, sizeof(float) * k * tokens);
    float *a = malloc(sizeof(float) * n * tokens), *b = malloc(sizeof(float) * n * tokens);
    ck_assert_int_eq(tg_run(g, ref, tokens), EXO_OK);
    tg_read(g, out, a, sizeof(float) * n * tokens);
    memset(b, 0xff, sizeof(float) * n * tokens);
    ck_assert_int_eq(g->fx->api.buffer_write(g->bound[out], 0, b, sizeof(float) * n * tokens), EXO_OK);
    exo_status st = tg_run(g, test, tokens);
    ck_assert_msg(st == EXO_OK, "%s: execute: %s", what, g->fx->host.last_error);
    tg_read(g, out, b, sizeof(float) * n * tokens);
    if (via_onednn) {
        double e = max_row_error(b, a, tokens, n);
        ck_assert_msg(e <= REDUCED_TOLERANCE, "%s, %u tokens: relative error %.3g > %.0e", what, tokens, e,
                      REDUCED_TOLERANCE);
        ck_assert_msg(e > BF16_MIN_ERROR, "%s, %u tokens: error %.3g: the bf16 path did not run", what, tokens, e);
    } else {
        double e = tg_nmse_f(b, a, n * tokens);
        ck_assert_msg(e < EXACT_NMSE, "%s, %u tokens: NMSE %.3g on the exact path", what, tokens, e);
    }
    free(xv), free(a), free(b);
}

static void onednn_case(int64_t k, int64_t n, uint32_t tokens, uint32_t threads, int bias) {
    if (!cpu_has_avx512()) exit(77);
    mm_graph m;
    mm_open(&m, EXO_DTYPE_BF16, k, n, tokens, threads, bias);
    exo_compiled *ref = compile_ref(&m.g), *test = compile_checked(&m.g, 1);
    char what[96];
    snprintf(what, sizeof what, "bf16 MATMUL k %lld n %lld threads %u%s", (long long)k, (long long)n, threads,
             bias ? " bias" : "");
    compare_run(&m.g, ref, test, m.x, k, m.y, n, tokens, 1, what);
    m.fx.api.compiled_free(ref);
    m.fx.api.compiled_free(test);
    mm_close(&m);
}

/* Odd K (no multiple of the bf16 pair or the 16/32-wide blocks), odd N (partial 64-column
 * blocks), token counts at and just above the threshold, bias or none, 1-3 threads. */
START_TEST(onednn_shapes) {
    onednn_case(128, 75, 37, 2, 1);
    onednn_case(37, 21, 33, 1, 1);
    onednn_case(45, 19, MIN_ROWS, 3, 1);
    onednn_case(600, 300, 64, 2, 0);
    onednn_case(2048, 259, 40, 2, 1);
}
END_TEST

/* One compiled graph, the row count changing per execution: primitives per row count, more
 * distinct counts than the cache keeps, repeats, and counts below the threshold (own GEMM and
 * matrix-vector kernels, exact). */
START_TEST(onednn_varying_tokens) {
    if (!cpu_has_avx512()) exit(77);
    mm_graph m;
    mm_open(&m, EXO_DTYPE_BF16, 96, 70, 100, 2, 1);
    exo_compiled *ref = compile_ref(&m.g), *test = compile_checked(&m.g, 1);
    const uint32_t counts[] = {100, 40, MIN_ROWS, MIN_ROWS - 1, 3, 1, 100, 33, 34, 35, 36, 37, 38, 39, 41, 42, 40, 100};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        compare_run(&m.g, ref, test, m.x, m.k, m.y, m.n, counts[i], counts[i] >= MIN_ROWS, "varying tokens");
    m.fx.api.compiled_free(ref);
    m.fx.api.compiled_free(test);
    mm_close(&m);
}
END_TEST

/* Values exactly representable in bf16 with sums exact in f32: the oneDNN result must equal the
 * reference bit for bit, which pins the weight layout and the activations' conversion. */
START_TEST(onednn_exact_on_bf16_values) {
    if (!cpu_has_avx512()) exit(77);
    const int64_t k = 77, n = 130;
    const uint32_t tokens = 45;
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    uint16_t *w = malloc(sizeof(uint16_t) * n * k);
    for (int64_t i = 0; i < n * k; i++) w[i] = tg_f32_to_bf16((float)((i * 7) % 17 - 8) / 8.0f);
    uint32_t tw = tg_weight(&g, "w", EXO_DTYPE_BF16, w, k, n);
    uint32_t x = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, k, T, 0, 0);
    uint32_t y = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, n, T, 0, 0);
    uint32_t src[] = {x, tw};
    tg_node(&g, EXO_OP_MATMUL, y, 2, src);
    tg_alloc_bound(&g);
    float *xv = malloc(sizeof(float) * k * tokens);
    for (int64_t i = 0; i < k * tokens; i++) xv[i] = (float)((i * 5) % 13 - 6) / 4.0f;
    tg_write(&g, x, xv, sizeof(float) * k * tokens);
    exo_compiled *ref = compile_ref(&g), *test = compile_checked(&g, 1);
    float *a = malloc(sizeof(float) * n * tokens), *b = malloc(sizeof(float) * n * tokens);
    ck_assert_int_eq(tg_run(&g, ref, tokens), EXO_OK);
    tg_read(&g, y, a, sizeof(float) * n * tokens);
    ck_assert_int_eq(tg_run(&g, test, tokens), EXO_OK);
    tg_read(&g, y, b, sizeof(float) * n * tokens);
    for (int64_t i = 0; i < n * tokens; i++)
        ck_assert_msg(a[i] == b[i], "y[%lld][%lld]: oneDNN %.9g, reference %.9g", (long long)(i / n),
                      (long long)(i % n), b[i], a[i]);
    fx.api.compiled_free(ref);
    fx.api.compiled_free(test);
    free(w), free(xv), free(a), free(b);
    tg_free(&g);
    fx_close(&fx);
}
END_TEST

/* q/k/v-like matmuls sharing one input run as a group: all bf16 -> one bf16 rounding of x and
 * a oneDNN primitive each; one member with f32 weights -> the whole group on the own GEMM. */
static void group_case(exo_dtype middle_type, int via_onednn) {
    if (!cpu_has_avx512()) exit(77);
    const exo_dtype types[3] = {EXO_DTYPE_BF16, middle_type, EXO_DTYPE_BF16};
    const uint32_t tokens = 40;
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    tg_matmul_group mg;
    tg_build_matmul_group(&g, types, &mg);
    tg_alloc_bound(&g);
    exo_compiled *ref = compile_ref(&g), *test = compile_checked(&g, 1);
    ck_assert_msg(strstr(fx.host.log, ", 1 matmul groups"), "the three matmuls were not grouped: %s", fx.host.log);
    for (int i = 0; i < 3; i++)
        compare_run(&g, ref, test, mg.x, TG_GROUP_K, mg.out[i], mg.n[i], tokens, via_onednn, "grouped MATMUL");
    fx.api.compiled_free(ref);
    fx.api.compiled_free(test);
    tg_matmul_group_free(&mg);
    tg_free(&g);
    fx_close(&fx);
}

START_TEST(onednn_group_all_bf16) { group_case(EXO_DTYPE_BF16, 1); }
END_TEST
START_TEST(onednn_group_mixed_dtypes_stays_exact) { group_case(EXO_DTYPE_F32, 0); }
END_TEST

/* Two graphs compiled over the same weights share one reordered copy; freeing the first must
 * leave the second's intact (the sanitizer build catches a use after free). */
START_TEST(onednn_shared_weights_outlive_first_graph) {
    if (!cpu_has_avx512()) exit(77);
    mm_graph m;
    mm_open(&m, EXO_DTYPE_BF16, 256, 96, 48, 2, 1);
    exo_compiled *ref = compile_ref(&m.g), *first = compile_checked(&m.g, 1), *second = compile_checked(&m.g, 1);
    compare_run(&m.g, ref, first, m.x, m.k, m.y, m.n, 48, 1, "first graph");
    m.fx.api.compiled_free(first);
    compare_run(&m.g, ref, second, m.x, m.k, m.y, m.n, 48, 1, "second graph after the first was freed");
    exo_compiled *third = compile_checked(&m.g, 1);
    m.fx.api.compiled_free(second);
    compare_run(&m.g, ref, third, m.x, m.k, m.y, m.n, 36, 1, "third graph");
    m.fx.api.compiled_free(third);
    m.fx.api.compiled_free(ref);
    mm_close(&m);
}
END_TEST

/* Weights read in place from a file mapping at an odd 2-byte offset (how the core wraps a
 * safetensors mmap): the reorder reads unaligned bf16 rows. */
START_TEST(onednn_wrapped_unaligned_weights) {
    if (!cpu_has_avx512()) exit(77);
    const int64_t k = 300, n = 70;
    const uint64_t offset = 4094;
    const uint32_t tokens = 50;
    char path[] = "/tmp/exo-cpu-onednn-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    uint16_t *w = tg_weights_of(EXO_DTYPE_BF16, n * k, 7);
    uint64_t size = offset + (uint64_t)(n * k) * 2;
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    ck_assert_int_eq(pwrite(fd, w, (size_t)(n * k) * 2, (off_t)offset), (ssize_t)(n * k) * 2);
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ck_assert(map != MAP_FAILED);
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    exo_buffer *wrapped = NULL;
    ck_assert_int_eq(fx.api.buffer_wrap_host(fx.ctx, 0, map, size, EXO_BUFFER_WEIGHTS, &wrapped), EXO_OK);
    uint32_t tw = tg_tensor(&g, "w", EXO_DTYPE_BF16, EXO_TENSOR_WEIGHT, k, n, 0, 0);
    g.tensors[tw].buffer = (int32_t)g.n_buffers;
    g.tensors[tw].offset = offset;
    g.buffers[g.n_buffers++] = wrapped;
    uint32_t x = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, k, T, 0, 0);
    uint32_t y = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, n, T, 0, 0);
    uint32_t src[] = {x, tw};
    tg_node(&g, EXO_OP_MATMUL, y, 2, src);
    tg_alloc_bound(&g);
    exo_compiled *ref = compile_ref(&g), *test = compile_checked(&g, 1);
    compare_run(&g, ref, test, x, k, y, n, tokens, 1, "MATMUL on wrapped file weights");
    fx.api.compiled_free(ref);
    fx.api.compiled_free(test);
    tg_free(&g);
    fx_close(&fx);
    munmap(map, size);
    close(fd);
    free(w);
}
END_TEST

/* f32 weights never take the bf16 path (their prefill stays exact), even with the path forced. */
START_TEST(onednn_only_for_bf16_weights) {
    if (!cpu_has_avx512()) exit(77);
    mm_graph m;
    mm_open(&m, EXO_DTYPE_F32, 128, 64, 40, 2, 1);
    exo_compiled *ref = compile_ref(&m.g), *test = compile_checked(&m.g, 0);
    ck_assert_msg(strstr(m.fx.host.log, "no MATMUL with bf16 weights"), "log: %s", m.fx.host.log);
    compare_run(&m.g, ref, test, m.x, m.k, m.y, m.n, 40, 0, "f32 weights");
    m.fx.api.compiled_free(ref);
    m.fx.api.compiled_free(test);
    mm_close(&m);
}
END_TEST

/* EXO_CPU_ONEDNN=off and auto: the exact own GEMM (auto only takes oneDNN where the probe found
 * usable AMX); a bad value warns, naming the variable, and acts as auto. */
START_TEST(onednn_mode_switch) {
    if (!cpu_has_avx512()) exit(77);
    mm_graph m;
    mm_open(&m, EXO_DTYPE_BF16, 128, 64, 40, 2, 1);
    exo_compiled *ref = compile_ref(&m.g);

    setenv("EXO_CPU_ONEDNN", "off", 1);
    exo_compiled *off = compile_checked(&m.g, 0);
    ck_assert_msg(strstr(m.fx.host.log, "own f32 GEMM (EXO_CPU_ONEDNN=off)"), "log: %s", m.fx.host.log);
    compare_run(&m.g, ref, off, m.x, m.k, m.y, m.n, 40, 0, "EXO_CPU_ONEDNN=off");
    m.fx.api.compiled_free(off);

    exo_device_report report;
    memset(&report, 0, sizeof report);
    EXO_STRUCT_INIT(&report);
    ck_assert_int_eq(m.fx.api.device_report(m.fx.ctx, 0, &report), EXO_OK);
    int amx = (report.caps & EXO_CAP_MATRIX) != 0 && strcmp(report.isa, "avx512_core_amx") == 0;
    setenv("EXO_CPU_ONEDNN", "auto", 1);
    exo_compiled *autom = compile_checked(&m.g, amx);
    if (!amx)
        ck_assert_msg(strstr(m.fx.host.log, "own f32 GEMM, not oneDNN bf16: ") && strstr(m.fx.host.log, "AMX"),
                      "auto without AMX must say why: %s", m.fx.host.log);
    compare_run(&m.g, ref, autom, m.x, m.k, m.y, m.n, 40, amx, "EXO_CPU_ONEDNN=auto");
    m.fx.api.compiled_free(autom);

    /* A typo must not fail the compile (that would move the run to another device): it warns,
     * naming the variable and the accepted values, and behaves as auto. */
    setenv("EXO_CPU_ONEDNN", "sometimes", 1);
    exo_compiled *typo = compile_checked(&m.g, amx);
    ck_assert_msg(strstr(m.fx.host.log, "EXO_CPU_ONEDNN='sometimes' is not one of auto, on, off"), "log: %s",
                  m.fx.host.log);
    compare_run(&m.g, ref, typo, m.x, m.k, m.y, m.n, 40, amx, "EXO_CPU_ONEDNN=sometimes");
    m.fx.api.compiled_free(typo);
    setenv("EXO_CPU_ONEDNN", "on", 1);

    /* The reference kernels are the oracle: forcing them also turns the bf16 path off. */
    setenv("EXO_CPU_KERNELS", "ref", 1);
    exo_compiled *ref2 = compile_checked(&m.g, 0);
    unsetenv("EXO_CPU_KERNELS");
    compare_run(&m.g, ref, ref2, m.x, m.k, m.y, m.n, 40, 0, "EXO_CPU_KERNELS=ref");
    m.fx.api.compiled_free(ref2);
    /* An unknown EXO_CPU_KERNELS warns and keeps the default kernels (and so the oneDNN path). */
    setenv("EXO_CPU_KERNELS", "reference", 1);
    exo_compiled *typo_k = compile_checked(&m.g, 1);
    unsetenv("EXO_CPU_KERNELS");
    ck_assert_msg(strstr(m.fx.host.log, "EXO_CPU_KERNELS='reference' is not one of ref, auto"), "log: %s",
                  m.fx.host.log);
    m.fx.api.compiled_free(typo_k);
    m.fx.api.compiled_free(ref);
    mm_close(&m);
}
END_TEST

int main(void) {
    /* Nothing here touches the plugin: each test loads it in its own forked child (oneDNN's
     * OpenMP pool started in this parent would hang the children). */
    Suite *s = suite_create("cpu_onednn");
    TCase *tc = tcase_create("onednn_vs_ref");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, onednn_shapes);
    tcase_add_test(tc, onednn_varying_tokens);
    tcase_add_test(tc, onednn_exact_on_bf16_values);
    tcase_add_test(tc, onednn_group_all_bf16);
    tcase_add_test(tc, onednn_group_mixed_dtypes_stays_exact);
    tcase_add_test(tc, onednn_shared_weights_outlive_first_graph);
    tcase_add_test(tc, onednn_wrapped_unaligned_weights);
    tcase_add_test(tc, onednn_only_for_bf16_weights);
    tcase_add_test(tc, onednn_mode_switch);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
