/* Loading one plugin: dlopen(RTLD_NOW | RTLD_LOCAL), the entry symbol, ABI negotiation
 * (major exact, minor down to the smaller), init and probe. A plugin that fails any step is
 * kept in the list as FAILED with the reason, so exo-probe can show it; it never takes the
 * runtime down. */
#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "runtime.h"

#define MAX_DEVICES_PER_PLUGIN 64

/* ---------------------------------------------------------------- the host table */

static void host_log(void *ctx, exo_log_level level, const char *component, const char *msg) {
    exo_host_ctx *h = ctx;
    char comp[96];
    snprintf(comp, sizeof comp, "plugin:%s", h->plugin->name);
    exo_logf(&h->rt->logger, level, component && *component ? component : comp, "%s", msg ? msg : "");
}

/* The plugin's own words for its last failure, per thread like errno: a plugin may fail on
 * several threads at once (two devices, two runtimes), and the core reads the detail on the
 * thread that made the call, right after it returns. */
static _Thread_local struct {
    const exo_plugin_rec *plugin;
    char message[EXO_ERROR_MAX];
} plugin_error;

void exo_registry_plugin_error_clear(void) {
    plugin_error.plugin = NULL;
    plugin_error.message[0] = '\0';
}

const char *exo_registry_plugin_error(const exo_plugin_rec *p, const char *otherwise) {
    return plugin_error.plugin == p && plugin_error.message[0] ? plugin_error.message : otherwise;
}

/* True when `number` stands in `msg` as a whole token (not inside a longer number or word). */
static bool names_number(const char *msg, const char *number) {
    size_t len = strlen(number);
    for (const char *at = strstr(msg, number); at; at = strstr(at + 1, number)) {
        bool starts = at == msg || !(isalnum((unsigned char)at[-1]) || at[-1] == '-');
        bool ends = !isalnum((unsigned char)at[len]);
        if (starts && ends) return true;
    }
    return false;
}

/* Appends the vendor code unless the plugin's text already names it (the OpenCL plugin writes
 * "CL_INVALID_VALUE (-30)"). Level Zero's codes read best in hex, as its headers spell them. */
static void append_vendor_code(char *msg, size_t cap, int64_t code) {
    if (code == 0) return;
    char dec[32], hex[32];
    snprintf(dec, sizeof dec, "%lld", (long long)code);
    snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)code);
    if (names_number(msg, dec) || strcasestr(msg, hex)) return;
    size_t used = strlen(msg);
    bool big = code > 0xffff || code < -0xffff;
    snprintf(msg + used, cap - used, " (vendor code %s)", big ? hex : dec);
}

static exo_status host_set_error(void *ctx, exo_status status, int64_t vendor_code, const char *fmt, ...) {
    exo_host_ctx *h = ctx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(plugin_error.message, sizeof plugin_error.message, fmt ? fmt : "", ap);
    va_end(ap);
    append_vendor_code(plugin_error.message, sizeof plugin_error.message, vendor_code);
    plugin_error.plugin = h->plugin;
    exo_errorf_vendor(status, vendor_code, "%s: %s", h->plugin->name, plugin_error.message);
    return status;
}

static const char *host_get_env(void *ctx, const char *name) { return name ? secure_getenv(name) : NULL; }
static void *host_alloc(void *ctx, size_t size) { return malloc(size); }
static void host_free(void *ctx, void *ptr) { free(ptr); }
static uint64_t host_now_ns(void *ctx) { return exo_now_ns(); }
static uint32_t host_cpu_threads(void *ctx) { return ((exo_host_ctx *)ctx)->rt->n_threads; }

void exo_registry_host_init(exo_runtime *rt, exo_plugin_rec *p) {
    memset(&p->host, 0, sizeof p->host);
    EXO_ABI_STRUCT_INIT(&p->host);
    p->host_ctx.rt = rt;
    p->host_ctx.plugin = p;
    p->host.host_ctx = &p->host_ctx;
    p->host.log = host_log;
    p->host.set_error = host_set_error;
    p->host.get_env = host_get_env;
    p->host.alloc = host_alloc;
    p->host.free = host_free;
    p->host.now_ns = host_now_ns;
    p->host.cpu_threads = host_cpu_threads;
}

/* ---------------------------------------------------------------- loading */

