/* mma.c — whether an OpenCL device gets the tensor-core prompt GEMM (kernels/matmul_mma.cl), and
 * a batched step's bf16 matmuls on them (kernels/matvec_batch_mma.cl): an NVIDIA device of
 * compute capability 8.0 or newer (mma.sync with bf16 operands), whose OpenCL compiler takes
 * inline PTX. The program is then built with -DEXO_NV_MMA; if that build fails
 * (program.c), it is built again without, and the executor keeps the FMA GEMM.
 *
 * EXO_GPU_MMA=0 turns it off (to compare); EXO_GPU_MMA_PARTS=2 splits each activation into two
 * bf16 parts instead of three (faster, ~2^-17 relative error per product; see the kernel; the
 * batched-step kernels always take three). A batched step's bf16 matmuls of 5-8 rows go on the
 * tensor cores too (on an H100 an 8-row 1B step 2.88-2.96 -> 2.40-2.41 ms, docs/performance.md
 * 7.8); EXO_GPU_MMA_BATCH=0 keeps them on the FMA kernels (to compare), and
 * EXO_GPU_MMA_BATCH_ROWS=16|32 fixes their work-groups' weight rows (by the weight otherwise).
 * EXO_GPU_MMA=emulate builds the same kernels on any device with the warp's product computed
 * through local memory (EXO_MMA_EMULATE), so the tests check the fragment layouts and the host's
 * launches on PoCL. */
#include "ocl_plugin.h"

#include <stdio.h>
#include <string.h>

#define MMA_DEFINE " -DEXO_NV_MMA"
#define MMA_EMULATE_DEFINE " -DEXO_NV_MMA -DEXO_MMA_EMULATE"

void ocl_mma_choose(ocl_runtime *rt, const ocl_device *dev) {
    exo_plugin_ctx *ctx = rt->ctx;
    const char *off = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_MMA");
    const char *kernels = ctx->host->get_env(ctx->host->host_ctx, "EXO_OPENCL_KERNELS");
    const char *parts = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_MMA_PARTS");
    unsigned sm = 0; /* compute capability as describe.c writes it: sm_90 for 9.0 */
    rt->backend.features.mma_parts = 0;
    rt->backend.features.mma_batch = 0;
    if ((off && strcmp(off, "0") == 0) || (kernels && strcmp(kernels, "portable") == 0)) return;
    int emulate = off && strcmp(off, "emulate") == 0;
    if (!emulate && (sscanf(dev->report.isa, "sm_%u", &sm) != 1 || sm < 80)) return;
    const char *define = emulate ? MMA_EMULATE_DEFINE : MMA_DEFINE;
    size_t len = strlen(rt->build_options);
    if (len + strlen(define) + 1 > sizeof rt->build_options) return;
    memcpy(rt->build_options + len, define, strlen(define) + 1);
    rt->backend.features.mma_parts = parts && strcmp(parts, "2") == 0 ? 2 : 3;
    const char *batch = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_MMA_BATCH");
    rt->backend.features.mma_batch = !(batch && strcmp(batch, "0") == 0);
    const char *rows = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_MMA_BATCH_ROWS");
    rt->backend.features.mma_batch_rows = 0;
    if (rows && (strcmp(rows, "16") == 0 || strcmp(rows, "32") == 0))
        rt->backend.features.mma_batch_rows = (uint32_t)(rows[0] == '1' ? 16 : 32);
    else if (rows)
        ocl_log(ctx, EXO_LOG_WARN, "EXO_GPU_MMA_BATCH_ROWS=%s ignored: expected 16 or 32", rows);
    ocl_log(ctx, EXO_LOG_INFO, "device %u (%s): tensor-core prompt GEMM%s%s, activations in %u bf16 parts", rt->index,
            dev->report.isa, rt->backend.features.mma_batch ? " and batched-step bf16 matmuls" : "",
            emulate ? " (emulated)" : "", rt->backend.features.mma_parts);
}

int ocl_mma_drop(ocl_runtime *rt) {
    char *at = strstr(rt->build_options, MMA_DEFINE);
    if (!at) return 0;
    size_t cut = strstr(at, MMA_EMULATE_DEFINE) == at ? strlen(MMA_EMULATE_DEFINE) : strlen(MMA_DEFINE);
    memmove(at, at + cut, strlen(at + cut) + 1);
    rt->backend.features.mma_parts = 0;
    return 1;
}
