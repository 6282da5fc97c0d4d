#include "summary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

summary summarize(const double *values, size_t n) {
    summary s = {0};
    if (n == 0) return s;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += values[i];
    s.mean = sum / (double)n;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (values[i] - s.mean) * (values[i] - s.mean);
    s.sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    double *sorted = malloc(n * sizeof *sorted);
    if (sorted) {
        memcpy(sorted, values, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_double);
        s.min = sorted[0];
        s.max = sorted[n - 1];
        s.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        free(sorted);
    } else { /* no order statistics without memory; the mean stands in */
        s.min = s.median = s.max = s.mean;
    }
    return s;
}