static void fail(exo_runtime *rt, exo_plugin_rec *p, exo_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(exo_runtime *rt, exo_plugin_rec *p, exo_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    p->state = EXO_PLUGIN_FAILED;
    p->status = status;
    exo_logf(&rt->logger, EXO_LOG_WARN, "registry", "plugin %s (%s) skipped: %s: %s", p->name,
             p->path, exo_status_name(status), p->reason);
}

/* Copies plugin text into the record only when it changed. exo_plugin_get_info hands out
 * pointers into the record that callers read at any time; a plugin probed in a child process
 * is loaded again in-process on first use, and rewriting the same text then would race those
 * readers for nothing. */
static void set_text(char *dst, size_t cap, const char *src) {
    if (strncmp(dst, src, cap - 1) != 0) snprintf(dst, cap, "%s", src);
}

/* The members a plugin table must hold for the core to use it at all. */
#define REQUIRED_TABLE_SIZE (offsetof(exo_plugin_api, device_report) + sizeof(void *))

/* The contract's REQUIRED members (exo_plugin.h, "REQUIRED / OPTIONAL"): always init, probe and
 * device_report; for a plugin that sets graph_compile, everything the core calls to run a
 * graph. Names the missing ones in `why`; returns false when any is missing. */
static bool table_complete(const exo_plugin_api *a, char *why, size_t cap) {
    const struct { const char *name; bool present; bool needed; } members[] = {
        {"init", a->init != NULL, true},
        {"probe", a->probe != NULL, true},
        {"device_report", a->device_report != NULL, true},
        {"device_open", a->device_open != NULL, a->graph_compile != NULL},
        {"buffer_alloc", a->buffer_alloc != NULL, a->graph_compile != NULL},
        {"buffer_write", a->buffer_write != NULL, a->graph_compile != NULL},
        {"buffer_read", a->buffer_read != NULL, a->graph_compile != NULL},
        {"buffer_free", a->buffer_free != NULL, a->graph_compile != NULL},
        {"graph_execute", a->graph_execute != NULL, a->graph_compile != NULL},
        {"compiled_free", a->compiled_free != NULL, a->graph_compile != NULL},
    };
    size_t used = 0;
    why[0] = '\0';
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (members[i].needed && !members[i].present && used < cap)
            used += (size_t)snprintf(why + used, cap - used, "%s%s", used ? ", " : "", members[i].name);
    return used == 0;
}

void exo_registry_load(exo_runtime *rt, exo_plugin_rec *p) {
    exo_registry_host_init(rt, p);
    dlerror();
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        const char *why = dlerror();
        fail(rt, p, EXO_ERR_PLUGIN_LOAD, "dlopen failed: %s", why ? why : "unknown error");
        return;
    }
    exo_plugin_entry_fn entry = (exo_plugin_entry_fn)dlsym(p->dl, EXO_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        fail(rt, p, EXO_ERR_PLUGIN_LOAD, "does not export %s", EXO_PLUGIN_ENTRY_SYMBOL);
        return;
    }
    memset(&p->api, 0, sizeof p->api);
    EXO_ABI_STRUCT_INIT(&p->api);
    exo_registry_plugin_error_clear();
    exo_status st = entry(&p->host, &p->api);
    uint32_t theirs = p->api.hdr.version;
    if (st == EXO_ERR_ABI_MISMATCH || EXO_VERSION_MAJOR(theirs) != EXO_ABI_MAJOR) {
        fail(rt, p, EXO_ERR_ABI_MISMATCH, "plugin ABI %u.%u, core ABI %u.%u: major versions differ",
             EXO_VERSION_MAJOR(theirs), EXO_VERSION_MINOR(theirs), EXO_ABI_MAJOR, EXO_ABI_MINOR);
        return;
    }
    if (st != EXO_OK) {
        fail(rt, p, st, "entry point failed: %s", exo_registry_plugin_error(p, exo_status_str(st)));
        return;
    }
    /* A plugin built against an older minor fills a shorter table: everything past its size
     * must read as absent (NULL), whatever the plugin left there. */
    uint32_t size = p->api.hdr.size;
    if (size > sizeof p->api) size = sizeof p->api;
    if (size < REQUIRED_TABLE_SIZE) {
        fail(rt, p, EXO_ERR_ABI_MISMATCH, "plugin table is %u bytes, smaller than the %zu the core needs",
             size, (size_t)REQUIRED_TABLE_SIZE);
        return;
    }
    memset((char *)&p->api + size, 0, sizeof p->api - size);
    uint32_t their_minor = EXO_VERSION_MINOR(theirs), our_minor = EXO_ABI_MINOR;
    uint32_t minor = their_minor < our_minor ? their_minor : our_minor;
    p->abi_version = EXO_MAKE_VERSION(EXO_ABI_MAJOR, minor);
    char missing[256];
    if (!table_complete(&p->api, missing, sizeof missing)) {
        fail(rt, p, EXO_ERR_ABI_MISMATCH, "plugin table lacks required member%s %s%s", strchr(missing, ',') ? "s" : "",
             missing, p->api.graph_compile ? " (a plugin that sets graph_compile must run graphs end to end)" : "");
        return;
    }
    if (p->api.name && strcmp(p->api.name, p->name) != 0)
        exo_logf(&rt->logger, EXO_LOG_WARN, "registry", "plugin file %s calls itself '%s'; using '%s'",
                 p->path, p->api.name, p->name);
    set_text(p->version, sizeof p->version, p->api.version ? p->api.version : "");
    if (!p->build_info[0]) /* kept when an isolated probe already gave the text after probe */
        set_text(p->build_info, sizeof p->build_info, p->api.build_info ? p->api.build_info : "");
    p->class_rank = exo_registry_class_rank(rt, p->name, p->api.rank);
    p->runs_graphs = p->api.graph_compile != NULL; /* table_complete checked the rest of the set */
    exo_registry_plugin_error_clear();
    st = p->api.init(&p->host, &p->ctx);
    if (st != EXO_OK) {
        p->ctx = NULL;
        fail(rt, p, st, "init failed: %s", exo_registry_plugin_error(p, exo_status_str(st)));
        return;
    }
    exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "plugin %s %s loaded from %s (ABI %u.%u, class rank %u)",
             p->name, p->version, p->path, EXO_ABI_MAJOR, minor, p->class_rank);
}

