/* exo_runtime: creation (search, load, probe, rank), the public device and plugin queries,
 * and opening devices for work. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "base/struct_io.h"
#include "device_spec.h"

static void copy_option(char *dst, size_t size, const char *opt, const char *env) {
    const char *v = opt ? opt : secure_getenv(env);
    snprintf(dst, size, "%s", v ? v : "");
}

static bool plugin_filtered(exo_runtime *rt, exo_plugin_rec *p) {
    if (rt->select[0] && !exo_registry_glob_list_match(rt->select, p->name)) {
        snprintf(p->reason, sizeof p->reason, "not selected by EXO_PLUGINS_SELECT=%s", rt->select);
    } else if (rt->disable[0] && exo_registry_glob_list_match(rt->disable, p->name)) {
        snprintf(p->reason, sizeof p->reason, "disabled by EXO_PLUGINS_DISABLE=%s", rt->disable);
    } else {
        return false;
    }
    p->state = EXO_PLUGIN_SKIPPED;
    exo_logf(&rt->logger, EXO_LOG_INFO, "registry", "plugin %s skipped: %s", p->name, p->reason);
    return true;
}

exo_status exo_runtime_create(const exo_runtime_options *opts, exo_runtime **out) {
    exo_error_clear();
    if (!out) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_runtime_create: out is NULL");
    *out = NULL;
    if (opts && (opts->hdr.size < sizeof(exo_struct_header) ||
                 EXO_VERSION_MAJOR(opts->hdr.version) != EXO_API_MAJOR))
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_runtime_create: options header not initialised "
                                               "(use EXO_RUNTIME_OPTIONS_INIT)");
    exo_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) return exo_errorf(EXO_ERR_NO_MEMORY, "out of memory creating the runtime");
    /* Recursive: a log callback may call back into the runtime (telemetry) while it holds it. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rt->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    /* Options: each member is read only when the caller's struct holds it. */
    exo_log_fn log = NULL;
    void *log_user = NULL;
    int32_t level = EXO_LOG_LEVEL_DEFAULT;
    const char *select = NULL, *disable = NULL, *rank_override = NULL, *device = NULL;
    if (opts) {
        if (EXO_STRUCT_HAS(opts, exo_runtime_options, flags)) rt->flags = opts->flags;
        if (EXO_STRUCT_HAS(opts, exo_runtime_options, log_user)) {
            log = opts->log;
            log_user = opts->log_user;
        }
        if (EXO_STRUCT_HAS(opts, exo_runtime_options, log_level)) level = opts->log_level;
        if (EXO_STRUCT_HAS(opts, exo_runtime_options, n_threads)) rt->n_threads = opts->n_threads;
        if (EXO_STRUCT_HAS(opts, exo_runtime_options, device)) {
            select = opts->plugins_select;
            disable = opts->plugins_disable;
            rank_override = opts->plugin_rank;
            device = opts->device;
        }
        if (EXO_STRUCT_HAS(opts, exo_runtime_options, probe_timeout_ms)) rt->probe_timeout_ms = opts->probe_timeout_ms;
    }
    exo_logger_init(&rt->logger, log, log_user, level);
    copy_option(rt->select, sizeof rt->select, select, "EXO_PLUGINS_SELECT");
    copy_option(rt->disable, sizeof rt->disable, disable, "EXO_PLUGINS_DISABLE");
    copy_option(rt->rank_override, sizeof rt->rank_override, rank_override, "EXO_PLUGIN_RANK");
    copy_option(rt->device_spec, sizeof rt->device_spec, device, "EXO_DEVICE");

    exo_status st = exo_registry_search_dirs(rt, opts);
    if (st == EXO_OK) st = exo_registry_scan(rt);
    if (st != EXO_OK) {
        exo_runtime_destroy(rt);
        return st;
    }
    /* Isolated probes first: forking after vendor runtimes start threads in this process
     * (OpenMP, PoCL) is what makes children hang. */
    for (uint32_t i = 0; i < rt->n_plugins; i++) {
        exo_plugin_rec *p = &rt->plugins[i];
        if (plugin_filtered(rt, p)) continue;
        if (rt->flags & EXO_RUNTIME_PROBE_ISOLATED) exo_registry_probe_isolated(rt, p);
    }
    for (uint32_t i = 0; i < rt->n_plugins; i++) {
        exo_plugin_rec *p = &rt->plugins[i];
        if (p->state != EXO_PLUGIN_LOADED || (rt->flags & EXO_RUNTIME_PROBE_ISOLATED)) continue;
        exo_registry_load(rt, p);
        if (p->state == EXO_PLUGIN_LOADED) exo_registry_probe(rt, p);
    }
    st = exo_registry_rank(rt);
    if (st != EXO_OK) {
        exo_runtime_destroy(rt);
        return st;
    }
    *out = rt;
    return EXO_OK;
}

