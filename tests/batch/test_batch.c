/* Batched steps (exo_session_forward_batch) on the device EXO_PLUGINS_SELECT names (cpu_amx,
 * opencl, level_zero: tests/batch/CMakeLists.txt): every sequence of a batch gives
 * the logits it gives stepped alone (max |diff| <= 1e-4 x the row's largest logit, float32 KV),
 * with decode steps and prefill chunks of different lengths at different positions mixed in one
 * step, across a KV pool that grows while sequences hold state, and with more tokens than one
 * execution takes; a failing entry carries its own error and leaves the others and its own
 * session untouched. Fixtures: transformers' tiny models (tests/data), whose single-session
 * logits exo-golden checks against transformers; gpt_oss brings a sliding window and sinks. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argmax_oracle.h"
#include "exo.h"

#define DATA EXO_TEST_SOURCE_DIR "/tests/data"
#define MAX_SEQ 6
/* 1e-4 with a float32 KV cache (EXO_KV_DTYPE=f32: test_batch_kv_f32). A 16-bit cache (the
 * default, bf16) stores K and V rounded: where a batched and a lone step compute an element a
 * float ulp apart (matmuls of different row counts), the rounding may land one 16-bit ulp apart
 * (2^-8 relative for bf16), which moves logits by up to ~1e-3 of the row's largest (gpt_oss:
 * 8.1e-4 measured). open_model sets it from the shard's KV dtype. */
static double TOL = 1e-4;

static const char *const MODELS[] = {DATA "/hf-tiny/llama", DATA "/hf-tiny/qwen3", DATA "/hf-tiny/gemma",
                                     DATA "/moe-tiny/gpt_oss", DATA "/moe-tiny/qwen3_moe"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])
/* The models this run takes: MODELS, or the one EXO_TEST_BATCH_MODEL names under tests/data (a
 * run under a kernel switch, e.g. the tensor-core kernels on a bf16 model). */
static const char *models[N_MODELS];
static int n_models;

typedef struct fixture {
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    uint32_t vocab;
} fixture;

/* Log lines of the current fixture's runtime that name the selected-rows graph (batch.c). */
static int rows_graph_compiled, rows_graph_failed;

static void count_rows_graph(void *user, exo_log_level level, const char *component, const char *message) {
    (void)user;
    if (strstr(message, "selected-rows graph compiled")) rows_graph_compiled++;
    if (strstr(message, "compiling the selected-rows graph")) rows_graph_failed++;
    /* Info too: tests/batch/CMakeLists.txt fails a GPU run on the core's fallback lines and
     * checks the OpenCL profile's kernel table. */
    if (level <= EXO_LOG_INFO) fprintf(stderr, "[%s] %s\n", component, message);
}

static fixture open_model(const char *dir, uint32_t max_tokens) {
    fixture f = {0};
    exo_runtime_options ro = EXO_RUNTIME_OPTIONS_INIT;
    ro.log = count_rows_graph;
    ro.log_level = EXO_LOG_INFO;
    rows_graph_compiled = rows_graph_failed = 0;
    ck_assert_int_eq(exo_runtime_create(&ro, &f.rt), EXO_OK);
    ck_assert_msg(exo_model_open(f.rt, dir, &f.model) == EXO_OK, "%s: %s", dir, exo_last_error());
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.max_tokens = max_tokens;
    o.max_ctx = 64;
    ck_assert_msg(exo_shard_load(f.model, &o, &f.shard) == EXO_OK, "%s: %s", dir, exo_last_error());
    exo_shard_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(f.shard, &info), EXO_OK);
    f.vocab = info.output_width;
    TOL = info.kv_dtype == EXO_KV_DTYPE_F32 ? 1e-4 : 2e-3;
    return f;
}

static void close_model(fixture *f) {
    exo_shard_destroy(f->shard);
    exo_model_destroy(f->model);
    exo_runtime_destroy(f->rt);
}

/* A token stream per sequence, the same every run. */
static int32_t token(uint32_t seq, uint32_t i, uint32_t vocab) {
    return (int32_t)((seq * 7919u + i * 104729u + 13u) % vocab);
}

