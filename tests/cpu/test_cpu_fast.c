/* cpu_amx: the AVX-512 kernels against the reference kernels on the same graphs, per op, with
 * NMSE thresholds (like ggml's test-backend-ops), across shapes that hit every tile tail and
 * thread counts that split the work unevenly. Skips (77) on CPUs without AVX-512. */
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
#define FAST_NMSE 1e-10

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

/* Compiles `g` twice (reference kernels forced, then the default ones, which must be the
 * AVX-512 ones here), runs both on the same inputs and compares output `out`. */
static void compare_fast_to_ref(tgraph *g, uint32_t out, uint32_t n_tokens, int64_t count, const char *what) {
    cpu_fixture *fx = g->fx;
    exo_graph graph = tg_graph(g);
    exo_compiled *ref = NULL, *fast = NULL;
    setenv("EXO_CPU_KERNELS", "ref", 1);
    ck_assert_int_eq(fx->api.graph_compile(fx->ctx, 0, &graph, &ref), EXO_OK);
    unsetenv("EXO_CPU_KERNELS");
    fx->host.log[0] = 0;
    ck_assert_int_eq(fx->api.graph_compile(fx->ctx, 0, &graph, &fast), EXO_OK);
    ck_assert_msg(strstr(fx->host.log, "AVX-512 kernels"), "fast kernels not chosen: %s", fx->host.log);
    float *a = malloc(sizeof(float) * count), *b = malloc(sizeof(float) * count);
    ck_assert_int_eq(tg_run(g, ref, n_tokens), EXO_OK);
    tg_read(g, out, a, sizeof(float) * count);
    memset(b, 0xff, sizeof(float) * count);
    ck_assert_int_eq(fx->api.buffer_write(g->bound[out], 0, b, sizeof(float) * count), EXO_OK);
    ck_assert_int_eq(tg_run(g, fast, n_tokens), EXO_OK);
    tg_read(g, out, b, sizeof(float) * count);
    double e = tg_nmse_f(b, a, count);
    ck_assert_msg(e < FAST_NMSE, "%s: fast vs reference NMSE %.3g", what, e);
    fx->api.compiled_free(ref);
    fx->api.compiled_free(fast);
    free(a);
    free(b);
}

static void matmul_fast_case(exo_dtype type, int64_t k, int64_t n, uint32_t tokens, uint32_t threads, int bias) {
    if (!cpu_has_avx512()) exit(77);
    cpu_fixture fx;
    fx_open(&fx, threads);
    tgraph g;
    tg_init(&g, &fx, tokens);
    void *w = tg_weights_of(type, n * k, 7);
    float *bv = tg_weights_of(EXO_DTYPE_F32, n, 8);
    uint32_t tw = tg_weight(&g, "w", type, w, k, n);
    uint32_t tb = tg_weight(&g, "b", EXO_DTYPE_F32, bv, n, 0);
    uint32_t x = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, k, T, 0, 0);
    uint32_t out = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, n, T, 0, 0);
    uint32_t src[] = {x, tw, tb};
    tg_node(&g, EXO_OP_MATMUL, out, bias ? 3 : 2, src);
    tg_alloc_bound(&g);
    float *xv = tg_weights_of(EXO_DTYPE_F32, k * tokens, 9);
    tg_write(&g, x, xv, sizeof(float) * k * tokens);
    char what[96];
    snprintf(what, sizeof what, "MATMUL dtype %d k %lld n %lld tokens %u threads %u", type, (long long)k,
             (long long)n, tokens, threads);
    compare_fast_to_ref(&g, out, tokens, n * tokens, what);
    free(w), free(bv), free(xv);
    tg_free(&g);
    fx_close(&fx);
}

