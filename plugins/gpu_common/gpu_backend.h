/* gpu_backend.h — what a GPU plugin (OpenCL, Level Zero) gives the shared graph executor.
 *
 * The executor (gpu_graph.h) knows the graph IR and the kernels in kernels/ (OpenCL C): it validates
 * graphs, plans intermediates into one scratch allocation, and turns every node into kernel
 * launches (name, arguments, global and local sizes). The backend knows the vendor API: memory,
 * kernel objects and the queue. Only abi/exo_plugin.h and this header cross between them.
 *
 * Kernel argument convention (kernels/common.cl): a GPU_ARG_MEM argument is passed to the
 * kernel as TWO parameters, the buffer and a uint element offset (offset_bytes / element size
 * of the kernel's pointer type, computed by the executor), so backends need no sub-buffers. */
#ifndef EXO_GPU_BACKEND_H
#define EXO_GPU_BACKEND_H

#include "exo_plugin.h"

#include <stddef.h>
#include <stdint.h>

/* A backend's memory object (cl_mem wrapper, USM allocation); opaque to the executor. */
typedef struct gpu_mem gpu_mem;

typedef enum gpu_arg_kind {
    GPU_ARG_MEM = 0, /* two kernel parameters: mem, uint element offset */
    GPU_ARG_U32 = 1,
    GPU_ARG_I32 = 2,
    GPU_ARG_F32 = 3,
} gpu_arg_kind;

typedef struct gpu_arg {
    gpu_arg_kind kind;
    union {
        struct {
            gpu_mem *mem;
            uint32_t offset; /* in elements of the kernel parameter's type */
        } mem;
        uint32_t u32;
        int32_t i32;
        float f32;
    } v;
} gpu_arg;

/* The longest list: exo_dmv_mlx* (kernels/decode.cl: x, k, three members of words, scales,
 * biases, bias, has_bias, dst, n, the residual's two, glu, the RoPE + KV epilogue's nine, the
 * norm's five, q_type and group) is 42. */
#define GPU_MAX_ARGS 48

typedef struct gpu_launch {
    const char *kernel; /* kernel function name, e.g. "exo_matmul_vec_f16" */
    uint32_t n_args;
    gpu_arg args[GPU_MAX_ARGS];
    uint32_t dims;      /* 1..3 */
    size_t global[3];   /* total work-items per dimension (a multiple of local) */
    size_t local[3];    /* work-group size; the executor always sets it */
} gpu_launch;

/* What the executor may use on this device, chosen by the backend from its extensions; the
 * backend also builds the kernels with the matching -D switches (kernels/common.cl). */
