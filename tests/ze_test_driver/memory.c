/* memory.c — USM allocations: device, host and shared memory are all PoCL fine-grained SVM
 * (host memory the CPU "device" uses in place). Every allocation is tracked so kernel
 * arguments and copies can be checked against it, device bytes are accounted per device
 * (Sysman memory state, injected out-of-memory), and the limits of a real driver hold: a size
 * above maxMemAllocSize needs the relaxed-allocation-limits descriptor. */
#include "ze_test_driver.h"

#include <stdlib.h>
#include <string.h>

typedef struct td_alloc {
    void *base;
    size_t size;
    ze_memory_type_t type;
    ze_device_handle_t device; /* NULL for host memory */
    ze_context_handle_t context;
} td_alloc;

static td_alloc *allocs;
static uint32_t n_allocs, cap_allocs;

uint64_t exo_ze_test_driver_live_device_bytes(void) {
    pthread_mutex_lock(&td_global.lock);
    uint64_t total = 0;
    for (uint32_t i = 0; i < td_global.driver.n_devices; i++) total += td_global.driver.devices[i].allocated;
    pthread_mutex_unlock(&td_global.lock);
    return total;
}

static td_alloc *find(const void *ptr) {
    for (uint32_t i = 0; i < n_allocs; i++) {
        const char *base = allocs[i].base;
        if ((const char *)ptr >= base && (const char *)ptr < base + allocs[i].size) return &allocs[i];
    }
    return NULL;
}

bool td_mem_contains(const void *ptr, size_t size) {
    const td_alloc *a = find(ptr);
    return a && (size_t)((const char *)ptr - (const char *)a->base) + size <= a->size;
}

bool td_mem_owner(const void *ptr, ze_context_handle_t *context, ze_device_handle_t *device) {
    const td_alloc *a = find(ptr);
    *context = a ? a->context : NULL;
    *device = a ? a->device : NULL;
    return a != NULL;
}

/* Does a pNext chain carry the relaxed-limits descriptor with MAX_SIZE? */
static bool relaxed_size(const void *next) {
    for (const ze_base_desc_t *d = next; d; d = d->pNext)
        if (d->stype == ZE_STRUCTURE_TYPE_RELAXED_ALLOCATION_LIMITS_EXP_DESC)
            return (((const ze_relaxed_allocation_limits_exp_desc_t *)d)->flags &
                    ZE_RELAXED_ALLOCATION_LIMITS_EXP_FLAG_MAX_SIZE) != 0;
    return false;
}

/* Checks limits and injected failures for `size` device bytes on `device` (lock held). */
static ze_result_t device_budget(ze_device_handle_t device, size_t size, const void *next) {
    if (device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    if (size > device->props.maxMemAllocSize && (td_global.config.no_relaxed_alloc || !relaxed_size(next)))
        return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    td_global.n_device_allocs++;
    if (td_global.config.alloc_fail_at && td_global.n_device_allocs == td_global.config.alloc_fail_at)
        return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    if (td_global.config.alloc_fail_after_bytes && device->allocated + size > td_global.config.alloc_fail_after_bytes)
        return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    if (device->memory_used + device->allocated + size > device->memory.totalSize)
        return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t allocate(ze_context_handle_t context, ze_memory_type_t type, ze_device_handle_t device,
                            const void *device_next, size_t size, size_t alignment, void **out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (type != ZE_MEMORY_TYPE_HOST && !td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!out) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (size == 0) return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    if (alignment & (alignment - 1)) return ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT;
    *out = NULL;
    pthread_mutex_lock(&td_global.lock);
    r = type == ZE_MEMORY_TYPE_HOST ? ZE_RESULT_SUCCESS : device_budget(device, size, device_next);
    if (r == ZE_RESULT_SUCCESS && n_allocs == cap_allocs) {
        uint32_t cap = cap_allocs ? 2 * cap_allocs : 64;
        td_alloc *grown = realloc(allocs, cap * sizeof *grown);
        if (grown) {
            allocs = grown;
            cap_allocs = cap;
        } else {
            r = ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
        }
    }
    void *p = NULL;
    if (r == ZE_RESULT_SUCCESS) {
        p = td_ocl_svm_alloc(size, alignment);
        if (!p) r = type == ZE_MEMORY_TYPE_HOST ? ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY : ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    }
    if (r == ZE_RESULT_SUCCESS) {
        allocs[n_allocs++] = (td_alloc){.base = p, .size = size, .type = type,
                                        .device = type == ZE_MEMORY_TYPE_HOST ? NULL : device, .context = context};
        if (type != ZE_MEMORY_TYPE_HOST) device->allocated += size;
        context->n_live_objects++;
        *out = p;
    }
    pthread_mutex_unlock(&td_global.lock);
    return r;
}

ze_result_t ZE_APICALL td_zeMemAllocDevice(ze_context_handle_t context, const ze_device_mem_alloc_desc_t *desc,
                                           size_t size, size_t alignment, ze_device_handle_t device, void **out) {
    if (!desc) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_DEVICE_MEM_ALLOC_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    return allocate(context, ZE_MEMORY_TYPE_DEVICE, device, desc->pNext, size, alignment, out);
}

ze_result_t ZE_APICALL td_zeMemAllocHost(ze_context_handle_t context, const ze_host_mem_alloc_desc_t *desc,
                                         size_t size, size_t alignment, void **out) {
    if (!desc) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    return allocate(context, ZE_MEMORY_TYPE_HOST, NULL, NULL, size, alignment, out);
}

ze_result_t ZE_APICALL td_zeMemAllocShared(ze_context_handle_t context, const ze_device_mem_alloc_desc_t *device_desc,
                                           const ze_host_mem_alloc_desc_t *host_desc, size_t size, size_t alignment,
                                           ze_device_handle_t device, void **out) {
    if (!device_desc || !host_desc) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    return allocate(context, ZE_MEMORY_TYPE_SHARED, device, device_desc->pNext, size, alignment, out);
}

ze_result_t ZE_APICALL td_zeMemFree(ze_context_handle_t context, void *ptr) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!ptr) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    pthread_mutex_lock(&td_global.lock);
    r = ZE_RESULT_ERROR_INVALID_ARGUMENT; /* not the base of a live allocation of this context */
    for (uint32_t i = 0; i < n_allocs; i++) {
        if (allocs[i].base != ptr || allocs[i].context != context) continue;
        if (allocs[i].device) allocs[i].device->allocated -= allocs[i].size;
        td_ocl_svm_free(ptr);
        allocs[i] = allocs[--n_allocs];
        context->n_live_objects--;
        r = ZE_RESULT_SUCCESS;
        break;
    }
    if (n_allocs == 0) {
        free(allocs);
        allocs = NULL;
        cap_allocs = 0;
    }
    pthread_mutex_unlock(&td_global.lock);
    return r;
}

ze_result_t ZE_APICALL td_zeMemGetAllocProperties(ze_context_handle_t context, const void *ptr,
                                                  ze_memory_allocation_properties_t *props,
                                                  ze_device_handle_t *device) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    pthread_mutex_lock(&td_global.lock);
    const td_alloc *a = find(ptr);
    props->type = a ? a->type : ZE_MEMORY_TYPE_UNKNOWN;
    props->id = a ? (uint64_t)(uintptr_t)a->base : 0;
    props->pageSize = 4096;
    if (device) *device = a ? a->device : NULL;
    pthread_mutex_unlock(&td_global.lock);
    return ZE_RESULT_SUCCESS;
}
