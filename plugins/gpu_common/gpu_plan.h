/* gpu_plan.h — scratch planning: every intermediate tensor (no role flags) gets a GPU_ALIGN-byte
 * aligned offset in one device allocation sized for max_tokens; tensors whose lifetimes (first
 * write .. last read, in node order) do not overlap share memory. */
#ifndef EXO_GPU_PLAN_H
#define EXO_GPU_PLAN_H

#include "gpu_backend.h"

#define GPU_NOT_PLANNED UINT64_MAX
#define GPU_ALIGN 256 /* keeps every intermediate on its own cache lines / memory transactions */

/* offsets has n_tensors entries: GPU_NOT_PLANNED for role tensors and unused intermediates.
 * Expects a graph that passed gpu_check_graph_structure. */
exo_status gpu_plan_scratch(const gpu_backend *be, const exo_graph *g, uint64_t *offsets, uint64_t *total);

#endif
