/* A configurable plugin for registry tests (the OpenCL ICD loader's driver_stub idea).
 *
 * Build-time variants (compile definitions): FAKE_NAME (string), FAKE_MAJOR / FAKE_MINOR (ABI
 * version it claims), FAKE_SMALL_TABLE (fills only the table up to device_report, as a plugin
 * built against an older minor would), FAKE_NO_ENTRY (exports no entry symbol),
 * FAKE_NO_BUFFER_READ (a graph runner without buffer_read, which the contract refuses).
 * Built against tests/registry/abi_1_0/exo_plugin.h it is a plugin of ABI 1.0 (the old layout).
 * Run-time behaviour, read through the host's get_env so tests set it per case:
 *   EXO_FAKE_<NAME>_DEVICES  "type:score:fingerprint:free_mib[:name];..."  type = d|i|c|a
 *   EXO_FAKE_<NAME>_PROBE    "fail" | "crash" | "hang"
 *   EXO_FAKE_<NAME>_RANK     class rank (default 200)
 *   EXO_FAKE_<NAME>_OPEN     "fail": device_open fails
 *   EXO_FAKE_<NAME>_COMPILE  "fail": graph_compile fails (fallback tests)
 * Failures give host->set_error the vendor codes a driver would (a ze_result_t, a cl_int).
 * Buffers are host memory; executing a graph fills its outputs with zeros. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exo_plugin.h"

#ifndef FAKE_NAME
#define FAKE_NAME "fake"
#endif
#ifndef FAKE_MAJOR
#define FAKE_MAJOR EXO_ABI_MAJOR
#endif
#ifndef FAKE_MINOR
#define FAKE_MINOR EXO_ABI_MINOR
#endif

#define MAX_FAKE_DEVICES 8

struct exo_plugin_ctx {
    const exo_host_api *host;
    uint32_t n;
    exo_device_report reports[MAX_FAKE_DEVICES];
    char build_info[96]; /* what the last probe found (ABI 1.1's probe_build_info) */
};

static const char *fake_env(const exo_host_api *host, const char *what) {
    char name[128];
    snprintf(name, sizeof name, "EXO_FAKE_%s_%s", FAKE_NAME, what);
    return host->get_env(host->host_ctx, name);
}

static exo_status fake_init(const exo_host_api *host, exo_plugin_ctx **out) {
    exo_plugin_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return EXO_ERR_NO_MEMORY;
    ctx->host = host;
    *out = ctx;
    return EXO_OK;
}

static void fake_shutdown(exo_plugin_ctx *ctx) { free(ctx); }

static exo_device_type parse_type(char c) {
    switch (c) {
    case 'd': return EXO_DEVICE_DISCRETE_GPU;
    case 'i': return EXO_DEVICE_INTEGRATED_GPU;
    case 'a': return EXO_DEVICE_ACCELERATOR;
    default: return EXO_DEVICE_CPU;
    }
}

static exo_status fake_probe(exo_plugin_ctx *ctx, uint32_t *count) {
    const char *mode = fake_env(ctx->host, "PROBE");
    if (mode && strcmp(mode, "fail") == 0)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_BACKEND, 0x78000001, "fake driver refused to start");
    if (mode && strcmp(mode, "crash") == 0) raise(SIGSEGV);
    if (mode && strcmp(mode, "hang") == 0) for (;;) pause();
    const char *spec = fake_env(ctx->host, "DEVICES");
    if (!spec) spec = "d:100:fake-gpu-0:1024";
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", spec);
    ctx->n = 0;
    char *save = NULL;
    for (char *dev = strtok_r(copy, ";", &save); dev && ctx->n < MAX_FAKE_DEVICES; dev = strtok_r(NULL, ";", &save)) {
        exo_device_report *r = &ctx->reports[ctx->n];
        memset(r, 0, sizeof *r);
        EXO_STRUCT_INIT(r);
        char fp[64] = "", name[96] = "";
        char type = 'c';
        unsigned score = 0, free_mib = 0;
        if (sscanf(dev, "%c:%u:%63[^:]:%u:%95[^;]", &type, &score, fp, &free_mib, name) < 4) continue;
        r->type = parse_type(type);
        r->score = score;
        snprintf(r->fingerprint, sizeof r->fingerprint, "%s", fp);
        snprintf(r->name, sizeof r->name, "%s", name[0] ? name : "Fake device");
        snprintf(r->reason, sizeof r->reason, score ? "fake device" : "fake device that cannot serve");
        r->memory_total = r->memory_free = (uint64_t)free_mib << 20;
        ctx->n++;
    }
    if (ctx->n == 0)
        ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_NO_DEVICE, 0, "fake driver sees no hardware");
    snprintf(ctx->build_info, sizeof ctx->build_info, "registry test plugin; probe found %u device%s", ctx->n,
             ctx->n == 1 ? "" : "s");
    *count = ctx->n;
    return EXO_OK;
}

#if EXO_ABI_MINOR >= 1
static const char *fake_probe_build_info(exo_plugin_ctx *ctx) { return ctx->build_info; }
#endif

static exo_status fake_report(exo_plugin_ctx *ctx, uint32_t index, exo_device_report *out) {
    if (index >= ctx->n) return EXO_ERR_INVALID_ARG;
#if EXO_ABI_MINOR >= 1
    return exo_struct_copy_out(out, &ctx->reports[index], sizeof ctx->reports[index]);
#else /* the 1.0 header had no helper: what a plugin of that time wrote itself */
    uint32_t size = out->hdr.size < sizeof *out ? out->hdr.size : (uint32_t)sizeof *out;
    memcpy((char *)out + sizeof(exo_struct_header), (char *)&ctx->reports[index] + sizeof(exo_struct_header),
           size - sizeof(exo_struct_header));
    return EXO_OK;
#endif
}

