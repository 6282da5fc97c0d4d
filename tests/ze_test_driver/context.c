/* context.c — zeContextCreate/Destroy/GetStatus. A context is a token here: every allocation
 * and program lives in the process's one PoCL context (ocl_runtime.c). */
#include "ze_test_driver.h"

#include <stdlib.h>

bool td_context_valid(ze_context_handle_t context) { return context && context->magic == TD_CONTEXT_MAGIC; }

ze_result_t ZE_APICALL td_zeContextCreate(ze_driver_handle_t driver, const ze_context_desc_t *desc,
                                          ze_context_handle_t *out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (driver != &td_global.driver) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!desc || !out) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_CONTEXT_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    ze_context_handle_t c = calloc(1, sizeof *c);
    if (!c) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    c->magic = TD_CONTEXT_MAGIC;
    *out = c;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeContextDestroy(ze_context_handle_t context) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    /* Destroying a context that still owns objects is a caller bug the spec calls out. */
    if (context->n_live_objects) return ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
    context->magic = 0;
    free(context);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeContextGetStatus(ze_context_handle_t context) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    for (uint32_t i = 0; i < td_global.driver.n_devices; i++)
        if (td_global.driver.devices[i].lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    return ZE_RESULT_SUCCESS;
}

ze_result_t td_submit_gate(ze_device_handle_t device, bool queue_execute) {
    if (device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    td_global.n_submits++;
    if (queue_execute && ++td_global.n_executes == td_global.device_lost_at_execute) {
        device->lost = true;
        return ZE_RESULT_ERROR_DEVICE_LOST;
    }
    if (td_global.config.device_lost_at_submit && td_global.n_submits == td_global.config.device_lost_at_submit) {
        device->lost = true;
        return ZE_RESULT_ERROR_DEVICE_LOST;
    }
    return ZE_RESULT_SUCCESS;
}

void exo_ze_test_driver_set_device_lost_at_submit(uint64_t n) {
    pthread_mutex_lock(&td_global.lock);
    td_global.config.device_lost_at_submit = n;
    pthread_mutex_unlock(&td_global.lock);
}

void exo_ze_test_driver_set_device_lost_at_execute(uint64_t n) {
    pthread_mutex_lock(&td_global.lock);
    td_global.device_lost_at_execute = n;
    pthread_mutex_unlock(&td_global.lock);
}

void exo_ze_test_driver_set_peer(uint32_t mode) {
    pthread_mutex_lock(&td_global.lock);
    if (mode <= TD_PEER_FAIL) td_global.config.peer = (td_peer_mode)mode;
    pthread_mutex_unlock(&td_global.lock);
}

void exo_ze_test_driver_lose_device(uint32_t index) {
    pthread_mutex_lock(&td_global.lock);
    if (index < td_global.driver.n_devices) td_global.driver.devices[index].lost = true;
    pthread_mutex_unlock(&td_global.lock);
}

uint64_t exo_ze_test_driver_executes(void) {
    pthread_mutex_lock(&td_global.lock);
    uint64_t n = td_global.n_executes;
    pthread_mutex_unlock(&td_global.lock);
    return n;
}
