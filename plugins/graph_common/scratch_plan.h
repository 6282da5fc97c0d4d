/* scratch_plan.h — scratch planning: every intermediate tensor (no role flags) gets an
 * `align`-byte aligned offset in one scratch allocation sized for max_tokens; tensors whose
 * lifetimes (first write .. last read, in node order) do not overlap share memory. One
 * extension: a MATMUL's input lives through the end of a run the GPU executor may fuse with it
 * (the ADD that reads its output next; the GLU after a gate/up pair; scratch_plan.c). */
#ifndef EXO_SCRATCH_PLAN_H
#define EXO_SCRATCH_PLAN_H

#include "graph_target.h"

#define GRAPH_NOT_PLANNED UINT64_MAX

/* offsets has n_tensors entries: GRAPH_NOT_PLANNED for role tensors and unused intermediates;
 * *total is the scratch size. `align` is a power of two: the CPU wants cache lines (64), the
 * GPUs a memory transaction (256). Expects a graph that passed graph_validate. */
exo_status graph_plan_scratch(const graph_target *target, const exo_graph *g, uint64_t align, uint64_t *offsets,
                              uint64_t *total);

#endif
