/* plugin.c — the level_zero plugin's table and context: init/shutdown, probe (open the loader,
 * zeInit, find devices), device_report and device_telemetry, and the execution layer's entry
 * points (device_open.c, buffer.c, graph.c). A build without the SPIR-V kernels (clang-15 /
 * llvm-spirv-15 / spirv-val missing) leaves graph_compile NULL: the core then lists the
 * devices but runs nothing on them.
 *
 * "Loaded but 0 devices" is not an error: probe returns EXO_OK with *count = 0, logs the reason
 * at INFO, records it as error detail (host->set_error with the status it would have been), and
 * shows it in probe_build_info. Later calls for devices return that same remembered reason. */
#include "l0_internal.h"

#ifdef EXO_L0_HAVE_KERNELS
#include "l0_graph.h"
#endif

#include <stdio.h>
#include <string.h>

#ifndef EXO_L0_PLUGIN_VERSION
#define EXO_L0_PLUGIN_VERSION "0.0.0"
#endif

static exo_status l0_init(const exo_host_api *host, exo_plugin_ctx **out) {
    if (!out) return EXO_ERR_INVALID_ARG;
    *out = NULL;
    if (!host || !EXO_STRUCT_HAS(host, exo_host_api, free) || !host->log || !host->set_error || !host->alloc ||
        !host->free || !host->get_env)
        return EXO_ERR_ABI_MISMATCH;
    exo_plugin_ctx *ctx = host->alloc(host->host_ctx, sizeof *ctx);
    if (!ctx) return host->set_error(host->host_ctx, EXO_ERR_NO_MEMORY, 0, "level_zero: out of host memory for the context");
    memset(ctx, 0, sizeof *ctx);
    ctx->host = host;
    snprintf(ctx->build_info, sizeof ctx->build_info, "%s", L0_BUILD_INFO_AT_ENTRY);
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        host->free(host->host_ctx, ctx);
        return host->set_error(host->host_ctx, EXO_ERR_INTERNAL, 0, "level_zero: pthread_mutex_init failed");
    }
    *out = ctx;
    return EXO_OK;
}

static void l0_shutdown(exo_plugin_ctx *ctx) {
    if (!ctx) return;
    const exo_host_api *host = ctx->host;
    /* The loader stays loaded and initialised: see loader.c. */
    for (uint32_t i = 0; i < ctx->n_devices; i++) l0_device_close(ctx, i);
    host->free(host->host_ctx, ctx->devices);
    pthread_mutex_destroy(&ctx->lock);
    host->free(host->host_ctx, ctx);
}

static void announce(exo_plugin_ctx *ctx) {
    const char *loader_name = ctx->ze ? ctx->ze->name : L0_DEFAULT_LOADER;
    if (ctx->n_devices == 0) {
        l0_log(ctx->host, EXO_LOG_INFO, "0 devices: %s", ctx->reason);
        ctx->host->set_error(ctx->host->host_ctx, ctx->failure, ctx->failure_vendor, "%s",
                             ctx->reason);
        l0_build_info_set(ctx, "Level Zero headers 1.4; 0 devices: %s", ctx->reason);
        return;
    }
    for (uint32_t i = 0; i < ctx->n_devices; i++) {
        const exo_device_report *r = &ctx->devices[i].report;
        l0_log(ctx->host, EXO_LOG_INFO, "device %u: %s [%s] %.1f GiB, %u EUs @ %u MHz, score %u (%s)", i, r->name,
               r->fingerprint, (double)r->memory_total / (1024.0 * 1024.0 * 1024.0), r->compute_units, r->clock_mhz,
               r->score, r->reason);
    }
    l0_build_info_set(ctx, "Level Zero headers 1.4; loader %s; driver %s, API %s; %u device%s", loader_name,
                      ctx->devices[0].driver_version, ctx->devices[0].api_version, ctx->n_devices,
                      ctx->n_devices == 1 ? "" : "s");
}