/* Largest |a - b| over a row, relative to the row's largest |b|. */
static double row_err(const float *a, const float *b, uint32_t n) {
    double m = 0, scale = 1e-30;
    for (uint32_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return m / scale;
}

/* A schedule: per step, the tokens each sequence takes (0: not in this step). */
typedef struct schedule {
    uint32_t n_seq, n_steps;
    uint32_t take[8][MAX_SEQ];
    uint32_t last_only[MAX_SEQ]; /* sequences that ask for the last row only */
} schedule;

/* Runs the schedule as batched steps and, on fresh sessions, each sequence alone with the same
 * chunks; every row each step returns must agree. */
static void check_schedule(const char *dir, uint32_t max_tokens, const schedule *sc) {
    fixture f = open_model(dir, max_tokens);
    uint32_t V = f.vocab, n = sc->n_seq;
    exo_session *batch[MAX_SEQ], *alone[MAX_SEQ];
    uint32_t pos[MAX_SEQ] = {0};
    /* The batched sessions are created between steps too, so the pool grows (1, 2, 4, 8 slots)
     * while earlier sequences hold state. */
    uint32_t created = 0;
    for (uint32_t i = 0; i < n; i++) ck_assert_int_eq(exo_session_create(f.shard, 0, &alone[i]), EXO_OK);
    float *got = malloc((size_t)64 * V * sizeof *got * MAX_SEQ), *want = malloc((size_t)64 * V * sizeof *want);
    int32_t *ids = malloc((size_t)64 * MAX_SEQ * sizeof *ids);
    double worst = 0;
    for (uint32_t step = 0; step < sc->n_steps; step++) {
        while (created < n && (created < 2 || created <= step + 1)) {
            ck_assert_int_eq(exo_session_create(f.shard, 0, &batch[created]), EXO_OK);
            created++;
        }
        exo_batch_entry e[MAX_SEQ];
        uint32_t ne = 0, idx[MAX_SEQ];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = sc->take[step][i];
            if (!k) continue;
            ck_assert_uint_lt(i, created);
            for (uint32_t j = 0; j < k; j++) ids[i * 64 + j] = token(i, pos[i] + j, V);
            memset(&e[ne], 0, sizeof e[ne]);
            EXO_STRUCT_INIT(&e[ne]);
            e[ne].session = batch[i];
            e[ne].tokens = ids + i * 64;
            e[ne].n = k;
            e[ne].flags = sc->last_only[i] ? EXO_FORWARD_LAST_ONLY : 0;
            e[ne].out = got + (size_t)i * 64 * V;
            e[ne].out_count = (uint64_t)64 * V;
            idx[ne++] = i;
        }
        ck_assert_msg(exo_session_forward_batch(e, ne) == EXO_OK, "%s step %u: %s", dir, step, exo_last_error());
        for (uint32_t q = 0; q < ne; q++) {
            uint32_t i = idx[q], k = e[q].n;
            ck_assert_int_eq(e[q].status, EXO_OK);
            ck_assert_uint_eq(exo_session_position(batch[i]), pos[i] + k);
            ck_assert_int_eq(exo_session_forward_tokens(alone[i], ids + i * 64, k, 0, want, (uint64_t)64 * V), EXO_OK);
            uint32_t rows = sc->last_only[i] ? 1 : k;
            for (uint32_t r = 0; r < rows; r++) {
                const float *w = want + (size_t)(sc->last_only[i] ? k - 1 : r) * V;
                double err = row_err(got + (size_t)i * 64 * V + (size_t)r * V, w, V);
                if (err > worst) worst = err;
                ck_assert_msg(err <= TOL, "%s step %u sequence %u row %u: rel err %g", dir, step, i, r, err);
            }
            pos[i] += k;
        }
    }
    fprintf(stderr, "%s: %u steps of %u sequences, max rel err %.3g\n", dir, sc->n_steps, n, worst);
    for (uint32_t i = 0; i < n; i++) exo_session_destroy(alone[i]);
    for (uint32_t i = 0; i < created; i++) exo_session_destroy(batch[i]);
    free(got);
    free(want);
    free(ids);
    close_model(&f);
}

