/* graph_ir.c — IR facts (see graph_ir.h). */
#include "graph_ir.h"

const char *graph_op_name(exo_op op) {
    static const char *names[EXO_OP_COUNT] = {"GET_ROWS", "RMS_NORM", "MATMUL",    "ADD",     "MUL",  "GLU",
                                              "ROPE",     "KV_WRITE", "ATTENTION", "SOFTCAP", "COPY",
                                              "MOE_TOPK", "MOE_WEIGHTS", "MOE_MATMUL", "MOE_COMBINE", "ARGMAX"};
    return op >= 0 && op < EXO_OP_COUNT ? names[op] : "UNKNOWN";
}

uint32_t graph_dtype_align(exo_dtype dtype) {
    if (dtype == EXO_DTYPE_MLX_AFFINE) return 4; /* uint32 words */
    uint32_t size = exo_dtype_size(dtype);
    return size ? size : 2;
}

int64_t graph_resolve_shape(const exo_tensor *t, uint32_t n_tokens, int64_t ne[EXO_MAX_DIMS]) {
    int64_t n = 1;
    for (uint32_t d = 0; d < EXO_MAX_DIMS; d++) {
        ne[d] = d < t->n_dims ? (t->ne[d] == EXO_DIM_TOKENS ? (int64_t)n_tokens : t->ne[d]) : 1;
        n *= ne[d];
    }
    return n;
}

uint64_t graph_tensor_bytes(const exo_tensor *t, uint32_t n_tokens) {
    int64_t ne[EXO_MAX_DIMS];
    int64_t n = graph_resolve_shape(t, n_tokens, ne);
    if (t->dtype == EXO_DTYPE_Q8_0) return (uint64_t)(n / GRAPH_Q8_0_BLOCK) * GRAPH_Q8_0_BYTES;
    if (t->dtype == EXO_DTYPE_MLX_AFFINE) return (uint64_t)n / 8 * t->q_bits; /* ne[0] is a multiple of 32 */
    return (uint64_t)n * exo_dtype_size(t->dtype);
}

uint32_t graph_matmul_group_length(const exo_graph *g, uint32_t first, uint32_t max) {
    if (exo_graph_node(g, first)->op != EXO_OP_MATMUL) return 0;
    uint32_t input = exo_graph_node(g, first)->src[0], n = 1;
    while (first + n < g->n_nodes && n < max && exo_graph_node(g, first + n)->op == EXO_OP_MATMUL &&
           exo_graph_node(g, first + n)->src[0] == input)
        n++;
    return n;
}

/* One element of `size` bytes in this header's layout from one `stride` bytes apart. */
static void copy_element(void *dst, size_t size, const void *src, size_t stride) {
    size_t n = stride < size ? stride : size;
    memcpy(dst, src, n);
    memset((char *)dst + n, 0, size - n);
}

void graph_copy_tables(const exo_graph *g, exo_tensor *tensors, exo_node *nodes) {
    for (uint32_t i = 0; i < g->n_tensors; i++)
        copy_element(&tensors[i], sizeof *tensors, exo_graph_tensor(g, i), exo_graph_tensor_stride(g));
    for (uint32_t i = 0; i < g->n_nodes; i++)
        copy_element(&nodes[i], sizeof *nodes, exo_graph_node(g, i), exo_graph_node_stride(g));
}
