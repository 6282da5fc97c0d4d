/* The cpu_amx plugin's entry point and function table, context lifetime and device open/close.
 * The CPU device is always present (one device, index 0). */
#include "cpu_plugin.h"
#include "threadpool.h"

#include <oneapi/dnnl/dnnl.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cpu_log(const exo_plugin_ctx *ctx, exo_log_level level, const char *fmt, ...) {
    if (!ctx->host->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ctx->host->log(ctx->host->host_ctx, level, CPU_PLUGIN_COMPONENT, line);
}

static exo_status cpu_init(const exo_host_api *host, exo_plugin_ctx **out) {
    if (!host || !out) return EXO_ERR_INVALID_ARG;
    exo_plugin_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return host->set_error(host->host_ctx, EXO_ERR_NO_MEMORY, 0, "cpu_amx init: out of memory");
    ctx->host = host;
    *out = ctx;
    return EXO_OK;
}

static void cpu_device_close(exo_plugin_ctx *ctx, uint32_t index) {
    if (!ctx || index != 0 || !ctx->open) return;
    cpu_threadpool_destroy(ctx->pool);
    ctx->pool = NULL;
    ctx->open = false;
}

static void cpu_shutdown(exo_plugin_ctx *ctx) {
    if (!ctx) return;
    cpu_device_close(ctx, 0);
    free(ctx);
}

static exo_status cpu_device_open(exo_plugin_ctx *ctx, uint32_t index) {
    if (index != 0) return cpu_error(ctx, EXO_ERR_NOT_FOUND, "cpu_amx device_open: no device %u (only 0)", index);
    if (ctx->open) return EXO_OK;
    if (!ctx->probed) cpu_detect_features(&ctx->features), ctx->probed = true;
    uint32_t threads = ctx->host->cpu_threads ? ctx->host->cpu_threads(ctx->host->host_ctx) : 0;
    if (threads == 0) threads = cpu_affinity_cores();
    char err[256] = "";
    ctx->pool = cpu_threadpool_create(threads, err, sizeof err);
    if (!ctx->pool) return cpu_error(ctx, EXO_ERR_NO_MEMORY, "cpu_amx device_open: %s", err);
    ctx->open = true;
    cpu_log(ctx, EXO_LOG_INFO, "device 0 open: %u threads, AVX-512 kernels %s", threads,
            ctx->features.avx512f ? "on" : "off (plain C)");
    return EXO_OK;
}

/* Written once per process: two runtimes may call the entry at the same time, and the core may
 * be reading the text one entry returned while another entry runs (the ABI's "Strings" rule). */
static char build_info[128];
static pthread_once_t build_info_once = PTHREAD_ONCE_INIT;

static void build_info_fill(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(build_info, sizeof build_info, "oneDNN %d.%d.%d; plain C reference + AVX-512 kernels", v->major,
             v->minor, v->patch);
}

static exo_status cpu_entry(const exo_host_api *host, exo_plugin_api *out) {
    pthread_once(&build_info_once, build_info_fill);
    exo_plugin_api mine;
    memset(&mine, 0, sizeof mine);
    EXO_STRUCT_INIT(&mine);
    mine.name = "cpu_amx";
    mine.version = "0.1.0";
    mine.build_info = build_info;
    mine.rank = EXO_RANK_CPU;
    mine.init = cpu_init;
    mine.shutdown = cpu_shutdown;
    mine.probe = cpu_probe;
    mine.device_report = cpu_device_report;
    mine.device_telemetry = cpu_device_telemetry;
    mine.device_open = cpu_device_open;
    mine.device_close = cpu_device_close;
    mine.buffer_alloc = cpu_buffer_alloc;
    mine.buffer_wrap_host = cpu_buffer_wrap_host;
    mine.buffer_write = cpu_buffer_write;
    mine.buffer_read = cpu_buffer_read;
    mine.buffer_free = cpu_buffer_free;
    mine.supports_graph = cpu_supports_graph;
    mine.graph_compile = cpu_graph_compile;
    mine.graph_execute = cpu_graph_execute;
    mine.compiled_free = cpu_compiled_free;
    return exo_plugin_fill(out, &mine);
}

EXO_PLUGIN_DEFINE(cpu_amx, cpu_entry)