/* Prefill chunks and decode steps mixed, sequences joining late and skipping steps, one that
 * wants only its last row; gpt_oss's window (8) is crossed by the longer sequences. */
static const schedule MIXED = {
    .n_seq = 5,
    .n_steps = 7,
    .take = {{7, 3},
             {1, 1, 5},
             {1, 4, 1, 2},
             {1, 1, 1, 1, 6},
             {0, 1, 9, 1, 1},
             {1, 1, 1, 1, 1},
             {12, 1, 0, 1, 1}},
    .last_only = {0, 0, 0, 0, 1},
};

START_TEST(mixed_batches_match_single_steps) { check_schedule(models[_i], 64, &MIXED); }
END_TEST

/* Every sequence wants its last row only: steps of more than EXO_BATCH_SELECTED_ROWS (8) rows
 * run the selected-rows graph (the lm_head over those rows alone), which must give the same
 * logits; a step of 6 rows runs the full graph. */
static const schedule LAST_ROWS = {
    .n_seq = 6,
    .n_steps = 6,
    .take = {{7, 3},
             {1, 1, 12},
             {1, 9, 1, 2},
             {1, 1, 1, 1, 6},
             {14, 1, 9, 1, 1, 1},
             {1, 1, 1, 1, 1, 1}},
    .last_only = {1, 1, 1, 1, 1, 1},
};

START_TEST(last_rows_take_the_selected_rows_graph) {
    check_schedule(models[_i], 64, &LAST_ROWS);
    ck_assert_msg(rows_graph_compiled >= 1 && rows_graph_failed == 0,
                  "%s: the selected-rows graph was not used (compiled %d, failed %d)", models[_i], rows_graph_compiled,
                  rows_graph_failed);
}
END_TEST

/* max_tokens 8: steps of more tokens take several executions, entries split across them. */
START_TEST(batches_over_max_tokens_split) { check_schedule(models[_i], 8, &MIXED); }
END_TEST

/* EXO_FORWARD_ARGMAX: the LAST_ROWS schedule run twice on one shard, once for the last rows'
 * logits and once for the greedy tokens alone (the same graphs, so the same logits): every
 * token is exactly the one-pass argmax of its logits, in batched steps of the full and the
 * selected-rows graph, chunked over max_tokens (8: a 14-token prompt takes two executions, and
 * out holds one float), and for a session stepping alone. */
