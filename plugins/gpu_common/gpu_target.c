/* gpu_target.c — see gpu_target.h. */
#include "gpu_target.h"

#include "graph_ir.h"

/* Device memory: offsets count from the allocation's start, which the driver aligns. */
static bool device_buffer_span(const void *user, exo_buffer *buf, uint64_t *size, uintptr_t *base) {
    const gpu_backend *be = user;
    *base = 0;
    return be->buffer_mem(be->ctx, buf, size) != NULL;
}

graph_target gpu_graph_target(const gpu_backend *be) {
    return (graph_target){.name = be->name,
                          .host = be->host,
                          /* No Q8_0 kernels yet: such a graph is refused in supports_graph and
                           * the shard falls back down the ranking. MLX_AFFINE weights run
                           * packed (exo_matmul_*_mlx, exo_get_rows_mlx). */
                          .dtypes = GRAPH_DTYPES_ALL & ~GRAPH_DTYPE_BIT(EXO_DTYPE_Q8_0),
                          .max_elements = UINT32_MAX, /* kernels/common.cl indexes with uint */
                          .max_head_dim = GPU_MAX_HEAD_DIM,
                          .buffer_span = device_buffer_span,
                          .user = be,
                          /* kernels/moe.cl: the four MoE ops, every routing rule, expert biases;
                           * attention sinks and the clamped SwiGLU in attention.cl/elementwise.cl. */
                          .moe = true,
                          .moe_1_5 = true,
                          /* Pooled KV caches (ABI 1.6): every kernel that reads or writes a
                           * cache takes the per-token slots (kernels/common.cl, exo_slot_row0). */
                          .kv_pool = true,
                          /* KV caches of bf16 and f16 (ABI 1.7): the same kernels per cache
                           * dtype (kernels/common.cl, EXO_KV_VARIANTS), rounding to nearest even
                           * on write and widening exactly on read. */
                          .kv_dtypes = GRAPH_DTYPE_BIT(EXO_DTYPE_BF16) | GRAPH_DTYPE_BIT(EXO_DTYPE_F16)};
}

exo_status gpu_fail(const gpu_backend *be, exo_status status, const char *fmt, ...) {
    graph_target target = gpu_graph_target(be);
    va_list ap;
    va_start(ap, fmt);
    exo_status st = graph_failv(&target, status, fmt, ap);
    va_end(ap);
    return st;
}
