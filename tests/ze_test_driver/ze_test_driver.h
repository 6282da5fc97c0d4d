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
 *
 * As on Intel's driver, Sysman answers only when ZES_ENABLE_SYSMAN=1 was set before zeInit.
 *
 * One concept per file: config.c (environment), state.c (driver/device objects, init state,
 * call accounting, test-only exports), init.c, driver.c, device.c, sysman_*.c, ddi_*.c. A later
 * issue adds context.c, memory.c, module.c, command_list.c beside them and fills more DDI slots.
 */
#ifndef EXO_ZE_TEST_DRIVER_H
#define EXO_ZE_TEST_DRIVER_H

#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include <stdbool.h>
#include <stdint.h>

#define TD_MAX_DEVICES 8
#define TD_EXPORT __attribute__((visibility("default")))

/* ---------------------------------------------------------------- configuration (config.c) */

typedef struct td_config {
    uint32_t n_devices;
    bool fail_init;
    bool no_sysman;
    bool integrated;
    double utilization; /* 0..1 */
    double power_w;
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
    uint64_t memory_used; /* what zesMemoryGetState reports as in use */
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

#endif /* EXO_ZE_TEST_DRIVER_H */
