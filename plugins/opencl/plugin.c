/* plugin.c — the OpenCL plugin's entry point and function table (abi/exo_plugin.h): probe and
 * reports (probe.c, describe.c), device_open/close (device.c), buffers (buffers.c) and whole-graph
 * execution (graph.c over plugins/gpu_common, kernels built by program.c). buffer_wrap_host stays
 * NULL: weights are copied to device memory once at load, which is right for discrete GPUs and
 * costs unified-memory devices one copy. */
#include "ocl_plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define OCL_PLUGIN_VERSION "0.1.0"

void ocl_log(exo_plugin_ctx *ctx, exo_log_level level, const char *fmt, ...) {
    if (!ctx->host->log) return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ctx->host->log(ctx->host->host_ctx, level, OCL_COMPONENT, line);
}

exo_status ocl_fail(exo_plugin_ctx *ctx, cl_int err, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    exo_status st = EXO_ERR_BACKEND;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_INVALID_BUFFER_SIZE)
        st = EXO_ERR_DEVICE_OOM;
    else if (err == CL_OUT_OF_HOST_MEMORY)
        st = EXO_ERR_NO_MEMORY;
    return ctx->host->set_error(ctx->host->host_ctx, st, err, "opencl: %s failed: %s (%d)", what, cl_error_name(err), err);
}

/* The host members this plugin calls, all of ABI 1.0. */
static int host_usable(const exo_host_api *host) {
    return host && host->hdr.size >= sizeof(exo_struct_header) &&
           EXO_VERSION_MAJOR(host->hdr.version) == EXO_ABI_MAJOR &&
           EXO_STRUCT_HAS(host, exo_host_api, free) && host->set_error && host->get_env &&
           host->alloc && host->free;
}

static exo_status ocl_init(const exo_host_api *host, exo_plugin_ctx **out) {
    if (!out) return EXO_ERR_INVALID_ARG;
    *out = NULL;
    if (!host_usable(host)) return EXO_ERR_ABI_MISMATCH; /* no usable set_error to explain with */
    exo_plugin_ctx *ctx = host->alloc(host->host_ctx, sizeof *ctx);
    if (!ctx) return host->set_error(host->host_ctx, EXO_ERR_NO_MEMORY, 0, "opencl: no memory for the plugin context");
    memset(ctx, 0, sizeof *ctx);
    ctx->host = host;
    *out = ctx;
    return EXO_OK;
}

static void ocl_shutdown(exo_plugin_ctx *ctx) {
    if (!ctx) return;
    for (uint32_t i = 0; i < ctx->n_devices; i++) ocl_device_close(ctx, i);
    ocl_release_devices(ctx);
    /* The ICD loader stays mapped: vendor drivers (PoCL's worker threads, NVIDIA's atexit
     * handlers) crash when their library is unloaded under them. dlopen counts references, so
     * a later init/probe reuses the same mapping. */
    ctx->host->free(ctx->host->host_ctx, ctx);
}

static exo_status ocl_probe_entry(exo_plugin_ctx *ctx, uint32_t *count) {
    if (!ctx || !count) return EXO_ERR_INVALID_ARG;
    *count = 0;
    exo_status st = ocl_probe(ctx);
    *count = st == EXO_OK ? ctx->n_devices : 0;
    return st;
}

/* Copies a struct we filled into the caller's (exo_struct_copy_out), naming a header it cannot use. */
static exo_status copy_out(exo_plugin_ctx *ctx, void *dst, const void *src, uint32_t src_size,
                           const char *what) {
    exo_struct_header *hdr = dst;
    if (hdr->size < sizeof *hdr || EXO_VERSION_MAJOR(hdr->version) != EXO_ABI_MAJOR) {
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_ABI_MISMATCH, 0,
                                    "opencl: %s struct has size %u, version 0x%x (this plugin: %u, 0x%x)",
                                    what, hdr->size, hdr->version, src_size, EXO_ABI_VERSION);
    }
    return exo_struct_copy_out(dst, src, src_size);
}

static exo_status check_index(exo_plugin_ctx *ctx, uint32_t index) {
    if (index < ctx->n_devices) return EXO_OK;
    return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NOT_FOUND, 0,
                                "opencl: no device %u (probe found %u)", index, ctx->n_devices);
}

static exo_status ocl_device_report(exo_plugin_ctx *ctx, uint32_t index, exo_device_report *out) {
    if (!ctx || !out) return EXO_ERR_INVALID_ARG;
    exo_status st = check_index(ctx, index);
    if (st != EXO_OK) return st;
    return copy_out(ctx, out, &ctx->devices[index].report, sizeof(exo_device_report), "device report");
}

static exo_status ocl_device_telemetry(exo_plugin_ctx *ctx, uint32_t index, exo_device_telemetry *out) {
    if (!ctx || !out) return EXO_ERR_INVALID_ARG;
    exo_status st = check_index(ctx, index);
    if (st != EXO_OK) return st;
    const ocl_device *dev = &ctx->devices[index];
    exo_device_telemetry t;
    memset(&t, 0, sizeof t);
    EXO_STRUCT_INIT(&t);
    snprintf(t.driver_version, sizeof t.driver_version, "%s", dev->report.driver_version);
    t.valid = EXO_TELEMETRY_DRIVER;
    /* OpenCL has no sensors; memory is the one reading a vendor extension gives. */
    uint64_t free_bytes = 0;
    if (dev->has_amd_free_memory && ocl_amd_free_memory(ctx, dev->id, &free_bytes) == CL_SUCCESS) {
        uint64_t total = dev->report.memory_total;
        t.memory_free = free_bytes < total ? free_bytes : total;
        t.memory_used = total - t.memory_free;
        t.valid |= EXO_TELEMETRY_MEMORY;
    }
    return copy_out(ctx, out, &t, sizeof t, "telemetry");
}

static exo_status opencl_entry(const exo_host_api *host, exo_plugin_api *out) {
    exo_plugin_api mine;
    memset(&mine, 0, sizeof mine);
    EXO_STRUCT_INIT(&mine);
    mine.name = "opencl";
    mine.version = OCL_PLUGIN_VERSION;
    mine.build_info = "OpenCL 3.0 headers; ICD loader (" OCL_DEFAULT_LIBRARY ") opened at probe";
    mine.rank = EXO_RANK_OPENCL;
    mine.init = ocl_init;
    mine.shutdown = ocl_shutdown;
    mine.probe = ocl_probe_entry;
    mine.device_report = ocl_device_report;
    mine.device_telemetry = ocl_device_telemetry;
    mine.device_open = ocl_device_open;
    mine.device_close = ocl_device_close;
    mine.buffer_alloc = ocl_buffer_alloc;
    mine.buffer_write = ocl_buffer_write;
    mine.buffer_read = ocl_buffer_read;
    mine.buffer_free = ocl_buffer_free;
    mine.supports_graph = ocl_supports_graph;
    mine.graph_compile = ocl_graph_compile;
    mine.graph_execute = ocl_graph_execute;
    mine.compiled_free = ocl_compiled_free;
    mine.device_read_bandwidth = ocl_device_read_bandwidth;
    return exo_plugin_fill(out, &mine);
}

EXO_PLUGIN_DEFINE(opencl, opencl_entry)
