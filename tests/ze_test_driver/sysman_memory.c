/* sysman_memory.c — one memory module per device; usage drifts a little over time so callers
 * see live readings rather than constants. */
#include "ze_test_driver.h"

#define MIB (1024ull * 1024ull)

static ze_result_t check_mem(zes_mem_handle_t mem) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!mem || !td_device_valid(mem->device) || mem != &mem->device->mem_module)
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesDeviceEnumMemoryModules(zes_device_handle_t device, uint32_t *count,
                                                     zes_mem_handle_t *handles) {
    ze_result_t r = td_enter_sysman();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    void *items[1] = {&device->mem_module};
    return td_enumerate(1, count, (void **)handles, items);
}

ze_result_t ZE_APICALL td_zesMemoryGetProperties(zes_mem_handle_t mem, zes_mem_properties_t *props) {
    ze_result_t r = check_mem(mem);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (props->stype != ZES_STRUCTURE_TYPE_MEM_PROPERTIES) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    const struct _ze_device_handle_t *d = mem->device;
    bool integrated = d->props.flags & ZE_DEVICE_PROPERTY_FLAG_INTEGRATED;
    props->type = integrated ? ZES_MEM_TYPE_DDR : ZES_MEM_TYPE_GDDR6;
    props->onSubdevice = 0;
    props->subdeviceId = 0;
    props->location = integrated ? ZES_MEM_LOC_SYSTEM : ZES_MEM_LOC_DEVICE;
    props->physicalSize = d->memory.totalSize;
    props->busWidth = (int32_t)d->memory.maxBusWidth;
    props->numChannels = integrated ? 2 : 8;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesMemoryGetState(zes_mem_handle_t mem, zes_mem_state_t *state) {
    ze_result_t r = check_mem(mem);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!state) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (state->stype != ZES_STRUCTURE_TYPE_MEM_STATE) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    const struct _ze_device_handle_t *d = mem->device;
    uint64_t seconds = (td_now_us() - td_global.start_us) / 1000000u;
    uint64_t used = d->memory_used + d->allocated + (seconds % 8) * 16 * MIB;
    if (used > d->memory.totalSize) used = d->memory.totalSize;
    state->health = ZES_MEM_HEALTH_OK;
    state->size = d->memory.totalSize;
    state->free = d->memory.totalSize - used;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zesMemoryGetBandwidth(zes_mem_handle_t mem, zes_mem_bandwidth_t *bandwidth) {
    ze_result_t r = check_mem(mem);
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!bandwidth) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    uint64_t now = td_now_us();
    uint64_t elapsed = now - td_global.start_us;
    bandwidth->maxBandwidth = mem->device->max_bandwidth;
    /* Counters in bytes: a steady 10% / 2% of peak read / write traffic. */
    bandwidth->readCounter = (uint64_t)((double)mem->device->max_bandwidth * 0.10 * (double)elapsed / 1e6);
    bandwidth->writeCounter = (uint64_t)((double)mem->device->max_bandwidth * 0.02 * (double)elapsed / 1e6);
    bandwidth->timestamp = now;
    return ZE_RESULT_SUCCESS;
}
