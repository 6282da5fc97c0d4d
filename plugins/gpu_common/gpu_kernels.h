/* gpu_kernels.h — from one graph node to the kernel launches that compute it: which kernel of
 * kernels/ (by weight dtype, token count and device features), its arguments in the order of the
 * kernel's parameter list, and its global/local sizes. Runs of nodes computed by one launch are
 * gpu_fusions.h's. */
#ifndef EXO_GPU_KERNELS_H
#define EXO_GPU_KERNELS_H

#include "gpu_launch.h"

/* Enqueues the launches of node `index`. The node passed validation at this token count. */
exo_status gpu_enqueue_node(const gpu_exec_view *v, const exo_node *nd, uint32_t index);

/* Most splits of one head's cache rows in a decode step (each a work-group of EXO_ATT_TILE). */
#define GPU_ATT_MAX_SPLITS 32
#define GPU_ATT_TILE 64 /* EXO_ATT_TILE in kernels/attention.cl */
/* Floats of partial state the split decode attention needs for a node with these heads. */
#define GPU_ATT_PARTIAL_FLOATS(n_heads, head_dim) ((uint64_t)(n_heads) * GPU_ATT_MAX_SPLITS * ((uint64_t)(head_dim) + 2))

/* Work-group sizes the kernels assume (kernels/); a device must allow GPU_MIN_WORK_GROUP. */
#define GPU_MIN_WORK_GROUP 256

#endif
