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
 * Execution (per device, created by device_open):
 *   ze_check.c   every ze_result_t -> exo_status with the call's name (DEVICE_LOST, DEVICE_OOM...)
 *   device_open.c the driver's shared context, command queue, immediate list for copies
 *   buffer.c     USM device memory: exo_buffer and the executor's scratch (gpu_mem)
 *   peer_copy.c  device-to-device copies between two devices of one driver (ABI 1.9)
 *   module.c     the embedded SPIR-V -> ze_module (build log on failure), kernels by name
 *   recorder.c   kernel launches -> a regular command list, recorded once and replayed while
 *                the launch sequence stays the same
 *   graph.c      supports/compile/execute through the shared executor (plugins/gpu_common)
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
    /* execution (optional as a group: without them devices are listed but cannot be opened) */
    ze_pfnDriverGetExtensionProperties_t zeDriverGetExtensionProperties;
    ze_pfnDeviceGetCommandQueueGroupProperties_t zeDeviceGetCommandQueueGroupProperties;
    ze_pfnContextCreate_t zeContextCreate;
    ze_pfnContextDestroy_t zeContextDestroy;
    ze_pfnCommandQueueCreate_t zeCommandQueueCreate;
    ze_pfnCommandQueueDestroy_t zeCommandQueueDestroy;
    ze_pfnCommandQueueExecuteCommandLists_t zeCommandQueueExecuteCommandLists;
    ze_pfnCommandListCreate_t zeCommandListCreate;
    ze_pfnCommandListCreateImmediate_t zeCommandListCreateImmediate;
    ze_pfnCommandListDestroy_t zeCommandListDestroy;
    ze_pfnCommandListClose_t zeCommandListClose;
    ze_pfnCommandListReset_t zeCommandListReset;
    ze_pfnCommandListAppendMemoryCopy_t zeCommandListAppendMemoryCopy;
    ze_pfnCommandListAppendLaunchKernel_t zeCommandListAppendLaunchKernel;
    ze_pfnFenceCreate_t zeFenceCreate;
    ze_pfnFenceDestroy_t zeFenceDestroy;
    ze_pfnFenceHostSynchronize_t zeFenceHostSynchronize;
    ze_pfnFenceReset_t zeFenceReset;
    ze_pfnMemAllocDevice_t zeMemAllocDevice;
    ze_pfnMemFree_t zeMemFree;
    ze_pfnModuleCreate_t zeModuleCreate;
    ze_pfnModuleDestroy_t zeModuleDestroy;
    ze_pfnModuleBuildLogGetString_t zeModuleBuildLogGetString;
    ze_pfnModuleBuildLogDestroy_t zeModuleBuildLogDestroy;
    ze_pfnKernelCreate_t zeKernelCreate;
    ze_pfnKernelDestroy_t zeKernelDestroy;
    ze_pfnKernelSetGroupSize_t zeKernelSetGroupSize;
    ze_pfnKernelSetArgumentValue_t zeKernelSetArgumentValue;
    /* peer copies (optional: NULL means none are offered) */
    ze_pfnDeviceCanAccessPeer_t zeDeviceCanAccessPeer;
    ze_pfnDeviceGetP2PProperties_t zeDeviceGetP2PProperties;
    bool has_exec_symbols;
    char missing_exec_symbol[64]; /* the first one missing, for the device_open error */
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

struct l0_module;

/* Per opened device (device_open.c). The lock serialises the queue and the lists. */
typedef struct l0_exec {
    bool open;
    bool lost;                        /* a call returned DEVICE_LOST: every later one fails fast */
    pthread_mutex_t lock;
    ze_context_handle_t context;      /* the driver's context, shared by its opened devices */
    uint32_t queue_ordinal;           /* the compute queue group */
    ze_command_queue_handle_t queue;
    ze_command_list_handle_t copy_list; /* immediate, synchronous: buffer reads and writes */
    bool relaxed_alloc;               /* ZE_experimental_relaxed_allocation_limits is offered */
    bool large_buffers;               /* an allocation above maxMemAllocSize exists */
    struct l0_module *module;         /* built by the first graph_compile */
    /* Intel's sub-group/XMX kernels in the module's second part (gpu_intel.h GPU_INTEL_* bits, 0
     * unless EXO_GPU_XMX picked them) and their sub-group size: the backend's features. */
    uint32_t intel_kernels, intel_sub_group;
    uint64_t live_bytes;              /* device memory this plugin holds on the device */
} l0_exec;

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
    uint32_t index;           /* position in ctx->devices */
    l0_exec exec;
} l0_device;

/* One Level Zero context per driver, shared by the driver's opened devices (device_open.c): a
 * copy may only touch memory allocated in the command list's context, so a peer copy between two
 * devices needs both devices' allocations in one. */
#define L0_MAX_DRIVER_CONTEXTS 8
typedef struct l0_driver_context {
    ze_driver_handle_t driver;
    ze_context_handle_t context;
    uint32_t users;                   /* opened devices of the driver; destroyed at 0 */
} l0_driver_context;

