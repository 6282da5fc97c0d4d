/* Compile-time prefaulting of the weight pages a graph reads (see graph_prefault.c). */
#ifndef EXO_CPU_GRAPH_PREFAULT_H
#define EXO_CPU_GRAPH_PREFAULT_H

#include "cpu_plugin.h"

/* Touches every page of the WEIGHT tensors that live in wrapped (caller-owned) buffers, on the
 * thread pool. `scratch` has room for n_tensors indices. Expects a checked graph. */
void cpu_prefault_weights(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t *scratch);

#endif
