/* Prefix reuse (exo_session_copy_prefix): a session given the first n positions of another's KV
 * cache continues exactly as one that computed them itself — every row of its later logits
 * within 1e-4 (relative to the row's largest logit) of recomputing the whole sequence from
 * scratch — whatever it held before; the source goes on unchanged; the copy survives the pool
 * growing under it and mixes with the source in a batched step; bad calls fail with
 * EXO_ERR_INVALID_ARG and name why. Runs on whichever device EXO_PLUGINS_SELECT leaves: cpu_amx
 * copies slot to slot in its KV pool; a plugin without pooled caches copies buffer to buffer.
 * Fixtures: transformers' tiny models (tests/data); gpt_oss brings a sliding window and sinks. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exo.h"

#define DATA EXO_TEST_SOURCE_DIR "/tests/data"
#define TOL 1e-4
#define CTX 64

static const char *const MODELS[] = {DATA "/hf-tiny/llama", DATA "/hf-tiny/qwen3", DATA "/moe-tiny/gpt_oss"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

typedef struct fixture {
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    uint32_t vocab;
} fixture;

/* The load says at info level when a shard keeps a cache per session ("... no pooled KV caches
 * ..."): the test checks it ran the form it was meant to. */
static void on_log(void *user, exo_log_level level, const char *component, const char *message) {
    if (strstr(message, "no pooled KV caches")) *(bool *)user = true;
    if (level <= EXO_LOG_WARN) fprintf(stderr, "[%s] %s\n", component, message);
}

static fixture open_model(const char *dir) {
    fixture f = {0};
    bool unpooled = false;
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    ro.log = on_log;
    ro.log_user = &unpooled;
    ro.log_level = EXO_LOG_INFO;
    ck_assert_int_eq(exo_runtime_create(&ro, &f.rt), EXO_OK);
    ck_assert_msg(exo_model_open(f.rt, dir, &f.model) == EXO_OK, "%s: %s", dir, exo_last_error());
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.max_ctx = CTX;
    ck_assert_msg(exo_shard_load(f.model, &o, &f.shard) == EXO_OK, "%s: %s", dir, exo_last_error());
    /* EXO_KV_POOL=off must give per-session caches; cpu_amx otherwise pools. */
    const char *pool = getenv("EXO_KV_POOL"), *select = getenv("EXO_PLUGINS_SELECT");
    if (pool && strcmp(pool, "off") == 0)
        ck_assert_msg(unpooled, "EXO_KV_POOL=off, yet the shard pooled its KV caches");
    else if (select && strcmp(select, "cpu_amx") == 0)
        ck_assert_msg(!unpooled, "cpu_amx did not pool its KV caches");
    printf("%s: %s KV caches\n", dir, unpooled ? "per-session" : "pooled");
    exo_shard_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(f.shard, &info), EXO_OK);
    f.vocab = info.output_width;
    return f;
}

static void close_model(fixture *f) {
    exo_shard_destroy(f->shard);
    exo_model_destroy(f->model);
    exo_runtime_destroy(f->rt);
}

/* Token streams: a shared prefix (seq 0), then per-sequence continuations. */
static int32_t token(uint32_t seq, uint32_t i, uint32_t vocab) {
    return (int32_t)((seq * 7919u + i * 104729u + 13u) % vocab);
}

static void fill(int32_t *ids, uint32_t seq, uint32_t from, uint32_t n, uint32_t vocab) {
    for (uint32_t i = 0; i < n; i++) ids[i] = token(seq, from + i, vocab);
}

