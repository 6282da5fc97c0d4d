/* graph_bindings.h — the run-time half of validation: an execution's arguments and bindings
 * against a compiled graph's tensor table. */
#ifndef EXO_GRAPH_BINDINGS_H
#define EXO_GRAPH_BINDINGS_H

#include "graph_target.h"

/* Checks `args` (header, 1 <= n_tokens <= max_tokens) and its bindings: each names an INPUT,
 * OUTPUT or KV tensor of the table, once, in a buffer of this plugin (target->buffer_span) that
 * holds the tensor at n_tokens from the binding's offset, aligned to its elements and within
 * target->max_elements; every such tensor is bound. `bound` has n_tensors entries; on success
 * bound[t] is 1 exactly for the bound tensors (the caller then takes each binding's memory). */
exo_status graph_check_bindings(const graph_target *target, const exo_tensor *tensors, uint32_t n_tensors,
                                uint32_t max_tokens, const exo_exec_args *args, uint8_t *bound);

#endif
