/* The runtime's internal state: plugins found, their devices, the ranking and selection.
 * Only core/ sees this header; EXO and tools go through exo.h. */
#ifndef EXO_REGISTRY_RUNTIME_H
#define EXO_REGISTRY_RUNTIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "base/error.h"
#include "base/log.h"
#include "exo.h"

#define EXO_PATH_MAX 4096
#define EXO_MAX_PLUGINS 64

typedef struct exo_runtime exo_runtime;
typedef struct exo_plugin_rec exo_plugin_rec;

/* What a plugin's host callbacks know about their caller. */
typedef struct exo_host_ctx {
    exo_runtime *rt;
    exo_plugin_rec *plugin;
} exo_host_ctx;

struct exo_plugin_rec {
    char name[64];
    char path[EXO_PATH_MAX];
    char version[64];
    char build_info[640];    /* after the entry, then as each probe left it (probe_build_info) */
    void *dl;                /* dlopen handle (NULL when not loaded in this process) */
    exo_plugin_api api;      /* zero beyond what the plugin filled */
    exo_plugin_ctx *ctx;
    exo_host_api host;
    exo_host_ctx host_ctx;
    exo_plugin_state state;
    exo_status status;
    char reason[EXO_ERROR_MAX];
    uint32_t class_rank;
    uint32_t abi_version;
    bool runs_graphs;           /* the table sets graph_compile (and so, checked at load, the rest) */
    bool inproc_failed;         /* loading in-process after an isolated probe failed: never retry */
    uint32_t n_devices;
    exo_device_report *reports; /* n_devices */
    bool *opened;               /* n_devices */
};

/* One device of one plugin. After de-duplication, `primary` is -1 for the device that
 * represents its physical device and the index of that device otherwise. */
typedef struct exo_device_rec {
    uint32_t plugin;
    uint32_t index;          /* within the plugin */
    const exo_device_report *report;
    uint32_t class_rank;
    bool usable;
    int32_t primary;
    char alternates[256];
    char rank_reason[256];
    /* Work on one device is serialised: a plugin's compiled graph and its device queue or
     * thread pool serve one execution at a time. */
    pthread_mutex_t exec_lock;
} exo_device_rec;

struct exo_runtime {
    exo_logger logger;
    exo_error_slot error;
    pthread_mutex_t lock;    /* device open / telemetry */
    uint32_t flags;
    uint32_t n_threads;
    uint32_t probe_timeout_ms;
    char device_spec[128];   /* EXO_DEVICE */
    char select[512], disable[512], rank_override[512];
    char **search_dirs;
    uint32_t n_search_dirs;

    exo_plugin_rec plugins[EXO_MAX_PLUGINS];
    uint32_t n_plugins;

    exo_device_rec *devices; /* every device of every plugin */
    uint32_t n_devices;
    /* The ranking: ranked[i] is the record (index into devices) of public device index i, so a
     * public device index is the device's position in the ranking. */
    uint32_t *ranked;
    uint32_t n_ranked;
    int32_t selected;        /* public device index, -1 when nothing is usable */
    exo_status selected_status;
    char selected_reason[512];
};

/* ---- plugin_search.c: the ordered list of directories to scan. */
exo_status exo_registry_search_dirs(exo_runtime *rt, const exo_runtime_options *opts);
/* Scans the directories for libexo-plugin-*.so and fills rt->plugins (name, path, state). */
exo_status exo_registry_scan(exo_runtime *rt);

/* ---- plugin_load.c */
void exo_registry_host_init(exo_runtime *rt, exo_plugin_rec *p);
/* dlopen + entry + negotiation + init. On failure p->state = FAILED with the reason. */
void exo_registry_load(exo_runtime *rt, exo_plugin_rec *p);
/* Runs the probe in this process and copies the reports. */
void exo_registry_probe(exo_runtime *rt, exo_plugin_rec *p);
void exo_registry_unload(exo_plugin_rec *p);
/* The detail the plugin last gave host->set_error on this thread, or `otherwise` when it gave
 * none since exo_registry_plugin_error_clear (per thread: see plugin_load.c). */
void exo_registry_plugin_error_clear(void);
const char *exo_registry_plugin_error(const exo_plugin_rec *p, const char *otherwise);

/* ---- probe_isolated.c: probes in a child process; fills reports or marks the plugin FAILED. */
void exo_registry_probe_isolated(exo_runtime *rt, exo_plugin_rec *p);

/* ---- ranking.c */
/* Glob list ("a,b*") match. */
bool exo_registry_glob_list_match(const char *list, const char *name);
/* Class rank of a plugin after EXO_PLUGIN_RANK overrides. */
uint32_t exo_registry_class_rank(const exo_runtime *rt, const char *name, uint32_t declared);
/* Builds rt->devices, de-duplicates, ranks and selects. */
exo_status exo_registry_rank(exo_runtime *rt);
/* Devices to try for work (public device indices), starting with `first`, then its alternates and the
 * other usable devices in rank order (CPU last). Returns how many were written. */
uint32_t exo_registry_fallback_order(const exo_runtime *rt, uint32_t first, uint32_t *out, uint32_t max);

/* ---- runtime.c: devices for work. `device` is a public device index (exo_device_get_info). */
exo_status exo_runtime_device_open(exo_runtime *rt, uint32_t device);
const exo_device_rec *exo_runtime_device(const exo_runtime *rt, uint32_t device);
exo_plugin_rec *exo_runtime_device_plugin(exo_runtime *rt, uint32_t device);
/* Holds a device's execution lock around plugin calls that use the device (buffers, compile,
 * execute) from the shard and session layer. */
void exo_runtime_device_lock(exo_runtime *rt, uint32_t device);
void exo_runtime_device_unlock(exo_runtime *rt, uint32_t device);

#endif
