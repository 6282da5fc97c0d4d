/*
 * exo.h — the public C API of exo-ipex (libexocore).
 *
 * Style (libuv): exo_<noun>_<verb>, opaque handles, inputs first and out-params last, every
 * call that can fail returns an exo_status (0 ok, negative error). exo_status_name() and
 * exo_status_str() give static strings; the detail of a failure is kept per object
 * (exo_runtime_last_error, exo_model_last_error, ...) and per thread (exo_last_error).
 * Caller-sized structs: set hdr with EXO_STRUCT_INIT before passing them in.
 * The library never aborts or exits, and never crashes on bad input.
 */
#ifndef EXO_H
#define EXO_H

#include "exo_plugin.h" /* shared POD types: status codes, device reports, telemetry */

#ifdef __cplusplus
extern "C" {
#endif

#define EXO_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define EXO_API __attribute__((visibility("default")))
#else
#define EXO_API
#endif

/* ---------------------------------------------------------------- status and errors */

EXO_API const char *exo_status_name(exo_status status); /* "EXO_ERR_IO" */
EXO_API const char *exo_status_str(exo_status status);  /* "input/output error" */
/* Detail of the last failure on the calling thread ("" when none). */
EXO_API const char *exo_last_error(void);

/* ---------------------------------------------------------------- logging */

typedef void (*exo_log_fn)(void *user, exo_log_level level, const char *component,
                           const char *message);

/* ---------------------------------------------------------------- runtime */

typedef struct exo_runtime exo_runtime;

/* exo_runtime_options.flags */
#define EXO_RUNTIME_PROBE_ISOLATED (1u << 0) /* probe each plugin in a child process */
#define EXO_RUNTIME_NO_DEFAULT_PATHS (1u << 1) /* search only plugin_paths and EXO_PLUGIN_PATH */

typedef struct exo_runtime_options {
    exo_struct_header hdr;
    const char *const *plugin_paths; /* directories searched first */
    uint32_t n_plugin_paths;
    uint32_t flags;                  /* EXO_RUNTIME_* */
    exo_log_fn log;                  /* NULL: stderr */
    void *log_user;
    int32_t log_level;               /* -1: EXO_LOG_LEVEL, else warn */
    uint32_t n_threads;              /* CPU worker threads; 0: all cores */
    /* Filters; NULL falls back to the environment variable of the same name. */
    const char *plugins_select;      /* EXO_PLUGINS_SELECT: comma-separated globs */
    const char *plugins_disable;     /* EXO_PLUGINS_DISABLE */
    const char *plugin_rank;         /* EXO_PLUGIN_RANK: "opencl:300,level_zero:0" */
    const char *device;              /* EXO_DEVICE: "plugin[:index]" */
    uint32_t probe_timeout_ms;       /* isolated probes; 0: 10000 */
    uint32_t reserved;
} exo_runtime_options;

/* Discovers, loads, probes and ranks plugins. Never fails because a plugin is broken: such
 * plugins are listed with the reason. opts may be NULL. */
EXO_API exo_status exo_runtime_create(const exo_runtime_options *opts, exo_runtime **out);
EXO_API void exo_runtime_destroy(exo_runtime *rt);
EXO_API const char *exo_runtime_last_error(const exo_runtime *rt);

/* ---------------------------------------------------------------- plugins */

typedef int32_t exo_plugin_state;
enum {
    EXO_PLUGIN_LOADED = 0,   /* entry negotiated, probe ran */
    EXO_PLUGIN_SKIPPED = 1,  /* filtered out by the options / environment */
    EXO_PLUGIN_FAILED = 2,   /* dlopen, symbol, ABI or probe failure */
    EXO_PLUGIN_STATE_FORCE_INT32 = 0x7fffffff
};

typedef struct exo_plugin_info {
    exo_struct_header hdr;
    const char *name;      /* from the plugin, or derived from the file name when it failed */
    const char *path;
    const char *version;
    const char *build_info;
    exo_plugin_state state;
    exo_status status;     /* why it failed (EXO_OK otherwise) */
    const char *reason;    /* human-readable reason for the state */
    uint32_t class_rank;   /* effective (after EXO_PLUGIN_RANK) */
    uint32_t abi_version;  /* negotiated */
    uint32_t n_devices;
    uint32_t reserved;
} exo_plugin_info;

EXO_API uint32_t exo_plugin_count(const exo_runtime *rt);
EXO_API exo_status exo_plugin_get_info(const exo_runtime *rt, uint32_t index, exo_plugin_info *out);

/* ---------------------------------------------------------------- devices (in rank order) */

typedef struct exo_device_info {
    exo_struct_header hdr;
    const char *plugin;               /* plugin name */
    uint32_t plugin_index;            /* device index within the plugin (EXO_DEVICE=plugin:N) */
    uint32_t rank;                    /* 0 = best */
    uint32_t class_rank;
    uint32_t usable;                  /* score > 0, class rank > 0, not filtered */
    const exo_device_report *report;  /* owned by the runtime */
    const char *alternates;           /* same physical device through other plugins: "opencl:0" */
    const char *rank_reason;          /* the ranking key, written out */
} exo_device_info;

/* Devices after de-duplication, best first. Strings live until exo_runtime_destroy. */
EXO_API uint32_t exo_device_count(const exo_runtime *rt);
EXO_API exo_status exo_device_get_info(const exo_runtime *rt, uint32_t index, exo_device_info *out);
EXO_API exo_status exo_device_telemetry_read(exo_runtime *rt, uint32_t index, exo_device_telemetry *out);

/* The device work goes to by default (EXO_DEVICE honoured) and why. EXO_ERR_NO_DEVICE when none. */
EXO_API exo_status exo_device_selected(const exo_runtime *rt, uint32_t *index, const char **reason);

/* Finds a device by "plugin[:index]" (index within that plugin; default 0). */
EXO_API exo_status exo_device_find(const exo_runtime *rt, const char *spec, uint32_t *index);

#ifdef __cplusplus
}
#endif
#endif /* EXO_H */
