/* The KV cache kernels of a GPU plugin, op by op, against the CPU plugin's reference kernels
 * (the oracle), by NMSE (tests/opencl/op_harness.h): KV_WRITE and ATTENTION over pooled caches
 * (ABI 1.6: each token of a step in its own slot at its own position) and over one sequence's
 * cache, with F32, BF16 and F16 caches (ABI 1.7: the kernels' variants per cache dtype,
 * kernels/common.cl EXO_KV_VARIANTS), and with RoPE ahead of the writes (the GPU fuses RoPE of q
 * and k and both writes into exo_rope_kv). Steps of a few tokens take the split attention
 * (several tokens per launch, different context lengths), longer ones exo_attention; a slot
 * outside the pool is refused before any launch, naming the node. The plugin is
 * EXO_TEST_GPU_PLUGIN (opencl on PoCL, level_zero on the test driver). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"
#include "op_harness.h"

#define TOKENS_DIM EXO_DIM_TOKENS
#define NMSE_ATTENTION 1e-10
/* With RoPE ahead of the cache writes the GPU rotates in float (cos, sin) and the reference in
 * double, so a roped K element may differ by a float ulp, and a 16-bit cache may then round it
 * one bf16 / f16 ulp apart (2^-8 / 2^-11 of the element): a few such elements among thousands. */
#define NMSE_ROPE_KV16 1e-7
#define MAX_STEP 40
#define MAX_HEAD_DIM 256

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

/* One attention layer's cache ops. n_slots 0: one sequence's 3-D caches [ctx][nkv][hd], no slots
 * source; else pools [n_slots][ctx][nkv][hd] with a per-token slots source. */
typedef struct kv_case {
    int32_t nh, nkv, hd, window;
    int with_sinks, with_rope;
    uint32_t n_slots;
    exo_dtype kv;
} kv_case;

/* q, k, v, positions (and slots) in; [ROPE q, ROPE k,] KV_WRITE k, KV_WRITE v, ATTENTION (with
 * sinks when asked). */
typedef struct kv_graph {
    oh_graph g;
    kv_case c;
    uint32_t q, k, v, pos, slots, kc, vc, out, sinks;
    float inv_freq[MAX_HEAD_DIM / 2];
} kv_graph;

