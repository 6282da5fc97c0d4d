/*
 * l0_internal.h — shared types of the level_zero plugin.
 *
 * Layers, one per file:
 *   loader.c     dlopen("libze_loader.so.1"), the function pointers, zeInit once per process
 *   result_name.c ze_result_t -> "ZE_RESULT_ERROR_..."
 *   host.c       logging / allocation through the host table
 *   probe.c      drivers and devices -> l0_device (properties, memory, PCI address)
 *   xe_arch.c    Intel GPU generation from the PCI device id / name: XMX, throughput, bandwidth
 *   report.c     l0_device -> exo_device_report (score, caps, estimates)
 *   telemetry.c  Sysman readings (memory, utilization, temperature, power, frequency)
 *   plugin.c     the exo_plugin_api table and the context
 * A later issue adds context.c / queue.c / module.c / buffer.c for execution: their per-device
 * state (ze_context_handle_t, queues, module cache) joins l0_device, device_open creates it,
 * and their entry points join l0_loader (resolved in loader.c like the ones below).
 */
#ifndef EXO_L0_INTERNAL_H
#define EXO_L0_INTERNAL_H

#include "exo_plugin.h"

#include <level_zero/ze_api.h>
#include <level_zero/ze_ddi.h>
#include <level_zero/zes_api.h>
#include <level_zero/zes_ddi.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define L0_COMPONENT "plugin:level_zero"
#define L0_DEFAULT_LOADER "libze_loader.so.1"

/* ---------------------------------------------------------------- loader.c */

/* The loader and the entry points the plugin uses, resolved with dlsym. Process-wide: the
 * loader keeps global state and zeInit runs at most once per process. */
typedef struct l0_loader {
    void *lib;
    char name[128];
    /* core (required) */
    ze_pfnInit_t zeInit;
    ze_pfnDriverGet_t zeDriverGet;
    ze_pfnDriverGetProperties_t zeDriverGetProperties;
    ze_pfnDriverGetApiVersion_t zeDriverGetApiVersion;
    ze_pfnDeviceGet_t zeDeviceGet;
    ze_pfnDeviceGetProperties_t zeDeviceGetProperties;
    ze_pfnDeviceGetComputeProperties_t zeDeviceGetComputeProperties;
    ze_pfnDeviceGetMemoryProperties_t zeDeviceGetMemoryProperties;
    ze_pfnDeviceGetModuleProperties_t zeDeviceGetModuleProperties;
    /* Sysman (optional: NULL when the loader lacks them) */
    zes_pfnDevicePciGetProperties_t zesDevicePciGetProperties;
    zes_pfnDeviceEnumMemoryModules_t zesDeviceEnumMemoryModules;
    zes_pfnMemoryGetState_t zesMemoryGetState;
    zes_pfnMemoryGetBandwidth_t zesMemoryGetBandwidth;
    zes_pfnDeviceEnumEngineGroups_t zesDeviceEnumEngineGroups;
    zes_pfnEngineGetProperties_t zesEngineGetProperties;
    zes_pfnEngineGetActivity_t zesEngineGetActivity;
    zes_pfnDeviceEnumTemperatureSensors_t zesDeviceEnumTemperatureSensors;
    zes_pfnTemperatureGetProperties_t zesTemperatureGetProperties;
    zes_pfnTemperatureGetState_t zesTemperatureGetState;
    zes_pfnDeviceEnumPowerDomains_t zesDeviceEnumPowerDomains;
    zes_pfnPowerGetProperties_t zesPowerGetProperties;
    zes_pfnPowerGetEnergyCounter_t zesPowerGetEnergyCounter;
    zes_pfnDeviceEnumFrequencyDomains_t zesDeviceEnumFrequencyDomains;
    zes_pfnFrequencyGetProperties_t zesFrequencyGetProperties;
    zes_pfnFrequencyGetState_t zesFrequencyGetState;
    bool has_sysman_symbols;
    bool sysman_requested; /* ZES_ENABLE_SYSMAN=1 was in effect at zeInit */
    bool init_done;
    ze_result_t init_result;
} l0_loader;

/* Opens the loader (EXO_ZE_LOADER overrides the library name) and runs zeInit(0) once per
 * process, enabling Sysman first unless EXO_ZE_NO_SYSMAN is set. On success returns EXO_OK and
 * *out; otherwise writes one line into reason and returns EXO_ERR_NOT_FOUND (no loader),
 * EXO_ERR_PLUGIN_LOAD (not a usable loader) or EXO_ERR_NO_DEVICE (zeInit failed — after that no
 * ze* function is ever called again in this process: loader 1.8 can crash on them). *vendor
 * receives the ze_result_t behind the failure (0 when none). */
