/* graph.c — graphs on a Level Zero device through the shared executor (plugins/gpu_common):
 * it validates, plans intermediates and picks kernels; this file gives it memory, buffers and
 * the recorder (recorder.c) as its gpu_backend. The SPIR-V module is built here, at compile
 * time, so a build failure makes the core fall back before any session holds state. */
#include "l0_graph.h"

#include "gpu_fusions.h"
#include "gpu_kernels.h"

#include <string.h>

#define L0_COMPILED_MAGIC 0x6c30636du /* "l0cm" */

static exo_status be_mem_alloc(void *ctxp, uint64_t size, gpu_mem **out) {
    l0_compiled *c = ctxp;
    *out = NULL;
    l0_mem *m = c->ctx->host->alloc(c->ctx->host->host_ctx, sizeof *m);
    if (!m) return l0_error(c->ctx, c->dev, EXO_ERR_NO_MEMORY, "graph scratch: out of host memory");
    exo_status st = l0_mem_alloc(c->ctx, c->dev, size, "the graph's intermediates", m);
    if (st != EXO_OK) {
        c->ctx->host->free(c->ctx->host->host_ctx, m);
        return st;
    }
    *out = (gpu_mem *)m;
    return EXO_OK;
}

static void be_mem_free(void *ctxp, gpu_mem *mem) {
    l0_compiled *c = ctxp;
    if (!mem) return;
    l0_mem_free(c->ctx, c->dev, (l0_mem *)mem);
    c->ctx->host->free(c->ctx->host->host_ctx, mem);
}

static gpu_mem *be_buffer_mem(void *ctxp, exo_buffer *buf, uint64_t *size) {
    l0_compiled *c = ctxp;
    l0_mem *m = l0_buffer_mem(buf, c->dev);
    if (m && size) *size = m->size;
    return (gpu_mem *)m;
}

static exo_status be_mem_read(void *ctxp, gpu_mem *mem, uint64_t offset, void *dst, uint64_t size) {
    l0_compiled *c = ctxp;
    exo_status st = l0_recorder_finish(c); /* the read must see every launch before it */
    if (st != EXO_OK) return st;
    const l0_mem *m = (const l0_mem *)mem;
    if (!m || offset > m->size || size > m->size - offset)
        return l0_error(c->ctx, c->dev, EXO_ERR_INVALID_ARG, "reading device memory outside its allocation");
    return l0_copy(c->ctx, c->dev, dst, (const char *)m->ptr + offset, size, "reading index inputs");
}

static exo_status be_mem_write(void *ctxp, gpu_mem *mem, uint64_t offset, const void *src, uint64_t size) {
    l0_compiled *c = ctxp;
    exo_status st = l0_recorder_finish(c); /* after every launch before it */
    if (st != EXO_OK) return st;
    const l0_mem *m = (const l0_mem *)mem;
    if (!m || offset > m->size || size > m->size - offset)
        return l0_error(c->ctx, c->dev, EXO_ERR_INVALID_ARG, "writing device memory outside its allocation");
    return l0_copy(c->ctx, c->dev, (char *)m->ptr + offset, src, size, "writing the graph's tables");
}

/* What the executor may assume about this device. The module is the portable build (no
 * subgroups, no fp16 arithmetic), which every Level Zero GPU runs. */
static void fill_backend(gpu_backend *be, exo_plugin_ctx *ctx, l0_device *dev, void *backend_ctx) {
    memset(be, 0, sizeof *be);
    be->name = "level_zero";
    be->host = ctx->host;
    be->ctx = backend_ctx;
    be->features.subgroups = 0;
    be->features.intel = dev->exec.intel_kernels; /* module.c: only with EXO_GPU_XMX */
    be->features.intel_sub_group = dev->exec.intel_sub_group;
    be->features.max_work_group = dev->have_compute ? dev->compute.maxTotalGroupSize : 256;
    be->features.max_alloc = dev->exec.relaxed_alloc ? 0 : dev->props.maxMemAllocSize;
    gpu_fusion_read_env(be);
    /* The SPIR-V module has no exo_dmv_k2048_* or exo_attention_split_g8* kernels (kernels/decode.cl
     * and attention_gqa.cl say why). */
    be->features.no_dmv_k2048 = 1;
    if (be->features.att_gqa_max > GPU_ATT_GQA_MAX_GROUP_SPIRV) be->features.att_gqa_max = GPU_ATT_GQA_MAX_GROUP_SPIRV;
    be->mem_alloc = be_mem_alloc;
    be->mem_free = be_mem_free;
    be->buffer_mem = be_buffer_mem;
    be->mem_read = be_mem_read;
    be->mem_write = be_mem_write;
    be->launch = l0_recorder_launch;
    be->finish = l0_recorder_finish;
}