static exo_status fake_open(exo_plugin_ctx *ctx, uint32_t index) {
    const char *mode = fake_env(ctx->host, "OPEN");
    if (mode && strcmp(mode, "fail") == 0)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_DEVICE_OOM, -5, "fake device out of memory");
    return index < ctx->n ? EXO_OK : EXO_ERR_INVALID_ARG;
}

struct exo_buffer {
    uint64_t size;
    unsigned char *data;
};

struct exo_compiled {
    exo_plugin_ctx *ctx;
    uint32_t n_tensors;
};

static exo_status fake_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size, exo_buffer_usage usage,
                                    exo_buffer **out) {
    exo_buffer *b = calloc(1, sizeof *b);
    if (b) b->data = calloc(1, size ? size : 1);
    if (!b || !b->data) {
        free(b);
        return EXO_ERR_NO_MEMORY;
    }
    b->size = size;
    *out = b;
    return EXO_OK;
}

static exo_status fake_buffer_write(exo_buffer *b, uint64_t offset, const void *data, uint64_t size) {
    if (offset > b->size || size > b->size - offset) return EXO_ERR_INVALID_ARG;
    memcpy(b->data + offset, data, size);
    return EXO_OK;
}

static exo_status fake_buffer_read(exo_buffer *b, uint64_t offset, void *data, uint64_t size) {
    if (offset > b->size || size > b->size - offset) return EXO_ERR_INVALID_ARG;
    memcpy(data, b->data + offset, size);
    return EXO_OK;
}

static void fake_buffer_free(exo_buffer *b) {
    if (b) free(b->data);
    free(b);
}

static exo_status fake_compile(exo_plugin_ctx *ctx, uint32_t device, const exo_graph *graph, exo_compiled **out) {
    const char *mode = fake_env(ctx->host, "COMPILE");
    if (mode && strcmp(mode, "fail") == 0)
        return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_BACKEND, -11, "fake kernel build failed");
    /* Indexed as a plugin of any minor may (1.0 knows no strides): the core hands every plugin
     * arrays it can walk with its own sizeof, so ids and operands must read back intact. */
    for (uint32_t i = 0; i < graph->n_tensors; i++)
        if (graph->tensors[i].id != i)
            return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0, "tensor %u reads id %u", i,
                                        graph->tensors[i].id);
    for (uint32_t i = 0; i < graph->n_nodes; i++)
        if (graph->nodes[i].dst >= graph->n_tensors || graph->nodes[i].n_src > EXO_MAX_SRC)
            return ctx->host->set_error(ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0, "node %u reads garbage", i);
    exo_compiled *c = calloc(1, sizeof *c);
    if (!c) return EXO_ERR_NO_MEMORY;
    c->ctx = ctx;
    c->n_tensors = graph->n_tensors;
    *out = c;
    return EXO_OK;
}

static exo_status fake_execute(exo_compiled *c, const exo_exec_args *args) {
    for (uint32_t b = 0; b < args->n_bindings; b++)
        if (args->bindings[b].tensor >= c->n_tensors || !args->bindings[b].buffer)
            return c->ctx->host->set_error(c->ctx->host->host_ctx, EXO_ERR_INVALID_ARG, 0, "binding %u reads garbage",
                                           b);
    return EXO_OK;
}
static void fake_compiled_free(exo_compiled *c) { free(c); }

static exo_status fake_entry(const exo_host_api *host, exo_plugin_api *out) {
    exo_plugin_api mine;
    memset(&mine, 0, sizeof mine);
    mine.name = FAKE_NAME;
    mine.version = "0.0.1";
    mine.build_info = "registry test plugin";
    const char *rank = NULL;
    char name[128];
    snprintf(name, sizeof name, "EXO_FAKE_%s_RANK", FAKE_NAME);
    rank = host->get_env(host->host_ctx, name);
    mine.rank = rank ? (uint32_t)atoi(rank) : 200;
    mine.init = fake_init;
    mine.shutdown = fake_shutdown;
    mine.probe = fake_probe;
    mine.device_report = fake_report;
    mine.device_open = fake_open;
    mine.buffer_alloc = fake_buffer_alloc;
    mine.buffer_write = fake_buffer_write;
#ifndef FAKE_NO_BUFFER_READ
    mine.buffer_read = fake_buffer_read;
#else
    (void)fake_buffer_read;
#endif
    mine.buffer_free = fake_buffer_free;
    mine.graph_compile = fake_compile;
    mine.graph_execute = fake_execute;
    mine.compiled_free = fake_compiled_free;
#if EXO_ABI_MINOR >= 1
    mine.probe_build_info = fake_probe_build_info;
#endif
    if (EXO_VERSION_MAJOR(out->hdr.version) != FAKE_MAJOR) {
        out->hdr.version = EXO_MAKE_VERSION(FAKE_MAJOR, FAKE_MINOR);
        return EXO_ERR_ABI_MISMATCH;
    }
    exo_status st = exo_plugin_fill(out, &mine);
    out->hdr.version = EXO_MAKE_VERSION(FAKE_MAJOR, FAKE_MINOR);
#ifdef FAKE_SMALL_TABLE
    out->hdr.size = (uint32_t)(offsetof(exo_plugin_api, device_report) + sizeof(void *));
#endif
    return st;
}

#ifndef FAKE_NO_ENTRY
EXO_PLUGIN_DEFINE(fake, fake_entry)
#else
EXO_PLUGIN_EXPORT exo_status not_the_entry(const exo_host_api *host, exo_plugin_api *out);
EXO_PLUGIN_EXPORT exo_status not_the_entry(const exo_host_api *host, exo_plugin_api *out) {
    return fake_entry(host, out);
}
#endif