exo_status l0_loader_open(const exo_host_api *host, const l0_loader **out, int64_t *vendor, char *reason,
                          size_t reason_size);

/* ---------------------------------------------------------------- result_name.c */

/* "ZE_RESULT_ERROR_DEVICE_LOST"; "ZE_RESULT_<unknown>" for values this header version lacks. */
const char *ze_result_name(ze_result_t result);
/* True for results that mean "this reading is not offered here", not a failure. */
bool l0_result_is_unavailable(ze_result_t result);

/* ---------------------------------------------------------------- devices (probe.c) */

#define L0_MAX_SENSORS 8

/* Sysman handles and previous samples of one device (telemetry.c). */
typedef struct l0_telemetry_state {
    bool enumerated;
    uint32_t n_mem;
    zes_mem_handle_t mem[L0_MAX_SENSORS];
    zes_engine_handle_t engine; /* the group that best means "the GPU is busy" */
    zes_temp_handle_t temp;
    zes_pwr_handle_t power;
    zes_freq_handle_t freq;
    bool have_engine_sample;
    zes_engine_stats_t engine_sample;
    bool have_energy_sample;
    zes_power_energy_counter_t energy_sample;
} l0_telemetry_state;

typedef struct l0_device {
    ze_driver_handle_t driver;
    ze_device_handle_t handle;
    ze_device_properties_t props;
    bool have_compute;
    ze_device_compute_properties_t compute;
    bool have_module;
    ze_device_module_properties_t module;
    uint64_t memory_total;    /* sum of zeDeviceGetMemoryProperties totalSize */
    bool have_pci;            /* Sysman answered zesDevicePciGetProperties */
    zes_pci_address_t pci;
    bool have_memory_free;
    uint64_t memory_free;     /* Sysman zesMemoryGetState, summed */
    uint64_t sysman_bandwidth;/* bytes/s from zesMemoryGetBandwidth, 0 when unknown */
    char driver_version[64];
    char api_version[32];
    exo_device_report report; /* built once by the probe (report.c) */
    l0_telemetry_state telemetry;
} l0_device;

struct exo_plugin_ctx {
    const exo_host_api *host;
    pthread_mutex_t lock;
    bool probed;
    const l0_loader *ze;      /* NULL until a probe opened the loader and zeInit succeeded */
    exo_status failure;       /* EXO_OK, or why there are no devices (remembered for later calls) */
    int64_t failure_vendor;   /* ze_result_t behind `failure` */
    char reason[512];         /* one line: why 0 devices (empty when devices were found) */
    uint32_t n_devices;
    l0_device *devices;
};

/* Finds every device of every driver and fills ctx->devices (ctx->lock held). */
exo_status l0_probe_devices(exo_plugin_ctx *ctx);

/* ---------------------------------------------------------------- xe_arch.c */

typedef struct l0_xe_arch {
    const char *name;           /* "Xe-HPG (Alchemist)"; NULL when unknown */
    bool known;                 /* name and has_xmx are meaningful */
    bool has_xmx;               /* systolic matrix engines */
    float xmx_fp16_per_eu_clk;  /* dense fp16 FLOPs per EU (XVE) per clock on XMX */
    float xmx_int8_per_eu_clk;
    float bandwidth_gbs;        /* known board bandwidth, 0 when not in the table */
} l0_xe_arch;

/* Classifies an Intel GPU by PCI device id, falling back to its marketing name. */
l0_xe_arch l0_xe_arch_classify(uint32_t vendor_id, uint32_t device_id, const char *name);

/* ---------------------------------------------------------------- report.c */

void l0_report_build(l0_device *dev);

/* ---------------------------------------------------------------- telemetry.c */

exo_status l0_telemetry_read(exo_plugin_ctx *ctx, l0_device *dev, exo_device_telemetry *out);
/* Enumerates the Sysman sensors and takes the first utilization/energy sample (probe time). */
void l0_telemetry_prime(exo_plugin_ctx *ctx, l0_device *dev);

/* ---------------------------------------------------------------- host.c */

void l0_log(const exo_host_api *host, exo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copies a plugin-side struct into a core-allocated one of possibly different size: only the
 * bytes after the header that both sides know, so an older or newer core stays safe. */
void l0_copy_struct(void *dst, const void *src, size_t src_size);
/* The text exposed as exo_plugin_api.build_info; updated by the probe so the reason for
 * "0 devices" is visible to whoever lists plugins. */
const char *l0_build_info(void);
void l0_build_info_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* EXO_L0_INTERNAL_H */