static exo_status l0_probe(exo_plugin_ctx *ctx, uint32_t *count) {
    if (!ctx || !count) return EXO_ERR_INVALID_ARG;
    pthread_mutex_lock(&ctx->lock);
    exo_status st = EXO_OK;
    if (!ctx->probed) {
        ctx->probed = true;
        exo_status why = l0_loader_open(ctx->host, &ctx->ze, &ctx->failure_vendor, ctx->reason, sizeof ctx->reason);
        if (why != EXO_OK)
            ctx->failure = why; /* no loader, or zeInit failed: no ze* call from here on */
        else
            st = l0_probe_devices(ctx);
        if (st == EXO_OK) announce(ctx);
    }
    *count = st == EXO_OK ? ctx->n_devices : 0;
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

/* Written only inside the first probe (see l0_build_info_set), so no lock is needed to read it. */
static const char *l0_probe_build_info(exo_plugin_ctx *ctx) { return ctx ? ctx->build_info : NULL; }

/* Error for a device index that does not exist, with the remembered reason when there are none. */
static exo_status no_such_device(exo_plugin_ctx *ctx, const char *what, uint32_t index) {
    if (!ctx->probed)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0, "level_zero: %s before probe", what);
    if (ctx->n_devices == 0)
        return ctx->host->set_error(ctx->host->host_ctx, ctx->failure ? ctx->failure : EXO_ERR_NO_DEVICE,
                                    ctx->failure_vendor, "level_zero: %s of device %u: no devices: %s", what, index,
                                    ctx->reason);
    return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NOT_FOUND, 0,
                                "level_zero: %s of device %u: only %u device%s found", what, index, ctx->n_devices,
                                ctx->n_devices == 1 ? "" : "s");
}

static exo_status l0_device_report(exo_plugin_ctx *ctx, uint32_t index, exo_device_report *out) {
    if (!ctx || !out || out->hdr.size < sizeof(exo_struct_header)) return EXO_ERR_INVALID_ARG;
    pthread_mutex_lock(&ctx->lock);
    exo_status st = EXO_OK;
    if (!ctx->probed || index >= ctx->n_devices)
        st = no_such_device(ctx, "device_report", index);
    else
        st = exo_struct_copy_out(out, &ctx->devices[index].report, sizeof ctx->devices[index].report);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

static exo_status l0_device_telemetry(exo_plugin_ctx *ctx, uint32_t index, exo_device_telemetry *out) {
    if (!ctx || !out || out->hdr.size < sizeof(exo_struct_header)) return EXO_ERR_INVALID_ARG;
    pthread_mutex_lock(&ctx->lock);
    exo_status st;
    if (!ctx->probed || index >= ctx->n_devices)
        st = no_such_device(ctx, "device_telemetry", index);
    else
        st = l0_telemetry_read(ctx, &ctx->devices[index], out);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

static exo_status l0_entry(const exo_host_api *host, exo_plugin_api *out) {
    exo_plugin_api mine;
    memset(&mine, 0, sizeof mine);
    EXO_STRUCT_INIT(&mine);
    mine.name = "level_zero";
    mine.version = EXO_L0_PLUGIN_VERSION;
    mine.build_info = L0_BUILD_INFO_AT_ENTRY;
    mine.rank = EXO_RANK_LEVEL_ZERO;
    mine.init = l0_init;
    mine.shutdown = l0_shutdown;
    mine.probe = l0_probe;
    mine.probe_build_info = l0_probe_build_info;
    mine.device_report = l0_device_report;
    mine.device_telemetry = l0_device_telemetry;
    mine.device_open = l0_device_open;
    mine.device_close = l0_device_close;
    mine.buffer_alloc = l0_buffer_alloc;
    mine.buffer_write = l0_buffer_write;
    mine.buffer_read = l0_buffer_read;
    mine.buffer_free = l0_buffer_free;
    mine.peer_copy_supported = l0_peer_copy_supported;
    mine.buffer_copy_peer = l0_buffer_copy_peer;
#ifdef EXO_L0_HAVE_KERNELS
    mine.supports_graph = l0_supports_graph;
    mine.graph_compile = l0_graph_compile;
    mine.graph_execute = l0_graph_execute;
    mine.compiled_free = l0_compiled_free;
#endif
    return exo_plugin_fill(out, &mine);
}

EXO_PLUGIN_DEFINE(level_zero, l0_entry)
