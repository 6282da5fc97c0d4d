/* sysman_power.c — one card-level power domain whose energy counter (microjoules) grows at
 * EXO_ZE_TEST_POWER_W, so power = delta(energy) / delta(timestamp). */
#include "ze_test_driver.h"

static ze_result_t check_power(zes_pwr_handle_t power) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!power || !td_device_valid(power->device) || power != &power->device->power_domain)
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesDeviceEnumPowerDomains(zes_device_handle_t device, uint32_t *count,
                                                    zes_pwr_handle_t *handles) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    void *items[1] = {&device->power_domain};
    return td_enumerate(1, count, (void **)handles, items);
}

ze_result_t ZE_APICALL td_zesPowerGetProperties(zes_pwr_handle_t power, zes_power_properties_t *props) {
    ze_result_t r = check_power(power);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZES_STRUCTURE_TYPE_POWER_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    props->onSubdevice = 0;
    props->subdeviceId = 0;
    props->canControl = 0;
    props->isEnergyThresholdSupported = 0;
    props->defaultLimit = 225000; /* milliwatts */
    props->minLimit = 100000;
    props->maxLimit = 252000;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesPowerGetEnergyCounter(zes_pwr_handle_t power, zes_power_energy_counter_t *energy) {
    ze_result_t r = check_power(power);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!energy) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    uint64_t now = td_now_us();
    /* W x us = uJ; the counter starts at an arbitrary non-zero value, as real ones do. */
    energy->energy = 5000000000ull + (uint64_t)((double)(now - td_global.start_us) * td_global.config.power_w);
    energy->timestamp = now;
    return ZE_RESULT_SUCCESS;
}
