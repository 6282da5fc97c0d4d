/* Matmuls that read the same input (q/k/v projections, gate/up) run as one thread-pool job:
 * their weight rows are concatenated into one item range, so a decode step pays one hand-off
 * and one join instead of one per matmul, and the split between threads is balanced over the
 * whole group rather than per matmul. */
#ifndef EXO_CPU_MATMUL_GROUP_H
#define EXO_CPU_MATMUL_GROUP_H

#include "kernels.h"

#define CPU_MATMUL_GROUP_MAX 4

typedef struct cpu_matmul_group_args {
    cpu_matmul_args member[CPU_MATMUL_GROUP_MAX];
    int64_t start[CPU_MATMUL_GROUP_MAX + 1]; /* first item of each member; start[count] = total */
    uint32_t count;
    cpu_kernel_fn fn; /* the members' kernel (they share the input, so its token count) */
} cpu_matmul_group_args;

/* Groups are found with graph_matmul_group_length (graph_ir.h), at most CPU_MATMUL_GROUP_MAX. */
/* Items: the concatenated output columns of all members. */
void cpu_matmul_group_task(void *args, int64_t begin, int64_t end, uint32_t thread);

#endif
