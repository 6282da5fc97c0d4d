/* gpu_graph.h — the device-independent graph executor shared by the GPU plugins.
 *
 * supports/compile validate the whole graph (at 1 and at max_tokens tokens); compile plans every
 * intermediate into one scratch allocation sized for max_tokens (so execute allocates nothing)
 * and gathers the index inputs (token ids, positions) to range-check per execution; execute binds
 * INPUT/OUTPUT/KV tensors, checks those indices, and enqueues every node's kernel launches
 * through the backend (gpu_kernels.h picks the kernel and its sizes), several nodes per launch
 * where compile found a run of the fusion table (gpu_fusions.h). */
#ifndef EXO_GPU_GRAPH_H
#define EXO_GPU_GRAPH_H

#include "gpu_backend.h"

typedef struct gpu_compiled gpu_compiled;

exo_status gpu_graph_supports(const gpu_backend *be, const exo_graph *g, uint32_t *first_unsupported);
/* `be` must outlive the compiled graph. */
exo_status gpu_graph_compile(const gpu_backend *be, const exo_graph *g, gpu_compiled **out);
exo_status gpu_graph_execute(gpu_compiled *c, const exo_exec_args *args);
void gpu_graph_free(gpu_compiled *c);

#endif
