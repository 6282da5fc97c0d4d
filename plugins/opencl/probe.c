/* probe.c — finds the OpenCL devices: loads the ICD loader, walks every platform's devices, and
 * has each one described. When there is none, records why in one sentence the core can show
 * ("OpenCL ICD loader libOpenCL.so.1 not found: ...", "no OpenCL platform: ..."). */
#include "ocl_plugin.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Records the no-device reason, logs it, and reports it as this call's error detail. */
static exo_status no_device(exo_plugin_ctx *ctx, int64_t vendor_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static exo_status no_device(exo_plugin_ctx *ctx, int64_t vendor_code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->no_device_reason, sizeof ctx->no_device_reason, fmt, ap);
    va_end(ap);
    ocl_log(ctx, EXO_LOG_INFO, "no device: %s", ctx->no_device_reason);
    return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_DEVICE, vendor_code, "%s",
                                ctx->no_device_reason);
}

void ocl_release_devices(exo_plugin_ctx *ctx) {
    if (ctx->devices) ctx->host->free(ctx->host->host_ctx, ctx->devices);
    ctx->devices = NULL;
    ctx->n_devices = 0;
}

static exo_status load_api(exo_plugin_ctx *ctx) {
    if (ctx->api.library) return EXO_OK;
    const char *name = ctx->host->get_env(ctx->host->host_ctx, OCL_LIBRARY_ENV);
    if (!name || !*name) name = OCL_DEFAULT_LIBRARY;
    char why[EXO_REASON_MAX];
    int rc = ocl_api_load(&ctx->api, name, why, sizeof why);
    if (rc == OCL_API_NOT_FOUND) return no_device(ctx, 0, "OpenCL ICD loader %s not found: %s", name, why);
    if (rc != OCL_API_LOADED) return no_device(ctx, 0, "OpenCL ICD loader %s is unusable: %s", name, why);
    ocl_log(ctx, EXO_LOG_DEBUG, "loaded the OpenCL ICD loader %s", name);
    return EXO_OK;
}

/* Appends `count` devices of one platform to ctx->devices (host memory has no realloc). */
static exo_status append_devices(exo_plugin_ctx *ctx, cl_platform_id platform, uint32_t platform_index,
                                 const cl_device_id *ids, cl_uint count, const char *platform_name) {
    size_t total = (size_t)ctx->n_devices + count;
    ocl_device *grown = ctx->host->alloc(ctx->host->host_ctx, total * sizeof *grown);
    if (!grown) return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0,
                                            "opencl probe: no memory for %zu device records", total);
    if (ctx->n_devices) memcpy(grown, ctx->devices, ctx->n_devices * sizeof *grown);
    memset(grown + ctx->n_devices, 0, count * sizeof *grown);
    if (ctx->devices) ctx->host->free(ctx->host->host_ctx, ctx->devices);
    ctx->devices = grown;
    for (cl_uint k = 0; k < count; k++) {
        ocl_device *dev = &ctx->devices[ctx->n_devices++];
        dev->platform = platform;
        dev->id = ids[k];
        dev->platform_index = platform_index;
        dev->device_index = k;
        ocl_describe_device(ctx, dev, platform_name);
        ocl_log(ctx, EXO_LOG_INFO, "device %u: %s (platform %s), score %u: %s", ctx->n_devices - 1,
                dev->report.name, platform_name, dev->report.score, dev->report.reason);
    }
    return EXO_OK;
}

/* Lists one platform's devices. A platform that fails is skipped (the others may work); its
 * error is kept in `skipped` for the no-device reason. */
