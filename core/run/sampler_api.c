/* The public sampler (exo_sampler_*): the token sampler of run/sampler.c behind a versioned
 * parameter struct, for callers that step sequences themselves. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/struct_io.h"
#include "exo.h"
#include "run/sampler.h"

struct exo_sampler {
    exo_token_sampler *impl;
    uint32_t vocab_size;
};

void exo_sampling_default(exo_sampling *s) {
    /* One definition of EXO's defaults for C callers and bindings alike: the header's. */
    if (s) *s = (exo_sampling)EXO_SAMPLING_INIT;
}

void exo_sampling_to_params(const exo_sampling *in, exo_sampler_params *p) {
    exo_sampling s;
    exo_sampling_default(&s);
    if (in) exo_struct_copy_in(&s, sizeof s, in);
    exo_token_sampler_params_default(p);
    p->temperature = s.temperature;
    p->top_k = s.top_k;
    p->top_p = s.top_p;
    p->min_p = s.min_p;
    p->repetition_penalty = s.repetition_penalty;
    p->presence_penalty = s.presence_penalty;
    p->frequency_penalty = s.frequency_penalty;
    p->penalty_window = s.penalty_window;
    p->seed = s.seed;
    p->n_logprobs = s.n_logprobs;
    p->banned = s.banned;
    p->n_banned = s.n_banned;
}

exo_status exo_sampler_create(const exo_sampling *sampling, uint32_t vocab_size, exo_sampler **out) {
    exo_error_clear();
    if (!out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_sampler_create: out is NULL");
    *out = NULL;
    if (sampling && (sampling->hdr.size < sizeof sampling->hdr ||
                     EXO_VERSION_MAJOR(sampling->hdr.version) != EXO_API_MAJOR))
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_sampler_create: sampling header not initialised");
    exo_sampler_params p;
    exo_sampling_to_params(sampling, &p);
    exo_sampler *s = calloc(1, sizeof *s);
    if (!s) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory creating a sampler");
    s->vocab_size = vocab_size;
    exo_status st = exo_token_sampler_create(&p, vocab_size, &s->impl);
    if (st != EXO_OK) {
        free(s);
        return st;
    }
    *out = s;
    return EXO_OK;
}

void exo_sampler_destroy(exo_sampler *s) {
    if (!s) return;
    exo_token_sampler_free(s->impl);
    free(s);
}

void exo_sampler_accept(exo_sampler *s, int32_t token) {
    if (s) exo_token_sampler_accept(s->impl, token);
}

void exo_sampler_reset(exo_sampler *s) {
    if (s) exo_token_sampler_reset(s->impl);
}

exo_status exo_sampler_sample(exo_sampler *s, const float *logits, uint32_t n_logits, exo_sampled_token *out) {
    exo_error_clear();
    if (!s || !logits || !out || out->hdr.size < sizeof out->hdr)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_sampler_sample: NULL argument or uninitialised header");
    if (n_logits != s->vocab_size)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_sampler_sample: %u logits for a vocabulary of %u", n_logits,
                          s->vocab_size);
    exo_sample_result r;
    exo_status st = exo_token_sampler_sample(s->impl, logits, &r);
    if (st != EXO_OK) return st;
    exo_sampled_token t;
    memset(&t, 0, sizeof t);
    EXO_STRUCT_INIT(&t);
    t.token = r.token;
    t.logprob = r.logprob;
    t.n_top = r.n_top < 20 ? r.n_top : 20;
    for (uint32_t i = 0; i < t.n_top; i++) {
        t.top_tokens[i] = r.top[i].token;
        t.top_logprobs[i] = r.top[i].logprob;
    }
    exo_struct_copy_out(out, &t, sizeof t);
    return EXO_OK;
}
