/* exo-bench --batch N: N sequences of the shard stepped together through
 * exo_session_forward_batch (one graph run per step where the device runs pooled KV caches):
 * their prompts as one batched prefill, then greedy decode steps of all N at once (the engine
 * picks each token, EXO_FORWARD_ARGMAX), and one batched step that prefills a prompt while the
 * others decode. */
#ifndef EXO_BENCH_BATCH_BENCH_H
#define EXO_BENCH_BATCH_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include "exo.h"
#include "summary.h"

typedef struct batch_results {
    uint32_t batch;
    summary prefill_tps;        /* the N prompts, tokens per second over all of them */
    summary decode_tps;         /* aggregate: N x steps / time */
    summary decode_tps_per_seq; /* what each sequence sees: steps / time */
    summary step_ms;            /* one decode step of all N, their greedy tokens picked */
    double mixed_step_ms;       /* one step: a whole prompt prefilled while N - 1 sequences decode */
    double kv_bytes;            /* KV cache the N sessions hold (float32, every layer, max_ctx each) */
} batch_results;

/* Runs `reps` repetitions (after a warmup one) of the batch on `shard`. prompt: n_prompt token
 * ids shared by every sequence (each starts from the same prompt; the work is that of N
 * distinct ones). Returns 0, or 1 after printing why. */
int batch_bench_run(exo_shard *shard, const exo_model_info *mi, uint32_t max_ctx, const int32_t *prompt,
                    uint32_t n_prompt, uint32_t n_gen, uint32_t batch, uint32_t reps, batch_results *out);

void batch_bench_print(FILE *f, const batch_results *r, uint32_t n_prompt, uint32_t n_gen);
void batch_bench_json(cJSON *j, const batch_results *r);

#endif
