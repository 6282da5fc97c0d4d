/* The greedy pick exo-bench decodes with: the first index of the largest logit. It is part of each
 * timed decode step (a serving loop samples too), for one sequence as for a batch.
 *
 * Two passes the compiler vectorises (a vocabulary of 128K logits is 513 KB a sequence; the
 * one-pass loop carries its running best from element to element): the largest value, 16
 * lanes at once, then the first block of 16 holding it and the first index in that block.
 * The pick is the one-pass loop's (`if (v[i] > v[best]) best = i` from best = 0): NaN logits
 * are never picked, unless the first is NaN, which that loop never leaves (index 0); -0 and
 * +0 are equal, so the first of either wins. */
#ifndef EXO_BENCH_GREEDY_H
#define EXO_BENCH_GREEDY_H

#include <stdint.h>

#define GREEDY_LANES 16

static inline int32_t argmax(const float *v, uint32_t n) {
    if (n == 0 || v[0] != v[0]) return 0;
    float lane[GREEDY_LANES];
    for (uint32_t l = 0; l < GREEDY_LANES; l++) lane[l] = v[0];
    uint32_t i = 0;
    for (; i + GREEDY_LANES <= n; i += GREEDY_LANES)
        for (uint32_t l = 0; l < GREEDY_LANES; l++) lane[l] = v[i + l] > lane[l] ? v[i + l] : lane[l];
    float best = lane[0];
    for (uint32_t l = 1; l < GREEDY_LANES; l++) best = lane[l] > best ? lane[l] : best;
    for (; i < n; i++) best = v[i] > best ? v[i] : best;
    for (i = 0; i + GREEDY_LANES <= n; i += GREEDY_LANES) {
        int hit = 0;
        for (uint32_t l = 0; l < GREEDY_LANES; l++) hit |= v[i + l] == best;
        if (hit) break;
    }
    for (; i < n; i++)
        if (v[i] == best) return (int32_t)i;
    return 0; /* not reached: best is one of v's values */
}

#endif