typedef struct gpu_features {
    int subgroups;          /* EXO_SUBGROUPS kernels exist (exo_matmul_vec_sg_*) */
    /* Intel's kernels built into the program (kernels/matmul_intel.cl: GPU_INTEL_* bits of
     * gpu_intel.h, 0 unless EXO_GPU_XMX asks and the device has them) and their sub-group size. */
    uint32_t intel, intel_sub_group;
    uint32_t max_work_group; /* CL_DEVICE_MAX_WORK_GROUP_SIZE or equivalent */
    uint64_t max_alloc;     /* largest single allocation, bytes (0: unknown) */
    /* NVIDIA tensor-core prompt GEMM built into the program (kernels/matmul_mma.cl, EXO_NV_MMA):
     * the bf16 parts each activation is split into (2 or 3), 0 when it is not there. */
    uint32_t mma_parts;
    /* A batched step's bf16 matmuls of up to 8 tokens on the tensor cores too (kernels/
     * matvec_batch_mma.cl, exo_matmul_mmab8*; needs mma_parts): on by default where mma_parts
     * is (measured on an H100), EXO_GPU_MMA_BATCH=0 keeps the FMA kernels exo_matmul_vecb8*. */
    int mma_batch;
    /* Weight rows per work-group of those kernels: 16 or 32 (EXO_GPU_MMA_BATCH_ROWS, to
     * compare); 0: by the weight's rows (gpu_launch.c, gpu_matvec_mma_rows). */
    uint32_t mma_batch_rows;
    /* Weight rows per work-item of the one-token wide-load matvecs (exo_matmul_vec16*: 1, or 2
     * sharing x; 0 means the default, GPU_MATVEC_ROWS_DEFAULT in gpu_launch.h). */
    uint32_t matvec_rows;
    /* Token counts that take the batched-step matvecs (exo_matmul_vecb*, kernels/matvec_batch.cl):
     * from matvec_batch_min to matvec_batch_max, each at most GPU_MATVEC_BATCH_MAX_TOKENS; 0
     * means the defaults (gpu_launch.h). A min above the max turns them off (GEMM past 4). */
    uint32_t matvec_batch_min, matvec_batch_max;
    /* Items sharing a row group in those kernels (16..128, a power of two); 0: chosen per launch
     * (gpu_build_go_matvec_at). */
    uint32_t matvec_batch_lanes;
    /* EXO_GPU_DECODE_MATVEC=0 (one-token matmuls stay off exo_dmv_*) and EXO_GPU_FUSE_COMBINE=0
     * (the attention's combine keeps its own launch), to compare: gpu_fusion_read_env. */
    int no_dmv, no_combine_fusion;
    /* A batched step's o_proj merging the attention's splits on the tensor cores
     * (exo_matmul_mmab8*_att_bf16): EXO_GPU_FUSE_COMBINE_BATCH=1; off by default, as on an H100
     * it saved no time (docs/performance.md 7.10). */
    int combine_batch;
    /* The largest group of query heads a KV head the split decode attention takes in one
     * work-group (kernels/attention_gqa.cl: the variants the program holds, 8 in OpenCL C, 4 in
     * the SPIR-V module); larger groups keep one work-group per query head, as every group does
     * under EXO_GPU_ATT_GQA=0 (0 here), to compare. */
    uint32_t att_gqa_max;
    /* The exo_dmv_* choices, to compare (gpu_fusion_read_env): EXO_GPU_DMV_K2048=0 keeps the
     * 8,192-element staging for every k, EXO_GPU_DMV_NORM=0 leaves RMS norms out of exo_dmv_*
     * launches (their own launch), EXO_GPU_DMV_LANES items a row (32..256; 0: per launch). */
    int no_dmv_k2048, no_dmv_norm;
    uint32_t dmv_lanes;
    uint32_t dmv_chunks; /* EXO_GPU_DMV_CHUNKS: a row's 16-byte chunks per item, which set the lanes (0: 4) */
} gpu_features;
/* The most tokens the batched-step matvecs take (EXO_MVB_TOKENS_MAX in kernels/matvec_batch.cl). */
#define GPU_MATVEC_BATCH_MAX_TOKENS 16

typedef struct gpu_backend {
    const char *name;        /* "opencl", "level_zero": prefixes every message */
    const exo_host_api *host;
    void *ctx;               /* passed back to every call below */
    gpu_features features;
    /* Device memory for the executor's scratch. */
    exo_status (*mem_alloc)(void *ctx, uint64_t size, gpu_mem **out);
    void (*mem_free)(void *ctx, gpu_mem *mem);
    /* The memory behind a buffer the plugin handed out through buffer_alloc, and its size. NULL
     * when `buf` is not one of this backend's buffers. */
    gpu_mem *(*buffer_mem)(void *ctx, exo_buffer *buf, uint64_t *size);
    /* Blocking read (the executor reads index inputs — token ids, positions — to range-check
     * them before any kernel uses them). Must see every launch enqueued before it. */
    exo_status (*mem_read)(void *ctx, gpu_mem *mem, uint64_t offset, void *dst, uint64_t size);
    /* Blocking write of host data into device memory (compile time: the MoE expert tables),
     * in order after every launch enqueued before it. */
    exo_status (*mem_write)(void *ctx, gpu_mem *mem, uint64_t offset, const void *src, uint64_t size);
    /* Enqueues one kernel, in order after every earlier launch. */
    exo_status (*launch)(void *ctx, const gpu_launch *launch);
    /* Waits until every enqueued launch has finished (end of graph_execute). */
    exo_status (*finish)(void *ctx);
} gpu_backend;

#endif
