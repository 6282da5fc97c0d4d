/* driver.c — zeDriverGet / GetProperties / GetApiVersion: one driver holding every device. */
#include "ze_test_driver.h"

#include <stdio.h>

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

/* The one extension the plugin asks about: allocations above maxMemAllocSize (Intel's
 * drivers offer it; EXO_ZE_TEST_NO_RELAXED_ALLOC hides it). */
ze_result_t ZE_APICALL td_zeDriverGetExtensionProperties(ze_driver_handle_t driver, uint32_t *count,
                                                        ze_driver_extension_properties_t *props) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!driver_valid(driver)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!count) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    uint32_t available = td_global.config.no_relaxed_alloc ? 0 : 1;
    if (*count == 0 || !props) {
        *count = available;
        return ZE_RESULT_SUCCESS;
    }
    if (*count > available) *count = available;
    if (*count == 1) {
        snprintf(props[0].name, sizeof props[0].name, "%s", ZE_RELAXED_ALLOCATION_LIMITS_EXP_NAME);
        props[0].version = ZE_RELAXED_ALLOCATION_LIMITS_EXP_VERSION_CURRENT;
    }
    return ZE_RESULT_SUCCESS;
}