static exo_status probe_platform(exo_plugin_ctx *ctx, cl_platform_id platform, uint32_t index,
                                 char *skipped, size_t skipped_size) {
    char *name = NULL;
    cl_int err = ocl_platform_string(ctx, platform, CL_PLATFORM_NAME, &name);
    if (err != CL_SUCCESS) {
        ocl_log(ctx, EXO_LOG_WARN, "platform %u: clGetPlatformInfo(CL_PLATFORM_NAME) failed: %s (%d)",
                index, cl_error_name(err), err);
    }
    const char *shown = name ? name : "(unnamed)";
    cl_uint count = 0;
    err = ctx->api.clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, NULL, &count);
    exo_status st = EXO_OK;
    if (err == CL_DEVICE_NOT_FOUND || (err == CL_SUCCESS && count == 0)) {
        ocl_log(ctx, EXO_LOG_DEBUG, "platform %u (%s) has no devices", index, shown);
        snprintf(skipped, skipped_size, "platform %s has no devices", shown);
    } else if (err != CL_SUCCESS) {
        ocl_log(ctx, EXO_LOG_WARN, "platform %u (%s): clGetDeviceIDs failed: %s (%d)", index, shown,
                cl_error_name(err), err);
        snprintf(skipped, skipped_size, "clGetDeviceIDs on platform %s failed: %s (%d)", shown,
                 cl_error_name(err), err);
    } else {
        cl_device_id *ids = ctx->host->alloc(ctx->host->host_ctx, count * sizeof *ids);
        if (!ids) {
            st = ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0,
                                      "opencl probe: no memory for %u device ids", count);
        } else {
            err = ctx->api.clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, count, ids, &count);
            if (err == CL_SUCCESS) {
                st = append_devices(ctx, platform, index, ids, count, shown);
            } else {
                ocl_log(ctx, EXO_LOG_WARN, "platform %u (%s): clGetDeviceIDs failed: %s (%d)", index,
                        shown, cl_error_name(err), err);
                snprintf(skipped, skipped_size, "clGetDeviceIDs on platform %s failed: %s (%d)",
                         shown, cl_error_name(err), err);
            }
            ctx->host->free(ctx->host->host_ctx, ids);
        }
    }
    if (name) ctx->host->free(ctx->host->host_ctx, name);
    return st;
}

static exo_status probe_serialised(exo_plugin_ctx *ctx);

/* Probes of different contexts (two runtimes in one process) take turns: the ICD loader and the
 * vendor drivers initialise themselves on the first enumeration, process-wide, and that is not
 * safe to run twice at once (two runtimes probing PoCL together saw "platform has no devices"
 * in one of them, and crashed at times). Enumeration is rare and short, so one lock is enough. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

exo_status ocl_probe(exo_plugin_ctx *ctx) {
    pthread_mutex_lock(&probe_lock);
    exo_status st = probe_serialised(ctx);
    pthread_mutex_unlock(&probe_lock);
    return st;
}

static exo_status probe_serialised(exo_plugin_ctx *ctx) {
    /* Idempotent: a new probe replaces the list, unless a device is open: its runtime (context,
     * buffers, compiled graphs) hangs off the list, which then stays as it is. */
    for (uint32_t i = 0; i < ctx->n_devices; i++)
        if (ctx->devices[i].rt) return EXO_OK;
    ocl_release_devices(ctx);
    ctx->no_device_reason[0] = '\0';
    exo_status st = load_api(ctx);
    if (st != EXO_OK) return st;

    const char *loader = ctx->api.library_name;
    cl_uint n_platforms = 0;
    cl_int err = ctx->api.clGetPlatformIDs(0, NULL, &n_platforms);
    if (err == CL_PLATFORM_NOT_FOUND_KHR) {
        return no_device(ctx, err,
                         "no OpenCL platform: clGetPlatformIDs returned CL_PLATFORM_NOT_FOUND_KHR "
                         "(-1001); the ICD loader %s found no vendor driver (/etc/OpenCL/vendors "
                         "or OCL_ICD_VENDORS)", loader);
    }
    if (err != CL_SUCCESS) {
        return no_device(ctx, err, "no OpenCL platform: clGetPlatformIDs failed: %s (%d)",
                         cl_error_name(err), err);
    }
    if (n_platforms == 0) {
        return no_device(ctx, 0, "no OpenCL platform: the ICD loader %s lists none", loader);
    }

    cl_platform_id *platforms = ctx->host->alloc(ctx->host->host_ctx, n_platforms * sizeof *platforms);
    if (!platforms) {
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_MEMORY, 0,
                                    "opencl probe: no memory for %u platform ids", n_platforms);
    }
    err = ctx->api.clGetPlatformIDs(n_platforms, platforms, &n_platforms);
    if (err != CL_SUCCESS) {
        ctx->host->free(ctx->host->host_ctx, platforms);
        return no_device(ctx, err, "no OpenCL platform: clGetPlatformIDs failed: %s (%d)",
                         cl_error_name(err), err);
    }
    char skipped[EXO_REASON_MAX] = "";
    for (cl_uint p = 0; p < n_platforms && st == EXO_OK; p++) {
        st = probe_platform(ctx, platforms[p], p, skipped, sizeof skipped);
    }
    ctx->host->free(ctx->host->host_ctx, platforms);
    if (st != EXO_OK) {
        ocl_release_devices(ctx);
        return st;
    }
    if (ctx->n_devices == 0) {
        return no_device(ctx, 0, "%u OpenCL platform(s) but no device: %s", n_platforms, skipped);
    }
    return EXO_OK;
}

