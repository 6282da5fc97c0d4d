/* Grouped matmul dispatch (see matmul_group.h). */
#include "matmul_group.h"

uint32_t cpu_matmul_group_length(const exo_node *nodes, uint32_t n_nodes, uint32_t first) {
    if (nodes[first].op != EXO_OP_MATMUL) return 0;
    uint32_t input = nodes[first].src[0], n = 1;
    while (first + n < n_nodes && n < CPU_MATMUL_GROUP_MAX && nodes[first + n].op == EXO_OP_MATMUL &&
           nodes[first + n].src[0] == input)
        n++;
    return n;
}

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
