/* backend.c — the gpu_common backend table over one opened OpenCL device: scratch memory,
 * buffer lookup, blocking reads, and kernel launches (their kernel objects and arguments:
 * kernel_objects.c). */
#include "ocl_plugin.h"

#include "gpu_fusions.h"
#include "gpu_intel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static exo_status be_mem_alloc(void *p, uint64_t size, gpu_mem **out) {
    ocl_runtime *rt = p;
    gpu_mem *m = rt->ctx->host->alloc(rt->ctx->host->host_ctx, sizeof *m);
    if (!m) return rt->ctx->host->set_error(rt->ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0, "opencl: out of memory");
    exo_status st = ocl_mem_create(rt, size, m);
    if (st != EXO_OK) {
        rt->ctx->host->free(rt->ctx->host->host_ctx, m);
        return st;
    }
    *out = m;
    return EXO_OK;
}

static void be_mem_free(void *p, gpu_mem *m) {
    ocl_runtime *rt = p;
    if (!m) return;
    if (m->mem) {
        rt->ctx->api.clReleaseMemObject(m->mem);
        ocl_sites_forget(rt);
    }
    rt->ctx->host->free(rt->ctx->host->host_ctx, m);
}

static gpu_mem *be_buffer_mem(void *p, exo_buffer *buf, uint64_t *size) {
    ocl_runtime *rt = p;
    if (!buf || buf->rt != rt) return NULL;
    *size = buf->m.size;
    return &buf->m;
}

static exo_status be_mem_read(void *p, gpu_mem *m, uint64_t offset, void *dst, uint64_t size) {
    return ocl_mem_read(p, m, offset, dst, size);
}

static exo_status be_mem_write(void *p, gpu_mem *m, uint64_t offset, const void *src, uint64_t size) {
    ocl_runtime *rt = p;
    cl_int err = rt->ctx->api.clEnqueueWriteBuffer(rt->queue, m->mem, CL_TRUE, (size_t)offset, (size_t)size, src, 0, NULL,
                                                   NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(rt->ctx, err, "clEnqueueWriteBuffer(%llu bytes at %llu of the graph's tables)",
                        (unsigned long long)size, (unsigned long long)offset);
    return EXO_OK;
}

static exo_status be_launch(void *p, const gpu_launch *l) {
    ocl_runtime *rt = p;
    const ocl_api *api = &rt->ctx->api;
    cl_kernel k = NULL;
    uint32_t args_set = 0, args = 0;
    exo_status st = ocl_kernel_for_launch(rt, l, &k, &args_set, &args);
    if (st != EXO_OK) return st;
    cl_event event = NULL;
    cl_int err = api->clEnqueueNDRangeKernel(rt->queue, k, l->dims, NULL, l->global, l->local, 0, NULL,
                                             ocl_profile_events(rt->profile) ? &event : NULL);
    if (err == CL_SUCCESS && rt->profile) ocl_profile_add_launch(rt, l, event, args_set, args);
    if (err != CL_SUCCESS)
        return ocl_fail(rt->ctx, err, "clEnqueueNDRangeKernel(%s, global %zux%zux%zu, local %zux%zux%zu)", l->kernel,
                        l->global[0], l->global[1], l->global[2], l->local[0], l->local[1], l->local[2]);
    /* A driver may hold enqueued work until a flush (NVIDIA's does): without one the device would
     * idle while the host builds the whole step (~80-150 launches) and only start at clFinish.
     * So the first launch of a graph goes out at once and the rest in groups of flush_every. */
    if (rt->flush_every && (rt->unflushed++ == 0 || rt->unflushed >= rt->flush_every)) {
        err = api->clFlush(rt->queue);
        if (err != CL_SUCCESS) return ocl_fail(rt->ctx, err, "clFlush (after %s)", l->kernel);
        if (rt->unflushed >= rt->flush_every) rt->unflushed = 1;
    }
    return EXO_OK;
}

static exo_status be_finish(void *p) {
    ocl_runtime *rt = p;
    rt->unflushed = 0;
    ocl_sites_next_execution(rt);
    cl_int err = rt->ctx->api.clFinish(rt->queue);
    if (err != CL_SUCCESS) return ocl_fail(rt->ctx, err, "clFinish (a kernel of this graph failed)");
    ocl_profile_collect(rt);
    return EXO_OK;
}

static int env_set(exo_plugin_ctx *ctx, const char *name, const char *value) {
    const char *v = ctx->host->get_env(ctx->host->host_ctx, name);
    return v && strcmp(v, value) == 0;
}

/* Intel's sub-group and XMX kernels (gpu_intel.h): from the extension string, the sub-group sizes
 * the device offers (cl_intel_required_subgroup_size) and EXO_GPU_XMX; none in the portable build. */
static void choose_intel_kernels(exo_plugin_ctx *ctx, const ocl_device *dev, const char *extensions, int portable,
                                 gpu_intel_choice *out) {
    size_t sizes[16] = {0}, bytes = 0;
    uint32_t lanes[16], n = 0;
    if (gpu_intel_has_extension(extensions, "cl_intel_required_subgroup_size") &&
        ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_SUB_GROUP_SIZES_INTEL, sizeof sizes, sizes, &bytes) == CL_SUCCESS)
        for (size_t i = 0; i < bytes / sizeof sizes[0] && i < 16; i++) lanes[n++] = (uint32_t)sizes[i];
    const char *env = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_XMX");
    gpu_intel_choose(extensions, lanes, n, portable ? NULL : env, out);
    if (env && *env && strcmp(env, "0") != 0)
        ocl_log(ctx, out->kernels ? EXO_LOG_INFO : EXO_LOG_WARN, "%s%s", out->why,
                portable ? " (EXO_OPENCL_KERNELS=portable)" : "");
}

