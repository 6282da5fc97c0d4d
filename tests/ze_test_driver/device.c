/* device.c — zeDeviceGet and the device property queries the probe makes. Each query checks
 * the handle and stype the way the validation layer would, so a wrong caller fails loudly. */
#include "ze_test_driver.h"

#define CHECK_DEVICE_CALL(device, out, stype_expected)                                         \
    do {                                                                                       \
        ze_result_t r_ = td_enter();                                                           \
        if (r_ != ZE_RESULT_SUCCESS) return r_;                                                \
        if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;              \
        if (!(out)) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;                               \
        if ((out)->stype != (stype_expected)) return ZE_RESULT_ERROR_INVALID_ARGUMENT;         \
    } while (0)

ze_result_t ZE_APICALL td_zeDeviceGet(ze_driver_handle_t driver, uint32_t *count, ze_device_handle_t *devices) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (driver != &td_global.driver) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    void *items[TD_MAX_DEVICES];
    for (uint32_t i = 0; i < driver->n_devices; i++) items[i] = &driver->devices[i];
    return td_enumerate(driver->n_devices, count, (void **)devices, items);
}

ze_result_t ZE_APICALL td_zeDeviceGetProperties(ze_device_handle_t device, ze_device_properties_t *props) {
    CHECK_DEVICE_CALL(device, props, ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES);
    void *next = props->pNext; /* no extensions are understood: leave the chain alone */
    *props = device->props;
    props->pNext = next;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeDeviceGetComputeProperties(ze_device_handle_t device,
                                                       ze_device_compute_properties_t *props) {
    CHECK_DEVICE_CALL(device, props, ZE_STRUCTURE_TYPE_DEVICE_COMPUTE_PROPERTIES);
    void *next = props->pNext;
    *props = device->compute;
    props->pNext = next;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeDeviceGetModuleProperties(ze_device_handle_t device,
                                                      ze_device_module_properties_t *props) {
    CHECK_DEVICE_CALL(device, props, ZE_STRUCTURE_TYPE_DEVICE_MODULE_PROPERTIES);
    void *next = props->pNext;
    *props = device->module;
    props->pNext = next;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeDeviceGetMemoryProperties(ze_device_handle_t device, uint32_t *count,
                                                      ze_device_memory_properties_t *props) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!count) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (*count == 0 || !props) {
        *count = 1; /* one local memory (or, integrated, the shared system memory) */
        return ZE_RESULT_SUCCESS;
    }
    if (props[0].stype != ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    void *next = props[0].pNext;
    props[0] = device->memory;
    props[0].pNext = next;
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

/* One queue group doing compute and copies, like the render/compute engine of an Arc card. */
ze_result_t ZE_APICALL td_zeDeviceGetCommandQueueGroupProperties(ze_device_handle_t device, uint32_t *count,
                                                                 ze_command_queue_group_properties_t *props) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!count) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (*count == 0 || !props) {
        *count = 1;
        return ZE_RESULT_SUCCESS;
    }
    if (props[0].stype != ZE_STRUCTURE_TYPE_COMMAND_QUEUE_GROUP_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    props[0].flags = ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE | ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY;
    props[0].maxMemoryFillPatternSize = 16;
    props[0].numQueues = 1;
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

/* Peer access (EXO_ZE_TEST_PEER): every pair of the driver's devices, or none. A device always
 * reaches its own memory. */
static bool peer_reachable(ze_device_handle_t device, ze_device_handle_t peer) {
    pthread_mutex_lock(&td_global.lock);
    bool reachable = device == peer || td_global.config.peer != TD_PEER_NONE;
    pthread_mutex_unlock(&td_global.lock);
    return reachable;
}

ze_result_t ZE_APICALL td_zeDeviceCanAccessPeer(ze_device_handle_t device, ze_device_handle_t peer, ze_bool_t *value) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device) || !td_device_valid(peer)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!value) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (device->lost || peer->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    *value = peer_reachable(device, peer);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeDeviceGetP2PProperties(ze_device_handle_t device, ze_device_handle_t peer,
                                                   ze_device_p2p_properties_t *props) {
    CHECK_DEVICE_CALL(device, props, ZE_STRUCTURE_TYPE_DEVICE_P2P_PROPERTIES);
    if (!td_device_valid(peer)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (device->lost || peer->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    props->flags = peer_reachable(device, peer) ? ZE_DEVICE_P2P_PROPERTY_FLAG_ACCESS : 0; /* no atomics */
    return ZE_RESULT_SUCCESS;
}
