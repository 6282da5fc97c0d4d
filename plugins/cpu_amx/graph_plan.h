/* Scratch planning: every intermediate tensor (no role flags) gets a 64-byte aligned offset in
 * one scratch block sized for max_tokens; tensors whose lifetimes (first write .. last read, in
 * node order) do not overlap share memory. */
#ifndef EXO_CPU_GRAPH_PLAN_H
#define EXO_CPU_GRAPH_PLAN_H

#include "cpu_plugin.h"

#define CPU_NOT_PLANNED UINT64_MAX

/* offsets has n_tensors entries: CPU_NOT_PLANNED for role tensors and unused intermediates.
 * Expects a graph that passed cpu_check_graph_structure. */
exo_status cpu_plan_scratch(exo_plugin_ctx *ctx, const exo_graph *g, uint64_t *offsets, uint64_t *total);

#endif