exo_status l0_supports_graph(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph,
                             uint32_t *first_unsupported) {
    if (first_unsupported) *first_unsupported = UINT32_MAX;
    if (!ctx || !graph) return EXO_ERR_INVALID_ARG;
    l0_device *dev;
    exo_status opened = l0_opened_device(ctx, device, "supports_graph", &dev);
    if (opened != EXO_OK) return opened;
    /* Validation looks buffers up (buffer_mem) but allocates and launches nothing: a compiled
     * graph with no list or fence is all it needs. */
    l0_compiled probe;
    memset(&probe, 0, sizeof probe);
    probe.ctx = ctx;
    probe.dev = dev;
    fill_backend(&probe.be, ctx, dev, &probe);
    return gpu_graph_supports(&probe.be, graph, first_unsupported);
}

void l0_compiled_free(exo_compiled *c) {
    if (!c || c->magic != L0_COMPILED_MAGIC) return;
    exo_plugin_ctx *ctx = c->ctx;
    gpu_graph_free(c->graph);
    if (c->fence) ctx->ze->zeFenceDestroy(c->fence);
    if (c->list) ctx->ze->zeCommandListDestroy(c->list);
    if (c->records || c->replays)
        l0_log(ctx->host, EXO_LOG_DEBUG, "level_zero:%u: graph ran %llu times: recorded %llu, replayed %llu",
               c->dev->index, (unsigned long long)(c->records + c->replays), (unsigned long long)c->records,
               (unsigned long long)c->replays);
    ctx->host->free(ctx->host->host_ctx, c->recorded);
    ctx->host->free(ctx->host->host_ctx, c->pending);
    c->magic = 0;
    ctx->host->free(ctx->host->host_ctx, c);
}

exo_status l0_graph_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, exo_compiled **out) {
    if (!ctx || !graph || !out) return EXO_ERR_INVALID_ARG;
    *out = NULL;
    l0_device *dev;
    exo_status opened = l0_opened_device(ctx, device, "graph_compile", &dev);
    if (opened != EXO_OK) return opened;
    pthread_mutex_lock(&dev->exec.lock);
    exo_status st = l0_module_ensure(ctx, dev);
    pthread_mutex_unlock(&dev->exec.lock);
    if (st != EXO_OK) return st;
    l0_compiled *c = ctx->host->alloc(ctx->host->host_ctx, sizeof *c);
    if (!c) return l0_error(ctx, dev, EXO_ERR_NO_MEMORY, "graph_compile: out of host memory");
    memset(c, 0, sizeof *c);
    c->magic = L0_COMPILED_MAGIC;
    c->ctx = ctx;
    c->dev = dev;
    fill_backend(&c->be, ctx, dev, c);
    const l0_loader *ze = ctx->ze;
    ze_command_list_desc_t ld = {.stype = ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC,
                                 .commandQueueGroupOrdinal = dev->exec.queue_ordinal};
    ze_result_t r = ze->zeCommandListCreate(dev->exec.context, dev->handle, &ld, &c->list);
    if (r != ZE_RESULT_SUCCESS) st = l0_fail(ctx, dev, r, "zeCommandListCreate", "graph_compile");
    if (st == EXO_OK) {
        ze_fence_desc_t fd = {.stype = ZE_STRUCTURE_TYPE_FENCE_DESC};
        r = ze->zeFenceCreate(dev->exec.queue, &fd, &c->fence);
        if (r != ZE_RESULT_SUCCESS) st = l0_fail(ctx, dev, r, "zeFenceCreate", "graph_compile");
    }
    if (st == EXO_OK) st = gpu_graph_compile(&c->be, graph, &c->graph);
    if (st != EXO_OK) {
        l0_compiled_free(c);
        return st;
    }
    *out = c;
    return EXO_OK;
}

exo_status l0_graph_execute(exo_compiled *c, const exo_exec_args *args) {
    if (!c || c->magic != L0_COMPILED_MAGIC) return EXO_ERR_INVALID_ARG;
    exo_status st = l0_check_not_lost(c->ctx, c->dev);
    if (st != EXO_OK) return st;
    c->n_pending = 0;
    return gpu_graph_execute(c->graph, args);
}
