/* graph.c — the ABI's graph entries, over the shared executor of plugins/gpu_common: this file
 * only finds the opened device, makes sure its program is built, and wraps the result. */
#include "gpu_bandwidth.h"
#include "gpu_graph.h"
#include "ocl_plugin.h"

struct exo_compiled {
    exo_plugin_ctx *ctx;
    gpu_compiled *graph;
};

exo_status ocl_supports_graph(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, uint32_t *first_unsupported) {
    if (first_unsupported) *first_unsupported = UINT32_MAX;
    if (!ctx) return EXO_ERR_INVALID_ARG;
    ocl_runtime *rt;
    exo_status st = ocl_runtime_get(ctx, device, "supports_graph", &rt);
    if (st != EXO_OK) return st;
    return gpu_graph_supports(&rt->backend, graph, first_unsupported);
}

exo_status ocl_graph_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, exo_compiled **out) {
    if (!ctx || !out) return EXO_ERR_INVALID_ARG;
    *out = NULL;
    ocl_runtime *rt;
    exo_status st = ocl_runtime_get(ctx, device, "graph_compile", &rt);
    if (st == EXO_OK) st = ocl_program_ensure(rt);
    if (st != EXO_OK) return st;
    exo_compiled *c = ctx->host->alloc(ctx->host->host_ctx, sizeof *c);
    if (!c) return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0, "opencl graph_compile: out of memory");
    c->ctx = ctx;
    st = gpu_graph_compile(&rt->backend, graph, &c->graph);
    if (st != EXO_OK) {
        ctx->host->free(ctx->host->host_ctx, c);
        return st;
    }
    *out = c;
    return EXO_OK;
}

exo_status ocl_device_read_bandwidth(exo_plugin_ctx *ctx, uint32_t device, uint64_t bytes, uint32_t passes,
                                     double *best_gbps) {
    if (!ctx || !best_gbps) return EXO_ERR_INVALID_ARG;
    ocl_runtime *rt;
    exo_status st = ocl_runtime_get(ctx, device, "device_read_bandwidth", &rt);
    if (st == EXO_OK) st = ocl_program_ensure(rt);
    return st == EXO_OK ? gpu_read_bandwidth(&rt->backend, bytes, passes, best_gbps) : st;
}

exo_status ocl_graph_execute(exo_compiled *c, const exo_exec_args *args) {
    if (!c) return EXO_ERR_INVALID_ARG;
    return gpu_graph_execute(c->graph, args);
}

void ocl_compiled_free(exo_compiled *c) {
    if (!c) return;
    gpu_graph_free(c->graph);
    c->ctx->host->free(c->ctx->host->host_ctx, c);
}
