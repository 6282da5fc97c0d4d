/* Host threads of a tensor-parallel shard's ranks (rank_workers.c): rank r > 0 has a persistent
 * worker thread, started with the shard and joined when it is freed; rank 0 runs on the calling
 * thread. A dispatch runs fn(arg, r) for ranks [0, n) at once and returns when every one has
 * returned, so the all-reduce that follows sees every rank's output. With no workers (NULL:
 * EXO_TENSOR_PARALLEL_SEQUENTIAL=1, or a shell of one rank) the ranks run one after another on
 * the caller, the same calls in the same order. */
#ifndef EXO_RUN_RANK_WORKERS_H
#define EXO_RUN_RANK_WORKERS_H

#include <stdint.h>

#include "exo.h"

typedef struct exo_rank_workers exo_rank_workers;

/* One rank's share of a dispatch; it must return (never block on another rank). */
typedef void (*exo_rank_fn)(void *arg, uint32_t rank);

/* Starts ranks - 1 worker threads (ranks >= 2). An error (no memory, no thread) names what failed
 * and leaves nothing running. */
exo_status exo_rank_workers_start(uint32_t ranks, exo_rank_workers **out);

/* Runs fn(arg, r) for r in [0, n) (n <= the ranks started; w NULL: one after another on the
 * caller) and returns when all have returned. Dispatches from several threads (sessions of one
 * shard stepped on different threads) take turns. */
void exo_rank_workers_run(exo_rank_workers *w, uint32_t n, exo_rank_fn fn, void *arg);

/* Stops and joins the workers (none may be running a dispatch); NULL is a no-op. */
void exo_rank_workers_stop(exo_rank_workers *w);

#endif
