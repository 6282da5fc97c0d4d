/* A persistent pthread pool for data-parallel kernels: run() splits [0, n_items) into chunks
 * that the caller and the workers claim from a shared counter (guided: large first, one grain
 * at the end), then returns when all are done. Waiters spin, then yield, then sleep on a
 * condition variable (decode runs hundreds of small jobs per token; see threadpool.c). */
#ifndef EXO_CPU_THREADPOOL_H
#define EXO_CPU_THREADPOOL_H

#include "kernels.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cpu_threadpool cpu_threadpool;

/* n_threads counts the calling thread. Returns NULL (and writes why into err) on failure. */
cpu_threadpool *cpu_threadpool_create(uint32_t n_threads, char *err, size_t err_size);
void cpu_threadpool_destroy(cpu_threadpool *pool);
uint32_t cpu_threadpool_size(const cpu_threadpool *pool);

/* Runs fn over [0, n_items) in chunks that are multiples of `grain` (except the last one);
 * n_items <= grain runs on the caller alone, with no hand-off at all.
 * Calls are serialised; a NULL pool runs everything on the caller as thread 0. */
void cpu_threadpool_run(cpu_threadpool *pool, int64_t n_items, int64_t grain, cpu_kernel_fn fn,
                        void *args);

#endif
