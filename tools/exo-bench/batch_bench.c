/* exo-bench --batch N (see batch_bench.h). */
#include "batch_bench.h"

#include "monotonic_clock.h"

#include <stdlib.h>
#include <string.h>

typedef struct batch_state {
    exo_session **sessions;
    exo_batch_entry *entries;
    float *picks;       /* batch: each sequence's greedy token, as EXO_FORWARD_ARGMAX writes it */
    int32_t *tokens;    /* batch: each sequence's next token */
    double *prefill_tps, *decode_tps, *per_seq, *step_s;
    size_t n_steps;
} batch_state;

static int failed(const char *what, exo_status st, const exo_batch_entry *e, uint32_t n) {
    fprintf(stderr, "exo-bench: --batch %s: %s: %s\n", what, exo_status_name(st), exo_last_error());
    for (uint32_t i = 0; e && i < n; i++)
        if (e[i].status != EXO_OK)
            fprintf(stderr, "exo-bench:   sequence %u: %s\n", i, exo_session_last_error(e[i].session));
    return 1;
}

/* The entries of one step: every sequence with `n` tokens from `tokens` (stride `stride`), its
 * greedy token picked by the engine (on the device where the plugin can). */
static void fill(batch_state *s, uint32_t batch, const int32_t *tokens, uint32_t n, size_t stride) {
    for (uint32_t i = 0; i < batch; i++) {
        exo_batch_entry *e = &s->entries[i];
        memset(e, 0, sizeof *e);
        EXO_STRUCT_INIT(e);
        e->session = s->sessions[i];
        e->tokens = tokens + i * stride;
        e->n = n;
        e->flags = EXO_FORWARD_ARGMAX;
        e->out = &s->picks[i];
        e->out_count = 1;
    }
}

/* One repetition: reset, batched prefill of every prompt, n_gen batched greedy decode steps. */
static int run_rep(batch_state *s, uint32_t batch, const int32_t *prompt, uint32_t n_prompt, uint32_t n_gen, int record,
                   uint32_t rep) {
    for (uint32_t i = 0; i < batch; i++) exo_session_reset(s->sessions[i]);
    fill(s, batch, prompt, n_prompt, 0);
    double t0 = now_s();
    exo_status st = exo_session_forward_batch(s->entries, batch);
    if (st != EXO_OK) return failed("prefill", st, s->entries, batch);
    double t1 = now_s();
    for (uint32_t i = 0; i < batch; i++) s->tokens[i] = (int32_t)s->picks[i];
    double decode = 0;
    for (uint32_t k = 0; k < n_gen; k++) {
        fill(s, batch, s->tokens, 1, 1);
        double d0 = now_s();
        st = exo_session_forward_batch(s->entries, batch);
        if (st != EXO_OK) return failed("decode step", st, s->entries, batch);
        for (uint32_t i = 0; i < batch; i++) s->tokens[i] = (int32_t)s->picks[i];
        double dt = now_s() - d0;
        decode += dt;
        if (record) s->step_s[s->n_steps++] = dt * 1e3;
    }
    if (record) {
        s->prefill_tps[rep] = (double)batch * n_prompt / (t1 - t0);
        s->decode_tps[rep] = (double)batch * n_gen / decode;
        s->per_seq[rep] = n_gen / decode;
    }
    return 0;
}

/* One step in which sequence 0 prefills the whole prompt again while the others decode a token:
 * how long a decoding sequence waits when a request joins (its inter-token gap). */
static int mixed_step(batch_state *s, uint32_t batch, const int32_t *prompt, uint32_t n_prompt, double *ms) {
    exo_session_reset(s->sessions[0]);
    fill(s, batch, s->tokens, 1, 1);
    s->entries[0].tokens = prompt;
    s->entries[0].n = n_prompt;
    double t0 = now_s();
    exo_status st = exo_session_forward_batch(s->entries, batch);
    if (st != EXO_OK) return failed("prefill with concurrent decode", st, s->entries, batch);
    *ms = (now_s() - t0) * 1e3;
    return 0;
}

