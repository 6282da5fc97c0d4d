/* libFuzzer harness: the token sampler (core/run/sampler.c).
 *
 * The input drives everything the sampler takes: parameters (mostly mapped into their valid
 * ranges so that creation succeeds and the sampling paths run, sometimes raw float bits so the
 * validation runs too), a vocabulary of 1..4096, banned ids, a penalty history, and rows of
 * logits that include NaN, +-inf and +-FLT_MAX. Each result is checked against sampler.h: a
 * token is sampled exactly when some unbanned logit is neither NaN nor -inf; it is in range and
 * not banned; its log-probability is <= 0; the top list is sorted, in range and unbanned. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "fuzz_scratch.h"
#include "run/sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_VOCAB 4096u
#define FUZZ_ROWS 3

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint32_t rd_u32(reader *r, unsigned nbytes) {
    uint32_t v = 0;
    for (unsigned i = 0; i < nbytes; i++) v |= (uint32_t)(r->p < r->end ? *r->p++ : 0) << (8 * i);
    return v;
}

static float rd_raw_float(reader *r) {
    uint32_t bits = rd_u32(r, 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A float in [lo, hi] from two bytes; one selector value in eight takes raw bits instead. */
static float rd_float(reader *r, float lo, float hi) {
    if ((rd_u32(r, 1) & 7) == 0) return rd_raw_float(r);
    return lo + (hi - lo) * (float)rd_u32(r, 2) / 65535.0f;
}

/* A logit from two bytes: a few codes are the special values, the rest a grid over +-128. */
static float rd_logit(reader *r, bool raw) {
    if (raw) return rd_raw_float(r);
    int16_t v = (int16_t)rd_u32(r, 2);
    switch (v) {
    case INT16_MAX: return INFINITY;
    case INT16_MIN: return -INFINITY;
    case INT16_MAX - 1: return NAN;
    case INT16_MAX - 2: return FLT_MAX;
    case INT16_MIN + 1: return -FLT_MAX;
    default: return (float)v / 256.0f;
    }
}

static void finding(const char *what) {
    fprintf(stderr, "fuzz finding: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, data + size};
    exo_sampler_params p;
    exo_token_sampler_params_default(&p);
    /* Mostly small vocabularies (fast); one input in eight takes up to 4096, enough for the
     * top_p band path (more than 2048 candidates). */
    uint32_t vocab = 1 + rd_u32(&r, 2) % ((rd_u32(&r, 1) & 7) == 0 ? FUZZ_MAX_VOCAB : 256u);
    p.temperature = rd_float(&r, 0.0f, 4.0f);
    if ((rd_u32(&r, 1) & 3) == 0) p.temperature = 0.0f; /* greedy is common: make it so here */
    p.top_k = (int32_t)(rd_u32(&r, 2) % (vocab + 2)) - ((rd_u32(&r, 1) & 31) == 0);
    p.top_p = rd_float(&r, 0.0f, 1.0f);
    p.min_p = rd_float(&r, 0.0f, 1.0f);
    p.repetition_penalty = rd_float(&r, 0.5f, 2.0f);
    p.presence_penalty = rd_float(&r, -2.0f, 2.0f);
    p.frequency_penalty = rd_float(&r, -2.0f, 2.0f);
    p.penalty_window = (int32_t)(rd_u32(&r, 1) % 40);
    p.seed = (int64_t)rd_u32(&r, 4);
    p.n_logprobs = rd_u32(&r, 1) % (EXO_SAMPLER_MAX_LOGPROBS + 2);
    int32_t banned[16];
    p.n_banned = rd_u32(&r, 1) % 17;
    for (uint32_t i = 0; i < p.n_banned; i++)
        banned[i] = (int32_t)(rd_u32(&r, 2) % (vocab + 1)); /* vocab itself: an invalid id */
    p.banned = banned;
    bool raw_logits = (rd_u32(&r, 1) & 3) == 0;

    exo_token_sampler *s = NULL;
    exo_error_clear();
    exo_status st = exo_token_sampler_create(&p, vocab, &s);
    fuzz_check_error_detail(st, NULL);
    if (st) return 0;
    bool is_banned[FUZZ_MAX_VOCAB] = {false};
    for (uint32_t i = 0; i < p.n_banned; i++) is_banned[banned[i]] = true;

    uint32_t history = rd_u32(&r, 1) % 32;
    for (uint32_t i = 0; i < history; i++)
        exo_token_sampler_accept(s, (int32_t)(rd_u32(&r, 2) % (vocab + 2)) - 1);

    float *logits = malloc(vocab * sizeof *logits);
    if (!logits) abort();
    for (int row = 0; row < FUZZ_ROWS; row++) {
        /* Short inputs repeat their logit bytes rather than padding with one value. */
        const uint8_t *logit_start = r.p;
        bool any_sampleable = false;
        for (uint32_t i = 0; i < vocab; i++) {
            if (r.p >= r.end) r.p = logit_start < r.end ? logit_start : r.end;
            logits[i] = rd_logit(&r, raw_logits);
            if (!is_banned[i] && !isnan(logits[i]) && logits[i] != -INFINITY) any_sampleable = true;
        }
        exo_sample_result res;
        exo_error_clear();
        st = exo_token_sampler_sample(s, logits, &res);
        fuzz_check_error_detail(st, NULL);
        if (any_sampleable != (st == EXO_OK))
            finding(st ? "sampling failed with a sampleable logit present"
                       : "sampling succeeded with every logit NaN, -inf or banned");
        if (st) {
            if (res.token != -1) finding("a failed sample left a token id");
            continue;
        }
        if (res.token < 0 || (uint32_t)res.token >= vocab) finding("sampled id outside the vocabulary");
        if (is_banned[res.token]) finding("sampled a banned id");
        if (isnan(res.logprob) || res.logprob > 1e-5f) finding("sampled logprob is NaN or positive");
        if (res.n_top > p.n_logprobs) finding("more top logprobs than asked for");
        for (uint32_t i = 0; i < res.n_top; i++) {
            const exo_token_logprob *t = &res.top[i];
            if (t->token < 0 || (uint32_t)t->token >= vocab || is_banned[t->token])
                finding("top logprob entry outside the vocabulary or banned");
            if (isnan(t->logprob) || t->logprob > 1e-5f) finding("top logprob is NaN or positive");
            if (i > 0 && (t->logprob > res.top[i - 1].logprob ||
                          (t->logprob == res.top[i - 1].logprob && t->token < res.top[i - 1].token))) {
                fprintf(stderr, "top[%u] = (%d, %.9g) after (%d, %.9g)\n", i, t->token,
                        (double)t->logprob, res.top[i - 1].token, (double)res.top[i - 1].logprob);
                finding("top logprobs not sorted (by logprob, ties by lowest id)");
            }
        }
        exo_token_sampler_accept(s, res.token);
        if (row == 1) exo_token_sampler_reset(s);
    }
    free(logits);
    exo_token_sampler_free(s);
    return 0;
}
