/* The prompt attention of a GPU plugin (kernels/attention.cl exo_attention_flash64/128: tiles of
 * 32 query tokens per work-group, K/V tiles through local memory) against the CPU plugin's
 * reference kernels (the oracle), by NMSE (tests/opencl/op_harness.h): KV_WRITE k and v, then
 * ATTENTION, over steps that are prompt chunks - lengths that are not multiples of the 32-token
 * query tile nor of the K/V tile, a second chunk after rows already cached (positions that do
 * not start at 0), a decode step between - with GQA and MQA, a sliding window, sinks, softcap,
 * both kernel sizes (head_dim 40/64 and 96/128), F32, BF16 and F16 caches, and pooled caches
 * whose prompt chunks of several sequences share one launch (a query tile spanning two slots).
 * The plugin is EXO_TEST_GPU_PLUGIN (opencl on PoCL, level_zero on the test driver). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "op_harness.h"

#define NMSE_ATTENTION 1e-10
#define MAX_STEP 160
#define CTX 320

static oh_device gpu, ref;
static const char *gpu_name;

static void open_both(void) {
    char why[1200];
    gpu_name = getenv("EXO_TEST_GPU_PLUGIN");
    ck_assert_msg(gpu_name != NULL, "EXO_TEST_GPU_PLUGIN names the plugin under test");
    setenv("EXO_CPU_KERNELS", "ref", 1);
    if (oh_open(&gpu, gpu_name, why, sizeof why) != 0) {
        fprintf(stderr, "skip: no %s device: %s\n", gpu_name, why);
        exit(77);
    }
    ck_assert_msg(oh_open(&ref, "cpu_amx", why, sizeof why) == 0, "%s", why);
}

static void close_both(void) {
    oh_close(&gpu);
    oh_close(&ref);
}

typedef struct att_case {
    int32_t nh, nkv, hd, window;
    float softcap;
    int with_sinks;
    uint32_t n_slots; /* 0: one sequence's 3-D caches */
    exo_dtype kv;
} att_case;

/* A step: `n_seg` runs of tokens, run i `len[i]` consecutive tokens of the sequence in slot
 * slot[i] (positions continue where that sequence stopped). */
typedef struct step_plan {
    uint32_t n_seg;
    int32_t slot[4];
    uint32_t len[4];
} step_plan;

static const char *kv_name(exo_dtype d) { return d == EXO_DTYPE_BF16 ? "bf16" : d == EXO_DTYPE_F16 ? "f16" : "f32"; }

/* Builds the graph, runs the steps on both devices and returns the worst NMSE of the attention
 * output over the steps. */
