/* sysman_frequency.c — one GPU frequency domain running a little below its maximum. */
#include "ze_test_driver.h"

static ze_result_t check_freq(zes_freq_handle_t freq) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!freq || !td_device_valid(freq->device) || freq != &freq->device->freq_domain)
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesDeviceEnumFrequencyDomains(zes_device_handle_t device, uint32_t *count,
                                                        zes_freq_handle_t *handles) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    void *items[1] = {&device->freq_domain};
    return td_enumerate(1, count, (void **)handles, items);
}

ze_result_t ZE_APICALL td_zesFrequencyGetProperties(zes_freq_handle_t freq, zes_freq_properties_t *props) {
    ze_result_t r = check_freq(freq);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZES_STRUCTURE_TYPE_FREQ_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    props->type = ZES_FREQ_DOMAIN_GPU;
    props->onSubdevice = 0;
    props->subdeviceId = 0;
    props->canControl = 0;
    props->isThrottleEventSupported = 0;
    props->min = 300.0;
    props->max = (double)freq->device->props.coreClockRate;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesFrequencyGetState(zes_freq_handle_t freq, zes_freq_state_t *state) {
    ze_result_t r = check_freq(freq);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!state) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (state->stype != ZES_STRUCTURE_TYPE_FREQ_STATE) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    double max = (double)freq->device->props.coreClockRate;
    uint64_t seconds = (td_now_us() - td_global.start_us) / 1000000u;
    state->currentVoltage = -1.0; /* unknown, as the spec allows */
    state->request = max;
    state->tdp = max;
    state->efficient = max / 2.0;
    state->actual = max - 50.0 * (double)(seconds % 4);
    state->throttleReasons = 0;
    return ZE_RESULT_SUCCESS;
}