START_TEST(greedy_steps_pick_what_the_logits_say) {
    fixture f = open_model(models[_i], 8);
    uint32_t V = f.vocab, n = LAST_ROWS.n_seq;
    exo_session *logit_s[MAX_SEQ], *greedy_s[MAX_SEQ];
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_int_eq(exo_session_create(f.shard, 0, &logit_s[i]), EXO_OK);
        ck_assert_int_eq(exo_session_create(f.shard, 0, &greedy_s[i]), EXO_OK);
    }
    float *logits = malloc((size_t)MAX_SEQ * V * sizeof *logits), picks[MAX_SEQ];
    int32_t ids[MAX_SEQ][64];
    uint32_t pos[MAX_SEQ] = {0}, checked = 0;
    for (uint32_t step = 0; step < LAST_ROWS.n_steps; step++) {
        exo_batch_entry a[MAX_SEQ], g[MAX_SEQ];
        uint32_t ne = 0, idx[MAX_SEQ];
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = LAST_ROWS.take[step][i];
            if (!k) continue;
            for (uint32_t j = 0; j < k; j++) ids[i][j] = token(i, pos[i] + j, V);
            memset(&a[ne], 0, sizeof a[ne]);
            EXO_STRUCT_INIT(&a[ne]);
            g[ne] = a[ne];
            a[ne].session = logit_s[i];
            g[ne].session = greedy_s[i];
            a[ne].tokens = g[ne].tokens = ids[i];
            a[ne].n = g[ne].n = k;
            a[ne].flags = EXO_FORWARD_LAST_ONLY;
            g[ne].flags = EXO_FORWARD_ARGMAX;
            a[ne].out = logits + (size_t)i * V;
            a[ne].out_count = V;
            picks[i] = -1.0f;
            g[ne].out = &picks[i];
            g[ne].out_count = 1;
            idx[ne++] = i;
            pos[i] += k;
        }
        ck_assert_msg(exo_session_forward_batch(a, ne) == EXO_OK, "%s step %u: %s", models[_i], step, exo_last_error());
        ck_assert_msg(exo_session_forward_batch(g, ne) == EXO_OK, "%s step %u: %s", models[_i], step, exo_last_error());
        for (uint32_t q = 0; q < ne; q++) {
            uint32_t i = idx[q];
            int32_t want = argmax_one_pass(logits + (size_t)i * V, V);
            ck_assert_msg(picks[i] == (float)want, "%s step %u sequence %u: picked %g, the logits' argmax is %d",
                          models[_i], step, i, (double)picks[i], want);
            ck_assert_uint_eq(exo_session_position(greedy_s[i]), pos[i]);
            checked++;
        }
    }
    /* Alone: a prompt over two executions, then decode steps feeding back the pick. */
    exo_session *alone_logits = logit_s[0], *alone_greedy = greedy_s[0];
    ck_assert_int_eq(exo_session_reset(alone_logits), EXO_OK);
    ck_assert_int_eq(exo_session_reset(alone_greedy), EXO_OK);
    int32_t next = 0;
    for (uint32_t step = 0; step < 4; step++) {
        uint32_t k = step ? 1 : 14;
        for (uint32_t j = 0; j < k; j++) ids[0][j] = step ? next : token(0, j, V);
        float pick = -1.0f;
        ck_assert_int_eq(exo_session_forward_tokens(alone_logits, ids[0], k, EXO_FORWARD_LAST_ONLY, logits, V), EXO_OK);
        ck_assert_msg(exo_session_forward_tokens(alone_greedy, ids[0], k, EXO_FORWARD_ARGMAX, &pick, 1) == EXO_OK, "%s",
                      exo_session_last_error(alone_greedy));
        next = argmax_one_pass(logits, V);
        ck_assert_msg(pick == (float)next, "%s alone, step %u: picked %g, the logits' argmax is %d", models[_i], step,
                      (double)pick, next);
    }
    /* out must hold the one float. */
    ck_assert_int_eq(exo_session_forward_tokens(alone_greedy, ids[0], 1, EXO_FORWARD_ARGMAX, &picks[0], 0),
                     EXO_ERR_INVALID_ARG);
    fprintf(stderr, "%s: %u batched greedy picks and 4 alone equal the logits' argmax\n", models[_i], checked);
    for (uint32_t i = 0; i < n; i++) {
        exo_session_destroy(logit_s[i]);
        exo_session_destroy(greedy_s[i]);
    }
    free(logits);
    close_model(&f);
}
END_TEST

/* Bad entries (a token outside the vocabulary, a full context, an output too small, a session
 * twice) fail alone: the good entries run as a batch and match single steps, the bad ones keep
 * their position, and the call returns the first failure. */
