/* program.c — the kernels of kernels/ as one cl_program per opened device, built at the first
 * graph_compile: from the binary cache when it holds a valid entry the driver accepts, else
 * from the embedded OpenCL C sources (then stored). A build failure reports the compiler's log. */
#include "cache.h"
#include "exo_kernels_cl.h"
#include "ocl_plugin.h"

#include <stdio.h>
#include <string.h>

static void cache_key(ocl_runtime *rt, ocl_cache_key *key) {
    exo_plugin_ctx *ctx = rt->ctx;
    const ocl_device *dev = &ctx->devices[rt->index];
    ocl_hasher h;
    ocl_hash_init(&h);
    ocl_hash_add_str(&h, "exo-ipex opencl program cache v1");
    for (unsigned i = 0; i < exo_kernels_cl_count; i++) ocl_hash_add_str(&h, exo_kernels_cl_sources[i]);
    ocl_hash_add_str(&h, rt->build_options);
    static const cl_device_info dev_info[] = {CL_DEVICE_NAME, CL_DRIVER_VERSION, CL_DEVICE_VERSION, CL_DEVICE_VENDOR};
    for (size_t i = 0; i < sizeof dev_info / sizeof dev_info[0]; i++) {
        char *text = NULL;
        ocl_device_string(ctx, rt->device, dev_info[i], &text);
        ocl_hash_add_str(&h, text);
        if (text) ctx->host->free(ctx->host->host_ctx, text);
    }
    static const cl_platform_info plat_info[] = {CL_PLATFORM_NAME, CL_PLATFORM_VERSION, CL_PLATFORM_VENDOR};
    for (size_t i = 0; i < sizeof plat_info / sizeof plat_info[0]; i++) {
        char *text = NULL;
        ocl_platform_string(ctx, dev->platform, plat_info[i], &text);
        ocl_hash_add_str(&h, text);
        if (text) ctx->host->free(ctx->host->host_ctx, text);
    }
    ocl_hash_finish(&h, key);
}

/* The program's whole build log (host->alloc'd, NUL-terminated), or NULL when there is none. */
static char *read_build_log(ocl_runtime *rt, cl_program program) {
    const ocl_api *api = &rt->ctx->api;
    size_t n = 0;
    if (api->clGetProgramBuildInfo(program, rt->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS || n == 0)
        return NULL;
    char *log = rt->ctx->host->alloc(rt->ctx->host->host_ctx, n + 1);
    if (log && api->clGetProgramBuildInfo(program, rt->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) {
        rt->ctx->host->free(rt->ctx->host->host_ctx, log);
        return NULL;
    }
    if (log) log[n] = 0;
    return log;
}

/* The build log's start, short enough for one message (a failed build's first error). */
static void build_log(ocl_runtime *rt, cl_program program, char *out, size_t size) {
    char *log = read_build_log(rt, program);
    snprintf(out, size, "%s", log ? log : "");
    if (log) rt->ctx->host->free(rt->ctx->host->host_ctx, log);
}

/* EXO_OPENCL_BUILD_LOG=<file>: a successful build's whole log written there, e.g. NVIDIA's
 * registers and shared memory per kernel with EXO_OPENCL_DEFINES=-cl-nv-verbose (to see what
 * limits a kernel's occupancy). Best effort: a log that cannot be written is a warning. */
static void save_build_log(ocl_runtime *rt, cl_program program) {
    const char *path = rt->ctx->host->get_env(rt->ctx->host->host_ctx, "EXO_OPENCL_BUILD_LOG");
    if (!path || !*path) return;
    char *log = read_build_log(rt, program);
    FILE *f = log ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "build options: %s\n%s\n", rt->build_options, log);
        fclose(f);
    } else {
        ocl_log(rt->ctx, EXO_LOG_WARN, "EXO_OPENCL_BUILD_LOG: could not write the build log to %s", path);
    }
    if (log) rt->ctx->host->free(rt->ctx->host->host_ctx, log);
}