/* v_f32: the V cache in f32 whatever c->kv is, and no ATTENTION (which wants one dtype). */
static void build(kv_graph *p, const kv_case *c, int64_t ctx, int v_f32) {
    oh_graph *g = &p->g;
    int32_t nh = c->nh, nkv = c->nkv, hd = c->hd;
    ck_assert_int_le(hd, MAX_HEAD_DIM);
    p->c = *c;
    oh_init(g, MAX_STEP);
    p->q = oh_tensor(g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nh, TOKENS_DIM);
    p->k = oh_tensor(g, "k", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    p->v = oh_tensor(g, "v", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 3, hd, nkv, TOKENS_DIM);
    p->pos = oh_tensor(g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0);
    p->slots = c->n_slots ? oh_tensor(g, "kv_slots", EXO_DTYPE_I32, EXO_TENSOR_INPUT, 1, TOKENS_DIM, 0, 0) : 0;
    p->kc = oh_tensor(g, "k_cache", c->kv, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    p->vc = oh_tensor(g, "v_cache", v_f32 ? EXO_DTYPE_F32 : c->kv, EXO_TENSOR_KV, 3, hd, nkv, ctx);
    if (c->n_slots)
        for (uint32_t t = p->kc; t <= p->vc; t++) {
            g->tensors[t].n_dims = 4;
            g->tensors[t].ne[3] = c->n_slots;
        }
    p->out = v_f32 ? UINT32_MAX : oh_tensor(g, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, 2, (int64_t)nh * hd, TOKENS_DIM, 0);
    p->sinks = c->with_sinks ? oh_tensor(g, "sinks", EXO_DTYPE_F32, EXO_TENSOR_INPUT, 1, nh, 0, 0) : 0;
    uint32_t q_in = p->q, k_in = p->k;
    if (c->with_rope) { /* NEOX over the whole head, as llama */
        for (int32_t i = 0; i < hd / 2; i++) p->inv_freq[i] = powf(10000.0f, -2.0f * (float)i / (float)hd);
        uint32_t freq = oh_weight(g, "inv_freq", EXO_DTYPE_F32, p->inv_freq, 0, 1, hd / 2, 0);
        q_in = oh_tensor(g, "q_roped", EXO_DTYPE_F32, 0, 3, hd, nh, TOKENS_DIM);
        k_in = oh_tensor(g, "k_roped", EXO_DTYPE_F32, 0, 3, hd, nkv, TOKENS_DIM);
        int32_t ip[2];
        ip[EXO_ROPE_I_MODE] = EXO_ROPE_NEOX;
        ip[EXO_ROPE_I_N_ROT] = hd;
        float factor = 1.0f;
        oh_node(g, EXO_OP_ROPE, q_in, 3, (uint32_t[]){p->q, p->pos, freq}, ip, 2, &factor, 1);
        oh_node(g, EXO_OP_ROPE, k_in, 3, (uint32_t[]){p->k, p->pos, freq}, ip, 2, &factor, 1);
    }
    uint32_t n_write = c->n_slots ? 3 : 2;
    oh_node(g, EXO_OP_KV_WRITE, p->kc, n_write, (uint32_t[]){k_in, p->pos, p->slots}, NULL, 0, NULL, 0);
    oh_node(g, EXO_OP_KV_WRITE, p->vc, n_write, (uint32_t[]){p->v, p->pos, p->slots}, NULL, 0, NULL, 0);
    if (v_f32) return;
    int32_t ip[4] = {nh, nkv, hd, c->window};
    float fp[2] = {1.0f / sqrtf((float)hd), 0.0f};
    uint32_t src[6] = {q_in, p->kc, p->vc, p->pos}, n_src = 4;
    if (c->with_sinks) src[n_src++] = p->sinks;
    if (c->n_slots) src[n_src++] = p->slots;
    oh_node(g, EXO_OP_ATTENTION, p->out, n_src, src, ip, 4, fp, 2);
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

/* n elements of a cache read back (F32, BF16 or F16 bytes) as floats, exactly. */
static void widen(const void *bytes, exo_dtype dtype, float *out, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (dtype == EXO_DTYPE_F32) {
            memcpy(&out[i], (const char *)bytes + 4 * i, 4);
            continue;
        }
        uint16_t h;
        memcpy(&h, (const char *)bytes + 2 * i, 2);
        if (dtype == EXO_DTYPE_BF16) {
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        } else {
            _Float16 x;
            memcpy(&x, &h, 2);
            out[i] = (float)x;
        }
    }
}

/* Runs the steps on both devices; returns the worst NMSE of the attention output and of the
 * caches (widened to float). Without RoPE, KV_WRITE stores the same float rows on both sides, so
 * the caches must also agree bit for bit, in every dtype (both round to nearest even). */
static double run_steps(const kv_graph *p, const step *steps, uint32_t n_steps) {
    const kv_case *c = &p->c;
    int32_t nh = c->nh, nkv = c->nkv, hd = c->hd;
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
        for (uint32_t i = 0; i < (c->n_slots ? 5u : 4u); i++) {
            if (i < 3) oh_random((float *)in[i].data, (int64_t)(in[i].bytes / 4), -2.0f, 2.0f, 17 + s * 3 + i);
            ck_assert_int_eq(oh_write(&a, in[i].tensor, in[i].data, in[i].bytes), EXO_OK);
            ck_assert_int_eq(oh_write(&b, in[i].tensor, in[i].data, in[i].bytes), EXO_OK);
        }
        ck_assert_msg(oh_exec(&b, n) == EXO_OK, "cpu step %u: %s", s, ref.host.last_error);
        ck_assert_msg(oh_exec(&a, n) == EXO_OK, "%s step %u: %s", gpu_name, s, gpu.host.last_error);
        uint32_t outs[3] = {p->out, p->kc, p->vc};
        for (uint32_t o = p->out == UINT32_MAX ? 1 : 0; o < 3; o++) {
            uint64_t bytes = oh_bytes(&p->g, outs[o], n);
            exo_dtype dtype = p->g.tensors[outs[o]].dtype;
            uint64_t count = bytes / (dtype == EXO_DTYPE_F32 ? 4 : 2);
            void *x = malloc(bytes), *y = malloc(bytes);
            float *xf = malloc(count * sizeof(float)), *yf = malloc(count * sizeof(float));
            ck_assert_int_eq(oh_read(&a, outs[o], x, bytes), EXO_OK);
            ck_assert_int_eq(oh_read(&b, outs[o], y, bytes), EXO_OK);
            if (o > 0 && !c->with_rope)
                ck_assert_msg(memcmp(x, y, bytes) == 0, "%s step %u: the %s cache differs from the reference's bits",
                              gpu_name, s, o == 1 ? "k" : "v");
            widen(x, dtype, xf, count);
            widen(y, dtype, yf, count);
            double e = oh_nmse(xf, yf, (int64_t)count);
            if (!(e <= worst)) worst = e; /* NaN propagates */
            free(x);
            free(y);
            free(xf);
            free(yf);
        }
    }
    free(q);
    free(kv);
    oh_stop(&a);
    oh_stop(&b);
    return worst;
}

static const char *kv_name(exo_dtype d) { return d == EXO_DTYPE_BF16 ? "bf16" : d == EXO_DTYPE_F16 ? "f16" : "f32"; }

static void kv_case_run_v(const char *what, const kv_case *c, uint32_t n_seq, uint32_t n_steps, const uint32_t take[][4],
                          int v_f32) {
    kv_graph p;
    build(&p, c, 96, v_f32);
    step steps[8];
    make_steps(steps, n_steps, n_seq, take);
    double e = run_steps(&p, steps, n_steps);
    double limit = c->with_rope && c->kv != EXO_DTYPE_F32 ? NMSE_ROPE_KV16 : NMSE_ATTENTION;
    printf("nmse %s %s %-44s %.3e\n", c->n_slots ? "POOLED" : "SINGLE", kv_name(c->kv), what, e);
    fflush(stdout);
    ck_assert_msg(e <= limit, "%s %s cache, %s: NMSE %.3e exceeds %.1e", gpu_name, kv_name(c->kv), what, e, limit);
}

/* Prefill chunks of different lengths, then batched decode steps of every sequence (the split
 * attention over tokens that see 2 to 37 rows), steps past 16 tokens (exo_attention), and one
 * sequence skipping steps. */
static const uint32_t MIXED[6][4] = {{5, 1, 12, 0}, {30, 1, 1, 3}, {1, 1, 1, 1}, {1, 0, 20, 1}, {1, 1, 1, 1}, {2, 3, 1, 0}};
/* One sequence: a prefill over one attention tile, decode steps (split attention), a 20-token
 * chunk (exo_attention). */
static const uint32_t SINGLE[5][4] = {{37}, {1}, {1}, {20}, {1}};

/* The pooled cases in one cache dtype: MHA-like GQA, MQA with a window and sinks, wide heads,
 * and RoPE ahead of the writes (exo_rope_kv on the GPU). */
static void kv_case_run(const char *what, const kv_case *c, uint32_t n_seq, uint32_t n_steps, const uint32_t take[][4]) {
    kv_case_run_v(what, c, n_seq, n_steps, take, 0);
}

static void pooled_cases(exo_dtype kv) {
    kv_case_run("4/2 heads, hd 64, 4 slots", &(kv_case){4, 2, 64, 0, 0, 0, 4, kv}, 4, 6, MIXED);
    kv_case_run("8/1 heads, hd 40, window 9, sinks", &(kv_case){8, 1, 40, 9, 1, 0, 4, kv}, 4, 6, MIXED);
    kv_case_run("2/2 heads, hd 128, 3 slots", &(kv_case){2, 2, 128, 0, 0, 0, 3, kv}, 3, 6, MIXED);
    kv_case_run("rope + writes, 4/2 heads, hd 64, 4 slots", &(kv_case){4, 2, 64, 0, 0, 1, 4, kv}, 4, 6, MIXED);
}

static void single_cases(exo_dtype kv) {
    kv_case_run("6/2 heads, hd 64", &(kv_case){6, 2, 64, 0, 0, 0, 0, kv}, 1, 5, SINGLE);
    kv_case_run("4/1 heads, hd 40, window 9, sinks", &(kv_case){4, 1, 40, 9, 1, 0, 0, kv}, 1, 5, SINGLE);
    kv_case_run("rope + writes, 4/2 heads, hd 64", &(kv_case){4, 2, 64, 0, 0, 1, 0, kv}, 1, 5, SINGLE);
    if (kv != EXO_DTYPE_F32)
        /* exo_rope_kv writes both caches through one variant: caches of two dtypes must not take it. */
        kv_case_run_v("rope + writes, V cache f32, 4/2 heads, hd 64", &(kv_case){4, 2, 64, 0, 0, 1, 0, kv}, 1, 5, SINGLE, 1);
}

START_TEST(pooled_attention_matches_reference) {
    open_both();
    pooled_cases(EXO_DTYPE_F32);
    close_both();
}
END_TEST

/* ABI 1.7: the bf16 (the default) and f16 caches, pooled and per sequence. */
START_TEST(bf16_and_f16_caches_match_reference) {
    open_both();
    static const exo_dtype dtypes[] = {EXO_DTYPE_BF16, EXO_DTYPE_F16};
    for (int i = 0; i < 2; i++) {
        pooled_cases(dtypes[i]);
        single_cases(dtypes[i]);
    }
    single_cases(EXO_DTYPE_F32);
    close_both();
}
END_TEST

/* A slot outside the pool is refused at execute, naming the node, the input and the value. */
START_TEST(slot_outside_the_pool_is_refused) {
    open_both();
    kv_graph p;
    build(&p, &(kv_case){2, 1, 32, 0, 0, 0, 2, EXO_DTYPE_F32}, 16, 0);
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
    tcase_add_test(tc, bf16_and_f16_caches_match_reference);
    tcase_add_test(tc, slot_outside_the_pool_is_refused);
    suite_add_tcase(s, tc);
    /* One process: a fork after PoCL's or the Level Zero loader's start-up hangs or corrupts
     * their state, and a missing device exits 77 (skip) from open_both. */
    return exo_check_run(s, CK_NOFORK);
}
