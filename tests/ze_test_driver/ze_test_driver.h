/*
 * ze_test_driver.h — internals of exo-ipex's fake Level Zero driver (libexo-ze-test-driver.so).
 *
 * The real Debian loader (libze_loader.so.1) loads this library when ZE_ENABLE_ALT_DRIVERS names
 * it, asks it for its DDI tables (the exported ze/zet/zes*Get*ProcAddrTable functions, see
 * ddi_*.c) and then forwards every API call to the functions placed in those tables. No GPU is
 * needed: devices are plain structs described by environment variables the driver reads itself:
 *
 *   EXO_ZE_TEST_DEVICES=n        number of devices (default 2, 0..TD_MAX_DEVICES)
 *   EXO_ZE_TEST_FAIL=init        zeInit fails with ZE_RESULT_ERROR_UNINITIALIZED
 *   EXO_ZE_TEST_NO_SYSMAN=1      every zes* call returns ZE_RESULT_ERROR_UNSUPPORTED_FEATURE
 *   EXO_ZE_TEST_INTEGRATED=1     devices are integrated (Iris Xe) instead of discrete Arc A770
 *   EXO_ZE_TEST_UTILIZATION=f    engine busy fraction reported by zesEngineGetActivity (0.375)
 *   EXO_ZE_TEST_POWER_W=w        average power behind zesPowerGetEnergyCounter (default 120)
 *   EXO_ZE_TEST_FAIL=module_build  zeModuleCreate fails with ZE_RESULT_ERROR_MODULE_BUILD_FAILURE
 *                                and a build log saying so (values combine: "init,module_build")
 *   EXO_ZE_TEST_ALLOC_FAIL_AFTER_BYTES=n  a device allocation fails with OUT_OF_DEVICE_MEMORY once
 *                                the device's live allocations would exceed n bytes
 *   EXO_ZE_TEST_ALLOC_FAIL_AT=n  the n-th device allocation of the process (1-based) fails the same way
 *   EXO_ZE_TEST_DEVICE_LOST_AT_SUBMIT=n  the n-th submission (zeCommandQueueExecuteCommandLists or an
 *                                append to an immediate list, 1-based) returns DEVICE_LOST and the
 *                                device stays lost: every later call on it returns DEVICE_LOST
 *   EXO_ZE_TEST_MAX_ALLOC=n      maxMemAllocSize in bytes (default just under 4 GiB)
 *   EXO_ZE_TEST_NO_RELAXED_ALLOC=1  no ZE_experimental_relaxed_allocation_limits extension
 *   EXO_ZE_TEST_CACHE_DIR=dir    where translated SPIR-V (.bc by hash) is cached
 *                                (default $XDG_CACHE_HOME/exo-ze-test-driver, then ~/.cache/..., /tmp)
 *   EXO_ZE_TEST_LLVM_SPIRV=path  the SPIR-V translator (default llvm-spirv-15 on PATH)
 *   EXO_ZE_TEST_PEER=mode        peer access between the devices: `on` (default: zeDeviceCanAccessPeer
 *                                and zeDeviceGetP2PProperties say yes, and a copy on one device's list
 *                                may read or write another device's memory), `none` (they say no, and
 *                                such a copy is refused with INVALID_ARGUMENT, as memory a device
 *                                cannot reach), `fail` (they say yes, but such a copy fails with
 *                                ZE_RESULT_ERROR_UNKNOWN: a broken link)
 *
 * Kernels really run: zeModuleCreate takes the SPIR-V, reverse-translates it to SPIR 1.2
 * bitcode with `llvm-spirv-15 -r` (a subprocess; the result is cached by a hash of the SPIR-V),
 * and builds that on PoCL (clCreateProgramWithBinary, "-x spir"). Device, host and shared USM
 * allocations are PoCL fine-grained SVM (host memory the CPU device uses in place), so pointers
 * the caller passes to zeKernelSetArgumentValue go to clSetKernelArgSVMPointer, copies are
 * memcpy, and a launch is clEnqueueNDRangeKernel with global = group count x group size.
 * Commands run when submitted (synchronously); fences and queues then report completion.
 * OCL_ICD_VENDORS is pointed at PoCL only when the caller left it unset.
 *
 * As on Intel's driver, Sysman answers only when ZES_ENABLE_SYSMAN=1 was set before zeInit.
 *
 * One concept per file: config.c (environment), state.c (driver/device objects, init state,
 * call accounting, test-only exports), init.c, driver.c, device.c, sysman_*.c, ddi_*.c, and for
 * execution: ocl_runtime.c (PoCL), context.c, memory.c, spirv_translate.c, module.c, kernel.c,
 * command_list.c, command_queue.c, fence.c.
 */
