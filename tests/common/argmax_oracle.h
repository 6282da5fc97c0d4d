/* argmax_oracle.h — EXO_OP_ARGMAX's rule (abi/exo_plugin.h) written as the loop that defines
 * it: the oracle every argmax under test is checked against (the ABI's two-pass exo_argmax_row,
 * the GPU kernel, the greedy steps of the core), kept apart from all of them. */
#ifndef EXO_TEST_ARGMAX_ORACLE_H
#define EXO_TEST_ARGMAX_ORACLE_H

#include <stdint.h>

static inline int32_t argmax_one_pass(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

#endif