START_TEST(matmul_decode_all_dtypes) {
    exo_dtype types[] = {EXO_DTYPE_F32, EXO_DTYPE_F16, EXO_DTYPE_BF16, EXO_DTYPE_Q8_0};
    for (int i = 0; i < 4; i++) {
        matmul_fast_case(types[i], 96, 70, 1, 2, 1);
        matmul_fast_case(types[i], 160, 33, 3, 3, 0);
    }
}
END_TEST

START_TEST(matmul_odd_k_tails) {
    /* K not a multiple of 16 exercises the masked tail loads. */
    matmul_fast_case(EXO_DTYPE_F32, 37, 21, 1, 2, 1);
    matmul_fast_case(EXO_DTYPE_BF16, 45, 19, 2, 2, 0);
    matmul_fast_case(EXO_DTYPE_F16, 23, 5, 4, 1, 1);
}
END_TEST

START_TEST(matmul_prefill_all_dtypes) {
    exo_dtype types[] = {EXO_DTYPE_F32, EXO_DTYPE_F16, EXO_DTYPE_BF16, EXO_DTYPE_Q8_0};
    for (int i = 0; i < 4; i++) matmul_fast_case(types[i], 128, 75, 37, 3, 1);
    matmul_fast_case(EXO_DTYPE_BF16, 50, 64, 9, 2, 0);
}
END_TEST

/* The blocked GEMM's edges: several inner blocks with a tail that is not a multiple of 16,
 * several column blocks with a partial last panel, token counts that leave a partial micro-tile,
 * chunk splits over 1-3 threads. */
START_TEST(matmul_gemm_blocking) {
    matmul_fast_case(EXO_DTYPE_BF16, 600, 300, 29, 2, 1);
    matmul_fast_case(EXO_DTYPE_BF16, 256, 64, 5, 1, 0);
    matmul_fast_case(EXO_DTYPE_F32, 531, 97, 13, 3, 1);
    matmul_fast_case(EXO_DTYPE_F16, 272, 161, 24, 2, 0);
    matmul_fast_case(EXO_DTYPE_Q8_0, 544, 70, 12, 2, 1);
}
END_TEST

/* The decode matrix-vector path (bf16 and f16 weights): inner sizes with and without a tail past
 * the last full line of 32 weights, row counts that leave single rows after the 4-row tiles. */
START_TEST(matmul_gemv_shapes) {
    for (uint32_t tokens = 1; tokens <= 4; tokens++)
        for (int h = 0; h < 2; h++) {
            exo_dtype type = h ? EXO_DTYPE_F16 : EXO_DTYPE_BF16;
            matmul_fast_case(type, 2048, 259, tokens, 2, tokens % 2);
            matmul_fast_case(type, 77, 7, tokens, 1, 1);
        }
}
END_TEST

/* A batched decode step's 5-16 tokens through the streaming kernel: several token groups per
 * tile of rows, a last group of 1-4 tokens, single rows after the tiles, k with and without a
 * tail. */
START_TEST(matmul_gemv_batch_shapes) {
    const uint32_t batch[] = {5, 7, 8, 9, 12, 13, 16};
    for (size_t i = 0; i < sizeof batch / sizeof *batch; i++)
        for (int h = 0; h < 2; h++) {
            exo_dtype type = h ? EXO_DTYPE_F16 : EXO_DTYPE_BF16;
            matmul_fast_case(type, 2048, 259, batch[i], 2, batch[i] % 2);
            matmul_fast_case(type, 77, 35, batch[i], 1, 1);
        }
}
END_TEST

/* Three matmuls reading one input (like q/k/v) run as one grouped pool job; each output must
 * still match the reference, for decode (streaming kernel) and prefill (GEMM) token counts,
 * with members of different widths, dtypes and bias. */