static double run_case(const att_case *c, const step_plan *plan, uint32_t n_steps) {
    oh_graph g;
    oh_init(&g, MAX_STEP);
    int32_t nh = c->nh, nkv = c->nkv, hd = c->hd;
    uint32_t q = oh_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nh, EXO_DIM_TOKENS);
    uint32_t k = oh_tensor(&g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, EXO_DIM_TOKENS);
    uint32_t v = oh_tensor(&g, "v", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, EXO_DIM_TOKENS);
    uint32_t pos = oh_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, EXO_DIM_TOKENS, 0, 0);
    uint32_t slots = c->n_slots ? oh_tensor(&g, "kv_slots", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, EXO_DIM_TOKENS, 0, 0) : 0;
    uint32_t kc = oh_tensor(&g, "k_cache", c->kv, EXO_TENSOR_KV, 3, hd, nkv, CTX);
    uint32_t vc = oh_tensor(&g, "v_cache", c->kv, EXO_TENSOR_KV, 3, hd, nkv, CTX);
    if (c->n_slots)
        for (uint32_t t = kc; t <= vc; t++) {
            g.tensors[t].n_dims = 4;
            g.tensors[t].ne[3] = c->n_slots;
        }
    uint32_t out = oh_tensor(&g, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, (int64_t)nh * hd, EXO_DIM_TOKENS, 0);
    uint32_t sinks = c->with_sinks ? oh_tensor(&g, "sinks", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 1, nh, 0, 0) : 0;
    uint32_t n_write = c->n_slots ? 3 : 2;
    oh_node(&g, EXO_OP_KV_WRITE, kc, n_write, (uint32_t[]){k, pos, slots}, NULL, 0, NULL, 0);
    oh_node(&g, EXO_OP_KV_WRITE, vc, n_write, (uint32_t[]){v, pos, slots}, NULL, 0, NULL, 0);
    int32_t ip[4] = {nh, nkv, hd, c->window};
    float fp[2] = {1.0f / sqrtf((float)hd), c->softcap};
    uint32_t src[6] = {q, kc, vc, pos}, n_src = 4;
    if (c->with_sinks) src[n_src++] = sinks;
    if (c->n_slots) src[n_src++] = slots;
    oh_node(&g, EXO_OP_ATTENTION, out, n_src, src, ip, 4, fp, 2);

    oh_run a, b;
    ck_assert_msg(oh_start(&b, &ref, &g) == EXO_OK, "cpu compile: %s", ref.host.last_error);
    ck_assert_msg(oh_start(&a, &gpu, &g) == EXO_OK, "%s compile: %s", gpu_name, gpu.host.last_error);
    if (c->with_sinks) {
        float s[64];
        oh_random(s, nh, -1.0f, 3.0f, 5);
        ck_assert_int_eq(oh_write(&a, sinks, s, (uint64_t)nh * 4), EXO_OK);
        ck_assert_int_eq(oh_write(&b, sinks, s, (uint64_t)nh * 4), EXO_OK);
    }
    float *qd = malloc(sizeof(float) * MAX_STEP * (size_t)nh * (size_t)hd);
    float *kd = malloc(sizeof(float) * MAX_STEP * (size_t)nkv * (size_t)hd);
    float *vd = malloc(sizeof(float) * MAX_STEP * (size_t)nkv * (size_t)hd);
    float *oa = malloc(sizeof(float) * MAX_STEP * (size_t)nh * (size_t)hd);
    float *ob = malloc(sizeof(float) * MAX_STEP * (size_t)nh * (size_t)hd);
    int32_t next[4] = {0}, p[MAX_STEP], sl[MAX_STEP];
    double worst = 0.0;
    for (uint32_t s = 0; s < n_steps; s++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < plan[s].n_seg; i++)
            for (uint32_t j = 0; j < plan[s].len[i]; j++) {
                ck_assert_uint_lt(n, MAX_STEP);
                sl[n] = plan[s].slot[i];
                p[n++] = next[plan[s].slot[i]]++;
            }
        ck_assert_int_lt(next[0], CTX);
        oh_random(qd, (int64_t)n * nh * hd, -2.0f, 2.0f, 31 + s * 3);
        oh_random(kd, (int64_t)n * nkv * hd, -2.0f, 2.0f, 32 + s * 3);
        oh_random(vd, (int64_t)n * nkv * hd, -2.0f, 2.0f, 33 + s * 3);
        oh_run *runs[2] = {&a, &b};
        for (int r = 0; r < 2; r++) {
            ck_assert_int_eq(oh_write(runs[r], q, qd, (uint64_t)n * nh * hd * 4), EXO_OK);
            ck_assert_int_eq(oh_write(runs[r], k, kd, (uint64_t)n * nkv * hd * 4), EXO_OK);
            ck_assert_int_eq(oh_write(runs[r], v, vd, (uint64_t)n * nkv * hd * 4), EXO_OK);
            ck_assert_int_eq(oh_write(runs[r], pos, p, (uint64_t)n * 4), EXO_OK);
            if (c->n_slots) ck_assert_int_eq(oh_write(runs[r], slots, sl, (uint64_t)n * 4), EXO_OK);
        }
        ck_assert_msg(oh_exec(&b, n) == EXO_OK, "cpu step %u: %s", s, ref.host.last_error);
        ck_assert_msg(oh_exec(&a, n) == EXO_OK, "%s step %u: %s", gpu_name, s, gpu.host.last_error);
        uint64_t bytes = (uint64_t)n * nh * hd * 4;
        ck_assert_int_eq(oh_read(&a, out, oa, bytes), EXO_OK);
        ck_assert_int_eq(oh_read(&b, out, ob, bytes), EXO_OK);
        double e = oh_nmse(oa, ob, (int64_t)n * nh * hd);
        if (!(e <= worst)) worst = e; /* NaN propagates */
    }
    free(qd);
    free(kd);
    free(vd);
    free(oa);
    free(ob);
    oh_stop(&a);
    oh_stop(&b);
    return worst;
}