#ifndef EXO_ZE_TEST_DRIVER_H
#define EXO_ZE_TEST_DRIVER_H

#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TD_MAX_DEVICES 8
#define TD_EXPORT __attribute__((visibility("default")))

/* ---------------------------------------------------------------- configuration (config.c) */

typedef enum td_peer_mode { TD_PEER_ON = 0, TD_PEER_NONE = 1, TD_PEER_FAIL = 2 } td_peer_mode;

typedef struct td_config {
    uint32_t n_devices;
    bool fail_init;
    bool no_sysman;
    bool integrated;
    double utilization; /* 0..1 */
    double power_w;
    bool fail_module_build;
    uint64_t alloc_fail_after_bytes; /* 0 = never */
    uint64_t alloc_fail_at;          /* 0 = never */
    uint64_t device_lost_at_submit;  /* 0 = never */
    uint64_t max_alloc;
    bool no_relaxed_alloc;
    td_peer_mode peer;
} td_config;

/* Reads the EXO_ZE_TEST_* variables (at zeInit, so a test can set them after loading). */
void td_config_read(td_config *out);

/* ---------------------------------------------------------------- objects (state.c) */

typedef enum td_engine_kind { TD_ENGINE_ALL = 0, TD_ENGINE_COMPUTE = 1, TD_ENGINE_COUNT = 2 } td_engine_kind;

/* Sysman handles point at these; each knows its device. */
struct _zes_mem_handle_t { struct _ze_device_handle_t *device; };
struct _zes_engine_handle_t { struct _ze_device_handle_t *device; zes_engine_group_t group; };
struct _zes_temp_handle_t { struct _ze_device_handle_t *device; };
struct _zes_pwr_handle_t { struct _ze_device_handle_t *device; };
struct _zes_freq_handle_t { struct _ze_device_handle_t *device; };

struct _ze_device_handle_t {
    uint32_t magic;
    uint32_t index;
    ze_device_properties_t props;
    ze_device_compute_properties_t compute;
    ze_device_memory_properties_t memory;
    ze_device_module_properties_t module;
    zes_pci_address_t pci;
    uint64_t memory_used; /* what zesMemoryGetState reports as in use, before allocations */
    uint64_t allocated;   /* live zeMemAllocDevice/Shared bytes on this device */
    bool lost;            /* a DEVICE_LOST was injected: every later call on it fails */
    uint64_t max_bandwidth;
    struct _zes_mem_handle_t mem_module;
    struct _zes_engine_handle_t engines[TD_ENGINE_COUNT];
    struct _zes_temp_handle_t temp_sensor;
    struct _zes_pwr_handle_t power_domain;
    struct _zes_freq_handle_t freq_domain;
};

struct _ze_driver_handle_t {
    uint32_t magic;
    ze_driver_properties_t props;
    uint32_t n_devices;
    struct _ze_device_handle_t devices[TD_MAX_DEVICES];
};

#define TD_DRIVER_MAGIC 0x7a647276u /* "zdrv" */
#define TD_DEVICE_MAGIC 0x7a646576u /* "zdev" */

typedef struct td_state {
    td_config config;
    bool init_attempted;
    bool initialized;      /* zeInit succeeded */
    bool sysman_enabled;   /* ZES_ENABLE_SYSMAN=1 at zeInit and not EXO_ZE_TEST_NO_SYSMAN */
    uint64_t start_us;     /* monotonic time of zeInit: sensor readings grow from here */
    struct _ze_driver_handle_t driver;
    /* Execution: one lock serialises allocation tables and command execution. */
    pthread_mutex_t lock;
    uint64_t n_device_allocs; /* device allocations so far (EXO_ZE_TEST_ALLOC_FAIL_AT) */
    uint64_t n_submits;       /* submissions so far (EXO_ZE_TEST_DEVICE_LOST_AT_SUBMIT) */
    uint64_t n_executes;      /* of which zeCommandQueueExecuteCommandLists */
    uint64_t device_lost_at_execute; /* 0 = never */
} td_state;

