/* gpu_moe.h — the mixture-of-experts ops on the GPU (kernels/moe.cl): the expert tables a
 * compiled graph keeps on the device, and the launches of MOE_TOPK, MOE_WEIGHTS, MOE_MATMUL and
 * MOE_COMBINE.
 *
 * A MOE_MATMUL's experts are E weights, each at its own (buffer, offset) (a table of tensors)
 * or evenly spaced in one stacked tensor. Kernels take one buffer per operand, so compile
 * groups a node's experts by the buffers they live in (weights, scales, biases; almost always
 * one group) and writes, per group, a device table of their element offsets, EXO_MOE_ABSENT
 * for the other groups' experts: one launch per group, the ids read on the device. */
#ifndef EXO_GPU_MOE_H
#define EXO_GPU_MOE_H

#include "gpu_launch.h"

/* Most experts a routing or expert-matmul node may have (EXO_MOE_MAX_E in kernels/moe.cl: the
 * top-k's taken mask and the prefill sort's counters). */
#define GPU_MOE_MAX_EXPERTS 512

typedef struct gpu_moe_group {
    gpu_mem *w, *scales, *biases; /* scales/biases: the weight's own memory for float experts */
    uint32_t table;               /* its table's first uint in the plan's table memory */
} gpu_moe_group;

typedef struct gpu_moe_plan {
    uint32_t *first, *count; /* per node: its groups (MOE_MATMUL nodes only) */
    gpu_moe_group *groups;
    uint32_t n_groups;
    gpu_mem *tables;        /* every group's table, 3 uints per expert */
    gpu_mem *work;          /* prefill: the sorted rows and tiles (exo_moe_sort), shared by the nodes */
    uint64_t work_uints;
} gpu_moe_plan;

/* Builds the tables of every MOE_MATMUL node of a validated graph (mem/offset: each tensor's
 * memory and byte offset) and the prefill work area for max_tokens. */
exo_status gpu_moe_plan_build(const gpu_backend *be, const exo_tensor *tensors, const exo_node *nodes, uint32_t n_nodes,
                              gpu_mem *const *mem, const uint64_t *offset, uint32_t max_tokens, gpu_moe_plan *plan);
void gpu_moe_plan_free(const gpu_backend *be, gpu_moe_plan *plan);

/* The launches of MoE node `index` (a MOE_* op that passed validation at this token count). */
exo_status gpu_moe_enqueue(const gpu_exec_view *v, const exo_node *nd, uint32_t index);

#endif
