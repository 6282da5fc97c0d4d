/* graph_node_rules.h — one node's op contract (private to graph_common; graph_validate.h is the
 * entry point). */
#ifndef EXO_GRAPH_NODE_RULES_H
#define EXO_GRAPH_NODE_RULES_H

#include "graph_target.h"

/* Operand count, dtypes, shapes and parameters of node `index` at n_tokens. Expects a graph
 * whose tensor table and operand ids have been checked. */
exo_status graph_check_node(const graph_target *target, const exo_graph *g, uint32_t index, uint32_t n_tokens);

#endif
