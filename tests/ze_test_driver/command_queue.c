/* command_queue.c — queues run closed command lists to completion when they are submitted,
 * then signal the fence; zeCommandQueueSynchronize has nothing left to wait for. */
#include "ze_test_driver.h"

#include <stdatomic.h>
#include <stdlib.h>

static bool queue_valid(ze_command_queue_handle_t q) { return q && q->magic == TD_QUEUE_MAGIC; }

uint64_t exo_ze_test_driver_submits(void) {
    pthread_mutex_lock(&td_global.lock);
    uint64_t n = td_global.n_submits;
    pthread_mutex_unlock(&td_global.lock);
    return n;
}

ze_result_t ZE_APICALL td_zeCommandQueueCreate(ze_context_handle_t context, ze_device_handle_t device,
                                               const ze_command_queue_desc_t *desc, ze_command_queue_handle_t *out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context) || !td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!desc || !out) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC || desc->ordinal != 0 || desc->index != 0)
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    ze_command_queue_handle_t q = calloc(1, sizeof *q);
    if (!q) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    q->magic = TD_QUEUE_MAGIC;
    q->context = context;
    q->device = device;
    pthread_mutex_lock(&td_global.lock);
    context->n_live_objects++;
    pthread_mutex_unlock(&td_global.lock);
    *out = q;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeCommandQueueDestroy(ze_command_queue_handle_t queue) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!queue_valid(queue)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    pthread_mutex_lock(&td_global.lock);
    queue->context->n_live_objects--;
    pthread_mutex_unlock(&td_global.lock);
    queue->magic = 0;
    free(queue);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeCommandQueueExecuteCommandLists(ze_command_queue_handle_t queue, uint32_t n,
                                                            ze_command_list_handle_t *lists, ze_fence_handle_t fence) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!queue_valid(queue)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!lists || n == 0) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (fence && (fence->magic != TD_FENCE_MAGIC || fence->queue != queue)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    for (uint32_t i = 0; i < n; i++) {
        if (!lists[i] || lists[i]->magic != TD_LIST_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
        if (lists[i]->immediate || !lists[i]->closed || lists[i]->device != queue->device)
            return ZE_RESULT_ERROR_INVALID_COMMAND_LIST_TYPE;
    }
    pthread_mutex_lock(&td_global.lock);
    r = td_submit_gate(queue->device, true);
    for (uint32_t i = 0; i < n && r == ZE_RESULT_SUCCESS; i++) r = td_command_list_run(lists[i]);
    if (r == ZE_RESULT_SUCCESS && fence) fence->signalled = true;
    pthread_mutex_unlock(&td_global.lock);
    return r;
}

ze_result_t ZE_APICALL td_zeCommandQueueSynchronize(ze_command_queue_handle_t queue, uint64_t timeout) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!queue_valid(queue)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    return queue->device->lost ? ZE_RESULT_ERROR_DEVICE_LOST : ZE_RESULT_SUCCESS;
}