extern td_state td_global;

/* Every entry point except zeInit starts with this: it returns ZE_RESULT_SUCCESS when zeInit
 * succeeded and ZE_RESULT_ERROR_UNINITIALIZED otherwise, counting calls made after a failed
 * zeInit (a caller must never make them: Intel's real stack can crash on them). */
ze_result_t td_enter(void);
/* td_enter plus the Sysman gate. */
ze_result_t td_enter_sysman(void);
/* Builds the driver and its devices from td_global.config (state.c). */
void td_state_build(void);
bool td_device_valid(ze_device_handle_t device);
uint64_t td_now_us(void);
/* Counts a zeInit that reached the driver (init.c). */
void td_count_init_call(void);

/* ---------------------------------------------------------------- entry points */

ze_result_t ZE_APICALL td_zeInit(ze_init_flags_t flags);

ze_result_t ZE_APICALL td_zeDriverGet(uint32_t *count, ze_driver_handle_t *drivers);
ze_result_t ZE_APICALL td_zeDriverGetApiVersion(ze_driver_handle_t driver, ze_api_version_t *version);
ze_result_t ZE_APICALL td_zeDriverGetProperties(ze_driver_handle_t driver, ze_driver_properties_t *props);

ze_result_t ZE_APICALL td_zeDeviceGet(ze_driver_handle_t driver, uint32_t *count, ze_device_handle_t *devices);
ze_result_t ZE_APICALL td_zeDeviceGetProperties(ze_device_handle_t device, ze_device_properties_t *props);
ze_result_t ZE_APICALL td_zeDeviceGetComputeProperties(ze_device_handle_t device,
                                                       ze_device_compute_properties_t *props);
ze_result_t ZE_APICALL td_zeDeviceGetMemoryProperties(ze_device_handle_t device, uint32_t *count,
                                                      ze_device_memory_properties_t *props);
ze_result_t ZE_APICALL td_zeDeviceGetModuleProperties(ze_device_handle_t device,
                                                      ze_device_module_properties_t *props);
ze_result_t ZE_APICALL td_zeDeviceCanAccessPeer(ze_device_handle_t device, ze_device_handle_t peer, ze_bool_t *value);
ze_result_t ZE_APICALL td_zeDeviceGetP2PProperties(ze_device_handle_t device, ze_device_handle_t peer,
                                                   ze_device_p2p_properties_t *props);

ze_result_t ZE_APICALL td_zesDevicePciGetProperties(zes_device_handle_t device, zes_pci_properties_t *props);
ze_result_t ZE_APICALL td_zesDeviceEnumMemoryModules(zes_device_handle_t device, uint32_t *count,
                                                     zes_mem_handle_t *handles);
ze_result_t ZE_APICALL td_zesMemoryGetProperties(zes_mem_handle_t mem, zes_mem_properties_t *props);
ze_result_t ZE_APICALL td_zesMemoryGetState(zes_mem_handle_t mem, zes_mem_state_t *state);
ze_result_t ZE_APICALL td_zesMemoryGetBandwidth(zes_mem_handle_t mem, zes_mem_bandwidth_t *bandwidth);
ze_result_t ZE_APICALL td_zesDeviceEnumEngineGroups(zes_device_handle_t device, uint32_t *count,
                                                    zes_engine_handle_t *handles);
ze_result_t ZE_APICALL td_zesEngineGetProperties(zes_engine_handle_t engine, zes_engine_properties_t *props);
ze_result_t ZE_APICALL td_zesEngineGetActivity(zes_engine_handle_t engine, zes_engine_stats_t *stats);
ze_result_t ZE_APICALL td_zesDeviceEnumTemperatureSensors(zes_device_handle_t device, uint32_t *count,
                                                          zes_temp_handle_t *handles);
