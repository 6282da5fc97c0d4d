/* The token sampler: greedy, temperature, top_k, top_p, min_p, the penalties, bans, the seeded
 * random stream, log-probabilities and bad input. Every sampled test uses a fixed seed, so the
 * statistical checks are deterministic. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

#include "base/error.h"
#include "run/rng.h"
#include "run/sampler.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* Defaults with every truncation off, so a test turns on only what it checks. */
static exo_sampler_params plain_params(float temperature) {
    exo_sampler_params p;
    exo_token_sampler_params_default(&p);
    p.temperature = temperature;
    p.min_p = 0.0f;
    p.seed = 1234;
    return p;
}

static exo_token_sampler *make(const exo_sampler_params *p, uint32_t vocab) {
    exo_token_sampler *s = NULL;
    exo_status st = exo_token_sampler_create(p, vocab, &s);
    ck_assert_msg(st == EXO_OK, "exo_token_sampler_create failed: %s", exo_error_message());
    ck_assert_ptr_nonnull(s);
    return s;
}

static exo_sample_result sample(exo_token_sampler *s, const float *logits) {
    exo_sample_result r;
    exo_status st = exo_token_sampler_sample(s, logits, &r);
    ck_assert_msg(st == EXO_OK, "exo_token_sampler_sample failed: %s", exo_error_message());
    return r;
}

/* Logits whose softmax is exactly `probs`. */
static void logits_from_probs(const double *probs, float *logits, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        logits[i] = probs[i] > 0 ? (float)log(probs[i]) : -INFINITY;
}

/* Reproducible pseudo-random logits in [lo, hi) from our own generator. */
static void random_logits(float *logits, uint32_t n, uint64_t seed, float lo, float hi) {
    exo_rng rng;
    exo_rng_seed(&rng, seed);
    for (uint32_t i = 0; i < n; i++)
        logits[i] = lo + (hi - lo) * (float)exo_rng_uniform(&rng);
}

/* Reference log-softmax in double. */
static void log_softmax(const float *x, double *out, uint32_t n) {
    double max = -INFINITY;
    for (uint32_t i = 0; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += exp((double)x[i] - max);
    for (uint32_t i = 0; i < n; i++)
        out[i] = (double)x[i] - max - log(sum);
}

/* Histogram of `draws` samples. */
static void histogram(exo_token_sampler *s, const float *logits, uint32_t n, uint32_t draws,
                      uint32_t *counts) {
    memset(counts, 0, n * sizeof *counts);
    for (uint32_t i = 0; i < draws; i++) {
        exo_sample_result r = sample(s, logits);
        ck_assert_int_ge(r.token, 0);
        ck_assert_int_lt(r.token, (int)n);
        counts[r.token]++;
    }
}

/* Pearson chi-square of counts against expected probabilities (cells with p = 0 must be
 * empty). */
static double chi_square(const uint32_t *counts, const double *probs, uint32_t n, uint32_t draws) {
    double chi = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (probs[i] == 0) {
            ck_assert_msg(counts[i] == 0, "token %u has probability 0 but was drawn %u times", i,
                          counts[i]);
            continue;
        }
        double e = probs[i] * draws;
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

/* ---- greedy --------------------------------------------------------------------------- */

START_TEST(greedy_picks_argmax_lowest_id_on_ties) {
    exo_sampler_params p = plain_params(0.0f);
    exo_token_sampler *s = make(&p, 6);
    const float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 3.0f};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(sample(s, logits).token, 1);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(tiny_temperature_equals_greedy) {
    const float temps[] = {1e-3f, 1e-6f, 1e-30f, FLT_MIN, 1e-45f};
    float logits[1000];
    random_logits(logits, 1000, 7, -5.0f, 5.0f);
    exo_sampler_params g = plain_params(0.0f);
    exo_token_sampler *greedy = make(&g, 1000);
    int32_t expect = sample(greedy, logits).token;
    for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++) {
        exo_sampler_params p = plain_params(temps[t]);
        p.top_p = 0.9f; /* the nucleus path divides by T too */
        p.min_p = 0.1f;
        exo_token_sampler *s = make(&p, 1000);
        for (int i = 0; i < 50; i++) {
            exo_sample_result r = sample(s, logits);
            ck_assert_msg(r.token == expect, "T=%g gave %d, greedy %d", (double)temps[t],
                          r.token, expect);
            ck_assert(isfinite(r.logprob));
        }
        exo_token_sampler_free(s);
    }
    exo_token_sampler_free(greedy);
}
END_TEST

START_TEST(top_k_one_equals_greedy) {
    float logits[5000];
    random_logits(logits, 5000, 11, -3.0f, 3.0f);
    exo_sampler_params g = plain_params(0.0f);
    exo_token_sampler *greedy = make(&g, 5000);
    int32_t expect = sample(greedy, logits).token;
    exo_sampler_params p = plain_params(1.5f);
    p.top_k = 1;
    exo_token_sampler *s = make(&p, 5000);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(sample(s, logits).token, expect);
    exo_token_sampler_free(s);
    exo_token_sampler_free(greedy);
}
END_TEST

/* ---- the random stream ---------------------------------------------------------------- */

static void draw_sequence(int64_t seed, int32_t *tokens, uint32_t n) {
    exo_sampler_params p = plain_params(1.0f);
    p.seed = seed;
    exo_token_sampler *s = make(&p, 1000);
    float logits[1000];
    for (uint32_t i = 0; i < n; i++) {
        random_logits(logits, 1000, 100 + i, 0.0f, 2.0f); /* a new row every step */
        tokens[i] = sample(s, logits).token;
        exo_token_sampler_accept(s, tokens[i]);
    }
    exo_token_sampler_free(s);
}

START_TEST(same_seed_same_tokens_different_seed_differs) {
    int32_t a[200], b[200], c[200];
    draw_sequence(42, a, 200);
    draw_sequence(42, b, 200);
    draw_sequence(43, c, 200);
    ck_assert_mem_eq(a, b, sizeof a);
    uint32_t differ = 0;
    for (int i = 0; i < 200; i++)
        differ += a[i] != c[i];
    ck_assert_uint_gt(differ, 100); /* ~1000 near-uniform choices: almost every draw differs */
}
END_TEST

START_TEST(unset_seed_draws_from_entropy) {
    exo_sampler_params p = plain_params(1.0f);
    p.seed = EXO_SAMPLER_SEED_RANDOM;
    exo_token_sampler *s1 = make(&p, 1000), *s2 = make(&p, 1000);
    float logits[1000] = {0}; /* uniform over 1000 tokens */
    uint32_t differ = 0;
    for (int i = 0; i < 50; i++)
        differ += sample(s1, logits).token != sample(s2, logits).token;
    ck_assert_uint_gt(differ, 0);
    exo_token_sampler_free(s1);
    exo_token_sampler_free(s2);
}
END_TEST

START_TEST(reset_restarts_stream_and_forgets_history) {
    exo_sampler_params p = plain_params(1.0f);
    p.repetition_penalty = 5.0f;
    exo_token_sampler *s = make(&p, 1000);
    float logits[1000];
    random_logits(logits, 1000, 3, 0.0f, 1.0f);
    int32_t first[100], again[100];
    for (int i = 0; i < 100; i++) {
        first[i] = sample(s, logits).token;
        exo_token_sampler_accept(s, first[i]);
    }
    exo_token_sampler_reset(s);
    for (int i = 0; i < 100; i++) {
        again[i] = sample(s, logits).token;
        exo_token_sampler_accept(s, again[i]);
    }
    ck_assert_mem_eq(first, again, sizeof first);
    exo_token_sampler_free(s);
}
END_TEST

/* ---- truncation ----------------------------------------------------------------------- */

/* Brute-force ranking (logit desc, id asc) by shell sort: the reference for truncation. */
static void rank_ids(const float *logits, int32_t *order, int n) {
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int gap = n / 2; gap > 0; gap /= 2)
        for (int i = gap; i < n; i++)
            for (int j = i; j >= gap && (logits[order[j]] > logits[order[j - gap]] ||
                                         (logits[order[j]] == logits[order[j - gap]] &&
                                          order[j] < order[j - gap]));
                 j -= gap) {
                int32_t t = order[j];
                order[j] = order[j - gap];
                order[j - gap] = t;
            }
}