void ocl_backend_init(ocl_runtime *rt, const ocl_device *dev) {
    exo_plugin_ctx *ctx = rt->ctx;
    gpu_backend *be = &rt->backend;
    memset(be, 0, sizeof *be);
    be->name = "opencl";
    be->host = ctx->host;
    be->ctx = rt;
    be->mem_alloc = be_mem_alloc;
    be->mem_free = be_mem_free;
    be->buffer_mem = be_buffer_mem;
    be->mem_read = be_mem_read;
    be->mem_write = be_mem_write;
    be->launch = be_launch;
    be->finish = be_finish;
    gpu_fusion_read_env(be);
    const char *flush = ctx->host->get_env(ctx->host->host_ctx, "EXO_OPENCL_FLUSH_EVERY");
    rt->flush_every = flush && *flush ? (uint32_t)strtoul(flush, NULL, 10) : 16;
    rt->unflushed = 0;
    rt->shared_kernels_only = !env_set(ctx, "EXO_OPENCL_LAUNCH_SITES", "1");

    size_t max_wg = 0;
    ctx->api.clGetDeviceInfo(dev->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    be->features.max_work_group = (uint32_t)(max_wg > UINT32_MAX ? UINT32_MAX : max_wg);
    be->features.max_alloc = dev->report.max_alloc;
    /* EXO_GPU_MATVEC_ROWS=1: one weight row per item in the one-token matvecs (to compare). */
    if (env_set(ctx, "EXO_GPU_MATVEC_ROWS", "1")) be->features.matvec_rows = 1;
    /* EXO_GPU_MATVEC_BATCH=LO-HI: the token counts that take the batched-step matvecs (default
     * 5-16, gpu_launch.h); "off": none, a batched step's matmuls past 4 tokens take the GEMM (to
     * compare, and to find where the GEMM wins). */
    const char *mb = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_MATVEC_BATCH");
    unsigned lo = 0, hi = 0;
    char tail = 0;
    if (mb && strcmp(mb, "off") == 0) {
        be->features.matvec_batch_min = GPU_MATVEC_BATCH_MAX_TOKENS + 1;
        be->features.matvec_batch_max = GPU_MATVEC_BATCH_MAX_TOKENS;
    } else if (mb && sscanf(mb, "%u-%u%c", &lo, &hi, &tail) == 2 && lo >= 2 && lo <= hi && hi <= GPU_MATVEC_BATCH_MAX_TOKENS) {
        be->features.matvec_batch_min = lo;
        be->features.matvec_batch_max = hi;
    } else if (mb) {
        ocl_log(ctx, EXO_LOG_WARN, "EXO_GPU_MATVEC_BATCH=%s ignored: expected LO-HI with 2 <= LO <= HI <= %d, or off", mb,
                GPU_MATVEC_BATCH_MAX_TOKENS);
    }
    /* EXO_GPU_MATVEC_BATCH_LANES=16|32|64|128: items per row group in those kernels (to compare). */
    const char *ml = ctx->host->get_env(ctx->host->host_ctx, "EXO_GPU_MATVEC_BATCH_LANES");
    if (ml && (strcmp(ml, "16") == 0 || strcmp(ml, "32") == 0 || strcmp(ml, "64") == 0 || strcmp(ml, "128") == 0))
        be->features.matvec_batch_lanes = (uint32_t)atoi(ml);
    else if (ml)
        ocl_log(ctx, EXO_LOG_WARN, "EXO_GPU_MATVEC_BATCH_LANES=%s ignored: expected 16, 32, 64 or 128", ml);

    /* Faster paths where the device has what they need; EXO_OPENCL_KERNELS=portable turns them
     * off (the path PoCL and the SPIR-V module run, so it can be compared on any device). */
    char *ext = NULL;
    ocl_device_string(ctx, dev->id, CL_DEVICE_EXTENSIONS, &ext);
    const char *e = ext ? ext : "";
    int portable = env_set(ctx, "EXO_OPENCL_KERNELS", "portable");
    int fp16 = !portable && ocl_has_extension(e, "cl_khr_fp16");
    /* cl_intel_subgroups brings sub_group_reduce_add to OpenCL C 1.2 builds. */
    int subgroups = !portable && ocl_has_extension(e, "cl_intel_subgroups");
    int sg16 = subgroups && ocl_has_extension(e, "cl_intel_required_subgroup_size");
    be->features.subgroups = subgroups;
    gpu_intel_choice intel;
    choose_intel_kernels(ctx, dev, e, portable, &intel);
    be->features.intel = intel.kernels;
    be->features.intel_sub_group = intel.sub_group;
    /* EXO_OPENCL_DEFINES (e.g. "-DEXO_Q_MAGIC"): extra build options, to compare kernel variants
     * on a device without rebuilding the plugin (the program cache keys on the options). */
    const char *extra = ctx->host->get_env(ctx->host->host_ctx, "EXO_OPENCL_DEFINES");
    snprintf(rt->build_options, sizeof rt->build_options, "-cl-std=CL1.2%s%s%s%s%s%s", fp16 ? " -DEXO_FP16" : "",
             subgroups ? " -DEXO_SUBGROUPS" : "", sg16 ? " -DEXO_INTEL_SG16" : "", intel.defines, extra ? " " : "",
             extra ? extra : "");
    if (ext) ctx->host->free(ctx->host->host_ctx, ext);
    ocl_log(ctx, EXO_LOG_INFO, "device %u kernels: %s (max work-group %zu)", rt->index, rt->build_options, max_wg);
}
