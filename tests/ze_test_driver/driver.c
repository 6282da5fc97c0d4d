/* driver.c — zeDriverGet / GetProperties / GetApiVersion: one driver holding every device. */
#include "ze_test_driver.h"

static bool driver_valid(ze_driver_handle_t driver) {
    return driver == &td_global.driver && driver->magic == TD_DRIVER_MAGIC;
}

ze_result_t ZE_APICALL td_zeDriverGet(uint32_t *count, ze_driver_handle_t *drivers) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    void *items[1] = {&td_global.driver};
    return td_enumerate(1, count, (void **)drivers, items);
}

ze_result_t ZE_APICALL td_zeDriverGetApiVersion(ze_driver_handle_t driver, ze_api_version_t *version) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!driver_valid(driver)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!version) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    *version = ZE_API_VERSION_CURRENT;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeDriverGetProperties(ze_driver_handle_t driver, ze_driver_properties_t *props) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!driver_valid(driver)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    void *next = props->pNext;
    *props = driver->props;
    props->pNext = next;
    return ZE_RESULT_SUCCESS;
}