ze_result_t ZE_APICALL td_zesTemperatureGetProperties(zes_temp_handle_t temp, zes_temp_properties_t *props);
ze_result_t ZE_APICALL td_zesTemperatureGetState(zes_temp_handle_t temp, double *celsius);
ze_result_t ZE_APICALL td_zesDeviceEnumPowerDomains(zes_device_handle_t device, uint32_t *count,
                                                    zes_pwr_handle_t *handles);
ze_result_t ZE_APICALL td_zesPowerGetProperties(zes_pwr_handle_t power, zes_power_properties_t *props);
ze_result_t ZE_APICALL td_zesPowerGetEnergyCounter(zes_pwr_handle_t power, zes_power_energy_counter_t *energy);
ze_result_t ZE_APICALL td_zesDeviceEnumFrequencyDomains(zes_device_handle_t device, uint32_t *count,
                                                        zes_freq_handle_t *handles);
ze_result_t ZE_APICALL td_zesFrequencyGetProperties(zes_freq_handle_t freq, zes_freq_properties_t *props);
ze_result_t ZE_APICALL td_zesFrequencyGetState(zes_freq_handle_t freq, zes_freq_state_t *state);

ze_result_t ZE_APICALL td_zeDriverGetExtensionProperties(ze_driver_handle_t driver, uint32_t *count,
                                                        ze_driver_extension_properties_t *props);
ze_result_t ZE_APICALL td_zeDeviceGetCommandQueueGroupProperties(ze_device_handle_t device, uint32_t *count,
                                                                 ze_command_queue_group_properties_t *props);

/* ---------------------------------------------------------------- execution objects */

#define TD_CONTEXT_MAGIC 0x7a637478u /* "zctx" */
#define TD_QUEUE_MAGIC 0x7a717565u   /* "zque" */
#define TD_LIST_MAGIC 0x7a6c7374u    /* "zlst" */
#define TD_FENCE_MAGIC 0x7a666e63u   /* "zfnc" */
#define TD_MODULE_MAGIC 0x7a6d6f64u  /* "zmod" */
#define TD_KERNEL_MAGIC 0x7a6b726eu  /* "zkrn" */
#define TD_LOG_MAGIC 0x7a6c6f67u     /* "zlog" */

struct _ze_context_handle_t { uint32_t magic; uint32_t n_live_objects; };

struct _ze_module_build_log_handle_t { uint32_t magic; char *text; };

/* How an argument reaches the kernel, from the OpenCL argument info. */
typedef enum td_arg_kind { TD_ARG_VALUE = 0, TD_ARG_GLOBAL = 1, TD_ARG_LOCAL = 2 } td_arg_kind;

typedef struct td_arg {
    td_arg_kind kind;
    bool set;
    size_t size;       /* VALUE: bytes; LOCAL: local memory bytes */
    void *pointer;     /* GLOBAL: the USM address (may be inside an allocation) */
    unsigned char value[256];
} td_arg;

/* Kernel parameters a kernel may declare (exo_matmul_vec16x3_mlx* has 49: its 32 arguments, a
 * buffer being two). A real driver's limit is in bytes (CL_DEVICE_MAX_PARAMETER_SIZE >= 1024). */
#define TD_MAX_ARGS 64

struct _ze_module_handle_t {
    uint32_t magic;
    ze_context_handle_t context;
    ze_device_handle_t device;
    void *program; /* cl_program */
};

struct _ze_kernel_handle_t {
    uint32_t magic;
    ze_module_handle_t module;
    void *kernel; /* cl_kernel */
    char name[128];
    uint32_t n_args;
    td_arg args[TD_MAX_ARGS];
    uint32_t group[3];
};

typedef enum td_command_kind { TD_CMD_COPY, TD_CMD_FILL, TD_CMD_LAUNCH, TD_CMD_BARRIER } td_command_kind;

typedef struct td_command {
    td_command_kind kind;
    /* COPY / FILL */
    void *dst;
    const void *src;
    size_t size;
    unsigned char pattern[16];
    size_t pattern_size;
    bool peer;         /* COPY: between memory of two different devices (a peer copy) */
    /* LAUNCH: the arguments and sizes as they were at append time (Level Zero semantics) */
    ze_kernel_handle_t kernel;
    uint32_t group[3];
    uint32_t count[3];
    uint32_t n_args;
    td_arg *args;
} td_command;