static void matmul_group_case(uint32_t tokens) {
    if (!cpu_has_avx512()) exit(77);
    const exo_dtype types[3] = {EXO_DTYPE_BF16, EXO_DTYPE_F32, EXO_DTYPE_BF16};
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    tg_matmul_group mg;
    tg_build_matmul_group(&g, types, &mg);
    tg_alloc_bound(&g);
    float *xv = tg_weights_of(EXO_DTYPE_F32, TG_GROUP_K * tokens, 9);
    tg_write(&g, mg.x, xv, sizeof(float) * TG_GROUP_K * tokens);
    for (int i = 0; i < 3; i++) compare_fast_to_ref(&g, mg.out[i], tokens, mg.n[i] * tokens, "grouped MATMUL");
    ck_assert_msg(strstr(fx.host.log, ", 1 matmul groups"), "the three matmuls were not grouped: %s", fx.host.log);
    tg_matmul_group_free(&mg);
    free(xv);
    tg_free(&g);
    fx_close(&fx);
}

START_TEST(matmul_group_shared_input) {
    matmul_group_case(1);
    matmul_group_case(3);
    matmul_group_case(40);
}
END_TEST

/* Weights read in place from a file mapping at an odd 2-byte offset, the way the core wraps a
 * safetensors mmap (buffer_wrap_host): compile prefaults those pages (page-crossing tensors
 * with unaligned starts), and the kernels take unaligned bf16 rows. */
START_TEST(matmul_wrapped_file_weights) {
    if (!cpu_has_avx512()) exit(77);
    const int64_t k = 2048, n = 300;
    const uint64_t offset = 4094; /* straddles the first page boundary */
    char path[] = "/tmp/exo-cpu-fast-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    uint16_t *w = tg_weights_of(EXO_DTYPE_BF16, n * k, 7);
    uint64_t size = offset + (uint64_t)(n * k) * 2;
    ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
    ck_assert_int_eq(pwrite(fd, w, (size_t)(n * k) * 2, (off_t)offset), (ssize_t)(n * k) * 2);
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ck_assert(map != MAP_FAILED);
    for (uint32_t tokens = 1; tokens <= 40; tokens += 39) {
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
        uint32_t out = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, n, T, 0, 0);
        uint32_t src[] = {x, tw};
        tg_node(&g, EXO_OP_MATMUL, out, 2, src);
        tg_alloc_bound(&g);
        float *xv = tg_weights_of(EXO_DTYPE_F32, k * tokens, 9);
        tg_write(&g, x, xv, sizeof(float) * k * tokens);
        compare_fast_to_ref(&g, out, tokens, n * tokens, "MATMUL on wrapped file weights");
        free(xv);
        tg_free(&g);
        fx_close(&fx);
    }
    munmap(map, size);
    close(fd);
    free(w);
}
END_TEST

/* ADD/MUL with a same-shape operand, a row-broadcast weight (runs that restart mid-chunk) and a
 * bf16 operand (reference fallback inside the fast kernel). */
static void binary_fast_case(exo_op op, int broadcast, exo_dtype b_type) {
    if (!cpu_has_avx512()) exit(77);
    const int64_t h = 4099;
    const uint32_t tokens = 3;
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    uint32_t ta = tg_tensor(&g, "a", EXO_DTYPE_F32, EXO_TENSOR_INPUT, h, T, 0, 0);
    void *bw = tg_weights_of(b_type, h, 42);
    uint32_t tb = broadcast ? tg_weight(&g, "b", b_type, bw, h, 0)
                            : tg_tensor(&g, "b", EXO_DTYPE_F32, EXO_TENSOR_INPUT, h, T, 0, 0);
    uint32_t out = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, h, T, 0, 0);
    uint32_t src[] = {ta, tb};
    tg_node(&g, op, out, 2, src);
    tg_alloc_bound(&g);
    float *av = tg_weights_of(EXO_DTYPE_F32, h * tokens, 41), *bv = tg_weights_of(EXO_DTYPE_F32, h * tokens, 43);
    tg_write(&g, ta, av, sizeof(float) * h * tokens);
    if (!broadcast) tg_write(&g, tb, bv, sizeof(float) * h * tokens);
    compare_fast_to_ref(&g, out, tokens, h * tokens, op == EXO_OP_ADD ? "ADD" : "MUL");
    free(av), free(bv), free(bw);
    tg_free(&g);
    fx_close(&fx);
}

