/* gpu_kernels.h — from one graph node to the kernel launches that compute it: which kernel of
 * kernels/ (by weight dtype, token count and device features), its arguments in the order of the
 * kernel's parameter list, and its global/local sizes. */
#ifndef EXO_GPU_KERNELS_H
#define EXO_GPU_KERNELS_H

#include "gpu_backend.h"

/* Where every tensor of the graph lives for the current execution. */
typedef struct gpu_exec_view {
    const gpu_backend *be;
    const exo_tensor *tensors;
    gpu_mem **mem;     /* per tensor */
    uint64_t *offset;  /* per tensor, bytes into mem */
    uint32_t n_tokens;
} gpu_exec_view;

/* Enqueues the launches of node `index`. The node passed validation at this token count. */
exo_status gpu_enqueue_node(const gpu_exec_view *v, const exo_node *nd, uint32_t index);

/* Token counts up to this use the matrix-vector kernels (weights read once per row). */
#define GPU_MATVEC_MAX_TOKENS 4 /* EXO_MV_MAX_M in kernels/matmul.cl */
/* Work-group sizes the kernels assume (kernels/); a device must allow GPU_MIN_WORK_GROUP. */
#define GPU_MIN_WORK_GROUP 256

#endif
