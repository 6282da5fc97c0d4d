/* Pooled KV caches (ABI 1.6) on a GPU plugin, op by op: KV_WRITE and ATTENTION over a pool of
 * caches, each token of a step in its own slot at its own position, against the CPU plugin's
 * reference kernels (the oracle), by NMSE (tests/opencl/op_harness.h). Steps of a few tokens
 * take the split attention (several tokens per launch, different context lengths), longer ones
 * exo_attention; a slot outside the pool is refused before any launch, naming the node. The
 * plugin is EXO_TEST_GPU_PLUGIN (opencl on PoCL, level_zero on the test driver). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "op_harness.h"

#define TOKENS_DIM EXO_DIM_TOKENS
#define NMSE_ATTENTION 1e-10
#define MAX_STEP 40

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

/* q, k, v, positions and slots in; KV_WRITE k, KV_WRITE v, ATTENTION (with sinks when asked)
 * over caches pooled as [slots][ctx][nkv][hd]. */
typedef struct pool_graph {
    oh_graph g;
    uint32_t q, k, v, pos, slots, kc, vc, out, sinks;
} pool_graph;

static void build(pool_graph *p, int32_t nh, int32_t nkv, int32_t hd, int32_t window, int64_t ctx, int64_t n_slots,
                  int with_sinks) {
    oh_graph *g = &p->g;
    oh_init(g, MAX_STEP);
    p->q = oh_tensor(g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nh, TOKENS_DIM);
    p->k = oh_tensor(g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    p->v = oh_tensor(g, "v", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    p->pos = oh_tensor(g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
    p->slots = oh_tensor(g, "kv_slots", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
    p->kc = oh_tensor(g, "k_pool", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    p->vc = oh_tensor(g, "v_pool", EXO_DTYPE_F32, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    for (uint32_t t = p->kc; t <= p->vc; t++) {
        g->tensors[t].n_dims = 4;
        g->tensors[t].ne[3] = n_slots;
    }
    p->out = oh_tensor(g, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, (int64_t)nh * hd, TOKENS_DIM, 0);
    p->sinks = with_sinks ? oh_tensor(g, "sinks", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 1, nh, 0, 0) : 0;
    oh_node(g, EXO_OP_KV_WRITE, p->kc, 3, (uint32_t[]){p->k, p->pos, p->slots}, NULL, 0, NULL, 0);
    oh_node(g, EXO_OP_KV_WRITE, p->vc, 3, (uint32_t[]){p->v, p->pos, p->slots}, NULL, 0, NULL, 0);
    int32_t ip[4] = {nh, nkv, hd, window};
    float fp[2] = {1.0f / sqrtf((float)hd), 0.0f};
    uint32_t src[6] = {p->q, p->kc, p->vc, p->pos, p->sinks, p->slots};
    if (!with_sinks) src[4] = p->slots;
    oh_node(g, EXO_OP_ATTENTION, p->out, with_sinks ? 6 : 5, src, ip, 4, fp, 2);
}

/* One step's rows: token t in slot slots[t] at position pos[t]. */
typedef struct step {
    uint32_t n;
    int32_t slot[MAX_STEP], pos[MAX_STEP];
} step;

/* Sequences in slots 0..n_seq-1, each advanced by `take[s][i]` tokens at step s (0: absent),
 * their tokens contiguous per sequence and the sequences in reverse slot order (any order is
 * allowed): prefill chunks and decode steps of different lengths in one step. */
static uint32_t make_steps(step *out, uint32_t n_steps, uint32_t n_seq, const uint32_t take[][4]) {
    int32_t next[4] = {0};
    for (uint32_t s = 0; s < n_steps; s++) {
        out[s].n = 0;
        for (uint32_t i = n_seq; i-- > 0;)
            for (uint32_t j = 0; j < take[s][i]; j++) {
                ck_assert_uint_lt(out[s].n, MAX_STEP);
                out[s].slot[out[s].n] = (int32_t)i;
                out[s].pos[out[s].n++] = next[i]++;
            }
    }
    return n_steps;
}

/* Runs the steps on both devices; returns the worst NMSE of the attention output and the pools. */
static double run_steps(const pool_graph *p, const step *steps, uint32_t n_steps, int32_t nh, int32_t nkv, int32_t hd) {
    oh_run a, b;
    ck_assert_msg(oh_start(&b, &ref, &p->g) == EXO_OK, "cpu compile: %s", ref.host.last_error);
    ck_assert_msg(oh_start(&a, &gpu, &p->g) == EXO_OK, "%s compile: %s", gpu_name, gpu.host.last_error);
    float *q = malloc(sizeof(float) * MAX_STEP * (size_t)nh * (size_t)hd);
    float *kv = malloc(sizeof(float) * MAX_STEP * (size_t)nkv * (size_t)hd);
    float sinks[64];
    if (p->sinks) {
        oh_random(sinks, nh, -1.0f, 1.0f, 5);
        ck_assert_int_eq(oh_write(&a, p->sinks, sinks, (uint64_t)nh * 4), EXO_OK);
        ck_assert_int_eq(oh_write(&b, p->sinks, sinks, (uint64_t)nh * 4), EXO_OK);
    }
    double worst = 0.0;
    for (uint32_t s = 0; s < n_steps; s++) {
        uint32_t n = steps[s].n;
        struct {
            uint32_t tensor;
            const void *data;
            uint64_t bytes;
        } in[5] = {{p->q, q, (uint64_t)n * nh * hd * 4}, {p->k, kv, (uint64_t)n * nkv * hd * 4},
                   {p->v, kv, (uint64_t)n * nkv * hd * 4}, {p->pos, steps[s].pos, (uint64_t)n * 4},
                   {p->slots, steps[s].slot, (uint64_t)n * 4}};
        for (uint32_t i = 0; i < 5; i++) {
            if (i < 3) oh_random((float *)in[i].data, (int64_t)(in[i].bytes / 4), -2.0f, 2.0f, 17 + s * 3 + i);
            ck_assert_int_eq(oh_write(&a, in[i].tensor, in[i].data, in[i].bytes), EXO_OK);
            ck_assert_int_eq(oh_write(&b, in[i].tensor, in[i].data, in[i].bytes), EXO_OK);
        }
        ck_assert_msg(oh_exec(&b, n) == EXO_OK, "cpu step %u: %s", s, ref.host.last_error);
        ck_assert_msg(oh_exec(&a, n) == EXO_OK, "%s step %u: %s", gpu_name, s, gpu.host.last_error);
        uint32_t outs[3] = {p->out, p->kc, p->vc};
        for (uint32_t o = 0; o < 3; o++) {
            uint64_t bytes = oh_bytes(&p->g, outs[o], n);
            float *x = malloc(bytes), *y = malloc(bytes);
            ck_assert_int_eq(oh_read(&a, outs[o], x, bytes), EXO_OK);
            ck_assert_int_eq(oh_read(&b, outs[o], y, bytes), EXO_OK);
            double e = oh_nmse(x, y, (int64_t)(bytes / 4));
            if (!(e <= worst)) worst = e; /* NaN propagates */
            free(x);
            free(y);
        }
    }
    free(q);
    free(kv);
    oh_stop(&a);
    oh_stop(&b);
    return worst;
}

static void pool_case(const char *what, int32_t nh, int32_t nkv, int32_t hd, int32_t window, int with_sinks,
                      uint32_t n_seq, uint32_t n_steps, const uint32_t take[][4]) {
    pool_graph p;
    build(&p, nh, nkv, hd, window, 96, n_seq, with_sinks);
    step steps[8];
    make_steps(steps, n_steps, n_seq, take);
    double e = run_steps(&p, steps, n_steps, nh, nkv, hd);
    printf("nmse POOLED %-44s %.3e\n", what, e);
    fflush(stdout);
    ck_assert_msg(e <= NMSE_ATTENTION, "%s %s: NMSE %.3e exceeds %.1e", gpu_name, what, e, NMSE_ATTENTION);
}

/* Prefill chunks of different lengths, then batched decode steps of every sequence (the split
 * attention over tokens that see 2 to 37 rows), steps past 16 tokens (exo_attention), and one
 * sequence skipping steps. */
static const uint32_t MIXED[6][4] = {{5, 1, 12, 0}, {30, 1, 1, 3}, {1, 1, 1, 1}, {1, 0, 20, 1}, {1, 1, 1, 1}, {2, 3, 1, 0}};

START_TEST(pooled_attention_matches_reference) {
    open_both();
    pool_case("4/2 heads, hd 64, 4 slots", 4, 2, 64, 0, 0, 4, 6, MIXED);
    pool_case("8/1 heads, hd 40, window 9, sinks", 8, 1, 40, 9, 1, 4, 6, MIXED);
    pool_case("2/2 heads, hd 128, 3 slots", 2, 2, 128, 0, 0, 3, 6, MIXED);
    close_both();
}
END_TEST

/* A slot outside the pool is refused at execute, naming the node, the input and the value. */
START_TEST(slot_outside_the_pool_is_refused) {
    open_both();
    pool_graph p;
    build(&p, 2, 1, 32, 0, 16, 2, 0);
    oh_run a;
    ck_assert_msg(oh_start(&a, &gpu, &p.g) == EXO_OK, "%s: %s", gpu_name, gpu.host.last_error);
    int32_t pos[2] = {0, 0}, slots[2] = {1, 2};
    ck_assert_int_eq(oh_write(&a, p.pos, pos, sizeof pos), EXO_OK);
    ck_assert_int_eq(oh_write(&a, p.slots, slots, sizeof slots), EXO_OK);
    ck_assert_int_eq(oh_exec(&a, 2), EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(gpu.host.last_error, "node 0 (KV_WRITE): slot 'kv_slots'[1] = 2 is outside [0, 2)") != NULL,
                  "%s", gpu.host.last_error);
    /* In range, the same graph runs. */
    slots[1] = 0;
    ck_assert_int_eq(oh_write(&a, p.slots, slots, sizeof slots), EXO_OK);
    ck_assert_msg(oh_exec(&a, 2) == EXO_OK, "%s", gpu.host.last_error);
    oh_stop(&a);
    close_both();
}
END_TEST

int main(void) {
    Suite *s = suite_create("batch_kernels");
    TCase *tc = tcase_create("pooled");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, pooled_attention_matches_reference);
    tcase_add_test(tc, slot_outside_the_pool_is_refused);
    suite_add_tcase(s, tc);
    /* One process: a fork after PoCL's or the Level Zero loader's start-up hangs or corrupts
     * their state, and a missing device exits 77 (skip) from open_both. */
    return exo_check_run(s, CK_NOFORK);
}
