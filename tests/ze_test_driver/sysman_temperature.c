/* sysman_temperature.c — one GPU temperature sensor that warms with load and wobbles slowly. */
#include "ze_test_driver.h"

static ze_result_t check_temp(zes_temp_handle_t temp) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!temp || !td_device_valid(temp->device) || temp != &temp->device->temp_sensor)
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesDeviceEnumTemperatureSensors(zes_device_handle_t device, uint32_t *count,
                                                          zes_temp_handle_t *handles) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    void *items[1] = {&device->temp_sensor};
    return td_enumerate(1, count, (void **)handles, items);
}

ze_result_t ZE_APICALL td_zesTemperatureGetProperties(zes_temp_handle_t temp, zes_temp_properties_t *props) {
    ze_result_t r = check_temp(temp);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZES_STRUCTURE_TYPE_TEMP_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    props->type = ZES_TEMP_SENSORS_GPU;
    props->onSubdevice = 0;
    props->subdeviceId = 0;
    props->maxTemperature = 100.0;
    props->isCriticalTempSupported = 0;
    props->isThreshold1Supported = 0;
    props->isThreshold2Supported = 0;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesTemperatureGetState(zes_temp_handle_t temp, double *celsius) {
    ze_result_t r = check_temp(temp);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!celsius) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    uint64_t tenths = (td_now_us() - td_global.start_us) / 100000u;
    *celsius = 40.0 + 20.0 * td_global.config.utilization + (double)temp->device->index +
               0.1 * (double)(tenths % 20);
    return ZE_RESULT_SUCCESS;
}
