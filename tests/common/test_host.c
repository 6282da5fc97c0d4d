#include "test_host.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void host_log(void *ctx, exo_log_level level, const char *component, const char *msg) {
    exo_test_host *h = ctx;
    size_t used = strlen(h->log);
    snprintf(h->log + used, sizeof h->log - used, "%d %s %s\n", (int)level, component, msg);
}

static exo_status host_set_error(void *ctx, exo_status status, int64_t vendor, const char *fmt, ...) {
    exo_test_host *h = ctx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->last_error, sizeof h->last_error, fmt, ap);
    va_end(ap);
    h->last_status = status;
    (void)vendor;
    return status;
}

static const char *host_get_env(void *ctx, const char *name) { return getenv(name); }
static void *host_alloc(void *ctx, size_t size) { return malloc(size); }
static void host_free(void *ctx, void *p) { free(p); }
static uint64_t host_now(void *ctx) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static uint32_t host_threads(void *ctx) { return ((exo_test_host *)ctx)->threads; }

void exo_test_host_init(exo_test_host *h) {
    memset(h, 0, sizeof *h);
    EXO_STRUCT_INIT(&h->api);
    h->api.host_ctx = h;
    h->api.log = host_log;
    h->api.set_error = host_set_error;
    h->api.get_env = host_get_env;
    h->api.alloc = host_alloc;
    h->api.free = host_free;
    h->api.now_ns = host_now;
    h->api.cpu_threads = host_threads;
}

exo_status exo_test_plugin_load(exo_test_host *h, const char *dir, const char *name,
                                exo_plugin_api *api, exo_plugin_ctx **ctx) {
    char path[1024];
    snprintf(path, sizeof path, "%s/libexo-plugin-%s.so", dir, name);
    h->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h->dl) return host_set_error(h, EXO_ERR_PLUGIN_LOAD, 0, "dlopen %s: %s", path, dlerror());
    exo_plugin_entry_fn entry = (exo_plugin_entry_fn)dlsym(h->dl, EXO_PLUGIN_ENTRY_SYMBOL);
    if (!entry) return host_set_error(h, EXO_ERR_PLUGIN_LOAD, 0, "%s: no exo_plugin_entry", path);
    memset(api, 0, sizeof *api);
    EXO_STRUCT_INIT(api);
    exo_status st = entry(&h->api, api);
    if (st != EXO_OK) return host_set_error(h, st, 0, "%s: entry failed", path);
    return api->init(&h->api, ctx);
}

void exo_test_plugin_unload(exo_test_host *h, exo_plugin_api *api, exo_plugin_ctx *ctx) {
    if (api && api->shutdown && ctx) api->shutdown(ctx);
    /* Keep the library mapped: vendor runtimes (PoCL, oneDNN) dislike being unloaded. */
}
