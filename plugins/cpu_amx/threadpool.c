/* Persistent worker threads (see threadpool.h). */
#include "threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_PAUSE() _mm_pause()
#else
#define CPU_PAUSE() ((void)0)
#endif

/* Waiting has three stages. PAUSE spins catch the next job of a decode step within a fraction
 * of a microsecond (a step runs a few hundred jobs, a few microseconds to a millisecond apart);
 * then sched_yield spins keep the latency low but hand the core over when another thread is
 * runnable, which matters when the machine is oversubscribed: a waiter that only spins can
 * keep the very thread it waits for off the CPU; finally the waiter sleeps on a condition
 * variable, so an idle pool costs nothing. */
#define SPIN_ITERATIONS 2000
#define YIELD_ITERATIONS 2000

typedef struct worker {
    cpu_threadpool *pool;
    uint32_t index;
} worker;

struct cpu_threadpool {
    uint32_t n_threads;
    uint32_t n_started;
    pthread_t *threads;
    worker *workers;
    pthread_mutex_t run_lock; /* one job at a time */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint_fast64_t generation;
    atomic_int_fast64_t next_chunk; /* first item not yet claimed */
    atomic_uint pending; /* workers still inside the current job */
    atomic_uint sleepers; /* workers blocked on `wake` (only they need the mutex and a signal) */
    atomic_bool stop;
    /* The current job. */
    cpu_kernel_fn fn;
    void *args;
    int64_t n_items, chunk; /* chunk: the grain; claims are multiples of it */
};

/* Guided self-scheduling: each claim takes an even share of what is left (rounded up to the
 * grain), so chunks start large (few claims, long contiguous weight streams that each start
 * cold) and shrink to one grain at the end, where a thread that finishes early then waits at
 * most one small chunk for the others. A fixed chunk size would leave up to a whole chunk of
 * imbalance. */
static void run_chunks(cpu_threadpool *p, uint32_t thread) {
    int64_t n = p->n_items, grain = p->chunk, share = (int64_t)p->n_threads;
    int64_t begin = atomic_load_explicit(&p->next_chunk, memory_order_relaxed);
    for (;;) {
        if (begin >= n) break;
        int64_t size = (n - begin + share - 1) / share;
        size = (size + grain - 1) / grain * grain;
        int64_t end = begin + size < n ? begin + size : n;
        if (!atomic_compare_exchange_weak(&p->next_chunk, &begin, end)) continue; /* begin reloaded */
        p->fn(p->args, begin, end, thread);
        begin = atomic_load_explicit(&p->next_chunk, memory_order_relaxed);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    cpu_threadpool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int i = 0; i < SPIN_ITERATIONS && g == seen; i++) {
            CPU_PAUSE();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        for (int i = 0; i < YIELD_ITERATIONS && g == seen; i++) {
            sched_yield();
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        seen = g;
        if (atomic_load(&p->stop)) return NULL;
        run_chunks(p, w->index);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

cpu_threadpool *cpu_threadpool_create(uint32_t n_threads, char *err, size_t err_size) {
    if (n_threads == 0) n_threads = 1;
    cpu_threadpool *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_size, "thread pool: out of memory");
        return NULL;
    }
    p->n_threads = n_threads;
    p->threads = calloc(n_threads, sizeof *p->threads);
    p->workers = calloc(n_threads, sizeof *p->workers);
    if (!p->threads || !p->workers) {
        free(p->threads);
        free(p->workers);
        free(p);
        snprintf(err, err_size, "thread pool: out of memory for %u threads", n_threads);
        return NULL;
    }
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->next_chunk, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, false);
    for (uint32_t i = 1; i < n_threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        int rc = pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]);
        if (rc != 0) {
            snprintf(err, err_size, "thread pool: pthread_create of worker %u failed: %s", i, strerror(rc));
            cpu_threadpool_destroy(p);
            return NULL;
        }
        p->n_started = i;
    }
    return p;
}

void cpu_threadpool_destroy(cpu_threadpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (uint32_t i = 1; i <= p->n_started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p->threads);
    free(p->workers);
    free(p);
}

uint32_t cpu_threadpool_size(const cpu_threadpool *p) { return p ? p->n_threads : 1; }

void cpu_threadpool_run(cpu_threadpool *p, int64_t n_items, int64_t grain, cpu_kernel_fn fn, void *args) {
    if (n_items <= 0) return;
    if (grain < 1) grain = 1;
    if (!p || p->n_threads == 1 || n_items <= grain) {
        fn(args, 0, n_items, 0);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    p->fn = fn;
    p->args = args;
    p->n_items = n_items;
    p->chunk = grain;
    atomic_store(&p->next_chunk, 0);
    atomic_store(&p->pending, p->n_threads - 1);
    /* A sleeper registers under the lock before it re-checks the generation, so either it sees
     * the new generation or we see it counted and signal it. */
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) != 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_chunks(p, 0);
    for (int i = 0; i < SPIN_ITERATIONS && atomic_load(&p->pending) != 0; i++) CPU_PAUSE();
    for (int i = 0; i < YIELD_ITERATIONS && atomic_load(&p->pending) != 0; i++) sched_yield();
    if (atomic_load(&p->pending) != 0) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&p->run_lock);
}
