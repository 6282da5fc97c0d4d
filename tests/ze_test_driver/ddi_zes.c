/* ddi_zes.c — the Sysman (zes) DDI tables: PCI, memory, engines, temperature, power and
 * frequency are implemented (sysman_*.c); the rest stay empty. */
#include "ze_test_driver.h"

#include <level_zero/zes_ddi.h>
#include <string.h>

TD_DDI_TABLE(zesGetDriverProcAddrTable, zes_driver_dditable_t, (void)0)

TD_DDI_TABLE(zesGetDeviceProcAddrTable, zes_device_dditable_t, {
    table->pfnPciGetProperties = td_zesDevicePciGetProperties;
    table->pfnEnumMemoryModules = td_zesDeviceEnumMemoryModules;
    table->pfnEnumEngineGroups = td_zesDeviceEnumEngineGroups;
    table->pfnEnumTemperatureSensors = td_zesDeviceEnumTemperatureSensors;
    table->pfnEnumPowerDomains = td_zesDeviceEnumPowerDomains;
    table->pfnEnumFrequencyDomains = td_zesDeviceEnumFrequencyDomains;
})

TD_DDI_TABLE(zesGetMemoryProcAddrTable, zes_memory_dditable_t, {
    table->pfnGetProperties = td_zesMemoryGetProperties;
    table->pfnGetState = td_zesMemoryGetState;
    table->pfnGetBandwidth = td_zesMemoryGetBandwidth;
})

TD_DDI_TABLE(zesGetEngineProcAddrTable, zes_engine_dditable_t, {
    table->pfnGetProperties = td_zesEngineGetProperties;
    table->pfnGetActivity = td_zesEngineGetActivity;
})

TD_DDI_TABLE(zesGetTemperatureProcAddrTable, zes_temperature_dditable_t, {
    table->pfnGetProperties = td_zesTemperatureGetProperties;
    table->pfnGetState = td_zesTemperatureGetState;
})

TD_DDI_TABLE(zesGetPowerProcAddrTable, zes_power_dditable_t, {
    table->pfnGetProperties = td_zesPowerGetProperties;
    table->pfnGetEnergyCounter = td_zesPowerGetEnergyCounter;
})

TD_DDI_TABLE(zesGetFrequencyProcAddrTable, zes_frequency_dditable_t, {
    table->pfnGetProperties = td_zesFrequencyGetProperties;
    table->pfnGetState = td_zesFrequencyGetState;
})

TD_DDI_TABLE(zesGetSchedulerProcAddrTable, zes_scheduler_dditable_t, (void)0)
TD_DDI_TABLE(zesGetPerformanceFactorProcAddrTable, zes_performance_factor_dditable_t, (void)0)
TD_DDI_TABLE(zesGetStandbyProcAddrTable, zes_standby_dditable_t, (void)0)
TD_DDI_TABLE(zesGetFirmwareProcAddrTable, zes_firmware_dditable_t, (void)0)
TD_DDI_TABLE(zesGetFabricPortProcAddrTable, zes_fabric_port_dditable_t, (void)0)
TD_DDI_TABLE(zesGetPsuProcAddrTable, zes_psu_dditable_t, (void)0)
TD_DDI_TABLE(zesGetFanProcAddrTable, zes_fan_dditable_t, (void)0)
TD_DDI_TABLE(zesGetLedProcAddrTable, zes_led_dditable_t, (void)0)
TD_DDI_TABLE(zesGetRasProcAddrTable, zes_ras_dditable_t, (void)0)
TD_DDI_TABLE(zesGetDiagnosticsProcAddrTable, zes_diagnostics_dditable_t, (void)0)
