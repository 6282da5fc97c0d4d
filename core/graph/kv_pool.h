/* Pooled KV caches in a built plan (abi/exo_plugin.h, "Pooled KV caches", ABI 1.6): the same
 * graph, but every KV tensor holds the caches of kv_slots sessions and KV_WRITE / ATTENTION take
 * each token's slot from one more INPUT, so one execution steps several sequences. A transform
 * of a built plan, like exo_graph_plan_resize: the shard pools its plans only for a plugin that
 * accepts the form, and re-pools them when its pool of sessions grows. */
#ifndef EXO_GRAPH_KV_POOL_H
#define EXO_GRAPH_KV_POOL_H

#include "graph/builder.h"

/* Sets the plan's pool to `slots` sessions: from one cache per session (kv_slots 0) to pooled
 * (the slots INPUT is appended to the tensor table, so every other tensor keeps its id), from
 * one slot count to another, or back to one cache per session with slots = 0. EXO_ERR_NO_MEMORY
 * leaves the plan as it was. */
exo_status exo_graph_plan_pool_kv(exo_graph_plan *plan, uint32_t slots);

/* Bytes of one session's slot in one KV tensor of the plan (ctx x n_kv_heads x head_dim elements
 * of the plan's KV dtype). Everything that sizes or copies KV memory goes through this. */
uint64_t exo_graph_plan_kv_slot_bytes(const exo_graph_plan *plan);

/* Sets the dtype of every KV tensor of the plan (abi/exo_plugin.h, "KV cache dtypes", ABI 1.7):
 * F32, BF16 or F16. Like pooling, a transform of a built plan: nothing else depends on it. */
void exo_graph_plan_set_kv_dtype(exo_graph_plan *plan, exo_dtype dtype);

#endif
