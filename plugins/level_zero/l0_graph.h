/* l0_graph.h — a compiled graph on a Level Zero device: the shared executor's state, the
 * backend table it calls (graph.c), and the command list the launches are recorded into
 * (recorder.c). */
#ifndef EXO_L0_GRAPH_H
#define EXO_L0_GRAPH_H

#include "l0_internal.h"

#include "gpu_backend.h"
#include "gpu_graph.h"

typedef struct exo_compiled l0_compiled;

/* One launch as collected, with the device address behind each memory argument. The kernel
 * name is copied (the executor's may live on its stack); l.kernel is not used once collected. */
typedef struct l0_launch {
    gpu_launch l;
    char name[64];
    void *ptr[GPU_MAX_ARGS];
} l0_launch;

struct exo_compiled {
    uint32_t magic;
    exo_plugin_ctx *ctx;
    l0_device *dev;
    gpu_backend be;          /* ctx = this struct */
    gpu_compiled *graph;
    ze_command_list_handle_t list;
    ze_fence_handle_t fence;
    bool list_valid;         /* `list` is closed and holds `recorded` */
    l0_launch *recorded, *pending;
    uint32_t n_recorded, cap_recorded, n_pending, cap_pending;
    uint64_t records, replays;
};

/* gpu_backend.launch / finish (recorder.c). */
exo_status l0_recorder_launch(void *ctx, const gpu_launch *launch);
exo_status l0_recorder_finish(void *ctx);

exo_status l0_supports_graph(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                             uint32_t *first_unsupported);
exo_status l0_graph_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, exo_compiled **out);
exo_status l0_graph_execute(exo_compiled *compiled, const exo_exec_args *args);
void l0_compiled_free(exo_compiled *compiled);

#endif
