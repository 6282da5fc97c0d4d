/* graph_ir.h — facts of the graph IR (abi/exo_plugin.h) every plugin needs: op names, a
 * tensor's shape at a token count and its size in bytes. (Dtype names and element sizes are
 * exo_dtype_name / exo_dtype_size of abi/exo_types.h, shared with the core.) */
#ifndef EXO_GRAPH_IR_H
#define EXO_GRAPH_IR_H

#include "exo_plugin.h"

#include <stdint.h>
#include <string.h>

/* printf arguments for "%.*s": tensor names need not be NUL-terminated in the IR. */
#define GRAPH_NAME_ARG(t) (int)strnlen((t)->name, EXO_TENSOR_NAME_MAX), (t)->name

/* Q8_0 (ggml's layout): blocks of 32 int8 values and one f16 scale, 34 bytes. */
#define GRAPH_Q8_0_BLOCK 32
#define GRAPH_Q8_0_BYTES 34

/* A dtype as a bit of a dtype mask (graph_target.dtypes, the validator's dtype rules). */
#define GRAPH_DTYPE_BIT(d) (1u << (d))
#define GRAPH_DTYPES_ALL ((1u << EXO_DTYPE_COUNT) - 1u)

const char *graph_op_name(exo_op op);
/* The alignment a tensor's data needs: its element size, 2 (the f16 scale) for Q8_0, 4 (uint32
 * words) for MLX_AFFINE. */
uint32_t graph_dtype_align(exo_dtype dtype);

/* ne with EXO_DIM_TOKENS replaced by n_tokens and missing dims as 1; returns the element count. */
int64_t graph_resolve_shape(const exo_tensor *t, uint32_t n_tokens, int64_t ne[EXO_MAX_DIMS]);
/* Bytes of the tensor's data; an MLX_AFFINE tensor must have passed the validator (q_bits read). */
uint64_t graph_tensor_bytes(const exo_tensor *t, uint32_t n_tokens);

/* How many consecutive MATMUL nodes from `first` on read the same input tensor (1 if the node
 * starts no group, 0 if it is not a matmul), at most `max`: the q/k/v projections, gate and up.
 * Such nodes read only that input and their weights, so running them together (one thread-pool
 * job, one kernel launch) is the same computation. */
uint32_t graph_matmul_group_length(const exo_graph *g, uint32_t first, uint32_t max);

/* Copies the graph's tensor and node tables into the plugin's own arrays of this header's
 * layout (n_tensors and n_nodes elements), whatever strides the graph has: members the graph's
 * elements lack read as 0, members this header lacks are dropped. */
void graph_copy_tables(const exo_graph *g, exo_tensor *tensors, exo_node *nodes);

#endif
