/* Grouped matmul dispatch (see matmul_group.h). */
#include "matmul_group.h"

void cpu_matmul_group_task(void *args, int64_t begin, int64_t end, uint32_t thread) {
    cpu_matmul_group_args *g = args;
    for (uint32_t i = 0; i < g->count && begin < end; i++) {
        int64_t lo = g->start[i], hi = g->start[i + 1];
        if (begin >= hi) continue;
        int64_t stop = end < hi ? end : hi;
        g->fn(&g->member[i], begin - lo, stop - lo, thread);
        begin = stop;
    }
}