struct _ze_command_list_handle_t {
    uint32_t magic;
    ze_context_handle_t context;
    ze_device_handle_t device;
    bool immediate;
    bool closed;
    uint32_t n_commands, cap_commands;
    td_command *commands;
};

struct _ze_command_queue_handle_t {
    uint32_t magic;
    ze_context_handle_t context;
    ze_device_handle_t device;
};

struct _ze_fence_handle_t {
    uint32_t magic;
    ze_command_queue_handle_t queue;
    bool signalled;
};

/* ---------------------------------------------------------------- PoCL (ocl_runtime.c) */

/* Creates the process's PoCL context and queue on first use. Returns false, with a reason,
 * when no OpenCL CPU device is available. Call with td_global.lock held. */
bool td_ocl_ready(char *reason, size_t reason_size);
void *td_ocl_svm_alloc(size_t size, size_t alignment);
void td_ocl_svm_free(void *ptr);
/* Builds SPIR 1.2 bitcode into a cl_program; the build log (or why not) goes to *log. */
void *td_ocl_program_from_spir(const unsigned char *bc, size_t size, char **log);
void td_ocl_program_release(void *program);
/* Creates a cl_kernel and classifies its arguments. */
ze_result_t td_ocl_kernel_create(void *program, const char *name, void **kernel, uint32_t *n_args,
                                 td_arg *args);
void td_ocl_kernel_release(void *kernel);
/* Runs one launch to completion; false (with a message on stderr) when PoCL refused it. */
bool td_ocl_launch(const td_command *launch);
/* Waits for every enqueued kernel (before the host touches memory). */
void td_ocl_finish(void);

/* ---------------------------------------------------------------- memory (memory.c) */

/* True when [ptr, ptr + size) lies inside one live allocation. Lock held. */
bool td_mem_contains(const void *ptr, size_t size);
/* The live allocation holding ptr: its context and device (NULL for host memory); false when ptr is
 * in none (plain host memory). Lock held. */
bool td_mem_owner(const void *ptr, ze_context_handle_t *context, ze_device_handle_t *device);

/* ---------------------------------------------------------------- SPIR-V (spirv_translate.c) */

/* SPIR-V -> SPIR 1.2 bitcode via `llvm-spirv -r`, cached by content hash. On failure returns
 * false and a malloc'd log. */
bool td_spirv_to_bitcode(const void *spirv, size_t size, unsigned char **bc, size_t *bc_size, char **log);

/* ---------------------------------------------------------------- execution entry points */

bool td_context_valid(ze_context_handle_t context);
/* Marks a device lost when this submission is the injected one; returns DEVICE_LOST then and
 * for every later call on a lost device. Lock held. */
ze_result_t td_submit_gate(ze_device_handle_t device, bool queue_execute);
/* Runs a list's commands in order. Lock held. */
ze_result_t td_command_list_run(ze_command_list_handle_t list);
/* Builds a malloc'd build log handle (NULL when out of memory). */
ze_module_build_log_handle_t td_build_log_new(char *text);

ze_result_t ZE_APICALL td_zeContextCreate(ze_driver_handle_t driver, const ze_context_desc_t *desc,
                                          ze_context_handle_t *out);
ze_result_t ZE_APICALL td_zeContextDestroy(ze_context_handle_t context);
ze_result_t ZE_APICALL td_zeContextGetStatus(ze_context_handle_t context);

ze_result_t ZE_APICALL td_zeMemAllocDevice(ze_context_handle_t context, const ze_device_mem_alloc_desc_t *desc,
                                           size_t size, size_t alignment, ze_device_handle_t device, void **out);
ze_result_t ZE_APICALL td_zeMemAllocHost(ze_context_handle_t context, const ze_host_mem_alloc_desc_t *desc,
                                         size_t size, size_t alignment, void **out);
ze_result_t ZE_APICALL td_zeMemAllocShared(ze_context_handle_t context, const ze_device_mem_alloc_desc_t *device_desc,
                                           const ze_host_mem_alloc_desc_t *host_desc, size_t size, size_t alignment,
                                           ze_device_handle_t device, void **out);
