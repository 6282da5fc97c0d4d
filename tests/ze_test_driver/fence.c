/* fence.c — fences signalled by zeCommandQueueExecuteCommandLists. Work has finished by the
 * time a submission returns, so waiting only reports the state (or a lost device). */
#include "ze_test_driver.h"

#include <stdlib.h>

static bool fence_valid(ze_fence_handle_t f) { return f && f->magic == TD_FENCE_MAGIC; }

ze_result_t ZE_APICALL td_zeFenceCreate(ze_command_queue_handle_t queue, const ze_fence_desc_t *desc,
                                        ze_fence_handle_t *out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!queue || queue->magic != TD_QUEUE_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!desc || !out) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_FENCE_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    ze_fence_handle_t f = calloc(1, sizeof *f);
    if (!f) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    f->magic = TD_FENCE_MAGIC;
    f->queue = queue;
    f->signalled = (desc->flags & ZE_FENCE_FLAG_SIGNALED) != 0;
    pthread_mutex_lock(&td_global.lock);
    queue->context->n_live_objects++;
    pthread_mutex_unlock(&td_global.lock);
    *out = f;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeFenceDestroy(ze_fence_handle_t fence) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!fence_valid(fence)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    pthread_mutex_lock(&td_global.lock);
    fence->queue->context->n_live_objects--;
    pthread_mutex_unlock(&td_global.lock);
    fence->magic = 0;
    free(fence);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeFenceHostSynchronize(ze_fence_handle_t fence, uint64_t timeout) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!fence_valid(fence)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (fence->queue->device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    /* Nothing is in flight: an unsignalled fence would never signal. */
    return fence->signalled ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
}

ze_result_t ZE_APICALL td_zeFenceQueryStatus(ze_fence_handle_t fence) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!fence_valid(fence)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (fence->queue->device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    return fence->signalled ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
}

ze_result_t ZE_APICALL td_zeFenceReset(ze_fence_handle_t fence) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!fence_valid(fence)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    fence->signalled = false;
    return ZE_RESULT_SUCCESS;
}
