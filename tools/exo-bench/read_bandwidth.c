/* STREAM-like read bandwidth. Each thread first writes its slice (so the pages are real and local
 * to it, not the shared zero page, which would read from cache), then every pass the threads meet
 * at a barrier, sum their slices with wide loads into four independent accumulators (enough
 * loads in flight to saturate memory), and meet again; the pass time is the slowest thread's. */
#include "read_bandwidth.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef uint64_t (*sum_fn)(const uint8_t *p, size_t n);

__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint8_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    __m512i s = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(s);
}

__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

static uint64_t sum_scalar(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) {
        a0 += q[i];
        a1 += q[i + 1];
        a2 += q[i + 2];
        a3 += q[i + 3];
    }
    return a0 + a1 + a2 + a3;
}

typedef struct sweep {
    uint8_t *buf;
    size_t slice; /* bytes per thread, a multiple of 256 */
    int passes;
    uint32_t threads;
    sum_fn sum;
    pthread_barrier_t barrier;
    double *pass_seconds; /* written by thread 0 */
    uint64_t sink;        /* keeps the sums alive */
    pthread_mutex_t lock;
} sweep;

typedef struct worker {
    sweep *s;
    uint32_t index;
} worker;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void *sweep_thread(void *arg) {
    worker *w = arg;
    sweep *s = w->s;
    uint8_t *mine = s->buf + (size_t)w->index * s->slice;
    memset(mine, (int)(w->index + 1), s->slice);
    uint64_t acc = 0;
    for (int pass = 0; pass < s->passes; pass++) {
        pthread_barrier_wait(&s->barrier);
        double t0 = now();
        acc += s->sum(mine, s->slice);
        pthread_barrier_wait(&s->barrier);
        if (w->index == 0) s->pass_seconds[pass] = now() - t0;
    }
    pthread_mutex_lock(&s->lock);
    s->sink += acc;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int read_bandwidth_measure(uint32_t threads, size_t bytes, int passes, read_bandwidth *out, char *err, size_t cap) {
    memset(out, 0, sizeof *out);
    if (threads == 0) threads = 1;
    if (passes < 1) passes = 1;
    size_t slice = bytes / threads / 256 * 256;
    if (slice == 0) {
        snprintf(err, cap, "read bandwidth: %zu bytes is too small for %u threads", bytes, threads);
        return -1;
    }
    /* On the heap: if a thread cannot be created, those already started wait at the barrier for
     * good, and what they use must stay valid (it is then deliberately leaked). */
    sweep *s = calloc(1, sizeof *s);
    worker *w = calloc(threads, sizeof *w);
    pthread_t *tid = calloc(threads, sizeof *tid);
    double *pass_seconds = calloc((size_t)passes, sizeof *pass_seconds);
    const size_t huge = 2u << 20; /* 2 MiB alignment lets the kernel back it with huge pages */
    size_t total = slice * threads, alloc = (total + huge - 1) / huge * huge;
    uint8_t *buf = NULL;
    if (!s || !w || !tid || !pass_seconds || posix_memalign((void **)&buf, huge, alloc) != 0) {
        snprintf(err, cap, "read bandwidth: cannot allocate %zu MiB", alloc >> 20);
        free(s);
        free(w);
        free(tid);
        free(pass_seconds);
        return -1;
    }
    madvise(buf, alloc, MADV_HUGEPAGE); /* fewer TLB misses, as a weight buffer would have */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) { s->sum = sum_avx512; out->kernel = "avx512"; }
    else if (__builtin_cpu_supports("avx2")) { s->sum = sum_avx2; out->kernel = "avx2"; }
    else { s->sum = sum_scalar; out->kernel = "scalar"; }
    s->buf = buf;
    s->slice = slice;
    s->passes = passes;
    s->threads = threads;
    s->pass_seconds = pass_seconds;
    pthread_barrier_init(&s->barrier, NULL, threads);
    pthread_mutex_init(&s->lock, NULL);
    uint32_t started = 0;
    for (; started < threads; started++) {
        w[started] = (worker){s, started};
        if (pthread_create(&tid[started], NULL, sweep_thread, &w[started]) != 0) break;
    }
    if (started < threads) {
        snprintf(err, cap, "read bandwidth: could create only %u of %u threads", started, threads);
        if (started == 0) {
            pthread_barrier_destroy(&s->barrier);
            pthread_mutex_destroy(&s->lock);
            free(buf);
            free(s);
            free(w);
            free(pass_seconds);
        }
        free(tid);
        return -1;
    }
    for (uint32_t i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    double best = 0, sum = 0;
    for (int i = 0; i < passes; i++) {
        double gbps = (double)total / pass_seconds[i] / 1e9;
        if (gbps > best) best = gbps;
        sum += gbps;
    }
    out->best_gbps = best;
    out->mean_gbps = sum / passes;
    out->threads = threads;
    out->bytes = total;
    out->passes = passes;
    pthread_barrier_destroy(&s->barrier);
    pthread_mutex_destroy(&s->lock);
    free(buf);
    free(s);
    free(w);
    free(tid);
    free(pass_seconds);
    return 0;
}