static double row_err(const float *a, const float *b, uint32_t n) {
    double m = 0, scale = 1e-30;
    for (uint32_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return m / scale;
}

/* Every row of got [rows, V] against the last `rows` rows of a from-scratch run of ids[0, n). */
static double against_scratch(fixture *f, const int32_t *ids, uint32_t n, const float *got, uint32_t rows) {
    uint32_t V = f->vocab;
    exo_session *fresh;
    ck_assert_int_eq(exo_session_create(f->shard, 0, &fresh), EXO_OK);
    float *want = malloc((size_t)n * V * sizeof *want);
    ck_assert_msg(exo_session_forward_tokens(fresh, ids, n, 0, want, (uint64_t)n * V) == EXO_OK, "%s",
                  exo_last_error());
    double worst = 0;
    for (uint32_t r = 0; r < rows; r++) {
        double e = row_err(got + (size_t)r * V, want + (size_t)(n - rows + r) * V, V);
        if (e > worst) worst = e;
    }
    free(want);
    exo_session_destroy(fresh);
    return worst;
}

START_TEST(copied_prefix_continues_as_recomputed) {
    const char *dir = MODELS[_i];
    fixture f = open_model(dir);
    uint32_t V = f.vocab;
    const uint32_t P = 20, K = 13, M = 7; /* source prompt, copied prefix, continuation */
    /* A session before the source, so the source's slot is not the pool's first. */
    exo_session *other, *src, *dst;
    ck_assert_int_eq(exo_session_create(f.shard, 0, &other), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 0, &src), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 0, &dst), EXO_OK);
    int32_t ids[CTX], junk[CTX];
    float *out = malloc((size_t)CTX * V * sizeof *out);
    fill(ids, 0, 0, P, V);
    ck_assert_int_eq(exo_session_forward_tokens(other, ids + 3, 9, EXO_FORWARD_LAST_ONLY, out, V), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(src, ids, P, EXO_FORWARD_LAST_ONLY, out, V), EXO_OK);
    /* dst held something else: its state is dropped, not mixed in. */
    fill(junk, 5, 0, 11, V);
    ck_assert_int_eq(exo_session_forward_tokens(dst, junk, 11, EXO_FORWARD_LAST_ONLY, out, V), EXO_OK);

    /* A session's KV takes K and V of every layer for every position of the shard's context, at
     * the shard's KV element size (bf16 by default where the plugin takes it). */
    exo_model_info mi;
    EXO_STRUCT_INIT(&mi);
    ck_assert_int_eq(exo_model_get_info(f.model, &mi), EXO_OK);
    exo_shard_info si;
    EXO_STRUCT_INIT(&si);
    ck_assert_int_eq(exo_shard_get_info(f.shard, &si), EXO_OK);
    uint64_t elem = si.kv_dtype == EXO_KV_DTYPE_F32 ? 4 : 2;
    ck_assert_uint_eq(exo_session_kv_bytes(dst), (uint64_t)mi.n_layers * 2 * CTX * mi.n_kv_heads * mi.head_dim * elem);
    ck_assert_uint_eq(exo_session_kv_bytes(NULL), 0);
    ck_assert_msg(exo_session_copy_prefix(dst, src, K) == EXO_OK, "%s: %s", dir, exo_last_error());
    ck_assert_uint_eq(exo_session_position(dst), K);
    ck_assert_uint_eq(exo_session_position(src), P);

    /* Sessions created after the copy grow the pool (1, 2, 4 -> 8 slots): the copied rows move
     * with it. */
    exo_session *more[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(exo_session_create(f.shard, 0, &more[i]), EXO_OK);

    /* dst diverges from the source after the copied prefix. */
    int32_t seq_dst[CTX];
    memcpy(seq_dst, ids, K * sizeof *ids);
    fill(seq_dst + K, 1, K, M, V);
    ck_assert_int_eq(exo_session_forward_tokens(dst, seq_dst + K, M, 0, out, (uint64_t)CTX * V), EXO_OK);
    double e1 = against_scratch(&f, seq_dst, K + M, out, M);
    ck_assert_msg(e1 <= TOL, "%s: copied session vs recomputed: %g", dir, e1);

    /* The source is untouched: it goes on as if nothing was copied out of it. */
    int32_t seq_src[CTX];
    memcpy(seq_src, ids, P * sizeof *ids);
    fill(seq_src + P, 2, P, 4, V);
    ck_assert_int_eq(exo_session_forward_tokens(src, seq_src + P, 4, 0, out, (uint64_t)CTX * V), EXO_OK);
    double e2 = against_scratch(&f, seq_src, P + 4, out, 4);
    ck_assert_msg(e2 <= TOL, "%s: source after the copy vs recomputed: %g", dir, e2);

    /* A copy of the whole source, then both stepped in one batched call. */
    exo_session *whole = more[2];
    ck_assert_int_eq(exo_session_copy_prefix(whole, src, P + 4), EXO_OK);
    int32_t a = token(3, 0, V), b = token(4, 0, V);
    float *out2 = malloc((size_t)V * sizeof *out2);
    exo_batch_entry e[2];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 2; i++) {
        EXO_STRUCT_INIT(&e[i]);
        e[i].n = 1;
        e[i].out_count = V;
    }
    e[0].session = src, e[0].tokens = &a, e[0].out = out;
    e[1].session = whole, e[1].tokens = &b, e[1].out = out2;
    ck_assert_msg(exo_session_forward_batch(e, 2) == EXO_OK, "%s: %s", dir, exo_last_error());
    seq_src[P + 4] = a;
    double e3 = against_scratch(&f, seq_src, P + 5, out, 1);
    seq_src[P + 4] = b;
    double e4 = against_scratch(&f, seq_src, P + 5, out2, 1);
    ck_assert_msg(e3 <= TOL && e4 <= TOL, "%s: batched source %g, copy %g", dir, e3, e4);
    printf("%s: copied prefix %g, source %g, batched %g %g (tolerance %g)\n", dir, e1, e2, e3, e4, TOL);

    /* n = 0 empties dst. */
    ck_assert_int_eq(exo_session_copy_prefix(dst, src, 0), EXO_OK);
    ck_assert_uint_eq(exo_session_position(dst), 0);

    free(out2);
    free(out);
    for (int i = 0; i < 4; i++) exo_session_destroy(more[i]);
    exo_session_destroy(dst);
    exo_session_destroy(src);
    exo_session_destroy(other);
    close_model(&f);
}
END_TEST