/* top_k = k over a flat row of v logits: draws never leave the k best and cover them. */
static void check_top_k(int v, int k, uint32_t draws, uint32_t min_distinct) {
    float *logits = malloc(v * sizeof *logits);
    int32_t *order = malloc(v * sizeof *order);
    bool *best = calloc(v, sizeof *best);
    uint32_t *counts = malloc(v * sizeof *counts);
    random_logits(logits, v, 21, 0.0f, 1.0f); /* flat: the (k+1)-th is nearly as likely */
    rank_ids(logits, order, v);
    for (int i = 0; i < k; i++)
        best[order[i]] = true;
    exo_sampler_params p = plain_params(1.0f);
    p.top_k = k;
    exo_token_sampler *s = make(&p, v);
    histogram(s, logits, v, draws, counts);
    uint32_t seen = 0;
    for (int i = 0; i < v; i++) {
        if (!best[i])
            ck_assert_msg(counts[i] == 0, "token %d is outside the top %d but was drawn", i, k);
        seen += counts[i] > 0;
    }
    ck_assert_uint_ge(seen, min_distinct);
    exo_token_sampler_free(s);
    free(logits);
    free(order);
    free(best);
    free(counts);
}

START_TEST(top_k_restricts_support) {
    check_top_k(1000, 5, 5000, 5);       /* heap path, every one of the 5 drawn */
    check_top_k(6000, 1000, 8000, 900); /* heap path, large k */
    check_top_k(6000, 2500, 8000, 2000); /* partial-selection path */
}
END_TEST