static cl_program from_binary(ocl_runtime *rt, const unsigned char *bin, size_t size, const char *path) {
    const ocl_api *api = &rt->ctx->api;
    cl_int status = CL_SUCCESS, err = CL_SUCCESS;
    cl_program p = api->clCreateProgramWithBinary(rt->context, 1, &rt->device, &size, &bin, &status, &err);
    if (p && err == CL_SUCCESS && status == CL_SUCCESS)
        err = api->clBuildProgram(p, 1, &rt->device, rt->build_options, NULL, NULL);
    else if (err == CL_SUCCESS)
        err = status;
    if (err == CL_SUCCESS) return p;
    ocl_log(rt->ctx, EXO_LOG_WARN, "program cache entry %s rejected by the driver: %s (%d); rebuilding", path,
            cl_error_name(err), err);
    if (p) api->clReleaseProgram(p);
    return NULL;
}

static exo_status from_source(ocl_runtime *rt, cl_program *out) {
    const ocl_api *api = &rt->ctx->api;
    cl_int err = CL_SUCCESS;
    cl_program p = api->clCreateProgramWithSource(rt->context, exo_kernels_cl_count, (const char **)exo_kernels_cl_sources,
                                                  NULL, &err);
    if (!p) return ocl_fail(rt->ctx, err, "clCreateProgramWithSource(%u kernel files)", exo_kernels_cl_count);
    uint64_t t0 = rt->ctx->host->now_ns ? rt->ctx->host->now_ns(rt->ctx->host->host_ctx) : 0;
    err = api->clBuildProgram(p, 1, &rt->device, rt->build_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[600];
        build_log(rt, p, log, sizeof log);
        api->clReleaseProgram(p);
        if (strstr(rt->build_options, "-DEXO_NV_MMA"))
            ocl_log(rt->ctx, EXO_LOG_WARN, "the kernels with the tensor-core GEMM did not build (%s, %d): %s; building without it",
                    cl_error_name(err), err, log[0] ? log : "(empty log)");
        return rt->ctx->host->set_error(rt->ctx->host->host_ctx, EXO_ERR_BACKEND, err,
                                        "opencl: clBuildProgram(kernels/, options \"%s\") failed: %s (%d); build log: %s",
                                        rt->build_options, cl_error_name(err), err, log[0] ? log : "(empty)");
    }
    uint64_t t1 = rt->ctx->host->now_ns ? rt->ctx->host->now_ns(rt->ctx->host->host_ctx) : 0;
    ocl_log(rt->ctx, EXO_LOG_INFO, "built the kernels from source in %.0f ms (%s)", (double)(t1 - t0) / 1e6,
            rt->build_options);
    save_build_log(rt, p);
    *out = p;
    return EXO_OK;
}

/* The device binary of a built program (host->alloc'd), or NULL. */
static unsigned char *program_binary(ocl_runtime *rt, cl_program p, size_t *size) {
    const ocl_api *api = &rt->ctx->api;
    size_t n = 0;
    if (api->clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0) return NULL;
    unsigned char *bin = rt->ctx->host->alloc(rt->ctx->host->host_ctx, n);
    if (!bin) return NULL;
    if (api->clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
        rt->ctx->host->free(rt->ctx->host->host_ctx, bin);
        return NULL;
    }
    *size = n;
    return bin;
}

exo_status ocl_program_ensure(ocl_runtime *rt) {
    if (rt->program) return EXO_OK;
    exo_plugin_ctx *ctx = rt->ctx;
    char dir[1024], path[1200];
    ocl_cache_key key;
    cache_key(rt, &key);
    int cached = ocl_cache_dir(ctx, dir, sizeof dir);
    if (cached) {
        ocl_cache_path(dir, &key, path, sizeof path);
        size_t size = 0;
        unsigned char *bin = ocl_cache_load(ctx, dir, &key, &size);
        if (bin) {
            rt->program = from_binary(rt, bin, size, path);
            ctx->host->free(ctx->host->host_ctx, bin);
            if (rt->program) {
                ocl_log(ctx, EXO_LOG_DEBUG, "kernels loaded from the program cache: %s", path);
                return EXO_OK;
            }
        }
    }
    exo_status st = from_source(rt, &rt->program);
    /* NVIDIA's compiler refused the inline PTX (a driver too old for mma.sync): the program
     * without the tensor-core GEMM, which the executor then does not pick (features.mma_parts 0). */
    if (st != EXO_OK && ocl_mma_drop(rt)) return ocl_program_ensure(rt);
    if (st != EXO_OK || !cached) return st;
    size_t size = 0;
    unsigned char *bin = program_binary(rt, rt->program, &size);
    if (bin) {
        ocl_cache_store(ctx, dir, &key, bin, size);
        ctx->host->free(ctx->host->host_ctx, bin);
    }
    return EXO_OK;
}
