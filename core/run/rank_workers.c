/* Host threads of a tensor-parallel shard's ranks (rank_workers.h). A device's half layer is a
 * plugin call that waits for the device (an execute and a blocking read back), so ranks on
 * different devices only overlap when each has a host thread of its own; the ABI lets calls for
 * two devices of one context run at the same time (abi/exo_plugin.h, "Threads"), and each rank's
 * calls take its own device's lock. The workers are persistent (a thread per step would cost
 * more than a decode step's half layer on a GPU): they sleep on a condition variable between
 * dispatches, a dispatch is a generation number, and the caller runs rank 0 itself and then waits
 * for the count of ranks still running to reach zero. */
#include "rank_workers.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

typedef struct worker_start {
    exo_rank_workers *w;
    uint32_t rank;
} worker_start;

struct exo_rank_workers {
    pthread_mutex_t turn;   /* one dispatch at a time (sessions of one shard on several threads) */
    pthread_mutex_t mu;     /* everything below */
    pthread_cond_t go;      /* a new generation, or quit */
    pthread_cond_t done;    /* pending reached zero */
    uint64_t generation;
    uint32_t active;        /* ranks of the current dispatch */
    uint32_t pending;       /* workers of the current dispatch still running */
    bool quit;
    exo_rank_fn fn;
    void *arg;
    uint32_t n_threads;     /* started: ranks 1..n_threads */
    pid_t owner;            /* the process that started them (a forked child has none of them) */
    pthread_t *threads;
    worker_start *starts;
};

static void *worker_main(void *p) {
    const worker_start *s = p;
    exo_rank_workers *w = s->w;
    uint32_t rank = s->rank;
    uint64_t seen = 0;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->quit && w->generation == seen) pthread_cond_wait(&w->go, &w->mu);
        if (w->quit) break;
        seen = w->generation;
        if (rank >= w->active) continue; /* a dispatch of fewer ranks (a MoE layer's whole MLP) */
        exo_rank_fn fn = w->fn;
        void *arg = w->arg;
        pthread_mutex_unlock(&w->mu);
        fn(arg, rank);
        pthread_mutex_lock(&w->mu);
        if (--w->pending == 0) pthread_cond_signal(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

exo_status exo_rank_workers_start(uint32_t ranks, exo_rank_workers **out) {
    *out = NULL;
    if (ranks < 2) return EXO_OK;
    exo_rank_workers *w = calloc(1, sizeof *w);
    if (w) {
        w->threads = calloc(ranks - 1, sizeof *w->threads);
        w->starts = calloc(ranks - 1, sizeof *w->starts);
    }
    if (!w || !w->threads || !w->starts) {
        if (w) {
            free(w->threads);
            free(w->starts);
        }
        free(w);
        return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory for %u rank threads", ranks - 1);
    }
    w->owner = getpid();
    pthread_mutex_init(&w->turn, NULL);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->go, NULL);
    pthread_cond_init(&w->done, NULL);
    /* The workers take no signals: they belong to the embedder's threads (Python's main thread). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int err = 0;
    uint32_t failed = 0;
    for (uint32_t r = 1; r < ranks && !failed; r++) {
        w->starts[r - 1] = (worker_start){w, r};
        err = pthread_create(&w->threads[r - 1], NULL, worker_main, &w->starts[r - 1]);
        if (err) {
            failed = r;
            break;
        }
        char name[16];
        snprintf(name, sizeof name, "exo-tp-rank%u", r);
        pthread_setname_np(w->threads[r - 1], name);
        w->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (failed) {
        exo_rank_workers_stop(w);
        return exo_errorf(EXO_ERR_NO_MEMORY, "cannot start a host thread for tensor-parallel rank %u: %s", failed,
                          strerror(err));
    }
    *out = w;
    return EXO_OK;
}

void exo_rank_workers_run(exo_rank_workers *w, uint32_t n, exo_rank_fn fn, void *arg) {
    /* In a child forked after the load (multiprocessing's fork) the workers do not exist: the
     * ranks run on the caller, as sequential ranks would. */
    if (!w || n < 2 || getpid() != w->owner) {
        for (uint32_t r = 0; r < n; r++) fn(arg, r);
        return;
    }
    if (n > w->n_threads + 1) n = w->n_threads + 1; /* never: the shell starts one per rank */
    pthread_mutex_lock(&w->turn);
    pthread_mutex_lock(&w->mu);
    w->fn = fn;
    w->arg = arg;
    w->active = n;
    w->pending = n - 1;
    w->generation++;
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    fn(arg, 0);
    pthread_mutex_lock(&w->mu);
    while (w->pending) pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_unlock(&w->turn);
}

void exo_rank_workers_stop(exo_rank_workers *w) {
    if (!w) return;
    if (getpid() != w->owner) { /* a forked child: no threads to join, locks as the fork left them */
        free(w->threads);
        free(w->starts);
        free(w);
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->mu);
    for (uint32_t i = 0; i < w->n_threads; i++) pthread_join(w->threads[i], NULL);
    pthread_cond_destroy(&w->go);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->turn);
    free(w->threads);
    free(w->starts);
    free(w);
}