START_TEST(top_k_ties_keep_lowest_ids) {
    float logits[100] = {0}; /* all tied: the ranking falls back to ids */
    exo_sampler_params p = plain_params(1.0f);
    p.top_k = 10;
    exo_token_sampler *s = make(&p, 100);
    uint32_t counts[100];
    histogram(s, logits, 100, 2000, counts);
    for (int i = 10; i < 100; i++)
        ck_assert_uint_eq(counts[i], 0);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(top_k_larger_than_vocab_is_no_truncation) {
    const double probs[4] = {0.4, 0.3, 0.2, 0.1};
    float logits[4];
    logits_from_probs(probs, logits, 4);
    exo_sampler_params p = plain_params(1.0f);
    p.top_k = 1000;
    exo_token_sampler *s = make(&p, 4);
    uint32_t counts[4];
    histogram(s, logits, 4, 20000, counts);
    ck_assert_double_lt(chi_square(counts, probs, 4, 20000), 16.27); /* df 3, p = 0.001 */
    exo_token_sampler_free(s);
}
END_TEST

/* probs 0.5 / 0.3 / 0.15 / 0.05 on scrambled ids 2, 0, 3, 1. */
static const double nucleus_probs[4] = {0.3, 0.05, 0.5, 0.15};

START_TEST(top_p_keeps_smallest_nucleus) {
    float logits[4];
    logits_from_probs(nucleus_probs, logits, 4);
    uint32_t counts[4];
    /* 0.75: 0.5 (< 0.75, keep next) + 0.3 = 0.8 reached -> {2, 0}, renormalised 5/8, 3/8. */
    exo_sampler_params p = plain_params(1.0f);
    p.top_p = 0.75f;
    exo_token_sampler *s = make(&p, 4);
    histogram(s, logits, 4, 20000, counts);
    const double expect75[4] = {0.375, 0.0, 0.625, 0.0};
    ck_assert_double_lt(chi_square(counts, expect75, 4, 20000), 10.83); /* df 1 */
    exo_token_sampler_free(s);
    /* 0.9: 0.8 < 0.9, so 0.15 joins; 0.95 reached -> 0.05 excluded. */
    p.top_p = 0.9f;
    s = make(&p, 4);
    histogram(s, logits, 4, 20000, counts);
    const double expect90[4] = {0.3 / 0.95, 0.0, 0.5 / 0.95, 0.15 / 0.95};
    ck_assert_double_lt(chi_square(counts, expect90, 4, 20000), 13.82); /* df 2 */
    exo_token_sampler_free(s);
    /* 0.4: the first token alone reaches it. */
    p.top_p = 0.4f;
    s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    ck_assert_uint_eq(counts[2], 2000);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(top_p_zero_is_greedy_and_one_is_off) {
    float logits[4];
    logits_from_probs(nucleus_probs, logits, 4);
    uint32_t counts[4];
    exo_sampler_params p = plain_params(1.0f);
    p.top_p = 0.0f;
    exo_token_sampler *s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    ck_assert_uint_eq(counts[2], 2000);
    exo_token_sampler_free(s);
    p.top_p = 1.0f;
    s = make(&p, 4);
    histogram(s, logits, 4, 20000, counts);
    ck_assert_double_lt(chi_square(counts, nucleus_probs, 4, 20000), 16.27); /* df 3 */
    exo_token_sampler_free(s);
}
END_TEST

/* top_p over a flat row of v logits, where the nucleus is hundreds or thousands of tokens: the
 * partial sort must grow through many chunks (or the bands must find the crossing) and stop
 * exactly at the reference boundary. */
static void check_large_nucleus(int v, float top_p, float temperature, int min_size) {
    float *logits = malloc(v * sizeof *logits), *tempered = malloc(v * sizeof *tempered);
    int32_t *order = malloc(v * sizeof *order);
    double *lp = malloc(v * sizeof *lp);
    bool *in_nucleus = calloc(v, sizeof *in_nucleus);
    uint32_t *counts = malloc(v * sizeof *counts);
    random_logits(logits, v, 5, 0.0f, 3.0f);
    for (int i = 0; i < v; i++)
        tempered[i] = logits[i] / temperature;
    log_softmax(tempered, lp, v);
    rank_ids(logits, order, v);
    double mass = 0;
    int size = 0;
    for (; size < v && (size == 0 || mass < top_p); size++) {
        in_nucleus[order[size]] = true;
        mass += exp(lp[order[size]]);
    }
    ck_assert_int_gt(size, min_size);
    exo_sampler_params p = plain_params(temperature);
    p.top_p = top_p;
    exo_token_sampler *s = make(&p, v);
    histogram(s, logits, v, 3000, counts);
    uint32_t distinct = 0;
    for (int i = 0; i < v; i++) {
        if (!in_nucleus[i])
            ck_assert_msg(counts[i] == 0, "token %d (outside the nucleus of %d) was drawn", i,
                          size);
        distinct += counts[i] > 0;
    }
    ck_assert_uint_gt(distinct, (uint32_t)min_size / 4);
    exo_token_sampler_free(s);
    free(logits);
    free(tempered);
    free(order);
    free(lp);
    free(in_nucleus);
    free(counts);
}

START_TEST(top_p_large_nucleus_sorted_in_chunks) { check_large_nucleus(2000, 0.6f, 0.8f, 300); }
END_TEST

START_TEST(top_p_large_nucleus_by_bands) { check_large_nucleus(20000, 0.6f, 0.8f, 3000); }
END_TEST

START_TEST(top_p_with_all_logits_tied) {
    /* One band holds every token: the nucleus is the lowest half of the ids. */
    enum { V = 10000 };
    static float logits[V];
    static uint32_t counts[V];
    exo_sampler_params p = plain_params(1.0f);
    p.top_p = 0.5f;
    exo_token_sampler *s = make(&p, V);
    histogram(s, logits, V, 1000, counts);
    for (int i = V / 2 + 1; i < V; i++)
        ck_assert_msg(counts[i] == 0, "token %d is outside the nucleus [0, %d]", i, V / 2);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(min_p_drops_tokens_below_fraction_of_max) {
    float logits[4];
    logits_from_probs(nucleus_probs, logits, 4);
    uint32_t counts[4];
    /* 0.2 * 0.5 = 0.1: the 0.05 token (id 1) goes, the rest renormalise over 0.95. */
    exo_sampler_params p = plain_params(1.0f);
    p.min_p = 0.2f;
    exo_token_sampler *s = make(&p, 4);
    histogram(s, logits, 4, 20000, counts);
    const double expect[4] = {0.3 / 0.95, 0.0, 0.5 / 0.95, 0.15 / 0.95};
    ck_assert_double_lt(chi_square(counts, expect, 4, 20000), 13.82); /* df 2 */
    exo_token_sampler_free(s);
    /* 0.7 * 0.5 = 0.35 > 0.3: only the best. */
    p.min_p = 0.7f;
    s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    ck_assert_uint_eq(counts[2], 2000);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(min_p_applies_after_temperature) {
    /* At T = 2 the probabilities go as sqrt(p): the 0.05 token is sqrt(0.1) = 0.316 of the
     * best, so min_p = 0.3 keeps it; at T = 1 it is 0.1 of the best and goes. */
    float logits[4];
    logits_from_probs(nucleus_probs, logits, 4);
    uint32_t counts[4];
    exo_sampler_params p = plain_params(2.0f);
    p.min_p = 0.3f;
    exo_token_sampler *s = make(&p, 4);
    histogram(s, logits, 4, 20000, counts);
    double expect[4], z = 0;
    for (int i = 0; i < 4; i++)
        z += expect[i] = sqrt(nucleus_probs[i]);
    for (int i = 0; i < 4; i++)
        expect[i] /= z;
    ck_assert_double_lt(chi_square(counts, expect, 4, 20000), 16.27);
    exo_token_sampler_free(s);
    p.temperature = 1.0f;
    s = make(&p, 4);
    histogram(s, logits, 4, 5000, counts);
    ck_assert_uint_eq(counts[1], 0);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(top_p_renormalises_over_top_k_then_min_p) {
    /* probs 0.4 0.3 0.2 0.1. top_k = 2 -> 4/7, 3/7; top_p = 0.5 is reached by 4/7 alone, so
     * only token 0 remains (top_p alone would keep {0, 1} since 0.4 < 0.5). */
    const double probs[4] = {0.4, 0.3, 0.2, 0.1};
    float logits[4];
    logits_from_probs(probs, logits, 4);
    uint32_t counts[4];
    exo_sampler_params p = plain_params(1.0f);
    p.top_k = 2;
    p.top_p = 0.5f;
    exo_token_sampler *s = make(&p, 4);
    histogram(s, logits, 4, 2000, counts);
    ck_assert_uint_eq(counts[0], 2000);
    exo_token_sampler_free(s);
    /* top_k = 3 -> 4/9 3/9 2/9; top_p = 0.8: 7/9 < 0.8 keeps token 2; min_p = 0.6 then drops
     * it (0.2 < 0.6 * 0.4) and keeps 0 and 1 in ratio 4:3. */
    p.top_k = 3;
    p.top_p = 0.8f;
    p.min_p = 0.6f;
    s = make(&p, 4);
    histogram(s, logits, 4, 20000, counts);
    const double expect[4] = {4.0 / 7, 3.0 / 7, 0, 0};
    ck_assert_double_lt(chi_square(counts, expect, 4, 20000), 10.83);
    exo_token_sampler_free(s);
}
END_TEST

/* ---- the distribution ----------------------------------------------------------------- */

static void check_softmax_distribution(float temperature) {
    enum { V = 8, DRAWS = 20000 };
    const float logits[V] = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.5f, -2.0f, 0.7f};
    float tempered[V];
    double lp[V], probs[V];
    for (int i = 0; i < V; i++)
        tempered[i] = logits[i] / temperature;
    log_softmax(tempered, lp, V);
    for (int i = 0; i < V; i++)
        probs[i] = exp(lp[i]);
    exo_sampler_params p = plain_params(temperature);
    exo_token_sampler *s = make(&p, V);
    uint32_t counts[V];
    histogram(s, logits, V, DRAWS, counts);
    double chi = chi_square(counts, probs, V, DRAWS);
    ck_assert_msg(chi < 24.32, "T=%g: chi-square %.2f over 7 degrees of freedom (p < 0.001)",
                  (double)temperature, chi);
    exo_token_sampler_free(s);
}

START_TEST(distribution_matches_softmax) { check_softmax_distribution(1.0f); }
END_TEST

START_TEST(distribution_matches_tempered_softmax) {
    check_softmax_distribution(0.5f);
    check_softmax_distribution(2.0f);
}
END_TEST

/* ---- penalties ------------------------------------------------------------------------ */

/* The processed logits, read back through the reported logprobs (which are their
 * log-softmax): differences of logprobs are differences of processed logits. */
static void check_processed(exo_token_sampler *s, const float *logits, const float *expect, uint32_t n) {
    exo_sample_result r = sample(s, logits);
    ck_assert_uint_eq(r.n_top, n);
    double lp[EXO_SAMPLER_MAX_LOGPROBS];
    log_softmax(expect, lp, n);
    for (uint32_t i = 0; i < r.n_top; i++) {
        int32_t t = r.top[i].token;
        ck_assert_msg(fabs(r.top[i].logprob - lp[t]) < 1e-5, "token %d: logprob %g, expected %g",
                      t, (double)r.top[i].logprob, lp[t]);
    }
}

START_TEST(repetition_penalty_divides_positive_multiplies_negative) {
    exo_sampler_params p = plain_params(0.0f);
    p.repetition_penalty = 2.0f;
    p.n_logprobs = 5;
    exo_token_sampler *s = make(&p, 5);
    const float logits[5] = {2.0f, -1.0f, 0.5f, 1.0f, 0.0f};
    exo_token_sampler_accept(s, 0);
    exo_token_sampler_accept(s, 1);
    exo_token_sampler_accept(s, 0); /* distinct tokens: penalised once, not per occurrence */
    exo_token_sampler_accept(s, 4);
    const float expect[5] = {1.0f, -2.0f, 0.5f, 1.0f, 0.0f};
    check_processed(s, logits, expect, 5);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(presence_and_frequency_penalties_subtract) {
    exo_sampler_params p = plain_params(0.0f);
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.n_logprobs = 5;
    exo_token_sampler *s = make(&p, 5);
    const float logits[5] = {0, 0, 0, 0, 0};
    const int32_t history[] = {1, 1, 1, 2};
    for (size_t i = 0; i < 4; i++)
        exo_token_sampler_accept(s, history[i]);
    /* token 1: -0.5 - 3 * 0.25; token 2: -0.5 - 0.25 */
    const float expect[5] = {0.0f, -1.25f, -0.75f, 0.0f, 0.0f};
    check_processed(s, logits, expect, 5);
    exo_token_sampler_free(s);
}
END_TEST

/* Huge but finite penalties (found by fuzz_sampler): FLT_MAX / 0.5 overflows float to inf and
 * 3 x 1.7e38 does too, so float arithmetic made inf - inf = NaN and a NaN logprob. The penalty is
 * computed in double and clamped: the token keeps a finite logit and the draw a finite logprob. */
START_TEST(huge_penalties_never_make_nan) {
    exo_sampler_params p = plain_params(0.0f);
    p.repetition_penalty = 0.5f;
    p.frequency_penalty = 1.7e38f;
    exo_token_sampler *s = make(&p, 3);
    for (int i = 0; i < 3; i++)
        exo_token_sampler_accept(s, 0);
    const float logits[3] = {FLT_MAX, 1.0f, 0.0f};
    exo_sample_result r;
    ck_assert_int_eq(exo_token_sampler_sample(s, logits, &r), EXO_OK);
    /* 2 x FLT_MAX - 5.1e38 = 1.7e38 in double: still far above the others. */
    ck_assert_int_eq(r.token, 0);
    ck_assert_msg(!isnan(r.logprob) && r.logprob <= 0.0f, "logprob %g", r.logprob);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(repetition_then_presence_frequency) {
    exo_sampler_params p = plain_params(0.0f);
    p.repetition_penalty = 1.5f;
    p.presence_penalty = 0.1f;
    p.frequency_penalty = -0.2f; /* negative: encourages */
    p.n_logprobs = 3;
    exo_token_sampler *s = make(&p, 3);
    const float logits[3] = {3.0f, -3.0f, 1.0f};
    exo_token_sampler_accept(s, 0);
    exo_token_sampler_accept(s, 1);
    exo_token_sampler_accept(s, 1);
    const float expect[3] = {3.0f / 1.5f - 0.1f + 0.2f, -3.0f * 1.5f - 0.1f + 0.4f, 1.0f};
    check_processed(s, logits, expect, 3);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(penalty_window_limits_history) {
    exo_sampler_params p = plain_params(0.0f);
    p.frequency_penalty = 1.0f;
    p.penalty_window = 3;
    p.n_logprobs = 4;
    exo_token_sampler *s = make(&p, 4);
    const float logits[4] = {0, 0, 0, 0};
    const int32_t history[] = {0, 0, 1, 2, 2}; /* the window holds 1, 2, 2 */
    for (size_t i = 0; i < 5; i++)
        exo_token_sampler_accept(s, history[i]);
    const float expect[4] = {0.0f, -1.0f, -2.0f, 0.0f};
    check_processed(s, logits, expect, 4);
    /* One more token pushes the 1 out. */
    exo_token_sampler_accept(s, 3);
    const float expect2[4] = {0.0f, 0.0f, -2.0f, -1.0f};
    check_processed(s, logits, expect2, 4);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(zero_window_and_bad_ids_mean_no_penalty) {
    exo_sampler_params p = plain_params(0.0f);
    p.repetition_penalty = 3.0f;
    p.penalty_window = 0;
    p.n_logprobs = 3;
    exo_token_sampler *s = make(&p, 3);
    const float logits[3] = {1.0f, 0.5f, -1.0f};
    exo_token_sampler_accept(s, 0);
    check_processed(s, logits, logits, 3);
    exo_token_sampler_free(s);
    p.penalty_window = 8;
    s = make(&p, 3);
    exo_token_sampler_accept(s, -1); /* ignored, never an out-of-bounds write */
    exo_token_sampler_accept(s, 3);
    exo_token_sampler_accept(s, INT32_MAX);
    check_processed(s, logits, logits, 3);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(penalty_steers_greedy_choice) {
    exo_sampler_params p = plain_params(0.0f);
    p.repetition_penalty = 1.3f;
    exo_token_sampler *s = make(&p, 3);
    const float logits[3] = {2.0f, 1.8f, 0.0f};
    ck_assert_int_eq(sample(s, logits).token, 0);
    exo_token_sampler_accept(s, 0); /* 2.0 / 1.3 = 1.54 < 1.8 */
    ck_assert_int_eq(sample(s, logits).token, 1);
    exo_token_sampler_free(s);
}
END_TEST

/* ---- bans, broken logits -------------------------------------------------------------- */

START_TEST(banned_tokens_never_sampled) {
    enum { V = 50 };
    float logits[V];
    random_logits(logits, V, 9, 0.0f, 1.0f);
    logits[7] = 10.0f; /* would win almost always */
    logits[30] = 9.0f;
    const int32_t banned[] = {7, 30, 49};
    exo_sampler_params p = plain_params(1.0f);
    p.banned = banned;
    p.n_banned = 3;
    p.n_logprobs = 20;
    exo_token_sampler *s = make(&p, V);
    uint32_t counts[V];
    histogram(s, logits, V, 5000, counts);
    ck_assert_uint_eq(counts[7] + counts[30] + counts[49], 0);
    exo_sample_result r = sample(s, logits);
    for (uint32_t i = 0; i < r.n_top; i++)
        ck_assert(r.top[i].token != 7 && r.top[i].token != 30 && r.top[i].token != 49);
    exo_token_sampler_free(s);
    p.temperature = 0.0f;
    s = make(&p, V);
    int32_t best = -1;
    for (int i = 0; i < V; i++)
        if (i != 7 && i != 30 && i != 49 && (best < 0 || logits[i] > logits[best]))
            best = i;
    ck_assert_int_eq(sample(s, logits).token, best);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(nan_and_neg_inf_are_never_chosen) {
    const float logits[6] = {NAN, -INFINITY, 0.5f, NAN, 0.25f, -INFINITY};
    exo_sampler_params p = plain_params(0.0f);
    p.n_logprobs = 6;
    exo_token_sampler *s = make(&p, 6);
    exo_sample_result r = sample(s, logits);
    ck_assert_int_eq(r.token, 2);
    ck_assert_uint_eq(r.n_top, 2); /* only finite logprobs are listed */
    ck_assert(isfinite(r.logprob));
    exo_token_sampler_free(s);
    p.temperature = 1.0f;
    s = make(&p, 6);
    uint32_t counts[6];
    histogram(s, logits, 6, 5000, counts);
    ck_assert_uint_eq(counts[0] + counts[1] + counts[3] + counts[5], 0);
    ck_assert_uint_gt(counts[4], 0);
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(positive_infinity_wins) {
    const float logits[4] = {1.0f, INFINITY, 2.0f, 0.0f};
    exo_sampler_params p = plain_params(1.0f);
    exo_token_sampler *s = make(&p, 4);
    for (int i = 0; i < 100; i++) {
        exo_sample_result r = sample(s, logits);
        ck_assert_int_eq(r.token, 1);
        ck_assert(isfinite(r.logprob));
    }
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(no_valid_logit_is_an_error) {
    const float all_inf[3] = {-INFINITY, -INFINITY, -INFINITY};
    const float all_nan[3] = {NAN, NAN, NAN};
    const float one_left[3] = {NAN, 1.0f, -INFINITY};
    const int32_t banned[] = {1};
    exo_sampler_params p = plain_params(1.0f);
    exo_token_sampler *s = make(&p, 3);
    exo_sample_result r;
    ck_assert_int_eq(exo_token_sampler_sample(s, all_inf, &r), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(r.token, -1);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "no token can be sampled"));
    ck_assert_int_eq(exo_token_sampler_sample(s, all_nan, &r), EXO_ERR_INVALID_ARG);
    exo_token_sampler_free(s);
    p.banned = banned;
    p.n_banned = 1;
    s = make(&p, 3);
    ck_assert_int_eq(exo_token_sampler_sample(s, one_left, &r), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "1 of them banned"));
    exo_token_sampler_free(s);
}
END_TEST

START_TEST(logits_are_not_modified) {
    float logits[100], copy[100];
    random_logits(logits, 100, 17, -2.0f, 2.0f);
    logits[3] = NAN;
    memcpy(copy, logits, sizeof copy);
    const int32_t banned[] = {5};
    exo_sampler_params p = plain_params(0.9f);
    p.repetition_penalty = 1.2f;
    p.presence_penalty = 0.3f;
    p.banned = banned;
    p.n_banned = 1;
    p.top_k = 10;
    p.top_p = 0.8f;
    p.min_p = 0.05f;
    exo_token_sampler *s = make(&p, 100);
    exo_token_sampler_accept(s, 1);
    exo_token_sampler_accept(s, 2);
    sample(s, logits);
    ck_assert_mem_eq(logits, copy, sizeof copy);
    exo_token_sampler_free(s);
}
END_TEST

/* ---- logprobs ------------------------------------------------------------------------- */

START_TEST(logprobs_equal_log_softmax) {
    enum { V = 300 };
    float logits[V];
    double lp[V];
    random_logits(logits, V, 23, -4.0f, 4.0f);
    logits[10] = logits[11] = 6.0f; /* a tie at the top: lowest id first */
    log_softmax(logits, lp, V);
    const float temps[] = {0.0f, 0.6f, 1.7f};
    for (size_t t = 0; t < 3; t++) {
        exo_sampler_params p = plain_params(temps[t]);
        p.n_logprobs = 20;
        p.top_k = 50; /* truncation does not change what is reported */
        exo_token_sampler *s = make(&p, V);
        for (int d = 0; d < 20; d++) {
            exo_sample_result r = sample(s, logits);
            ck_assert(fabs(r.logprob - lp[r.token]) < 1e-5);
            ck_assert_uint_eq(r.n_top, 20);
            ck_assert_int_eq(r.top[0].token, 10);
            ck_assert_int_eq(r.top[1].token, 11);
            for (uint32_t i = 0; i < r.n_top; i++) {
                ck_assert(fabs(r.top[i].logprob - lp[r.top[i].token]) < 1e-5);
                if (i > 0)
                    ck_assert(r.top[i].logprob <= r.top[i - 1].logprob);
            }
            /* Nothing outside the list beats its last entry. */
            for (int i = 0; i < V; i++) {
                bool listed = false;
                for (uint32_t j = 0; j < r.n_top; j++)
                    listed |= r.top[j].token == i;
                if (!listed)
                    ck_assert(lp[i] <= r.top[r.n_top - 1].logprob + 1e-6);
            }
        }
        exo_token_sampler_free(s);
    }
}
END_TEST

START_TEST(no_logprobs_requested_gives_empty_top) {
    exo_sampler_params p = plain_params(1.0f);
    exo_token_sampler *s = make(&p, 10);
    float logits[10] = {0};
    exo_sample_result r = sample(s, logits);
    ck_assert_uint_eq(r.n_top, 0);
    ck_assert(fabs(r.logprob - (float)log(0.1)) < 1e-6);
    exo_token_sampler_free(s);
}
END_TEST

/* Found by tests/fuzz (fuzz_sampler): logits 2 and 1 are ranked 2 first, but next to a max of
 * 1e30 both report the logprob -1e30, and equal logprobs list the lowest id first. */
START_TEST(top_logprobs_rounded_equal_list_lowest_id_first) {
    exo_sampler_params p = plain_params(0.0f);
    p.n_logprobs = 3;
    exo_token_sampler *s = make(&p, 3);
    float logits[3] = {1e30f, 1.0f, 2.0f};
    exo_sample_result r = sample(s, logits);
    ck_assert_uint_eq(r.n_top, 3);
    ck_assert_int_eq(r.top[0].token, 0);
    ck_assert_float_eq(r.top[1].logprob, r.top[2].logprob);
    ck_assert_int_eq(r.top[1].token, 1);
    ck_assert_int_eq(r.top[2].token, 2);
    exo_token_sampler_free(s);
}
END_TEST

/* ---- parameters ----------------------------------------------------------------------- */

START_TEST(defaults_are_exo_defaults) {
    exo_sampler_params p;
    memset(&p, 0xff, sizeof p);
    exo_token_sampler_params_default(&p);
    ck_assert_float_eq(p.temperature, 0.7f);
    ck_assert_int_eq(p.top_k, 0);
    ck_assert_float_eq(p.top_p, 1.0f);
    ck_assert_float_eq(p.min_p, 0.05f);
    ck_assert_float_eq(p.repetition_penalty, 1.0f);
    ck_assert_float_eq(p.presence_penalty, 0.0f);
    ck_assert_float_eq(p.frequency_penalty, 0.0f);
    ck_assert_int_eq(p.penalty_window, 20);
    ck_assert_int_eq(p.seed, 42);
    ck_assert_uint_eq(p.n_logprobs, 0);
    ck_assert_ptr_null(p.banned);
    ck_assert_uint_eq(p.n_banned, 0);
    exo_token_sampler *s = make(&p, 32000);
    exo_token_sampler_free(s);

    /* The public initialiser (exo.h), the library's exo_sampling_default and a NULL sampling
     * all give these same defaults: three spellings, one set of values. */
    exo_sampling init = EXO_SAMPLING_INIT, lib;
    memset(&lib, 0xff, sizeof lib);
    exo_sampling_default(&lib);
    const exo_sampling *forms[3] = {&init, &lib, NULL};
    for (int k = 0; k < 3; k++) {
        exo_sampler_params q;
        exo_sampling_to_params(forms[k], &q);
        if (forms[k]) ck_assert_uint_eq(forms[k]->hdr.size, sizeof(exo_sampling));
        ck_assert_float_eq(q.temperature, p.temperature);
        ck_assert_int_eq(q.top_k, p.top_k);
        ck_assert_float_eq(q.top_p, p.top_p);
        ck_assert_float_eq(q.min_p, p.min_p);
        ck_assert_float_eq(q.repetition_penalty, p.repetition_penalty);
        ck_assert_float_eq(q.presence_penalty, p.presence_penalty);
        ck_assert_float_eq(q.frequency_penalty, p.frequency_penalty);
        ck_assert_int_eq(q.penalty_window, p.penalty_window);
        ck_assert_int_eq(q.seed, p.seed);
        ck_assert_uint_eq(q.n_logprobs, p.n_logprobs);
        ck_assert_uint_eq(q.n_banned, 0);
        ck_assert_ptr_null(q.banned);
    }
}
END_TEST

static void expect_rejected(const exo_sampler_params *p, uint32_t vocab, const char *needle) {
    exo_token_sampler *s = (exo_token_sampler *)p; /* any non-NULL value: must be cleared */
    exo_status st = exo_token_sampler_create(p, vocab, &s);
    ck_assert_msg(st == EXO_ERR_INVALID_ARG, "expected rejection mentioning '%s', got %d", needle,
                  st);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(exo_error_message(), needle), "message '%s' lacks '%s'",
                  exo_error_message(), needle);
}

START_TEST(invalid_params_rejected_with_messages) {
    exo_sampler_params p;
    const int32_t bad_banned[] = {3, 100};
#define REJECT(field, value, needle)                                                           \
    do {                                                                                       \
        p = plain_params(1.0f);                                                                \
        p.field = value;                                                                       \
        expect_rejected(&p, 100, needle);                                                      \
    } while (0)
    REJECT(temperature, -0.1f, "temperature");
    REJECT(temperature, NAN, "temperature");
    REJECT(temperature, INFINITY, "temperature");
    REJECT(top_k, -1, "top_k");
    REJECT(top_p, -0.01f, "top_p");
    REJECT(top_p, 1.5f, "top_p");
    REJECT(top_p, NAN, "top_p");
    REJECT(min_p, -0.5f, "min_p");
    REJECT(min_p, 2.0f, "min_p");
    REJECT(repetition_penalty, 0.0f, "repetition_penalty");
    REJECT(repetition_penalty, -1.0f, "repetition_penalty");
    REJECT(repetition_penalty, INFINITY, "repetition_penalty");
    REJECT(presence_penalty, NAN, "presence_penalty");
    REJECT(frequency_penalty, -INFINITY, "frequency_penalty");
    REJECT(penalty_window, -1, "penalty_window");
    REJECT(penalty_window, EXO_SAMPLER_MAX_WINDOW + 1, "penalty_window");
    REJECT(n_logprobs, 21, "n_logprobs");
    REJECT(n_banned, 2, "banned is NULL");
#undef REJECT
    p = plain_params(1.0f);
    p.banned = bad_banned;
    p.n_banned = 2;
    expect_rejected(&p, 100, "banned[1] = 100");
    p = plain_params(1.0f);
    expect_rejected(&p, 0, "vocab_size");
    expect_rejected(&p, EXO_SAMPLER_MAX_VOCAB + 1, "vocab_size");

    exo_token_sampler *s = NULL;
    ck_assert_int_eq(exo_token_sampler_create(NULL, 10, &s), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(exo_token_sampler_create(&p, 10, NULL), EXO_ERR_INVALID_ARG);
    s = make(&p, 10);
    exo_sample_result r;
    float logits[10] = {0};
    ck_assert_int_eq(exo_token_sampler_sample(s, NULL, &r), EXO_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(exo_error_message(), "logits"));
    ck_assert_int_eq(exo_token_sampler_sample(s, logits, NULL), EXO_ERR_INVALID_ARG);
    ck_assert_int_eq(exo_token_sampler_sample(NULL, logits, &r), EXO_ERR_INVALID_ARG);
    exo_token_sampler_free(s);
    exo_token_sampler_free(NULL);
    exo_token_sampler_accept(NULL, 1);
    exo_token_sampler_reset(NULL);
}
END_TEST

START_TEST(banned_list_is_copied) {
    int32_t banned[1] = {0};
    exo_sampler_params p = plain_params(0.0f);
    p.banned = banned;
    p.n_banned = 1;
    exo_token_sampler *s = make(&p, 3);
    banned[0] = 1; /* the caller's array may change after create */
    const float logits[3] = {5.0f, 4.0f, 0.0f};
    ck_assert_int_eq(sample(s, logits).token, 1);
    exo_token_sampler_free(s);
}
END_TEST

/* ---- a real vocabulary ---------------------------------------------------------------- */

START_TEST(large_vocab_samples) {
    /* 128k logits shaped like a model's: a few strong candidates over a long flat tail. */
    enum { V = 128 * 1024 };
    float *logits = malloc(V * sizeof *logits);
    ck_assert_ptr_nonnull(logits);
    random_logits(logits, V, 31, -8.0f, 2.0f);
    for (int i = 0; i < 32; i++)
        logits[(i * 7919) % V] = 8.0f + 0.1f * (float)i;
    struct {
        float temperature, top_p, min_p;
        int32_t top_k;
    } configs[] = {
        {0.7f, 1.0f, 0.05f, 0},  /* EXO's defaults */
        {1.0f, 0.9f, 0.0f, 0},   /* nucleus over the whole vocabulary */
        {1.0f, 0.95f, 0.0f, 40}, /* llama.cpp-like */
        {1.0f, 1.0f, 0.0f, 0},   /* plain softmax */
        {0.0f, 1.0f, 0.0f, 0},   /* greedy */
    };
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        exo_sampler_params p = plain_params(configs[c].temperature);
        p.top_p = configs[c].top_p;
        p.min_p = configs[c].min_p;
        p.top_k = configs[c].top_k;
        p.n_logprobs = 5;
        p.repetition_penalty = 1.1f;
        exo_token_sampler *s = make(&p, V);
        for (int i = 0; i < 50; i++) {
            exo_sample_result r = sample(s, logits);
            ck_assert(r.token >= 0 && r.token < V);
            ck_assert_uint_eq(r.n_top, 5);
            exo_token_sampler_accept(s, r.token);
        }
        exo_token_sampler_free(s);
    }
    free(logits);
}
END_TEST

START_TEST(rng_is_uniform_and_seeded) {
    exo_rng a, b;
    exo_rng_seed(&a, 0);
    exo_rng_seed(&b, 0);
    ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    uint32_t buckets[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = exo_rng_uniform(&a);
        ck_assert(u >= 0.0 && u < 1.0);
        ck_assert(u == exo_rng_uniform(&b));
        buckets[(int)(u * 10)]++;
    }
    const double probs[10] = {.1, .1, .1, .1, .1, .1, .1, .1, .1, .1};
    ck_assert_double_lt(chi_square(buckets, probs, 10, 100000), 27.88); /* df 9 */
    exo_rng_seed(&b, 1);
    ck_assert(exo_rng_next(&a) != exo_rng_next(&b));
}
END_TEST

static Suite *sampler_suite(void) {
    Suite *s = suite_create("sampler");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"greedy_picks_argmax_lowest_id_on_ties", greedy_picks_argmax_lowest_id_on_ties},
        {"tiny_temperature_equals_greedy", tiny_temperature_equals_greedy},
        {"top_k_one_equals_greedy", top_k_one_equals_greedy},
        {"same_seed_same_tokens_different_seed_differs", same_seed_same_tokens_different_seed_differs},
        {"unset_seed_draws_from_entropy", unset_seed_draws_from_entropy},
        {"reset_restarts_stream_and_forgets_history", reset_restarts_stream_and_forgets_history},
        {"top_k_restricts_support", top_k_restricts_support},
        {"top_k_larger_than_vocab_is_no_truncation", top_k_larger_than_vocab_is_no_truncation},
        {"top_p_keeps_smallest_nucleus", top_p_keeps_smallest_nucleus},
        {"top_p_zero_is_greedy_and_one_is_off", top_p_zero_is_greedy_and_one_is_off},
        {"top_k_ties_keep_lowest_ids", top_k_ties_keep_lowest_ids},
        {"top_p_large_nucleus_sorted_in_chunks", top_p_large_nucleus_sorted_in_chunks},
        {"top_p_large_nucleus_by_bands", top_p_large_nucleus_by_bands},
        {"top_p_with_all_logits_tied", top_p_with_all_logits_tied},
        {"min_p_drops_tokens_below_fraction_of_max", min_p_drops_tokens_below_fraction_of_max},
        {"min_p_applies_after_temperature", min_p_applies_after_temperature},
        {"top_p_renormalises_over_top_k_then_min_p", top_p_renormalises_over_top_k_then_min_p},
        {"distribution_matches_softmax", distribution_matches_softmax},
        {"distribution_matches_tempered_softmax", distribution_matches_tempered_softmax},
        {"repetition_penalty_divides_positive_multiplies_negative",
         repetition_penalty_divides_positive_multiplies_negative},
        {"presence_and_frequency_penalties_subtract", presence_and_frequency_penalties_subtract},
        {"huge_penalties_never_make_nan", huge_penalties_never_make_nan},
        {"repetition_then_presence_frequency", repetition_then_presence_frequency},
        {"penalty_window_limits_history", penalty_window_limits_history},
        {"zero_window_and_bad_ids_mean_no_penalty", zero_window_and_bad_ids_mean_no_penalty},
        {"penalty_steers_greedy_choice", penalty_steers_greedy_choice},
        {"banned_tokens_never_sampled", banned_tokens_never_sampled},
        {"nan_and_neg_inf_are_never_chosen", nan_and_neg_inf_are_never_chosen},
        {"positive_infinity_wins", positive_infinity_wins},
        {"no_valid_logit_is_an_error", no_valid_logit_is_an_error},
        {"logits_are_not_modified", logits_are_not_modified},
        {"logprobs_equal_log_softmax", logprobs_equal_log_softmax},
        {"no_logprobs_requested_gives_empty_top", no_logprobs_requested_gives_empty_top},
        {"top_logprobs_rounded_equal_list_lowest_id_first", top_logprobs_rounded_equal_list_lowest_id_first},
        {"defaults_are_exo_defaults", defaults_are_exo_defaults},
        {"invalid_params_rejected_with_messages", invalid_params_rejected_with_messages},
        {"banned_list_is_copied", banned_list_is_copied},
        {"large_vocab_samples", large_vocab_samples},
        {"rng_is_uniform_and_seeded", rng_is_uniform_and_seeded},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_test(tc, cases[i].test);
        tcase_set_timeout(tc, 120); /* the statistical cases draw thousands of samples */
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) {
    return exo_check_run(sampler_suite(), CK_FORK_GETENV);
}
