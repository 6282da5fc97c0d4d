/* gpu_target.h — the GPU plugins in the terms of the shared graph code (plugins/graph_common):
 * what the kernels of kernels/ implement (no Q8_0 yet, head_dim <= GPU_MAX_HEAD_DIM, 32-bit
 * element indexing), weights and bindings in the backend's device memory, and errors prefixed
 * with the backend's name. */
#ifndef EXO_GPU_TARGET_H
#define EXO_GPU_TARGET_H

#include "gpu_backend.h"
#include "graph_target.h"

#define GPU_MAX_HEAD_DIM 512 /* EXO_ATT_MAX_DIM in kernels/attention.cl */
#define GPU_ALIGN 256        /* scratch offsets: every intermediate on its own memory transactions */

graph_target gpu_graph_target(const gpu_backend *be);

/* Records an error through the backend's host table, prefixed with the backend's name. */
exo_status gpu_fail(const gpu_backend *be, exo_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
