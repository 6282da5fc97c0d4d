/* buffers.c — device memory: the ABI's buffers (weights, KV, scratch of the core) and the graph
 * executor's own scratch, all plain cl_mem objects of the device's context. Reads and writes
 * are blocking, so the caller's host memory is free again on return; under EXO_OPENCL_PROFILE
 * each is timed (profile.c). */
#include "ocl_plugin.h"

#include <string.h>

static const char *usage_name(exo_buffer_usage usage) {
    return usage == EXO_BUFFER_WEIGHTS ? "weights" : usage == EXO_BUFFER_KV ? "KV" : "scratch";
}

exo_status ocl_mem_create(ocl_runtime *rt, uint64_t size, gpu_mem *out) {
    exo_plugin_ctx *ctx = rt->ctx;
    const exo_device_report *r = &ctx->devices[rt->index].report;
    if (size == 0) size = 1;
    if (r->max_alloc && size > r->max_alloc)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_DEVICE_OOM, 0,
                                    "opencl: %llu bytes exceed device %u's largest allocation (%llu bytes)",
                                    (unsigned long long)size, rt->index, (unsigned long long)r->max_alloc);
    cl_int err = CL_SUCCESS;
    out->mem = ctx->api.clCreateBuffer(rt->context, CL_MEM_READ_WRITE, (size_t)size, NULL, &err);
    out->size = size;
    if (!out->mem) return ocl_fail(ctx, err, "clCreateBuffer(%llu bytes) on device %u", (unsigned long long)size, rt->index);
    return EXO_OK;
}

static exo_status read_blocking(ocl_runtime *rt, const gpu_mem *m, uint64_t offset, void *dst, uint64_t size) {
    cl_int err = rt->ctx->api.clEnqueueReadBuffer(rt->queue, m->mem, CL_TRUE, (size_t)offset, (size_t)size, dst, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(rt->ctx, err, "clEnqueueReadBuffer(%llu bytes at %llu)", (unsigned long long)size,
                        (unsigned long long)offset);
    return EXO_OK;
}

/* The executor's read-back of index inputs (gpu_backend.mem_read). */
exo_status ocl_mem_read(ocl_runtime *rt, const gpu_mem *m, uint64_t offset, void *dst, uint64_t size) {
    uint64_t t0 = rt->profile ? ocl_profile_now(rt) : 0;
    exo_status st = read_blocking(rt, m, offset, dst, size);
    if (rt->profile) ocl_profile_host_call(rt, OCL_CALL_MEM_READ, size, t0);
    return st;
}

exo_status ocl_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size, exo_buffer_usage usage,
                            exo_buffer **out) {
    if (!ctx || !out) return EXO_ERR_INVALID_ARG;
    *out = NULL;
    ocl_runtime *rt;
    exo_status st = ocl_runtime_get(ctx, device, "buffer_alloc", &rt);
    if (st != EXO_OK) return st;
    exo_buffer *buf = ctx->host->alloc(ctx->host->host_ctx, sizeof *buf);
    if (!buf) return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0, "opencl buffer_alloc: out of memory");
    memset(buf, 0, sizeof *buf);
    buf->rt = rt;
    buf->usage = usage;
    st = ocl_mem_create(rt, size, &buf->m);
    if (st != EXO_OK) {
        ctx->host->free(ctx->host->host_ctx, buf);
        return st;
    }
    buf->m.size = size;
    ocl_log(ctx, EXO_LOG_DEBUG, "allocated %llu bytes of %s on device %u", (unsigned long long)size, usage_name(usage), device);
    *out = buf;
    return EXO_OK;
}

static exo_status check_range(exo_buffer *buf, uint64_t offset, uint64_t size, const void *data, const char *what) {
    exo_plugin_ctx *ctx = buf->rt->ctx;
    if (!data && size)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0, "opencl %s: data is NULL", what);
    if (offset > buf->m.size || size > buf->m.size - offset)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0,
                                    "opencl %s: bytes [%llu, %llu) lie outside the %s buffer of %llu bytes", what,
                                    (unsigned long long)offset, (unsigned long long)(offset + size),
                                    usage_name(buf->usage), (unsigned long long)buf->m.size);
    return EXO_OK;
}

exo_status ocl_buffer_write(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size) {
    if (!buf) return EXO_ERR_INVALID_ARG;
    exo_status st = check_range(buf, offset, size, data, "buffer_write");
    if (st != EXO_OK || size == 0) return st;
    ocl_runtime *rt = buf->rt;
    /* Weight uploads are the load's, not a step's: the profile leaves them out. */
    int timed = rt->profile && buf->usage != EXO_BUFFER_WEIGHTS;
    uint64_t t0 = timed ? ocl_profile_now(rt) : 0;
    cl_int err = rt->ctx->api.clEnqueueWriteBuffer(rt->queue, buf->m.mem, CL_TRUE, (size_t)offset, (size_t)size, data, 0,
                                                   NULL, NULL);
    if (timed) ocl_profile_host_call(rt, OCL_CALL_BUFFER_WRITE, size, t0);
    if (err != CL_SUCCESS)
        return ocl_fail(rt->ctx, err, "clEnqueueWriteBuffer(%llu bytes at %llu of a %s buffer)", (unsigned long long)size,
                        (unsigned long long)offset, usage_name(buf->usage));
    return EXO_OK;
}

exo_status ocl_buffer_read(exo_buffer *buf, uint64_t offset, void *data, uint64_t size) {
    if (!buf) return EXO_ERR_INVALID_ARG;
    exo_status st = check_range(buf, offset, size, data, "buffer_read");
    if (st != EXO_OK || size == 0) return st;
    ocl_runtime *rt = buf->rt;
    uint64_t t0 = rt->profile ? ocl_profile_now(rt) : 0;
    st = read_blocking(rt, &buf->m, offset, data, size);
    if (rt->profile) ocl_profile_host_call(rt, OCL_CALL_BUFFER_READ, size, t0);
    return st;
}

void ocl_buffer_free(exo_buffer *buf) {
    if (!buf) return;
    exo_plugin_ctx *ctx = buf->rt->ctx;
    if (buf->m.mem) {
        ctx->api.clReleaseMemObject(buf->m.mem);
        ocl_sites_forget(buf->rt); /* its handle may come back as another buffer's */
    }
    ctx->host->free(ctx->host->host_ctx, buf);
}