START_TEST(add_mul_fast) {
    binary_fast_case(EXO_OP_ADD, 0, EXO_DTYPE_F32);
    binary_fast_case(EXO_OP_ADD, 1, EXO_DTYPE_F32);
    binary_fast_case(EXO_OP_MUL, 1, EXO_DTYPE_F32);
    binary_fast_case(EXO_OP_MUL, 1, EXO_DTYPE_BF16);
}
END_TEST

/* GLU over gate values from deep negative (exp overflow side) to large positive. */
START_TEST(glu_fast) {
    if (!cpu_has_avx512()) exit(77);
    for (int act = EXO_ACT_SILU; act <= EXO_ACT_GELU_TANH; act++) {
        const int64_t w = 1000;
        const uint32_t tokens = 5;
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, tokens);
        uint32_t tgate = tg_tensor(&g, "gate", EXO_DTYPE_F32, EXO_TENSOR_INPUT, w, T, 0, 0);
        uint32_t tup = tg_tensor(&g, "up", EXO_DTYPE_F32, EXO_TENSOR_INPUT, w, T, 0, 0);
        uint32_t out = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, w, T, 0, 0);
        uint32_t src[] = {tgate, tup};
        g.nodes[tg_node(&g, EXO_OP_GLU, out, 2, src)].i[EXO_GLU_I_ACT] = act;
        tg_alloc_bound(&g);
        float *gate = malloc(sizeof(float) * w * tokens), *up = tg_weights_of(EXO_DTYPE_F32, w * tokens, 52);
        tg_random(gate, w * tokens, -30, 30, 51);
        gate[0] = -120.0f, gate[1] = 95.0f, gate[2] = 0.0f;
        tg_write(&g, tgate, gate, sizeof(float) * w * tokens);
        tg_write(&g, tup, up, sizeof(float) * w * tokens);
        compare_fast_to_ref(&g, out, tokens, w * tokens, act == EXO_ACT_SILU ? "GLU silu" : "GLU gelu_tanh");
        free(gate), free(up);
        tg_free(&g);
        fx_close(&fx);
    }
}
END_TEST

/* RoPE at real head sizes: full and partial rotation (pass-through tail), large positions. */
static void rope_fast_case(int mode, int64_t dim, int n_rot, float factor) {
    if (!cpu_has_avx512()) exit(77);
    const int64_t heads = 5;
    const uint32_t tokens = 7;
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    float *inv_freq = malloc(sizeof(float) * (size_t)(n_rot / 2));
    for (int i = 0; i < n_rot / 2; i++) inv_freq[i] = (float)pow(500000.0, -2.0 * i / n_rot);
    uint32_t in = tg_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, dim, heads, T, 0);
    uint32_t tp = tg_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
    uint32_t tf = tg_weight(&g, "rope_freqs", EXO_DTYPE_F32, inv_freq, n_rot / 2, 0);
    uint32_t out = tg_tensor(&g, "q_rot", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, dim, heads, T, 0);
    uint32_t src[] = {in, tp, tf};
    exo_node *nd = &g.nodes[tg_node(&g, EXO_OP_ROPE, out, 3, src)];
    nd->i[EXO_ROPE_I_MODE] = mode, nd->i[EXO_ROPE_I_N_ROT] = n_rot, nd->f[EXO_ROPE_F_ATTN_FACTOR] = factor;
    tg_alloc_bound(&g);
    float *x = tg_weights_of(EXO_DTYPE_F32, dim * heads * tokens, 81);
    int32_t pos[7] = {0, 1, 2, 63, 511, 4000, 131000};
    tg_write(&g, in, x, sizeof(float) * dim * heads * tokens);
    tg_write(&g, tp, pos, sizeof pos);
    compare_fast_to_ref(&g, out, tokens, dim * heads * tokens, "ROPE");
    free(x), free(inv_freq);
    tg_free(&g);
    fx_close(&fx);
}

