/* The machine's read bandwidth, measured the way decode reads weights: a STREAM-like pure-read
 * sweep over a buffer far larger than the caches, split across threads. */
#ifndef EXO_BENCH_READ_BANDWIDTH_H
#define EXO_BENCH_READ_BANDWIDTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct read_bandwidth {
    double best_gbps;   /* the fastest pass (STREAM reports the best) */
    double mean_gbps;
    uint32_t threads;
    size_t bytes;
    int passes;
    const char *kernel; /* "avx512", "avx2" or "scalar" */
} read_bandwidth;

/* 0 on success; -1 with a message in err (allocation or thread creation failed). */
int read_bandwidth_measure(uint32_t threads, size_t bytes, int passes, read_bandwidth *out, char *err, size_t cap);

#endif
