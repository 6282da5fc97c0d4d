/* graph_target.h — what a plugin tells the shared graph code about itself: its name and host
 * table (every message goes out as "<name> <message>" through host->set_error), what its kernels
 * can read, and where the memory behind its buffers lies. The IR contract is the same for every
 * plugin; these fields are exactly where the CPU and GPU plugins differ. */
#ifndef EXO_GRAPH_TARGET_H
#define EXO_GRAPH_TARGET_H

#include "exo_plugin.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct graph_target {
    const char *name;          /* "cpu_amx", "opencl", "level_zero" */
    const exo_host_api *host;
    /* Dtypes the kernels read where the IR leaves a choice (weights, embedding tables, norm and
     * bias-like operands, copies): a mask of GRAPH_DTYPE_BIT(). The GPU kernels have no Q8_0
     * (yet): graphs with such weights are refused as UNSUPPORTED, naming the node. */
    uint32_t dtypes;
    /* The most elements one tensor may hold and the furthest element of a buffer a tensor may
     * reach; 0: no limit. GPU kernels index with 32-bit integers (kernels/common.cl). */
    uint64_t max_elements;
    /* The largest attention head_dim the kernels take; 0: no limit. */
    uint32_t max_head_dim;
    /* The memory behind `buf`: its size in bytes and the address its offsets count from, for
     * alignment checks (0 where the base is a device allocation, which is always aligned).
     * Returns false when `buf` is not one of this plugin's buffers. */
    bool (*buffer_span)(const void *user, exo_buffer *buf, uint64_t *size, uintptr_t *base);
    const void *user;          /* passed back to buffer_span */
    /* The kernels run the mixture-of-experts ops (EXO_OP_MOE_*, ABI 1.4). False (a target that
     * does not say): graphs with them are refused as UNSUPPORTED, naming the node, so the core
     * falls back down the ranking (to the CPU). */
    bool moe;
    /* The kernels run the ABI 1.5 additions (gpt_oss, glm4_moe): routing rules SIGMOID_BIAS
     * and TOPK_SOFTMAX, MOE_MATMUL's expert bias, ATTENTION's sinks, EXO_ACT_SWIGLU_CLAMP.
     * False: nodes using them are refused as UNSUPPORTED, naming the node and the feature. */
    bool moe_1_5;
    /* The kernels run pooled KV caches (ABI 1.6, "Pooled KV caches"): KV_WRITE and ATTENTION
     * over 4-D caches with a per-token slots source. False: such nodes are refused as
     * UNSUPPORTED, naming the node, and the core steps a batch's sequences one after another. */
    bool kv_pool;
    /* KV cache dtypes beyond F32 that the KV_WRITE and ATTENTION kernels take (ABI 1.7, "KV
     * cache dtypes"): a mask of GRAPH_DTYPE_BIT() of BF16 and F16. 0 (a target that does not
     * say): F32 caches only; others are refused as UNSUPPORTED, naming the node, and the core
     * gives the plugin F32 caches. */
    uint32_t kv_dtypes;
} graph_target;

/* Records an error through the host table as "<target name> <message>" and returns status. */
exo_status graph_fail(const graph_target *target, exo_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
exo_status graph_failv(const graph_target *target, exo_status status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