/* Copies device reports out of the plugin, normalising what a buggy plugin may leave. */
static void read_reports(exo_runtime *rt, exo_plugin_rec *p, uint32_t count) {
    p->reports = calloc(count ? count : 1, sizeof *p->reports);
    p->opened = calloc(count ? count : 1, sizeof *p->opened);
    if (!p->reports || !p->opened) {
        fail(rt, p, EXO_ERR_NO_MEMORY, "out of memory reading %u device reports", count);
        return;
    }
    p->n_devices = count;
    for (uint32_t i = 0; i < count; i++) {
        exo_device_report *r = &p->reports[i];
        EXO_ABI_STRUCT_INIT(r);
        exo_registry_plugin_error_clear();
        exo_status st = p->api.device_report(p->ctx, i, r);
        EXO_ABI_STRUCT_INIT(r);
        if (st != EXO_OK) {
            r->score = 0;
            snprintf(r->reason, sizeof r->reason, "device report failed: %s",
                     exo_registry_plugin_error(p, exo_status_str(st)));
        }
        r->reason[sizeof r->reason - 1] = r->fingerprint[sizeof r->fingerprint - 1] = '\0';
        r->name[sizeof r->name - 1] = r->vendor[sizeof r->vendor - 1] = '\0';
        r->driver_version[sizeof r->driver_version - 1] = r->api_version[sizeof r->api_version - 1] = '\0';
        r->isa[sizeof r->isa - 1] = '\0';
        if (!r->fingerprint[0]) snprintf(r->fingerprint, sizeof r->fingerprint, "%s:%u", p->name, i);
    }
}

void exo_registry_probe(exo_runtime *rt, exo_plugin_rec *p) {
    uint32_t count = 0;
    exo_registry_plugin_error_clear();
    exo_status st = p->api.probe(p->ctx, &count);
    if (st == EXO_ERR_NO_DEVICE) { /* "nothing here", with the reason in the plugin error */
        st = EXO_OK;
        count = 0;
    }
    if (st != EXO_OK) {
        fail(rt, p, st, "probe failed: %s", exo_registry_plugin_error(p, exo_status_str(st)));
        return;
    }
    if (count > MAX_DEVICES_PER_PLUGIN) {
        exo_logf(&rt->logger, EXO_LOG_WARN, "registry", "plugin %s reports %u devices; using the first %u",
                 p->name, count, MAX_DEVICES_PER_PLUGIN);
        count = MAX_DEVICES_PER_PLUGIN;
    }
    /* The text as this probe left it (the ABI's "Strings" rule): read here, on the probing
     * thread, so exo-probe never shows what the plugin knew before it probed. */
    const char *text = p->api.probe_build_info ? p->api.probe_build_info(p->ctx) : NULL;
    if (text && *text) set_text(p->build_info, sizeof p->build_info, text);
    if (count == 0) {
        snprintf(p->reason, sizeof p->reason, "%s", exo_registry_plugin_error(p, "no devices found"));
        exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "plugin %s: no devices: %s", p->name, p->reason);
    }
    read_reports(rt, p, count);
}

void exo_registry_unload(exo_plugin_rec *p) {
    if (p->ctx && p->api.shutdown) {
        if (p->opened && p->api.device_close)
            for (uint32_t i = 0; i < p->n_devices; i++)
                if (p->opened[i]) p->api.device_close(p->ctx, i);
        p->api.shutdown(p->ctx);
    }
    p->ctx = NULL;
    /* The library stays mapped: vendor runtimes (OpenMP, PoCL, Level Zero) keep threads and
     * atexit handlers that point into it, and unloading them is a classic crash at exit. */
    free(p->reports);
    free(p->opened);
    p->reports = NULL;
    p->opened = NULL;
}
