/* sysman_engine.c — two engine groups per device (ALL and COMPUTE_ALL) whose active time grows
 * at EXO_ZE_TEST_UTILIZATION of wall time, so utilization = delta(active) / delta(timestamp). */
#include "ze_test_driver.h"

static ze_result_t check_engine(zes_engine_handle_t engine) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!engine || !td_device_valid(engine->device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    const struct _zes_engine_handle_t *first = engine->device->engines;
    if (engine < first || engine >= first + TD_ENGINE_COUNT) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesDeviceEnumEngineGroups(zes_device_handle_t device, uint32_t *count,
                                                    zes_engine_handle_t *handles) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    void *items[TD_ENGINE_COUNT];
    for (int i = 0; i < TD_ENGINE_COUNT; i++) items[i] = &device->engines[i];
    return td_enumerate(TD_ENGINE_COUNT, count, (void **)handles, items);
}

ze_result_t ZE_APICALL td_zesEngineGetProperties(zes_engine_handle_t engine, zes_engine_properties_t *props) {
    ze_result_t r = check_engine(engine);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZES_STRUCTURE_TYPE_ENGINE_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    props->type = engine->group;
    props->onSubdevice = 0;
    props->subdeviceId = 0;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesEngineGetActivity(zes_engine_handle_t engine, zes_engine_stats_t *stats) {
    ze_result_t r = check_engine(engine);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!stats) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    uint64_t now = td_now_us();
    stats->timestamp = now;
    stats->activeTime = (uint64_t)((double)(now - td_global.start_us) * td_global.config.utilization);
    return ZE_RESULT_SUCCESS;
}