START_TEST(bad_copies_are_refused) {
    fixture f = open_model(MODELS[0]);
    fixture g = open_model(MODELS[0]);
    uint32_t V = f.vocab;
    exo_session *src, *dst, *small, *foreign;
    ck_assert_int_eq(exo_session_create(f.shard, 0, &src), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 0, &dst), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 8, &small), EXO_OK);
    ck_assert_int_eq(exo_session_create(g.shard, 0, &foreign), EXO_OK);
    int32_t ids[12];
    fill(ids, 0, 0, 12, V);
    float *out = malloc((size_t)V * sizeof *out);
    ck_assert_int_eq(exo_session_forward_tokens(src, ids, 12, EXO_FORWARD_LAST_ONLY, out, V), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(dst, ids, 3, EXO_FORWARD_LAST_ONLY, out, V), EXO_OK);

    ck_assert_int_eq(exo_session_copy_prefix(dst, src, 13), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_session_last_error(dst), "holds 12"));
    ck_assert_uint_eq(exo_session_position(dst), 3); /* a refused call changes nothing */
    ck_assert_int_eq(exo_session_copy_prefix(small, src, 9), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_session_last_error(small), "max_ctx 8"));
    ck_assert_int_eq(exo_session_copy_prefix(foreign, src, 4), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_session_last_error(foreign), "different shards"));
    ck_assert_int_eq(exo_session_copy_prefix(src, src, 4), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(exo_session_copy_prefix(NULL, src, 4), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(exo_session_copy_prefix(dst, NULL, 4), EXO_ERR_INVALID_ARG);
    ck_assert_uint_eq(exo_session_position(src), 12);
    ck_assert_int_eq(exo_session_copy_prefix(small, src, 8), EXO_OK); /* up to its max_ctx */
    ck_assert_uint_eq(exo_session_position(small), 8);

    free(out);
    exo_session_destroy(foreign);
    exo_session_destroy(small);
    exo_session_destroy(dst);
    exo_session_destroy(src);
    close_model(&g);
    close_model(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("session_prefix");
    TCase *tc = tcase_create("copy_prefix");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, copied_prefix_continues_as_recomputed, 0, (int)N_MODELS);
    tcase_add_test(tc, bad_copies_are_refused);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
