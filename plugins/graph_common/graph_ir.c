/* graph_ir.c — IR facts (see graph_ir.h). */
#include "graph_ir.h"

const char *graph_op_name(exo_op op) {
    static const char *names[EXO_OP_COUNT] = {"GET_ROWS", "RMS_NORM", "MATMUL",    "ADD",     "MUL",  "GLU",
                                              "ROPE",     "KV_WRITE", "ATTENTION", "SOFTCAP", "COPY"};
    return op >= 0 && op < EXO_OP_COUNT ? names[op] : "UNKNOWN";
}

const char *graph_dtype_name(exo_dtype dtype) {
    static const char *names[EXO_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "Q8_0"};
    return dtype >= 0 && dtype < EXO_DTYPE_COUNT ? names[dtype] : "UNKNOWN";
}

uint32_t graph_dtype_size(exo_dtype dtype) {
    switch (dtype) {
    case EXO_DTYPE_F32:
    case EXO_DTYPE_I32: return 4;
    case EXO_DTYPE_F16:
    case EXO_DTYPE_BF16: return 2;
    default: return 0;
    }
}

uint32_t graph_dtype_align(exo_dtype dtype) {
    uint32_t size = graph_dtype_size(dtype);
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
    return (uint64_t)n * graph_dtype_size(t->dtype);
}

uint32_t graph_matmul_group_length(const exo_node *nodes, uint32_t n_nodes, uint32_t first, uint32_t max) {
    if (nodes[first].op != EXO_OP_MATMUL) return 0;
    uint32_t input = nodes[first].src[0], n = 1;
    while (first + n < n_nodes && n < max && nodes[first + n].op == EXO_OP_MATMUL && nodes[first + n].src[0] == input)
        n++;
    return n;
}