void exo_runtime_destroy(exo_runtime *rt) {
    if (!rt) return;
    for (uint32_t i = 0; i < rt->n_plugins; i++) exo_registry_unload(&rt->plugins[i]);
    for (uint32_t i = 0; i < rt->n_devices; i++) pthread_mutex_destroy(&rt->devices[i].exec_lock);
    for (uint32_t i = 0; i < rt->n_search_dirs; i++) free(rt->search_dirs[i]);
    free(rt->search_dirs);
    free(rt->devices);
    free(rt->ranked);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

const char *exo_runtime_last_error(const exo_runtime *rt) { return rt ? rt->error.message : ""; }
const char *exo_last_error(void) { return exo_error_message(); }

void exo_runtime_device_lock(exo_runtime *rt, uint32_t device) {
    if (device < rt->n_ranked) pthread_mutex_lock(&rt->devices[rt->ranked[device]].exec_lock);
}

void exo_runtime_device_unlock(exo_runtime *rt, uint32_t device) {
    if (device < rt->n_ranked) pthread_mutex_unlock(&rt->devices[rt->ranked[device]].exec_lock);
}

uint32_t exo_plugin_count(const exo_runtime *rt) { return rt ? rt->n_plugins : 0; }

/* The runtime's last error is the last failing call's, also for calls that take it const. */
static exo_status keep_rt(const exo_runtime *rt, exo_status st) {
    return exo_error_keep((exo_error_slot *)&rt->error, st);
}

exo_status exo_plugin_get_info(const exo_runtime *rt, uint32_t index, exo_plugin_info *out) {
    exo_error_clear();
    if (!rt) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_plugin_get_info: runtime is NULL");
    if (!out || out->hdr.size < sizeof(exo_struct_header))
        return keep_rt(rt, exo_errorf(EXO_ERR_INVALID_ARG, "exo_plugin_get_info: NULL argument or uninitialised header"));
    if (index >= rt->n_plugins)
        return keep_rt(rt, exo_errorf(EXO_ERR_INVALID_ARG, "exo_plugin_get_info: index %u out of range (%u plugins)",
                                      index, rt->n_plugins));
    const exo_plugin_rec *p = &rt->plugins[index];
    exo_plugin_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    info.name = p->name;
    info.path = p->path;
    info.version = p->version;
    info.build_info = p->build_info;
    info.state = p->state;
    info.status = p->status;
    info.reason = p->reason;
    info.class_rank = p->class_rank;
    info.abi_version = p->abi_version;
    info.n_devices = p->state == EXO_PLUGIN_LOADED ? p->n_devices : 0;
    exo_struct_copy_out(out, &info, sizeof info);
    return EXO_OK;
}

uint32_t exo_device_count(const exo_runtime *rt) { return rt ? rt->n_ranked : 0; }

const exo_device_rec *exo_runtime_device(const exo_runtime *rt, uint32_t device) {
    return device < rt->n_ranked ? &rt->devices[rt->ranked[device]] : NULL;
}

exo_plugin_rec *exo_runtime_device_plugin(exo_runtime *rt, uint32_t device) {
    return device < rt->n_ranked ? &rt->plugins[rt->devices[rt->ranked[device]].plugin] : NULL;
}

/* The public device index of the record rt->devices[rec], or -1. */
static int32_t device_index_of(const exo_runtime *rt, int32_t rec) {
    for (uint32_t i = 0; i < rt->n_ranked; i++)
        if (rt->ranked[i] == (uint32_t)rec) return (int32_t)i;
    return -1;
}

exo_status exo_device_get_info(const exo_runtime *rt, uint32_t index, exo_device_info *out) {
    exo_error_clear();
    if (!rt) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_get_info: runtime is NULL");
    if (!out || out->hdr.size < sizeof(exo_struct_header))
        return keep_rt(rt, exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_get_info: NULL argument or uninitialised header"));
    if (index >= rt->n_ranked)
        return keep_rt(rt, exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_get_info: index %u out of range (%u devices)",
                                      index, rt->n_ranked));
    const exo_device_rec *d = &rt->devices[rt->ranked[index]];
    exo_device_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    info.plugin = rt->plugins[d->plugin].name;
    info.plugin_index = d->index;
    info.position = index;
    info.class_rank = d->class_rank;
    info.usable = d->usable && d->class_rank > 0;
    info.report = d->report;
    info.alternates = d->alternates;
    info.rank_reason = d->rank_reason;
    info.alternate_of = d->primary >= 0 ? device_index_of(rt, d->primary) : -1;
    info.selected = rt->selected == (int32_t)index;
    exo_struct_copy_out(out, &info, sizeof info);
    return EXO_OK;
}

exo_status exo_device_selected(const exo_runtime *rt, uint32_t *index, const char **reason) {
    if (!rt) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_selected: runtime is NULL");
    if (reason) *reason = rt->selected_reason;
    if (rt->selected < 0) return keep_rt(rt, exo_errorf(rt->selected_status, "%s", rt->selected_reason));
    if (index) *index = (uint32_t)rt->selected;
    return EXO_OK;
}

exo_status exo_device_find(const exo_runtime *rt, const char *spec, uint32_t *index) {
    exo_error_clear();
    if (!rt) return exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_find: runtime is NULL");
    if (!spec || !index) return keep_rt(rt, exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_find: NULL argument"));
    exo_device_spec parsed;
    exo_status st = exo_device_spec_parse(spec, &parsed);
    if (st != EXO_OK) return keep_rt(rt, st);
    const char *plugin = parsed.plugin;
    uint32_t want = parsed.index;
    for (uint32_t i = 0; i < rt->n_ranked; i++) {
        const exo_device_rec *d = &rt->devices[rt->ranked[i]];
        if (strcmp(rt->plugins[d->plugin].name, plugin) == 0 && d->index == want) {
            *index = i;
            return EXO_OK;
        }
    }
    for (uint32_t i = 0; i < rt->n_plugins; i++)
        if (strcmp(rt->plugins[i].name, plugin) == 0)
            return keep_rt(rt, exo_errorf(EXO_ERR_NOT_FOUND, "device '%s': plugin %s has no device %u (%s)", spec,
                                          plugin, want,
                                          rt->plugins[i].reason[0] ? rt->plugins[i].reason : "index out of range"));
    return keep_rt(rt, exo_errorf(EXO_ERR_NOT_FOUND, "device '%s': no plugin named '%s' was loaded", spec, plugin));
}

/* Loads an isolated-probed plugin into this process on first use. */
static exo_status ensure_loaded(exo_runtime *rt, exo_plugin_rec *p) {
    if (p->inproc_failed)
        return exo_errorf(EXO_ERR_PLUGIN_LOAD, "plugin %s: loading it in-process failed earlier: %s", p->name, p->reason);
    if (p->dl && p->ctx) return EXO_OK;
    exo_device_report *kept = p->reports;
    bool *kept_opened = p->opened;
    uint32_t kept_n = p->n_devices;
    p->reports = NULL;
    p->opened = NULL;
    exo_registry_load(rt, p);
    if (p->state == EXO_PLUGIN_LOADED) exo_registry_probe(rt, p);
    exo_status st = EXO_OK;
    if (p->state != EXO_PLUGIN_LOADED || p->n_devices != kept_n) {
        /* The device list would not match the one the isolated probe ranked: never use it. */
        st = exo_errorf(EXO_ERR_PLUGIN_LOAD, "plugin %s: loading it in-process failed (%u devices, the isolated "
                        "probe saw %u): %s", p->name, p->n_devices, kept_n, p->reason);
        if (p->ctx && p->api.shutdown) p->api.shutdown(p->ctx);
        p->ctx = NULL;
        p->inproc_failed = true;
    }
    free(p->reports);
    free(p->opened);
    p->reports = kept; /* keep the pointers the device table holds */
    p->opened = kept_opened;
    p->n_devices = kept_n;
    return st;
}

exo_status exo_runtime_device_open(exo_runtime *rt, uint32_t device) {
    if (!rt || device >= rt->n_ranked) return exo_errorf(EXO_ERR_INVALID_ARG, "device %u does not exist", device);
    const exo_device_rec *d = &rt->devices[rt->ranked[device]];
    exo_plugin_rec *p = &rt->plugins[d->plugin];
    pthread_mutex_lock(&rt->lock);
    exo_status st = ensure_loaded(rt, p);
    if (st == EXO_OK && !p->opened[d->index]) {
        if (!p->api.device_open) {
            st = exo_errorf(EXO_ERR_UNSUPPORTED, "%s:%u: plugin cannot run work (no device_open)", p->name, d->index);
        } else {
            exo_registry_plugin_error_clear();
            st = p->api.device_open(p->ctx, d->index);
            if (st == EXO_OK)
                p->opened[d->index] = true;
            else
                exo_errorf_vendor(st, exo_error_vendor_code(), "%s:%u: opening the device failed: %s", p->name,
                                  d->index, exo_registry_plugin_error(p, exo_status_str(st)));
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return st;
}

exo_status exo_device_telemetry_read(exo_runtime *rt, uint32_t index, exo_device_telemetry *out) {
    if (!rt || !out || out->hdr.size < sizeof(exo_struct_header))
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_device_telemetry_read: NULL argument or uninitialised header");
    if (index >= rt->n_ranked)
        return exo_error_keep(&rt->error, exo_errorf(EXO_ERR_INVALID_ARG, "device %u out of range", index));
    const exo_device_rec *d = &rt->devices[rt->ranked[index]];
    exo_plugin_rec *p = &rt->plugins[d->plugin];
    exo_device_telemetry t;
    memset(&t, 0, sizeof t);
    EXO_ABI_STRUCT_INIT(&t);
    pthread_mutex_lock(&rt->lock);
    exo_status st = ensure_loaded(rt, p);
    if (st == EXO_OK && p->api.device_telemetry) {
        exo_registry_plugin_error_clear();
        st = p->api.device_telemetry(p->ctx, d->index, &t);
        if (st != EXO_OK)
            exo_errorf_vendor(st, exo_error_vendor_code(), "%s:%u: telemetry failed: %s", p->name, d->index,
                              exo_registry_plugin_error(p, exo_status_str(st)));
    }
    pthread_mutex_unlock(&rt->lock);
    EXO_ABI_STRUCT_INIT(&t);
    exo_struct_copy_out(out, &t, sizeof t);
    return exo_error_keep(&rt->error, st);
}