START_TEST(rope_fast) {
    rope_fast_case(EXO_ROPE_NEOX, 64, 64, 1.0f);
    rope_fast_case(EXO_ROPE_NEOX, 128, 96, 1.2f);
    rope_fast_case(EXO_ROPE_NEOX, 40, 40, 1.0f);
    rope_fast_case(EXO_ROPE_NORMAL, 64, 32, 1.0f);
}
END_TEST

static void attention_fast_case(int heads, int kv_heads, int dim, int ctx, int window, float softcap, uint32_t tokens) {
    if (!cpu_has_avx512()) exit(77);
    cpu_fixture fx;
    fx_open(&fx, 2);
    tgraph g;
    tg_init(&g, &fx, tokens);
    uint32_t q = tg_tensor(&g, "q", EXO_DTYPE_F32, EXO_TENSOR_INPUT, dim, heads, T, 0);
    uint32_t kc = tg_tensor(&g, "k_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, dim, kv_heads, ctx, 0);
    uint32_t vc = tg_tensor(&g, "v_cache", EXO_DTYPE_F32, EXO_TENSOR_KV, dim, kv_heads, ctx, 0);
    uint32_t pos = tg_tensor(&g, "pos", EXO_DTYPE_I32, EXO_TENSOR_INPUT, T, 0, 0, 0);
    uint32_t out = tg_tensor(&g, "attn", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, dim * heads, T, 0, 0);
    uint32_t src[] = {q, kc, vc, pos};
    exo_node *nd = &g.nodes[tg_node(&g, EXO_OP_ATTENTION, out, 4, src)];
    nd->i[EXO_ATTENTION_I_N_HEADS] = heads, nd->i[EXO_ATTENTION_I_N_KV_HEADS] = kv_heads;
    nd->i[EXO_ATTENTION_I_HEAD_DIM] = dim, nd->i[EXO_ATTENTION_I_WINDOW] = window;
    nd->f[EXO_ATTENTION_F_SCALE] = 0.125f, nd->f[EXO_ATTENTION_F_SOFTCAP] = softcap;
    tg_alloc_bound(&g);
    int64_t kv = (int64_t)ctx * kv_heads * dim;
    float *cache = tg_weights_of(EXO_DTYPE_F32, kv, 21), *qv = tg_weights_of(EXO_DTYPE_F32, (int64_t)tokens * heads * dim, 22);
    for (int64_t i = 0; i < kv; i++) cache[i] *= 4; /* sharper softmax */
    tg_write(&g, kc, cache, sizeof(float) * kv);
    for (int64_t i = 0; i < kv; i++) cache[i] = cache[i] * 0.5f + 0.1f;
    tg_write(&g, vc, cache, sizeof(float) * kv);
    tg_write(&g, q, qv, sizeof(float) * tokens * heads * dim);
    int32_t *p = malloc(sizeof(int32_t) * tokens);
    for (uint32_t t = 0; t < tokens; t++) p[t] = ctx - (int32_t)tokens + (int32_t)t;
    tg_write(&g, pos, p, sizeof(int32_t) * tokens);
    compare_fast_to_ref(&g, out, tokens, (int64_t)tokens * heads * dim, "ATTENTION");
    free(cache), free(qv), free(p);
    tg_free(&g);
    fx_close(&fx);
}

START_TEST(attention_long_context) { attention_fast_case(8, 2, 64, 300, 0, 0, 3); }
END_TEST
START_TEST(attention_window_softcap_odd_dim) { attention_fast_case(4, 4, 40, 200, 70, 30.0f, 5); }
END_TEST
/* MQA with more query heads than the kernel shares one KV pass across (groups get split). */
START_TEST(attention_mqa_large_group) { attention_fast_case(20, 1, 32, 130, 0, 0, 3); }
END_TEST

/* A long prefill: token blocks, causal masks that differ inside a block, tiles that a query
 * only partly sees, a sliding window that skips whole tiles; and single-token decode. */
START_TEST(attention_prefill_blocks) {
    attention_fast_case(8, 2, 64, 300, 0, 0, 70);
    attention_fast_case(6, 2, 32, 260, 90, 0, 45);
    attention_fast_case(32, 8, 64, 129, 0, 0, 1);
}
END_TEST

/* Single-token decode: partial last step of 16 rows, a window, softcap, odd head size, and an
 * MQA group wider than the kernel's head group. */
START_TEST(attention_decode_shapes) {
    attention_fast_case(8, 2, 64, 1, 0, 0, 1);
    attention_fast_case(8, 2, 64, 37, 0, 0, 1);
    attention_fast_case(4, 4, 40, 200, 70, 30.0f, 1);
    attention_fast_case(20, 1, 32, 130, 0, 0, 1);
    attention_fast_case(12, 4, 128, 75, 0, 0, 2);
}
END_TEST

START_TEST(rms_norm_fast) {
    if (!cpu_has_avx512()) exit(77);
    exo_dtype types[] = {EXO_DTYPE_F32, EXO_DTYPE_F16, EXO_DTYPE_BF16};
    for (int i = 0; i < 3; i++) {
        cpu_fixture fx;
        fx_open(&fx, 2);
        tgraph g;
        tg_init(&g, &fx, 5);
        const int64_t h = 100;
        void *w = tg_weights_of(types[i], h, 31);
        uint32_t tw = tg_weight(&g, "norm", types[i], w, h, 0);
        uint32_t x = tg_tensor(&g, "x", EXO_DTYPE_F32, EXO_TENSOR_INPUT, h, T, 0, 0);
        uint32_t out = tg_tensor(&g, "y", EXO_DTYPE_F32, EXO_TENSOR_OUTPUT, h, T, 0, 0);
        uint32_t src[] = {x, tw};
        exo_node *nd = &g.nodes[tg_node(&g, EXO_OP_RMS_NORM, out, 2, src)];
        nd->f[EXO_RMS_NORM_F_EPS] = 1e-6f, nd->i[EXO_RMS_NORM_I_ADD_ONE] = i == 2;
        tg_alloc_bound(&g);
        float *xv = tg_weights_of(EXO_DTYPE_F32, h * 5, 32);
        tg_write(&g, x, xv, sizeof(float) * h * 5);
        compare_fast_to_ref(&g, out, 5, h * 5, "RMS_NORM");
        free(w), free(xv);
        tg_free(&g);
        fx_close(&fx);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_fast");
    TCase *tc = tcase_create("fast_vs_ref");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matmul_decode_all_dtypes);
    tcase_add_test(tc, matmul_odd_k_tails);
    tcase_add_test(tc, matmul_prefill_all_dtypes);
    tcase_add_test(tc, matmul_gemm_blocking);
    tcase_add_test(tc, matmul_gemv_shapes);
    tcase_add_test(tc, matmul_gemv_batch_shapes);
    tcase_add_test(tc, matmul_group_shared_input);
    tcase_add_test(tc, matmul_wrapped_file_weights);
    tcase_add_test(tc, add_mul_fast);
    tcase_add_test(tc, glu_fast);
    tcase_add_test(tc, rope_fast);
    tcase_add_test(tc, attention_long_context);
    tcase_add_test(tc, attention_window_softcap_odd_dim);
    tcase_add_test(tc, attention_mqa_large_group);
    tcase_add_test(tc, attention_prefill_blocks);
    tcase_add_test(tc, attention_decode_shapes);
    tcase_add_test(tc, rms_norm_fast);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
