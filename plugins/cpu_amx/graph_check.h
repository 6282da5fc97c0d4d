/* Validation of a graph against the IR's contract (abi/exo_plugin.h), shape resolution for a
 * token count, and tensor sizes. Used by supports_graph, graph_compile and graph_execute. */
#ifndef EXO_CPU_GRAPH_CHECK_H
#define EXO_CPU_GRAPH_CHECK_H

#include "cpu_plugin.h"

#define CPU_NAME_ARG(t) (int)strnlen((t)->name, EXO_TENSOR_NAME_MAX), (t)->name

const char *cpu_op_name(exo_op op);
const char *cpu_dtype_name(exo_dtype dtype);
/* Bytes per element for element-addressed dtypes (0 for Q8_0, which is block-addressed). */
uint32_t cpu_dtype_size(exo_dtype dtype);

/* ne with EXO_DIM_TOKENS replaced by n_tokens and missing dims as 1; returns the element count. */
int64_t cpu_resolve_shape(const exo_tensor *t, uint32_t n_tokens, int64_t ne[EXO_MAX_DIMS]);
uint64_t cpu_tensor_bytes(const exo_tensor *t, uint32_t n_tokens);

/* Header, tensor table (ids, dims, dtypes, roles, weight bounds) and write-before-read order.
 * On failure *bad_node is the node at fault, or UINT32_MAX for a tensor-table error. */
exo_status cpu_check_graph_structure(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t *bad_node);
/* One node's op contract (operand count, dtypes, shapes, parameters) at n_tokens. Returns
 * EXO_ERR_UNSUPPORTED for ops or dtype combinations this plugin does not implement and
 * EXO_ERR_INVALID_ARG for graphs that break the contract. */
exo_status cpu_check_node(exo_plugin_ctx *ctx, const exo_graph *g, uint32_t index, uint32_t n_tokens);

#endif
