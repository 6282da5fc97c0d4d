/* Mean, sample standard deviation and order statistics of a series of measurements. */
#ifndef EXO_BENCH_SUMMARY_H
#define EXO_BENCH_SUMMARY_H

#include <stddef.h>

typedef struct summary {
    double mean, sd, min, median, max;
} summary;

/* sd is the sample standard deviation (n - 1); 0 for fewer than two values. All zero for n = 0. */
summary summarize(const double *values, size_t n);

#endif
