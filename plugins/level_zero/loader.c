/* loader.c — finds libze_loader.so.1 at run time (the plugin never links it, so it loads on
 * machines without Level Zero), resolves the entry points, and runs zeInit once per process.
 *
 * Process-wide on purpose: the loader keeps global state, zeInit's outcome holds for the whole
 * process, and after a failed zeInit loader 1.8 may call into a driver it already unloaded, so
 * no ze* function may be called again — not even zeInit from a second plugin context. The
 * library is never dlclosed for the same reason (drivers register exit handlers). */
#include "l0_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static l0_loader loader;

#define RESOLVE(field, required)                                                               \
    do {                                                                                       \
        *(void **)&l->field = dlsym(l->lib, #field);                                           \
        if (!l->field && (required)) {                                                         \
            snprintf(reason, reason_size, "%s is not a usable Level Zero loader: it has no %s", \
                     l->name, #field);                                                         \
            return false;                                                                      \
        }                                                                                      \
    } while (0)

/* Execution entry points: a loader without one still probes; device_open names what is missing. */
#define RESOLVE_EXEC(field)                                                                    \
    do {                                                                                       \
        *(void **)&l->field = dlsym(l->lib, #field);                                           \
        if (!l->field && !l->missing_exec_symbol[0])                                           \
            snprintf(l->missing_exec_symbol, sizeof l->missing_exec_symbol, "%s", #field);     \
    } while (0)

static void resolve_exec_symbols(l0_loader *l) {
    RESOLVE_EXEC(zeDriverGetExtensionProperties);
    RESOLVE_EXEC(zeDeviceGetCommandQueueGroupProperties);
    RESOLVE_EXEC(zeContextCreate);
    RESOLVE_EXEC(zeContextDestroy);
    RESOLVE_EXEC(zeCommandQueueCreate);
    RESOLVE_EXEC(zeCommandQueueDestroy);
    RESOLVE_EXEC(zeCommandQueueExecuteCommandLists);
    RESOLVE_EXEC(zeCommandListCreate);
    RESOLVE_EXEC(zeCommandListCreateImmediate);
    RESOLVE_EXEC(zeCommandListDestroy);
    RESOLVE_EXEC(zeCommandListClose);
    RESOLVE_EXEC(zeCommandListReset);
    RESOLVE_EXEC(zeCommandListAppendMemoryCopy);
    RESOLVE_EXEC(zeCommandListAppendLaunchKernel);
    RESOLVE_EXEC(zeFenceCreate);
    RESOLVE_EXEC(zeFenceDestroy);
    RESOLVE_EXEC(zeFenceHostSynchronize);
    RESOLVE_EXEC(zeFenceReset);
    RESOLVE_EXEC(zeMemAllocDevice);
    RESOLVE_EXEC(zeMemFree);
    RESOLVE_EXEC(zeModuleCreate);
    RESOLVE_EXEC(zeModuleDestroy);
    RESOLVE_EXEC(zeModuleBuildLogGetString);
    RESOLVE_EXEC(zeModuleBuildLogDestroy);
    RESOLVE_EXEC(zeKernelCreate);
    RESOLVE_EXEC(zeKernelDestroy);
    RESOLVE_EXEC(zeKernelSetGroupSize);
    RESOLVE_EXEC(zeKernelSetArgumentValue);
    l->has_exec_symbols = !l->missing_exec_symbol[0];
    /* Peer copies (optional: without them every hand-over between devices goes through host
     * memory; both are API 1.0 entry points, loader 1.8 has them). */
    *(void **)&l->zeDeviceCanAccessPeer = dlsym(l->lib, "zeDeviceCanAccessPeer");
    *(void **)&l->zeDeviceGetP2PProperties = dlsym(l->lib, "zeDeviceGetP2PProperties");
}

static bool resolve_symbols(l0_loader *l, char *reason, size_t reason_size) {
    RESOLVE(zeInit, true);
    RESOLVE(zeDriverGet, true);
    RESOLVE(zeDriverGetProperties, true);
    RESOLVE(zeDriverGetApiVersion, true);
    RESOLVE(zeDeviceGet, true);
    RESOLVE(zeDeviceGetProperties, true);
    RESOLVE(zeDeviceGetComputeProperties, true);
    RESOLVE(zeDeviceGetMemoryProperties, true);
    RESOLVE(zeDeviceGetModuleProperties, true);
    RESOLVE(zesDevicePciGetProperties, false);
    RESOLVE(zesDeviceEnumMemoryModules, false);
    RESOLVE(zesMemoryGetState, false);
    RESOLVE(zesMemoryGetBandwidth, false);
    RESOLVE(zesDeviceEnumEngineGroups, false);
    RESOLVE(zesEngineGetProperties, false);
    RESOLVE(zesEngineGetActivity, false);
    RESOLVE(zesDeviceEnumTemperatureSensors, false);
    RESOLVE(zesTemperatureGetProperties, false);
    RESOLVE(zesTemperatureGetState, false);
    RESOLVE(zesDeviceEnumPowerDomains, false);
    RESOLVE(zesPowerGetProperties, false);
    RESOLVE(zesPowerGetEnergyCounter, false);
    RESOLVE(zesDeviceEnumFrequencyDomains, false);
    RESOLVE(zesFrequencyGetProperties, false);
    RESOLVE(zesFrequencyGetState, false);
    l->has_sysman_symbols = l->zesDevicePciGetProperties && l->zesDeviceEnumMemoryModules && l->zesMemoryGetState;
    resolve_exec_symbols(l);
    return true;
}

static exo_status open_library(const exo_host_api *host, char *reason, size_t reason_size) {
    const char *name = host->get_env ? host->get_env(host->host_ctx, "EXO_ZE_LOADER") : NULL;
    if (!name || !*name) name = L0_DEFAULT_LOADER;
    l0_loader fresh;
    memset(&fresh, 0, sizeof fresh);
    snprintf(fresh.name, sizeof fresh.name, "%s", name);
    dlerror();
    fresh.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!fresh.lib) {
        const char *why = dlerror();
        snprintf(reason, reason_size, "Level Zero loader %s not found: %s", name, why ? why : "dlopen failed");
        return EXO_ERR_NOT_FOUND; /* not remembered: a later probe may find it */
    }
    if (!resolve_symbols(&fresh, reason, reason_size)) {
        dlclose(fresh.lib); /* nothing of it ran yet, so unloading is safe */
        return EXO_ERR_PLUGIN_LOAD;
    }
    loader = fresh;
    l0_log(host, EXO_LOG_DEBUG, "opened Level Zero loader %s%s", loader.name,
           loader.has_sysman_symbols ? "" : " (without Sysman entry points)");
    return EXO_OK;
}

/* API 1.4 has no zesInit: Sysman on ze device handles needs ZES_ENABLE_SYSMAN=1 in the
 * environment before the first zeInit of the process. setenv races with getenv in other
 * threads, which is acceptable only because probing happens once, while the runtime starts and
 * before it runs workers; overwrite=0 keeps a value the user chose. */
static void enable_sysman(const exo_host_api *host) {
    const char *opt_out = host->get_env ? host->get_env(host->host_ctx, "EXO_ZE_NO_SYSMAN") : NULL;
    const char *current = host->get_env ? host->get_env(host->host_ctx, "ZES_ENABLE_SYSMAN") : NULL;
    if (opt_out && *opt_out && strcmp(opt_out, "0") != 0) {
        l0_log(host, EXO_LOG_INFO,
               "EXO_ZE_NO_SYSMAN is set: Sysman not enabled (no PCI address or telemetry from Level Zero)");
    } else if (current && *current) {
        l0_log(host, EXO_LOG_INFO, "ZES_ENABLE_SYSMAN is already '%s'; left as it is", current);
    } else if (setenv("ZES_ENABLE_SYSMAN", "1", 0) == 0) {
        l0_log(host, EXO_LOG_INFO,
               "set ZES_ENABLE_SYSMAN=1 before zeInit so Sysman gives PCI addresses and telemetry "
               "(EXO_ZE_NO_SYSMAN=1 turns this off)");
    } else {
        l0_log(host, EXO_LOG_WARN, "could not set ZES_ENABLE_SYSMAN=1: Level Zero telemetry will be missing");
    }
    /* What zeInit will see, whoever set it. */
    const char *now = host->get_env ? host->get_env(host->host_ctx, "ZES_ENABLE_SYSMAN") : NULL;
    loader.sysman_requested = now && strcmp(now, "1") == 0;
}

exo_status l0_loader_open(const exo_host_api *host, const l0_loader **out, int64_t *vendor, char *reason,
                          size_t reason_size) {
    *out = NULL;
    *vendor = 0;
    reason[0] = '\0';
    pthread_mutex_lock(&loader_lock);
    exo_status st = EXO_OK;
    if (!loader.lib) st = open_library(host, reason, reason_size);
    if (st == EXO_OK && !loader.init_done) {
        enable_sysman(host);
        loader.init_result = loader.zeInit(0);
        loader.init_done = true;
        l0_log(host, EXO_LOG_DEBUG, "zeInit(0) = %s (0x%08x)", ze_result_name(loader.init_result),
               (unsigned)loader.init_result);
    }
    if (st == EXO_OK && loader.init_result != ZE_RESULT_SUCCESS) {
        *vendor = loader.init_result;
        snprintf(reason, reason_size,
                 "zeInit failed: %s (0x%08x): no Level Zero driver/GPU found — install Intel's compute "
                 "runtime (intel-level-zero-gpu / libze-intel-gpu1), check access to /dev/dri/renderD* "
                 "(render group), and if Sysman is the problem retry with EXO_ZE_NO_SYSMAN=1 "
                 "(ZES_ENABLE_SYSMAN was %s)",
                 ze_result_name(loader.init_result), (unsigned)loader.init_result,
                 loader.sysman_requested ? "1" : "not set");
        st = EXO_ERR_NO_DEVICE;
    }
    if (st == EXO_OK) *out = &loader;
    pthread_mutex_unlock(&loader_lock);
    return st;
}
