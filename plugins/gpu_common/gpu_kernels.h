/* gpu_kernels.h — from one graph node to the kernel launches that compute it: which kernel of
 * kernels/ (by weight dtype, token count and device features), its arguments in the order of the
 * kernel's parameter list, and its global/local sizes. */
#ifndef EXO_GPU_KERNELS_H
#define EXO_GPU_KERNELS_H

#include "gpu_backend.h"

#include <stdbool.h>

/* Where every tensor of the graph lives for the current execution. */
typedef struct gpu_exec_view {
    const gpu_backend *be;
    const exo_tensor *tensors;
    gpu_mem **mem;     /* per tensor */
    uint64_t *offset;  /* per tensor, bytes into mem */
    uint32_t n_tokens;
    /* Split decode attention (exo_attention_split + exo_attention_combine): room for the
     * per-split states of GPU_ATT_MAX_SPLITS splits of every head (NULL: not available), and
     * token 0's position for the node being enqueued (-1: not known on the host). */
    gpu_mem *attn_partials;
    int64_t attn_position;
} gpu_exec_view;

/* Enqueues the launches of node `index`. The node passed validation at this token count. */
exo_status gpu_enqueue_node(const gpu_exec_view *v, const exo_node *nd, uint32_t index);

/* Matmuls that share their input (graph_matmul_group_length) as one launch of
 * exo_matmul_vec16x3_*: when they are matrix-vector sized, of one weight dtype, aligned for the
 * wide loads, and the device takes that kernel (not the subgroup one). */
#define GPU_MATMUL_GROUP_MAX 3
bool gpu_matmul_group_fits(const gpu_exec_view *v, const exo_node *nodes, uint32_t count);
/* norm: the RMS_NORM whose output is the group's input, folded in (gpu_norm_fits), or NULL. */
exo_status gpu_enqueue_matmul_group(const gpu_exec_view *v, const exo_node *nodes, uint32_t count,
                                    const exo_node *norm);

/* The RMS_NORM that makes the input of a fused matvec run (nodes[0..count-1], writing `out`
 * when it ends in a GLU, else their own outputs) folded into that run's launch: each
 * work-group recomputes the norm of the one token's row, as exo_rms_norm would. When the run
 * takes one token, the weight and x are aligned for the wide loads, and no output overlaps the
 * raw x. The executor checks that nothing else reads the norm's output. */
bool gpu_norm_fits(const gpu_exec_view *v, const exo_node *norm, const exo_node *nodes, uint32_t count,
                   uint32_t out);

/* A matmul and the residual ADD that consumes it (add = mm's output + a same-shaped tensor) as
 * one launch of exo_matmul_vec16_* writing add's output: when the matmul takes that kernel and
 * add's output does not overlap x. The executor checks that nothing else reads mm's output. */
bool gpu_matmul_add_fits(const gpu_exec_view *v, const exo_node *mm, const exo_node *add);

/* n[0], n[1] = the gate and up matmuls (a group of two sharing x), n[2] = the GLU of their
 * outputs, as one launch of exo_matmul_vec16_glu_* for one token. The executor checks that
 * nothing else reads the gate and up outputs. */
#define GPU_MATMUL_GLU_NODES 3
bool gpu_matmul_glu_fits(const gpu_exec_view *v, const exo_node *n);
exo_status gpu_enqueue_matmul_glu(const gpu_exec_view *v, const exo_node *n, const exo_node *norm);

/* n[0..3] = ROPE of q, ROPE of k, KV_WRITE of the roped k, KV_WRITE of v (same positions and
 * RoPE parameters) as one launch of exo_rope_kv, the roped k going straight into the cache.
 * The executor checks that nothing else reads the roped k. */
#define GPU_ROPE_KV_NODES 4
bool gpu_rope_kv_fits(const gpu_exec_view *v, const exo_node *n);
exo_status gpu_enqueue_rope_kv(const gpu_exec_view *v, const exo_node *n);
exo_status gpu_enqueue_matmul_add(const gpu_exec_view *v, const exo_node *mm, const exo_node *add);

/* Token counts up to this use the matrix-vector kernels (weights read once per row). */
#define GPU_MATVEC_MAX_TOKENS 4 /* EXO_MV_MAX_M in kernels/matmul.cl */
/* Most splits of one head's cache rows in a decode step (each a work-group of EXO_ATT_TILE). */
#define GPU_ATT_MAX_SPLITS 32
#define GPU_ATT_TILE 64 /* EXO_ATT_TILE in kernels/attention.cl */
/* Floats of partial state the split decode attention needs for a node with these heads. */
#define GPU_ATT_PARTIAL_FLOATS(n_heads, head_dim) ((uint64_t)(n_heads) * GPU_ATT_MAX_SPLITS * ((uint64_t)(head_dim) + 2))

/* Work-group sizes the kernels assume (kernels/); a device must allow GPU_MIN_WORK_GROUP. */
#define GPU_MIN_WORK_GROUP 256

#endif