START_TEST(failing_entries_do_not_disturb_the_others) {
    fixture f = open_model(DATA "/hf-tiny/llama", 64);
    uint32_t V = f.vocab;
    exo_session *s[5], *ref;
    for (int i = 0; i < 5; i++) ck_assert_int_eq(exo_session_create(f.shard, i == 2 ? 4 : 0, &s[i]), EXO_OK);
    ck_assert_int_eq(exo_session_create(f.shard, 0, &ref), EXO_OK);
    int32_t good[3] = {5, 17, 29}, bad_id[1] = {(int32_t)V}, four[4] = {1, 2, 3, 4};
    float *out = malloc((size_t)6 * V * sizeof *out), *want = malloc((size_t)3 * V * sizeof *want);
    /* Session 2 holds 1 of its 4 positions: 4 more do not fit. */
    ck_assert_int_eq(exo_session_forward_tokens(s[2], four, 1, 0, out, V), EXO_OK);
    exo_batch_entry e[6];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 6; i++) EXO_STRUCT_INIT(&e[i]);
    e[0] = (exo_batch_entry){e[0].hdr, s[0], good, NULL, 3, 0, out, (uint64_t)3 * V, 0, 0};
    e[1] = (exo_batch_entry){e[1].hdr, s[1], bad_id, NULL, 1, 0, out + 3 * V, V, 0, 0};
    e[2] = (exo_batch_entry){e[2].hdr, s[2], four, NULL, 4, EXO_FORWARD_LAST_ONLY, out + 4 * V, V, 0, 0};
    e[3] = (exo_batch_entry){e[3].hdr, s[3], good, NULL, 3, 0, out + 4 * V, V, 0, 0}; /* room for 1 row of 3 */
    e[4] = (exo_batch_entry){e[4].hdr, s[0], good, NULL, 1, 0, out + 4 * V, V, 0, 0}; /* s[0] again */
    e[5] = (exo_batch_entry){e[5].hdr, s[4], good + 1, NULL, 2, EXO_FORWARD_LAST_ONLY, out + 5 * V, V, 0, 0};
    exo_status st = exo_session_forward_batch(e, 6);
    ck_assert_int_eq(st, EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_last_error(), "batch entry 1") != NULL, "%s", exo_last_error());
    ck_assert_int_eq(e[0].status, EXO_OK);
    ck_assert_int_eq(e[5].status, EXO_OK);
    for (int i = 1; i <= 4; i++) ck_assert_int_eq(e[i].status, EXO_ERR_INVALID_ARG);
    ck_assert_msg(strstr(exo_session_last_error(s[1]), "outside the vocabulary") != NULL, "%s",
                  exo_session_last_error(s[1]));
    ck_assert_msg(strstr(exo_session_last_error(s[2]), "context full") != NULL, "%s", exo_session_last_error(s[2]));
    ck_assert_msg(strstr(exo_session_last_error(s[3]), "output holds") != NULL, "%s", exo_session_last_error(s[3]));
    ck_assert_msg(strstr(exo_session_last_error(s[0]), "again") != NULL, "%s", exo_session_last_error(s[0]));
    ck_assert_uint_eq(exo_session_position(s[0]), 3);
    ck_assert_uint_eq(exo_session_position(s[1]), 0);
    ck_assert_uint_eq(exo_session_position(s[2]), 1);
    ck_assert_uint_eq(exo_session_position(s[3]), 0);
    ck_assert_uint_eq(exo_session_position(s[4]), 2);
    ck_assert_int_eq(exo_session_forward_tokens(ref, good, 3, 0, want, (uint64_t)3 * V), EXO_OK);
    for (int r = 0; r < 3; r++) ck_assert_double_le(row_err(out + r * V, want + r * V, V), TOL);
    ck_assert_int_eq(exo_session_reset(ref), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(ref, good + 1, 2, EXO_FORWARD_LAST_ONLY, want, V), EXO_OK);
    ck_assert_double_le(row_err(out + 5 * V, want, V), TOL);
    /* The failed sessions still step, from where they were. */
    ck_assert_int_eq(exo_session_forward_tokens(s[1], good, 1, 0, out, V), EXO_OK);
    ck_assert_uint_eq(exo_session_position(s[1]), 1);
    for (int i = 0; i < 5; i++) exo_session_destroy(s[i]);
    exo_session_destroy(ref);
    free(out);
    free(want);
    close_model(&f);
}
END_TEST

int main(void) {
    static char one[512];
    const char *only = getenv("EXO_TEST_BATCH_MODEL");
    if (only && *only) {
        snprintf(one, sizeof one, "%s/%s", DATA, only);
        models[n_models++] = one;
    } else {
        for (size_t i = 0; i < N_MODELS; i++) models[n_models++] = MODELS[i];
    }
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("batch");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, mixed_batches_match_single_steps, 0, n_models);
    tcase_add_loop_test(tc, batches_over_max_tokens_split, 0, n_models);
    tcase_add_loop_test(tc, last_rows_take_the_selected_rows_graph, 0, n_models);
    tcase_add_loop_test(tc, greedy_steps_pick_what_the_logits_say, 0, n_models);
    tcase_add_test(tc, failing_entries_do_not_disturb_the_others);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