ze_result_t ZE_APICALL td_zeMemFree(ze_context_handle_t context, void *ptr);
ze_result_t ZE_APICALL td_zeMemGetAllocProperties(ze_context_handle_t context, const void *ptr,
                                                  ze_memory_allocation_properties_t *props,
                                                  ze_device_handle_t *device);

ze_result_t ZE_APICALL td_zeModuleCreate(ze_context_handle_t context, ze_device_handle_t device,
                                         const ze_module_desc_t *desc, ze_module_handle_t *out,
                                         ze_module_build_log_handle_t *log);
ze_result_t ZE_APICALL td_zeModuleDestroy(ze_module_handle_t module);
ze_result_t ZE_APICALL td_zeModuleBuildLogGetString(ze_module_build_log_handle_t log, size_t *size, char *text);
ze_result_t ZE_APICALL td_zeModuleBuildLogDestroy(ze_module_build_log_handle_t log);

ze_result_t ZE_APICALL td_zeKernelCreate(ze_module_handle_t module, const ze_kernel_desc_t *desc,
                                         ze_kernel_handle_t *out);
ze_result_t ZE_APICALL td_zeKernelDestroy(ze_kernel_handle_t kernel);
ze_result_t ZE_APICALL td_zeKernelSetGroupSize(ze_kernel_handle_t kernel, uint32_t x, uint32_t y, uint32_t z);
ze_result_t ZE_APICALL td_zeKernelSuggestGroupSize(ze_kernel_handle_t kernel, uint32_t gx, uint32_t gy, uint32_t gz,
                                                   uint32_t *x, uint32_t *y, uint32_t *z);
ze_result_t ZE_APICALL td_zeKernelSetArgumentValue(ze_kernel_handle_t kernel, uint32_t index, size_t size,
                                                   const void *value);
ze_result_t ZE_APICALL td_zeKernelGetProperties(ze_kernel_handle_t kernel, ze_kernel_properties_t *props);

ze_result_t ZE_APICALL td_zeCommandListCreate(ze_context_handle_t context, ze_device_handle_t device,
                                              const ze_command_list_desc_t *desc, ze_command_list_handle_t *out);
ze_result_t ZE_APICALL td_zeCommandListCreateImmediate(ze_context_handle_t context, ze_device_handle_t device,
                                                       const ze_command_queue_desc_t *desc,
                                                       ze_command_list_handle_t *out);
ze_result_t ZE_APICALL td_zeCommandListDestroy(ze_command_list_handle_t list);
ze_result_t ZE_APICALL td_zeCommandListClose(ze_command_list_handle_t list);
ze_result_t ZE_APICALL td_zeCommandListReset(ze_command_list_handle_t list);
ze_result_t ZE_APICALL td_zeCommandListAppendBarrier(ze_command_list_handle_t list, ze_event_handle_t signal,
                                                     uint32_t n_wait, ze_event_handle_t *wait);
ze_result_t ZE_APICALL td_zeCommandListAppendMemoryCopy(ze_command_list_handle_t list, void *dst, const void *src,
                                                        size_t size, ze_event_handle_t signal, uint32_t n_wait,
                                                        ze_event_handle_t *wait);
ze_result_t ZE_APICALL td_zeCommandListAppendMemoryFill(ze_command_list_handle_t list, void *ptr,
                                                        const void *pattern, size_t pattern_size, size_t size,
                                                        ze_event_handle_t signal, uint32_t n_wait,
                                                        ze_event_handle_t *wait);
ze_result_t ZE_APICALL td_zeCommandListAppendLaunchKernel(ze_command_list_handle_t list, ze_kernel_handle_t kernel,
                                                          const ze_group_count_t *count, ze_event_handle_t signal,
                                                          uint32_t n_wait, ze_event_handle_t *wait);

ze_result_t ZE_APICALL td_zeCommandQueueCreate(ze_context_handle_t context, ze_device_handle_t device,
                                               const ze_command_queue_desc_t *desc, ze_command_queue_handle_t *out);
ze_result_t ZE_APICALL td_zeCommandQueueDestroy(ze_command_queue_handle_t queue);
ze_result_t ZE_APICALL td_zeCommandQueueExecuteCommandLists(ze_command_queue_handle_t queue, uint32_t n,
                                                            ze_command_list_handle_t *lists, ze_fence_handle_t fence);
