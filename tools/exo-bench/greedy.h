/* The greedy pick exo-bench decodes with: the first index of the largest logit. It is part of each
 * timed decode step (a serving loop samples too), for one sequence as for a batch. */
#ifndef EXO_BENCH_GREEDY_H
#define EXO_BENCH_GREEDY_H

#include <stdint.h>

static inline int32_t argmax(const float *v, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int32_t)best;
}

#endif
