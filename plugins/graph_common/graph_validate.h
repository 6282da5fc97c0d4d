/* graph_validate.h — validation of a graph against the IR's contract (abi/exo_plugin.h) and
 * against what a target's kernels implement (graph_target.h). A bad graph gets a message that
 * names the node, its op and the tensor at fault, never a crash in a kernel. */
#ifndef EXO_GRAPH_VALIDATE_H
#define EXO_GRAPH_VALIDATE_H

#include "graph_target.h"

/* Everything compile time can know: the header, the tensor table (ids, dims, dtypes, roles,
 * weight buffers, bounds and alignment), operand ids, write-before-read order, then every
 * node's op contract (operand count, dtypes, shapes, parameters) at one token and at max_tokens
 * (shape relations are linear in the token count, so both ends cover the range).
 * Returns EXO_ERR_UNSUPPORTED for what the target's kernels do not implement and
 * EXO_ERR_INVALID_ARG for graphs that break the contract. *bad_node is the node at fault, or
 * UINT32_MAX when there is none (success, or a header or tensor-table error). */
exo_status graph_validate(const graph_target *target, const exo_graph *g, uint32_t *bad_node);

#endif
