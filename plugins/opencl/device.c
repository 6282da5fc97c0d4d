/* device.c — opening a device for work: a cl_context over the one device and an in-order
 * command queue (every launch depends on the one before it, so in-order is the graph's own
 * order and needs no events). The program is built later, at the first graph_compile. */
#include "ocl_plugin.h"

#include <string.h>

exo_status ocl_runtime_get(exo_plugin_ctx *ctx, uint32_t index, const char *what, ocl_runtime **out) {
    *out = NULL;
    if (index >= ctx->n_devices)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NOT_FOUND, 0, "opencl %s: no device %u (probe found %u)",
                                    what, index, ctx->n_devices);
    if (!ctx->devices[index].rt)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0, "opencl %s: device %u is not open",
                                    what, index);
    *out = ctx->devices[index].rt;
    return EXO_OK;
}

static void release_runtime(ocl_runtime *rt) {
    const ocl_api *api = &rt->ctx->api;
    ocl_profile_report_and_free(rt);
    ocl_release_kernels(rt);
    if (rt->program) api->clReleaseProgram(rt->program);
    if (rt->queue) api->clReleaseCommandQueue(rt->queue);
    if (rt->context) api->clReleaseContext(rt->context);
    rt->ctx->host->free(rt->ctx->host->host_ctx, rt);
}

exo_status ocl_device_open(exo_plugin_ctx *ctx, uint32_t index) {
    if (!ctx) return EXO_ERR_INVALID_ARG;
    if (index >= ctx->n_devices)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NOT_FOUND, 0, "opencl device_open: no device %u (probe found %u)",
                                    index, ctx->n_devices);
    ocl_device *dev = &ctx->devices[index];
    if (dev->rt) return EXO_OK;
    if (dev->report.score == EXO_SCORE_UNUSABLE)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_UNSUPPORTED, 0, "opencl device_open: device %u (%s) cannot serve: %s",
                                    index, dev->report.name, dev->report.reason);
    if (ctx->api.missing_exec[0])
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_BACKEND, 0,
                                    "opencl device_open: the ICD loader %s does not export %s", ctx->api.library_name,
                                    ctx->api.missing_exec);
    ocl_runtime *rt = ctx->host->alloc(ctx->host->host_ctx, sizeof *rt);
    if (!rt) return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0, "opencl device_open: out of memory");
    memset(rt, 0, sizeof *rt);
    rt->ctx = ctx;
    rt->index = index;
    rt->device = dev->id;
    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->platform, 0};
    rt->context = ctx->api.clCreateContext(props, 1, &dev->id, NULL, NULL, &err);
    if (!rt->context) {
        release_runtime(rt);
        return ocl_fail(ctx, err, "clCreateContext for device %u (%s)", index, dev->report.name);
    }
    rt->profile = ocl_profile_create(ctx);
    cl_command_queue_properties queue_props = ocl_profile_events(rt->profile) ? CL_QUEUE_PROFILING_ENABLE : 0;
    rt->queue = ctx->api.clCreateCommandQueue(rt->context, dev->id, queue_props, &err);
    if (!rt->queue) {
        release_runtime(rt);
        return ocl_fail(ctx, err, "clCreateCommandQueue for device %u (%s)", index, dev->report.name);
    }
    ocl_backend_init(rt, dev);
    ocl_mma_choose(rt, dev);
    dev->rt = rt;
    ocl_log(ctx, EXO_LOG_INFO, "opened device %u: %s", index, dev->report.name);
    return EXO_OK;
}

void ocl_device_close(exo_plugin_ctx *ctx, uint32_t index) {
    if (!ctx || index >= ctx->n_devices || !ctx->devices[index].rt) return;
    ocl_runtime *rt = ctx->devices[index].rt;
    ctx->api.clFinish(rt->queue);
    release_runtime(rt);
    ctx->devices[index].rt = NULL;
}