int batch_bench_run(exo_shard *shard, const exo_model_info *mi, uint32_t max_ctx, const int32_t *prompt,
                    uint32_t n_prompt, uint32_t n_gen, uint32_t batch, uint32_t reps, batch_results *out) {
    memset(out, 0, sizeof *out);
    out->batch = batch;
    (void)mi;
    batch_state s;
    memset(&s, 0, sizeof s);
    s.sessions = calloc(batch, sizeof *s.sessions);
    s.entries = calloc(batch, sizeof *s.entries);
    s.picks = calloc(batch, sizeof *s.picks);
    s.tokens = calloc(batch, sizeof *s.tokens);
    s.prefill_tps = calloc(reps, sizeof(double));
    s.decode_tps = calloc(reps, sizeof(double));
    s.per_seq = calloc(reps, sizeof(double));
    s.step_s = calloc((size_t)reps * n_gen, sizeof(double));
    int rc = 0;
    if (!s.sessions || !s.entries || !s.picks || !s.tokens || !s.prefill_tps || !s.decode_tps || !s.per_seq ||
        !s.step_s) {
        fprintf(stderr, "exo-bench: --batch: out of memory\n");
        rc = 1;
    }
    for (uint32_t i = 0; rc == 0 && i < batch; i++) {
        exo_status st = exo_session_create(shard, max_ctx, &s.sessions[i]);
        if (st != EXO_OK) {
            fprintf(stderr, "exo-bench: --batch: session %u: %s\n", i, exo_shard_last_error(shard));
            rc = 1;
        }
    }
    /* Warmup: a short repetition (the pool's growth and first batched buffers stay out of it). */
    if (rc == 0) rc = run_rep(&s, batch, prompt, n_prompt, n_gen < 4 ? n_gen : 4, 0, 0);
    for (uint32_t k = 0; rc == 0 && k < reps; k++) rc = run_rep(&s, batch, prompt, n_prompt, n_gen, 1, k);
    if (rc == 0) rc = mixed_step(&s, batch, prompt, n_prompt, &out->mixed_step_ms);
    if (rc == 0) {
        out->prefill_tps = summarize(s.prefill_tps, reps);
        out->decode_tps = summarize(s.decode_tps, reps);
        out->decode_tps_per_seq = summarize(s.per_seq, reps);
        out->step_ms = summarize(s.step_s, s.n_steps);
        out->kv_bytes = 0; /* what the sessions hold, at the shard's KV dtype */
        for (uint32_t i = 0; i < batch; i++) out->kv_bytes += (double)exo_session_kv_bytes(s.sessions[i]);
    }
    for (uint32_t i = 0; s.sessions && i < batch; i++) exo_session_destroy(s.sessions[i]);
    free(s.sessions);
    free(s.entries);
    free(s.picks);
    free(s.tokens);
    free(s.prefill_tps);
    free(s.decode_tps);
    free(s.per_seq);
    free(s.step_s);
    return rc;
}

void batch_bench_print(FILE *f, const batch_results *r, uint32_t n_prompt, uint32_t n_gen) {
    fprintf(f, "batch:   %u sequences: prefill %ux pp%u %.2f tok/s; decode tg%u %.2f +- %.2f tok/s aggregate, %.2f per "
               "sequence (per step: median %.2f ms, max %.2f); a prompt prefilled while %u decode: %.1f ms step; KV %.1f MB\n",
            r->batch, r->batch, n_prompt, r->prefill_tps.mean, n_gen, r->decode_tps.mean, r->decode_tps.sd,
            r->decode_tps_per_seq.mean, r->step_ms.median, r->step_ms.max, r->batch - 1, r->mixed_step_ms, r->kv_bytes / 1e6);
}

void batch_bench_json(cJSON *j, const batch_results *r) {
    cJSON_AddNumberToObject(j, "batch", r->batch);
    cJSON_AddNumberToObject(j, "batch_prefill_tps", r->prefill_tps.mean);
    cJSON_AddNumberToObject(j, "batch_decode_tps", r->decode_tps.mean);
    cJSON_AddNumberToObject(j, "batch_decode_tps_sd", r->decode_tps.sd);
    cJSON_AddNumberToObject(j, "batch_decode_tps_per_seq", r->decode_tps_per_seq.mean);
    cJSON_AddNumberToObject(j, "batch_step_ms_median", r->step_ms.median);
    cJSON_AddNumberToObject(j, "batch_step_ms_max", r->step_ms.max);
    cJSON_AddNumberToObject(j, "batch_mixed_step_ms", r->mixed_step_ms);
    cJSON_AddNumberToObject(j, "batch_kv_bytes", r->kv_bytes);
}