struct exo_plugin_ctx {
    const exo_host_api *host;
    l0_driver_context contexts[L0_MAX_DRIVER_CONTEXTS]; /* under lock */
    pthread_mutex_t lock;
    bool probed;
    const l0_loader *ze;      /* NULL until a probe opened the loader and zeInit succeeded */
    exo_status failure;       /* EXO_OK, or why there are no devices (remembered for later calls) */
    int64_t failure_vendor;   /* ze_result_t behind `failure` */
    char reason[512];         /* one line: why 0 devices (empty when devices were found) */
    char build_info[640];     /* probe_build_info's text: per context, so runtimes never share it */
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

/* ---------------------------------------------------------------- ze_check.c */

/* What a failed call means for the caller: DEVICE_LOST / DEVICE_REQUIRES_RESET ->
 * EXO_ERR_DEVICE_LOST, OUT_OF_DEVICE_MEMORY -> EXO_ERR_DEVICE_OOM, OUT_OF_HOST_MEMORY ->
 * EXO_ERR_NO_MEMORY, UNSUPPORTED_* -> EXO_ERR_UNSUPPORTED, anything else EXO_ERR_BACKEND. */
exo_status l0_status_of(ze_result_t r);
/* Records "level_zero:<i> '<name>': <what>: <zeCall> failed: <NAME> (0x...)" as error detail,
 * marks the device lost on DEVICE_LOST, and returns the mapped status. */
exo_status l0_fail(exo_plugin_ctx *ctx, l0_device *dev, ze_result_t r, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Error detail without a ze_result_t behind it. */
exo_status l0_error(exo_plugin_ctx *ctx, l0_device *dev, exo_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* EXO_ERR_DEVICE_LOST with detail when the device was lost earlier, else EXO_OK. */
exo_status l0_check_not_lost(exo_plugin_ctx *ctx, l0_device *dev);

/* ---------------------------------------------------------------- device_open.c */

exo_status l0_device_open(exo_plugin_ctx *ctx, uint32_t index);
void l0_device_close(exo_plugin_ctx *ctx, uint32_t index);
/* The opened device `index` in *out, or an error (with detail) when it does not exist or is
 * not open. */
exo_status l0_opened_device(exo_plugin_ctx *ctx, uint32_t index, const char *what, l0_device **out);

/* ---------------------------------------------------------------- buffer.c */

/* Device memory: the executor's gpu_mem, and what buffer_alloc hands out (exo_buffer). */
typedef struct l0_mem {
    void *ptr;
    uint64_t size;
} l0_mem;

#define L0_BUFFER_MAGIC 0x6c306275u /* "l0bu": an exo_buffer of this plugin */

struct exo_buffer {
    uint32_t magic;
    exo_plugin_ctx *ctx;
    l0_device *dev;
    exo_buffer_usage usage;
    l0_mem mem;
};

/* zeMemAllocDevice of `size` bytes: above maxMemAllocSize through the relaxed-limits extension
 * when the driver offers it, else a clear EXO_ERR_UNSUPPORTED. `what` names it in errors. */
exo_status l0_mem_alloc(exo_plugin_ctx *ctx, l0_device *dev, uint64_t size, const char *what, l0_mem *out);
void l0_mem_free(exo_plugin_ctx *ctx, l0_device *dev, l0_mem *mem);
/* Blocking copies through the device's immediate list. */
exo_status l0_copy(exo_plugin_ctx *ctx, l0_device *dev, void *dst, const void *src, uint64_t size, const char *what);

exo_status l0_buffer_alloc(exo_plugin_ctx *ctx, uint32_t device, uint64_t size, exo_buffer_usage usage,
                           exo_buffer **out);
exo_status l0_buffer_write(exo_buffer *buf, uint64_t offset, const void *data, uint64_t size);
exo_status l0_buffer_read(exo_buffer *buf, uint64_t offset, void *data, uint64_t size);
void l0_buffer_free(exo_buffer *buf);
/* The buffer's memory when it belongs to `dev`, else NULL. */
l0_mem *l0_buffer_mem(exo_buffer *buf, l0_device *dev);

/* ---------------------------------------------------------------- peer_copy.c (ABI 1.9) */

/* EXO_OK when opened device `src` can copy into opened device `dst` with one copy on src's
 * immediate list: one driver (so one shared context) and zeDeviceCanAccessPeer(src, dst) yes (and
 * zeDeviceGetP2PProperties' ACCESS flag where the driver answers it); else EXO_ERR_UNSUPPORTED
 * with the reason. */
exo_status l0_peer_copy_supported(exo_plugin_ctx *ctx, uint32_t src, uint32_t dst);
/* The copy itself: zeCommandListAppendMemoryCopy from src's USM memory into dst's on src's
 * synchronous immediate list. */
exo_status l0_buffer_copy_peer(exo_buffer *dst, uint64_t dst_offset, exo_buffer *src, uint64_t src_offset,
                               uint64_t size);

/* ---------------------------------------------------------------- module.c */

/* Builds the device's module from the embedded SPIR-V once (the build log becomes the error). */
exo_status l0_module_ensure(exo_plugin_ctx *ctx, l0_device *dev);
void l0_module_destroy(exo_plugin_ctx *ctx, l0_device *dev);
/* The kernel `name` of the device's module, created on first use. */
exo_status l0_module_kernel(exo_plugin_ctx *ctx, l0_device *dev, const char *name, ze_kernel_handle_t *out);
/* Sets the group size unless it already is that (ze kernels keep it). */
exo_status l0_kernel_group_size(exo_plugin_ctx *ctx, l0_device *dev, ze_kernel_handle_t kernel, const char *name,
                                const uint32_t group[3]);

/* ---------------------------------------------------------------- host.c */

void l0_log(const exo_host_api *host, exo_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The entry's exo_plugin_api.build_info: what is known before any probe. */
#define L0_BUILD_INFO_AT_ENTRY "Level Zero headers 1.4; loader dlopened at probe"
/* Sets the context's build text (exo_plugin_api.probe_build_info), so the loader, driver or the
 * reason for "0 devices" is visible to whoever lists plugins. Called only inside the first probe
 * (ctx->lock held): the text is immutable afterwards, which is what lets the core read it
 * without that lock. */
void l0_build_info_set(exo_plugin_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* EXO_L0_INTERNAL_H */
