/* gpu_check.h — validation of a graph against the IR's contract (abi/exo_plugin.h) and against
 * what the GPU kernels implement; shape resolution and tensor sizes. */
#ifndef EXO_GPU_CHECK_H
#define EXO_GPU_CHECK_H

#include "gpu_backend.h"

#include <string.h>

#define GPU_NAME_ARG(t) (int)strnlen((t)->name, EXO_TENSOR_NAME_MAX), (t)->name
#define GPU_MAX_HEAD_DIM 512 /* EXO_ATT_MAX_DIM in kernels/attention.cl */

/* Records an error through the backend's host table, prefixed with the backend's name. */
exo_status gpu_fail(const gpu_backend *be, exo_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *gpu_op_name(exo_op op);
const char *gpu_dtype_name(exo_dtype dtype);
/* Bytes per element for element-addressed dtypes (0 for Q8_0, which is block-addressed). */
uint32_t gpu_dtype_size(exo_dtype dtype);

/* ne with EXO_DIM_TOKENS replaced by n_tokens and missing dims as 1; returns the element count. */
int64_t gpu_resolve_shape(const exo_tensor *t, uint32_t n_tokens, int64_t ne[EXO_MAX_DIMS]);
uint64_t gpu_tensor_bytes(const exo_tensor *t, uint32_t n_tokens);

/* Header, tensor table (ids, dims, dtypes, roles, weight bounds) and write-before-read order.
 * On failure *bad_node is the node at fault, or UINT32_MAX for a tensor-table error. */
exo_status gpu_check_graph_structure(const gpu_backend *be, const exo_graph *g, uint32_t *bad_node);
/* One node's op contract at n_tokens: EXO_ERR_UNSUPPORTED for what the GPU kernels do not
 * implement, EXO_ERR_INVALID_ARG for graphs that break the contract. */
exo_status gpu_check_node(const gpu_backend *be, const exo_graph *g, uint32_t index, uint32_t n_tokens);

#endif