ze_result_t ZE_APICALL td_zeCommandQueueSynchronize(ze_command_queue_handle_t queue, uint64_t timeout);

ze_result_t ZE_APICALL td_zeFenceCreate(ze_command_queue_handle_t queue, const ze_fence_desc_t *desc,
                                        ze_fence_handle_t *out);
ze_result_t ZE_APICALL td_zeFenceDestroy(ze_fence_handle_t fence);
ze_result_t ZE_APICALL td_zeFenceHostSynchronize(ze_fence_handle_t fence, uint64_t timeout);
ze_result_t ZE_APICALL td_zeFenceQueryStatus(ze_fence_handle_t fence);
ze_result_t ZE_APICALL td_zeFenceReset(ze_fence_handle_t fence);

/* Copies up to *count handles out of a one-element (or n-element) set, following the Level Zero
 * "count = 0 asks for the size" convention. */
ze_result_t td_enumerate(uint32_t available, uint32_t *count, void **out, void *const *items);

/* ---------------------------------------------------------------- DDI tables (ddi_*.c) */

/* Checks a loader's request for a DDI table: a non-null table and an API major we implement. */
ze_result_t td_ddi_request(ze_api_version_t version, const void *table);

/* Defines an exported zeGet*ProcAddrTable-style function that zeroes the table (the loader
 * then answers ZE_RESULT_ERROR_UNSUPPORTED_FEATURE for every empty slot) and runs `fill`. */
#define TD_DDI_TABLE(getter, table_type, fill)                                              \
    TD_EXPORT ze_result_t ZE_APICALL getter(ze_api_version_t version, table_type *table);  \
    TD_EXPORT ze_result_t ZE_APICALL getter(ze_api_version_t version, table_type *table) { \
        ze_result_t r_ = td_ddi_request(version, table);                                    \
        if (r_ != ZE_RESULT_SUCCESS) return r_;                                             \
        memset(table, 0, sizeof *table);                                                    \
        fill;                                                                               \
        return ZE_RESULT_SUCCESS;                                                           \
    }

/* ---------------------------------------------------------------- test-only exports (state.c) */

/* Number of API calls that reached this driver after a failed zeInit. */
TD_EXPORT uint64_t exo_ze_test_driver_calls_after_failed_init(void);
/* Number of zeInit calls that reached this driver. */
TD_EXPORT uint64_t exo_ze_test_driver_init_calls(void);
/* Kernel launches executed, submissions seen, and live device allocations (bytes). */
TD_EXPORT uint64_t exo_ze_test_driver_launches(void);
TD_EXPORT uint64_t exo_ze_test_driver_submits(void);
TD_EXPORT uint64_t exo_ze_test_driver_live_device_bytes(void);
TD_EXPORT uint64_t exo_ze_test_driver_module_builds(void);
/* Copies done between memory of two different devices (peer copies; EXO_ZE_TEST_PEER). */
TD_EXPORT uint64_t exo_ze_test_driver_peer_copies(void);
/* Same as EXO_ZE_TEST_PEER, set while running: 0 on, 1 none, 2 fail (td_peer_mode). */
TD_EXPORT void exo_ze_test_driver_set_peer(uint32_t mode);
/* Same as EXO_ZE_TEST_DEVICE_LOST_AT_SUBMIT, set while running (a test loses the device after
 * it has built state: the value is an absolute submission number, see ..._submits()). */
TD_EXPORT void exo_ze_test_driver_set_device_lost_at_submit(uint64_t n);
/* Loses the device at the n-th zeCommandQueueExecuteCommandLists (absolute, see ..._executes()):
 * a graph run, as opposed to a copy on an immediate list. */
TD_EXPORT void exo_ze_test_driver_set_device_lost_at_execute(uint64_t n);
TD_EXPORT uint64_t exo_ze_test_driver_executes(void);
/* Loses device `index` now: every later call on it returns DEVICE_LOST (a test fails one device
 * of several, e.g. one rank of a tensor-parallel shard). */
TD_EXPORT void exo_ze_test_driver_lose_device(uint32_t index);

#endif /* EXO_ZE_TEST_DRIVER_H */
