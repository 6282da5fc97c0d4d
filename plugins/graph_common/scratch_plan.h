/* scratch_plan.h — scratch planning: every intermediate tensor (no role flags) gets an
 * `align`-byte aligned offset in one scratch allocation sized for max_tokens; tensors whose
 * lifetimes (first write .. last read, in node order) do not overlap share memory. An executor
 * that computes several nodes as one launch says which tensors that launch still reads after
 * their last reader (graph_keep_alive): they live through the launch's last node. */
#ifndef EXO_SCRATCH_PLAN_H
#define EXO_SCRATCH_PLAN_H

#include "graph_target.h"

#define GRAPH_NOT_PLANNED UINT64_MAX

/* Tensor `tensor` stays live through node `until` (an intermediate; others are ignored). The GPU
 * executor fills these from its fusion table (plugins/gpu_common/gpu_fusions.h): a launch
 * covering nodes .. until reads the tensor while it writes until's output. */
typedef struct graph_keep_alive {
    uint32_t tensor;
    uint32_t until;
} graph_keep_alive;

/* offsets has n_tensors entries: GRAPH_NOT_PLANNED for role tensors and unused intermediates;
 * *total is the scratch size. `align` is a power of two: the CPU wants cache lines (64), the
 * GPUs a memory transaction (256). keep: n_keep entries (NULL when 0). Expects a graph that
 * passed graph_validate. */
exo_status graph_plan_scratch(const graph_target *target, const exo_graph *g, const graph_keep_alive *keep,
                              uint32_t n_keep, uint64_t align, uint64_t *offsets, uint64_t *total);

#endif
