/* gpu_fusions.h — the runs of graph nodes the GPU executor computes as one kernel launch. A
 * decode step is bound by launches more than by arithmetic, so each launch saved counts; every
 * fusion is one entry of one table: how compile finds its run (detect), whether an execution
 * takes its kernel (fits), its launch (enqueue), and which input that launch reads until the
 * run's last node (keep: the scratch planner is told to keep it live that long). The executor
 * (gpu_graph.c) tries the entries at each node in table order; a run that does not fit an
 * execution runs node by node. Adding a fusion is adding an entry (README.md). */
#ifndef EXO_GPU_FUSIONS_H
#define EXO_GPU_FUSIONS_H

#include "gpu_launch.h"

typedef struct gpu_fusion {
    const char *name; /* the fused kernel's family, e.g. "exo_rope_kv" */
    /* Compile: how many nodes from node i on this fusion may compute as one launch (>= 2), or 0.
     * From the graph alone: the ops, what they read, and that nothing outside the run reads an
     * intermediate the launch never writes. */
    uint32_t (*detect)(const exo_graph *g, uint32_t i);
    /* Execute: whether run[0 .. len-1] (after `norm`, the RMS_NORM folded in, or NULL) take the
     * fused kernel at this execution's token count, tensor placement and device. */
    bool (*fits)(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm);
    exo_status (*enqueue)(const gpu_exec_view *v, const exo_node *run, uint32_t len, const exo_node *norm);
    /* Source keep_src of run node keep_node is still read while the launch writes the output of
     * the run's last node, so it must live through that node (keep_src < 0: nothing to keep). */
    int8_t keep_node, keep_src;
    /* An RMS_NORM just before the run, whose output only the run reads, may fold into the
     * launch: each work-group recomputes the norm of the one token's row. */
    bool folds_norm;
} gpu_fusion;

#define GPU_FUSION_COUNT 7
extern const gpu_fusion gpu_fusions[GPU_FUSION_COUNT];

/* Compile: whether the RMS_NORM at node i may fold into the run of `len` nodes that starts at
 * node i + 1 (nothing else reads the norm's output). */
bool gpu_fusion_norm_detect(const exo_graph *g, uint32_t i, uint32_t len);

/* The fusion switches of be->features a backend reads from the environment when it sets up
 * (EXO_GPU_DECODE_MATVEC, EXO_GPU_FUSE_COMBINE): once, not on the hot path, and through the host's
 * get_env like every other setting. */
void gpu_fusion_read_env(gpu_backend *be);

#endif