static void check_case(const char *what, const att_case *c, const step_plan *plan, uint32_t n_steps) {
    double e = run_case(c, plan, n_steps);
    printf("nmse %s %-4s %-52s %.3e\n", gpu_name, kv_name(c->kv), what, e);
    fflush(stdout);
    ck_assert_msg(e <= NMSE_ATTENTION, "%s %s cache, %s: NMSE %.3e exceeds %.1e", gpu_name, kv_name(c->kv), what, e,
                  NMSE_ATTENTION);
}

/* One sequence: a 45-token prompt (a partial second query tile), a 77-token chunk after it
 * (positions 45..121: query tiles that start mid K/V tile), a decode step, a 33-token chunk. */
static const step_plan CHUNKS[4] = {{1, {0}, {45}}, {1, {0}, {77}}, {1, {0}, {1}}, {1, {0}, {33}}};
/* Pooled: prompt chunks of three sequences in one step (a query tile holding two slots' tokens),
 * then longer chunks beside a decode. */
static const step_plan POOLED[3] = {{3, {2, 0, 1}, {20, 25, 1}}, {3, {1, 0, 2}, {40, 3, 17}}, {2, {0, 2}, {50, 1}}};

static void dtype_cases(exo_dtype kv) {
    check_case("8/2 heads (GQA), hd 64, chunks 45+77+1+33", &(att_case){8, 2, 64, 0, 0.0f, 0, 0, kv}, CHUNKS, 4);
    check_case("4/2 heads, hd 128, chunks 45+77+1+33", &(att_case){4, 2, 128, 0, 0.0f, 0, 0, kv}, CHUNKS, 4);
    check_case("4/2 heads, hd 64, 3 slots, mixed chunks", &(att_case){4, 2, 64, 0, 0.0f, 0, 3, kv}, POOLED, 3);
}

START_TEST(prompt_chunks_match_reference_f32) {
    open_both();
    dtype_cases(EXO_DTYPE_F32);
    check_case("6/1 heads (MQA), hd 40, window 19, sinks", &(att_case){6, 1, 40, 19, 0.0f, 1, 0, EXO_DTYPE_F32},
               CHUNKS, 4);
    check_case("4/4 heads, hd 96, softcap 30", &(att_case){4, 4, 96, 0, 30.0f, 0, 0, EXO_DTYPE_F32}, CHUNKS, 4);
    check_case("4/2 heads, hd 32, window 50, sinks, 3 slots", &(att_case){4, 2, 32, 50, 0.0f, 1, 3, EXO_DTYPE_F32},
               POOLED, 3);
    check_case("2/1 heads, hd 256 (exo_attention)", &(att_case){2, 1, 256, 0, 0.0f, 0, 0, EXO_DTYPE_F32}, CHUNKS, 2);
    close_both();
}
END_TEST

START_TEST(prompt_chunks_match_reference_bf16_f16) {
    open_both();
    dtype_cases(EXO_DTYPE_BF16);
    dtype_cases(EXO_DTYPE_F16);
    close_both();
}
END_TEST

int main(void) {
    Suite *s = suite_create("prompt_attention");
    TCase *tc = tcase_create("flash");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, prompt_chunks_match_reference_f32);
    tcase_add_test(tc, prompt_chunks_match_reference_bf16_f16);
    suite_add_tcase(s, tc);
    /* One process: a fork after PoCL's or the Level Zero loader's start-up hangs or corrupts
     * their state, and a missing device exits 77 (skip) from open_both. */
    return exo_check_run(s, CK_NOFORK);
}
