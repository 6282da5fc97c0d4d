/* Seconds on the monotonic clock: what every exo-bench timing subtracts. */
#ifndef EXO_BENCH_MONOTONIC_CLOCK_H
#define EXO_BENCH_MONOTONIC_CLOCK_H

#include <time.h>

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

#endif
